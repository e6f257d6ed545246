//! Gymnasium's `CartPole-v1`: balance a pole on a cart, with its dynamics, termination and
//! 500-step limit.
//!
//! Constants and step as Gymnasium 1.x (`gymnasium/envs/classic_control/cartpole.py`): gravity
//! 9.8, cart 1.0, pole 0.1, half length 0.5, force 10 N, tau 0.02, explicit Euler; the episode
//! terminates when `|x| > 2.4` or `|theta| > 12 degrees`; reward 1 per step including the
//! terminating one; truncation after 500 steps. The state is kept in f64 and observations are
//! the f32-rounded state (Gymnasium returns float32 arrays), so replays match exactly in f32.
//! Start state: each coordinate uniform in [-0.05, 0.05].

use dcem::env::{BoxSpace, Env, Space, Step};
use dcem::{Error, Result};
use rand::RngExt;

use crate::Episode;

const GRAVITY: f64 = 9.8;
const CART_MASS: f64 = 1.0;
const POLE_MASS: f64 = 0.1;
const LENGTH: f64 = 0.5;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const X_THRESHOLD: f64 = 2.4;
const MAX_STEPS: usize = 500;

fn theta_threshold() -> f64 {
    12.0 * 2.0 * std::f64::consts::PI / 360.0
}

/// How actions are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CartPoleAction {
    /// Gymnasium's two actions: 0 pushes left, 1 pushes right (10 N).
    Discrete,
    /// A force fraction in [-1, 1] (clipped), times 10 N.
    Continuous,
}

/// Gymnasium `CartPole-v1` as an [`Env`].
#[derive(Debug)]
pub struct CartPole {
    kind: CartPoleAction,
    state: [f64; 4],
    episode: Episode,
    obs_space: Space,
    act_space: Space,
}

impl CartPole {
    /// A cartpole with discrete or continuous actions; call [`Env::reset`] before stepping.
    pub fn new(kind: CartPoleAction) -> Result<Self> {
        let high = vec![
            X_THRESHOLD * 2.0,
            f64::from(f32::MAX),
            theta_threshold() * 2.0,
            f64::from(f32::MAX),
        ];
        let low = high.iter().map(|v| -v).collect();
        let act_space = match kind {
            CartPoleAction::Discrete => Space::Discrete(2),
            CartPoleAction::Continuous => Space::Box(BoxSpace::uniform(1, -1.0, 1.0)?),
        };
        Ok(Self {
            kind,
            state: [0.0; 4],
            episode: Episode::new(),
            obs_space: Space::Box(BoxSpace::new(low, high, vec![4])?),
            act_space,
        })
    }

    /// The current state `(x, x', theta, theta')` in f64.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Starts an episode from a given state (for replays of recorded episodes).
    pub fn reset_to(&mut self, state: [f64; 4]) -> Result<Vec<f64>> {
        self.episode.start(&state)?;
        self.state = state;
        Ok(self.obs())
    }

    fn obs(&self) -> Vec<f64> {
        self.state.iter().map(|v| f64::from(*v as f32)).collect()
    }

    fn force(&self, action: &[f64]) -> Result<f64> {
        match self.kind {
            CartPoleAction::Discrete => match action[0] {
                0.0 => Ok(-FORCE_MAG),
                1.0 => Ok(FORCE_MAG),
                a => Err(Error::InvalidAction(format!(
                    "CartPole: discrete action must be 0 or 1, got {a}"
                ))),
            },
            CartPoleAction::Continuous => Ok(FORCE_MAG * action[0].clamp(-1.0, 1.0)),
        }
    }
}

impl Env for CartPole {
    spaces_in_fields!();

    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.episode.reseed(seed);
        let state = [(); 4].map(|_| self.episode.rng.random_range(-0.05..0.05));
        self.reset_to(state)
    }

    fn step(&mut self, action: &[f64]) -> Result<Step> {
        self.episode
            .check_step(&self.act_space, action, "CartPole")?;
        let force = self.force(action)?;
        let [x, x_dot, theta, theta_dot] = self.state;
        let (sintheta, costheta) = (theta.sin(), theta.cos());
        let total_mass = POLE_MASS + CART_MASS;
        let polemass_length = POLE_MASS * LENGTH;
        // The same expressions, in the same order, as Gymnasium's step.
        let temp = (force + polemass_length * theta_dot.powi(2) * sintheta) / total_mass;
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (LENGTH * (4.0 / 3.0 - POLE_MASS * costheta.powi(2) / total_mass));
        let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
        self.state = [
            x + TAU * x_dot,
            x_dot + TAU * xacc,
            theta + TAU * theta_dot,
            theta_dot + TAU * thetaacc,
        ];
        let [x, _, theta, _] = self.state;
        let theta_max = theta_threshold();
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
            || !(-theta_max..=theta_max).contains(&theta);
        let truncated = self.episode.finish_step(terminated, MAX_STEPS);
        Ok(Step {
            obs: self.obs(),
            reward: 1.0,
            terminated,
            truncated,
        })
    }
    fn max_episode_steps(&self) -> Option<usize> {
        Some(MAX_STEPS)
    }
}
