//! One config over several seeds: a run per seed (`<name>_s<seed>`), then the mean and Student-t
//! 95% interval of the best validation cost, its ratio to full-space CEM on the same states (per
//! seed, summarised as the protocol reports it: mean, median and IQM with stratified-bootstrap
//! intervals, and the seeds below [`FAIL_SHARE`] of CEM counted as failed),
//! optionally the best decoders measured on a second set of start states (the reference's), and
//! the validation curves with a band.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::run::plot::{LineChart, Series, line_chart};
use dcem::run::protocol::{BootstrapOptions, SeedStats};
use dcem::run::{Stat, check_run_name, check_seeds, write_summary};
use serde::{Deserialize, Serialize};

use crate::agent::{
    BaselineResult, load_planner, run_baselines, validate_planner, validation_states,
};
use crate::config::EmbedConfig;
use crate::report::{RunSummary, load_run};
use crate::train::{TrainOptions, train};

/// Costs on one set of start states.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetResult {
    /// Where the states come from (`val_seed 0`, or the file).
    pub states: String,
    /// The best decoder of every seed (mean cost over the set).
    pub best: Stat,
    /// The full-space CEM baselines on the same set.
    pub baselines: Vec<BaselineResult>,
    /// Each seed's best cost as a share of the last baseline's (1: parity with full-space CEM
    /// at the most samples) over the seeds: mean, median and IQM with bootstrap intervals, and
    /// the seeds below [`FAIL_SHARE`] of it.
    pub share_of_cem: SeedStats,
}

/// A seed whose best decoder reaches less than this share of full-space CEM's cost failed.
pub const FAIL_SHARE: f64 = 0.6;

/// [`SetResult::share_of_cem`] of the seeds' best costs.
fn share_of_cem(best: &[f64], baselines: &[BaselineResult]) -> Result<SeedStats> {
    let cem = baselines.last().map_or(f64::NAN, |b| b.mean_cost);
    ensure!(
        cem.is_finite() && cem < 0.0,
        "the share of full-space CEM needs a negative baseline cost, got {cem}"
    );
    let shares: Vec<f64> = best.iter().map(|c| c / cem).collect();
    Ok(SeedStats::of(
        &shares,
        Some((
            FAIL_SHARE,
            format!("{:.0}% of full-space CEM", 100.0 * FAIL_SHARE),
        )),
        &BootstrapOptions::default(),
    )?)
}

/// What [`seeds`] measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedsSummary {
    /// The config's run name.
    pub name: String,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// The iteration of each seed's best validation.
    pub best_iteration: Vec<usize>,
    /// The last validation cost of each seed.
    pub final_val: Stat,
    /// Milliseconds per training iteration.
    pub ms_per_iteration: Stat,
    /// On the config's validation set, then on `--also-on`'s states.
    pub sets: Vec<SetResult>,
}

impl SetResult {
    /// The best decoders' mean cost as a fraction of the last baseline's (full-space CEM with
    /// the most samples; costs are negative, so 1 is parity).
    pub fn fraction_of_cem(&self) -> f64 {
        self.baselines
            .last()
            .map_or(f64::NAN, |b| self.best.mean / b.mean_cost)
    }
}

/// Trains `config` for each seed under `opts.runs_dir` (or rereads finished runs with
/// `summarise_only`), and writes `runs/<name>_seeds/{summary.json, summary.md, val_cost.png}`.
pub fn seeds(
    config: &EmbedConfig,
    seeds: &[u64],
    also_on: Option<&Path>,
    opts: &TrainOptions,
    summarise_only: bool,
    device: &Device,
) -> Result<SeedsSummary> {
    ensure!(
        seeds.len() >= 2,
        "a result needs at least two seeds (three for the README), got {seeds:?}"
    );
    check_seeds(seeds)?;
    config.validate()?;
    let baselines = run_baselines(config, device)?;
    let mut runs = Vec::new();
    for &seed in seeds {
        let name = format!("{}_s{seed}", config.name);
        check_run_name(&name)?;
        let dir = opts.runs_dir.join(&name);
        let run = if summarise_only {
            load_run(&dir).with_context(|| format!("reading {}", dir.display()))?
        } else {
            eprintln!("seed {seed}: training {}", dir.display());
            let cfg = EmbedConfig {
                name,
                seed,
                ..config.clone()
            };
            train(&cfg, opts, Some(&baselines), device)?
        };
        runs.push(run);
    }
    let mut sets = vec![SetResult {
        states: if config.val_file.is_empty() {
            format!(
                "{} drawn from val_seed {}",
                config.val_states, config.val_seed
            )
        } else {
            config.val_file.clone()
        },
        best: Stat::of(runs.iter().map(|r| r.best.1).collect()),
        share_of_cem: share_of_cem(
            &runs.iter().map(|r| r.best.1).collect::<Vec<_>>(),
            &baselines,
        )?,
        baselines,
    }];
    if let Some(file) = also_on {
        let other = EmbedConfig {
            val_file: file.display().to_string(),
            ..config.clone()
        };
        let states = validation_states(&other, device)?;
        let mut costs = Vec::new();
        for r in &runs {
            let best = r.dir.join("checkpoints").join("best.safetensors");
            let (_, mut planner) = load_planner(&best, device)?;
            costs.push(validate_planner(&mut planner, states.clone())?.0);
        }
        let baselines = run_baselines(&other, device)?;
        sets.push(SetResult {
            states: file.display().to_string(),
            share_of_cem: share_of_cem(&costs, &baselines)?,
            best: Stat::of(costs),
            baselines,
        });
    }
    let summary = SeedsSummary {
        name: config.name.clone(),
        seeds: seeds.to_vec(),
        best_iteration: runs.iter().map(|r| r.best.0).collect(),
        final_val: Stat::of(
            runs.iter()
                .map(|r| r.val_curve.last().map_or(f64::NAN, |p| p.1))
                .collect(),
        ),
        ms_per_iteration: Stat::of(runs.iter().map(|r| r.ms_per_iteration).collect()),
        sets,
    };
    let out = summary_dir(&opts.runs_dir, &config.name);
    write_summary(&out, &summary, &table(&summary), None)?;
    line_chart(&out.join("val_cost.png"), &band_chart(&runs, &summary))?;
    Ok(summary)
}

fn fmt(s: &Stat) -> String {
    format!("{:.2} +-{:.2}", s.mean, s.ci95)
}

/// The summary as a markdown table: per seed, then the mean with its interval, per set.
pub fn table(s: &SeedsSummary) -> String {
    let mut t = String::from("| start states | seed | best validation cost | at iteration |\n");
    t.push_str("|---|---|---|---|\n");
    for (k, set) in s.sets.iter().enumerate() {
        for (i, seed) in s.seeds.iter().enumerate() {
            let at = if k == 0 {
                s.best_iteration[i].to_string()
            } else {
                "(same decoder)".into()
            };
            t.push_str(&format!(
                "| {} | {seed} | {:.2} | {at} |\n",
                set.states, set.best.values[i]
            ));
        }
        t.push_str(&format!(
            "| {} | mean, 95% CI | **{}** ({:.0}% of full-space {}) | |\n",
            set.states,
            fmt(&set.best),
            100.0 * set.fraction_of_cem(),
            set.baselines.last().map_or("-".into(), |b| b.label.clone())
        ));
        for b in &set.baselines {
            t.push_str(&format!(
                "| {} | full-space {} | {:.2} | |\n",
                set.states, b.label, b.mean_cost
            ));
        }
    }
    for set in &s.sets {
        t.push_str(&format!(
            "\nBest cost as a share of full-space {} on {}, over the {} seeds:\n\n{}",
            set.baselines.last().map_or("-".into(), |b| b.label.clone()),
            set.states,
            s.seeds.len(),
            set.share_of_cem.markdown(3)
        ));
    }
    t.push_str(&format!(
        "\nLast validation cost {}; {} ms per training iteration (+-: Student-t 95% intervals \
         over the seeds).\n",
        fmt(&s.final_val),
        fmt(&s.ms_per_iteration)
    ));
    t
}

/// The validation curves' mean over the seeds with a 95% band, each seed faint, and the
/// baselines as horizontal lines.
fn band_chart(runs: &[RunSummary], s: &SeedsSummary) -> LineChart {
    let mut series: Vec<Series> = runs
        .iter()
        .zip(&s.seeds)
        .map(|(r, seed)| {
            Series::new(
                format!("seed {seed}"),
                r.val_curve.iter().map(|&(i, v)| (i as f64, v)).collect(),
            )
            .faint()
        })
        .collect();
    let len = runs.iter().map(|r| r.val_curve.len()).min().unwrap_or(0);
    let (mut mean, mut band) = (Vec::new(), Vec::new());
    for k in 0..len {
        let x = runs[0].val_curve[k].0 as f64;
        let st = Stat::of(runs.iter().map(|r| r.val_curve[k].1).collect());
        mean.push((x, st.mean));
        if st.ci95.is_finite() {
            band.push((x, st.mean - st.ci95, st.mean + st.ci95));
        }
    }
    series.push(Series::new("mean over seeds (95% band)", mean).with_band(band));
    LineChart {
        title: format!("Validation cost over {} seeds ({})", s.seeds.len(), s.name),
        x_label: "iteration".into(),
        y_label: "mean controller cost".into(),
        series,
        hlines: s.sets[0]
            .baselines
            .iter()
            .map(|b| (b.mean_cost, format!("full-space {}", b.label)))
            .collect(),
        ..LineChart::default()
    }
}

/// The folder [`seeds`] writes its summary into.
pub fn summary_dir(runs_dir: &Path, name: &str) -> PathBuf {
    runs_dir.join(format!("{name}_seeds"))
}
