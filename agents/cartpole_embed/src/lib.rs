//! Paper sect. 5.2.1 (alg. 2): learning a latent action space for the cartpole swing-up.
//!
//! A decoder maps a latent point `z` in `[-1, 1]^d` to a 20-step force sequence (an MLP
//! `d-256-256-256-20` with ELU, squashed into the action range). From each training start state,
//! DCEM searches the latent space (100 samples, 10 soft elites, 10 iterations, tau 1) under the
//! ground-truth differentiable cartpole, and the cost of the decoded solution is backpropagated
//! through every DCEM iteration into the decoder. The question is whether 100 samples in the
//! learned 2-D space reach the cost of full-space CEM with ten times more samples.
//!
//! The planner is the framework's [`LatentDcemPlanner`] with an [`MlpDecoder`]; the model is
//! [`SwingupModel`]. Following the reference: one start state per iteration, Adam 5e-4, the
//! gradient norm clipped to 1, a fixed validation set of 100 start states solved every 100
//! iterations, whose mean cost drives a halve-on-plateau schedule (patience 20).

mod agent;
mod config;
mod eval;
mod report;
mod seeds;
mod train;

pub use agent::*;
pub use config::*;
pub use eval::*;
pub use report::*;
pub use seeds::*;
pub use train::*;
