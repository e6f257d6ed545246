//! Model-predictive control of the cartpole swing-up with a CEM planner on the true dynamics.
//!
//! Every step, `CemPlanner` optimises a 20-step action sequence on `SwingupModel` (the batched
//! differentiable twin of the env) from the current state and the first action is executed in
//! `CartpoleSwingup`. Prints each episode's return next to the return of doing nothing.
//!
//! ```text
//! cargo run --release -p dcem-envs --example swingup_mpc [-- EPISODES]
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use anyhow::Context;
use burn::tensor::{Device, Tensor, TensorData};
use dcem::cem::CemConfig;
use dcem::env::Env;
use dcem::planner::Planner;
use dcem::planning::{CemPlanner, CemPlannerConfig};
use dcem_envs::{CartpoleSwingup, SwingupConfig, SwingupModel};

fn main() -> anyhow::Result<()> {
    let episodes: u64 = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .with_context(|| format!("EPISODES must be a positive integer, got {a:?}"))?,
        None => 3,
    };
    anyhow::ensure!(episodes >= 1, "EPISODES must be at least 1");
    let device = Device::flex();
    let config = CemPlannerConfig {
        horizon: 20,
        cem: CemConfig {
            n_sample: 500,
            n_elite: 50,
            n_iter: 10,
            tau: 0.0,
            iter_eps: 0.0,
            init_sigma: 0.5,
            ..Default::default()
        },
        ..Default::default()
    };
    println!(
        "cartpole swing-up, MPC with full-space CEM ({} samples, {} elites, {} iterations, horizon {})",
        config.cem.n_sample, config.cem.n_elite, config.cem.n_iter, config.horizon
    );
    let mut planner = CemPlanner::new(config)?;
    for episode in 0..episodes {
        let mut env = CartpoleSwingup::new(SwingupConfig::default())?;
        let mut idle = CartpoleSwingup::new(SwingupConfig::default())?;
        let mut obs = env.reset(Some(episode))?;
        idle.reset(Some(episode))?;
        planner.reset();
        let (mut ret, mut idle_ret) = (0.0, 0.0);
        let start = Instant::now();
        let mut steps = 0;
        loop {
            let state = Tensor::<2>::from_data(TensorData::new(obs.clone(), [1, 5]), &device);
            let plan = planner.plan(&SwingupModel, state)?;
            let action: Vec<f64> = plan
                .first_action()
                .to_data_as::<f64>()
                .try_into_vec::<f64>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let step = env.step(&action)?;
            ret += step.reward;
            idle_ret += idle.step(&[0.0])?.reward;
            obs = step.obs;
            steps += 1;
            if step.terminated || step.truncated {
                break;
            }
        }
        println!(
            "episode {episode}: return {ret:8.2}  (no action: {idle_ret:8.2}), final cos(theta) {:+.3}, {:.1} ms per planning step",
            obs[2],
            start.elapsed().as_secs_f64() * 1e3 / steps as f64
        );
    }
    Ok(())
}
