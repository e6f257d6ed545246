//! What a policy sees: an [`InputFilter`] turns an environment's observations into the policy's
//! input, either the observation itself ([`ObsInput`]) or the belief of a recurrent model
//! ([`BeliefFilter`]).

use crate::error::Result;
use crate::nn::{BeliefFilter, to_f64_vec};

/// What turns an environment's observations into a policy's input.
pub trait InputFilter {
    /// Starts an episode (forgets any belief).
    fn reset(&mut self);
    /// The input after observing `obs`, the previous action having been `prev_action` (zeros at
    /// the first step of an episode).
    fn input(&mut self, obs: &[f64], prev_action: &[f64]) -> Result<Vec<f64>>;
}

/// The observation itself is the input.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObsInput;

impl InputFilter for ObsInput {
    fn reset(&mut self) {}
    fn input(&mut self, obs: &[f64], _prev_action: &[f64]) -> Result<Vec<f64>> {
        Ok(obs.to_vec())
    }
}

impl InputFilter for BeliefFilter {
    fn reset(&mut self) {
        BeliefFilter::reset(self);
    }
    fn input(&mut self, obs: &[f64], prev_action: &[f64]) -> Result<Vec<f64>> {
        self.update(obs, prev_action)?;
        to_f64_vec(self.belief().clone())
    }
}
