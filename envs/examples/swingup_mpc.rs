//! Model-predictive control of the cartpole swing-up with a CEM planner on the true dynamics.
//!
//! Every step, `CemPlanner` optimises a 20-step action sequence on `SwingupModel` (the batched
//! differentiable twin of the env) from the current state and the first action is executed in
//! `CartpoleSwingup`: an `MpcAgent` run by the framework's episode runner. Prints each
//! episode's return next to the return of doing nothing.
//!
//! ```text
//! cargo run --release -p dcem-envs --example swingup_mpc [-- EPISODES]
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use burn::tensor::Device;
use dcem::agent::{Mode, MpcAgent};
use dcem::cem::CemConfig;
use dcem::env::Env;
use dcem::planning::{CemPlanner, CemPlannerConfig};
use dcem::runner::run_episode;
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
    let planner = CemPlanner::new(config)?;
    let mut agent = MpcAgent::new(Box::new(SwingupModel), Box::new(planner), device);
    let mut env = CartpoleSwingup::new(SwingupConfig::default())?;
    for episode in 0..episodes {
        let ep = run_episode(&mut agent, &mut env, episode, Mode::Eval)?;
        let mut idle = CartpoleSwingup::new(SwingupConfig::default())?;
        idle.reset(Some(episode))?;
        let mut idle_ret = 0.0;
        for _ in 0..ep.steps {
            idle_ret += idle.step(&[0.0])?.reward;
        }
        println!(
            "episode {episode}: return {:8.2}  (no action: {idle_ret:8.2}), {:.1} ms per planning step",
            ep.ret,
            ep.act_ms()
        );
    }
    Ok(())
}
