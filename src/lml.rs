//! The temperature-scaled LML projection: a soft, differentiable top-k (paper eq. 4).
//!
//! For each row `x` of a `[batch, n]` tensor,
//!
//! ```text
//! y = argmin_{0 < y < 1}  -x.y - tau * H_b(y)   subject to  sum(y) = k
//! ```
//!
//! whose solution is `y_i = sigmoid((x_i + nu) / tau)` for one scalar `nu` per row. `y` lies in
//! the LML polytope (coordinates in `[0, 1]` summing to `k`); as `tau -> 0` it becomes the hard
//! top-k indicator (paper prop. 2).
//!
//! **Forward.** `nu` is found per row by a safeguarded Newton search on the monotone function
//! `g(nu) = sum_i sigmoid((x_i + nu)/tau) - k`, started between the k-th and (k+1)-th largest
//! values and kept inside a bracket derived from them (a bisection step replaces any Newton step
//! that leaves it). It stops when `|sum(y) - k| <= 1e-7 k` for f32 tensors and `1e-12 k` for
//! f64 (the contract is `1e-5 k` and `1e-10 k`), typically in 3-6 iterations. The search runs
//! on the host in f64, rows in parallel with rayon, whatever the tensor's device.
//!
//! **Backward.** The implicit-function gradient, not autodiff through the iterations: with
//! `d = y (1 - y) / tau`, `grad_x = d * (g - <d, g> / sum(d))`. It is put on burn's tape as the
//! exact linearisation of the solution map at `x` (a value-free term `J (x - x.detach())`), so it
//! works on any burn device with autodiff and costs a handful of element-wise operations.
//!
//! **Edge cases.** `k >= n` gives all ones and a zero gradient. `k < 1` or `tau < 0` is an
//! error; `tau == 0` is the hard top-k (integral `k`, ties to the lower index, no gradient).
//! `NaN` inputs rank last and always get `y = 0`; `+inf` inputs get `y = 1` (sharing `k`
//! equally when more than `k` are infinite); `-inf` inputs get `0` unless the finite entries
//! cannot hold `k`. Non-finite entries receive a zero gradient.
//!
//! The paper's `tau` is used throughout; the reference code's `temp` multiplies the values and is
//! `1 / tau`.

use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::error::{Error, Result, check_min};

/// Newton iterations after which a row's search stops whatever its residual.
const MAX_ITER: usize = 100;

/// Below this many elements a call runs on the calling thread (rayon's overhead would dominate).
const PAR_MIN_ELEMS: usize = 1 << 14;

/// What a projection reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LmlStats {
    /// Most root-search iterations any row needed.
    pub max_iterations: usize,
    /// Largest `|sum(y) - k|` over rows, computed in f64 before the cast to the tensor's dtype.
    pub max_residual: f64,
}

/// The temperature-scaled LML projection of each row of `x` (`[batch, n]`) with parameters
/// `k` (soft number of ones, `>= 1`) and `tau` (temperature, `>= 0`; `0` is the hard top-k).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// let device = Device::flex();
/// let x = Tensor::<2>::from_floats([[3.0, 1.0, 2.0, -1.0]], &device);
/// let y = dcem::lml::lml(x, 2.0, 1e-3).unwrap();
/// let y: Vec<f32> = y.into_data().to_vec().unwrap();
/// assert!((y[0] - 1.0).abs() < 1e-4 && (y[2] - 1.0).abs() < 1e-4 && y[1] < 1e-4);
/// ```
pub fn lml(x: Tensor<2>, k: f64, tau: f64) -> Result<Tensor<2>> {
    lml_with_stats(x, k, tau).map(|(y, _)| y)
}

/// [`lml`], also returning the root search's [`LmlStats`].
pub fn lml_with_stats(x: Tensor<2>, k: f64, tau: f64) -> Result<(Tensor<2>, LmlStats)> {
    check_k_tau(k, tau)?;
    let [batch, n] = x.dims();
    if k >= n as f64 {
        return Ok((x.ones_like().detach(), LmlStats::default()));
    }
    let host = read_f64(&x)?;
    let dtype = x.dtype();
    let device = x.device();
    let mut y = vec![0.0; batch * n];
    if tau == 0.0 {
        let k = hard_k(k)?;
        for (row, out) in host.chunks(n).zip(y.chunks_mut(n)) {
            hard_top_k(row, k, out);
        }
        let y = Tensor::from_data(TensorData::new(y, [batch, n]), (&device, dtype));
        return Ok((y, LmlStats::default()));
    }
    let tol = tolerance(dtype, k);
    let z: Vec<f64> = host.iter().map(|v| v / tau).collect();
    let stats = solve_rows(&z, n, k, tol, &mut y);
    let value = Tensor::from_data(TensorData::new(y.clone(), [batch, n]), (&device, dtype));
    if !x.is_tracked() {
        return Ok((value, stats));
    }
    // Implicit gradient: J = diag(d) - d w^T with d = y(1-y)/tau, w = d / sum(d).
    let mut d = vec![0.0; batch * n];
    let mut w = vec![0.0; batch * n];
    let mut neg_d = vec![0.0; batch * n];
    for r in 0..batch {
        let rows = r * n..(r + 1) * n;
        lml_jacobian_row(
            &host[rows.clone()],
            &y[rows.clone()],
            tau,
            &mut d[rows.clone()],
            &mut w[rows.clone()],
        );
        for i in rows {
            neg_d[i] = -d[i];
        }
    }
    let y = attach_jacobian(
        value,
        x,
        &host,
        Jacobian {
            diag: d,
            rank1: vec![(neg_d, w)],
        },
    )?;
    Ok((y, stats))
}

/// Validates the LML parameters.
pub(crate) fn check_k_tau(k: f64, tau: f64) -> Result<()> {
    check_min("k", k, 1.0)?;
    if !tau.is_finite() || tau < 0.0 {
        return Err(Error::option(
            "tau",
            format!("must be finite and >= 0 (0 = hard top-k), got {tau}"),
        ));
    }
    Ok(())
}

/// `k` as a count for the hard top-k.
fn hard_k(k: f64) -> Result<usize> {
    if k.fract() != 0.0 {
        return Err(Error::option(
            "k",
            format!("the hard top-k (tau = 0) needs an integral k, got {k}"),
        ));
    }
    Ok(k as usize)
}

/// The root-search tolerance on `|sum(y) - k|` for a tensor of `dtype`.
pub(crate) fn tolerance(dtype: DType, k: f64) -> f64 {
    match dtype {
        DType::F64 => 1e-12 * k,
        _ => 1e-7 * k,
    }
}

/// Reads a float tensor into an f64 vector.
pub(crate) fn read_f64<const D: usize>(x: &Tensor<D>) -> Result<Vec<f64>> {
    x.to_data_as::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| Error::Data(format!("{e:?}")))
}

/// Hard top-k of one row: ones at the `k` largest entries (NaN last, ties to the lower index).
pub(crate) fn hard_top_k(row: &[f64], k: usize, out: &mut [f64]) {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    let key = |i: usize| {
        if row[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            row[i]
        }
    };
    // Stable sort: equal keys keep index order, so ties go to the lower index.
    idx.sort_by(|&a, &b| {
        key(b)
            .total_cmp(&key(a))
            .then((row[a].is_nan()).cmp(&row[b].is_nan()))
    });
    out.iter_mut().for_each(|v| *v = 0.0);
    for &i in idx.iter().take(k) {
        out[i] = 1.0;
    }
}

/// Solves every row of `z` (already divided by `tau`), writing the projection into `y`.
pub(crate) fn solve_rows(z: &[f64], n: usize, k: f64, tol: f64, y: &mut [f64]) -> LmlStats {
    let run = |(zr, yr): (&[f64], &mut [f64])| {
        let mut scratch = Vec::with_capacity(n);
        solve_row(zr, k, tol, yr, &mut scratch)
    };
    let per_row: Vec<(usize, f64)> = if z.len() >= PAR_MIN_ELEMS {
        z.par_chunks(n).zip(y.par_chunks_mut(n)).map(run).collect()
    } else {
        z.chunks(n).zip(y.chunks_mut(n)).map(run).collect()
    };
    per_row
        .into_iter()
        .fold(LmlStats::default(), |s, (it, res)| LmlStats {
            max_iterations: s.max_iterations.max(it),
            max_residual: s.max_residual.max(res),
        })
}

#[inline]
fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

/// `sum_i sigmoid(z_i + m)` and its derivative in `m`.
#[inline]
fn g_and_slope(z: &[f64], m: f64) -> (f64, f64) {
    let mut g = 0.0;
    let mut dg = 0.0;
    for &zi in z {
        let y = sigmoid(zi + m);
        g += y;
        dg += y * (1.0 - y);
    }
    (g, dg)
}

/// Projects one row `z = x / tau`. Returns (iterations, |sum(y) - k|).
fn solve_row(z: &[f64], k: f64, tol: f64, y: &mut [f64], finite: &mut Vec<f64>) -> (usize, f64) {
    y.iter_mut().for_each(|v| *v = 0.0);
    finite.clear();
    let (mut n_pinf, mut n_minf) = (0usize, 0usize);
    for &v in z {
        if v.is_finite() {
            finite.push(v);
        } else if v == f64::INFINITY {
            n_pinf += 1;
        } else if v == f64::NEG_INFINITY {
            n_minf += 1;
        }
    }
    // +inf entries take the top places first.
    if n_pinf as f64 >= k {
        let share = k / n_pinf as f64;
        for (o, &v) in y.iter_mut().zip(z) {
            if v == f64::INFINITY {
                *o = share;
            }
        }
        return (0, 0.0);
    }
    let k_fin = k - n_pinf as f64;
    let n_fin = finite.len();
    if n_fin as f64 <= k_fin {
        // Every finite entry is in; what is left goes to the -inf entries (never to NaN).
        let rest = k_fin - n_fin as f64;
        let share = if n_minf > 0 {
            (rest / n_minf as f64).min(1.0)
        } else {
            0.0
        };
        for (o, &v) in y.iter_mut().zip(z) {
            *o = if v.is_finite() || v == f64::INFINITY {
                1.0
            } else if v == f64::NEG_INFINITY {
                share
            } else {
                0.0
            };
        }
        let total = n_fin as f64 + n_pinf as f64 + share * n_minf as f64;
        return (0, (total - k).abs());
    }
    // Bracket from order statistics: j = ceil(k) and j' = floor(k) + 1 (1-based ranks).
    let j = k_fin.ceil() as usize;
    let jp = k_fin.floor() as usize + 1;
    finite.select_nth_unstable_by(j - 1, |a, b| b.total_cmp(a));
    let z_j = finite[j - 1];
    let z_jp = if jp == j {
        z_j
    } else {
        finite[j..]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max)
    };
    // At m = lo the top j-1 entries hold at most j-1 and the others at most k - j + 1.
    let r = (k_fin - j as f64 + 1.0) / (n_fin - j + 1) as f64;
    let mut lo = -z_j - (1.0 / r - 1.0).ln();
    // At m = hi the top j' entries each hold at least k / j'.
    let mut hi = -z_jp + (k_fin / (jp as f64 - k_fin)).ln();
    let mut m = (-(z_j + z_jp) / 2.0).clamp(lo, hi);
    let mut iters = 0;
    let mut polished = false;
    while iters < MAX_ITER {
        iters += 1;
        let (g, dg) = g_and_slope(finite, m);
        let res = g - k_fin;
        if res.abs() <= tol {
            // One more Newton step costs little and takes the residual to rounding level,
            // which keeps finite-difference checks of the forward pass clean.
            if polished || dg <= 0.0 {
                break;
            }
            polished = true;
        }
        if res < 0.0 {
            lo = m;
        } else {
            hi = m;
        }
        let newton = m - res / dg;
        m = if dg > 0.0 && newton >= lo && newton <= hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if lo >= hi {
            break;
        }
    }
    let mut total = n_pinf as f64;
    for (o, &v) in y.iter_mut().zip(z) {
        if v.is_finite() {
            *o = sigmoid(v + m);
            total += *o;
        } else if v == f64::INFINITY {
            *o = 1.0;
        }
    }
    (iters, (total - k).abs())
}

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

/// A per-row Jacobian `J = diag(diag) + sum_r u_r v_r^T`, stored row-major `[batch, n]`.
pub(crate) struct Jacobian {
    pub diag: Vec<f64>,
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
    let up = |v: Vec<f64>| Tensor::<2>::from_data(TensorData::new(v, [batch, n]), (&device, dtype));
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
    let mut lin = delta.clone() * up(jac.diag);
    for (u, v) in jac.rank1 {
        let dot = (delta.clone() * up(v)).sum_dim(1);
        lin = lin + up(u) * dot;
    }
    Ok(value + lin)
}
