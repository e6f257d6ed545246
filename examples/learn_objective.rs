//! Learn an objective's parameters through a DCEM solve (the README's example).
//!
//! A batch of problems `min_x f_theta(x)` with `f_theta(x) = sum_j (x_j - theta_j)^2 +
//! 0.5 sin(4 x_j)`; the loss `||DCEM(f_theta) - x_star||^2` on the solution is backpropagated
//! through the solver into `theta`, which is updated by gradient descent.
//!
//! ```text
//! cargo run --release --example learn_objective [-- configs/dcem_example.toml]
//! ```

use std::time::Instant;

// Tensor ops allocate fresh buffers; mimalloc serves them faster than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use burn::tensor::{Device, Distribution, Tensor};
use dcem::cem::{Cem, CemConfig, CemInit};
use rand::{SeedableRng, rngs::ChaCha8Rng};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleConfig {
    /// Master seed (solver noise and the random targets).
    seed: u64,
    /// Number of independent problems solved together.
    batch: usize,
    /// Dimension of each problem.
    nx: usize,
    /// Gradient steps on theta.
    steps: usize,
    /// Learning rate of those steps.
    lr: f64,
    /// The DCEM solver.
    cem: CemConfig,
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "configs/dcem_example.toml".into());
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading config {path}"))?;
    let cfg: ExampleConfig =
        toml::from_str(&text).with_context(|| format!("parsing config {path}"))?;
    anyhow::ensure!(
        cfg.batch >= 1 && cfg.nx >= 1 && cfg.steps >= 1,
        "batch, nx and steps must be >= 1"
    );
    anyhow::ensure!(
        cfg.lr > 0.0 && cfg.lr.is_finite(),
        "lr must be finite and > 0"
    );
    let solver = Cem::new(cfg.cem.clone())?;

    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    let x_star = Tensor::<2>::random(
        [cfg.batch, cfg.nx],
        Distribution::Uniform(-1.5, 1.5),
        &device,
    );
    let mut theta = Tensor::<2>::zeros([cfg.batch, cfg.nx], &device);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);

    println!(
        "learning theta through DCEM: {} problems of dimension {}, {} steps",
        cfg.batch, cfg.nx, cfg.steps
    );
    let start = Instant::now();
    let mut first = None;
    let mut last = 0.0;
    for step in 0..cfg.steps {
        let th = theta.clone().require_grad();
        let t3 = th.clone().unsqueeze_dim::<3>(1);
        let f = |x: Tensor<3>| {
            let quad = (x.clone() - t3.clone()).square();
            (quad + x.mul_scalar(4.0).sin().mul_scalar(0.5))
                .sum_dim(2)
                .squeeze_dim::<2>(2)
        };
        let init = CemInit::scalar(cfg.batch, cfg.nx, 0.0, cfg.cem.init_sigma, &device);
        let sol = solver.solve(f, init, &mut rng)?;
        let loss = (sol.mu - x_star.clone()).square().sum_dim(1).mean();
        let value: f64 = loss.clone().into_scalar::<f64>();
        let grads = loss.backward();
        let g = th.grad(&grads).context("theta received no gradient")?;
        theta = (th.detach() - g.autodiff().mul_scalar(cfg.lr)).detach();
        first.get_or_insert(value);
        last = value;
        if step % 10 == 0 || step + 1 == cfg.steps {
            println!("step {step:>4}  loss {value:.5}");
        }
    }
    let first = first.unwrap_or(last);
    println!(
        "loss {first:.4} -> {last:.4} in {:.2} s ({:.1} ms per solve + backward)",
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1e3 / cfg.steps as f64
    );
    Ok(())
}
