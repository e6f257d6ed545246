//! The [`Model`] trait: batched, differentiable rollouts of action sequences.
//!
//! A model answers "what does this action sequence cost from this start state?" for a whole
//! batch at once, on burn tensors. When the inputs (or the model's parameters) are tracked by
//! autodiff, the returned costs are on the tape, which is what lets a planner be differentiated
//! through. The ground-truth differentiable cartpole and a learned latent dynamics model are two
//! implementations; planners do not care which one they are given.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

/// What a rollout returns.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// Cost of each sequence, `[batch]` (lower is better).
    pub cost: Tensor<1>,
    /// The visited states `[batch, horizon + 1, state_dim]` when asked for, else `None`.
    pub states: Option<Tensor<3>>,
}

// ANCHOR: model
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
// ANCHOR_END: model

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

/// A model whose cost also counts the value of the state its rollout ends in: the inner model's
/// cost minus `weight * value(final states)`, so that a planner with a short horizon sees what
/// lies beyond it (the terminal value of TD-MPC and LOOP). `value` maps states `[batch,
/// state_dim]` to values `[batch]` (higher is better); `weight` is typically `discount^horizon`.
/// The inner model is asked for its visited states (the last of them is the final state).
pub struct TerminalValue<'a, F> {
    /// The model rolled out.
    pub model: &'a dyn Model,
    /// The value of states.
    pub value: F,
    /// The weight of the final state's value in the cost.
    pub weight: f64,
}

impl<F: Fn(Tensor<2>) -> Result<Tensor<1>>> Model for TerminalValue<'_, F> {
    fn state_dim(&self) -> usize {
        self.model.state_dim()
    }

    fn action_dim(&self) -> usize {
        self.model.action_dim()
    }

    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        if !self.weight.is_finite() {
            return Err(Error::option(
                "terminal value weight",
                format!("must be finite, got {}", self.weight),
            ));
        }
        let out = self.model.rollout(states, actions, true)?;
        let visited = out.states.ok_or_else(|| {
            Error::Data("a terminal value needs the model's visited states; it gave none".into())
        })?;
        let [batch, steps, d] = visited.dims();
        let last = visited
            .clone()
            .slice(burn::tensor::s![.., steps - 1..steps, ..])
            .reshape([batch, d]);
        let value = (self.value)(last)?;
        if value.dims() != [batch] {
            return Err(Error::shape(
                "terminal value",
                format!("[{batch}]"),
                value.dims(),
            ));
        }
        Ok(Rollout {
            cost: out.cost - value.mul_scalar(self.weight),
            states: keep_states.then_some(visited),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    /// `x' = x + a`, cost the sum of `x'^2` over the steps.
    struct Integrator;

    impl Model for Integrator {
        fn state_dim(&self) -> usize {
            1
        }

        fn action_dim(&self) -> usize {
            1
        }

        fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep: bool) -> Result<Rollout> {
            let [b, h, _] = actions.dims();
            let actions = actions.reshape([b, h]);
            let mut x = states.clone();
            let mut visited = vec![states];
            for t in 0..h {
                x = x + actions.clone().slice(burn::tensor::s![.., t..t + 1]);
                visited.push(x.clone());
            }
            let steps = Tensor::cat(visited[1..].to_vec(), 1);
            let cost = steps.powi_scalar(2).sum_dim(1).reshape([b]);
            let visited = Tensor::cat(visited, 1).reshape([b, h + 1, 1]);
            Ok(Rollout {
                cost,
                states: keep.then_some(visited),
            })
        }
    }

    #[test]
    fn terminal_value_subtracts_the_weighted_value_of_the_final_state() {
        let device = Device::flex();
        let states = Tensor::<2>::from_data(TensorData::new(vec![1f32, -2.0], [2, 1]), &device);
        let actions = Tensor::<3>::from_data(
            TensorData::new(vec![0.5f32, 0.5, 1.0, 1.0], [2, 2, 1]),
            &device,
        );
        // Final states 2 and 0; costs 1.5^2 + 2^2 = 6.25 and 1 + 0 = 1.
        let model = TerminalValue {
            model: &Integrator,
            value: |s: Tensor<2>| Ok(s.reshape([2]).mul_scalar(10.0)),
            weight: 0.5,
        };
        let out = model
            .rollout(states.clone(), actions.clone(), false)
            .unwrap();
        let cost = out.cost.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(cost, vec![6.25 - 10.0, 1.0]);
        assert!(out.states.is_none());
        let kept = model
            .rollout(states.clone(), actions.clone(), true)
            .unwrap();
        assert_eq!(kept.states.unwrap().dims(), [2, 3, 1]);
        let wrong = TerminalValue {
            model: &Integrator,
            value: |s: Tensor<2>| Ok(s.reshape([1, 2]).sum_dim(1).reshape([1])),
            weight: 0.5,
        };
        let err = wrong.rollout(states.clone(), actions.clone(), false);
        assert!(err.unwrap_err().to_string().contains("terminal value"));
        let nan = TerminalValue {
            model: &Integrator,
            value: |s: Tensor<2>| Ok(s.reshape([2])),
            weight: f64::NAN,
        };
        assert!(nan.rollout(states, actions, false).is_err());
    }
}
