//! Environments around an environment: [`RecordEpisodes`], [`TimeLimit`], [`ActionRepeat`]
//! and [`RescaleAction`] (Gymnasium's wrappers of the same names).

use super::environment::{Env, Step};
use super::space::{BoxSpace, Space};
use crate::error::{Error, Result};

/// Methods of a wrapper's `Env` impl that pass straight through to the wrapped `self.env`,
/// written once: `pass_through!(observation_space, action_space, ...)`.
macro_rules! pass_through {
    (observation_space) => {
        fn observation_space(&self) -> &Space {
            self.env.observation_space()
        }
    };
    (action_space) => {
        fn action_space(&self) -> &Space {
            self.env.action_space()
        }
    };
    (reset) => {
        fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
            self.env.reset(seed)
        }
    };
    (step_cost_hint_ns) => {
        fn step_cost_hint_ns(&self) -> u64 {
            self.env.step_cost_hint_ns()
        }
    };
    (substeps) => {
        fn substeps(&self) -> usize {
            self.env.substeps()
        }
    };
    (max_episode_steps) => {
        fn max_episode_steps(&self) -> Option<usize> {
            self.env.max_episode_steps()
        }
    };
    ($($method:ident),+) => {
        $(pass_through!($method);)+
    };
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
    pass_through!(
        observation_space,
        action_space,
        step_cost_hint_ns,
        substeps,
        max_episode_steps
    );
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
    pass_through!(observation_space, action_space, step_cost_hint_ns, substeps);
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
    pass_through!(observation_space, action_space, reset);
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
    pass_through!(
        observation_space,
        reset,
        step_cost_hint_ns,
        substeps,
        max_episode_steps
    );
    fn action_space(&self) -> &Space {
        &self.space
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
}
