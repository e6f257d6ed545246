//! The LML projection's backward pass: its Jacobian through the implicit function theorem.

use super::*;

/// One row of the LML Jacobian factors: `d = y (1 - y) / tau` on the entries that took part in
/// the search (zero on non-finite ones) and `w = d / sum(d)` (zero when `sum(d)` is zero).
pub(crate) fn lml_jacobian_row(x: &[f64], y: &[f64], tau: f64, d: &mut [f64], w: &mut [f64]) {
    let mut sum = 0.0;
    for i in 0..x.len() {
        d[i] = if x[i].is_finite() {
            y[i] * (1.0 - y[i]) / tau
        } else {
            0.0
        };
        sum += d[i];
    }
    for i in 0..x.len() {
        w[i] = if sum > 0.0 { d[i] / sum } else { 0.0 };
    }
}

/// A per-row Jacobian `J = diag(scale) (I - 1 weights^T) + sum_r u_r v_r^T`, every vector
/// stored row-major `[batch, n]`: `J delta = scale * (delta - <weights, delta>) + ...`.
pub(crate) struct Jacobian {
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub rank1: Vec<(Vec<f64>, Vec<f64>)>,
}

/// Returns `value + J (x - x.detach())`: numerically `value`, with `J^T` as its backward into
/// `x`. Non-finite entries of `x` (per `host`) are cut from the tape first so that no `inf - inf`
/// enters the sum.
pub(crate) fn attach_jacobian(
    value: Tensor<2>,
    x: Tensor<2>,
    host: &[f64],
    jac: Jacobian,
) -> Result<Tensor<2>> {
    let [batch, n] = x.dims();
    let device = x.device();
    let dtype = x.dtype();
    let up = |v: Vec<f64>| upload(&v, [batch, n], &device, dtype);
    let x = if host.iter().all(|v| v.is_finite()) {
        x
    } else {
        let finite: Vec<bool> = host.iter().map(|v| v.is_finite()).collect();
        let mask = Tensor::<2, burn::tensor::Bool>::from_data(
            TensorData::new(finite, [batch, n]),
            &device,
        );
        x.mask_fill(mask.bool_not(), 0.0)
    };
    let delta = x.clone() - x.detach();
    let centred = delta.clone() - (delta.clone() * up(jac.weights)).sum_dim(1);
    let mut lin = centred * up(jac.scale);
    for (u, v) in jac.rank1 {
        let dot = (delta.clone() * up(v)).sum_dim(1);
        lin = lin + up(u) * dot;
    }
    Ok(value + lin)
}
