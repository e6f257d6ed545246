//! Fused softplus and ELU for f32 tensors on the CPU.
//!
//! burn's CPU backend evaluates `exp` and `ln` one scalar library call at a time, and the
//! overflow-safe softplus takes seven tensor passes (ELU three), so in small networks the
//! activation costs more than the matrix products. On the CPU the value and the slope are computed here in
//! one vectorisable pass, and the result is put back on the tape as `a * s + c` with `s` the slope
//! and `c` the offset, both constants: the value is exact to f32 rounding and the first
//! derivative with respect to `a` is the exact slope (`sigmoid(a)` for softplus).

use burn::tensor::{DType, Device, Tensor, TensorData};

const LOG2E: f32 = std::f32::consts::LOG2_E;
// ln 2 split so that `k * LN2_HI` is exact for the `k` used here.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
// Adding then subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// `exp(x)` for `x <= 0` (inputs below -87 give `exp(-87)`, which is below 2e-38). Written
/// without calls, saturating casts or NaN-aware min/max so that the loops below vectorise.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    let x = if x < -87.0 { -87.0 } else { x };
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    // The low mantissa bits of `t` hold `k` (offset by the bits of ROUND).
    let k_bits = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - k * LN2_HI - k * LN2_LO;
    // Taylor polynomial of degree 7 on |r| <= 0.35: truncation error below 6e-9.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits((k_bits.wrapping_add(127) << 23) as u32);
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

/// Softplus `ln(1 + exp(a))` and its slope `sigmoid(a)` for every element of `a` (all three
/// slices the same length).
pub fn softplus_and_slope(a: &[f32], value: &mut [f32], slope: &mut [f32]) {
    dispatch(Kind::Softplus, a, value, slope);
}

/// ELU (alpha 1: `a` for `a > 0`, else `exp(a) - 1`) and its slope (`1`, else `exp(a)`) for every
/// element of `a`.
pub fn elu_and_slope(a: &[f32], value: &mut [f32], slope: &mut [f32]) {
    dispatch(Kind::Elu, a, value, slope);
}

/// The activations with a fused CPU kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Softplus,
    Elu,
}

#[allow(unsafe_code)]
fn dispatch(kind: Kind, a: &[f32], value: &mut [f32], slope: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { kernel_avx2(kind, a, value, slope) };
        return;
    }
    kernel(kind, a, value, slope);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn kernel_avx2(kind: Kind, a: &[f32], value: &mut [f32], slope: &mut [f32]) {
    kernel(kind, a, value, slope);
}

#[inline(always)]
fn kernel(kind: Kind, a: &[f32], value: &mut [f32], slope: &mut [f32]) {
    let n = a.len().min(value.len()).min(slope.len());
    let (a, value, slope) = (&a[..n], &mut value[..n], &mut slope[..n]);
    match kind {
        Kind::Softplus => {
            for i in 0..n {
                let x = a[i];
                let e = exp_nonpositive(-x.abs());
                let relu = if x > 0.0 { x } else { 0.0 };
                value[i] = relu + ln_1p_unit(e);
                let num = if x >= 0.0 { 1.0 } else { e };
                slope[i] = num / (1.0 + e);
            }
        }
        Kind::Elu => {
            for i in 0..n {
                let x = a[i];
                let neg = if x < 0.0 { x } else { 0.0 };
                let e = exp_nonpositive(neg);
                value[i] = if x > 0.0 { x } else { e - 1.0 };
                slope[i] = if x > 0.0 { 1.0 } else { e };
            }
        }
    }
}

/// Whether the fused path applies: an f32 tensor on the CPU backend (with or without autodiff).
pub fn fused_applies<const D: usize>(a: &Tensor<D>) -> bool {
    a.dtype() == DType::F32 && a.device().without_autodiff() == Device::flex()
}

/// The activation as `a * slope + offset`, the slope and offset computed on the host; `None`
/// when the tensor cannot be read as f32 (the caller then uses the tensor-op form). Only for
/// tensors where [`fused_applies`] holds.
pub(crate) fn fused<const D: usize>(kind: Kind, a: Tensor<D>) -> Option<Tensor<D>> {
    let shape = a.shape();
    let device = a.device();
    let host: Vec<f32> = a.clone().into_data().try_into_vec::<f32>().ok()?;
    let mut value = vec![0.0f32; host.len()];
    let mut slope = vec![0.0f32; host.len()];
    dispatch(kind, &host, &mut value, &mut slope);
    let offset: Vec<f32> = value
        .iter()
        .zip(&slope)
        .zip(&host)
        .map(|((v, s), a)| v - s * a)
        .collect();
    let s = Tensor::<D>::from_data(TensorData::new(slope, shape.clone()), &device);
    let c = Tensor::<D>::from_data(TensorData::new(offset, shape), &device);
    Some(a * s + c)
}

/// The activation's value alone, computed on the host: for tensors that no gradient flows
/// through (planning on the plain device), one pass instead of [`fused`]'s three. `None` when
/// the tensor cannot be read as f32.
pub(crate) fn fused_value<const D: usize>(kind: Kind, a: Tensor<D>) -> Option<Tensor<D>> {
    let shape = a.shape();
    let device = a.device();
    let host: Vec<f32> = a.into_data().try_into_vec::<f32>().ok()?;
    let mut value = vec![0.0f32; host.len()];
    let mut slope = vec![0.0f32; host.len()];
    dispatch(kind, &host, &mut value, &mut slope);
    Some(Tensor::<D>::from_data(
        TensorData::new(value, shape),
        &device,
    ))
}

/// `sigmoid(x)` through [`exp_nonpositive`] (vectorisable).
#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_nonpositive(if x > 0.0 { -x } else { x });
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// The GRU's gating (PlaNet's cell) on the host, for rows of the fused gate pre-activations
/// `parts` (`[n, 3d]`: reset, candidate, update) and the state `h` (`[n, d]`):
/// `r = sigmoid(reset)`, `c = tanh(r * candidate)`, `u = sigmoid(update - 1)`,
/// `out = u c + (1 - u) h`.
#[allow(unsafe_code)]
pub fn gru_gates(parts: &[f32], h: &[f32], d: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { gru_gates_avx2(parts, h, d, out) };
        return;
    }
    gru_gates_kernel(parts, h, d, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gru_gates_avx2(parts: &[f32], h: &[f32], d: usize, out: &mut [f32]) {
    gru_gates_kernel(parts, h, d, out);
}

#[inline(always)]
fn gru_gates_kernel(parts: &[f32], h: &[f32], d: usize, out: &mut [f32]) {
    for ((p, h), o) in parts
        .chunks_exact(3 * d)
        .zip(h.chunks_exact(d))
        .zip(out.chunks_exact_mut(d))
    {
        let (reset, rest) = p.split_at(d);
        let (cand, update) = rest.split_at(d);
        for j in 0..d {
            let r = sigmoid_f32(reset[j]);
            // tanh(y) = 2 sigmoid(2y) - 1
            let c = 2.0 * sigmoid_f32(2.0 * r * cand[j]) - 1.0;
            let u = sigmoid_f32(update[j] - 1.0);
            o[j] = u * c + (1.0 - u) * h[j];
        }
    }
}

/// The GRU's gating for `parts: [n, 3 d]` and `h: [n, d]` in one vectorised host pass (plain
/// f32 on the CPU; None when the data is not f32).
pub(super) fn gru_host(parts: Tensor<2>, h: Tensor<2>, d: usize) -> Option<Tensor<2>> {
    let [n, _] = h.dims();
    let device = h.device();
    let p: Vec<f32> = parts.into_data().try_into_vec::<f32>().ok()?;
    let hv: Vec<f32> = h.into_data().try_into_vec::<f32>().ok()?;
    let mut out = vec![0f32; n * d];
    gru_gates(&p, &hv, d, &mut out);
    Some(Tensor::from_data(TensorData::new(out, [n, d]), &device))
}

#[cfg(test)]
mod gru_tests {
    use super::*;

    #[test]
    fn fused_gates_match_the_formula() {
        let d = 5;
        let parts: Vec<f32> = (0..2 * 3 * d)
            .map(|i| (i as f32 * 0.37).sin() * 6.0)
            .collect();
        let h: Vec<f32> = (0..2 * d).map(|i| (i as f32 * 0.91).cos()).collect();
        let mut out = vec![0.0; 2 * d];
        gru_gates(&parts, &h, d, &mut out);
        for i in 0..2 {
            for j in 0..d {
                let p = |k: usize| f64::from(parts[i * 3 * d + k * d + j]);
                let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
                let r = sig(p(0));
                let c = (r * p(1)).tanh();
                let u = sig(p(2) - 1.0);
                let want = u * c + (1.0 - u) * f64::from(h[i * d + j]);
                assert!((f64::from(out[i * d + j]) - want).abs() < 1e-6);
            }
        }
    }
}
