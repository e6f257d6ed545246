//! `ppo`: plain PPO with a Gaussian MLP policy (CleanRL's continuous PPO).
//!
//! ```text
//! cargo run --release -p ppo-agent -- train                       # continuous CartPole, 200k steps
//! cargo run --release -p ppo-agent -- train --config configs/ppo_cartpole.toml --seed 2 --name ppo_cartpole_s2
//! cargo run --release -p ppo-agent -- seeds --seeds 0,1,2,3,4,5,6,7,8,9  # one run per seed, then the summary
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use dcem::device::DeviceArg;
use dcem::run::{Existing, RunArgs, RunOptions};
use ppo_agent::seeds::seeds as run_seeds;
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
        #[command(flatten)]
        run: RunArgs,
        /// Override the total environment steps (a resumed run may be extended with it).
        #[arg(long)]
        total_steps: Option<usize>,
        #[command(flatten)]
        device: DeviceArg,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Train one config on several seeds, one after the other (runs/<name>_s<seed>/), then write
    /// runs/<name>_seeds/: summary.json, summary.md (per seed: steps to 450, final evaluation,
    /// time; over the seeds: mean, median and IQM with stratified-bootstrap 95% intervals and
    /// the seeds below 450), protocol.md and performance_profile.png
    Seeds {
        /// Experiment config.
        #[arg(long, default_value = "configs/ppo_cartpole.toml")]
        config: PathBuf,
        /// Training seeds, comma-separated.
        #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Folder that holds the run folders.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Override the config's run name (the seeds' runs are `<name>_s<seed>`).
        #[arg(long)]
        name: Option<String>,
        /// Only summarise the finished runs (no training).
        #[arg(long)]
        summarise_only: bool,
        /// Where the summary goes (default: <runs-dir>/<name>_seeds).
        #[arg(long)]
        summary_dir: Option<PathBuf>,
        /// Continue interrupted seeds from their last checkpoints (finished ones are kept).
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Start interrupted seeds again (finished ones are kept).
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        device: DeviceArg,
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
            run,
            total_steps,
            device,
            quiet,
        } => {
            let device = device.parse()?;
            let mut cfg = PpoAgentConfig::load(&config)?;
            run.apply_overrides(&mut cfg.name, &mut cfg.seed);
            if let Some(t) = total_steps {
                cfg.total_steps = t;
            }
            cfg.validate()?;
            let out = train(&cfg, &run.options(!quiet), &device)?;
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
        Command::Seeds {
            config,
            seeds,
            runs_dir,
            name,
            summarise_only,
            summary_dir,
            resume,
            overwrite,
            device,
        } => {
            let device = device.parse()?;
            let mut cfg = PpoAgentConfig::load(&config)?;
            if let Some(n) = name {
                cfg.name = n;
            }
            cfg.validate()?;
            let opts = RunOptions {
                runs_dir,
                existing: Existing::from_flags(overwrite, resume),
                progress: false,
                report: true,
            };
            let summary = summary_dir.as_deref();
            let out = run_seeds(&cfg, &seeds, &opts, summarise_only, summary, &device)?;
            print!("{}", std::fs::read_to_string(out.join("protocol.md"))?);
            println!("summary written to {}", out.display());
        }
        Command::Report { run } => write_plots(&run)?,
    }
    Ok(())
}

#[test]
fn clap_accepts_the_command_line() {
    <Cli as clap::CommandFactory>::command().debug_assert();
}
