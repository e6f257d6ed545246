//! LML projection, forward and forward+backward, at the sizes of the reference table
//! (n = 100, k = 10, batch 1 / 64 / 1024; n = 1000, batch 1024; tau = 1).

// Each tensor op allocates fresh buffers; with glibc's default allocator many of those page-fault
// (see BENCHMARKS.md), so the benches use mimalloc, as an application using this crate should.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dcem::lml::lml;

fn bench_lml(c: &mut Criterion) {
    let mut group = c.benchmark_group("lml");
    group.sample_size(30);
    for (n, b) in [(100usize, 1usize), (100, 64), (100, 1024), (1000, 1024)] {
        let id = format!("n{n}_k10_b{b}");
        let plain = Device::flex();
        let x = Tensor::<2>::random([b, n], Distribution::Normal(0.0, 1.0), &plain);
        group.bench_function(BenchmarkId::new("fwd", &id), |bench| {
            bench.iter(|| {
                let y = lml(black_box(x.clone()), 10.0, 1.0).expect("lml");
                black_box(y.into_data())
            })
        });
        let ad = Device::flex().autodiff();
        let xa = Tensor::<2>::random([b, n], Distribution::Normal(0.0, 1.0), &ad);
        let g = Tensor::<2>::random([b, n], Distribution::Normal(0.0, 1.0), &ad);
        group.bench_function(BenchmarkId::new("fwd_bwd", &id), |bench| {
            bench.iter(|| {
                let x = xa.clone().require_grad();
                let y = lml(x.clone(), 10.0, 1.0).expect("lml");
                let grads = (y * g.clone()).sum().backward();
                black_box(x.grad(&grads).map(|t| t.into_data()))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_lml);
criterion_main!(benches);
