//! [`Cem`]: the solver's loop (sample, evaluate, select, update), its initial state
//! ([`CemInit`]), per-iteration hooks ([`CemHooks`]) and result ([`CemSolution`]).
use burn::tensor::{Device, Tensor};
use rand::Rng;

use crate::error::{Error, Result};
use crate::lml;

use super::config::CemConfig;
use super::helpers::*;
use super::init::{CemInit, check_init};

/// What the iteration callback sees after each iteration.
pub struct IterState<'a> {
    /// Iteration index, from 0.
    pub iter: usize,
    /// This iteration's samples `[batch, n, nx]`: `n_sample` fresh ones (fewer with
    /// `population_decay`), then the kept or carried elites, then the mean (`add_mean_last`).
    pub samples: &'a Tensor<3>,
    /// Their objective values `[batch, n]` (non-finite ones as returned by `f`).
    pub values: &'a Tensor<2>,
    /// The (soft) elite weights `[batch, n]`, each row summing to `n_elite`.
    pub weights: &'a Tensor<2>,
    /// The updated mean `[batch, nx]`.
    pub mu: &'a Tensor<2>,
    /// The updated standard deviation `[batch, nx]`.
    pub sigma: &'a Tensor<2>,
    /// Which rows were still iterating.
    pub active: &'a [bool],
    /// Lowest finite value seen so far per row.
    pub best_value: &'a [f64],
}

/// Optional hooks into a solve.
#[derive(Default)]
pub struct CemHooks<'a> {
    /// Called after every iteration (logging, plots).
    pub on_iter: Option<&'a mut dyn FnMut(&IterState<'_>)>,
    /// Applied to the samples after sampling and clamping, before evaluation (e.g. a projection
    /// onto a feasible set). Must keep the shape.
    pub project: Option<&'a mut dyn FnMut(Tensor<3>) -> Tensor<3>>,
    /// Asked after every iteration: `true` ends the solve there (an interrupt, or an error the
    /// objective met), returning the state reached.
    pub stop: Option<&'a mut dyn FnMut() -> bool>,
}

/// The result of a solve.
#[derive(Clone, Debug)]
pub struct CemSolution {
    /// The solution `[batch, nx]`, clamped to `[lb, ub]`: the final mean, or with
    /// `return_best` the best sample evaluated.
    pub mu: Tensor<2>,
    /// The final standard deviation `[batch, nx]`.
    pub sigma: Tensor<2>,
    /// Lowest finite objective value seen per row over all iterations (`inf` if none).
    pub best_value: Vec<f64>,
    /// Iterations each row ran before it stopped.
    pub iterations: Vec<usize>,
    /// Number of NaN or infinite objective values met (ranked last).
    pub non_finite: usize,
    /// Samples evaluated per row while the row was iterating.
    pub evaluations: Vec<usize>,
    /// With `keep_elites`, the best samples `[batch, kept, nx]` of each row's last iteration
    /// (what a planner carries into its next solve).
    pub kept: Option<Tensor<3>>,
}

/// The CEM/DCEM solver, built from a validated [`CemConfig`].
#[derive(Clone, Debug)]
pub struct Cem {
    config: CemConfig,
    time_steps: Option<usize>,
}

impl Cem {
    /// Validates `config` and builds the solver.
    pub fn new(config: CemConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            time_steps: None,
        })
    }

    /// Rows are `steps` time steps of `nx / steps` coordinates each, step-major: the axis along
    /// which `noise_beta` colours the noise (the planners set their horizon).
    pub fn with_time_steps(mut self, steps: usize) -> Self {
        self.time_steps = Some(steps);
        self
    }

    /// The solver's options.
    pub fn config(&self) -> &CemConfig {
        &self.config
    }

    /// Minimises `f` from `init`. `f` maps samples `[batch, n, nx]` to values `[batch, n]`
    /// (`n = n_sample` unless iCEM's options change it per iteration). Noise comes from `rng`,
    /// so a seeded generator gives a reproducible solve (and the same noise for CEM and DCEM).
    pub fn solve<F, R>(&self, f: F, init: CemInit, rng: &mut R) -> Result<CemSolution>
    where
        F: FnMut(Tensor<3>) -> Tensor<2>,
        R: Rng + ?Sized,
    {
        self.solve_with(f, init, rng, CemHooks::default())
    }

    /// [`Cem::solve`] with an iteration callback and/or a projection of the samples.
    pub fn solve_with<F, R>(
        &self,
        f: F,
        init: CemInit,
        rng: &mut R,
        hooks: CemHooks<'_>,
    ) -> Result<CemSolution>
    where
        F: FnMut(Tensor<3>) -> Tensor<2>,
        R: Rng + ?Sized,
    {
        let mut noise = |shape: [usize; 3], device: &Device, dtype: burn::tensor::DType| {
            sample_noise(rng, shape, device, dtype)
        };
        self.solve_inner(f, init, &mut noise, hooks)
    }

    /// [`Cem::solve_with`] with one seed per batch row: row `b`'s noise comes from its own
    /// generator seeded with `seeds[b]`, so a row's solution depends only on its own problem
    /// and seed, not on the other rows of the batch. This makes a stochastic solve a
    /// deterministic function of (problem, seed): solving a row alone at acting time and again
    /// inside a batch at training time gives the same answer (what a policy-gradient ratio
    /// needs).
    pub fn solve_seeded<F>(
        &self,
        f: F,
        init: CemInit,
        seeds: &[u64],
        hooks: CemHooks<'_>,
    ) -> Result<CemSolution>
    where
        F: FnMut(Tensor<3>) -> Tensor<2>,
    {
        let batch = init.mu.dims()[0];
        if seeds.len() != batch {
            return Err(Error::shape(
                "Cem::solve_seeded seeds",
                format!("one per batch row ({batch})"),
                seeds.len(),
            ));
        }
        let mut rngs: Vec<rand::rngs::ChaCha8Rng> = seeds
            .iter()
            .map(|s| <rand::rngs::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(*s))
            .collect();
        let mut noise = |[b, n, nx]: [usize; 3], device: &Device, dtype: burn::tensor::DType| {
            let mut v = vec![0.0f32; b * n * nx];
            for (row, rng) in v.chunks_mut(n * nx).zip(rngs.iter_mut()) {
                crate::noise::fill_normal(rng, row);
            }
            noise_tensor(v, [b, n, nx], device, dtype)
        };
        self.solve_inner(f, init, &mut noise, hooks)
    }

    /// [`Cem::solve_with`] on noise given up front instead of drawn: `noise` holds
    /// `[n_iter, batch, n_sample, nx]` standard-normal values, row-major; iteration `t` uses
    /// block `t` (its first `n` samples per row when iCEM's `population_decay` shrinks the
    /// population to `n`). The same noise gives the same solve, which lets another
    /// implementation of the method be checked number for number against this one.
    pub fn solve_given_noise<F>(
        &self,
        f: F,
        init: CemInit,
        noise: &[f32],
        hooks: CemHooks<'_>,
    ) -> Result<CemSolution>
    where
        F: FnMut(Tensor<3>) -> Tensor<2>,
    {
        let c = &self.config;
        let [batch, nx] = init.mu.dims();
        let row = c.n_sample * nx;
        let per_iter = batch * row;
        if noise.len() != c.n_iter * per_iter {
            return Err(Error::shape(
                "Cem::solve_given_noise noise",
                format!(
                    "[n_iter {}, batch {batch}, n_sample {}, nx {nx}] values",
                    c.n_iter, c.n_sample
                ),
                noise.len(),
            ));
        }
        let mut iter = 0;
        let mut given = |[b, n, d]: [usize; 3], device: &Device, dtype: burn::tensor::DType| {
            let block = &noise[iter * per_iter..(iter + 1) * per_iter];
            iter += 1;
            let mut v = Vec::with_capacity(b * n * d);
            for r in block.chunks(row) {
                v.extend_from_slice(&r[..n * d]);
            }
            noise_tensor(v, [b, n, d], device, dtype)
        };
        self.solve_inner(f, init, &mut given, hooks)
    }

    fn solve_inner<F>(
        &self,
        mut f: F,
        init: CemInit,
        noise: &mut dyn FnMut([usize; 3], &Device, burn::tensor::DType) -> Tensor<3>,
        mut hooks: CemHooks<'_>,
    ) -> Result<CemSolution>
    where
        F: FnMut(Tensor<3>) -> Tensor<2>,
    {
        let c = &self.config;
        let carried = init.carried.clone();
        let (mut mu, mut sigma) = check_init(init)?;
        let [batch, nx] = mu.dims();
        // The samples of an iteration, a few copies of them, and with tau > 0 those of every
        // iteration (a tape keeps them for the backward pass).
        let copies = if c.tau > 0.0 {
            4.0 * c.n_iter as f64
        } else {
            4.0
        };
        crate::limits::check_tensor(
            "the (D)CEM solve",
            "samples [batch, n_sample, nx]",
            copies,
            &[batch, c.n_sample, nx],
        )?;
        let k = c.n_elite;
        let device = mu.device();
        let dtype = mu.dtype();
        let steps = self.time_steps.unwrap_or(nx);
        if c.noise_beta > 0.0 && (steps == 0 || !nx.is_multiple_of(steps)) {
            return Err(Error::shape(
                "Cem time steps (noise_beta)",
                format!("a divisor of the row size {nx}"),
                [steps],
            ));
        }
        let mut extra = match carried {
            Some(x) if x.dims()[0] != batch || x.dims()[2] != nx => {
                return Err(Error::shape(
                    "CemInit::carried",
                    format!("[{batch}, m, {nx}]"),
                    x.dims(),
                ));
            }
            other => other.map(|x| clamp(x, c.lb, c.ub)),
        };

        let mut active = vec![true; batch];
        let mut iterations = vec![0usize; batch];
        let mut evaluations = vec![0usize; batch];
        let mut best_value = vec![f64::INFINITY; batch];
        let mut best_x: Option<Tensor<2>> = None;
        let mut kept = None;
        let mut non_finite = 0usize;

        for iter in 0..c.n_iter {
            let n_fresh = c.fresh_samples(iter);
            // Sample per row from N(mu, sigma^2), reparameterised (coloured along time: iCEM).
            let mut eps = noise([batch, n_fresh, nx], &device, dtype);
            if c.noise_beta > 0.0 {
                eps = super::icem::colour(eps, steps, c.noise_beta)?;
            }
            let step = sigma.clone().unsqueeze_dim::<3>(1) * eps.clone();
            let mut x = mu.clone().unsqueeze_dim::<3>(1) + step;
            x = clamp(x, c.lb, c.ub);
            if let Some(project) = hooks.project.as_mut() {
                x = project(x);
                if x.dims() != [batch, n_fresh, nx] {
                    return Err(Error::shape(
                        "projection callback output",
                        format!("[{batch}, {n_fresh}, {nx}]"),
                        x.dims(),
                    ));
                }
            }
            // iCEM: the samples kept (or carried) from before, and the mean in the last round.
            let mut parts = vec![x];
            parts.extend(extra.take());
            if c.add_mean_last && iter + 1 == c.n_iter {
                parts.push(clamp(mu.clone(), c.lb, c.ub).unsqueeze_dim::<3>(1));
            }
            let with_extras = parts.len() > 1;
            let x = if with_extras {
                Tensor::cat(parts, 1)
            } else {
                parts.swap_remove(0)
            };
            let n = x.dims()[1];
            // Without bounds, projection or extra samples every sample is `mu + sigma * eps`.
            let exact_step =
                c.lb.is_none() && c.ub.is_none() && hooks.project.is_none() && !with_extras;

            // Evaluate the objective.
            let values = f(x.clone());
            if values.dims() != [batch, n] {
                return Err(Error::shape(
                    "objective output",
                    format!("[{batch}, {n}]"),
                    values.dims(),
                ));
            }

            // Soft (or hard) top-k of the values: the elite weights.
            let host = lml::read_f64(&values)?;
            let (weights, bad) = elite_weights(&values, &host, [batch, n], c)?;
            non_finite += bad;
            let mut improved = vec![false; batch];
            for (b, row) in host.chunks(n).enumerate() {
                if active[b] {
                    evaluations[b] += n;
                    let m = row
                        .iter()
                        .copied()
                        .filter(|v| v.is_finite())
                        .fold(f64::INFINITY, f64::min);
                    improved[b] = m < best_value[b];
                    best_value[b] = best_value[b].min(m);
                }
            }
            if c.return_best && improved.iter().any(|i| *i) {
                let top = super::icem::gather_rows(
                    x.clone(),
                    super::icem::best_indices(&host, [batch, n], 1, &device),
                )
                .reshape([batch, nx]);
                best_x = Some(match best_x.take() {
                    None => top,
                    // `row_mask` is true on the rows not improved: those keep their best.
                    Some(prev) => top.mask_where(row_mask(&improved, nx, &device), prev),
                });
            }
            if c.kept() > 0 {
                let idx = super::icem::best_indices(&host, [batch, n], c.kept().min(n), &device);
                let best = super::icem::gather_rows(x.clone(), idx);
                kept = Some(best.clone());
                extra = Some(best);
            }

            // Maximum weighted likelihood update (paper prop. 3).
            let w3 = weights.clone().unsqueeze_dim::<3>(1); // [B, 1, N]
            let (mu_new, var) = if exact_step {
                // With step = sigma * eps: mu' = mu + sigma * E_w[eps] and
                // var = sigma^2 * (E_w[eps^2] - E_w[eps]^2). `eps` is a constant, so the only
                // tape entries over the samples are the two products with the weights (their
                // backward is a product with `eps`), not passes over the tracked `step`.
                let shift = w3
                    .clone()
                    .matmul(eps.clone())
                    .reshape([batch, nx])
                    .div_scalar(k as f64);
                let second = w3
                    .matmul(eps.square())
                    .reshape([batch, nx])
                    .div_scalar(k as f64);
                let s = sigma.clone().expand([batch, nx]);
                (
                    mu.clone() + s.clone() * shift.clone(),
                    s.square() * (second - shift.square()),
                )
            } else {
                let mu_new = w3
                    .clone()
                    .matmul(x.clone())
                    .reshape([batch, nx])
                    .div_scalar(k as f64);
                let centred = x.clone() - mu_new.clone().unsqueeze_dim::<3>(1);
                let var = w3
                    .matmul(centred.square())
                    .reshape([batch, nx])
                    .div_scalar(k as f64);
                (mu_new, var)
            };
            let sigma_new = var.clamp_min(c.sigma_floor * c.sigma_floor).sqrt();

            // Per-row early stop.
            let was_active = active.clone();
            if c.iter_eps > 0.0 {
                let moved = lml::read_f64(&(mu_new.clone() - mu.clone()).square().sum_dim(1))?;
                for b in 0..batch {
                    if active[b] && moved[b].sqrt() < c.iter_eps {
                        active[b] = false;
                    }
                }
            }
            if was_active.iter().all(|a| *a) {
                mu = mu_new;
                sigma = sigma_new;
            } else {
                let frozen = row_mask(&was_active, nx, &device);
                mu = mu_new.mask_where(frozen.clone(), mu);
                sigma = sigma_new.mask_where(frozen, sigma.expand([batch, nx]));
            }
            for b in 0..batch {
                if was_active[b] {
                    iterations[b] = iter + 1;
                }
            }

            if let Some(cb) = hooks.on_iter.as_mut() {
                let sigma_view = sigma.clone().expand([batch, nx]);
                cb(&IterState {
                    iter,
                    samples: &x,
                    values: &values,
                    weights: &weights,
                    mu: &mu,
                    sigma: &sigma_view,
                    active: &was_active,
                    best_value: &best_value,
                });
            }
            if !active.iter().any(|a| *a) {
                break;
            }
            if let Some(stop) = hooks.stop.as_mut()
                && stop()
            {
                break;
            }
        }
        let sigma = sigma.expand([batch, nx]);
        let solution = match best_x {
            Some(best) if c.return_best => best,
            _ => mu,
        };
        Ok(CemSolution {
            mu: clamp(solution, c.lb, c.ub),
            sigma,
            best_value,
            iterations,
            non_finite,
            evaluations,
            kept,
        })
    }
}
