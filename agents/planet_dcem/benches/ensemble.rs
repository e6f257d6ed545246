//! The probabilistic ensemble's costs on the swing-up (5 observations, 1 action) with the main
//! job's planner (full CEM 500 samples / 50 elites / 5 iterations, horizon 12): one planning
//! call from one observation, every sequence rolled out under all 5 members, for 64- and
//! 128-unit networks (3 hidden layers); and one update on 256 transitions per member.
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
use dcem::replay::EpisodeRecord;
use planet_dcem::{PlanetAgent, PlanetConfig};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

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
        let mut agent = PlanetAgent::new(&cfg, OBS, ACT, &device).expect("agent");
        for _ in 0..4 {
            let mut ep = EpisodeRecord::default();
            for _ in 0..50 {
                let o: Vec<f64> = (0..OBS).map(|_| rng.random_range(-1.0..1.0)).collect();
                let a: Vec<f64> = (0..ACT).map(|_| rng.random_range(-1.0..1.0)).collect();
                ep.push(&o, &a, rng.random_range(0.0..1.0)).expect("finite");
            }
            agent.buffer.push(ep).expect("episode");
        }
        g.bench_function(format!("update_5x256_h{hidden}"), |bch| {
            bch.iter(|| agent.train_step().expect("update"))
        });
        let model = match &agent.world {
            planet_dcem::world::World::Ensemble(w) => w.plain.clone(),
            planet_dcem::world::World::Rssm(_) => unreachable!("an ensemble config"),
        };
        let state = Tensor::<2>::zeros([1, OBS], &device);
        let mut cem = CemPlanner::new(cfg.cem.clone()).expect("planner");
        g.bench_function(format!("plan_cem_500x5_h12_hidden{hidden}"), |bch| {
            bch.iter(|| {
                cem.reset();
                cem.plan(&model, state.clone()).expect("plan")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
