//! Host kernels for networks on the CPU: a float trait (f32, f64), matrix products through
//! `gemm` (the library burn's CPU backend multiplies with), and dense ReLU networks with their
//! forward and backward passes over row-major `[rows, width]` buffers. Used where a whole
//! forward and backward sweep is computed on the host instead of op by op on the tape
//! (`rssm_host.rs`).

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

/// The float types the host path computes in (f32, and f64 for the finite-difference checks).
pub(crate) trait Real:
    Copy
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn of(v: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `exp(x)` for `x <= 0` (f32: a branch-free polynomial, within 2 ulp; f64: `exp`).
    fn exp_nonpositive(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn abs(self) -> Self;
}

macro_rules! real {
    ($t:ty, $exp_np:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn of(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp_nonpositive(self) -> Self {
                $exp_np(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
        }
    };
}
real!(f32, super::fast::exp_nonpositive);
real!(f64, f64::exp);

pub(crate) fn relu<F: Real>(x: F) -> F {
    if x > F::ZERO { x } else { F::ZERO }
}

pub(crate) fn sigmoid<F: Real>(x: F) -> F {
    let e = (-x.abs()).exp_nonpositive();
    if x >= F::ZERO {
        F::ONE / (F::ONE + e)
    } else {
        e / (F::ONE + e)
    }
}

/// `tanh(x)` as `sign(x) (1 - e) / (1 + e)` with `e = exp(-2 |x|)`.
pub(crate) fn tanh<F: Real>(x: F) -> F {
    let e = (-(x.abs() + x.abs())).exp_nonpositive();
    let t = (F::ONE - e) / (F::ONE + e);
    if x < F::ZERO { -t } else { t }
}

/// `ln(1 + exp(x))` without overflow.
pub(crate) fn softplus<F: Real>(x: F) -> F {
    relu(x) + (-x.abs()).exp_nonpositive().ln_1p()
}

/// `sign(x) ln(1 + |x|)` (symlog) when `on`, else `x`.
pub(crate) fn squash<F: Real>(x: F, on: bool) -> F {
    if !on {
        x
    } else if x < F::ZERO {
        -(-x).ln_1p()
    } else {
        x.ln_1p()
    }
}

/// Products this large (`m n k`) split across rayon's threads (burn's CPU backend's threshold).
const PARALLEL_MIN: usize = 192 * 192 * 192;

thread_local! {
    /// Set while this thread's work runs beside other threads' (no products split further).
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with this thread's products kept on it when `serial` (restored afterwards).
pub(crate) fn with_serial_products<R>(serial: bool, work: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(serial));
    let out = work();
    SERIAL.with(|s| s.set(before));
    out
}

/// `c = [c +] op(a) op(b)` for a row-major `c: [m, n]`: `op(a)` is `a: [m, k]`, or `a: [k, m]`
/// read transposed when `ta`; `op(b)` is `b: [k, n]`, or `b: [n, k]` read transposed when `tb`.
#[allow(clippy::too_many_arguments)]
fn matmul<F: Real>(
    c: &mut [F],
    a: &[F],
    b: &[F],
    [m, n, k]: [usize; 3],
    ta: bool,
    tb: bool,
    accumulate: bool,
) {
    assert!(c.len() == m * n && a.len() == m * k && b.len() == k * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(F::ZERO);
        }
        return;
    }
    let (a_rs, a_cs) = if ta { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if tb { (1, k) } else { (n, 1) };
    let parallelism =
        if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MIN && !SERIAL.with(|s| s.get()) {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
    #[allow(unsafe_code)]
    // SAFETY: the lengths are checked above, so with these strides every index `gemm` reads or
    // writes is inside `a`, `b` and `c`; `F` is f32 or f64, types `gemm` dispatches on.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            F::ONE,
            F::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// One dense layer on the host.
#[derive(Clone, Debug)]
pub(crate) struct Layer<F> {
    pub w: Vec<F>,
    pub b: Vec<F>,
    pub d_in: usize,
    pub d_out: usize,
}

impl<F: Real> Layer<F> {
    /// `x W + b` for `x: [rows, d_in]`.
    pub fn forward(&self, x: &[F], rows: usize) -> Vec<F> {
        let mut y: Vec<F> = Vec::with_capacity(rows * self.d_out);
        for _ in 0..rows {
            y.extend_from_slice(&self.b);
        }
        matmul(
            &mut y,
            x,
            &self.w,
            [rows, self.d_out, self.d_in],
            false,
            false,
            true,
        );
        y
    }

    /// `x W + b` for an input given as column blocks `x = [x_1, x_2, ...]`, each
    /// `(x_i: [rows, w_i], w_i)` with the widths summing to `d_in`: one product per block with
    /// its rows of `W`, so the blocks need not be copied side by side.
    pub fn forward_blocks(&self, blocks: &[(&[F], usize)], rows: usize) -> Vec<F> {
        debug_assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), self.d_in);
        let mut y: Vec<F> = Vec::with_capacity(rows * self.d_out);
        for _ in 0..rows {
            y.extend_from_slice(&self.b);
        }
        let mut at = 0;
        for &(x, w) in blocks {
            let wb = &self.w[at * self.d_out..(at + w) * self.d_out];
            matmul(&mut y, x, wb, [rows, self.d_out, w], false, false, true);
            at += w;
        }
        y
    }

    /// Adds this layer's weight and bias gradients for input `x: [rows, d_in]` and output
    /// gradient `d: [rows, d_out]` into `gw`, `gb`.
    pub fn add_grads(&self, x: &[F], d: &[F], rows: usize, gw: &mut [F], gb: &mut [F]) {
        matmul(gw, x, d, [self.d_in, self.d_out, rows], true, false, true);
        for row in d.chunks(self.d_out) {
            for (g, v) in gb.iter_mut().zip(row) {
                *g += *v;
            }
        }
    }

    /// The input gradient `d W^T` for the output gradient `d: [rows, d_out]`.
    pub fn input_grad(&self, d: &[F], rows: usize) -> Vec<F> {
        let mut dx = vec![F::ZERO; rows * self.d_in];
        matmul(
            &mut dx,
            d,
            &self.w,
            [rows, self.d_in, self.d_out],
            false,
            true,
            false,
        );
        dx
    }
}

/// A ReLU network on the host (`Linear -> relu -> ... -> Linear`), its gradients stored from
/// `first` in the flat gradient list (weight then bias per layer, as `Mlp::params`).
#[derive(Clone, Debug)]
pub(crate) struct Net<F> {
    pub layers: Vec<Layer<F>>,
    pub first: usize,
}

impl<F: Real> Net<F> {
    /// Every layer's output: hidden ones after the ReLU, the last one raw.
    pub fn forward(&self, x: &[F], rows: usize) -> Vec<Vec<F>> {
        match self.layers.first() {
            Some(first) => self.forward_from_first(first.forward(x, rows), rows),
            None => Vec::new(),
        }
    }

    /// [`Net::forward`] from the first layer's raw output `first` (computed by the caller, e.g.
    /// with [`Layer::forward_blocks`]).
    pub fn forward_from_first(&self, first: Vec<F>, rows: usize) -> Vec<Vec<F>> {
        let n = self.layers.len();
        let mut outs: Vec<Vec<F>> = Vec::with_capacity(n);
        let mut y = first;
        for i in 0..n {
            if i + 1 < n {
                y.iter_mut().for_each(|v| *v = relu(*v));
            }
            outs.push(y);
            if i + 1 == n {
                break;
            }
            y = self.layers[i + 1].forward(&outs[i], rows);
        }
        outs
    }

    /// Backpropagates the output gradient `d` through the network run on `x` (with `outs` from
    /// [`Net::forward`]), adding the parameter gradients into `grads`; returns the input
    /// gradient when `need_dx`.
    pub fn backward(
        &self,
        x: &[F],
        outs: &[Vec<F>],
        rows: usize,
        mut d: Vec<F>,
        grads: &mut [Vec<F>],
        need_dx: bool,
    ) -> Option<Vec<F>> {
        for l in (0..self.layers.len()).rev() {
            let layer = &self.layers[l];
            let input = if l == 0 { x } else { &outs[l - 1] };
            let (gw, gb) = pair(grads, self.first + 2 * l);
            layer.add_grads(input, &d, rows, gw, gb);
            if l == 0 && !need_dx {
                return None;
            }
            let mut dx = layer.input_grad(&d, rows);
            if l > 0 {
                for (g, a) in dx.iter_mut().zip(&outs[l - 1]) {
                    if *a <= F::ZERO {
                        *g = F::ZERO;
                    }
                }
            }
            d = dx;
        }
        Some(d)
    }
}

/// The gradient slots `i` (weight) and `i + 1` (bias).
pub(crate) fn pair<F>(grads: &mut [Vec<F>], i: usize) -> (&mut [F], &mut [F]) {
    let (a, b) = grads.split_at_mut(i + 1);
    (&mut a[i], &mut b[0])
}

/// Copies `src: [rows, w]` into columns `at..at + w` of `dst: [rows, width]`.
pub(crate) fn put_cols<F: Copy>(dst: &mut [F], width: usize, at: usize, src: &[F], w: usize) {
    for (d, s) in dst.chunks_mut(width).zip(src.chunks(w)) {
        d[at..at + w].copy_from_slice(s);
    }
}

/// Columns `at..at + w` of `src: [rows, width]` as `[rows, w]`.
pub(crate) fn cols<F: Copy>(src: &[F], width: usize, at: usize, w: usize) -> Vec<F> {
    src.chunks(width)
        .flat_map(|r| r[at..at + w].iter().copied())
        .collect()
}
