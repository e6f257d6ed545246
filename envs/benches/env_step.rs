//! Environment step rates: one env on the calling thread, and a `VecEnv` of 256 (rayon; run with
//! RAYON_NUM_THREADS=1 and 2). Throughput is reported in env steps per second.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dcem::env::{Env, VecEnv};
use dcem_envs::{CartPole, CartPoleAction, CartpoleSwingup, Pendulum};

const STEPS: u64 = 10_000;
const N_ENVS: usize = 256;

fn single<E: Env>(c: &mut Criterion, name: &str, mut env: E, action: f64) {
    let mut group = c.benchmark_group("env_single");
    group.throughput(Throughput::Elements(STEPS));
    env.reset(Some(0)).expect("reset");
    group.bench_function(name, |b| {
        b.iter(|| {
            for _ in 0..STEPS {
                let s = env.step(black_box(&[action])).expect("step");
                if s.terminated || s.truncated {
                    env.reset(None).expect("reset");
                }
            }
        })
    });
    group.finish();
}

fn vectorised<E: Env>(c: &mut Criterion, name: &str, make: impl Fn() -> E, action: f64) {
    let mut group = c.benchmark_group("env_vec256");
    group.throughput(Throughput::Elements(N_ENVS as u64 * 100));
    let mut venv = VecEnv::new((0..N_ENVS).map(|_| make()).collect()).expect("vec env");
    venv.reset(Some(0)).expect("reset");
    let actions = vec![action; N_ENVS];
    group.bench_function(name, |b| {
        b.iter(|| {
            for _ in 0..100 {
                black_box(venv.step(&actions).expect("step"));
            }
        })
    });
    group.finish();
}

fn bench_envs(c: &mut Criterion) {
    single(
        c,
        "cartpole",
        CartPole::new(CartPoleAction::Discrete).expect("env"),
        1.0,
    );
    single(
        c,
        "swingup",
        CartpoleSwingup::new(Default::default()).expect("env"),
        0.3,
    );
    single(c, "pendulum", Pendulum::new().expect("env"), 0.5);
    vectorised(
        c,
        "cartpole",
        || CartPole::new(CartPoleAction::Discrete).expect("env"),
        1.0,
    );
    vectorised(
        c,
        "swingup",
        || CartpoleSwingup::new(Default::default()).expect("env"),
        0.3,
    );
    vectorised(c, "pendulum", || Pendulum::new().expect("env"), 0.5);
}

criterion_group!(benches, bench_envs);
criterion_main!(benches);
