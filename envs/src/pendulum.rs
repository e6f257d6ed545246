//! Gymnasium's `Pendulum-v1`: swing a pendulum up and hold it, with its dynamics, reward and
//! 200-step limit.
//!
//! As Gymnasium 1.x (`gymnasium/envs/classic_control/pendulum.py`): g = 10, m = 1, l = 1,
//! dt 0.05, torque clipped to [-2, 2], angular speed clipped to [-8, 8], semi-implicit Euler;
//! reward `-(angle_normalize(th)^2 + 0.1 th'^2 + 0.001 u^2)`; observation `(cos th, sin th, th')`
//! rounded to f32. Gymnasium's action is a float32 array, so the torque terms are computed in
//! f32 as numpy does. Start state: `th ~ U(-pi, pi)`, `th' ~ U(-1, 1)`. Never terminates.

use dcem::Result;
use dcem::env::{BoxSpace, Env, Space, Step};
use rand::RngExt;

use crate::Episode;

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f64 = 2.0;
const DT: f64 = 0.05;
const M: f64 = 1.0;
const L: f64 = 1.0;
const MAX_STEPS: usize = 200;

/// `x` wrapped into [-pi, pi) the way Gymnasium does (Python's floored modulo).
fn angle_normalize(x: f64) -> f64 {
    let two_pi = 2.0 * std::f64::consts::PI;
    (x + std::f64::consts::PI).rem_euclid(two_pi) - std::f64::consts::PI
}

/// Gymnasium `Pendulum-v1` as an [`Env`]. Torques outside [-2, 2] are clipped.
#[derive(Debug)]
pub struct Pendulum {
    state: [f64; 2],
    g: f64,
    episode: Episode,
    obs_space: Space,
    act_space: Space,
}

impl Pendulum {
    /// Gymnasium's default gravity (its `g=` argument).
    pub const DEFAULT_GRAVITY: f64 = 10.0;

    /// A pendulum with Gymnasium's gravity (10); call [`Env::reset`] before stepping.
    pub fn new() -> Result<Self> {
        Self::with_gravity(Self::DEFAULT_GRAVITY)
    }

    /// A pendulum with gravity `g` (Gymnasium's `Pendulum-v1(g=...)`); `g` must be finite.
    pub fn with_gravity(g: f64) -> Result<Self> {
        if !g.is_finite() {
            return Err(dcem::Error::option(
                "g",
                format!("gravity must be a finite number, got {g}"),
            ));
        }
        Ok(Self {
            state: [0.0; 2],
            g,
            episode: Episode::new(),
            obs_space: Space::Box(BoxSpace::new(
                vec![-1.0, -1.0, -MAX_SPEED],
                vec![1.0, 1.0, MAX_SPEED],
                vec![3],
            )?),
            act_space: Space::Box(BoxSpace::uniform(1, -MAX_TORQUE, MAX_TORQUE)?),
        })
    }

    /// The current state `(th, th')` in f64.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Starts an episode from a given state (for replays of recorded episodes).
    pub fn reset_to(&mut self, state: [f64; 2]) -> Result<Vec<f64>> {
        self.episode.start(&state)?;
        self.state = state;
        Ok(self.obs())
    }

    fn obs(&self) -> Vec<f64> {
        let [th, thdot] = self.state;
        [th.cos(), th.sin(), thdot]
            .iter()
            .map(|v| f64::from(*v as f32))
            .collect()
    }
}

impl Env for Pendulum {
    spaces_in_fields!();

    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.episode.reseed(seed);
        let th = self
            .episode
            .rng
            .random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let thdot = self.episode.rng.random_range(-1.0..1.0);
        self.reset_to([th, thdot])
    }

    fn step(&mut self, action: &[f64]) -> Result<Step> {
        self.episode
            .check_step(&self.act_space, action, "Pendulum")?;
        let [th, thdot] = self.state;
        // numpy: u is float32; `u**2` and the Python-float products with u stay float32.
        let u = (action[0] as f32).clamp(-MAX_TORQUE as f32, MAX_TORQUE as f32);
        let u_cost = f64::from(0.001f32 * (u * u));
        let u_torque = f64::from((3.0 / (M * L * L)) as f32 * u);
        let costs = angle_normalize(th).powi(2) + 0.1 * thdot.powi(2) + u_cost;
        let newthdot = (thdot + (3.0 * self.g / (2.0 * L) * th.sin() + u_torque) * DT)
            .clamp(-MAX_SPEED, MAX_SPEED);
        let newth = th + newthdot * DT;
        self.state = [newth, newthdot];
        let truncated = self.episode.finish_step(false, MAX_STEPS);
        Ok(Step {
            obs: self.obs(),
            reward: -costs,
            terminated: false,
            truncated,
        })
    }
    fn max_episode_steps(&self) -> Option<usize> {
        Some(MAX_STEPS)
    }
}
