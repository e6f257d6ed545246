//! One config over several training seeds: a run per seed (`<name>_s<seed>`, trained one after
//! the other), then `<name>_seeds/` with `summary.json`, `summary.md` (per seed: the steps at
//! which the mean of the last 20 training episodes first reached 450, the final evaluation, the
//! training time; over the seeds: the final evaluations as the protocol reports them, mean,
//! median and IQM with stratified-bootstrap intervals and the seeds below [`FAIL_BELOW`]),
//! `protocol.md` (that last table alone) and `performance_profile.png`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use dcem::run::protocol::{self, BootstrapOptions, SeedStats};
use dcem::run::{
    EvalSummary, Existing, MetricsCsv, RunOptions, check_run_name, check_seeds, write_summary,
};
use serde::{Deserialize, Serialize};

use crate::{PpoAgentConfig, train};

/// A run whose final evaluation (mean action) is below this return counts as failed:
/// CartPole-v1's bar of a solved run, 450 of the 500 steps.
pub const FAIL_BELOW: f64 = 450.0;

/// One seed's run, read back from its folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedRun {
    /// The training seed.
    pub seed: u64,
    /// The run folder.
    pub dir: PathBuf,
    /// Environment steps at which the mean of the last 20 training episodes first reached 450
    /// (`train/return_last20` in `metrics.csv`), if it did.
    pub first_450: Option<f64>,
    /// The final evaluation (`eval.json`).
    pub eval: EvalSummary,
    /// Seconds spent collecting and updating (`perf/wall_s` of the last row).
    pub wall_s: f64,
}

/// What `summary.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedsSummary {
    /// The config's run name (each seed's run is `<name>_s<seed>`).
    pub name: String,
    /// Every seed's run.
    pub runs: Vec<SeedRun>,
    /// The final evaluations' means over the seeds, as the protocol reports them.
    pub protocol: SeedStats,
}

/// The folder `seeds` writes its summary to.
pub fn summary_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(format!("{name}_seeds"))
}

/// Trains `config` on each of `seeds` (skipping seeds whose run already has its `eval.json`;
/// none with `summarise_only`), then writes the summary into `out` (default
/// [`summary_dir`]). Returns the summary's folder.
pub fn seeds(
    config: &PpoAgentConfig,
    seeds: &[u64],
    opts: &RunOptions,
    summarise_only: bool,
    out: Option<&Path>,
    device: &Device,
) -> Result<PathBuf> {
    check_seeds(seeds)?;
    check_run_name(&config.name)?;
    let mut dirs = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let mut cfg = config.clone();
        cfg.name = format!("{}_s{seed}", config.name);
        cfg.seed = seed;
        let dir = opts.runs_dir.join(&cfg.name);
        if !summarise_only && !dir.join("eval.json").exists() {
            if dir.exists() && opts.existing == Existing::Refuse {
                bail!(
                    "{} exists without an eval.json (an interrupted run): pass --resume to \
                     continue it or --overwrite to start it again",
                    dir.display()
                );
            }
            let mut run_opts = opts.clone();
            if !dir.exists() {
                run_opts.existing = Existing::Refuse;
            }
            eprintln!("seed {seed}: training {}", dir.display());
            train(&cfg, &run_opts, device)?;
        }
        dirs.push((seed, dir));
    }
    let out = out.map_or_else(
        || summary_dir(&opts.runs_dir, &config.name),
        Path::to_path_buf,
    );
    summarise(&config.name, &dirs, &out)?;
    Ok(out)
}

/// Reads one seed's finished run.
fn read_run(seed: u64, dir: &Path) -> Result<SeedRun> {
    let eval = EvalSummary::load(&dir.join("eval.json"))
        .with_context(|| format!("seed {seed}: {} is not a finished run", dir.display()))?;
    let (cols, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    let col = |name: &str| {
        cols.iter().position(|c| c == name).with_context(|| {
            format!(
                "{}/metrics.csv has no `{name}` column (written by an older version: train \
                 the seed again)",
                dir.display()
            )
        })
    };
    let (steps, last20, wall) = (
        col("env_steps")?,
        col("train/return_last20")?,
        col("perf/wall_s")?,
    );
    Ok(SeedRun {
        seed,
        dir: dir.to_path_buf(),
        first_450: rows.iter().find(|r| r[last20] >= 450.0).map(|r| r[steps]),
        wall_s: rows.last().map_or(0.0, |r| r[wall]),
        eval,
    })
}

/// Writes `summary.json`, `summary.md`, `protocol.md` and `performance_profile.png` of the
/// finished runs `dirs` (seed, folder) into `out`.
pub fn summarise(name: &str, dirs: &[(u64, PathBuf)], out: &Path) -> Result<SeedsSummary> {
    let runs = dirs
        .iter()
        .map(|(seed, dir)| read_run(*seed, dir))
        .collect::<Result<Vec<_>>>()?;
    let scores: Vec<f64> = runs.iter().map(|r| r.eval.mean).collect();
    let opts = BootstrapOptions::default();
    let fail = (FAIL_BELOW, format!("{FAIL_BELOW:.0}, CartPole-v1's bar"));
    let summary = SeedsSummary {
        name: name.into(),
        protocol: SeedStats::of(&scores, Some(fail), &opts)?,
        runs,
    };
    write_summary(
        out,
        &summary,
        &table(&summary),
        Some(&summary.protocol.markdown(1)),
    )?;
    let taus = protocol::taus(0.0, 510.0, 256);
    let profile = protocol::performance_profile(&[scores], &taus, &opts)?;
    protocol::plot_performance_profiles(
        &out.join("performance_profile.png"),
        &format!(
            "final evaluation over {} seeds: performance profile (95% bootstrap band)",
            summary.runs.len()
        ),
        "final evaluation return (mean action)",
        &[(name.to_string(), profile)],
        &[("450".into(), FAIL_BELOW)],
    )?;
    Ok(summary)
}

/// `summary.md`: a row per seed, then the protocol's table.
pub fn table(s: &SeedsSummary) -> String {
    let mut md = String::from(
        "| seed | steps until the mean of the last 20 training episodes first reached 450 | \
         final evaluation, mean action | wall s |\n|---|---|---|---|\n",
    );
    for r in &s.runs {
        let first = r
            .first_450
            .map_or_else(|| "never".to_string(), |x| format!("{x:.0}"));
        md.push_str(&format!(
            "| {} | {first} | {:.1} +-{:.1} ({} episodes) | {:.0} |\n",
            r.seed, r.eval.mean, r.eval.ci95, r.eval.episodes, r.wall_s
        ));
    }
    md.push_str(&format!(
        "\nFinal evaluation over the {} seeds (each seed's mean over its evaluation episodes, \
         from the fixed evaluation start states; a seed's +- is Student-t 95% over its \
         episodes):\n\n{}",
        s.runs.len(),
        s.protocol.markdown(1)
    ));
    md
}
