//! The GPU path against the CPU path: the same computations on burn's wgpu device (tensor ops
//! only) and on the CPU (with its fused host kernels where it has them), from the same
//! parameters and the same noise, agree within stated tolerances.
//!
//! Built with the `wgpu` feature (`cargo test -p dcem --features wgpu --test gpu`). Each test
//! skips with a message where no wgpu device comes up, unless `DCEM_REQUIRE_GPU=1` (as in CI,
//! which installs lavapipe): then a missing device fails the test.
#![cfg(feature = "wgpu")]
#![allow(clippy::unwrap_used)]

use burn::tensor::{Device, Tensor};
use dcem::cem::{Cem, CemConfig, CemInit};
use dcem::lml::lml;
use dcem::model::Model;
use dcem::nn::{
    Ensemble, EnsembleConfig, Rssm, RssmConfig, SequenceBatch, TransitionBatch, normal_noise,
    tensor_from_f64, to_f64_vec,
};
use dcem::planner::Planner;
use dcem::planning::{
    CemPlanner, CemPlannerConfig, LatentDcemPlanner, LatentPlannerConfig, MlpDecoder,
    MlpDecoderConfig,
};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// Forward values: f32 with a different summation order on each device.
const FORWARD: f64 = 1e-4;
/// Gradients (longer chains of f32 operations, implicit backward passes).
const GRADIENT: f64 = 2e-3;

/// The wgpu device, or `None` (with the reason printed) where none comes up.
fn gpu() -> Option<Device> {
    match dcem::device::wgpu_device() {
        Ok(d) => {
            assert_eq!(dcem::device::device_name(&d), "wgpu");
            Some(d)
        }
        Err(e) if std::env::var("DCEM_REQUIRE_GPU").as_deref() != Ok("1") => {
            eprintln!("SKIPPED (no wgpu device; set DCEM_REQUIRE_GPU=1 to fail instead): {e}");
            None
        }
        Err(e) => panic!("DCEM_REQUIRE_GPU=1 but {e}"),
    }
}

fn cpu() -> Device {
    Device::flex()
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    to_f64_vec(t).unwrap()
}

/// `gpu` equals `cpu` within `tol` of the larger of 1 and `cpu`'s largest magnitude.
fn assert_close(what: &str, gpu: &[f64], cpu: &[f64], tol: f64) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let scale = cpu.iter().fold(1.0f64, |s, v| s.max(v.abs()));
    let (i, err) = gpu
        .iter()
        .zip(cpu)
        .map(|(g, c)| (g - c).abs())
        .enumerate()
        .fold((0, 0.0f64), |m, (i, e)| if e > m.1 { (i, e) } else { m });
    eprintln!(
        "{what}: largest difference {:.1e} of the scale",
        err / scale
    );
    assert!(
        gpu.iter().all(|v| v.is_finite()) && err <= tol * scale,
        "{what}: largest difference {err:.3e} at {i} (gpu {}, cpu {}), allowed {:.3e}",
        gpu[i],
        cpu[i],
        tol * scale
    );
}

fn random(n: usize, scale: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    use rand::RngExt;
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

#[test]
fn lml_projection_and_its_gradient() {
    let Some(gpu) = gpu() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (b, n) = (6, 40);
    let x = random(b * n, 3.0, &mut rng);
    let w = random(b * n, 1.0, &mut rng);
    let run = |device: Device| {
        let device = device.autodiff();
        let xt = tensor_from_f64(&x, [b, n], &device).unwrap().require_grad();
        let wt = tensor_from_f64(&w, [b, n], &device).unwrap();
        let y = lml(xt.clone(), 5.0, 0.7).unwrap();
        let grads = (y.clone() * wt).sum().backward();
        (read(y), read(xt.grad(&grads).unwrap()))
    };
    let (y_gpu, g_gpu) = run(gpu);
    let (y_cpu, g_cpu) = run(cpu());
    assert_close("lml forward", &y_gpu, &y_cpu, FORWARD);
    assert_close("lml gradient", &g_gpu, &g_cpu, GRADIENT);
}

#[test]
fn cem_and_dcem_solutions_and_gradient() {
    let Some(gpu) = gpu() else { return };
    let target = [1.0, -2.0, 0.5, 0.0, 1.5, -0.5, 0.3, 0.7];
    for tau in [0.0, 1.0] {
        let run = |device: Device| {
            let device = device.autodiff();
            let t = tensor_from_f64(&target, [2, 4], &device)
                .unwrap()
                .require_grad();
            let solver = Cem::new(CemConfig {
                n_sample: 64,
                n_elite: 8,
                n_iter: 6,
                tau,
                ..Default::default()
            })
            .unwrap();
            let f = |x: Tensor<3>| {
                (x - t.clone().unsqueeze_dim::<3>(1))
                    .square()
                    .sum_dim(2)
                    .squeeze_dim::<2>(2)
            };
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let sol = solver
                .solve(f, CemInit::scalar(2, 4, 0.0, 2.0, &device), &mut rng)
                .unwrap();
            // Hard CEM's solution is off the tape: only DCEM's has a gradient.
            let g = (tau > 0.0).then(|| {
                let grads = (sol.mu.clone() * sol.mu.clone()).sum().backward();
                read(t.grad(&grads).unwrap())
            });
            (read(sol.mu), g)
        };
        let (mu_gpu, g_gpu) = run(gpu.clone());
        let (mu_cpu, g_cpu) = run(cpu());
        assert_close(&format!("solution (tau {tau})"), &mu_gpu, &mu_cpu, FORWARD);
        if tau > 0.0 {
            assert_close(
                "DCEM gradient of the solution",
                &g_gpu.unwrap(),
                &g_cpu.unwrap(),
                GRADIENT,
            );
        }
    }
}

fn small_rssm(device: &Device) -> Rssm {
    let cfg = RssmConfig {
        deter: 24,
        stoch: 6,
        hidden: 16,
        free_nats: 0.5,
        ..Default::default()
    };
    Rssm::new(cfg, 5, 2, device, &mut ChaCha8Rng::seed_from_u64(3)).unwrap()
}

#[test]
fn rssm_loss_gradients_and_imagination() {
    let Some(gpu) = gpu() else { return };
    let run = |device: Device| {
        let ad = device.clone().autodiff();
        let m = small_rssm(&ad).require_grad();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (l, b) = (8, 5);
        let batch = SequenceBatch {
            obs: normal_noise(l * b, 5, &ad, &mut rng)
                .unwrap()
                .mul_scalar(2.0),
            actions: normal_noise(l * b, 2, &ad, &mut rng).unwrap(),
            rewards: normal_noise(l * b, 1, &ad, &mut rng).unwrap(),
            noise: normal_noise(l * b, 6, &ad, &mut rng).unwrap(),
            length: l,
            batch: b,
        };
        // On the CPU this is the host sweep with its hand-written backward.
        let loss = m.loss(&batch).unwrap();
        let parts = [
            loss.total.clone(),
            loss.obs.clone(),
            loss.reward.clone(),
            loss.kl.clone(),
        ]
        .map(|t| read(t)[0]);
        let grads = loss.total.backward();
        let g: Vec<Vec<f64>> = m
            .params()
            .into_iter()
            .map(|p| read(p.grad(&grads).unwrap()))
            .collect();
        // Imagination without a tape (the host rollout on the CPU).
        let plain = small_rssm(&device);
        let states = normal_noise(7, plain.state_dim(), &device, &mut rng).unwrap();
        let actions = normal_noise(7, 10, &device, &mut rng)
            .unwrap()
            .reshape([7, 5, 2]);
        let cost = read(plain.cost(states, actions).unwrap());
        (parts.to_vec(), g, cost)
    };
    let (l_gpu, g_gpu, c_gpu) = run(gpu);
    let (l_cpu, g_cpu, c_cpu) = run(cpu());
    assert_close(
        "RSSM loss (total, obs, reward, kl)",
        &l_gpu,
        &l_cpu,
        FORWARD,
    );
    let names = small_rssm(&cpu()).param_names();
    for ((name, a), b) in names.iter().zip(&g_gpu).zip(&g_cpu) {
        assert_close(&format!("RSSM gradient of {name}"), a, b, GRADIENT);
    }
    assert_close("RSSM imagined cost", &c_gpu, &c_cpu, FORWARD);
}

fn small_ensemble(device: &Device) -> Ensemble {
    let cfg = EnsembleConfig {
        members: 3,
        hidden: 16,
        layers: 2,
        batch: 8,
        ..Default::default()
    };
    Ensemble::new(cfg, 4, 2, device, &mut ChaCha8Rng::seed_from_u64(5)).unwrap()
}

#[test]
fn ensemble_loss_gradients_and_rollout() {
    let Some(gpu) = gpu() else { return };
    let run = |device: Device| {
        let ad = device.clone().autodiff();
        let e = small_ensemble(&ad).require_grad();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let (m, n) = (3, 8);
        let mut draw = |w: usize| {
            normal_noise(m * n, w, &ad, &mut rng)
                .unwrap()
                .reshape([m, n, w])
        };
        let batch = TransitionBatch {
            obs: draw(4),
            actions: draw(2),
            next_obs: draw(4),
            rewards: draw(1),
        };
        let loss = e.loss(&batch).unwrap();
        let total = read(loss.total.clone());
        let grads = loss.total.backward();
        let g: Vec<Vec<f64>> = e
            .params()
            .into_iter()
            .map(|p| read(p.grad(&grads).unwrap()))
            .collect();
        let plain = small_ensemble(&device);
        let states = normal_noise(6, 4, &device, &mut rng).unwrap();
        let actions = normal_noise(6, 10, &device, &mut rng)
            .unwrap()
            .reshape([6, 5, 2]);
        (total, g, read(plain.cost(states, actions).unwrap()))
    };
    let (l_gpu, g_gpu, c_gpu) = run(gpu);
    let (l_cpu, g_cpu, c_cpu) = run(cpu());
    assert_close("ensemble loss", &l_gpu, &l_cpu, FORWARD);
    for (i, (a, b)) in g_gpu.iter().zip(&g_cpu).enumerate() {
        assert_close(
            &format!("ensemble gradient of parameter {i}"),
            a,
            b,
            GRADIENT,
        );
    }
    assert_close("ensemble rollout cost", &c_gpu, &c_cpu, FORWARD);
}

#[test]
fn full_space_cem_planner_on_the_ensemble() {
    let Some(gpu) = gpu() else { return };
    let run = |device: Device| {
        let model = small_ensemble(&device);
        let mut planner = CemPlanner::new(CemPlannerConfig {
            horizon: 6,
            cem: CemConfig {
                n_sample: 100,
                n_elite: 10,
                n_iter: 4,
                tau: 0.0,
                iter_eps: 0.0,
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let states = normal_noise(3, 4, &device, &mut rng).unwrap();
        // Two calls: the second is warm-started from the first.
        let first = planner.plan(&model, states.clone()).unwrap();
        let second = planner.plan(&model, states).unwrap();
        (
            read(first.actions),
            read(second.actions),
            second.diagnostics.cost,
        )
    };
    let (a_gpu, b_gpu, c_gpu) = run(gpu);
    let (a_cpu, b_cpu, c_cpu) = run(cpu());
    assert_close("CEM plan", &a_gpu, &a_cpu, 1e-3);
    assert_close("warm-started CEM plan", &b_gpu, &b_cpu, 1e-3);
    assert_close("CEM plan cost", &c_gpu, &c_cpu, 1e-3);
}

#[test]
fn latent_dcem_planner_and_its_decoder_gradient() {
    let Some(gpu) = gpu() else { return };
    let run = |device: Device| {
        let ad = device.clone().autodiff();
        let model = small_ensemble(&ad);
        let decoder = MlpDecoder::new(
            &MlpDecoderConfig {
                latent_dim: 3,
                hidden: 16,
                hidden_layers: 2,
                ..Default::default()
            },
            6,
            2,
            (-1.0, 1.0),
            &ad,
            &mut ChaCha8Rng::seed_from_u64(9),
        )
        .unwrap()
        .require_grad();
        let mut planner = LatentDcemPlanner::new(
            LatentPlannerConfig {
                cem: CemConfig {
                    n_sample: 50,
                    n_elite: 5,
                    n_iter: 4,
                    tau: 1.0,
                    iter_eps: 0.0,
                    normalize: true,
                    ..LatentPlannerConfig::default().cem
                },
                ..Default::default()
            },
            decoder,
        )
        .unwrap();
        let states = normal_noise(4, 4, &ad, &mut ChaCha8Rng::seed_from_u64(10)).unwrap();
        let plan = planner.plan(&model, states.clone()).unwrap();
        let cost = model.cost(states, plan.actions.clone()).unwrap();
        let grads = cost.sum().backward();
        let g: Vec<Vec<f64>> = planner
            .params()
            .into_iter()
            .map(|p| read(p.grad(&grads).unwrap()))
            .collect();
        (read(plan.actions), g)
    };
    let (a_gpu, g_gpu) = run(gpu);
    let (a_cpu, g_cpu) = run(cpu());
    assert_close("latent DCEM plan", &a_gpu, &a_cpu, 1e-3);
    for (i, (a, b)) in g_gpu.iter().zip(&g_cpu).enumerate() {
        assert_close(&format!("decoder gradient of parameter {i}"), a, b, 1e-2);
    }
}
