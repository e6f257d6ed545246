//! Fast standard normal noise for the samplers.
//!
//! Box-Muller in f32, branch-free so that it vectorises: one 64-bit random word gives two
//! normals (24 bits for the radius, 24 for the angle in a quarter turn, two sign bits that
//! reflect the point into a uniformly chosen quadrant). The first normal of each pair goes to the
//! first half of the output and the second to the second half. The radius uses 24-bit uniforms, so the
//! tails are cut at about 5.8 standard deviations (probability 8e-9), which does not matter to a
//! sampling-based optimiser. `ln`, `sin` and `cos` are polynomial approximations accurate to
//! about 1e-7, checked against the standard library in the tests below.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// Fills `out` with standard normal samples; one draw from `rng` seeds the bulk generator, so the
/// caller's seed fixes the noise.
pub(crate) fn fill_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    let mut fast = Xoshiro256PlusPlus::seed_from_u64(rng.next_u64());
    let half = out.len().div_ceil(2);
    let mut radius_bits = Vec::with_capacity(half);
    let mut angle_bits = Vec::with_capacity(half);
    for _ in 0..half {
        let w = fast.next_u64();
        radius_bits.push(w as u32);
        angle_bits.push((w >> 32) as u32);
    }
    let (first, second) = out.split_at_mut(half);
    transform(&radius_bits, &angle_bits, first, second);
}

fn transform(radius_bits: &[u32], angle_bits: &[u32], first: &mut [f32], second: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: `transform_avx2` only needs AVX2 and FMA, which the CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe { transform_avx2(radius_bits, angle_bits, first, second) };
        }
    }
    transform_lanes(radius_bits, angle_bits, first, second)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transform_avx2(radius_bits: &[u32], angle_bits: &[u32], first: &mut [f32], second: &mut [f32]) {
    transform_lanes(radius_bits, angle_bits, first, second)
}

/// Pair `i` of normals goes to `first[i]` and `second[i]` (`second` may be one shorter).
#[inline(always)]
fn transform_lanes(radius_bits: &[u32], angle_bits: &[u32], first: &mut [f32], second: &mut [f32]) {
    let n = second.len();
    for i in 0..n {
        let (a, b) = box_muller(radius_bits[i], angle_bits[i]);
        first[i] = a;
        second[i] = b;
    }
    for i in n..first.len() {
        first[i] = box_muller(radius_bits[i], angle_bits[i]).0;
    }
}

/// Two independent standard normals from 64 random bits: 24 bits of the first word for the
/// radius, 24 of the second for the angle in a quarter turn, one bit of each for the quadrant.
#[inline(always)]
fn box_muller(radius_bits: u32, angle_bits: u32) -> (f32, f32) {
    const TWO_M24: f32 = 1.0 / 16_777_216.0;
    let u1 = ((radius_bits & 0xff_ffff) as i32 + 1) as f32 * TWO_M24; // (0, 1]
    let a = ((angle_bits & 0xff_ffff) as i32) as f32 * (TWO_M24 * std::f32::consts::FRAC_PI_2); // [0, pi/2)
    let r = (-2.0 * ln(u1)).sqrt();
    let (s, c) = sin_cos_quarter(a);
    let sx = f32::from_bits(radius_bits & 0x8000_0000);
    let sy = f32::from_bits(angle_bits & 0x8000_0000);
    (copysign_mul(r * c, sx), copysign_mul(r * s, sy))
}

/// `x` with its sign flipped when `sign_bit` (a float holding only a sign) is negative zero.
#[inline(always)]
fn copysign_mul(x: f32, sign_bit: f32) -> f32 {
    f32::from_bits(x.to_bits() ^ sign_bit.to_bits())
}

/// Natural log for `x` in (0, 1]: exponent split, mantissa in [sqrt(1/2), sqrt(2)), atanh series.
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x7f_ffff) | 0x3f80_0000); // [1, 2)
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += big as i32;
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let p = 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 / 9.0))));
    e as f32 * std::f32::consts::LN_2 + p
}

/// `(sin a, cos a)` for `a` in [0, pi/2): Taylor polynomials to degree 11 and 12.
#[inline(always)]
fn sin_cos_quarter(a: f32) -> (f32, f32) {
    let a2 = a * a;
    let sin = a
        * (1.0
            - a2 / 6.0
                * (1.0 - a2 / 20.0 * (1.0 - a2 / 42.0 * (1.0 - a2 / 72.0 * (1.0 - a2 / 110.0)))));
    let cos = 1.0
        - a2 / 2.0
            * (1.0
                - a2 / 12.0
                    * (1.0
                        - a2 / 30.0 * (1.0 - a2 / 56.0 * (1.0 - a2 / 90.0 * (1.0 - a2 / 132.0)))));
    (sin, cos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximations_match_the_standard_library() {
        for i in 1..=10_000 {
            let x = i as f32 / 10_000.0;
            assert!(
                (ln(x) - x.ln()).abs() <= 2e-7 * x.ln().abs().max(1.0),
                "ln({x})"
            );
            let a = (i - 1) as f32 / 10_000.0 * std::f32::consts::FRAC_PI_2;
            let (s, c) = sin_cos_quarter(a);
            assert!(
                (s - a.sin()).abs() < 2e-7 && (c - a.cos()).abs() < 2e-7,
                "sincos({a})"
            );
        }
        assert!((ln(f32::MIN_POSITIVE) - f32::MIN_POSITIVE.ln()).abs() < 1e-4);
    }

    #[test]
    fn samples_have_normal_moments() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(0);
        let mut v = vec![0.0f32; 1_000_001];
        fill_normal(&mut rng, &mut v);
        let n = v.len() as f64;
        let mean = v.iter().map(|x| *x as f64).sum::<f64>() / n;
        let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n;
        let m4 = v.iter().map(|x| (*x as f64 - mean).powi(4)).sum::<f64>() / n;
        let within1 = v.iter().filter(|x| x.abs() < 1.0).count() as f64 / n;
        // Standard errors at n = 1e6: mean 1e-3, variance 1.4e-3, kurtosis 5e-3.
        assert!(mean.abs() < 5e-3, "mean {mean}");
        assert!((var - 1.0).abs() < 7e-3, "variance {var}");
        assert!(
            (m4 / (var * var) - 3.0).abs() < 3e-2,
            "kurtosis {}",
            m4 / (var * var)
        );
        assert!((within1 - 0.682_689).abs() < 3e-3, "P(|z| < 1) = {within1}");
        // Coordinates of one pair are uncorrelated.
        let cov = v
            .chunks_exact(2)
            .map(|p| p[0] as f64 * p[1] as f64)
            .sum::<f64>()
            / (n / 2.0);
        assert!(cov.abs() < 1e-2, "pair covariance {cov}");
    }
}
