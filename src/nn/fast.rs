//! A fused softplus for f32 tensors on the CPU.
//!
//! burn's CPU backend evaluates `exp` and `ln` one scalar library call at a time, and the
//! overflow-safe softplus takes seven tensor passes, so in small energy networks the activation
//! costs more than the matrix products. On the CPU the value and the slope are computed here in
//! one vectorisable pass, and the result is put back on the tape as `a * s + c` with `s` the slope
//! and `c` the offset, both constants: the value is exact to f32 rounding and the first
//! derivative with respect to `a` is the exact slope `s = sigmoid(a)`.

use burn::tensor::{DType, Device, Tensor, TensorData};

const LOG2E: f32 = std::f32::consts::LOG2_E;
// ln 2 split so that `k * LN2_HI` is exact for the `k` used here.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
// Adding then subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// `exp(x)` for `x <= 0` (inputs below -87 give `exp(-87)`, which is below 2e-38).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let x = x.max(-87.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    // Taylor polynomial of degree 7 on |r| <= 0.35: truncation error below 6e-9.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    p * scale
}

/// `ln(1 + e)` for `e` in `[0, 1]`, via `2 atanh(e / (2 + e))` (argument at most 1/3).
#[inline(always)]
fn ln_1p_unit(e: f32) -> f32 {
    let u = e / (2.0 + e);
    let u2 = u * u;
    let series = 1.0
        + u2 * (1.0 / 3.0
            + u2 * (1.0 / 5.0
                + u2 * (1.0 / 7.0
                    + u2 * (1.0 / 9.0 + u2 * (1.0 / 11.0 + u2 * (1.0 / 13.0 + u2 / 15.0))))));
    2.0 * u * series
}

/// Softplus `ln(1 + exp(a))` and its slope `sigmoid(a)` for every element of `a`.
pub fn softplus_and_slope(a: &[f32], value: &mut [f32], slope: &mut [f32]) {
    for ((a, v), s) in a.iter().zip(value.iter_mut()).zip(slope.iter_mut()) {
        let e = exp_nonpositive(-a.abs());
        *v = a.max(0.0) + ln_1p_unit(e);
        let num = if *a >= 0.0 { 1.0 } else { e };
        *s = num / (1.0 + e);
    }
}

/// Whether the fused path applies: an f32 tensor on the CPU backend (with or without autodiff).
pub fn fused_applies<const D: usize>(a: &Tensor<D>) -> bool {
    a.dtype() == DType::F32 && a.device().without_autodiff() == Device::flex()
}

/// `softplus(a)` as `a * slope + offset`, the slope and offset computed on the host. Only for
/// tensors where [`fused_applies`] holds.
pub fn softplus_fused<const D: usize>(a: Tensor<D>) -> Tensor<D> {
    let shape = a.shape();
    let device = a.device();
    let host: Vec<f32> = match a.clone().into_data().try_into_vec::<f32>() {
        Ok(v) => v,
        // `fused_applies` checked the dtype; should the backend still disagree, fall back.
        Err(_) => return burn::tensor::activation::softplus(a, 1.0),
    };
    let mut value = vec![0.0f32; host.len()];
    let mut slope = vec![0.0f32; host.len()];
    softplus_and_slope(&host, &mut value, &mut slope);
    let offset: Vec<f32> = value
        .iter()
        .zip(&slope)
        .zip(&host)
        .map(|((v, s), a)| v - s * a)
        .collect();
    let s = Tensor::<D>::from_data(TensorData::new(slope, shape.clone()), &device);
    let c = Tensor::<D>::from_data(TensorData::new(offset, shape), &device);
    a * s + c
}
