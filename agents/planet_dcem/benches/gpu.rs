//! Planning and model updates per device and batch, at the paper's sizes (the RSSM of
//! `configs/planet_cheetah_run.toml`: cheetah.run's widths, 17 observations and 6 actions):
//! full CEM (1000 samples / 100 elites / 10 iterations, horizon 12) and latent DCEM
//! (100 / 10 / 10, tau 1) planning `batch` start states in one call, and one model update on a
//! [50 x 50] chunk batch. Each plan is read back to the host, so a GPU's time includes its
//! queue and the transfer (what an agent waits for).
//!
//! ```text
//! cargo bench -p planet-dcem --features wgpu --bench gpu
//! ```
//! Environment: `DCEM_BENCH_DEVICES` (default `cpu,wgpu`; a device that does not come up is
//! skipped with a message), `DCEM_BENCH_BATCHES` (default `1,16,256`), `DCEM_BENCH_CPU_BATCHES`
//! (default `1`: the CPU's larger batches take minutes), `DCEM_BENCH_SECONDS` (measurement time
//! per benchmark, default 5), `DCEM_BENCH_CONFIG` (default `configs/planet_cheetah_run.toml`
//! of this checkout). `scripts/gpu_bench.sh` runs it on a GPU machine and prints plans
//! per second. Under `cargo test` (criterion's test mode: each benchmark once) only batch 1 runs,
//! and the full CEM with 100 samples and 2 iterations.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Duration;

use burn::tensor::Tensor;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dcem::nn::{normal_noise, to_f64_vec};
use dcem::planner::Planner;
use dcem::planning::CemPlanner;
use planet_dcem::PlanetConfig;
use planet_dcem::world::World;
use rand::{SeedableRng, rngs::ChaCha8Rng};

mod common;

fn list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn batches(var: &str, default: &str) -> Vec<usize> {
    list(var, default)
        .iter()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{var}: {s:?} is not a batch size"))
        })
        .collect()
}

/// Criterion's test mode (`cargo test --benches`): no `--bench` argument.
fn test_mode() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn bench(c: &mut Criterion) {
    // A binary carried to another machine finds the config through DCEM_BENCH_CONFIG.
    let path = std::env::var("DCEM_BENCH_CONFIG").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/planet_cheetah_run.toml"
        )
        .into()
    });
    let mut cfg = PlanetConfig::load(Path::new(&path)).expect("the bench's config");
    if test_mode() {
        // Test mode checks that every benchmark runs on every device, not its speed: the full
        // CEM plans with 100 samples and 2 iterations there (the same code), since 1000 x 10
        // takes over a minute on a software Vulkan driver (lavapipe, as in CI).
        cfg.cem.cem.n_sample = 100;
        cfg.cem.cem.n_elite = 10;
        cfg.cem.cem.n_iter = 2;
    }
    let full_name = format!(
        "plan_full_cem_{}x{}_h{}",
        cfg.cem.cem.n_sample, cfg.cem.cem.n_iter, cfg.cem.horizon
    );
    let seconds: u64 = std::env::var("DCEM_BENCH_SECONDS")
        .ok()
        .map(|s| s.parse().expect("DCEM_BENCH_SECONDS: whole seconds"))
        .unwrap_or(5);
    let mut g = c.benchmark_group("gpu");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
    for name in list("DCEM_BENCH_DEVICES", "cpu,wgpu") {
        let device = match dcem::device::parse_device(&name) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("gpu bench: skipping device {name}: {e}");
                continue;
            }
        };
        let sizes = if test_mode() {
            vec![1]
        } else if name == "cpu" {
            batches("DCEM_BENCH_CPU_BATCHES", "1")
        } else {
            batches("DCEM_BENCH_BATCHES", "1,16,256")
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut agent = common::agent_with_random_buffer(
            &cfg,
            (common::OBS, common::ACT),
            250,
            &device,
            &mut rng,
        );
        g.bench_function(BenchmarkId::new("model_update_50x50", &name), |b| {
            b.iter(|| agent.train_step().expect("update"))
        });
        let model = match &agent.world {
            World::Rssm(w) => w.filter.model().clone(),
            World::Ensemble(_) => unreachable!("the bench's agent is an RSSM agent"),
        };
        let mut full = CemPlanner::new(cfg.cem.clone()).expect("planner");
        let mut latent = common::latent_planner(&cfg, &device, &mut rng);
        for &batch in &sizes {
            let states: Tensor<2> = normal_noise(batch, cfg.model.state_dim(), &device, &mut rng)
                .expect("states")
                .mul_scalar(0.1);
            let id = |what: &str| BenchmarkId::new(what, format!("{name}/batch{batch}"));
            g.bench_function(id(&full_name), |b| {
                b.iter(|| {
                    full.reset();
                    let plan = full.plan(&model, states.clone()).expect("plan");
                    to_f64_vec(plan.first_action()).expect("read back")
                })
            });
            g.bench_function(id("plan_latent_dcem_100x10_h12"), |b| {
                b.iter(|| {
                    let plan = latent.plan(&model, states.clone()).expect("plan");
                    to_f64_vec(plan.first_action()).expect("read back")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
