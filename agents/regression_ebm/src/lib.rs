//! Paper sect. 5.1: energy-based regression, unrolled gradient descent against DCEM.
//!
//! An energy network `E(x, y)` (an MLP `2-128-128-128-1` with Softplus) predicts
//! `y_hat(x) = argmin_y E(x, y)`, the argmin approximated by one of two differentiable inner
//! solvers started at `y0 = 0`:
//! - unrolled gradient descent, `y_{t+1} = y_t - lr * dE/dy(x, y_t)` for 10 steps (lr 0.1), or
//! - DCEM, 10 iterations of 100 samples and 10 soft elites (tau 1) from `N(0, 7^2)`.
//!
//! The loss `(y_hat - y*)^2` on the targets `y* = x sin x` is backpropagated through the solver
//! into the network. The paper's claim: both fit the data, but only DCEM's energy has minima
//! at its predictions, so only DCEM's predictions survive running the solver for more or fewer
//! steps than it was trained with.
//!
//! The training loop follows the reference code: each update picks one training point at
//! random and takes `inner_updates` (3) Adam steps on it, each a fresh solve; every update is
//! one Adam step. The full training set's MSE is logged every `eval_every` updates and drives a
//! reduce-on-plateau learning-rate schedule.

mod agent;
mod config;
mod report;
pub mod seeds;
mod train;

pub use agent::*;
pub use config::*;
pub use report::*;
pub use train::*;
