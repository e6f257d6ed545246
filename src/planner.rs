//! The [`Planner`] trait and the model-predictive-control warm start.

use burn::tensor::{Tensor, s};
use rand::rngs::ChaCha8Rng;

use crate::error::Result;
use crate::model::Model;

/// Diagnostics of one planning call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanDiagnostics {
    /// Predicted cost of the returned plan per batch row (lower is better), when known.
    pub cost: Vec<f64>,
    /// Optimiser iterations run per batch row.
    pub iterations: Vec<usize>,
    /// Non-finite costs met (and ranked last) while planning.
    pub non_finite: usize,
    /// Sequences (or latent points) evaluated per batch row, when known (0: not counted).
    pub evaluations: Vec<usize>,
}

/// A plan: an action sequence per batch row.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Planned actions `[batch, horizon, action_dim]`; on the autodiff tape when the planner was
    /// differentiable and its inputs were tracked.
    pub actions: Tensor<3>,
    /// The solution in the planner's search space `[batch, latent_dim]`, for planners that search
    /// a latent space (on the tape like `actions`); `None` for full-space planners.
    pub latent: Option<Tensor<2>>,
    /// What the planner reports about the solve.
    pub diagnostics: PlanDiagnostics,
}

impl Plan {
    /// The first action of each row, `[batch, action_dim]`: what model-predictive control executes.
    pub fn first_action(&self) -> Tensor<2> {
        let [b, _, a] = self.actions.dims();
        self.actions.clone().slice(s![.., 0..1, ..]).reshape([b, a])
    }
}

// ANCHOR: planner
/// Solves "which action sequence minimises the model's cost from these states".
pub trait Planner {
    /// Plans from `states` (`[batch, state_dim]`) under `model`.
    fn plan(&mut self, model: &dyn Model, states: Tensor<2>) -> Result<Plan>;

    /// Forgets warm-start state between episodes.
    fn reset(&mut self);

    /// The planner's learnable parameters (a latent planner's decoder), in a fixed order; empty
    /// for planners with none. A training loop that learns them elsewhere (on the autodiff
    /// device) hands them back through [`Planner::set_params`].
    fn params(&self) -> Vec<Tensor<2>> {
        Vec::new()
    }

    /// Replaces the learnable parameters (as many, of the same shapes, as [`Planner::params`]
    /// returns).
    fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        no_params("Planner::set_params", &params)
    }

    /// The planner's sampling-noise generator, for checkpoints (`None`: it draws none).
    fn rng_state(&self) -> Option<&ChaCha8Rng> {
        None
    }

    /// Restores the sampling noise from a checkpoint.
    fn set_rng_state(&mut self, rng: ChaCha8Rng) {
        let _ = rng;
    }
}
// ANCHOR_END: planner

/// The default `set_params` of something that learns nothing: only an empty list is accepted.
pub(crate) fn no_params(what: &'static str, params: &[Tensor<2>]) -> Result<()> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(crate::Error::shape(
            what,
            "no parameters (this learns nothing)",
            params.len(),
        ))
    }
}

/// The MPC warm start: the previous plan moved one step earlier, its last step filled with
/// `fill` (PlaNet and the DCEM reference start the next solve from this).
pub fn shift_plan(actions: Tensor<3>, fill: f64) -> Tensor<3> {
    let [b, h, a] = actions.dims();
    if h <= 1 {
        return actions.zeros_like().add_scalar(fill);
    }
    let rest = actions.clone().slice(s![.., 1..h, ..]);
    let tail = Tensor::<3>::zeros([b, 1, a], &actions.device()).add_scalar(fill);
    Tensor::cat(vec![rest, tail], 1)
}
