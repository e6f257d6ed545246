//! `planet_dcem`: PlaNet-style online model-based RL with full-space CEM (phase 1) or latent
//! DCEM with an online-learned action decoder (phase 2) on a learned RSSM (paper sect. 5.2.2).
//!
//! ```text
//! cargo run --release -p planet-dcem -- train                                   # swing-up, full CEM
//! cargo run --release -p planet-dcem -- train --config configs/planet_swingup_latent.toml
//! cargo run --release -p planet-dcem -- train --config configs/planet_swingup_ppo.toml   # phase 3
//! cargo run --release -p planet-dcem -- true-model --config configs/planet_swingup.toml
//! cargo run --release -p planet-dcem --features dcem-envs/mujoco -- train --config configs/planet_cheetah_run.toml
//! cargo run --release -p planet-dcem -- report runs/planet_swingup runs/planet_swingup_latent
//! ```

// Tensor ops allocate fresh buffers; mimalloc serves them faster than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::{Result, ensure};
use clap::{Parser, Subcommand};
use dcem::device::DeviceArg;
use dcem::run::{RunArgs, atomic_write};
use dcem_envs::EnvSpec;
use planet_dcem::{
    EvalSummary, Phase, PlanetConfig, eval_table, evaluate, load_agent, load_agent_as, load_run,
    report, seeds, train, true_model_eval, write_plots,
};

#[derive(Parser)]
#[command(
    about = "PlaNet-style model-based RL with CEM and latent DCEM planners (paper sect. 5.2.2)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Experiment config.
    #[arg(long, default_value = "configs/planet_swingup.toml")]
    config: PathBuf,
    #[command(flatten)]
    run: RunArgs,
    /// Override the number of planning episodes (`train.episodes`).
    #[arg(long)]
    episodes: Option<usize>,
    /// Override the number of PPO steps of a phase-3 run (`finetune.steps`).
    #[arg(long)]
    ppo_steps: Option<usize>,
    /// Run on any Gymnasium environment id instead of the config's env (needs
    /// `--features dcem-envs/python`).
    #[arg(long)]
    gym_id: Option<String>,
    #[command(flatten)]
    device: DeviceArg,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Train (phase 1, 2 or 3, per the config); writes runs/<name>/ (config.toml, metrics.csv,
    /// learning_curves.png, checkpoints/, eval.json)
    Train(TrainArgs),
    /// Evaluate a run's latest checkpoint without exploration noise
    Eval {
        /// The run folder.
        run: PathBuf,
        /// Episodes.
        #[arg(long, default_value_t = 10)]
        episodes: usize,
        /// Act with the latent planner at this temperature instead of the run's (phase 2 runs;
        /// 0: hard elites); the summary's label says so.
        #[arg(long)]
        act_tau: Option<f64>,
        /// Act with full-space CEM (the run's `[cem]` planner) on the run's model instead of its
        /// own planner: for a phase-2 run, full CEM on the same learned model.
        #[arg(long, conflicts_with = "act_tau")]
        full_cem: bool,
        /// Also write the summary as JSON to this file (a new one: an existing file is refused).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// The swing-up's upper bound: the config's CEM planner on the true dynamics, on the same
    /// evaluation start states as the runs
    TrueModel {
        /// Experiment config (its env, action repeat and [cem] are used).
        #[arg(long, default_value = "configs/planet_swingup.toml")]
        config: PathBuf,
        /// Episodes.
        #[arg(long, default_value_t = 10)]
        episodes: usize,
        /// Write the summary as JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the config over several seeds (in parallel up to the cores) and write
    /// runs/<name>_seeds/ (summary.json, summary.md: per seed, and the mean, median and IQM with
    /// stratified-bootstrap 95% intervals and the failed seeds; learning curves with bands; the
    /// performance profile; logs)
    Seeds {
        /// Experiment config.
        #[arg(long, default_value = "configs/planet_swingup.toml")]
        config: PathBuf,
        /// Seeds, comma-separated.
        #[arg(long, default_value = "0,1,2", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Runs at a time (default: as many as cores, at most one per seed).
        #[arg(long)]
        jobs: Option<usize>,
        /// Folder that holds the run folders.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Base name of the runs (default: the config's name).
        #[arg(long)]
        name: Option<String>,
        /// Override the number of planning episodes (`train.episodes`).
        #[arg(long)]
        episodes: Option<usize>,
        /// Episode counts at which the returns are summarised, comma-separated (counts beyond
        /// the runs' length are left out).
        #[arg(long, default_value = "10,25,50,100", value_delimiter = ',')]
        at: Vec<usize>,
        /// A JSON summary written by `true-model --out`: the bound to compare with.
        #[arg(long)]
        true_model: Option<PathBuf>,
        /// With `--true-model`: a seed whose final evaluation is below this share of the bound
        /// counts as failed.
        #[arg(long, default_value_t = seeds::FAIL_SHARE)]
        fail_share: f64,
        /// Replace existing run folders of the same names.
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Continue existing runs from their checkpoints (seeds without a run folder start).
        #[arg(long)]
        resume: bool,
        /// Only summarise the existing runs (no training).
        #[arg(long, conflicts_with_all = ["overwrite", "resume"])]
        summarise_only: bool,
        /// With --summarise-only: write the summary here instead of <runs-dir>/<name>_seeds.
        #[arg(long, requires = "summarise_only")]
        summary_dir: Option<PathBuf>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Return against samples per plan: the study file's planner variants on the swing-up's
    /// true dynamics (over planner seeds) and on phase-1 runs' learned models; writes
    /// runs/<name>/ (study.json, study.md, study.png)
    Study {
        /// The study file (e.g. configs/icem_study.toml).
        #[arg(long, default_value = "configs/icem_study.toml")]
        study: PathBuf,
        /// Folder the output folder goes in.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Print the final evaluations of finished runs (and of --true-model JSON files) as a table
    /// (and, for runs of one config over several seeds, their mean, median and IQM with
    /// bootstrap intervals and the failed seeds); redraw each run's learning curves with the
    /// upper bound marked
    Report {
        /// Run folders (each with eval.json).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// A JSON summary written by `true-model --out`.
        #[arg(long)]
        true_model: Option<PathBuf>,
        /// Also write the table here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Evaluation returns against environment steps of runs and of seed runs, with published
    /// figures marked, in one plot (--out, PNG) and a table next to it (same name, .md) that
    /// also splits each run's time per 1k steps into planning, model updates and the rest
    Compare {
        /// The task's key in the published file (cheetah_run, walker_walk).
        #[arg(long)]
        task: String,
        /// Run folders drawn one curve each (repeat the option for more).
        #[arg(long)]
        run: Vec<PathBuf>,
        /// Run folders of one config over seeds, comma-separated: drawn as the mean with a 95%
        /// band (repeat the option for more configs, one band each).
        #[arg(long)]
        seeds: Vec<String>,
        /// The published figures.
        #[arg(long, default_value = "configs/published_dmc.toml")]
        published: PathBuf,
        /// Published budgets beyond this many environment steps go in the table only.
        #[arg(long, default_value_t = 100_000.0)]
        max_steps: f64,
        /// The plot (PNG).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train(a) => {
            let device = a.device.parse()?;
            let mut cfg = PlanetConfig::load(&a.config)?;
            a.run.apply_overrides(&mut cfg.name, &mut cfg.seed);
            if let Some(e) = a.episodes {
                cfg.train.episodes = e;
            }
            if let Some(n) = a.ppo_steps {
                cfg.finetune.steps = n;
            }
            if let Some(id) = a.gym_id {
                cfg.env = EnvSpec::Gym { id };
            }
            cfg.validate()?;
            let run = train(&cfg, &a.run.options(!a.quiet), &device)?;
            if let Some(e) = &run.eval {
                println!("{}", eval_table(std::slice::from_ref(e)));
            }
            println!("run written to {}", run.dir.display());
        }
        Command::Eval {
            run,
            episodes,
            act_tau,
            full_cem,
            out,
            device,
        } => {
            ensure!(episodes >= 1, "--episodes must be at least 1");
            if let Some(path) = &out {
                ensure!(
                    !path.exists(),
                    "{} already exists: --out writes a new file (choose another path)",
                    path.display()
                );
            }
            let device = device.parse()?;
            let (cfg, mut agent, mut env) = if full_cem {
                let mut cfg = PlanetConfig::load(&run.join("config.toml"))?;
                ensure!(
                    cfg.phase != Phase::Ppo,
                    "--full-cem evaluates phase-1 and phase-2 runs (this is a phase-3 run)"
                );
                // The run's model and its `[cem]` planner; phase 2's decoder options do not apply.
                cfg.phase = Phase::Cem;
                cfg.decoder = Default::default();
                let (agent, env) = load_agent_as(&run, &cfg, &device)?;
                (cfg, agent, env)
            } else {
                load_agent(&run, act_tau, &device)?
            };
            let label = match (act_tau, full_cem) {
                (Some(t), _) => format!("{} (acting at tau {t})", cfg.name),
                (None, true) => format!("{} (full CEM on its model)", cfg.name),
                (None, false) => cfg.name.clone(),
            };
            let s = evaluate(&mut agent, env.as_mut(), episodes, &label)?;
            println!("{}", eval_table(std::slice::from_ref(&s)));
            if let Some(path) = out {
                s.save(&path)?;
                println!("summary written to {}", path.display());
            }
        }
        Command::TrueModel {
            config,
            episodes,
            out,
        } => {
            ensure!(episodes >= 1, "--episodes must be at least 1");
            let cfg = PlanetConfig::load(&config)?;
            let s = true_model_eval(&cfg, episodes)?;
            println!("{}", eval_table(std::slice::from_ref(&s)));
            if let Some(out) = out {
                s.save(&out)?;
            }
        }
        Command::Seeds {
            config,
            seeds,
            jobs,
            runs_dir,
            name,
            episodes,
            at,
            true_model,
            fail_share,
            overwrite,
            resume,
            summarise_only,
            summary_dir,
            device,
        } => {
            device.parse()?;
            let cfg = PlanetConfig::load(&config)?;
            let name = name.unwrap_or(cfg.name.clone());
            let bound = match &true_model {
                Some(p) => Some(EvalSummary::load(p)?),
                None => None,
            };
            let summary = if summarise_only {
                let dirs: Vec<PathBuf> = seeds
                    .iter()
                    .map(|&s| runs_dir.join(seeds::run_name(&name, s)))
                    .collect();
                let out = summary_dir
                    .clone()
                    .unwrap_or_else(|| runs_dir.join(format!("{name}_seeds")));
                seeds::summarise(
                    &config.display().to_string(),
                    &seeds,
                    &dirs,
                    &at,
                    bound.as_ref(),
                    fail_share,
                    &out,
                )?
            } else {
                let mut train_args = vec!["--device".to_string(), device.device];
                if let Some(e) = episodes {
                    train_args.extend(["--episodes".to_string(), e.to_string()]);
                }
                if overwrite {
                    train_args.push("--overwrite".into());
                }
                if resume {
                    train_args.push("--resume".into());
                }
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                seeds::run_seeds(&seeds::SeedsOptions {
                    config: config.clone(),
                    jobs: jobs.unwrap_or(cores.min(seeds.len())),
                    seeds,
                    runs_dir: runs_dir.clone(),
                    name: name.clone(),
                    train_args,
                    at,
                    bound,
                    fail_share,
                })?
            };
            println!("{}", seeds::table(&summary));
            println!(
                "summary written to {}",
                summary_dir
                    .unwrap_or_else(|| runs_dir.join(format!("{name}_seeds")))
                    .display()
            );
        }
        Command::Study {
            study,
            runs_dir,
            device,
        } => {
            let device = device.parse()?;
            let cfg = planet_dcem::study::StudyConfig::load(&study)?;
            let results = planet_dcem::study::study(&cfg, &runs_dir, &device)?;
            println!("{}", planet_dcem::study::study_table(&results));
            println!("written to {}", runs_dir.join(&cfg.name).display());
        }
        Command::Compare {
            task,
            run,
            seeds,
            published,
            max_steps,
            out,
        } => {
            let table = planet_dcem::compare::compare(&planet_dcem::compare::CompareOptions {
                task,
                runs: run,
                seeds: seeds
                    .iter()
                    .map(|g| {
                        g.split(',')
                            .filter(|p| !p.is_empty())
                            .map(PathBuf::from)
                            .collect()
                    })
                    .collect(),
                published: planet_dcem::compare::Published::load(&published)?,
                max_steps,
                out,
            })?;
            println!("{table}");
        }
        Command::Report {
            runs,
            true_model,
            out,
        } => {
            let bound: Option<EvalSummary> = match &true_model {
                Some(p) => Some(EvalSummary::load(p)?),
                None => None,
            };
            let mut rows = Vec::new();
            let mut loaded = Vec::new();
            for dir in &runs {
                let run = load_run(dir)?;
                let hline = bound
                    .as_ref()
                    .map(|b| (b.mean, format!("CEM, true dynamics ({:.1})", b.mean)));
                write_plots(&run, hline)?;
                match &run.eval {
                    Some(e) => {
                        let mut e = e.clone();
                        e.label = format!("{} ({})", e.label, run.config.name);
                        rows.push(e);
                    }
                    None => eprintln!("{}: no eval.json (unfinished run?)", dir.display()),
                }
                loaded.push(run);
            }
            let bound_mean = bound.as_ref().map(|b| b.mean);
            rows.extend(bound);
            let mut table = eval_table(&rows);
            table.push_str(&report::seed_groups_table(
                &loaded,
                bound_mean,
                seeds::FAIL_SHARE,
            )?);
            println!("{table}");
            if let Some(out) = out {
                atomic_write(&out, table.as_bytes())?;
            }
        }
    }
    Ok(())
}

#[test]
fn clap_accepts_the_command_line() {
    <Cli as clap::CommandFactory>::command().debug_assert();
}
