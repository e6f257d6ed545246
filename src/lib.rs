//! # dcem: differentiable planning with the Differentiable Cross-Entropy Method
//!
//! A Rust framework for CEM and DCEM (Amos & Yarats, ICML 2020) on [burn] tensors:
//!
//! - [`lml`]: the temperature-scaled LML projection, a soft top-k with an implicit backward;
//! - [`cem`]: one batched solver for CEM (`tau = 0`) and DCEM (`tau > 0`), differentiable with
//!   respect to the objective's parameters;
//! - [`gd`]: unrolled gradient descent, the baseline the paper compares against;
//! - [`rl`]: GAE and PPO for Gaussian policies around any differentiable mean, including the
//!   latent DCEM controller over a learned model (the paper's phase 3);
//! - the traits that let a planner drive an agent: [`env::Env`], [`model::Model`],
//!   [`planner::Planner`] and [`agent::Agent`]; [`agent::MpcAgent`] (any planner on a known
//!   model) and [`rl::PpoAgent`] (PPO over any policy mean) are agents built from them;
//! - [`runner`]: the one episode loop every agent goes through; [`train`] and [`run`]: the
//!   training kit (configs, gradient steps, run folders, metrics, checkpoints); [`video`]:
//!   frames and animated GIFs of episodes.
//!
//! Tensors are burn 0.22 tensors: code takes a [`burn::tensor::Device`] rather than a backend
//! type, so the same code runs on the CPU (`Device::flex()`) or a GPU device ([`device`]: burn's
//! wgpu backend with the `wgpu` feature, chosen by name with [`device::parse_device`]).
//!
//! ## Minimise an objective with DCEM and backpropagate through the solution
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use dcem::cem::{Cem, CemConfig, CemInit};
//! use rand::SeedableRng;
//!
//! let device = Device::flex().autodiff();
//! // A parameter of the objective: the target the solution should reach.
//! let target = Tensor::<2>::from_floats([[1.0, -2.0]], &device).require_grad();
//! let solver = Cem::new(CemConfig { n_sample: 100, n_elite: 10, n_iter: 10, tau: 1.0, ..Default::default() })?;
//! let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(0);
//! // f(x) = ||x - target||^2 for samples x of shape [batch, n_sample, nx].
//! let f = |x: Tensor<3>| (x - target.clone().unsqueeze_dim::<3>(1)).square().sum_dim(2).squeeze_dim::<2>(2);
//! let solution = solver.solve(f, CemInit::scalar(1, 2, 0.0, 2.0, &device), &mut rng)?;
//! // The solution is differentiable: d(sum of mu) / d(target) is close to one per coordinate.
//! let grads = solution.mu.clone().sum().backward();
//! let g: Vec<f32> = target.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
//! assert!(g.iter().all(|v| (v - 1.0).abs() < 0.5));
//! # Ok::<(), dcem::Error>(())
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod cem;
pub mod device;
pub mod env;
mod error;
pub mod fuzz;
pub mod gd;
pub mod limits;
pub mod lml;
pub mod model;
pub mod nn;
mod noise;
pub mod optim;
pub mod planner;
pub mod planning;
pub mod replay;
pub mod rl;
pub mod run;
pub mod runner;
pub mod train;
pub mod video;

pub use error::{Error, Result};

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
