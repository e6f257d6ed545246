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
//! **Forward.** `nu` is found per row by a safeguarded Halley search (Newton's method with the
//! second derivative, cubic convergence) on the monotone function
//! `g(nu) = sum_i sigmoid((x_i + nu)/tau) - k`, kept inside a bracket where `g` changes sign (a
//! bisection step replaces any step that leaves it). When the row's values are spread over less
//! than 64 `tau` (the soft regime) the bracket comes from the row's extremes and the search
//! starts where `sum_i exp((x_i + nu)/tau) = k`; otherwise (near the hard top-k) it comes from
//! the k-th and (k+1)-th largest values and starts between them. It stops when
//! `|sum(y) - k| <= 1e-6 k` for f32 tensors, and at `1e-14 k` plus one polishing step for f64
//! (the contract is `1e-5 k` and `1e-10 k`), typically after 3-5 evaluations. The search runs on
//! the host in f64 with a vectorised `exp` (AVX2 and FMA when the CPU has them; a degree-9
//! polynomial for f32 tensors, degree 13 for f64), rows in
//! parallel with rayon, whatever the tensor's device.
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
pub(crate) use crate::nn::upload;

/// Root-search evaluations after which a row stops whatever its residual.
const MAX_ITER: usize = 100;

/// Above this spread of `x / tau` in a row the search brackets the root with order statistics
/// (near-hard top-k); below it, with the row's extremes.
const HARD_SPREAD: f64 = 64.0;

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
    let mut z = read_f64(&x)?;
    let dtype = x.dtype();
    let device = x.device();
    let mut y = vec![0.0; batch * n];
    let stats = project_rows(&mut z, n, k, tau, dtype, &mut y)?;
    let value = upload(&y, [batch, n], &device, dtype);
    if tau == 0.0 || !x.is_tracked() {
        return Ok((value, stats));
    }
    // Implicit gradient: J = diag(d) - d w^T with d = y(1-y)/tau, w = d / sum(d).
    let mut d = vec![0.0; batch * n];
    let mut w = vec![0.0; batch * n];
    for r in 0..batch {
        let rows = r * n..(r + 1) * n;
        lml_jacobian_row(
            &z[rows.clone()],
            &y[rows.clone()],
            tau,
            &mut d[rows.clone()],
            &mut w[rows],
        );
    }
    let y = attach_jacobian(
        value,
        x,
        &z,
        Jacobian {
            scale: d,
            weights: w,
            rank1: vec![],
        },
    )?;
    Ok((y, stats))
}

/// [`lml`] on host values in f64, without tensors: `x` holds rows of `n` values (row-major);
/// the projection is solved to `|sum(y) - k| <= 1e-14 k`, as for f64 tensors, with the same
/// edge cases (`k >= n`: all ones; `tau = 0`: the hard top-k). What bindings use (the Python
/// `dcem.lml`), where the CPU device's float type must not change.
pub fn lml_f64(x: &[f64], n: usize, k: f64, tau: f64) -> Result<Vec<f64>> {
    check_k_tau(k, tau)?;
    if n == 0 || !x.len().is_multiple_of(n) {
        return Err(Error::shape(
            "lml_f64 input",
            format!("whole rows of n = {n} values"),
            [x.len()],
        ));
    }
    if k >= n as f64 {
        return Ok(vec![1.0; x.len()]);
    }
    let mut y = vec![0.0; x.len()];
    project_rows(&mut x.to_vec(), n, k, tau, DType::F64, &mut y)?;
    Ok(y)
}

/// The projection of rows of `n` values (`k < n`) into `y`, to the tolerance of `dtype`: the
/// hard top-k for `tau = 0`, else the root search on `z / tau` (`z` is divided in place, as the
/// backward needs it).
fn project_rows(
    z: &mut [f64],
    n: usize,
    k: f64,
    tau: f64,
    dtype: DType,
    y: &mut [f64],
) -> Result<LmlStats> {
    if tau == 0.0 {
        let k = hard_k(k)?;
        for (row, out) in z.chunks(n).zip(y.chunks_mut(n)) {
            hard_top_k(row, k, out);
        }
        return Ok(LmlStats::default());
    }
    z.iter_mut().for_each(|v| *v /= tau);
    Ok(solve_rows(
        z,
        n,
        k,
        tolerance(dtype, k),
        dtype == DType::F64,
        y,
    ))
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
        DType::F64 => 1e-14 * k,
        _ => 1e-6 * k,
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
/// `tol` bounds `|sum(y) - k|`; with `polish` one more step follows convergence (for f64).
pub(crate) fn solve_rows(
    z: &[f64],
    n: usize,
    k: f64,
    tol: f64,
    polish: bool,
    y: &mut [f64],
) -> LmlStats {
    let per_row: Vec<(usize, f64)> = if z.len() >= PAR_MIN_ELEMS {
        z.par_chunks(n)
            .zip(y.par_chunks_mut(n))
            .map_init(Scratch::default, |s, (zr, yr)| {
                solve_row(zr, k, tol, polish, yr, s)
            })
            .collect()
    } else {
        let mut s = Scratch::default();
        z.chunks(n)
            .zip(y.chunks_mut(n))
            .map(|(zr, yr)| solve_row(zr, k, tol, polish, yr, &mut s))
            .collect()
    };
    per_row
        .into_iter()
        .fold(LmlStats::default(), |s, (it, res)| LmlStats {
            max_iterations: s.max_iterations.max(it),
            max_residual: s.max_residual.max(res),
        })
}

/// Buffers reused across rows.
#[derive(Default)]
struct Scratch {
    select: Vec<f64>,
    finite: Vec<f64>,
    y: Vec<f64>,
}

/// `exp(x)` for the root search: branch-free so that loops over it vectorise, accurate to a
/// few ulp (Cody-Waite reduction by ln 2, degree-13 Taylor polynomial on |r| <= ln 2 / 2).
/// Arguments are clamped to [-708, 708]. `FMA` selects fused multiply-adds (only where the CPU
/// has them: without hardware support `mul_add` is a slow library call). Without `PRECISE` the
/// polynomial stops at degree 9 (relative error below 1e-11, enough for f32 outputs).
#[inline(always)]
fn exp_fast<const FMA: bool, const PRECISE: bool>(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: rounds to an integer in the low bits
    // ln 2 split in two (fdlibm's values): n * LN2_HI is exact for |n| < 2^11.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const COEF: [f64; 13] = [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let madd = |a: f64, b: f64, c: f64| if FMA { a.mul_add(b, c) } else { a * b + c };
    let x = x.clamp(-708.0, 708.0);
    let t = madd(x, std::f64::consts::LOG2_E, SHIFT);
    let n = t - SHIFT;
    let r = madd(-n, LN2_LO, madd(-n, LN2_HI, x));
    let (mut p, coef) = if PRECISE {
        (1.0 / 6_227_020_800.0, &COEF[..]) // from 1/13!
    } else {
        (1.0 / 362_880.0, &COEF[4..]) // from 1/9!
    };
    for &c in coef {
        p = madd(p, r, c);
    }
    let n_int = (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    p * f64::from_bits(((n_int + 1023) as u64) << 52)
}

/// Writes `y_i = sigmoid(z_i + m)` and returns `sum y`, `sum y(1-y)` and `sum y(1-y)(1-2y)`
/// (the value of `g + k` and its first two derivatives in `m`).
#[inline]
fn eval(z: &[f64], m: f64, y: &mut [f64], precise: bool) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: `eval_avx2` only needs AVX2 and FMA, which the CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe {
                if precise {
                    eval_avx2::<true>(z, m, y)
                } else {
                    eval_avx2::<false>(z, m, y)
                }
            };
        }
    }
    if precise {
        eval_lanes::<false, true>(z, m, y)
    } else {
        eval_lanes::<false, false>(z, m, y)
    }
}

/// `sum_i exp(z_i + m)`.
#[inline]
fn sum_exp(z: &[f64], m: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: `sum_exp_avx2` only needs AVX2 and FMA, which the CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe { sum_exp_avx2(z, m) };
        }
    }
    sum_exp_lanes::<false>(z, m)
}

/// [`sum_exp`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sum_exp_avx2(z: &[f64], m: f64) -> f64 {
    sum_exp_lanes::<true>(z, m)
}

#[inline(always)]
fn sum_exp_lanes<const FMA: bool>(z: &[f64], m: f64) -> f64 {
    const L: usize = 8;
    let mut acc = [0.0f64; L];
    let mut zc = z.chunks_exact(L);
    for zs in &mut zc {
        for l in 0..L {
            acc[l] += exp_fast::<FMA, false>(zs[l] + m);
        }
    }
    let rest: f64 = zc
        .remainder()
        .iter()
        .map(|v| exp_fast::<FMA, false>(v + m))
        .sum();
    acc.iter().sum::<f64>() + rest
}

/// [`eval`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn eval_avx2<const PRECISE: bool>(z: &[f64], m: f64, y: &mut [f64]) -> [f64; 3] {
    eval_lanes::<true, PRECISE>(z, m, y)
}

/// The body of [`eval`], in independent lanes so that the compiler vectorises the sums.
#[inline(always)]
fn eval_lanes<const FMA: bool, const PRECISE: bool>(z: &[f64], m: f64, y: &mut [f64]) -> [f64; 3] {
    const L: usize = 8;
    let one = |zi: f64| {
        let v = 1.0 / (1.0 + exp_fast::<FMA, PRECISE>(-(zi + m)));
        let d = v * (1.0 - v);
        (v, d, d * (1.0 - 2.0 * v))
    };
    let mut acc = [[0.0f64; L]; 3];
    let mut zc = z.chunks_exact(L);
    let mut yc = y.chunks_exact_mut(L);
    for (zs, ys) in (&mut zc).zip(&mut yc) {
        for l in 0..L {
            let (v, d1, d2) = one(zs[l]);
            ys[l] = v;
            acc[0][l] += v;
            acc[1][l] += d1;
            acc[2][l] += d2;
        }
    }
    let mut out = [0.0; 3];
    for (zi, yi) in zc.remainder().iter().zip(yc.into_remainder()) {
        let (v, d1, d2) = one(*zi);
        *yi = v;
        out[0] += v;
        out[1] += d1;
        out[2] += d2;
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o += a.iter().sum::<f64>();
    }
    out
}

/// Projects one row `z = x / tau`. Returns (iterations, |sum(y) - k|).
fn solve_row(
    z: &[f64],
    k: f64,
    tol: f64,
    polish: bool,
    y: &mut [f64],
    s: &mut Scratch,
) -> (usize, f64) {
    let (mut n_pinf, mut n_minf, mut n_fin) = (0usize, 0usize, 0usize);
    for &v in z {
        if v.is_finite() {
            n_fin += 1;
        } else if v == f64::INFINITY {
            n_pinf += 1;
        } else if v == f64::NEG_INFINITY {
            n_minf += 1;
        }
    }
    y.iter_mut().for_each(|v| *v = 0.0);
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
    // The search runs on the finite entries; rows without others are solved in place.
    let all_finite = n_fin == z.len();
    if !all_finite {
        s.finite.clear();
        s.finite.extend(z.iter().copied().filter(|v| v.is_finite()));
        s.y.resize(n_fin, 0.0);
    }
    let zf: &[f64] = if all_finite { z } else { &s.finite };
    let (zmin, zmax) = zf
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (mut lo, mut hi, mut m);
    if zmax - zmin <= HARD_SPREAD {
        // Soft regime. Bracket from the extremes: at m = lo every entry holds at most k/n, at
        // m = hi at least k/n. Start where sum(exp(z + m)) = k, the solution when every y is small.
        let shift = ((n_fin as f64 - k_fin) / k_fin).ln();
        lo = -zmax - shift;
        hi = -zmin - shift;
        m = (k_fin.ln() - (zmax + sum_exp(zf, -zmax).ln())).clamp(lo, hi);
    } else {
        // Near-hard regime (values far apart on the tau scale): bracket from the order statistics
        // j = ceil(k) and j' = floor(k) + 1 (1-based ranks), start between them.
        s.select.clear();
        s.select.extend_from_slice(zf);
        let j = k_fin.ceil() as usize;
        let jp = k_fin.floor() as usize + 1;
        s.select
            .select_nth_unstable_by(j - 1, |a, b| b.total_cmp(a));
        let z_j = s.select[j - 1];
        let z_jp = if jp == j {
            z_j
        } else {
            s.select[j..]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max)
        };
        // At m = lo the top j-1 entries hold at most j-1 and the others at most k - j + 1.
        let r = (k_fin - j as f64 + 1.0) / (n_fin - j + 1) as f64;
        lo = -z_j - (1.0 / r - 1.0).ln();
        // At m = hi the top j' entries each hold at least k / j'.
        hi = -z_jp + (k_fin / (jp as f64 - k_fin)).ln();
        m = (-(z_j + z_jp) / 2.0).clamp(lo, hi);
    }
    let yf: &mut [f64] = if all_finite { y } else { &mut s.y };
    let mut iters = 0;
    let mut polished = !polish;
    let mut res;
    loop {
        iters += 1;
        let [sum, d1, d2] = eval(zf, m, yf, polish);
        res = sum - k_fin;
        if res.abs() <= tol {
            if polished || d1 <= 0.0 {
                break;
            }
            polished = true;
        }
        if iters >= MAX_ITER || lo >= hi {
            break;
        }
        if res < 0.0 {
            lo = m;
        } else {
            hi = m;
        }
        // Halley's step (cubic convergence), Newton's if Halley's denominator degenerates,
        // bisection if the step leaves the bracket.
        let denom = 2.0 * d1 * d1 - res * d2;
        let step = if denom > 0.0 {
            2.0 * res * d1 / denom
        } else {
            res / d1
        };
        let next = m - step;
        m = if d1 > 0.0 && next > lo && next < hi {
            next
        } else {
            0.5 * (lo + hi)
        };
    }
    if !all_finite {
        let mut fin = s.y.iter();
        for (o, &v) in y.iter_mut().zip(z) {
            if v.is_finite() {
                *o = fin.next().copied().unwrap_or(0.0);
            } else if v == f64::INFINITY {
                *o = 1.0;
            }
        }
    }
    (iters, res.abs())
}

mod backward;
pub(crate) use backward::{Jacobian, attach_jacobian, lml_jacobian_row};
