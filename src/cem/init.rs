//! [`CemInit`]: the distribution a solve starts from, and its checks.

use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result, check_positive};
use crate::lml;

/// The starting distribution of a solve: mean `[batch, nx]` and standard deviation
/// `[batch, nx]` or `[batch, 1]` (one scalar per row).
#[derive(Clone, Debug)]
pub struct CemInit {
    /// Initial mean.
    pub mu: Tensor<2>,
    /// Initial standard deviation.
    pub sigma: Tensor<2>,
    /// Samples `[batch, m, nx]` evaluated in the first iteration next to the fresh ones (iCEM's
    /// elites carried over from the previous solve).
    pub carried: Option<Tensor<3>>,
}

impl CemInit {
    /// Mean `mu` and standard deviation `sigma` everywhere, for `batch` problems of size `nx`.
    pub fn scalar(batch: usize, nx: usize, mu: f64, sigma: f64, device: &Device) -> Self {
        Self {
            mu: Tensor::zeros([batch, nx], device).add_scalar(mu),
            sigma: Tensor::ones([batch, 1], device).mul_scalar(sigma),
            carried: None,
        }
    }

    /// Given mean and standard deviation tensors (checked by the solver).
    pub fn new(mu: Tensor<2>, sigma: Tensor<2>) -> Self {
        Self {
            mu,
            sigma,
            carried: None,
        }
    }

    /// Also evaluates `samples: [batch, m, nx]` in the first iteration.
    pub fn with_carried(mut self, samples: Tensor<3>) -> Self {
        self.carried = Some(samples);
        self
    }
}

/// Checks the initial distribution's shapes and returns `(mu, sigma)`.
pub(super) fn check_init(init: CemInit) -> Result<(Tensor<2>, Tensor<2>)> {
    let [batch, nx] = init.mu.dims();
    if batch == 0 || nx == 0 {
        return Err(Error::shape(
            "CemInit::mu",
            "[batch >= 1, nx >= 1]",
            init.mu.dims(),
        ));
    }
    let sd = init.sigma.dims();
    if sd != [batch, nx] && sd != [batch, 1] {
        return Err(Error::shape(
            "CemInit::sigma",
            format!("[{batch}, {nx}] or [{batch}, 1]"),
            sd,
        ));
    }
    let s = lml::read_f64(&init.sigma)?;
    if let Some(v) = s
        .iter()
        .find(|v| check_positive("init sigma", **v).is_err())
    {
        return Err(Error::option(
            "init sigma",
            format!("every entry must be finite and > 0, found {v}"),
        ));
    }
    let m = lml::read_f64(&init.mu)?;
    if let Some(v) = m.iter().find(|v| !v.is_finite()) {
        return Err(Error::option(
            "init mu",
            format!("every entry must be finite, found {v}"),
        ));
    }
    Ok((init.mu, init.sigma))
}
