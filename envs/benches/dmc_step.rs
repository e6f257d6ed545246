//! Step rates of the DeepMind Control tasks, next to dm_control's own.
//!
//! `cargo bench -p dcem-envs --features mujoco --bench dmc_step` (with RAYON_NUM_THREADS=2 for
//! the vectorised case). First runs `scripts/bench_dmc_python.py` in the project's venv for
//! dm_control's `env.step` rate, then times, in env steps per second:
//! - `dmc_single/<task>`: one environment on the calling thread, 1000-step episodes with random
//!   actions, resets excluded (as in the Python script);
//! - `dmc_physics/<task>`: MuJoCo alone, `Physics::step` with the substeps of one control step
//!   and no observation or reward, the floor of the single-env rate;
//! - `dmc_vec16/<task>`: a `VecEnv` of 16 environments sharing one model, stepped by rayon,
//!   resets included (each environment resets itself after 1000 steps);
//!
//! and prints a table of the Rust rates over dm_control's.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use dcem::env::{Env, VecEnv};
use dcem_envs::dmc::{ControlEnv, Run, Task, Walk};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

const EPISODE: usize = 1000;
const N_ENVS: usize = 16;
const VEC_STEPS: usize = 50;

fn actions(dim: usize, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    (0..dim * n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Times 1000-step episodes (resets untimed) of `step(env, action)` with random actions.
fn episodes<T: Task>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    mut step: impl FnMut(&mut ControlEnv<T>, &[f64]),
) {
    let mut env = ControlEnv::<T>::new().expect("env");
    let dim = env.action_space().flat_dim();
    let acts = actions(dim, EPISODE);
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(EPISODE as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                env.reset(Some(i)).expect("reset");
                let start = Instant::now();
                for a in acts.chunks(dim) {
                    step(&mut env, black_box(a));
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

/// One environment's full step: physics, reward, observation.
fn single<T: Task>(c: &mut Criterion, name: &str) {
    episodes::<T>(c, "dmc_single", name, |env, a| {
        black_box(env.step(a).expect("step"));
    });
}

/// The MuJoCo physics alone: `set_control` and `Physics::step(N_SUB_STEPS)` with the same
/// random actions, per control step.
fn physics_only<T: Task>(c: &mut Criterion, name: &str) {
    episodes::<T>(c, "dmc_physics", name, |env, a| {
        let physics = env.physics_mut();
        physics.set_control(a).expect("control");
        physics.step(T::N_SUB_STEPS).expect("physics step");
    });
}

fn vectorised<T: Task>(c: &mut Criterion, name: &str) {
    let model = ControlEnv::<T>::load_model().expect("model");
    let envs = (0..N_ENVS)
        .map(|_| ControlEnv::<T>::with_model(model.clone()).expect("env"))
        .collect();
    let mut venv = VecEnv::new(envs).expect("vec env");
    venv.reset(Some(0)).expect("reset");
    let dim = venv.action_dim();
    let acts = actions(dim * N_ENVS, VEC_STEPS);
    let mut group = c.benchmark_group("dmc_vec16");
    group.throughput(Throughput::Elements((N_ENVS * VEC_STEPS) as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            for a in acts.chunks(dim * N_ENVS) {
                black_box(venv.step(a).expect("step"));
            }
        })
    });
    group.finish();
}

/// dm_control's rates from the project's venv, if it is there.
fn python_rates() -> Option<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/bench_dmc_python.py"))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "scripts/bench_dmc_python.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Mean time per iteration criterion measured, read back from its report.
fn criterion_rate(group: &str, name: &str, elements: f64) -> Option<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/criterion")
        .join(group)
        .join(name)
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let ns = v["mean"]["point_estimate"].as_f64()?;
    Some(elements / (ns * 1e-9))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs each bench once as a smoke test, which
    // needs no reference rates.
    let benching = std::env::args().any(|a| a == "--bench");
    let reference = if benching { python_rates() } else { None };
    let mut c = Criterion::default().configure_from_args();
    single::<Run>(&mut c, "cheetah-run");
    single::<Walk>(&mut c, "walker-walk");
    physics_only::<Run>(&mut c, "cheetah-run");
    physics_only::<Walk>(&mut c, "walker-walk");
    vectorised::<Run>(&mut c, "cheetah-run");
    vectorised::<Walk>(&mut c, "walker-walk");
    c.final_summary();
    if !benching {
        return;
    }

    if let Some(r) = &reference {
        for task in ["cheetah-run", "walker-walk"] {
            if let Some(v) = r[format!("{task}/mj_step")].as_f64() {
                println!(
                    "{task}: MuJoCo alone from Python (mujoco.mj_step), {v:.0} control steps/s"
                );
            }
        }
    }
    let threads = rayon::current_num_threads();
    println!(
        "\nenv steps/s | dm_control (Python, 1 thread) | Rust 1 thread | ratio | \
         MuJoCo physics alone (Rust) | Rust VecEnv x16 ({threads} threads) | ratio"
    );
    for task in ["cheetah-run", "walker-walk"] {
        let py = reference.as_ref().and_then(|r| r[task].as_f64());
        let one = criterion_rate("dmc_single", task, EPISODE as f64);
        let vec = criterion_rate("dmc_vec16", task, (N_ENVS * VEC_STEPS) as f64);
        let phys = criterion_rate("dmc_physics", task, EPISODE as f64);
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        let ratio = |v: Option<f64>| match (v, py) {
            (Some(v), Some(p)) => format!("{:.1}x", v / p),
            _ => "-".to_string(),
        };
        println!(
            "{task} | {} | {} | {} | {} | {} | {}",
            fmt(py),
            fmt(one),
            ratio(one),
            fmt(phys),
            fmt(vec),
            ratio(vec)
        );
    }
}
