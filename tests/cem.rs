//! CEM/DCEM solver: optimisation quality, bounds, NaN handling, options, tau -> 0.

use burn::tensor::{Device, Tensor, TensorData};
use dcem::cem::{Cem, CemConfig, CemHooks, CemInit, IterState};
use proptest::prelude::*;
use rand::{SeedableRng, rngs::ChaCha8Rng};

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 data")
}

fn sum_last(x: Tensor<3>) -> Tensor<2> {
    x.sum_dim(2).squeeze_dim::<2>(2)
}

/// Shifted quadratic with a different minimiser per batch row.
fn quadratic(targets: Tensor<2>) -> impl FnMut(Tensor<3>) -> Tensor<2> {
    move |x| sum_last((x - targets.clone().unsqueeze_dim::<3>(1)).square())
}

#[test]
fn cem_and_dcem_find_the_minimum_of_a_10d_quadratic() {
    let device = Device::flex();
    let targets: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
    let t = Tensor::<2>::from_data(TensorData::new(targets.clone(), [4, 10]), &device);
    // Hard CEM converges tightly; DCEM's soft elites keep a wider distribution and converge
    // more slowly, so it gets more iterations and a looser tolerance.
    for (tau, n_iter, tol) in [(0.0, 40, 1e-3), (1.0, 60, 2e-2)] {
        let cfg = CemConfig {
            n_sample: 200,
            n_elite: 20,
            n_iter,
            tau,
            iter_eps: 0.0,
            init_sigma: 2.0,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let sol = Cem::new(cfg)
            .unwrap()
            .solve(
                quadratic(t.clone()),
                CemInit::scalar(4, 10, 0.0, 2.0, &device),
                &mut rng,
            )
            .unwrap();
        let mu = to_vec(sol.mu);
        let err = mu
            .iter()
            .zip(&targets)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < tol, "tau={tau}: max |mu - x*| = {err}");
        assert!(
            sol.best_value.iter().all(|v| *v < 0.1),
            "best values {:?}",
            sol.best_value
        );
    }
}

#[test]
fn cem_solves_rosenbrock() {
    let device = Device::flex();
    // f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1).
    let f = |x: Tensor<3>| {
        let a = x.clone().narrow(2, 0, 1);
        let b = x.narrow(2, 1, 1);
        sum_last(
            a.clone().neg().add_scalar(1.0).square() + (b - a.square()).square().mul_scalar(100.0),
        )
    };
    // Plain CEM shrinks sigma faster than the mean travels along the curved valley and stalls
    // near (0.5, 0.25); a sigma floor of 0.02 keeps it exploring down to the minimum.
    let cfg = CemConfig {
        n_sample: 500,
        n_elite: 50,
        n_iter: 200,
        tau: 0.0,
        iter_eps: 0.0,
        sigma_floor: 0.02,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let sol = Cem::new(cfg)
        .unwrap()
        .solve(f, CemInit::scalar(1, 2, -1.0, 1.0, &device), &mut rng)
        .unwrap();
    let mu = to_vec(sol.mu);
    assert!(
        (mu[0] - 1.0).abs() < 0.03 && (mu[1] - 1.0).abs() < 0.03,
        "mu = {mu:?}"
    );
    assert!(sol.best_value[0] < 1e-5, "best value {:?}", sol.best_value);
}

#[test]
fn cem_solves_rastrigin() {
    let device = Device::flex();
    // f(x) = 10 d + sum x^2 - 10 cos(2 pi x): many local minima, global minimum 0 at 0.
    let f = |x: Tensor<3>| {
        let d = x.dims()[2] as f64;
        sum_last(
            x.clone().square()
                - x.mul_scalar(2.0 * std::f64::consts::PI)
                    .cos()
                    .mul_scalar(10.0),
        )
        .add_scalar(10.0 * d)
    };
    let cfg = CemConfig {
        n_sample: 1000,
        n_elite: 50,
        n_iter: 60,
        tau: 0.0,
        iter_eps: 0.0,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let init = CemInit::new(
        Tensor::<2>::from_floats([[2.6, -3.4, 1.3]], &device),
        Tensor::<2>::from_floats([[3.0]], &device),
    );
    let sol = Cem::new(cfg).unwrap().solve(f, init, &mut rng).unwrap();
    let mu = to_vec(sol.mu);
    assert!(mu.iter().all(|v| v.abs() < 1e-2), "mu = {mu:?}");
}

#[test]
fn bounds_hold_for_samples_and_result_and_sigma_never_collapses() {
    let device = Device::flex();
    // Minimum at 5, outside ub = 1: every elite ends up clamped to 1.
    let t = Tensor::<2>::ones([2, 3], &device).mul_scalar(5.0);
    let cfg = CemConfig {
        lb: Some(-1.0),
        ub: Some(1.0),
        tau: 0.0,
        n_iter: 30,
        iter_eps: 0.0,
        ..Default::default()
    };
    let mut seen = 0;
    let mut cb = |s: &IterState<'_>| {
        let x = to_vec(s.samples.clone());
        assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
        seen += 1;
    };
    let hooks = CemHooks {
        on_iter: Some(&mut cb),
        project: None,
        stop: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let sol = Cem::new(cfg.clone())
        .unwrap()
        .solve_with(
            quadratic(t),
            CemInit::scalar(2, 3, 0.0, 1.0, &device),
            &mut rng,
            hooks,
        )
        .unwrap();
    assert_eq!(seen, 30);
    assert!(to_vec(sol.mu).iter().all(|v| (*v - 1.0).abs() < 1e-6));
    let sigma = to_vec(sol.sigma);
    assert!(
        sigma
            .iter()
            .all(|s| *s >= (cfg.sigma_floor as f32) * 0.999 && s.is_finite()),
        "{sigma:?}"
    );
}

/// The `stop` hook ends a solve after the iteration it answers `true` for.
#[test]
fn the_stop_hook_ends_the_solve() {
    let device = Device::flex();
    let cfg = CemConfig {
        n_iter: 1000,
        iter_eps: 0.0,
        ..CemConfig::default()
    };
    let mut asked = 0;
    let mut stop = || {
        asked += 1;
        asked == 3
    };
    let hooks = CemHooks {
        on_iter: None,
        project: None,
        stop: Some(&mut stop),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let sol = Cem::new(cfg)
        .unwrap()
        .solve_with(
            quadratic(Tensor::zeros([2, 3], &device)),
            CemInit::scalar(2, 3, 0.0, 1.0, &device),
            &mut rng,
            hooks,
        )
        .unwrap();
    assert_eq!(sol.iterations, vec![3, 3]);
}

#[test]
fn nan_values_rank_last_and_are_counted() {
    let device = Device::flex();
    // NaN wherever x_0 > 0.5; the minimum (at 2) lies in the NaN region, so the best finite
    // point is on its edge.
    let f = |x: Tensor<3>| {
        let v = sum_last((x.clone() - 2.0).square());
        let bad = x.narrow(2, 0, 1).squeeze_dim::<2>(2).greater_elem(0.5);
        v.mask_fill(bad, f32::NAN)
    };
    let cfg = CemConfig {
        n_iter: 20,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let sol = Cem::new(cfg)
        .unwrap()
        .solve(f, CemInit::scalar(3, 2, 0.0, 1.0, &device), &mut rng)
        .unwrap();
    let mu = to_vec(sol.mu);
    assert!(mu.iter().all(|v| v.is_finite()), "{mu:?}");
    assert!(sol.non_finite > 0);
    assert!(sol.best_value.iter().all(|v| v.is_finite()));
    for r in mu.chunks(2) {
        assert!(
            r[0] < 0.6 && r[0] > 0.2,
            "x0 should sit near the NaN edge at 0.5: {r:?}"
        );
    }
}

#[test]
fn all_nan_objective_does_not_poison_the_result() {
    let device = Device::flex();
    let f = |x: Tensor<3>| sum_last(x).mul_scalar(f32::NAN);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sol = Cem::new(CemConfig::default())
        .unwrap()
        .solve(f, CemInit::scalar(2, 4, 0.0, 1.0, &device), &mut rng)
        .unwrap();
    assert!(to_vec(sol.mu).iter().all(|v| v.is_finite()));
    assert_eq!(
        sol.non_finite,
        2 * 100 * sol.iterations.iter().max().copied().unwrap()
    );
}

#[test]
fn dcem_with_vanishing_tau_equals_cem_on_the_same_noise() {
    let device = Device::flex();
    let t = Tensor::<2>::from_floats([[0.5, -1.0, 2.0], [1.0, 1.0, -0.3]], &device);
    let run = |tau: f64| {
        let cfg = CemConfig {
            tau,
            n_iter: 8,
            iter_eps: 0.0,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        to_vec(
            Cem::new(cfg)
                .unwrap()
                .solve(
                    quadratic(t.clone()),
                    CemInit::scalar(2, 3, 0.0, 1.0, &device),
                    &mut rng,
                )
                .unwrap()
                .mu,
        )
    };
    let hard = run(0.0);
    let soft = run(1e-9);
    for (h, s) in hard.iter().zip(&soft) {
        assert!((h - s).abs() < 1e-5, "{hard:?} vs {soft:?}");
    }
    // And a temperature of 1 really is different.
    assert!(
        run(1.0)
            .iter()
            .zip(&hard)
            .any(|(a, b)| (a - b).abs() > 1e-3)
    );
}

#[test]
fn early_stop_is_decided_per_row() {
    let device = Device::flex();
    // Row 0 starts at its minimum with a tiny sigma (stops at once); row 1 does not.
    let t = Tensor::<2>::from_floats([[0.0, 0.0], [3.0, -3.0]], &device);
    let init = CemInit::new(
        Tensor::zeros([2, 2], &device),
        Tensor::<2>::from_floats([[1e-6], [1.0]], &device),
    );
    let cfg = CemConfig {
        iter_eps: 1e-3,
        n_iter: 10,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let sol = Cem::new(cfg)
        .unwrap()
        .solve(quadratic(t), init, &mut rng)
        .unwrap();
    assert_eq!(sol.iterations[0], 1);
    assert!(sol.iterations[1] > 3, "{:?}", sol.iterations);
}

#[test]
fn projection_callback_is_applied() {
    let device = Device::flex();
    let t = Tensor::<2>::from_floats([[2.0, 2.0]], &device);
    // Project samples onto x_0 = x_1: the solution must satisfy it.
    let mut proj = |x: Tensor<3>| {
        let m = x.clone().mean_dim(2);
        m.expand(x.dims())
    };
    let hooks = CemHooks {
        on_iter: None,
        project: Some(&mut proj),
        stop: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let sol = Cem::new(CemConfig::default())
        .unwrap()
        .solve_with(
            quadratic(t),
            CemInit::scalar(1, 2, 0.0, 1.0, &device),
            &mut rng,
            hooks,
        )
        .unwrap();
    let mu = to_vec(sol.mu);
    assert!((mu[0] - mu[1]).abs() < 1e-5);
}

#[test]
fn every_invalid_option_is_an_error_naming_it() {
    let base = CemConfig::default();
    let cases: Vec<(&str, CemConfig)> = vec![
        (
            "n_sample",
            CemConfig {
                n_sample: 1,
                ..base.clone()
            },
        ),
        (
            "n_elite",
            CemConfig {
                n_elite: 0,
                ..base.clone()
            },
        ),
        (
            "n_elite",
            CemConfig {
                n_elite: 101,
                ..base.clone()
            },
        ),
        (
            "n_iter",
            CemConfig {
                n_iter: 0,
                ..base.clone()
            },
        ),
        (
            "tau",
            CemConfig {
                tau: -1.0,
                ..base.clone()
            },
        ),
        (
            "tau",
            CemConfig {
                tau: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "lb",
            CemConfig {
                lb: Some(f64::NAN),
                ..base.clone()
            },
        ),
        (
            "ub",
            CemConfig {
                ub: Some(f64::NAN),
                ..base.clone()
            },
        ),
        (
            "ub",
            CemConfig {
                lb: Some(1.0),
                ub: Some(0.0),
                ..base.clone()
            },
        ),
        (
            "init_sigma",
            CemConfig {
                init_sigma: 0.0,
                ..base.clone()
            },
        ),
        (
            "iter_eps",
            CemConfig {
                iter_eps: -1.0,
                ..base.clone()
            },
        ),
        (
            "sigma_floor",
            CemConfig {
                sigma_floor: 0.0,
                ..base.clone()
            },
        ),
    ];
    for (field, cfg) in cases {
        let err = Cem::new(cfg).unwrap_err().to_string();
        assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
    }
    // Config files reject unknown fields and name them.
    let err = toml::from_str::<CemConfig>("n_samples = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("n_samples"), "{err}");
}

#[test]
fn bad_shapes_and_bad_init_are_errors() {
    let device = Device::flex();
    let solver = Cem::new(CemConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let wrong = |x: Tensor<3>| x.sum_dim(1).squeeze_dim::<2>(1);
    let err = solver
        .solve(wrong, CemInit::scalar(2, 3, 0.0, 1.0, &device), &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("objective output"), "{err}");
    let init = CemInit::new(
        Tensor::zeros([2, 3], &device),
        Tensor::ones([2, 2], &device),
    );
    let err = solver
        .solve(sum_last, init, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("CemInit::sigma"), "{err}");
    let init = CemInit::new(
        Tensor::zeros([2, 3], &device),
        Tensor::zeros([2, 1], &device),
    );
    let err = solver
        .solve(sum_last, init, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(err.contains("init sigma"), "{err}");
}

#[test]
fn same_seed_same_solution() {
    let device = Device::flex();
    let t = Tensor::<2>::from_floats([[0.3, 0.1]], &device);
    let run = || {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        to_vec(
            Cem::new(CemConfig::default())
                .unwrap()
                .solve(
                    quadratic(t.clone()),
                    CemInit::scalar(1, 2, 0.0, 1.0, &device),
                    &mut rng,
                )
                .unwrap()
                .mu,
        )
    };
    assert_eq!(run(), run());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn samples_and_solution_stay_in_bounds(lb in -3.0f64..0.0, width in 0.1f64..4.0, tau in prop_oneof![Just(0.0), 0.05f64..2.0], seed in any::<u64>()) {
        let device = Device::flex();
        let ub = lb + width;
        let t = Tensor::<2>::from_floats([[5.0, -5.0, 0.5]], &device);
        let cfg = CemConfig { lb: Some(lb), ub: Some(ub), tau, n_sample: 20, n_elite: 5, n_iter: 5, ..Default::default() };
        let mut ok = true;
        let mut cb = |s: &IterState<'_>| {
            ok &= to_vec(s.samples.clone()).iter().all(|v| *v as f64 >= lb - 1e-6 && *v as f64 <= ub + 1e-6);
            let w = to_vec(s.weights.clone());
            ok &= w.chunks(20).all(|r| (r.iter().sum::<f32>() - 5.0).abs() < 1e-3);
        };
        let hooks = CemHooks { on_iter: Some(&mut cb), project: None, stop: None };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sol = Cem::new(cfg).unwrap().solve_with(quadratic(t), CemInit::scalar(1, 3, lb + width / 2.0, 1.0, &device), &mut rng, hooks).unwrap();
        prop_assert!(ok);
        prop_assert!(to_vec(sol.mu).iter().all(|v| *v as f64 >= lb - 1e-6 && *v as f64 <= ub + 1e-6));
    }

    #[test]
    fn vanishing_tau_matches_hard_cem(seed in any::<u64>()) {
        let device = Device::flex();
        let t = Tensor::<2>::from_floats([[1.0, -0.5]], &device);
        let run = |tau: f64| {
            let cfg = CemConfig { tau, n_sample: 30, n_elite: 5, n_iter: 4, iter_eps: 0.0, ..Default::default() };
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            to_vec(Cem::new(cfg).unwrap().solve(quadratic(t.clone()), CemInit::scalar(1, 2, 0.0, 1.0, &device), &mut rng).unwrap().mu)
        };
        let (h, s) = (run(0.0), run(1e-9));
        prop_assert!(h.iter().zip(&s).all(|(a, b)| (a - b).abs() < 1e-4), "{:?} vs {:?}", h, s);
    }
}
