//! The [`Agent`] trait: something that acts in an [`Env`](crate::env::Env) and learns from it.

use crate::error::Result;

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

    /// Called when an episode starts, before the first `act` (clears warm starts, hidden states).
    fn reset(&mut self) {}
}
