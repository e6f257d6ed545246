//! Planners: implementations of [`Planner`](crate::planner::Planner) on top of the CEM/DCEM
//! solver.
//!
//! - [`CemPlanner`]: full-space CEM (or DCEM) over the whole action sequence, with the MPC warm
//!   start (PlaNet's planner when `tau = 0`).

mod cem_planner;

pub use cem_planner::{CemPlanner, CemPlannerConfig};
