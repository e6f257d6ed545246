//! `cartpole_embed`: learn a latent action space for the cartpole swing-up by differentiating
//! through DCEM (paper sect. 5.2.1), with the full-space CEM baselines and the ablations.
//!
//! ```text
//! cargo run --release -p cartpole-embed -- train                # the paper's 2-D, tau 1 run
//! cargo run --release -p cartpole-embed -- sweep                # + latent 8, 16 and tau hard, 0.1
//! cargo run --release -p cartpole-embed -- report runs/cartpole_embed
//! cargo run --release -p cartpole-embed -- seeds --seeds 0,1,2 --also-on data/cartpole_ref_val_states.json
//! cargo run --release -p cartpole-embed -- eval --seeds 0,1,2 --solver 100/10/10/1,100/10/10/0
//! ```

// Tensor ops allocate fresh buffers; mimalloc serves them faster than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Result;
use cartpole_embed::{
    EmbedConfig, LatentSolver, TrainOptions, eval, eval_table, load_planner, load_run,
    results_table, samples_figure, seeds, summary_dir, sweep, train, val_chart,
};
use clap::Subcommand;
use dcem::device::DeviceCli;
use dcem::run::RunArgs;

/// What `--help` says the binary does.
const ABOUT: &str = "Latent action space for the cartpole through DCEM (paper sect. 5.2.1)";

/// The command line: the subcommands and the global `--device`.
type Cli = DeviceCli<Command>;

#[derive(clap::Args)]
struct Common {
    /// Experiment config.
    #[arg(long, default_value = "configs/cartpole_embed.toml")]
    config: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// Override the config's number of iterations.
    #[arg(long)]
    iterations: Option<usize>,
}

impl Common {
    fn load(&self) -> Result<(EmbedConfig, TrainOptions)> {
        let mut cfg = EmbedConfig::load(&self.config)?;
        self.run.apply_overrides(&mut cfg.name, &mut cfg.seed);
        if let Some(i) = self.iterations {
            cfg.iterations = i;
        }
        cfg.validate()?;
        let opts = TrainOptions {
            runs_dir: self.run.runs_dir.clone(),
            existing: self.run.existing(),
            ..TrainOptions::default()
        };
        Ok((cfg, opts))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train the config's decoder; writes runs/<name>/ (config, metrics.csv, checkpoints,
    /// baselines.csv, val_cost.png, samples.png)
    Train(Common),
    /// Train every ablation variant of the config (latent sizes and temperatures) under
    /// runs/<name>/<variant>/ and write the joint val_cost.png, results.md and samples.png
    Sweep(Common),
    /// Train the config once per seed (runs/<name>_s<seed>/) and write runs/<name>_seeds/
    /// (summary.json, summary.md: best validation cost per seed, mean with 95% CI, fraction of
    /// full-space CEM; val_cost.png: the curves with a band)
    Seeds {
        #[command(flatten)]
        common: Common,
        /// Seeds, comma-separated.
        #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Also measure every seed's best decoder and the baselines on the start states of this
        /// JSON file (`states`: rows of x, x', cos th, sin th, th').
        #[arg(long)]
        also_on: Option<PathBuf>,
        /// Only summarise the existing runs (no training).
        #[arg(long)]
        summarise_only: bool,
    },
    /// Solve the validation states again with each seed's best decoder (runs/<name>_s<seed>/),
    /// several noise draws per latent solver, and write runs/<name>_seeds/eval.{json,md}
    /// (eval_<file stem>.* with --states)
    Eval {
        /// Experiment config (the runs' config).
        #[arg(long, default_value = "configs/cartpole_embed.toml")]
        config: PathBuf,
        /// Folder that holds the run folders.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Override the config's run name.
        #[arg(long)]
        name: Option<String>,
        /// Seeds, comma-separated.
        #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Latent solvers, samples/elites/iterations/tau, comma-separated (tau 0: hard elites;
        /// default: the config's planner).
        #[arg(long, value_delimiter = ',')]
        solver: Vec<LatentSolver>,
        /// Independent noise draws per seed and solver.
        #[arg(long, default_value_t = 5)]
        draws: usize,
        /// Start states from this JSON file (`states`: rows of x, x', cos th, sin th, th')
        /// instead of the config's validation set.
        #[arg(long)]
        states: Option<PathBuf>,
    },
    /// Print the results table of finished runs; with --out also redraw their joint validation
    /// plot and the first run's samples figure there
    Report {
        /// Run folders (each with metrics.csv, config.toml, baselines.csv).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where to write val_cost.png and results.md.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse(env!("CARGO_BIN_NAME"), ABOUT);
    let device = cli.device.parse()?.autodiff();
    match cli.command {
        Command::Train(c) => {
            let (cfg, opts) = c.load()?;
            let run = train(&cfg, &opts, None, &device)?;
            println!("{}", results_table(&[&run]));
            println!("run written to {}", run.dir.display());
        }
        Command::Sweep(c) => {
            let (cfg, opts) = c.load()?;
            let table = sweep(&cfg, &opts, &device)?;
            println!("{table}");
            println!(
                "table and plots in {}",
                opts.runs_dir.join(&cfg.name).display()
            );
        }
        Command::Seeds {
            common,
            seeds: list,
            also_on,
            summarise_only,
        } => {
            let (cfg, opts) = common.load()?;
            let s = seeds(
                &cfg,
                &list,
                also_on.as_deref(),
                &opts,
                summarise_only,
                &device,
            )?;
            println!("{}", cartpole_embed::table(&s));
            println!(
                "summary written to {}",
                summary_dir(&opts.runs_dir, &cfg.name).display()
            );
        }
        Command::Eval {
            config,
            runs_dir,
            name,
            seeds: list,
            solver,
            draws,
            states,
        } => {
            let mut cfg = EmbedConfig::load(&config)?;
            if let Some(n) = name {
                cfg.name = n;
            }
            let s = eval(
                &cfg,
                &runs_dir,
                &list,
                &solver,
                draws,
                states.as_deref(),
                &device,
            )?;
            println!("{}", eval_table(&s));
            println!("written to {}", summary_dir(&runs_dir, &cfg.name).display());
        }
        Command::Report { runs, out } => {
            let loaded = runs
                .iter()
                .map(|d| load_run(d))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<_> = loaded.iter().collect();
            let table = results_table(&refs);
            println!("{table}");
            if let Some(out) = out {
                std::fs::create_dir_all(&out)?;
                dcem::run::plot::line_chart(&out.join("val_cost.png"), &val_chart(&refs))?;
                dcem::run::atomic_write(&out.join("results.md"), table.as_bytes())?;
                // Fig. 3 from the first run's best decoder.
                let best = loaded[0].dir.join("checkpoints").join("best.safetensors");
                let (cfg, mut planner) = load_planner(&best, &device)?;
                samples_figure(&out.join("samples.png"), &cfg, &mut planner, 0, &device)?;
                println!("written to {}", out.display());
            }
        }
    }
    Ok(())
}

#[test]
fn clap_accepts_the_command_line() {
    Cli::command(env!("CARGO_BIN_NAME"), ABOUT).debug_assert();
}
