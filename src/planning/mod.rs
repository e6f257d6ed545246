//! Planners: implementations of [`Planner`](crate::planner::Planner) on top of the CEM/DCEM
//! solver.
//!
//! - [`CemPlanner`]: full-space CEM (or DCEM) over the whole action sequence, with the MPC warm
//!   start (PlaNet's planner when `tau = 0`).
//! - [`LatentDcemPlanner`]: (D)CEM over the latent space of an [`ActionDecoder`] such as
//!   [`MlpDecoder`] (the paper's embedded DCEM, alg. 2).

mod cem_planner;
mod checks;
mod latent;

pub use cem_planner::{CemPlanner, CemPlannerConfig};
pub use latent::{
    ActionDecoder, LatentDcemPlanner, LatentPlannerConfig, MlpDecoder, MlpDecoderConfig,
};
