//! DCEM solve at the reference table's size: nx = 20, batch 64, 100 samples, 10 elites,
//! 10 iterations (no early stop), tau = 1, on a quadratic. Forward only, and forward plus the
//! backward pass to the quadratic's target (the objective's parameter).

// Each tensor op allocates fresh buffers; with glibc's default allocator many of those page-fault
// (see BENCHMARKS.md), so the benches use mimalloc, as an application using this crate should.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use dcem::cem::{Cem, CemConfig, CemInit};
use rand::{SeedableRng, rngs::ChaCha8Rng};

const B: usize = 64;
const NX: usize = 20;

fn solver() -> Cem {
    Cem::new(CemConfig {
        n_sample: 100,
        n_elite: 10,
        n_iter: 10,
        tau: 1.0,
        iter_eps: 0.0,
        ..Default::default()
    })
    .expect("valid config")
}

fn quadratic(target: Tensor<2>) -> impl FnMut(Tensor<3>) -> Tensor<2> {
    move |x: Tensor<3>| {
        (x - target.clone().unsqueeze_dim::<3>(1))
            .square()
            .sum_dim(2)
            .squeeze_dim::<2>(2)
    }
}

fn bench_dcem(c: &mut Criterion) {
    let mut group = c.benchmark_group("dcem");
    group.sample_size(20);
    let cem = solver();
    let mut rng = ChaCha8Rng::seed_from_u64(0);

    let plain = Device::flex();
    let target = Tensor::<2>::random([B, NX], Distribution::Normal(0.0, 1.0), &plain);
    group.bench_function("fwd/nx20_b64_n100_k10_t10", |bench| {
        bench.iter(|| {
            let sol = cem
                .solve(
                    quadratic(target.clone()),
                    CemInit::scalar(B, NX, 0.0, 1.0, &plain),
                    &mut rng,
                )
                .expect("solve");
            black_box(sol.mu.into_data())
        })
    });

    let ad = Device::flex().autodiff();
    let target = Tensor::<2>::random([B, NX], Distribution::Normal(0.0, 1.0), &ad);
    group.bench_function("fwd_bwd/nx20_b64_n100_k10_t10", |bench| {
        bench.iter(|| {
            let t = target.clone().require_grad();
            let sol = cem
                .solve(
                    quadratic(t.clone()),
                    CemInit::scalar(B, NX, 0.0, 1.0, &ad),
                    &mut rng,
                )
                .expect("solve");
            let grads = sol.mu.sum().backward();
            black_box(t.grad(&grads).map(|g| g.into_data()))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_dcem);
criterion_main!(benches);
