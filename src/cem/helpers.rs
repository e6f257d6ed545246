//! The solver's helpers: noise, bounds, row masks and the elite weights.

use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;

use super::config::CemConfig;
use crate::error::Result;
use crate::lml::{self, Jacobian};

/// Standard normal noise of `shape`, drawn on the host by [`crate::noise`]; the caller's `rng`
/// fixes it.
pub(super) fn sample_noise<R: Rng + ?Sized>(
    rng: &mut R,
    shape: [usize; 3],
    device: &Device,
    dtype: burn::tensor::DType,
) -> Tensor<3> {
    let mut v = vec![0.0f32; shape.iter().product()];
    crate::noise::fill_normal(rng, &mut v);
    noise_tensor(v, shape, device, dtype)
}

pub(super) fn noise_tensor(
    v: Vec<f32>,
    shape: [usize; 3],
    device: &Device,
    dtype: burn::tensor::DType,
) -> Tensor<3> {
    let data = if dtype == burn::tensor::DType::F64 {
        TensorData::new(v.into_iter().map(f64::from).collect::<Vec<f64>>(), shape)
    } else {
        TensorData::new(v, shape)
    };
    Tensor::from_data(data, (device, dtype))
}

pub(super) fn clamp<const D: usize>(x: Tensor<D>, lb: Option<f64>, ub: Option<f64>) -> Tensor<D> {
    match (lb, ub) {
        (Some(l), Some(u)) => x.clamp(l, u),
        (Some(l), None) => x.clamp_min(l),
        (None, Some(u)) => x.clamp_max(u),
        (None, None) => x,
    }
}

/// A `[batch, nx]` mask that is true on the rows that are no longer active.
pub(super) fn row_mask(
    active: &[bool],
    nx: usize,
    device: &Device,
) -> Tensor<2, burn::tensor::Bool> {
    let data: Vec<bool> = active
        .iter()
        .flat_map(|a| std::iter::repeat_n(!*a, nx))
        .collect();
    Tensor::from_data(TensorData::new(data, [active.len(), nx]), device)
}

/// The elite weights of one iteration, `[batch, n]` rows summing to `n_elite`, and the number of
/// non-finite values met. Computed on the host; when `values` is tracked the exact Jacobian of
/// the map values -> weights (normalisation and soft top-k together) is attached.
pub(crate) fn elite_weights(
    values: &Tensor<2>,
    host: &[f64],
    [batch, n]: [usize; 2],
    c: &CemConfig,
) -> Result<(Tensor<2>, usize)> {
    let device = values.device();
    let dtype = values.dtype();
    let k = c.n_elite as f64;
    let mut clean = host.to_vec();
    let mut bad = 0;
    for row in clean.chunks_mut(n) {
        let worst = row
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let fill = if worst.is_finite() { worst + 1.0 } else { 0.0 };
        for v in row.iter_mut() {
            if !v.is_finite() {
                *v = fill;
                bad += 1;
            }
        }
    }
    // Normalise per row: v <- (v - mean) / (std + 1e-6), std with n - 1 as the reference does.
    let mut centred = clean.clone();
    let mut scale = vec![1.0; batch];
    let mut std = vec![0.0; batch];
    if c.normalize {
        for (b, row) in centred.chunks_mut(n).enumerate() {
            let mean = row.iter().sum::<f64>() / n as f64;
            row.iter_mut().for_each(|v| *v -= mean);
            std[b] = (row.iter().map(|v| v * v).sum::<f64>() / (n - 1) as f64).sqrt();
            scale[b] = 1.0 / (std[b] + 1e-6);
        }
    }
    // LML input: x = -v / tau, i.e. the top-k of the negated (normalised) values.
    let mut y = vec![0.0; batch * n];
    if c.is_hard() || c.n_elite >= n {
        if c.n_elite >= n {
            y.iter_mut().for_each(|v| *v = 1.0);
        } else {
            for ((row, out), b) in centred.chunks(n).zip(y.chunks_mut(n)).zip(0..) {
                let neg: Vec<f64> = row.iter().map(|v| -v * scale[b]).collect();
                lml::hard_top_k(&neg, c.n_elite, out);
            }
        }
        return Ok((lml::upload(&y, [batch, n], &device, dtype), bad));
    }
    let z: Vec<f64> = centred
        .chunks(n)
        .enumerate()
        .flat_map(|(b, row)| {
            let s = scale[b] / c.tau;
            row.iter().map(move |v| -v * s)
        })
        .collect();
    lml::solve_rows(
        &z,
        n,
        k,
        lml::tolerance(dtype, k),
        dtype == burn::tensor::DType::F64,
        &mut y,
    );
    let value = lml::upload(&y, [batch, n], &device, dtype);
    if !values.is_tracked() {
        return Ok((value, bad));
    }
    // Jacobian of values -> weights. With d = y(1-y)/tau, w = d/sum(d), c the centred values,
    // s their std, and q = d*c - d (w.c):
    //   J = -(1/(s+eps)) [diag(d) (I - 1 w^T) - q c^T / ((n-1) s (s+eps))]
    // (without normalisation: J = -diag(d) (I - 1 w^T)).
    let mut scale_v = vec![0.0; batch * n];
    let mut weights_v = vec![0.0; batch * n];
    let mut u2 = vec![0.0; batch * n];
    let mut v2 = vec![0.0; batch * n];
    let mut d = vec![0.0; n];
    for b in 0..batch {
        let r = b * n..(b + 1) * n;
        lml::lml_jacobian_row(
            &z[r.clone()],
            &y[r.clone()],
            c.tau,
            &mut d,
            &mut weights_v[r.clone()],
        );
        let sc = scale[b];
        let kappa = (n - 1) as f64 * std[b] / sc;
        let wc: f64 = weights_v[r.clone()]
            .iter()
            .zip(&centred[r.clone()])
            .map(|(a, b)| a * b)
            .sum();
        for (i, di) in d.iter().enumerate() {
            let j = b * n + i;
            scale_v[j] = -di * sc;
            if c.normalize && kappa > 0.0 {
                u2[j] = (di * centred[j] - di * wc) * sc / kappa;
                v2[j] = centred[j];
            }
        }
    }
    let rank1 = if c.normalize { vec![(u2, v2)] } else { vec![] };
    let weights = lml::attach_jacobian(
        value,
        values.clone(),
        host,
        Jacobian {
            scale: scale_v,
            weights: weights_v,
            rank1,
        },
    )?;
    Ok((weights, bad))
}
