//! CEM and DCEM (paper alg. 1): one solver, hard or soft elites chosen by `tau`.
//!
//! Minimises `f(x)` for a batch of independent problems at once (`x` of shape `[batch, nx]`)
//! with an isotropic-per-coordinate Gaussian sampling distribution:
//!
//! ```text
//! for t in 1..=T:
//!     X_i = clamp(mu + sigma * eps_i, lb, ub),  eps_i ~ N(0, I)      (N samples, reparameterised)
//!     v_i = f(X_i)                                                     (evaluate)
//!     v   = (v - mean v) / (std v + 1e-6)                              (if `normalize`)
//!     I   = LML_k(-v / tau)       (tau > 0: DCEM)   or   top-k(-v)     (tau = 0: CEM)
//!     mu  = sum_i I_i X_i / k,   sigma^2 = sum_i I_i (X_i - mu)^2 / k  (paper prop. 3)
//! return clamp(mu, lb, ub)
//! ```
//!
//! iCEM's options (`noise_beta`, `keep_elites`, `shift_elites`, `population_decay`,
//! `add_mean_last`, `return_best`; all off by default) change what is sampled and returned, not
//! the update: coloured noise replaces `eps`, kept elites and the mean join an iteration's
//! samples, the population shrinks per iteration, and the best sample can be returned instead of
//! `mu` (see [`CemConfig`] and the README).
//!
//! When no bounds or projection alter the samples (`X_i = mu + sigma * eps_i` exactly), the update
//! is computed from the noise as `mu + sigma * E_I[eps]` and `sigma^2 (E_I[eps^2] - E_I[eps]^2)`:
//! the same quantities, with the noise a constant, so the only taped work over the samples is
//! the weighted sum (no pass over tracked offsets forward or backward); the noise is on the scale
//! of 1, so the difference does not cancel badly in f32.
//!
//! With `tau > 0` the returned `mu` is differentiable with respect to anything `f` closes over
//! (and the initial `mu`, `sigma`): samples are reparameterised and the soft top-k has an
//! implicit backward (see [`crate::lml`]). `tau = 0` is plain CEM. The paper's `tau` is used:
//! the reference implementation's `temp` is `1 / tau`.
//!
//! Differences from the reference implementation, on purpose:
//! - the early stop (`iter_eps`) is decided per batch row: a row whose mean moved less than
//!   `iter_eps` keeps its `mu` and `sigma` from then on, and the loop ends when every row has;
//! - `sigma` never falls below `sigma_floor`, so hard CEM with bounds cannot collapse it to 0;
//! - NaN and infinite objective values rank last (they are replaced by the row's worst finite
//!   value plus one before normalising) and are counted in [`CemSolution::non_finite`].

mod config;
mod helpers;
mod icem;
mod init;
mod solver;

pub use config::CemConfig;
pub use init::CemInit;
pub use solver::{Cem, CemHooks, CemSolution, IterState};
