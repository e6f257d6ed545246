//! PlaNet's belief filter over an [`Rssm`].

use burn::tensor::Tensor;

use super::rssm::Rssm;
use crate::error::Result;

/// PlaNet's belief for acting: the RSSM's latent state `[h, s]`, updated with each new
/// observation and the action before it by [`Rssm::filter`] (the posterior's mean as `s`),
/// starting every episode from zeros. Planners plan from [`BeliefFilter::belief`]; a policy
/// reads it as its input.
#[derive(Clone, Debug)]
pub struct BeliefFilter {
    model: Rssm,
    belief: Tensor<2>,
}

impl BeliefFilter {
    /// A filter over `model` (its parameters' device is the filter's), at the zero belief.
    pub fn new(model: Rssm) -> Self {
        let device = model.gru.layers[0].weight.device();
        let belief = Tensor::zeros([1, model.config().state_dim()], &device);
        Self { model, belief }
    }

    /// The model filtered with.
    pub fn model(&self) -> &Rssm {
        &self.model
    }

    /// Replaces the model (after a training step), keeping the belief.
    pub fn set_model(&mut self, model: Rssm) {
        self.model = model;
    }

    /// The current belief `[1, state_dim]`.
    pub fn belief(&self) -> &Tensor<2> {
        &self.belief
    }

    /// Back to the zero belief (a new episode).
    pub fn reset(&mut self) {
        self.belief = self.belief.zeros_like();
    }

    /// One filtering step with the new observation and the action taken before it (zeros at
    /// the first step of an episode).
    pub fn update(&mut self, obs: &[f64], prev_action: &[f64]) -> Result<()> {
        let device = self.belief.device();
        let a = super::tensor_from_f64(prev_action, [1, prev_action.len()], &device)?;
        let o = super::tensor_from_f64(obs, [1, obs.len()], &device)?;
        self.belief = self.model.filter(self.belief.clone(), a, o)?;
        Ok(())
    }
}
