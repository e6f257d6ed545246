//! Time of one training update of the regression energy model (paper settings: a solve on one
//! point, the squared error, backward, gradient clipping, Adam), for DCEM and unrolled GD.
//! Reference (PyTorch, CPU): 35 ms for DCEM, 10.8 ms for GD.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use burn::tensor::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use dcem::nn::tensor_from_f64;
use dcem::optim::Adam;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use regression_ebm::{EnergyModel, RegressionConfig, SolverKind, update_step};

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut group = c.benchmark_group("regression/update");
    for solver in [SolverKind::Dcem, SolverKind::Gd] {
        let cfg = RegressionConfig {
            solver,
            ..RegressionConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut model = EnergyModel::new(&cfg, &device, &mut rng).expect("model");
        let mut adam = Adam::new(cfg.adam.clone(), model.net.params().len()).expect("adam");
        let x = tensor_from_f64(&[2.0], [1, 1], &device).expect("x");
        let y = tensor_from_f64(&[2.0 * 2f64.sin()], [1, 1], &device).expect("y");
        let name = match solver {
            SolverKind::Dcem => "dcem",
            SolverKind::Gd => "gd",
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                update_step(&mut model, &mut adam, x.clone(), y.clone(), &mut rng).expect("update")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
