//! Re-solving trained decoders: each seed's best decoder solves a set of start states again,
//! several independent noise draws per latent solver, so a decoder is measured by its typical
//! solve rather than by the luckiest validation draw of training, and the same learned space can
//! be searched by other latent solvers (hard elites, more samples or iterations).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use dcem::planning::{LatentDcemPlanner, LatentPlannerConfig};
use dcem::run::{Stat, atomic_write, check_run_name};
use serde::{Deserialize, Serialize};

use crate::agent::validation_states;
use crate::agent::{BaselineResult, load_planner, run_baselines, validate_planner};
use crate::config::EmbedConfig;
use crate::seeds::summary_dir;

/// A latent solver: samples / elites / iterations / temperature (`100/10/10/1`; tau 0 is hard
/// CEM in the latent space). Everything else is the trained run's `[planner]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentSolver {
    /// Samples per iteration.
    pub n_sample: usize,
    /// (Soft) elites per iteration.
    pub n_elite: usize,
    /// Iterations.
    pub n_iter: usize,
    /// Temperature of the soft top-k (0: hard elites).
    pub tau: f64,
}

impl LatentSolver {
    /// The solver `planner` uses.
    pub fn of(planner: &LatentPlannerConfig) -> Self {
        Self {
            n_sample: planner.cem.n_sample,
            n_elite: planner.cem.n_elite,
            n_iter: planner.cem.n_iter,
            tau: planner.cem.tau,
        }
    }

    /// `planner` with this solver, checked.
    pub fn apply(&self, planner: &LatentPlannerConfig) -> Result<LatentPlannerConfig> {
        let mut p = planner.clone();
        p.cem.n_sample = self.n_sample;
        p.cem.n_elite = self.n_elite;
        p.cem.n_iter = self.n_iter;
        p.cem.tau = self.tau;
        p.validate().with_context(|| {
            format!(
                "--solver {}/{}/{}/{}",
                self.n_sample, self.n_elite, self.n_iter, self.tau
            )
        })?;
        Ok(p)
    }
}

impl fmt::Display for LatentSolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} tau {}",
            self.n_sample, self.n_elite, self.n_iter, self.tau
        )
    }
}

impl FromStr for LatentSolver {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').map(str::trim).collect();
        let [ns, ne, ni, tau] = parts[..] else {
            bail!("a latent solver is samples/elites/iterations/tau (e.g. 100/10/10/1), got {s:?}");
        };
        let count = |v: &str, what: &str| -> Result<usize> {
            v.parse::<usize>()
                .with_context(|| format!("{what} in {s:?} is not a whole number"))
        };
        let tau: f64 = tau
            .parse()
            .with_context(|| format!("tau in {s:?} is not a number"))?;
        Ok(Self {
            n_sample: count(ns, "samples")?,
            n_elite: count(ne, "elites")?,
            n_iter: count(ni, "iterations")?,
            tau,
        })
    }
}

/// One solver's costs over the seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SolverResult {
    /// The solver.
    pub solver: LatentSolver,
    /// Per seed, the mean cost over the draws; the statistics are over the seeds.
    pub cost: Stat,
    /// Per seed, the costs of the single draws.
    pub draws: Vec<Vec<f64>>,
}

/// What [`eval`] measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalSummary {
    /// The config's run name.
    pub name: String,
    /// Where the start states come from.
    pub states: String,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// Noise draws per seed and solver.
    pub draws: usize,
    /// Per solver.
    pub solvers: Vec<SolverResult>,
    /// Full-space CEM on the same states.
    pub baselines: Vec<BaselineResult>,
}

/// The most noise draws per solver and seed.
pub const MAX_DRAWS: usize = 100;

/// Solves the start states (`states_file`, else the config's validation set) with the best
/// decoder of every seed's run `runs/<name>_s<seed>`, `draws` times per solver (the run's own
/// solver when `solvers` is empty), and writes `runs/<name>_seeds/eval[_<file stem>].{json,md}`.
pub fn eval(
    config: &EmbedConfig,
    runs_dir: &Path,
    seeds: &[u64],
    solvers: &[LatentSolver],
    draws: usize,
    states_file: Option<&Path>,
    device: &Device,
) -> Result<EvalSummary> {
    ensure!(!seeds.is_empty(), "--seeds: give at least one seed");
    ensure!(
        (1..=MAX_DRAWS).contains(&draws),
        "--draws must be in 1..={MAX_DRAWS}, got {draws}"
    );
    let mut cfg = config.clone();
    if let Some(f) = states_file {
        cfg.val_file = f.display().to_string();
    }
    cfg.validate()?;
    let solvers = if solvers.is_empty() {
        vec![LatentSolver::of(&cfg.planner)]
    } else {
        solvers.to_vec()
    };
    let planners = solvers
        .iter()
        .map(|s| s.apply(&cfg.planner))
        .collect::<Result<Vec<_>>>()?;
    let states = validation_states(&cfg, device)?;
    let mut decoders = Vec::new();
    for &seed in seeds {
        let name = format!("{}_s{seed}", cfg.name);
        check_run_name(&name)?;
        let best = runs_dir
            .join(&name)
            .join("checkpoints")
            .join("best.safetensors");
        let (_, planner) = load_planner(&best, device)
            .with_context(|| format!("seed {seed}: train it first (the `seeds` command)"))?;
        decoders.push(planner.decoder().clone());
    }
    let mut results = Vec::new();
    for (s, planner_cfg) in solvers.iter().zip(&planners) {
        let mut per_seed = Vec::new();
        for (k, decoder) in decoders.iter().enumerate() {
            let mut costs = Vec::new();
            for draw in 0..draws {
                let mut pc = planner_cfg.clone();
                // Draws independent of training's planner stream and of each other.
                pc.seed = 0x9e37_79b9_7f4a_7c15 ^ (seeds[k] << 32).wrapping_add(draw as u64);
                let mut planner = LatentDcemPlanner::new(pc, decoder.clone())?;
                costs.push(validate_planner(&mut planner, states.clone())?.0);
            }
            eprintln!(
                "seed {}, {s}: mean cost {:.3} over {draws} draws",
                seeds[k],
                costs.iter().sum::<f64>() / draws as f64
            );
            per_seed.push(costs);
        }
        results.push(SolverResult {
            solver: *s,
            cost: Stat::of(
                per_seed
                    .iter()
                    .map(|c| c.iter().sum::<f64>() / c.len() as f64)
                    .collect(),
            ),
            draws: per_seed,
        });
    }
    let summary = EvalSummary {
        name: cfg.name.clone(),
        states: if cfg.val_file.is_empty() {
            format!("{} drawn from val_seed {}", cfg.val_states, cfg.val_seed)
        } else {
            cfg.val_file.clone()
        },
        seeds: seeds.to_vec(),
        draws,
        solvers: results,
        baselines: run_baselines(&cfg, device)?,
    };
    let out = summary_dir(runs_dir, &cfg.name);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let stem = match states_file.and_then(|f| f.file_stem()) {
        Some(s) => format!("eval_{}", s.to_string_lossy()),
        None => "eval".into(),
    };
    atomic_write(
        &out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    atomic_write(
        &out.join(format!("{stem}.md")),
        eval_table(&summary).as_bytes(),
    )?;
    Ok(summary)
}

/// The summary as a markdown table: per solver, each seed's mean over the draws, then the mean
/// over seeds with its interval and the fraction of the strongest full-space baseline.
pub fn eval_table(s: &EvalSummary) -> String {
    let mut t = format!(
        "Best decoders re-solved on {} ({} noise draws per seed; mean cost per draw).\n\n",
        s.states, s.draws
    );
    t.push_str("| latent solver |");
    for seed in &s.seeds {
        t.push_str(&format!(" seed {seed} |"));
    }
    t.push_str(" mean, 95% CI | of full-space CEM |\n|---|");
    t.push_str(&"---|".repeat(s.seeds.len() + 2));
    t.push('\n');
    let full = s.baselines.last();
    for r in &s.solvers {
        t.push_str(&format!("| {} |", r.solver));
        for v in &r.cost.values {
            t.push_str(&format!(" {v:.2} |"));
        }
        t.push_str(&format!(
            " **{:.2} +-{:.2}** | {} |\n",
            r.cost.mean,
            r.cost.ci95,
            full.map_or("-".into(), |b| format!(
                "{:.0}% of {}",
                100.0 * r.cost.mean / b.mean_cost,
                b.label
            ))
        ));
    }
    for b in &s.baselines {
        t.push_str(&format!("\nFull-space {}: {:.2}.", b.label, b.mean_cost));
    }
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solvers_parse_and_bad_ones_name_the_part() {
        let s: LatentSolver = "100/10/10/1".parse().unwrap();
        assert_eq!((s.n_sample, s.n_elite, s.n_iter, s.tau), (100, 10, 10, 1.0));
        let s: LatentSolver = "1000 / 10 / 10 / 0".parse().unwrap();
        assert_eq!((s.n_sample, s.tau), (1000, 0.0));
        let e = "100/10/10".parse::<LatentSolver>().unwrap_err();
        assert!(
            e.to_string().contains("samples/elites/iterations/tau"),
            "{e}"
        );
        let e = "100/x/10/1".parse::<LatentSolver>().unwrap_err();
        assert!(format!("{e:#}").contains("elites"), "{e:#}");
        let e = "100/10/10/hot".parse::<LatentSolver>().unwrap_err();
        assert!(format!("{e:#}").contains("tau"), "{e:#}");
    }
}
