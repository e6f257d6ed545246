//! The [`Agent`] trait: something that acts in an [`Env`](crate::env::Env) and learns from it.

use burn::tensor::Device;

use crate::error::Result;
use crate::model::Model;
use crate::nn::{tensor_from_f64, to_f64_vec};
use crate::planner::Planner;

/// One environment transition, as an agent observes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Observation before the action.
    pub obs: Vec<f64>,
    /// The action taken.
    pub action: Vec<f64>,
    /// Reward received.
    pub reward: f64,
    /// Observation after the action.
    pub next_obs: Vec<f64>,
    /// The episode ended inside the task.
    pub terminated: bool,
    /// The episode was cut from outside (time limit).
    pub truncated: bool,
}

/// Named scalar metrics from an update, e.g. `("loss/model", 0.3)`. Names are stable so that
/// metrics files stay comparable between runs.
pub type Metrics = Vec<(&'static str, f64)>;

// ANCHOR: agent
/// An agent: a policy that acts, observes what happened, and updates itself.
///
/// A PlaNet-style agent plans with a [`Planner`](crate::planner::Planner) on a learned
/// [`Model`](crate::model::Model); a PPO agent samples from a policy. Checkpointing is a
/// separate concern and not part of this trait.
pub trait Agent {
    /// Chooses an action for the observation.
    fn act(&mut self, obs: &[f64]) -> Result<Vec<f64>>;

    /// Records a transition (into a replay buffer or a rollout).
    fn observe(&mut self, transition: &Transition) -> Result<()>;

    /// Learns from what was observed; returns the metrics of the update (empty if none ran).
    fn update(&mut self) -> Result<Metrics>;

    /// Called when an episode starts, before the first `act` (clears warm starts and hidden
    /// states); `mode` says whether the episode trains (exploration, `observe` and `update`),
    /// seeds (the seeding policy, `observe`, no `update`) or evaluates (no exploration noise,
    /// nothing observed).
    fn reset(&mut self, mode: Mode) {
        let _ = mode;
    }

    /// Called once a training episode is over, after the update of its last step (an episode
    /// replay buffer stores the finished episode here).
    fn end_episode(&mut self) -> Result<()> {
        Ok(())
    }
}
// ANCHOR_END: agent

// ANCHOR: mode
/// What an episode is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Acting to learn: exploration on, every transition observed, `update` after every step.
    Train,
    /// Acting to be measured: no exploration, nothing observed or learned.
    Eval,
    /// Acting to fill the replay buffer before learning (PlaNet's seed episodes): the agent's
    /// seeding policy (uniformly random actions for the planet agent; an agent without one acts
    /// as in `Train`), every transition observed, no `update`.
    Seed,
}

impl Mode {
    /// Whether the episode's transitions go to [`Agent::observe`] (`Train` and `Seed`).
    pub fn observes(self) -> bool {
        self != Mode::Eval
    }
}
// ANCHOR_END: mode

/// Model-predictive control with a known model: every step the planner plans from the
/// observation (taken as the model's state) and the agent executes the plan's first action;
/// the next solve is warm-started by the planner. It learns nothing (`observe` and `update` do
/// nothing). With `SwingupModel` this is the true-dynamics bound of the swing-up; with a
/// user's [`Model`] it is the shortest way from a model to an agent.
pub struct MpcAgent {
    model: Box<dyn Model>,
    planner: Box<dyn Planner>,
    device: Device,
}

impl MpcAgent {
    /// Plans with `planner` on `model`, with the observations put on `device`.
    pub fn new(model: Box<dyn Model>, planner: Box<dyn Planner>, device: Device) -> Self {
        Self {
            model,
            planner,
            device,
        }
    }

    /// The planner.
    pub fn planner(&self) -> &dyn Planner {
        self.planner.as_ref()
    }

    /// The first actions for many states in one planning call: `obs` holds `n` states
    /// row-major (`n * state_dim` values), the result `n` actions row-major. Each row keeps
    /// its own warm start while `n` stays the same; a GPU pays off here, where one call plans
    /// a whole [`VecEnv`](crate::env::VecEnv) ([`crate::runner::evaluate_batched`]).
    pub fn act_batch(&mut self, obs: &[f64]) -> Result<Vec<f64>> {
        let dim = self.model.state_dim();
        if obs.is_empty() || !obs.len().is_multiple_of(dim) {
            return Err(crate::Error::shape(
                "MpcAgent::act_batch observations (states, row-major)",
                format!("a positive multiple of {dim} values"),
                obs.len(),
            ));
        }
        let states = tensor_from_f64(obs, [obs.len() / dim, dim], &self.device)?;
        let plan = self.planner.plan(self.model.as_ref(), states)?;
        to_f64_vec(plan.first_action())
    }
}

impl Agent for MpcAgent {
    fn act(&mut self, obs: &[f64]) -> Result<Vec<f64>> {
        let dim = self.model.state_dim();
        if obs.len() != dim {
            return Err(crate::Error::shape(
                "MpcAgent observation (the model's state)",
                format!("{dim} values"),
                obs.len(),
            ));
        }
        let state = tensor_from_f64(obs, [1, dim], &self.device)?;
        let plan = self.planner.plan(self.model.as_ref(), state)?;
        to_f64_vec(plan.first_action())
    }

    fn observe(&mut self, _transition: &Transition) -> Result<()> {
        Ok(())
    }

    fn update(&mut self) -> Result<Metrics> {
        Ok(Vec::new())
    }

    fn reset(&mut self, _mode: Mode) {
        self.planner.reset();
    }
}
