//! Per-iteration cost of the cartpole embedding (paper sect. 5.2.1) at the paper's settings, one
//! start state: a training iteration (latent DCEM solve, cost, backward, clipping, Adam), a
//! latent DCEM solve alone, and a full-space CEM solve with 1000 samples / 5 elites / 10
//! iterations. Reference (PyTorch, CPU, one thread): 198 ms, 97 ms and 80 ms.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::tensor::Device;
use cartpole_embed::{EmbedConfig, new_planner, start_states, train_step};
use criterion::{Criterion, criterion_group, criterion_main};
use dcem::cem::CemConfig;
use dcem::nn::tensor_from_f64;
use dcem::optim::Adam;
use dcem::planner::Planner;
use dcem::planning::{CemPlanner, CemPlannerConfig};
use dcem_envs::SwingupModel;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let cfg = EmbedConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x0 = tensor_from_f64(&start_states(1, &mut rng), [1, 5], &device).expect("state");
    let mut planner = new_planner(&cfg, &device).expect("planner");
    let mut adam = Adam::new(cfg.adam.clone(), planner.decoder().net.params().len()).expect("adam");
    let mut group = c.benchmark_group("cartpole_embed");
    group.sample_size(30);
    group.bench_function("train_iteration", |b| {
        b.iter(|| train_step(&mut planner, &mut adam, x0.clone(), cfg.clip_norm).expect("step"))
    });
    group.bench_function("latent_solve", |b| {
        b.iter(|| planner.plan(&SwingupModel, x0.clone()).expect("plan"))
    });
    let mut full = CemPlanner::new(CemPlannerConfig {
        horizon: 20,
        warm_start: false,
        cem: CemConfig {
            n_sample: 1000,
            n_elite: 5,
            n_iter: 10,
            tau: 0.0,
            init_sigma: 1.0,
            ..CemConfig::default()
        },
        ..CemPlannerConfig::default()
    })
    .expect("full cem");
    group.bench_function("full_cem_1000", |b| {
        b.iter(|| full.plan(&SwingupModel, x0.clone()).expect("plan"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
