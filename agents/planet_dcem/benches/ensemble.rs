//! The probabilistic ensemble's costs on the swing-up (5 observations, 1 action) with the main
//! job's planner (configs/planet_swingup.toml's: iCEM 100/20/5, horizon 12): one planning
//! call from one observation, every sequence rolled out under all 5 members, for 64- and
//! 128-unit networks (3 hidden layers); and one update on 256 transitions per member. At
//! cheetah.run's sizes (17 observations, 6 actions) with `configs/planet_cheetah_run_100k_ensemble.toml`
//! (5 x 3 x 200 ELU, iCEM 200/20/4, horizon 12): one planning call, one update, and one
//! rollout of 610 sequences (an iCEM call's count) on the host path planning takes against
//! the same rollout as tensor operations.
//!
//! ```text
//! cargo bench -p planet-dcem --bench ensemble
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Duration;

use burn::tensor::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use dcem::planner::Planner;
use dcem::planning::CemPlanner;
use planet_dcem::PlanetConfig;
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

mod common;

const OBS: usize = 5;
const ACT: usize = 1;

fn bench(c: &mut Criterion) {
    let mut cfg = PlanetConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/planet_swingup.toml"
    )))
    .expect("configs/planet_swingup.toml");
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut g = c.benchmark_group("ensemble");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for hidden in [64, 128] {
        cfg.ensemble.hidden = hidden;
        let mut agent = common::agent_with_random_buffer(&cfg, (OBS, ACT), 50, &device, &mut rng);
        g.bench_function(format!("update_5x256_h{hidden}"), |bch| {
            bch.iter(|| agent.train_step().expect("update"))
        });
        let model = match &agent.world {
            planet_dcem::world::World::Ensemble(w) => w.plain.clone(),
            planet_dcem::world::World::Rssm(_) => unreachable!("an ensemble config"),
        };
        let state = Tensor::<2>::zeros([1, OBS], &device);
        let mut cem = CemPlanner::new(cfg.cem.clone()).expect("planner");
        let (c, h) = (&cfg.cem.cem, cfg.cem.horizon);
        let name = format!("plan_{}x{}_h{h}_hidden{hidden}", c.n_sample, c.n_iter);
        g.bench_function(name, |bch| {
            bch.iter(|| {
                cem.reset();
                cem.plan(&model, state.clone()).expect("plan")
            })
        });
    }
    cheetah(&mut g, &device, &mut rng);
    g.finish();
}

fn cheetah(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    device: &Device,
    rng: &mut ChaCha8Rng,
) {
    let (obs, act, n, horizon) = (17, 6, 610, 12);
    let cfg = PlanetConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/planet_cheetah_run_100k_ensemble.toml"
    )))
    .expect("configs/planet_cheetah_run_100k_ensemble.toml");
    let mut agent = common::agent_with_random_buffer(&cfg, (obs, act), 250, device, rng);
    g.bench_function("cheetah_update_5x256_h200", |bch| {
        bch.iter(|| agent.train_step().expect("update"))
    });
    let model = match &agent.world {
        planet_dcem::world::World::Ensemble(w) => w.plain.clone(),
        planet_dcem::world::World::Rssm(_) => unreachable!("an ensemble config"),
    };
    let mut uniform =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let states = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(uniform(n * obs), [n, obs]),
        device,
    );
    let actions = Tensor::<3>::from_data(
        burn::tensor::TensorData::new(uniform(n * horizon * act), [n, horizon, act]),
        device,
    );
    g.bench_function("cheetah_rollout_610x12_host", |bch| {
        bch.iter(|| {
            model
                .imagine(states.clone(), actions.clone(), false)
                .expect("rollout")
        })
    });
    g.bench_function("cheetah_rollout_610x12_tensor_ops", |bch| {
        bch.iter(|| {
            model
                .imagine_tensor_ops(states.clone(), actions.clone(), false)
                .expect("rollout")
        })
    });
    let state = Tensor::<2>::zeros([1, obs], device);
    let mut cem = CemPlanner::new(cfg.cem.clone()).expect("planner");
    g.bench_function("cheetah_plan_icem_200x4_h12", |bch| {
        bch.iter(|| cem.plan(&model, state.clone()).expect("plan"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
