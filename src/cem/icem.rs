//! The iCEM pieces of the solver (Pinneri et al., CoRL 2020): temporally coloured sampling
//! noise, the shrinking population, and picking the best samples of an iteration to keep.
//!
//! Coloured noise: a sequence of `T` standard normals is mapped by a fixed `T x T` matrix `M`
//! to a sequence whose power spectrum falls as `f^-beta`. `M` is the real inverse DFT with the
//! frequency `k / T` weighted by `(k / T)^(-beta / 2)` (the zero frequency weighted like the
//! lowest non-zero one), each of the `T` input normals feeding one real or imaginary part:
//!
//! ```text
//! y_t = ( sqrt2 w_0 a_0 + 2 sum_{k=1}^{K} w_k (a_k cos(2 pi k t / T) - b_k sin(2 pi k t / T))
//!         + [T even] sqrt2 w_{T/2} a_{T/2} (-1)^t ) / (T s),      K = ceil(T / 2) - 1,
//! ```
//!
//! with `s` chosen so that every `y_t` has unit variance. With `beta = 0` `M` is orthogonal:
//! the output is white noise again. Each coordinate of a time step gets its own sequence.
//! Sequences of 3 steps or fewer stay white (their only frequencies get the same weight), as
//! with the `colorednoise` package iCEM uses.

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{Error, Result};

/// The `T x T` colouring matrix for exponent `beta`, row-major (`y = M a`).
pub(crate) fn colouring_matrix(steps: usize, beta: f64) -> Vec<f64> {
    let t = steps as f64;
    let weight = |k: usize| (k.max(1) as f64 / t).powf(-beta / 2.0);
    let k_max = steps.div_ceil(2) - 1;
    // Column j of M: 0 the zero frequency, then (cos, sin) pairs for k = 1..=K, then Nyquist
    // (even T).
    let entry = |row: usize, col: usize| -> f64 {
        let r = row as f64;
        if col == 0 {
            return 2f64.sqrt() * weight(0);
        }
        let k = col.div_ceil(2);
        if k > k_max {
            let sign = if row.is_multiple_of(2) { 1.0 } else { -1.0 };
            return 2f64.sqrt() * weight(steps / 2) * sign;
        }
        let phase = 2.0 * std::f64::consts::PI * k as f64 * r / t;
        let basis = if col % 2 == 1 {
            phase.cos()
        } else {
            -phase.sin()
        };
        2.0 * weight(k) * basis
    };
    let mut m = vec![0.0; steps * steps];
    for (row, chunk) in m.chunks_mut(steps).enumerate() {
        for (col, out) in chunk.iter_mut().enumerate() {
            *out = entry(row, col);
        }
    }
    // Unit variance per step: every row of M has the same squared norm.
    let norm = m[..steps].iter().map(|v| v * v).sum::<f64>().sqrt();
    m.iter_mut().for_each(|v| *v /= norm);
    m
}

/// Colours white noise `eps: [batch, n, steps * dims]` along its time axis (rows laid out as
/// `[steps, dims]`, step-major) with the matrix of [`colouring_matrix`].
pub(crate) fn colour(eps: Tensor<3>, steps: usize, beta: f64) -> Result<Tensor<3>> {
    let [b, n, nx] = eps.dims();
    if steps == 0 || !nx.is_multiple_of(steps) {
        return Err(Error::shape(
            "coloured noise time axis",
            format!("a divisor of the row size {nx}"),
            [steps],
        ));
    }
    let dims = nx / steps;
    let device = eps.device();
    let m: Tensor<2> = Tensor::from_data(
        TensorData::new(colouring_matrix(steps, beta), [steps, steps]),
        (&device, eps.dtype()),
    );
    // [b n, steps, dims] -> [b n dims, steps] -> (x M^T) -> back.
    let x = eps
        .reshape([b * n, steps, dims])
        .swap_dims(1, 2)
        .reshape([b * n * dims, steps]);
    let y = x.matmul(m.transpose());
    Ok(y.reshape([b * n, dims, steps])
        .swap_dims(1, 2)
        .reshape([b, n, nx]))
}

/// Fresh samples drawn in iteration `iter` (from 0): `n_sample / decay^iter` rounded up, never
/// fewer than `2 n_elite` (nor than 2) and never more than `n_sample`.
pub(crate) fn population(n_sample: usize, n_elite: usize, decay: f64, iter: usize) -> usize {
    if decay == 1.0 {
        return n_sample;
    }
    let shrunk = (n_sample as f64 / decay.powi(iter as i32)).ceil() as usize;
    shrunk.max((2 * n_elite).min(n_sample)).max(2).min(n_sample)
}

/// Per row, the indices of the `keep` lowest values (non-finite ones last), as an index tensor
/// `[batch, keep]`.
pub(crate) fn best_indices(
    host: &[f64],
    [batch, n]: [usize; 2],
    keep: usize,
    device: &burn::tensor::Device,
) -> Tensor<2, Int> {
    let mut idx = Vec::with_capacity(batch * keep);
    for row in host.chunks(n) {
        let mut order: Vec<usize> = (0..n).collect();
        let key = |i: usize| {
            if row[i].is_finite() {
                row[i]
            } else {
                f64::INFINITY
            }
        };
        order.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
        idx.extend(order[..keep].iter().map(|&i| i as i64));
    }
    Tensor::from_data(TensorData::new(idx, [batch, keep]), device)
}

/// Rows `idx: [batch, m]` of `x: [batch, n, nx]`: `[batch, m, nx]` (differentiable in `x`).
pub(crate) fn gather_rows(x: Tensor<3>, idx: Tensor<2, Int>) -> Tensor<3> {
    let [b, _, nx] = x.dims();
    let m = idx.dims()[1];
    x.gather(1, idx.unsqueeze_dim::<3>(2).expand([b, m, nx]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product_mmt(m: &[f64], t: usize) -> Vec<f64> {
        let mut out = vec![0.0; t * t];
        for i in 0..t {
            for j in 0..t {
                out[i * t + j] = (0..t).map(|k| m[i * t + k] * m[j * t + k]).sum();
            }
        }
        out
    }

    #[test]
    fn white_is_orthogonal_and_coloured_has_unit_variance_and_memory() {
        for t in [1, 2, 3, 7, 12, 30] {
            // beta 0: M M^T = I, so white noise stays white.
            let c = product_mmt(&colouring_matrix(t, 0.0), t);
            for i in 0..t {
                for j in 0..t {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (c[i * t + j] - want).abs() < 1e-12,
                        "T {t} ({i},{j}): {}",
                        c[i * t + j]
                    );
                }
            }
            // beta 2: unit variance at every step, and neighbours correlated positively (from 4
            // steps on).
            let c = product_mmt(&colouring_matrix(t, 2.0), t);
            for i in 0..t {
                assert!((c[i * t + i] - 1.0).abs() < 1e-12);
                if i + 1 < t && t > 3 {
                    assert!(c[i * t + i + 1] > 0.5, "T {t}: lag-1 {}", c[i * t + i + 1]);
                }
            }
        }
    }

    #[test]
    fn the_population_shrinks_to_twice_the_elites() {
        assert_eq!(population(500, 50, 1.0, 3), 500);
        let sizes: Vec<usize> = (0..5).map(|i| population(500, 50, 1.25, i)).collect();
        assert_eq!(sizes, [500, 400, 320, 256, 205]);
        assert_eq!(population(500, 50, 4.0, 4), 100);
        assert_eq!(population(10, 8, 2.0, 3), 10);
        assert_eq!(population(4, 1, 10.0, 2), 2);
    }
}
