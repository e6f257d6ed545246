//! Minimise with DCEM, then backpropagate through the solution into the objective's parameter.
//! `cargo run --release --example minimise`
use burn::tensor::{Device, Tensor};
use dcem::cem::{Cem, CemConfig, CemInit};
use rand::SeedableRng;

/// The DCEM solution of `min_x ||x - target||^2` for two problems, and the gradient of the sum
/// of the solution with respect to `target`, both as host vectors.
pub fn run() -> dcem::Result<(Vec<f64>, Vec<f64>)> {
    // ANCHOR: body
    let device = Device::flex().autodiff();
    // The objective's parameter: where its minimum lies. It is what we differentiate with respect to.
    let target = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 0.0]], &device).require_grad();
    // f(x) = ||x - target||^2 for samples x of shape [batch, n_sample, nx] -> values [batch, n_sample].
    let f = |x: Tensor<3>| {
        (x - target.clone().unsqueeze_dim::<3>(1))
            .square()
            .sum_dim(2)
            .squeeze_dim::<2>(2)
    };

    // DCEM with the paper's settings: 100 samples, 10 elites, 10 iterations, temperature 1.
    let solver = Cem::new(CemConfig {
        n_sample: 100,
        n_elite: 10,
        n_iter: 10,
        tau: 1.0,
        ..Default::default()
    })?;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(0);
    let solution = solver.solve(f, CemInit::scalar(2, 2, 0.0, 2.0, &device), &mut rng)?;

    // A loss on the solution, backpropagated through all ten iterations into the objective.
    let loss = solution.mu.clone().sum();
    let grads = loss.backward();
    let d_target = target.grad(&grads).expect("target is tracked");
    println!("mu = {}\nd loss / d target = {}", solution.mu, d_target);
    // ANCHOR_END: body
    Ok((
        dcem::nn::to_f64_vec(solution.mu)?,
        dcem::nn::to_f64_vec(d_target)?,
    ))
}

fn main() -> dcem::Result<()> {
    run().map(|_| ())
}
