//! The GD-against-DCEM comparison over several training seeds: one comparison folder per seed
//! (`<name>_s<seed>/`, each with its GD and DCEM run and `comparison.md`, as `compare` writes
//! it), then `<name>_seeds/summary.{json,md}`: per seed the best train MSE, the train MSE with
//! the most inner steps of the test-time ablation (`ablation_max_steps`, 50 by default) and the
//! share of predictions within 0.1 of a local minimum of the energy, for each model; over the seeds each as the protocol reports it (mean, median and
//! IQM with stratified-bootstrap 95% intervals).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::run::protocol::{BootstrapOptions, SeedStats};
use dcem::run::{check_run_name, check_seeds, write_summary};
use serde::{Deserialize, Serialize};

use crate::{
    AnalysisSummary, RegressionConfig, TrainOptions, read_curve, report_run, train,
    write_comparison,
};

/// One model of one seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRow {
    /// Lowest train MSE over the run's checks.
    pub best_mse: f64,
    /// The most inner steps of the run's test-time ablation.
    pub probe_steps: usize,
    /// Train MSE with `probe_steps` inner steps at test time.
    pub mse_probe: f64,
    /// Share of predictions within 0.1 of a local minimum of `E(x, .)`.
    pub near_min: f64,
}

impl ModelRow {
    fn of(curve: &[(usize, f64)], a: &AnalysisSummary) -> Self {
        let (probe_steps, mse_probe) = a.ablation.last().copied().unwrap_or((0, f64::NAN));
        Self {
            best_mse: curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min),
            probe_steps,
            mse_probe,
            near_min: a.frac_near_min,
        }
    }
}

/// One seed's comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedRow {
    /// The training seed.
    pub seed: u64,
    /// Unrolled GD.
    pub gd: ModelRow,
    /// DCEM.
    pub dcem: ModelRow,
}

/// What `summary.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedsSummary {
    /// The comparison's name (each seed's folder is `<name>_s<seed>`).
    pub name: String,
    /// Every seed.
    pub seeds: Vec<SeedRow>,
    /// Over the seeds, by (model, column): the protocol's statistics.
    pub stats: Vec<(String, String, SeedStats)>,
}

/// The folder [`seeds`] writes its summary to.
pub fn summary_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(format!("{name}_seeds"))
}

/// Runs the comparison of `gd` and `dcem` for each of `seeds` (a seed whose folder already has
/// its `comparison.md` is read back instead; with `summarise_only`, every seed is), then writes
/// the summary into `out` (default [`summary_dir`]) from the runs' `metrics.csv` and
/// `analysis.json`. Returns the summary's folder.
#[allow(clippy::too_many_arguments)]
pub fn seeds(
    name: &str,
    gd: &RegressionConfig,
    dcem: &RegressionConfig,
    seeds: &[u64],
    opts: &TrainOptions,
    summarise_only: bool,
    out: Option<&Path>,
    device: &Device,
) -> Result<PathBuf> {
    check_seeds(seeds)?;
    check_run_name(name)?;
    let mut rows = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let dir = opts.runs_dir.join(format!("{name}_s{seed}"));
        if !summarise_only && !dir.join("comparison.md").exists() {
            let mut pair = Vec::with_capacity(2);
            for cfg in [gd, dcem] {
                let cfg = RegressionConfig {
                    seed,
                    ..cfg.clone()
                };
                cfg.validate()?;
                eprintln!("seed {seed}: training {}", dir.join(&cfg.name).display());
                // The run's own report is written below, from the one analysis.
                let run_opts = TrainOptions {
                    runs_dir: dir.clone(),
                    report: false,
                    ..opts.clone()
                };
                let run = train(&cfg, &run_opts, device)
                    .with_context(|| format!("training {} (seed {seed})", cfg.name))?;
                let a = report_run(&run)?;
                pair.push((run, a));
            }
            let refs: Vec<_> = pair.iter().map(|(r, a)| (r, a)).collect();
            write_comparison(&dir, &refs)?;
        }
        let row = |cfg: &RegressionConfig| -> Result<ModelRow> {
            let run = dir.join(&cfg.name);
            let a = AnalysisSummary::load(&run)
                .with_context(|| format!("seed {seed}: reading {}", run.display()))?;
            ensure!(
                a.solver == cfg.solver,
                "{} holds a {} run, not {}",
                run.display(),
                a.solver.label(),
                cfg.solver.label()
            );
            Ok(ModelRow::of(&read_curve(&run)?.0, &a))
        };
        rows.push(SeedRow {
            seed,
            gd: row(gd)?,
            dcem: row(dcem)?,
        });
    }
    let out = out.map_or_else(|| summary_dir(&opts.runs_dir, name), Path::to_path_buf);
    summarise(name, rows, &out)?;
    Ok(out)
}

type Column = (&'static str, fn(&ModelRow) -> f64);

const COLUMNS: [Column; 3] = [
    ("best train MSE", |m| m.best_mse),
    ("train MSE, the most test-time steps", |m| m.mse_probe),
    ("predictions within 0.1 of a local min", |m| m.near_min),
];

fn summarise(name: &str, rows: Vec<SeedRow>, out: &Path) -> Result<SeedsSummary> {
    let opts = BootstrapOptions::default();
    let mut stats = Vec::new();
    for (label, dcem) in [("unrolled GD", false), ("DCEM", true)] {
        for (col, f) in COLUMNS {
            let v: Vec<f64> = rows
                .iter()
                .map(|r| f(if dcem { &r.dcem } else { &r.gd }))
                .collect();
            stats.push((
                label.to_string(),
                col.to_string(),
                SeedStats::of(&v, None, &opts)?,
            ));
        }
    }
    let summary = SeedsSummary {
        name: name.into(),
        seeds: rows,
        stats,
    };
    write_summary(out, &summary, &table(&summary), None)?;
    Ok(summary)
}

/// `summary.md`: a row per seed, then each column's statistics over the seeds.
pub fn table(s: &SeedsSummary) -> String {
    let probe = s.seeds.first().map_or(0, |r| r.gd.probe_steps);
    let mut md = format!(
        "| seed | best train MSE, GD / DCEM | train MSE at {probe} test-time steps, GD / DCEM | \
         within 0.1 of a local min, GD / DCEM |\n|---|---|---|---|\n"
    );
    for r in &s.seeds {
        md.push_str(&format!(
            "| {} | {:.4} / {:.4} | {:.4} / {:.4} | {:.0}% / {:.0}% |\n",
            r.seed,
            r.gd.best_mse,
            r.dcem.best_mse,
            r.gd.mse_probe,
            r.dcem.mse_probe,
            100.0 * r.gd.near_min,
            100.0 * r.dcem.near_min
        ));
    }
    md.push_str(&format!(
        "\nOver the {} seeds (95% stratified-bootstrap percentile intervals):\n\n\
         | model | quantity | mean | median | IQM |\n|---|---|---|---|---|\n",
        s.seeds.len()
    ));
    for (model, col, st) in &s.stats {
        let digits = if col.starts_with("predictions") { 2 } else { 4 };
        let col = col.replace(
            "the most test-time steps",
            &format!("{probe} test-time steps"),
        );
        md.push_str(&format!(
            "| {model} | {col} | {} | {} | {} |\n",
            st.mean.fmt(digits),
            st.median.fmt(digits),
            st.iqm.fmt(digits)
        ));
    }
    if let Some((_, _, st)) = s.stats.first() {
        md.push_str(&format!("\n{}.\n", st.method));
    }
    md
}
