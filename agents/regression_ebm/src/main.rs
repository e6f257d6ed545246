//! `regression_ebm`: train the energy-based regression model of paper sect. 5.1 with DCEM or
//! unrolled GD, compare the two, and redraw a run's plots.
//!
//! ```text
//! cargo run --release -p regression-ebm -- train --config configs/regression_dcem.toml
//! cargo run --release -p regression-ebm -- compare --updates 12000
//! cargo run --release -p regression-ebm -- report runs/regression_dcem
//! cargo run --release -p regression-ebm -- seeds --seeds 0,1,2,3,4,5,6,7,8,9
//! ```

// Tensor ops allocate fresh buffers; mimalloc serves them faster than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use dcem::device::DeviceCli;
use dcem::run::{Existing, RunArgs};
use regression_ebm::{
    RegressionConfig, TrainOptions, load_run, report_run, train, write_comparison,
};

/// What `--help` says the binary does.
const ABOUT: &str = "Energy-based regression through unrolled GD or DCEM (paper sect. 5.1)";

/// The command line: the subcommands and the global `--device`.
type Cli = DeviceCli<Command>;

#[derive(clap::Args)]
struct Common {
    #[command(flatten)]
    run: RunArgs,
    /// Override the config's number of updates.
    #[arg(long)]
    updates: Option<usize>,
}

impl Common {
    fn existing(&self) -> Existing {
        self.run.existing()
    }

    fn apply(&self, cfg: &mut RegressionConfig) {
        if let Some(u) = self.updates {
            cfg.updates = u;
        }
        if let Some(s) = self.run.seed {
            cfg.seed = s;
        }
    }
}

/// The two configs a comparison trains for the same budget.
#[derive(clap::Args)]
struct Pair {
    /// Config of the GD model.
    #[arg(long, default_value = "configs/regression_gd.toml")]
    gd_config: PathBuf,
    /// Config of the DCEM model.
    #[arg(long, default_value = "configs/regression_dcem.toml")]
    dcem_config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Train one model; writes runs/<name>/ (config, metrics.csv, checkpoint, plots).
    Train {
        /// The experiment's config file.
        #[arg(long, default_value = "configs/regression_dcem.toml")]
        config: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Train the GD and the DCEM model for the same budget and write one table and joint plots
    /// into runs/<name>/ (`--name`; default regression_compare).
    Compare {
        #[command(flatten)]
        pair: Pair,
        #[command(flatten)]
        common: Common,
    },
    /// Run the comparison once per seed (runs/<name>_s<seed>/) and write runs/<name>_seeds/
    /// (summary.json, summary.md: per seed and model the best train MSE, the train MSE with
    /// 50 test-time inner steps and the share of predictions at a local minimum; over the seeds
    /// the mean, median and IQM with stratified-bootstrap 95% intervals)
    Seeds {
        #[command(flatten)]
        pair: Pair,
        /// Name of the comparison (each seed's folder is `<name>_s<seed>`).
        #[arg(long, default_value = "regression_compare")]
        name: String,
        /// Training seeds, comma-separated.
        #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Folder that holds the comparison folders.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Only summarise the finished comparisons (no training).
        #[arg(long)]
        summarise_only: bool,
        /// Where the summary goes (default: <runs-dir>/<name>_seeds).
        #[arg(long)]
        summary_dir: Option<PathBuf>,
        /// Override the configs' number of updates.
        #[arg(long)]
        updates: Option<usize>,
    },
    /// Redraw the plots of finished runs from their checkpoints; with two or more runs, also
    /// the comparison table and joint plots (into --out).
    Report {
        /// Run folders.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where the comparison goes.
        #[arg(long, default_value = "runs/regression_compare")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse(env!("CARGO_BIN_NAME"), ABOUT);
    let device = cli.device.parse()?.autodiff();
    match cli.command {
        Command::Train { config, common } => {
            let mut cfg = RegressionConfig::load(&config)?;
            common.apply(&mut cfg);
            if let Some(n) = &common.run.name {
                cfg.name.clone_from(n);
            }
            cfg.validate()?;
            let opts = TrainOptions {
                runs_dir: common.run.runs_dir.clone(),
                existing: common.existing(),
                ..TrainOptions::default()
            };
            let run = train(&cfg, &opts, &device)?;
            let last = run.curve.last().map_or(f64::NAN, |c| c.1);
            println!(
                "{}: final train MSE {last:.4}, {:.2} ms per update; outputs in {}",
                cfg.name,
                run.ms_per_update,
                run.dir.display()
            );
        }
        Command::Compare {
            pair: Pair {
                gd_config,
                dcem_config,
            },
            common,
        } => {
            let name = common.run.name.as_deref().unwrap_or("regression_compare");
            let dir = common.run.runs_dir.join(name);
            // Each run's report is written from the one analysis the comparison needs.
            let opts = TrainOptions {
                runs_dir: dir.clone(),
                existing: common.existing(),
                report: false,
                ..TrainOptions::default()
            };
            let mut runs = Vec::new();
            for path in [&gd_config, &dcem_config] {
                let mut cfg = RegressionConfig::load(path)?;
                common.apply(&mut cfg);
                cfg.validate()?;
                let run = train(&cfg, &opts, &device)
                    .with_context(|| format!("training {}", cfg.name))?;
                let a = report_run(&run)?;
                runs.push((run, a));
            }
            let refs: Vec<_> = runs.iter().map(|(r, a)| (r, a)).collect();
            let table = write_comparison(&dir, &refs)?;
            println!("{table}");
            println!("table and plots in {}", dir.display());
        }
        Command::Seeds {
            pair: Pair {
                gd_config,
                dcem_config,
            },
            name,
            seeds,
            runs_dir,
            summarise_only,
            summary_dir,
            updates,
        } => {
            let load = |p: &PathBuf| -> Result<RegressionConfig> {
                let mut cfg = RegressionConfig::load(p)?;
                if let Some(u) = updates {
                    cfg.updates = u;
                }
                Ok(cfg)
            };
            let opts = TrainOptions {
                runs_dir,
                ..TrainOptions::default()
            };
            let out = regression_ebm::seeds::seeds(
                &name,
                &load(&gd_config)?,
                &load(&dcem_config)?,
                &seeds,
                &opts,
                summarise_only,
                summary_dir.as_deref(),
                &device,
            )?;
            print!("{}", std::fs::read_to_string(out.join("summary.md"))?);
            println!("summary written to {}", out.display());
        }
        Command::Report { runs, out } => {
            let mut loaded = Vec::new();
            for dir in &runs {
                let run = load_run(dir, &device)?;
                let a = report_run(&run)?;
                println!("{}: plots rewritten", dir.display());
                loaded.push((run, a));
            }
            if loaded.len() >= 2 {
                let refs: Vec<_> = loaded.iter().map(|(r, a)| (r, a)).collect();
                let table = write_comparison(&out, &refs)?;
                println!("{table}");
                println!("table and plots in {}", out.display());
            }
        }
    }
    Ok(())
}

#[test]
fn clap_accepts_the_command_line() {
    Cli::command(env!("CARGO_BIN_NAME"), ABOUT).debug_assert();
}
