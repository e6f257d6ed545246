//! [`CemConfig`]: the solver's options, their checks, and the sample counts they imply.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_bounds, check_min, check_positive};

// ANCHOR: cem_config
/// Options of the CEM/DCEM solver. Defaults are the paper's DCEM settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CemConfig {
    /// Samples drawn per iteration and batch row (N). At least 2.
    pub n_sample: usize,
    /// Elites kept per iteration (k), `1 <= n_elite <= n_sample`.
    pub n_elite: usize,
    /// Iterations (T), at least 1.
    pub n_iter: usize,
    /// Soft top-k temperature. `0` selects hard elites (plain CEM); `> 0` is DCEM. The reference
    /// code's `temp` is `1 / tau`.
    pub tau: f64,
    /// Lower bound every sample (and the result) is clamped to, if any.
    pub lb: Option<f64>,
    /// Upper bound every sample (and the result) is clamped to, if any.
    pub ub: Option<f64>,
    /// Initial standard deviation when the caller gives none.
    pub init_sigma: f64,
    /// Standardise the values per row and iteration before the top-k, so that `tau` does not
    /// depend on the objective's scale.
    pub normalize: bool,
    /// Per-row early stop: a row is done once its mean moves less than this (L2 norm) in one
    /// iteration. `0` disables the test.
    pub iter_eps: f64,
    /// Smallest standard deviation the sampler may reach.
    pub sigma_floor: f64,
    /// iCEM: exponent of the sampling noise's power spectrum along the time axis (`f^-beta`;
    /// 0: white noise, iCEM uses 2-3). The time axis is set by the planner (see
    /// [`Cem::with_time_steps`](super::Cem::with_time_steps)); without one a whole row is one sequence.
    pub noise_beta: f64,
    /// iCEM: fraction of `n_elite` (rounded down) of the best samples of an iteration that are
    /// evaluated again in the next one, next to its fresh samples (0: none).
    pub keep_elites: f64,
    /// iCEM: planners carry the kept elites of a solve into their next one, shifted by one time
    /// step (the full-space planner; needs `keep_elites > 0`).
    pub shift_elites: bool,
    /// iCEM: the fresh samples of iteration `i` are `n_sample / population_decay^i` (rounded
    /// up, at least `2 n_elite`); 1: every iteration draws `n_sample`.
    pub population_decay: f64,
    /// iCEM: the last iteration also evaluates the current mean.
    pub add_mean_last: bool,
    /// iCEM: return the best sample evaluated over all iterations instead of the final mean.
    pub return_best: bool,
}
// ANCHOR_END: cem_config

impl Default for CemConfig {
    fn default() -> Self {
        Self {
            n_sample: 100,
            n_elite: 10,
            n_iter: 10,
            tau: 1.0,
            lb: None,
            ub: None,
            init_sigma: 1.0,
            normalize: true,
            iter_eps: 1e-4,
            sigma_floor: 1e-6,
            noise_beta: 0.0,
            keep_elites: 0.0,
            shift_elites: false,
            population_decay: 1.0,
            add_mean_last: false,
            return_best: false,
        }
    }
}

impl CemConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        crate::limits::check_dim("n_sample", self.n_sample)?;
        crate::limits::check_count("n_iter", self.n_iter)?;
        if self.n_sample < 2 {
            return Err(Error::option(
                "n_sample",
                format!("must be at least 2, got {}", self.n_sample),
            ));
        }
        if self.n_elite < 1 || self.n_elite > self.n_sample {
            return Err(Error::option(
                "n_elite",
                format!(
                    "must be in 1..=n_sample ({}), got {}",
                    self.n_sample, self.n_elite
                ),
            ));
        }
        if self.n_iter < 1 {
            return Err(Error::option("n_iter", "must be at least 1"));
        }
        check_min("tau", self.tau, 0.0)?;
        check_bounds(self.lb, self.ub)?;
        check_positive("init_sigma", self.init_sigma)?;
        check_min("iter_eps", self.iter_eps, 0.0)?;
        check_positive("sigma_floor", self.sigma_floor)?;
        check_min("noise_beta", self.noise_beta, 0.0)?;
        if !(0.0..=1.0).contains(&self.keep_elites) {
            return Err(Error::option(
                "keep_elites",
                format!("must be a fraction in [0, 1], got {}", self.keep_elites),
            ));
        }
        if self.shift_elites && self.kept() == 0 {
            return Err(Error::option(
                "shift_elites",
                format!(
                    "carries the kept elites: needs keep_elites * n_elite >= 1 (got {} x {})",
                    self.keep_elites, self.n_elite
                ),
            ));
        }
        check_min("population_decay", self.population_decay, 1.0)?;
        Ok(())
    }

    /// Elites kept into the next iteration: `keep_elites * n_elite` rounded down.
    pub fn kept(&self) -> usize {
        (self.keep_elites * self.n_elite as f64 + 1e-9).floor() as usize
    }

    /// Samples evaluated per row by a solve that runs every iteration (no early stop): the
    /// fresh ones, the kept elites (from the second iteration on, and in the first once a
    /// planner carries them with `shift_elites`) and the mean of the last iteration.
    pub fn evaluations_per_solve(&self) -> usize {
        let fresh: usize = (0..self.n_iter).map(|i| self.fresh_samples(i)).sum();
        let kept = self.kept() * (self.n_iter - 1 + usize::from(self.shift_elites));
        fresh + kept + usize::from(self.add_mean_last)
    }

    /// Fresh samples drawn in iteration `iter` (from 0), after `population_decay`.
    pub fn fresh_samples(&self, iter: usize) -> usize {
        super::icem::population(self.n_sample, self.n_elite, self.population_decay, iter)
    }

    /// Whether the elites are hard (plain CEM).
    pub fn is_hard(&self) -> bool {
        self.tau == 0.0
    }
}
