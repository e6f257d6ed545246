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
    spaces_in_fields!();

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
    fn max_episode_steps(&self) -> Option<usize> {
        Some(self.config.episode_steps)
    }
}

/// The swing-up's dynamics and cost on burn tensors: a batched, differentiable [`Model`].
///
/// Actions are in env units ([-1, 1], clamped, scaled to +-100 N); the cost of a sequence is
/// minus the sum of the per-step rewards, each on the state before its action (paper sect. 5.2.1).
/// Equal to [`CartpoleSwingup`] step for step. On the CPU, costs without visited states come
/// from a fused host rollout whose gradient is the adjoint recursion
/// ([`swingup_rollout_adjoint`]); elsewhere, and with `keep_states`, the rollout is tensor
/// operations ([`SwingupModel::rollout_ops`]). Both have the same values and first derivatives.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwingupModel;

impl SwingupModel {
    /// The rollout as tensor operations (any device, any float dtype, visited states on request).
    /// [`Model::rollout`] uses it except on the CPU without `keep_states`, where it takes the
    /// fused host rollout ([`swingup_rollout_adjoint`]); both give the same costs and gradients.
    pub fn rollout_ops(
        &self,
        states: Tensor<2>,
        actions: Tensor<3>,
        keep_states: bool,
    ) -> Result<Rollout> {
        let [b, sd] = states.dims();
        let [ba, h, ad] = actions.dims();
        check_shapes([b, sd], [ba, h, ad])?;
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

    /// The fused rollout: costs and their gradients computed on the host, put back on the tape
    /// as `cost + <actions - actions', dC/du> + <states - states', dC/ds>` (primes: detached
    /// copies), which has the cost's value and first derivatives.
    fn rollout_fused(&self, states: Tensor<2>, actions: Tensor<3>) -> Result<Rollout> {
        let [b, _] = states.dims();
        let [_, h, _] = actions.dims();
        let device = states.device();
        let s_host = dcem::nn::to_f64_vec(states.clone())?;
        let a_host = dcem::nn::to_f64_vec(actions.clone())?;
        let out = swingup_rollout_adjoint(&s_host, &a_host, h)?;
        let mut cost = dcem::nn::tensor_from_f64(&out.cost, [b], &device)?;
        if device.is_autodiff() {
            let g_a = dcem::nn::tensor_from_f64(&out.grad_actions, [b, h, 1], &device)?;
            let g_s = dcem::nn::tensor_from_f64(&out.grad_states, [b, 5], &device)?;
            let da = (actions.clone() - actions.detach()) * g_a;
            let ds = (states.clone() - states.detach()) * g_s;
            cost = cost + da.reshape([b, h]).sum_dim(1).reshape([b]) + ds.sum_dim(1).reshape([b]);
        }
        Ok(Rollout { cost, states: None })
    }
}

fn check_shapes(states: [usize; 2], actions: [usize; 3]) -> Result<()> {
    let ([b, sd], [ba, _, ad]) = (states, actions);
    if sd != 5 || ad != 1 || ba != b {
        return Err(Error::shape(
            "SwingupModel::rollout",
            "states [B, 5] and actions [B, H, 1]",
            (states, actions),
        ));
    }
    Ok(())
}

impl Model for SwingupModel {
    fn state_dim(&self) -> usize {
        5
    }

    fn action_dim(&self) -> usize {
        1
    }

    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        check_shapes(states.dims(), actions.dims())?;
        if !keep_states && states.device().without_autodiff() == burn::tensor::Device::flex() {
            self.rollout_fused(states, actions)
        } else {
            self.rollout_ops(states, actions, keep_states)
        }
    }
}

/// Costs of a batch of swing-up rollouts and their gradients, from [`swingup_rollout_adjoint`].
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutGradients {
    /// Cost of each sequence `[B]`.
    pub cost: Vec<f64>,
    /// `d cost_b / d actions_b` `[B, H]` (env units; zero where the action was clamped).
    pub grad_actions: Vec<f64>,
    /// `d cost_b / d states_b` `[B, 5]`.
    pub grad_states: Vec<f64>,
}

/// Rolls out `actions` (`[B, H]` row-major, env units) from `states` (`[B, 5]`) on the host and
/// returns each sequence's cost (as [`SwingupModel`]) with its gradient with respect to the
/// actions and the start state, by the adjoint (reverse-mode) recursion through the Euler steps.
/// Rows run in parallel for large batches.
pub fn swingup_rollout_adjoint(
    states: &[f64],
    actions: &[f64],
    h: usize,
) -> Result<RolloutGradients> {
    if !states.len().is_multiple_of(5) || h == 0 || actions.len() != states.len() / 5 * h {
        return Err(Error::shape(
            "swingup_rollout_adjoint",
            "states of B * 5 values and actions of B * H values",
            (states.len(), actions.len(), h),
        ));
    }
    let b = states.len() / 5;
    let mut out = RolloutGradients {
        cost: vec![0.0; b],
        grad_actions: vec![0.0; b * h],
        grad_states: vec![0.0; b * 5],
    };
    let row = |i: usize, cost: &mut f64, ga: &mut [f64], gs: &mut [f64]| {
        let s0: [f64; 5] = std::array::from_fn(|k| states[i * 5 + k]);
        let (c, g_s) = adjoint_row(s0, &actions[i * h..(i + 1) * h], ga);
        *cost = c;
        gs.copy_from_slice(&g_s);
    };
    use rayon::prelude::*;
    const PARALLEL_ROWS: usize = 256;
    if b >= PARALLEL_ROWS {
        out.cost
            .par_iter_mut()
            .zip(out.grad_actions.par_chunks_mut(h))
            .zip(out.grad_states.par_chunks_mut(5))
            .enumerate()
            .with_min_len(64)
            .for_each(|(i, ((c, ga), gs))| row(i, c, ga, gs));
    } else {
        for (i, ((c, ga), gs)) in out
            .cost
            .iter_mut()
            .zip(out.grad_actions.chunks_mut(h))
            .zip(out.grad_states.chunks_mut(5))
            .enumerate()
        {
            row(i, c, ga, gs);
        }
    }
    Ok(out)
}

/// One row: the forward rollout keeping every state, then the adjoint sweep. Writes
/// `d cost / d action_t` into `grad_actions` and returns the cost and `d cost / d state_0`.
fn adjoint_row(s0: [f64; 5], actions: &[f64], grad_actions: &mut [f64]) -> (f64, [f64; 5]) {
    let h = actions.len();
    let mut traj = Vec::with_capacity(h + 1);
    traj.push(s0);
    let mut reward = 0.0;
    for &a in actions {
        let s = *traj.last().expect("non-empty");
        let u = a.clamp(-1.0, 1.0) * FORCE_MAX;
        reward += swingup_reward(s, u);
        traj.push(swingup_dynamics(s, u));
    }
    let m = total_mass();
    let pml = POLE_MASS * POLE_LENGTH;
    // lam = d cost / d s_{t+1}; zero after the last step (the cost has no terminal term).
    let mut lam = [0.0f64; 5];
    for t in (0..h).rev() {
        let [x, _dx, c, sn, dth] = traj[t];
        let [_, _, c1, sn1, _] = traj[t + 1];
        let a = actions[t];
        let u = a.clamp(-1.0, 1.0) * FORCE_MAX;
        // Recompute the step's intermediates.
        let temp = (u + pml * dth * dth * sn) / m;
        let den = POLE_LENGTH * (4.0 / 3.0 - POLE_MASS * c * c / m);
        let tha = (GRAVITY * sn - c * temp) / den;
        let (sd, cd) = (DT * dth).sin_cos();
        let [l_x, l_dx, l_c, l_sn, l_dth] = lam;
        // Through x_acc = temp - (pml / m) tha c and th_acc.
        let g_xa = l_dx * DT;
        let g_tha = l_dth * DT - g_xa * pml / m * c;
        let mut g_temp = g_xa;
        let mut g_c = -g_xa * pml / m * tha;
        let mut g_sn = 0.0;
        let mut g_dth = 0.0;
        // th_acc = num / den.
        let g_num = g_tha / den;
        let g_den = -g_tha * tha / den;
        g_sn += GRAVITY * g_num;
        g_c += -temp * g_num;
        g_temp += -c * g_num;
        g_c += g_den * POLE_LENGTH * (-2.0 * POLE_MASS / m * c);
        // temp = (u + pml dth^2 sn) / m.
        let g_u_dyn = g_temp / m;
        g_dth += g_temp / m * pml * 2.0 * dth * sn;
        g_sn += g_temp / m * pml * dth * dth;
        // The rotation of (cos th, sin th) by dt * th'.
        let g_ang = -l_c * sn1 + l_sn * c1;
        g_dth += g_ang * DT;
        // The step's cost term -(cos th - 0.1 x^2 - 1e-5 u^2).
        let g_u = g_u_dyn + 2e-5 * u;
        grad_actions[t] = if (-1.0..=1.0).contains(&a) {
            g_u * FORCE_MAX
        } else {
            0.0
        };
        lam = [
            l_x + 0.2 * x,
            l_x * DT + l_dx,
            l_c * cd + l_sn * sd + g_c - 1.0,
            -l_c * sd + l_sn * cd + g_sn,
            l_dth + g_dth,
        ];
    }
    (-reward, lam)
}
