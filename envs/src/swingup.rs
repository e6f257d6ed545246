//! The DCEM paper's cartpole swing-up (the `mpc` package's cartpole), natively and as a batched,
//! differentiable [`Model`].
//!
//! State `(x, x', cos th, sin th, th')`, `th = 0` upright. Gravity 9.8, cart mass 1.0, pole mass
//! 0.1, pole (half) length 0.5, force clamped to +-100 N, dt 0.05, one explicit Euler step per
//! action with the classic Barto equations:
//!
//! ```text
//! temp  = (u + m_p l th'^2 sin th) / (m_c + m_p)
//! th''  = (g sin th - cos th temp) / (l (4/3 - m_p cos^2 th / (m_c + m_p)))
//! x''   = temp - m_p l th'' cos th / (m_c + m_p)
//! x <- x + dt x',  x' <- x' + dt x'',  th <- th + dt th',  th' <- th' + dt th''
//! ```
//!
//! The angle update is applied to `(cos th, sin th)` as a rotation by `dt th'`, which is the same
//! map as the `mpc` package's `atan2` then `cos`/`sin`. Reward per step, on the state before the
//! action: `cos th - 0.1 x^2 - 1e-5 u^2` with `u` the force in newtons (the negative of the
//! paper's cost). Start states: `x, x' ~ U(-0.5, 0.5)`, `th ~ U(-pi, pi)`, `th' ~ U(-1, 1)`.

use burn::tensor::{Tensor, s};
use dcem::env::{BoxSpace, Env, Space, Step};
use dcem::model::{Model, Rollout};
use dcem::{Error, Result};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::Episode;

const GRAVITY: f64 = 9.8;
const CART_MASS: f64 = 1.0;
const POLE_MASS: f64 = 0.1;
const POLE_LENGTH: f64 = 0.5;
const FORCE_MAX: f64 = 100.0;
const DT: f64 = 0.05;

fn total_mass() -> f64 {
    CART_MASS + POLE_MASS
}

/// One Euler step of the swing-up dynamics from `state` under force `u` (newtons, clamped to
/// +-100).
pub fn swingup_dynamics(state: [f64; 5], u: f64) -> [f64; 5] {
    let [x, dx, cos_th, sin_th, dth] = state;
    let u = u.clamp(-FORCE_MAX, FORCE_MAX);
    let m = total_mass();
    let temp = (u + POLE_MASS * POLE_LENGTH * dth * dth * sin_th) / m;
    let th_acc = (GRAVITY * sin_th - cos_th * temp)
        / (POLE_LENGTH * (4.0 / 3.0 - POLE_MASS * cos_th * cos_th / m));
    let x_acc = temp - POLE_MASS * POLE_LENGTH * th_acc * cos_th / m;
    let (sd, cd) = (DT * dth).sin_cos();
    [
        x + DT * dx,
        dx + DT * x_acc,
        cos_th * cd - sin_th * sd,
        sin_th * cd + cos_th * sd,
        dth + DT * th_acc,
    ]
}

/// The reward of taking force `u` (newtons, clamped to +-100) in `state`.
pub fn swingup_reward(state: [f64; 5], u: f64) -> f64 {
    let u = u.clamp(-FORCE_MAX, FORCE_MAX);
    state[2] - 0.1 * state[0] * state[0] - 1e-5 * u * u
}

/// Options of [`CartpoleSwingup`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwingupConfig {
    /// Steps per episode (the episode is truncated after them), at least 1.
    pub episode_steps: usize,
}

impl Default for SwingupConfig {
    fn default() -> Self {
        Self { episode_steps: 100 }
    }
}

/// The paper's cartpole swing-up as an [`Env`]. Actions in [-1, 1] are scaled to +-100 N;
/// actions outside are clipped. Episodes never terminate; they are truncated after
/// `episode_steps` steps.
#[derive(Debug)]
pub struct CartpoleSwingup {
    config: SwingupConfig,
    state: [f64; 5],
    episode: Episode,
    obs_space: Space,
    act_space: Space,
}

impl CartpoleSwingup {
    /// A swing-up environment; call [`Env::reset`] before stepping.
    pub fn new(config: SwingupConfig) -> Result<Self> {
        if config.episode_steps == 0 {
            return Err(Error::option("episode_steps", "must be at least 1"));
        }
        let inf = f64::INFINITY;
        Ok(Self {
            config,
            state: [0.0, 0.0, 1.0, 0.0, 0.0],
            episode: Episode::new(),
            obs_space: Space::Box(BoxSpace::new(
                vec![-inf, -inf, -1.0, -1.0, -inf],
                vec![inf, inf, 1.0, 1.0, inf],
                vec![5],
            )?),
            act_space: Space::Box(BoxSpace::uniform(1, -1.0, 1.0)?),
        })
    }

    /// The current state `(x, x', cos th, sin th, th')`.
    pub fn state(&self) -> [f64; 5] {
        self.state
    }

    /// Starts an episode from a given state (for tests and replays).
    pub fn reset_to(&mut self, state: [f64; 5]) -> Result<Vec<f64>> {
        self.episode.start(&state)?;
        self.state = state;
        Ok(state.to_vec())
    }
}

impl Env for CartpoleSwingup {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.episode.reseed(seed);
        let th: f64 = self
            .episode
            .rng
            .random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let state = [
            self.episode.rng.random_range(-0.5..0.5),
            self.episode.rng.random_range(-0.5..0.5),
            th.cos(),
            th.sin(),
            self.episode.rng.random_range(-1.0..1.0),
        ];
        self.reset_to(state)
    }

    fn step(&mut self, action: &[f64]) -> Result<Step> {
        self.episode
            .check_step(&self.act_space, action, "CartpoleSwingup")?;
        let u = action[0].clamp(-1.0, 1.0) * FORCE_MAX;
        let reward = swingup_reward(self.state, u);
        self.state = swingup_dynamics(self.state, u);
        let truncated = self.episode.finish_step(false, self.config.episode_steps);
        Ok(Step {
            obs: self.state.to_vec(),
            reward,
            terminated: false,
            truncated,
        })
    }
}

/// The swing-up's dynamics and cost on burn tensors: a batched, differentiable [`Model`].
///
/// Actions are in env units ([-1, 1], clamped, scaled to +-100 N); the cost of a sequence is
/// minus the sum of the per-step rewards, each on the state before its action (paper sect. 5.2.1).
/// Equal to [`CartpoleSwingup`] step for step.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwingupModel;

impl Model for SwingupModel {
    fn state_dim(&self) -> usize {
        5
    }

    fn action_dim(&self) -> usize {
        1
    }

    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        let [b, sd] = states.dims();
        let [ba, h, ad] = actions.dims();
        if sd != 5 || ad != 1 || ba != b {
            return Err(Error::shape(
                "SwingupModel::rollout",
                "states [B, 5] and actions [B, H, 1]",
                (states.dims(), actions.dims()),
            ));
        }
        let col = |i: usize| states.clone().slice(s![.., i..i + 1]);
        let (mut x, mut dx, mut c, mut sn, mut dth) = (col(0), col(1), col(2), col(3), col(4));
        let mut reward = Tensor::<2>::zeros([b, 1], &states.device());
        let mut visited = Vec::new();
        if keep_states {
            visited.push(states.clone());
        }
        let m = total_mass();
        for t in 0..h {
            let u = actions
                .clone()
                .slice(s![.., t..t + 1, ..])
                .reshape([b, 1])
                .clamp(-1.0, 1.0)
                .mul_scalar(FORCE_MAX);
            reward = reward + c.clone()
                - x.clone().square().mul_scalar(0.1)
                - u.clone().square().mul_scalar(1e-5);
            let temp = (u + dth
                .clone()
                .square()
                .mul(sn.clone())
                .mul_scalar(POLE_MASS * POLE_LENGTH))
            .div_scalar(m);
            let denom = c
                .clone()
                .square()
                .mul_scalar(-POLE_MASS / m)
                .add_scalar(4.0 / 3.0)
                .mul_scalar(POLE_LENGTH);
            let th_acc = (sn.clone().mul_scalar(GRAVITY) - c.clone() * temp.clone()) / denom;
            let x_acc = temp - (th_acc.clone() * c.clone()).mul_scalar(POLE_MASS * POLE_LENGTH / m);
            let angle = dth.clone().mul_scalar(DT);
            let (sd, cd) = (angle.clone().sin(), angle.cos());
            x = x + dx.clone().mul_scalar(DT);
            dx = dx + x_acc.mul_scalar(DT);
            let c_new = c.clone() * cd.clone() - sn.clone() * sd.clone();
            sn = sn * cd + c * sd;
            c = c_new;
            dth = dth + th_acc.mul_scalar(DT);
            if keep_states {
                visited.push(Tensor::cat(
                    vec![x.clone(), dx.clone(), c.clone(), sn.clone(), dth.clone()],
                    1,
                ));
            }
        }
        Ok(Rollout {
            cost: reward.neg().reshape([b]),
            states: keep_states.then(|| Tensor::stack(visited, 1)),
        })
    }
}
