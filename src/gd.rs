//! Unrolled gradient descent: the baseline DCEM is compared against (paper sect. 4.1, 5.1).
//!
//! `y_{t+1} = y_t - lr * grad_y f(y_t)` for `steps` steps from `y_0`, returning `y_T`. Every step
//! is an ordinary tensor expression, so when the gradient function is written with tensor
//! operations of the objective's parameters, `y_T` is differentiable with respect to them
//! ("unrolled" optimisation).
//!
//! burn's autodiff is first order: it cannot differentiate a gradient it computed itself. The
//! gradient is therefore passed in as a function. For inference only, [`autodiff_grad`] computes
//! it with burn's autodiff (the result is detached from the objective's parameters).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_bounds, check_positive};

/// Options of unrolled gradient descent. Defaults are the paper's (10 steps, lr 0.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GdConfig {
    /// Number of gradient steps, at least 1.
    pub steps: usize,
    /// Step size, finite and > 0.
    pub lr: f64,
    /// Lower bound the iterates are clamped to after each step, if any.
    pub lb: Option<f64>,
    /// Upper bound the iterates are clamped to after each step, if any.
    pub ub: Option<f64>,
}

impl Default for GdConfig {
    fn default() -> Self {
        Self {
            steps: 10,
            lr: 0.1,
            lb: None,
            ub: None,
        }
    }
}

impl GdConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.steps < 1 {
            return Err(Error::option("steps", "must be at least 1"));
        }
        crate::limits::check_count("steps", self.steps)?;
        check_positive("lr", self.lr)?;
        check_bounds(self.lb, self.ub)?;
        Ok(())
    }
}

/// Runs unrolled gradient descent from `y0` (`[batch, nx]`); `grad` maps iterates to the
/// objective's gradient with respect to them (same shape). Returns every iterate
/// `y_0, ..., y_T`; the last is the solution.
pub fn unrolled_gd<G>(config: &GdConfig, mut grad: G, y0: Tensor<2>) -> Result<Vec<Tensor<2>>>
where
    G: FnMut(Tensor<2>) -> Tensor<2>,
{
    config.validate()?;
    let dims = y0.dims();
    let mut iterates = Vec::with_capacity(config.steps + 1);
    let mut y = y0;
    iterates.push(y.clone());
    for _ in 0..config.steps {
        let g = grad(y.clone());
        if g.dims() != dims {
            return Err(Error::shape(
                "gradient function output",
                format!("{dims:?}"),
                g.dims(),
            ));
        }
        y = y - g.mul_scalar(config.lr);
        y = match (config.lb, config.ub) {
            (Some(l), Some(u)) => y.clamp(l, u),
            (Some(l), None) => y.clamp_min(l),
            (None, Some(u)) => y.clamp_max(u),
            (None, None) => y,
        };
        iterates.push(y.clone());
    }
    Ok(iterates)
}

/// The gradient of `f` (`[batch, nx] -> [batch]`, summed) at `y`, computed by burn's autodiff
/// on a detached copy of `y`. The result carries no gradient to `f`'s parameters: use it to run
/// gradient descent at test time, not to train through it.
pub fn autodiff_grad<F>(mut f: F, y: Tensor<2>) -> Tensor<2>
where
    F: FnMut(Tensor<2>) -> Tensor<1>,
{
    let on_tape_device = y.is_autodiff();
    let y = y.detach().autodiff().require_grad();
    let value = f(y.clone()).sum();
    let grads = value.backward();
    let g = match y.grad(&grads) {
        Some(g) => g,
        None => y.detach().zeros_like().without_autodiff(),
    };
    // Back on the caller's device kind, untracked.
    if on_tape_device { g.autodiff() } else { g }
}
