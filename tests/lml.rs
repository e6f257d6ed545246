//! LML projection: invariants and edge cases (f32, the CPU device's default).

use burn::tensor::{Device, Tensor};
use dcem::lml::{lml, lml_with_stats};
use proptest::prelude::*;

fn row(v: &[f32], device: &Device) -> Tensor<2> {
    Tensor::<1>::from_floats(v, device).unsqueeze_dim(0)
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 data")
}

#[test]
fn tiny_tau_equals_the_hard_top_k() {
    let device = Device::flex();
    // Distinct values 0.1 apart, shuffled.
    let x: Vec<f32> = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4]
        .iter()
        .map(|v| *v as f32 * 0.1)
        .collect();
    for k in 1..10 {
        let soft = to_vec(lml(row(&x, &device), k as f64, 1e-3).unwrap());
        let hard = to_vec(lml(row(&x, &device), k as f64, 0.0).unwrap());
        let mut order: Vec<usize> = (0..10).collect();
        order.sort_by(|a, b| x[*b].total_cmp(&x[*a]));
        for (i, (s, h)) in soft.iter().zip(&hard).enumerate() {
            let want = if order[..k].contains(&i) { 1.0 } else { 0.0 };
            assert_eq!(*h, want, "hard top-{k} entry {i}");
            assert!(
                (s - want).abs() < 1e-6,
                "soft top-{k} entry {i}: {s} vs {want}"
            );
        }
    }
}

#[test]
fn k_at_least_n_gives_ones_and_zero_gradient() {
    let device = Device::flex().autodiff();
    let x = row(&[0.3, -1.0, 2.0], &device).require_grad();
    let y = lml(x.clone(), 3.0, 1.0).unwrap();
    assert_eq!(to_vec(y.clone()), vec![1.0, 1.0, 1.0]);
    let loss = (y * row(&[1.0, 2.0, 3.0], &device)).sum() + x.clone().sum().mul_scalar(0.0);
    let g = to_vec(x.grad(&loss.backward()).unwrap());
    assert_eq!(g, vec![0.0, 0.0, 0.0]);
    assert_eq!(
        to_vec(lml(row(&[1.0, 2.0], &Device::flex()), 5.0, 1.0).unwrap()),
        vec![1.0, 1.0]
    );
}

#[test]
fn invalid_k_and_tau_are_errors_that_name_them() {
    let device = Device::flex();
    let x = row(&[1.0, 2.0, 3.0], &device);
    for (k, tau, name) in [
        (0.5, 1.0, "`k`"),
        (f64::NAN, 1.0, "`k`"),
        (1.0, -0.1, "`tau`"),
        (1.0, f64::NAN, "`tau`"),
        (1.0, f64::INFINITY, "`tau`"),
        (1.5, 0.0, "`k`"),
    ] {
        let err = lml(x.clone(), k, tau).unwrap_err().to_string();
        assert!(err.contains(name), "k={k} tau={tau}: {err}");
    }
}

#[test]
fn ties_share_mass_equally() {
    let device = Device::flex();
    let y = to_vec(lml(row(&[1.0, 1.0, 1.0, 0.0], &device), 2.0, 1e-3).unwrap());
    for v in &y[..3] {
        assert!((v - 2.0 / 3.0).abs() < 1e-5, "{y:?}");
    }
    assert!(y[3] < 1e-6);
    // Hard top-k breaks ties towards the lower index.
    let h = to_vec(lml(row(&[1.0, 1.0, 1.0, 0.0], &device), 2.0, 0.0).unwrap());
    assert_eq!(h, vec![1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn nan_ranks_last_and_infinities_are_handled() {
    let device = Device::flex().autodiff();
    let cases: [(&[f32], f64, &[f32]); 5] = [
        // NaN never gets mass, even when it would be the top value.
        (&[f32::NAN, 5.0, 4.0, -3.0], 1.0, &[0.0, 1.0, 0.0, 0.0]),
        // +inf takes a full share.
        (
            &[0.0, f32::INFINITY, 1.0, f32::NAN],
            1.0,
            &[0.0, 1.0, 0.0, 0.0],
        ),
        // More +inf than k: they share k.
        (
            &[f32::INFINITY, f32::INFINITY, 0.0, 1.0],
            1.0,
            &[0.5, 0.5, 0.0, 0.0],
        ),
        // -inf gets nothing while the finite entries can hold k.
        (
            &[f32::NEG_INFINITY, -10.0, 5.0, 4.0],
            2.0,
            &[0.0, 0.0, 1.0, 1.0],
        ),
        // ...and the rest when they cannot; NaN still gets nothing.
        (
            &[f32::NEG_INFINITY, 0.0, f32::NAN, f32::NEG_INFINITY],
            2.0,
            &[0.5, 1.0, 0.0, 0.5],
        ),
    ];
    for (x, k, want) in cases {
        let xt = row(x, &device).require_grad();
        let y = lml(xt.clone(), k, 1e-3).unwrap();
        let got = to_vec(y.clone());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "x={x:?} k={k}: {got:?} vs {want:?}");
        }
        let loss = (y * row(&[1.0, -2.0, 3.0, 0.5], &device)).sum();
        let grad = to_vec(xt.grad(&loss.backward()).unwrap());
        assert!(
            grad.iter().all(|v| v.is_finite()),
            "x={x:?}: gradient {grad:?}"
        );
        for (i, v) in x.iter().enumerate() {
            if !v.is_finite() {
                assert_eq!(
                    grad[i], 0.0,
                    "non-finite entry {i} must get a zero gradient"
                );
            }
        }
    }
}

#[test]
fn untracked_input_gives_untracked_output() {
    let device = Device::flex().autodiff();
    let y = lml(row(&[1.0, 2.0, 3.0], &device), 1.0, 1.0).unwrap();
    assert!(!y.is_tracked());
}

#[test]
fn convergence_within_the_f32_contract_on_large_rows() {
    let device = Device::flex();
    let x = Tensor::<2>::random(
        [64, 1000],
        burn::tensor::Distribution::Normal(0.0, 3.0),
        &device,
    );
    let (y, stats) = lml_with_stats(x, 10.0, 1.0).unwrap();
    assert!(stats.max_iterations <= 12, "{stats:?}");
    let y = to_vec(y);
    for r in y.chunks(1000) {
        let s: f64 = r.iter().map(|v| *v as f64).sum();
        assert!((s - 10.0).abs() <= 1e-5 * 10.0, "row sum {s}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rows_lie_in_the_lml_polytope(
        n in 2usize..60,
        kfrac in 0.0f64..1.0,
        tau in prop_oneof![Just(1e-3), 0.01f64..10.0],
        seed in any::<u64>(),
        scale in 0.1f32..100.0,
    ) {
        let device = Device::flex();
        let k = 1.0 + kfrac * (n as f64 - 1.0);
        let mut s = seed;
        let x: Vec<f32> = (0..3 * n).map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            scale * (((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0)
        }).collect();
        let t = Tensor::<1>::from_floats(x.as_slice(), &device).reshape([3, n]);
        let y = to_vec(lml(t, k, tau).unwrap());
        for r in y.chunks(n) {
            let sum: f64 = r.iter().map(|v| *v as f64).sum();
            prop_assert!((sum - k).abs() <= 1e-5 * k, "sum {} k {}", sum, k);
            prop_assert!(r.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}

#[test]
fn host_f64_projection_matches_the_tensor_one() {
    let device = Device::flex();
    let x: Vec<f32> = (0..24)
        .map(|i| ((i * 7 % 24) as f32 - 11.0) * 0.37)
        .collect();
    let xs: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
    for (k, tau) in [(1.0, 1.0), (5.0, 0.3), (3.0, 0.0), (30.0, 1.0)] {
        let t = to_vec(
            lml(
                Tensor::<1>::from_floats(x.as_slice(), &device).reshape([2, 12]),
                k,
                tau,
            )
            .unwrap(),
        );
        let h = dcem::lml::lml_f64(&xs, 12, k, tau).unwrap();
        for row in h.chunks(12) {
            let sum: f64 = row.iter().sum();
            assert!(
                (sum - k.min(12.0)).abs() <= 1e-12 * k,
                "k {k} tau {tau}: sum {sum}"
            );
        }
        for (a, b) in t.iter().zip(&h) {
            assert!(
                (f64::from(*a) - b).abs() < 1e-5,
                "k {k} tau {tau}: {a} vs {b}"
            );
        }
    }
    assert!(dcem::lml::lml_f64(&xs, 5, 1.0, 1.0).is_err()); // 24 is not whole rows of 5
    assert!(dcem::lml::lml_f64(&xs, 12, 0.5, 1.0).is_err());
    assert!(dcem::lml::lml_f64(&xs, 12, 2.5, 0.0).is_err());
}
