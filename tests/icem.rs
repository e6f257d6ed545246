//! iCEM options of the CEM/DCEM solver and the planners: coloured noise, kept and carried
//! elites, the shrinking population, the mean in the last iteration, the best sample returned.

use burn::tensor::{Device, Tensor, TensorData, s};
use dcem::cem::{Cem, CemConfig, CemHooks, CemInit, IterState};
use dcem::model::{Model, Rollout};
use dcem::planner::Planner;
use dcem::planning::{
    CemPlanner, CemPlannerConfig, LatentDcemPlanner, LatentPlannerConfig, MlpDecoder,
    MlpDecoderConfig,
};
use dcem::{Error, Result};
use rand::{SeedableRng, rngs::ChaCha8Rng};

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 data")
}

/// Shifted quadratic with a different minimiser per batch row.
fn quadratic(targets: Tensor<2>) -> impl FnMut(Tensor<3>) -> Tensor<2> {
    move |x| {
        (x - targets.clone().unsqueeze_dim::<3>(1))
            .square()
            .sum_dim(2)
            .squeeze_dim::<2>(2)
    }
}

fn targets(batch: usize, nx: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..batch * nx)
        .map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0)
        .collect();
    Tensor::from_data(TensorData::new(v, [batch, nx]), device)
}

/// Every iteration's sample count and samples, seen through the iteration hook.
fn solve_recording(
    cfg: CemConfig,
    steps: usize,
    init: CemInit,
    t: Tensor<2>,
) -> (dcem::cem::CemSolution, Vec<Tensor<3>>, Vec<Tensor<2>>) {
    let mut seen = Vec::new();
    let mut values = Vec::new();
    let mut cb = |st: &IterState<'_>| {
        seen.push(st.samples.clone());
        values.push(st.values.clone());
    };
    let hooks = CemHooks {
        on_iter: Some(&mut cb),
        project: None,
        stop: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let sol = Cem::new(cfg)
        .unwrap()
        .with_time_steps(steps)
        .solve_with(quadratic(t), init, &mut rng, hooks)
        .unwrap();
    (sol, seen, values)
}

#[test]
fn population_shrinks_and_kept_elites_and_the_mean_are_evaluated_again() {
    let device = Device::flex();
    let (b, nx) = (2, 4);
    let cfg = CemConfig {
        n_sample: 100,
        n_elite: 10,
        n_iter: 4,
        tau: 0.0,
        iter_eps: 0.0,
        keep_elites: 0.5,
        population_decay: 1.25,
        add_mean_last: true,
        ..Default::default()
    };
    let (sol, seen, values) = solve_recording(
        cfg,
        nx,
        CemInit::scalar(b, nx, 0.0, 1.0, &device),
        targets(b, nx, &device),
    );
    // Fresh 100, 80, 64, 52; 5 kept from the second iteration on; the mean in the last.
    let sizes: Vec<usize> = seen.iter().map(|x| x.dims()[1]).collect();
    assert_eq!(sizes, [100, 85, 69, 58]);
    assert_eq!(sol.evaluations, vec![312; b]);
    // The kept samples of iteration i+1 are iteration i's five best, in order.
    for i in 0..3 {
        let v = to_vec(values[i].clone());
        let x = to_vec(seen[i].clone());
        let next = to_vec(seen[i + 1].clone());
        let n = sizes[i];
        let fresh_next = sizes[i + 1] - 5 - usize::from(i + 1 == 3);
        for row in 0..b {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&p, &q| v[row * n + p].total_cmp(&v[row * n + q]));
            for (j, &best) in order[..5].iter().enumerate() {
                let kept = &next[(row * sizes[i + 1] + fresh_next + j) * nx..][..nx];
                assert_eq!(
                    kept,
                    &x[(row * n + best) * nx..][..nx],
                    "iteration {i} row {row}"
                );
            }
        }
    }
    let kept = sol.kept.expect("kept elites of the last iteration");
    assert_eq!(kept.dims(), [b, 5, nx]);
}

#[test]
fn return_best_gives_the_lowest_sample_seen() {
    let device = Device::flex();
    let (b, nx) = (3, 5);
    let t = targets(b, nx, &device);
    let cfg = CemConfig {
        n_sample: 30,
        n_elite: 5,
        n_iter: 5,
        tau: 1.0,
        iter_eps: 0.0,
        return_best: true,
        ..Default::default()
    };
    let (sol, _, _) = solve_recording(
        cfg,
        nx,
        CemInit::scalar(b, nx, 0.0, 1.0, &device),
        t.clone(),
    );
    let at = to_vec(quadratic(t)(sol.mu.unsqueeze_dim::<3>(1)));
    for (v, best) in at.iter().zip(&sol.best_value) {
        assert!((f64::from(*v) - best).abs() < 1e-5, "{v} vs best {best}");
    }
}

/// Lag-1 correlation along the time axis of the first iteration's noise, per time-step pair,
/// averaged over samples and coordinates.
fn lag1(beta: f64) -> f64 {
    let device = Device::flex();
    let (steps, dims) = (12, 2);
    let cfg = CemConfig {
        n_sample: 2000,
        n_elite: 10,
        n_iter: 1,
        noise_beta: beta,
        ..Default::default()
    };
    let (_, seen, _) = solve_recording(
        cfg,
        steps,
        CemInit::scalar(1, steps * dims, 0.0, 1.0, &device),
        targets(1, steps * dims, &device),
    );
    let x = to_vec(seen[0].clone());
    let (mut num, mut var) = (0.0f64, 0.0f64);
    for sample in x.chunks(steps * dims) {
        for t in 0..steps {
            for d in 0..dims {
                let v = f64::from(sample[t * dims + d]);
                var += v * v;
                if t + 1 < steps {
                    num += v * f64::from(sample[(t + 1) * dims + d]);
                }
            }
        }
    }
    let var_per = var / (2000 * steps * dims) as f64;
    assert!((var_per - 1.0).abs() < 0.05, "unit variance, got {var_per}");
    num / (2000 * (steps - 1) * dims) as f64
}

#[test]
fn coloured_noise_is_correlated_in_time_and_white_is_not() {
    let white = lag1(0.0);
    let pink = lag1(1.0);
    let red = lag1(2.5);
    assert!(white.abs() < 0.05, "white lag-1 {white}");
    assert!(pink > 0.2 && red > pink && red > 0.7, "lag-1 {pink}, {red}");
}

#[test]
fn icem_options_are_checked() {
    let bad = [
        (
            CemConfig {
                keep_elites: 1.5,
                ..Default::default()
            },
            "keep_elites",
        ),
        (
            CemConfig {
                population_decay: 0.5,
                ..Default::default()
            },
            "population_decay",
        ),
        (
            CemConfig {
                noise_beta: -1.0,
                ..Default::default()
            },
            "noise_beta",
        ),
        (
            CemConfig {
                shift_elites: true,
                keep_elites: 0.05,
                ..Default::default()
            },
            "shift_elites",
        ),
    ];
    for (cfg, field) in bad {
        let e = Cem::new(cfg).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    // A time axis that does not divide the rows.
    let device = Device::flex();
    let cfg = CemConfig {
        noise_beta: 2.0,
        ..Default::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let e = Cem::new(cfg)
        .unwrap()
        .with_time_steps(4)
        .solve(
            quadratic(targets(1, 6, &device)),
            CemInit::scalar(1, 6, 0.0, 1.0, &device),
            &mut rng,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("noise_beta"), "{e}");
    // Carried samples of the wrong width.
    let bad_carry: Tensor<3> = Tensor::zeros([1, 2, 5], &device);
    let e = Cem::new(CemConfig::default())
        .unwrap()
        .solve(
            quadratic(targets(1, 6, &device)),
            CemInit::scalar(1, 6, 0.0, 1.0, &device).with_carried(bad_carry),
            &mut rng,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("carried"), "{e}");
    // The latent space has no time axis.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let decoder = MlpDecoder::new(
        &MlpDecoderConfig::default(),
        4,
        1,
        (-1.0, 1.0),
        &device,
        &mut rng,
    )
    .unwrap();
    for (cem, field) in [
        (
            CemConfig {
                noise_beta: 2.0,
                ..LatentPlannerConfig::default().cem
            },
            "noise_beta",
        ),
        (
            CemConfig {
                keep_elites: 0.5,
                shift_elites: true,
                ..LatentPlannerConfig::default().cem
            },
            "shift_elites",
        ),
    ] {
        let cfg = LatentPlannerConfig {
            cem,
            ..Default::default()
        };
        let e = LatentDcemPlanner::new(cfg, decoder.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
}

/// A 1-D integrator: state x, action u in [-1, 1], x' = x + 0.1 u; cost sum x^2 + 0.01 u^2.
struct Integrator;

impl Model for Integrator {
    fn state_dim(&self) -> usize {
        1
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        let [b, _] = states.dims();
        let [ba, h, _] = actions.dims();
        if ba != b {
            return Err(Error::shape(
                "Integrator::rollout",
                format!("batch {b}"),
                [ba],
            ));
        }
        let mut x = states;
        let mut cost = Tensor::<2>::zeros([b, 1], &x.device());
        let mut visited = vec![x.clone()];
        for t in 0..h {
            let u = actions.clone().slice(s![.., t..t + 1, ..]).reshape([b, 1]);
            cost = cost + x.clone().square() + u.clone().square().mul_scalar(0.01);
            x = x + u.mul_scalar(0.1);
            if keep_states {
                visited.push(x.clone());
            }
        }
        Ok(Rollout {
            cost: cost.reshape([b]),
            states: keep_states.then(|| Tensor::stack(visited, 1)),
        })
    }
}

#[test]
fn the_full_space_planner_carries_shifted_elites_into_its_next_solve() {
    let device = Device::flex();
    let (h, keep) = (6, 4);
    let config = CemPlannerConfig {
        horizon: h,
        cem: CemConfig {
            n_sample: 50,
            n_elite: 8,
            n_iter: 3,
            tau: 0.0,
            keep_elites: 0.5,
            shift_elites: true,
            noise_beta: 2.0,
            population_decay: 1.5,
            return_best: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut planner = CemPlanner::new(config).unwrap();
    let states = Tensor::<2>::from_data(TensorData::new(vec![0.8f32, -0.5], [2, 1]), &device);
    let mut first_iter = Vec::new();
    let mut plans = Vec::new();
    for call in 0..3 {
        if call == 2 {
            planner.reset();
        }
        let mut sizes = Vec::new();
        let mut cb = |st: &IterState<'_>| sizes.push(st.samples.dims()[1]);
        let plan = planner
            .plan_with(
                &Integrator,
                states.clone(),
                CemHooks {
                    on_iter: Some(&mut cb),
                    project: None,
                    stop: None,
                },
            )
            .unwrap();
        first_iter.push(sizes[0]);
        assert_eq!(sizes[1..], [34 + keep, 23 + keep]);
        assert_eq!(
            plan.diagnostics.evaluations,
            vec![sizes.iter().sum::<usize>(); 2]
        );
        plans.push(plan);
    }
    // The second solve starts with the first one's four best, shifted; reset forgets them.
    assert_eq!(first_iter, [50, 50 + keep, 50]);
    assert_eq!(
        plans[1].diagnostics.evaluations[0],
        planner.config().cem.evaluations_per_solve()
    );
    // Planning the origin-bound integrator: the plans push both states towards 0.
    let u = to_vec(plans[1].actions.clone());
    assert!(u[0] < 0.0 && u[h] > 0.0, "{u:?}");
}

#[test]
fn the_latent_planner_keeps_elites_and_returns_its_best_with_gradients() {
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let net = MlpDecoderConfig {
        latent_dim: 2,
        hidden: 16,
        hidden_layers: 1,
        ..Default::default()
    };
    let decoder = MlpDecoder::new(&net, 5, 1, (-1.0, 1.0), &device, &mut rng)
        .unwrap()
        .require_grad();
    let cem = CemConfig {
        n_sample: 20,
        n_elite: 4,
        n_iter: 4,
        tau: 1.0,
        iter_eps: 0.0,
        keep_elites: 0.5,
        population_decay: 1.5,
        add_mean_last: true,
        return_best: true,
        ..LatentPlannerConfig::default().cem
    };
    let expected = cem.evaluations_per_solve();
    let mut planner = LatentDcemPlanner::new(
        LatentPlannerConfig {
            cem,
            ..Default::default()
        },
        decoder,
    )
    .unwrap();
    let states = Tensor::<2>::from_data(TensorData::new(vec![0.8f32, -0.5], [2, 1]), &device);
    let plan = planner.plan(&Integrator, states.clone()).unwrap();
    assert_eq!(plan.diagnostics.evaluations, vec![expected; 2]);
    // The best latent sample: its decoded plan costs what the solver saw as the best.
    let loss = Integrator.cost(states, plan.actions).unwrap().sum();
    let grads = loss.backward();
    let g = planner.decoder().net.params()[0]
        .grad(&grads)
        .expect("decoder gradient");
    assert!(to_vec(g).iter().any(|v| *v != 0.0));
}
