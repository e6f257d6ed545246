//! Plain PPO (CleanRL's `ppo_continuous_action.py`): a Gaussian policy around a tanh MLP mean,
//! a tanh MLP value function, `num_envs` environments stepped in lockstep for `num_steps` steps
//! per update, GAE, clipped surrogate, linear learning-rate annealing.
//!
//! Actions are sampled unclipped (their log-probabilities are of the sampled values) and clipped
//! to the action space before the environment sees them. Episodes cut by a time limit are
//! bootstrapped from the value of their final observation.

mod config;
mod report;
pub mod seeds;
mod train;

pub use config::*;
pub use report::*;
pub use train::*;
