//! Environments: the [`Env`] trait, its spaces and [`Step`], the wrappers [`TimeLimit`] and
//! [`ActionRepeat`], and a rayon-parallel [`VecEnv`].
//!
//! The API mirrors Gymnasium 1.x so that Python bindings stay thin: `reset(seed)` returns the
//! first observation, `step(action)` returns observation, reward, `terminated` (the task ended,
//! e.g. the pole fell) and `truncated` (the episode was cut, e.g. by a time limit).
//! Observations and actions are flat `f64` vectors; their [`Space`]s give shape and bounds.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// A box in R^n: per-coordinate lower and upper bounds and a shape (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct BoxSpace {
    low: Vec<f64>,
    high: Vec<f64>,
    shape: Vec<usize>,
}

impl BoxSpace {
    /// A box with the given bounds and shape. Bounds may be infinite but not NaN, and
    /// `low <= high` must hold everywhere; the product of `shape` must equal the bounds' length.
    pub fn new(low: Vec<f64>, high: Vec<f64>, shape: Vec<usize>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if low.len() != n || high.len() != n {
            return Err(Error::shape(
                "BoxSpace bounds",
                format!("{n} values for shape {shape:?}"),
                (low.len(), high.len()),
            ));
        }
        for (i, (l, h)) in low.iter().zip(&high).enumerate() {
            if l.is_nan() || h.is_nan() || l > h {
                return Err(Error::option(
                    "BoxSpace",
                    format!("bound {i} is [{l}, {h}]: bounds must be ordered and not NaN"),
                ));
            }
        }
        Ok(Self { low, high, shape })
    }

    /// A flat box of `dim` coordinates, all in `[low, high]`.
    pub fn uniform(dim: usize, low: f64, high: f64) -> Result<Self> {
        Self::new(vec![low; dim], vec![high; dim], vec![dim])
    }

    /// Lower bounds, one per coordinate.
    pub fn low(&self) -> &[f64] {
        &self.low
    }

    /// Upper bounds, one per coordinate.
    pub fn high(&self) -> &[f64] {
        &self.high
    }

    /// The shape (its product is [`BoxSpace::dim`]).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of coordinates.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// Whether `x` has the right length and lies inside the box (NaN is never inside).
    pub fn contains(&self, x: &[f64]) -> bool {
        x.len() == self.dim()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (l, h))| *v >= *l && *v <= *h)
    }

    /// Checks an action against the box: right length, no NaN, inside the bounds.
    /// `what` names the caller in the error.
    pub fn check(&self, x: &[f64], what: &str) -> Result<()> {
        if x.len() != self.dim() {
            return Err(Error::InvalidAction(format!(
                "{what}: expected {} values, got {}",
                self.dim(),
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| v.is_nan()) {
            return Err(Error::InvalidAction(format!("{what}: value {i} is NaN")));
        }
        if !self.contains(x) {
            return Err(Error::InvalidAction(format!(
                "{what}: {x:?} is outside [{:?}, {:?}]",
                self.low, self.high
            )));
        }
        Ok(())
    }

    /// `x` clipped into the box coordinate by coordinate (NaN stays NaN).
    pub fn clip(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(v, (l, h))| v.max(*l).min(*h))
            .collect()
    }
}

/// The space of observations or actions.
#[derive(Clone, Debug, PartialEq)]
pub enum Space {
    /// A continuous box.
    Box(BoxSpace),
    /// `n` discrete choices `0..n`, passed as a single `f64` holding the index.
    Discrete(usize),
}

impl Space {
    /// Length of the flat vector that holds one element of the space.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Box(b) => b.dim(),
            Space::Discrete(_) => 1,
        }
    }

    /// Whether `x` is an element of the space.
    pub fn contains(&self, x: &[f64]) -> bool {
        match self {
            Space::Box(b) => b.contains(x),
            Space::Discrete(n) => {
                x.len() == 1 && x[0] >= 0.0 && x[0].fract() == 0.0 && x[0] < *n as f64
            }
        }
    }
}

/// What one environment step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The observation after the step (a fresh vector each step).
    pub obs: Vec<f64>,
    /// The reward for the transition.
    pub reward: f64,
    /// The episode ended inside the task (a terminal state): do not bootstrap.
    pub terminated: bool,
    /// The episode was cut from outside the task (e.g. a time limit): bootstrap.
    pub truncated: bool,
}

impl Step {
    /// Whether the episode is over for either reason.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A Gymnasium-style environment.
///
/// Seeding: `reset(Some(seed))` reseeds the environment's own generator; `reset(None)` continues
/// its random stream, so a run seeded once is reproducible. Environments never use a thread-local
/// generator.
pub trait Env: Send {
    /// The space observations live in.
    fn observation_space(&self) -> &Space;

    /// The space of valid actions.
    fn action_space(&self) -> &Space;

    /// Starts a new episode and returns its first observation.
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>>;

    /// Applies one action. A NaN action, or one of the wrong length, is an error; what happens
    /// to an action outside the space is documented by each environment (clipped or rejected).
    fn step(&mut self, action: &[f64]) -> Result<Step>;

    /// Roughly how long one `step` takes, in nanoseconds. Only a hint, which [`VecEnv`] uses to
    /// decide how many environments one parallel task steps: the default (100 ns) suits
    /// analytic environments; a physics simulator should return its measured cost.
    fn step_cost_hint_ns(&self) -> u64 {
        100
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        (**self).step(action)
    }
    fn step_cost_hint_ns(&self) -> u64 {
        (**self).step_cost_hint_ns()
    }
}

/// Cuts episodes after `max_steps` steps by setting `truncated` (Gymnasium's `TimeLimit`).
#[derive(Debug)]
pub struct TimeLimit<E> {
    env: E,
    max_steps: usize,
    elapsed: usize,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `env`; `max_steps` must be at least 1.
    pub fn new(env: E, max_steps: usize) -> Result<Self> {
        if max_steps == 0 {
            return Err(Error::option("max_steps", "must be at least 1"));
        }
        Ok(Self {
            env,
            max_steps,
            elapsed: 0,
        })
    }

    /// Steps taken in the current episode.
    pub fn elapsed(&self) -> usize {
        self.elapsed
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.elapsed = 0;
        self.env.reset(seed)
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        let mut step = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_steps {
            step.truncated = true;
        }
        Ok(step)
    }
    fn step_cost_hint_ns(&self) -> u64 {
        self.env.step_cost_hint_ns()
    }
}

/// Repeats each action `repeat` times, summing the rewards (PlaNet's action repeat).
/// Stops early when the episode ends inside the repeat.
#[derive(Debug)]
pub struct ActionRepeat<E> {
    env: E,
    repeat: usize,
}

impl<E: Env> ActionRepeat<E> {
    /// Wraps `env`; `repeat` must be at least 1.
    pub fn new(env: E, repeat: usize) -> Result<Self> {
        if repeat == 0 {
            return Err(Error::option("action_repeat", "must be at least 1"));
        }
        Ok(Self { env, repeat })
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for ActionRepeat<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.env.reset(seed)
    }
    fn step_cost_hint_ns(&self) -> u64 {
        self.env
            .step_cost_hint_ns()
            .saturating_mul(self.repeat as u64)
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        let mut total = 0.0;
        let mut last = None;
        for _ in 0..self.repeat {
            let step = self.env.step(action)?;
            total += step.reward;
            let done = step.done();
            last = Some(step);
            if done {
                break;
            }
        }
        // `repeat >= 1` is checked in `new`, so the loop ran at least once.
        let mut step = last.ok_or_else(|| Error::option("action_repeat", "must be at least 1"))?;
        step.reward = total;
        Ok(step)
    }
}

/// The result of stepping a [`VecEnv`]: one row per environment.
#[derive(Clone, Debug, PartialEq)]
pub struct VecStep {
    /// Observations, row-major `[n_envs, obs_dim]`.
    pub obs: Vec<f64>,
    /// Rewards, one per environment.
    pub reward: Vec<f64>,
    /// `terminated` flags, one per environment.
    pub terminated: Vec<bool>,
    /// `truncated` flags, one per environment.
    pub truncated: Vec<bool>,
}

/// Many environments stepped in parallel with rayon, with Gymnasium 1.x's default
/// "next step" autoreset: after an environment's episode ends, its next `step` call ignores the
/// action, resets it and returns the first observation of the new episode with reward 0 and
/// both flags false.
pub struct VecEnv<E> {
    envs: Vec<E>,
    needs_reset: Vec<bool>,
    started: bool,
    obs_dim: usize,
    act_dim: usize,
}

impl<E: Env> VecEnv<E> {
    /// Wraps `envs`, which must be non-empty and share observation and action sizes.
    pub fn new(envs: Vec<E>) -> Result<Self> {
        let first = envs
            .first()
            .ok_or_else(|| Error::option("n_envs", "a VecEnv needs at least one environment"))?;
        let obs_dim = first.observation_space().flat_dim();
        let act_dim = first.action_space().flat_dim();
        for (i, e) in envs.iter().enumerate() {
            if e.observation_space().flat_dim() != obs_dim || e.action_space().flat_dim() != act_dim
            {
                return Err(Error::shape(
                    "VecEnv member spaces",
                    format!("obs {obs_dim}, action {act_dim} as env 0"),
                    (
                        i,
                        e.observation_space().flat_dim(),
                        e.action_space().flat_dim(),
                    ),
                ));
            }
        }
        let n = envs.len();
        Ok(Self {
            envs,
            needs_reset: vec![false; n],
            started: false,
            obs_dim,
            act_dim,
        })
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Always false: a `VecEnv` holds at least one environment.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Length of one observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Length of one action.
    pub fn action_dim(&self) -> usize {
        self.act_dim
    }

    /// The environments.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets every environment; with `Some(seed)` environment `i` gets `seed + i`
    /// (Gymnasium's convention). Returns observations `[n_envs, obs_dim]`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        let obs: Vec<Vec<f64>> = self
            .envs
            .par_iter_mut()
            .enumerate()
            .map(|(i, e)| e.reset(seed.map(|s| s.wrapping_add(i as u64))))
            .collect::<Result<_>>()?;
        self.needs_reset.iter_mut().for_each(|r| *r = false);
        self.started = true;
        Ok(obs.concat())
    }

    /// Steps every environment with its row of `actions` (`[n_envs, action_dim]`, row-major).
    pub fn step(&mut self, actions: &[f64]) -> Result<VecStep> {
        if !self.started {
            return Err(Error::NeedsReset(
                "call VecEnv::reset before the first step".into(),
            ));
        }
        if actions.len() != self.envs.len() * self.act_dim {
            return Err(Error::shape(
                "VecEnv::step actions",
                format!("{} x {} values", self.envs.len(), self.act_dim),
                actions.len(),
            ));
        }
        let (n, act_dim, obs_dim) = (self.envs.len(), self.act_dim, self.obs_dim);
        let mut out = VecStep {
            obs: vec![0.0; n * obs_dim],
            reward: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
        };
        // Give each parallel task about 20 us of work (rayon's overhead is about 1 us a task),
        // but no more than an even share of the environments.
        let cost = self.envs[0].step_cost_hint_ns().max(1);
        let threads = rayon::current_num_threads().max(1);
        let min_len = ((20_000 / cost) as usize)
            .clamp(1, 16)
            .min(n.div_ceil(threads));
        self.envs
            .par_iter_mut()
            .zip(self.needs_reset.par_iter_mut())
            .zip(actions.par_chunks(act_dim.max(1)))
            .zip(out.obs.par_chunks_mut(obs_dim.max(1)))
            .zip(out.reward.par_iter_mut())
            .zip(out.terminated.par_iter_mut())
            .zip(out.truncated.par_iter_mut())
            .with_min_len(min_len)
            .try_for_each(
                |((((((env, needs_reset), action), obs), reward), terminated), truncated)| {
                    let step = if *needs_reset {
                        *needs_reset = false;
                        Step {
                            obs: env.reset(None)?,
                            reward: 0.0,
                            terminated: false,
                            truncated: false,
                        }
                    } else {
                        let step = env.step(action)?;
                        *needs_reset = step.done();
                        step
                    };
                    if step.obs.len() != obs.len() {
                        return Err(Error::shape(
                            "VecEnv member observation",
                            format!("{} values", obs.len()),
                            step.obs.len(),
                        ));
                    }
                    obs.copy_from_slice(&step.obs);
                    *reward = step.reward;
                    *terminated = step.terminated;
                    *truncated = step.truncated;
                    Ok(())
                },
            )?;
        Ok(out)
    }
}
