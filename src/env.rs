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

    /// How many steps of the innermost environment the last `step` took: 1 for a plain
    /// environment; an action-repeat wrapper returns the steps it repeated (fewer than its
    /// repeat when the episode ended inside it). The episode runner counts environment steps
    /// with it.
    fn substeps(&self) -> usize {
        1
    }

    /// The most steps an episode lasts (Gymnasium's `spec.max_episode_steps`), where the
    /// environment has a limit: `TimeLimit` sets it, an action-repeat wrapper counts it in its
    /// own steps. Agents size what depends on the episode length (training chunks) from it
    /// rather than from a config's env kind. Default: no limit known.
    fn max_episode_steps(&self) -> Option<usize> {
        None
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
    fn substeps(&self) -> usize {
        (**self).substeps()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        (**self).max_episode_steps()
    }
}

impl<E: Env + ?Sized> Env for &mut E {
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
    fn substeps(&self) -> usize {
        (**self).substeps()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        (**self).max_episode_steps()
    }
}

/// One recorded episode: the observations (the first and one after every step), the actions
/// taken and the rewards received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordedEpisode {
    /// `steps + 1` observations.
    pub obs: Vec<Vec<f64>>,
    /// `steps` actions.
    pub actions: Vec<Vec<f64>>,
    /// `steps` rewards.
    pub rewards: Vec<f64>,
}

/// Records every episode that runs through it (Gymnasium's `RecordEpisodeStatistics`, with the
/// whole trajectory): for diagnostics on episodes an agent never trained on.
#[derive(Debug)]
pub struct RecordEpisodes<E> {
    env: E,
    episodes: Vec<RecordedEpisode>,
}

impl<E: Env> RecordEpisodes<E> {
    /// Wraps `env`.
    pub fn new(env: E) -> Self {
        Self {
            env,
            episodes: Vec::new(),
        }
    }

    /// The episodes so far (the last one possibly unfinished).
    pub fn episodes(&self) -> &[RecordedEpisode] {
        &self.episodes
    }

    /// Hands the recorded episodes over, forgetting them.
    pub fn take(&mut self) -> Vec<RecordedEpisode> {
        std::mem::take(&mut self.episodes)
    }
}

impl<E: Env> Env for RecordEpisodes<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        let obs = self.env.reset(seed)?;
        self.episodes.push(RecordedEpisode {
            obs: vec![obs.clone()],
            ..RecordedEpisode::default()
        });
        Ok(obs)
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        let step = self.env.step(action)?;
        if let Some(ep) = self.episodes.last_mut() {
            ep.obs.push(step.obs.clone());
            ep.actions.push(action.to_vec());
            ep.rewards.push(step.reward);
        }
        Ok(step)
    }
    fn step_cost_hint_ns(&self) -> u64 {
        self.env.step_cost_hint_ns()
    }
    fn substeps(&self) -> usize {
        self.env.substeps()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        self.env.max_episode_steps()
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
    fn substeps(&self) -> usize {
        self.env.substeps()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        Some(
            self.env
                .max_episode_steps()
                .map_or(self.max_steps, |n| n.min(self.max_steps)),
        )
    }
}

/// Repeats each action `repeat` times, summing the rewards (PlaNet's action repeat).
/// Stops early when the episode ends inside the repeat.
#[derive(Debug)]
pub struct ActionRepeat<E> {
    env: E,
    repeat: usize,
    substeps: usize,
}

impl<E: Env> ActionRepeat<E> {
    /// Wraps `env`; `repeat` must be at least 1.
    pub fn new(env: E, repeat: usize) -> Result<Self> {
        if repeat == 0 {
            return Err(Error::option("action_repeat", "must be at least 1"));
        }
        Ok(Self {
            env,
            repeat,
            substeps: 0,
        })
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
    fn substeps(&self) -> usize {
        self.substeps
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        let mut total = 0.0;
        let mut last = None;
        self.substeps = 0;
        for _ in 0..self.repeat {
            let step = self.env.step(action)?;
            self.substeps += self.env.substeps();
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
    fn max_episode_steps(&self) -> Option<usize> {
        self.env
            .max_episode_steps()
            .map(|n| n.div_ceil(self.repeat))
    }
}

/// Lets an agent act in `[-1, 1]` on every axis of a bounded box action space (Gymnasium's
/// `RescaleAction` onto `[-1, 1]`): an action `x` is clipped to `[-1, 1]` and mapped affinely
/// onto the wrapped environment's `[low, high]`. Planners and policies that work in normalised
/// units act through it.
#[derive(Debug)]
pub struct RescaleAction<E> {
    env: E,
    space: Space,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl<E: Env> RescaleAction<E> {
    /// Wraps `env`, whose action space must be a box with finite bounds.
    pub fn new(env: E) -> Result<Self> {
        let Space::Box(b) = env.action_space() else {
            return Err(Error::option(
                "action_space",
                "RescaleAction needs a continuous (Box) action space",
            ));
        };
        if !b.low().iter().chain(b.high()).all(|v| v.is_finite()) {
            return Err(Error::option(
                "action_space",
                format!(
                    "RescaleAction needs finite action bounds, got {:?} .. {:?}",
                    b.low(),
                    b.high()
                ),
            ));
        }
        let (low, high) = (b.low().to_vec(), b.high().to_vec());
        let space = Space::Box(BoxSpace::uniform(low.len(), -1.0, 1.0)?);
        Ok(Self {
            env,
            space,
            low,
            high,
        })
    }

    /// The wrapped environment's action for a normalised one.
    pub fn to_env(&self, action: &[f64]) -> Vec<f64> {
        action
            .iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(x, (l, h))| l + 0.5 * (x.clamp(-1.0, 1.0) + 1.0) * (h - l))
            .collect()
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for RescaleAction<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }
    fn action_space(&self) -> &Space {
        &self.space
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.env.reset(seed)
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        if action.len() != self.low.len() {
            return Err(Error::shape(
                "RescaleAction::step action",
                format!("{} values", self.low.len()),
                action.len(),
            ));
        }
        if action.iter().any(|v| v.is_nan()) {
            return Err(Error::Data(format!("the action {action:?} holds NaN")));
        }
        self.env.step(&self.to_env(action))
    }
    fn step_cost_hint_ns(&self) -> u64 {
        self.env.step_cost_hint_ns()
    }
    fn substeps(&self) -> usize {
        self.env.substeps()
    }
    fn max_episode_steps(&self) -> Option<usize> {
        self.env.max_episode_steps()
    }
}

mod vec_env;
pub use vec_env::{Autoreset, VecEnv, VecEnvState, VecStep};
