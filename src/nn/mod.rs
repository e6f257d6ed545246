//! Neural-network building blocks written with plain tensor operations.
//!
//! Parameters are ordinary `Tensor<2>`s (biases are `[1, out]` rows) so that optimisers,
//! checkpoints and custom derivatives can treat every parameter alike. [`Mlp`] also gives the
//! gradient of its output with respect to its input as a tensor expression
//! ([`Mlp::input_grad`]): burn's autodiff is first order, so this is what lets a loss on the
//! result of unrolled gradient descent reach the network's weights (paper sect. 4.1).

mod belief;
mod ensemble;
pub(crate) mod fast;
mod host_kernels;
mod mlp;
mod rssm;
mod rssm_cpu;
mod rssm_host;

pub use fast::{elu_and_slope, softplus_and_slope};

pub use belief::BeliefFilter;
pub use ensemble::{Ensemble, EnsembleConfig, EnsembleLoss, TransitionBatch};
pub use mlp::{Activation, Init, Linear, Mlp};
pub use rssm::{Rssm, RssmConfig, RssmLoss, SequenceBatch, normal_noise};

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::error::{Error, Result};

/// A plain f32 tensor on the CPU (no tape): what the host fast paths take.
pub(crate) fn plain_cpu<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && !t.is_autodiff() && t.device() == Device::flex()
}

/// The float dtype tensors get on `device` (f32 unless the device was configured otherwise).
pub fn float_dtype(device: &Device) -> DType {
    Tensor::<1>::zeros([1], device).dtype()
}

/// A tensor of `shape` holding `values` (row-major), in the device's float dtype.
pub fn tensor_from_f64<const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>> {
    let n: usize = shape.iter().product();
    if values.len() != n {
        return Err(Error::shape(
            "tensor data",
            format!("{n} values for shape {shape:?}"),
            values.len(),
        ));
    }
    Ok(upload(values, shape, device, float_dtype(device)))
}

/// A tensor of `shape` and `dtype` on `device` holding `values` (converted on the host, so that
/// f32 tensors need no f64 staging copy); the caller has checked the length.
pub(crate) fn upload<const D: usize>(
    values: &[f64],
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    let data = if dtype == DType::F64 {
        TensorData::new(values.to_vec(), shape)
    } else {
        TensorData::new(
            values.iter().map(|v| *v as f32).collect::<Vec<f32>>(),
            shape,
        )
    };
    Tensor::from_data(data, (device, dtype))
}

/// Reads a float tensor back as f64 values (row-major).
pub fn to_f64_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f64>> {
    t.into_data_as::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| Error::Data(format!("{e:?}")))
}
