//! The [`Model`] trait: batched, differentiable rollouts of action sequences.
//!
//! A model answers "what does this action sequence cost from this start state?" for a whole
//! batch at once, on burn tensors. When the inputs (or the model's parameters) are tracked by
//! autodiff, the returned costs are on the tape, which is what lets a planner be differentiated
//! through. The ground-truth differentiable cartpole and a learned latent dynamics model are two
//! implementations; planners do not care which one they are given.

use burn::tensor::Tensor;

use crate::error::Result;

/// What a rollout returns.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// Cost of each sequence, `[batch]` (lower is better).
    pub cost: Tensor<1>,
    /// The visited states `[batch, horizon + 1, state_dim]` when asked for, else `None`.
    pub states: Option<Tensor<3>>,
}

/// A batched model of the environment's dynamics and cost.
pub trait Model {
    /// Length of a state vector.
    fn state_dim(&self) -> usize;

    /// Length of one action.
    fn action_dim(&self) -> usize;

    /// Rolls out `actions` (`[batch, horizon, action_dim]`) from `states` (`[batch, state_dim]`)
    /// and returns the cost of each sequence; with `keep_states` also the visited states.
    ///
    /// Implementations return an error for wrong shapes instead of panicking.
    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout>;

    /// The cost of each sequence (a rollout without the states).
    fn cost(&self, states: Tensor<2>, actions: Tensor<3>) -> Result<Tensor<1>> {
        Ok(self.rollout(states, actions, false)?.cost)
    }
}

/// A model whose every action is held for `repeat` steps of an inner model: the planner's
/// `[batch, horizon, action_dim]` sequence runs as `horizon * repeat` inner steps (the
/// environment's action repeat, for planning on a per-step model such as the true dynamics).
/// Visited states, when kept, are the inner model's, `horizon * repeat + 1` of them.
#[derive(Clone, Debug)]
pub struct RepeatActions<M> {
    /// The per-step model.
    pub model: M,
    /// Steps each action is held, at least 1.
    pub repeat: usize,
}

impl<M: Model> Model for RepeatActions<M> {
    fn state_dim(&self) -> usize {
        self.model.state_dim()
    }

    fn action_dim(&self) -> usize {
        self.model.action_dim()
    }

    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        if self.repeat == 0 {
            return Err(crate::error::Error::option("repeat", "must be at least 1"));
        }
        if self.repeat == 1 {
            return self.model.rollout(states, actions, keep_states);
        }
        let [b, h, a] = actions.dims();
        let held = actions
            .unsqueeze_dim::<4>(2)
            .expand([b, h, self.repeat, a])
            .reshape([b, h * self.repeat, a]);
        self.model.rollout(states, held, keep_states)
    }
}
