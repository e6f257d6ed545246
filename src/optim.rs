//! Optimisers over plain parameter lists: Adam, gradient-norm clipping and the
//! reduce-on-plateau learning-rate schedule, with their state exposed for checkpoints.
//!
//! The formulas are PyTorch's (`torch.optim.Adam`, `clip_grad_norm_`, `ReduceLROnPlateau` in
//! `min` mode with a relative threshold), so settings carry over from reference code unchanged.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_positive};

/// Adam's options. Defaults are PyTorch's, with the learning rate 1e-3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Learning rate, > 0.
    pub lr: f64,
    /// Decay of the first-moment average, in [0, 1).
    pub beta1: f64,
    /// Decay of the second-moment average, in [0, 1).
    pub beta2: f64,
    /// Added to the root of the second moment, > 0.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_positive("lr", self.lr)?;
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::option(name, format!("must be in [0, 1), got {b}")));
            }
        }
        check_positive("eps", self.eps)
    }
}

/// Adam (Kingma & Ba): `m <- b1 m + (1-b1) g`, `v <- b2 v + (1-b2) g^2`,
/// `p <- p - lr * m_hat / (sqrt(v_hat) + eps)` with bias-corrected moments.
#[derive(Clone, Debug)]
pub struct Adam {
    config: AdamConfig,
    /// Current learning rate (a schedule may lower it).
    lr: f64,
    /// Steps taken per parameter (parameters without a gradient are skipped, as in PyTorch).
    steps: Vec<u64>,
    m: Vec<Option<Tensor<2>>>,
    v: Vec<Option<Tensor<2>>>,
}

impl Adam {
    /// An optimiser for `n_params` parameter tensors.
    pub fn new(config: AdamConfig, n_params: usize) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            lr: config.lr,
            config,
            steps: vec![0; n_params],
            m: vec![None; n_params],
            v: vec![None; n_params],
        })
    }

    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (schedules call this).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// One update. `params` are the current values (on the autodiff device or not); `grads`
    /// their gradients (`None`: no gradient reached it, it is left alone). Returns the new
    /// values, detached; call `require_grad` on them before the next training pass.
    pub fn step(
        &mut self,
        params: Vec<Tensor<2>>,
        grads: Vec<Option<Tensor<2>>>,
    ) -> Result<Vec<Tensor<2>>> {
        if params.len() != self.steps.len() || grads.len() != self.steps.len() {
            return Err(Error::shape(
                "Adam::step",
                format!("{} parameters and gradients", self.steps.len()),
                (params.len(), grads.len()),
            ));
        }
        let (b1, b2, eps) = (self.config.beta1, self.config.beta2, self.config.eps);
        let mut out = Vec::with_capacity(params.len());
        for (i, (p, g)) in params.into_iter().zip(grads).enumerate() {
            let p = p.detach();
            let Some(g) = g else {
                out.push(p);
                continue;
            };
            let g = g.detach();
            if g.dims() != p.dims() {
                return Err(Error::shape(
                    "Adam::step gradient",
                    format!("{:?}", p.dims()),
                    g.dims(),
                ));
            }
            self.steps[i] += 1;
            let t = self.steps[i] as i32;
            let m = match self.m[i].take() {
                Some(m) => m.mul_scalar(b1) + g.clone().mul_scalar(1.0 - b1),
                None => g.clone().mul_scalar(1.0 - b1),
            };
            let g2 = g.clone() * g;
            let v = match self.v[i].take() {
                Some(v) => v.mul_scalar(b2) + g2.mul_scalar(1.0 - b2),
                None => g2.mul_scalar(1.0 - b2),
            };
            let bc1 = 1.0 - b1.powi(t);
            let bc2 = 1.0 - b2.powi(t);
            // p - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), as PyTorch computes it.
            let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(eps);
            let update = m.clone().div(denom).mul_scalar(self.lr / bc1);
            out.push(p - update);
            self.m[i] = Some(m);
            self.v[i] = Some(v);
        }
        Ok(out)
    }

    /// The state to checkpoint: learning rate, per-parameter step counts and moments.
    pub fn state(&self) -> AdamState {
        AdamState {
            lr: self.lr,
            steps: self.steps.clone(),
            m: self.m.clone(),
            v: self.v.clone(),
        }
    }

    /// Restores a state from [`Adam::state`].
    pub fn load_state(&mut self, state: AdamState) -> Result<()> {
        let n = self.steps.len();
        if state.steps.len() != n || state.m.len() != n || state.v.len() != n {
            return Err(Error::shape(
                "Adam::load_state",
                format!("state for {n} parameters"),
                state.steps.len(),
            ));
        }
        self.lr = state.lr;
        self.steps = state.steps;
        self.m = state.m;
        self.v = state.v;
        Ok(())
    }
}

/// Adam's mutable state (see [`Adam::state`]).
#[derive(Clone, Debug)]
pub struct AdamState {
    /// Learning rate.
    pub lr: f64,
    /// Steps per parameter.
    pub steps: Vec<u64>,
    /// First moments (`None` before a parameter's first step).
    pub m: Vec<Option<Tensor<2>>>,
    /// Second moments.
    pub v: Vec<Option<Tensor<2>>>,
}

/// Scales `grads` so that their joint L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`, with its `1e-6` in the denominator). Returns the norm before clipping;
/// a non-finite norm is an error, since no step should be taken with it.
pub fn clip_grad_norm(grads: &mut [Option<Tensor<2>>], max_norm: f64) -> Result<f64> {
    let mut total = 0.0f64;
    for g in grads.iter().flatten() {
        let s: f64 = g.clone().square().sum().into_scalar::<f64>();
        total += s;
    }
    let norm = total.sqrt();
    if !norm.is_finite() {
        return Err(Error::NonFinite {
            what: "gradient norm",
            detail: format!(
                "{norm}: the loss or its gradient overflowed; lower the learning rate or check the inputs"
            ),
        });
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut().flatten() {
            *g = g.clone().mul_scalar(coef);
        }
    }
    Ok(norm)
}

/// Options of [`ReduceLrOnPlateau`] (PyTorch's defaults, `min` mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateauConfig {
    /// Multiply the learning rate by this when the metric stalls, in (0, 1).
    pub factor: f64,
    /// Number of checks without improvement tolerated before lowering it.
    pub patience: usize,
    /// Relative improvement that counts: better means `< best * (1 - threshold)`.
    pub threshold: f64,
    /// Lower bound of the learning rate.
    pub min_lr: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        Self {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            min_lr: 0.0,
        }
    }
}

impl PlateauConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::option(
                "factor",
                format!("must be in (0, 1), got {}", self.factor),
            ));
        }
        if !(self.threshold >= 0.0 && self.threshold.is_finite()) {
            return Err(Error::option("threshold", "must be finite and >= 0"));
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            return Err(Error::option("min_lr", "must be finite and >= 0"));
        }
        Ok(())
    }
}

/// Lowers the learning rate when a monitored metric stops improving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    /// The options.
    pub config: PlateauConfig,
    /// Best metric seen.
    pub best: f64,
    /// Checks since the best.
    pub bad_checks: usize,
}

impl ReduceLrOnPlateau {
    /// A fresh schedule.
    pub fn new(config: PlateauConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            best: f64::INFINITY,
            bad_checks: 0,
        })
    }

    /// Feeds one value of the metric; returns the (possibly lowered) learning rate. A
    /// non-finite metric counts as no improvement.
    pub fn step(&mut self, metric: f64, lr: f64) -> f64 {
        if metric.is_finite() && metric < self.best * (1.0 - self.config.threshold) {
            self.best = metric;
            self.bad_checks = 0;
            return lr;
        }
        self.bad_checks += 1;
        if self.bad_checks > self.config.patience {
            self.bad_checks = 0;
            return (lr * self.config.factor).max(self.config.min_lr);
        }
        lr
    }
}
