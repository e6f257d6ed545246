//! `ppo`: plain PPO with a Gaussian MLP policy (CleanRL's continuous PPO).
//!
//! ```text
//! cargo run --release -p ppo-agent -- train                       # continuous CartPole, 200k steps
//! cargo run --release -p ppo-agent -- train --config configs/ppo_cartpole.toml --seed 2 --name ppo_cartpole_s2
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use dcem::run::{Existing, RunOptions};
use ppo_agent::{PpoAgentConfig, train, write_plots};

#[derive(Parser)]
#[command(about = "Plain PPO with a Gaussian MLP policy on the framework's environments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train; writes runs/<name>/ (config.toml, metrics.csv, learning_curves.png,
    /// checkpoints/latest.safetensors, eval.json)
    Train {
        /// Experiment config.
        #[arg(long, default_value = "configs/ppo_cartpole.toml")]
        config: PathBuf,
        /// Folder that holds the run folders.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Override the config's run name.
        #[arg(long)]
        name: Option<String>,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the total environment steps.
        #[arg(long)]
        total_steps: Option<usize>,
        /// Replace an existing run folder of the same name (default: refuse).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Continue the run in the existing folder from its last checkpoint (exactly where an
        /// uninterrupted run would be; `--total-steps` may extend it).
        #[arg(long)]
        resume: bool,
        /// Compute device: `cpu`, `wgpu` (burn's wgpu backend; a build with the `wgpu` feature)
        /// or `auto` (wgpu where it comes up, else the CPU).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Redraw a run's learning curves
    Report {
        /// The run folder.
        run: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train {
            config,
            runs_dir,
            name,
            seed,
            total_steps,
            overwrite,
            resume,
            device,
            quiet,
        } => {
            let device = dcem::device::parse_device(&device)?;
            let mut cfg = PpoAgentConfig::load(&config)?;
            if let Some(n) = name {
                cfg.name = n;
            }
            if let Some(s) = seed {
                cfg.seed = s;
            }
            if let Some(t) = total_steps {
                cfg.total_steps = t;
            }
            cfg.validate()?;
            let opts = RunOptions {
                runs_dir,
                existing: if overwrite {
                    Existing::Overwrite
                } else if resume {
                    Existing::Resume
                } else {
                    Existing::Refuse
                },
                progress: !quiet,
                report: true,
            };
            let out = train(&cfg, &opts, &device)?;
            println!(
                "final evaluation ({} episodes, mean action): {:.1} +- {:.1} (95% CI)",
                out.eval.episodes, out.eval.mean, out.eval.ci95
            );
            match out.first_450 {
                Some(s) => println!(
                    "mean training return of the last 20 episodes first >= 450 at step {s}"
                ),
                None => println!("the mean training return never reached 450"),
            }
            println!("run written to {}", out.dir.display());
        }
        Command::Report { run } => write_plots(&run)?,
    }
    Ok(())
}
