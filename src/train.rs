//! The training kit shared by the agents: config files read and validated in one place, one
//! gradient step (backward, gradients of the tracked parameters, global-norm clipping, Adam),
//! and parameters moved between devices.

use std::fmt::Display;
use std::path::Path;

use burn::tensor::{Device, Gradients, Tensor};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::optim::{Adam, clip_grad_norm};

/// Reads the TOML file `path` into a config and checks it with `validate`. Every error names
/// the file; a parse error also names the line and field (unknown fields are refused by the
/// configs' `deny_unknown_fields`), a validation error the bad field.
pub fn load_config<T, E>(
    path: &Path,
    validate: impl FnOnce(&T) -> std::result::Result<(), E>,
) -> Result<T>
where
    T: DeserializeOwned,
    E: Display,
{
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("reading config {}: {e}", path.display())))?;
    let config: T = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("parsing config {}: {e}", path.display())))?;
    validate(&config)
        .map_err(|e| Error::Config(format!("checking config {}: {e:#}", path.display())))?;
    Ok(config)
}

/// The gradients of `tracked` (parameters that were `require_grad`-ed before the forward pass)
/// in `grads`, on the autodiff device; `None` where a parameter got none.
pub fn grads_of(tracked: &[Tensor<2>], grads: &Gradients) -> Vec<Option<Tensor<2>>> {
    tracked
        .iter()
        .map(|p| p.grad(grads).map(|g| g.autodiff()))
        .collect()
}

/// One optimiser step on `loss`: backpropagates it, takes the gradients of `tracked` (the
/// tracked copies of `params` the loss was computed with), clips their global norm to
/// `clip_norm` (0: no clipping) and returns `params` after one Adam step. Check that the loss is
/// finite before calling: the message can then say which loss and what to change.
pub fn gradient_step(
    loss: Tensor<1>,
    tracked: &[Tensor<2>],
    params: Vec<Tensor<2>>,
    adam: &mut Adam,
    clip_norm: f64,
) -> Result<Vec<Tensor<2>>> {
    if !loss.is_tracked() {
        return Err(Error::Config(
            "the loss does not depend on the trained parameters (it is off the autodiff tape): \
             a solver with hard elites (tau = 0) or with every sample an elite passes no \
             gradient; use tau > 0 and fewer elites than samples"
                .into(),
        ));
    }
    let grads = loss.backward();
    let mut g = grads_of(tracked, &grads);
    if clip_norm > 0.0 {
        clip_grad_norm(&mut g, clip_norm)?;
    }
    adam.step(params, g)
}

/// Copies of `params` on `device` (off the autodiff tape when `device` is a plain device).
pub fn to_device(params: Vec<Tensor<2>>, device: &Device) -> Vec<Tensor<2>> {
    params
        .into_iter()
        .map(|p| Tensor::<2>::from_data(p.into_data(), device))
        .collect()
}
