//! The iCEM options of the solver, checked like DCEM itself.

use super::*;

/// The iCEM options inside DCEM: coloured noise, kept elites, a shrinking population, the
/// mean in the last iteration, carried samples and the best sample returned all keep the
/// solution differentiable (the selections are piecewise constant).
#[test]
fn icem_dcem_solution_gradient_matches_finite_differences() {
    let (b, nx) = (2, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let theta = random(b * nx, 1.0, &mut rng);
    let a: Vec<f64> = (0..b * nx).map(|i| 0.5 + 0.25 * (i % 3) as f64).collect();
    let c = random(b * nx, 1.0, &mut rng);
    let carried = random(b * 2 * nx, 1.0, &mut rng);
    let base = CemConfig {
        n_sample: 40,
        n_elite: 6,
        n_iter: 6,
        tau: 1.0,
        iter_eps: 0.0,
        init_sigma: 1.5,
        ..Default::default()
    };
    let settings = [
        (
            "coloured noise, kept elites, decay, mean last",
            CemConfig {
                noise_beta: 2.0,
                keep_elites: 0.5,
                population_decay: 1.25,
                add_mean_last: true,
                ..base.clone()
            },
            false,
        ),
        (
            "return best, carried samples, bounds",
            CemConfig {
                return_best: true,
                keep_elites: 0.3,
                lb: Some(-50.0),
                ub: Some(50.0),
                ..base.clone()
            },
            true,
        ),
    ];
    for (label, cfg, carry) in settings {
        let solver = Cem::new(cfg).unwrap().with_time_steps(3);
        let solve = |theta_t: Tensor<2>, dev: &Device| {
            let mut noise = ChaCha8Rng::seed_from_u64(42);
            let f = objective(theta_t, tensor(&a, [b, nx], dev));
            let mut init = CemInit::scalar(b, nx, 0.0, 1.5, dev);
            if carry {
                let x: Tensor<3> =
                    Tensor::from_data(TensorData::new(carried.clone(), [b, 2, nx]), dev);
                init = init.with_carried(x);
            }
            solver.solve(f, init, &mut noise).unwrap().mu
        };
        check_solution_gradient(&format!("iCEM DCEM ({label})"), &theta, &c, [b, nx], solve);
    }
}
