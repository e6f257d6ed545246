//! Return against samples per plan: full-space planner variants (plain CEM at several sample
//! counts, iCEM, ...) evaluated on the swing-up's true dynamics over planner seeds and on learned
//! models (phase-1 run folders), each a mean over the same evaluation episodes, summarised with
//! Student-t 95% intervals over the seeds or runs (`configs/icem_study.toml`). The episodes start
//! from the development start states ([`periodic_eval_seeds`], those of the periodic
//! evaluations), never the final evaluation's, so that a planner chosen on a study has not seen
//! the start states its runs are reported on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::cem::CemConfig;
use dcem::run::plot::{LineChart, Series, line_charts};
use dcem::run::{Stat, atomic_write, check_run_name};
use serde::{Deserialize, Serialize};

use crate::config::{Phase, PlanetConfig};
use crate::train::{evaluate_on, load_agent_as};
use crate::true_model_eval_on;
use dcem::runner::periodic_eval_seeds;

/// One planner setting of the study.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyVariant {
    /// The curve it belongs to (e.g. `CEM`, `iCEM`).
    pub family: String,
    /// The solver (`[cem.cem]` of the runs): horizon, bounds and warm start stay the runs'.
    pub cem: CemConfig,
}

/// The study, as read from a TOML file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Output folder name under the runs folder.
    pub name: String,
    /// Evaluation episodes per seed (or run) and variant, from the development start states
    /// (`dcem::runner::periodic_eval_seeds`).
    pub episodes: usize,
    /// An experiment config on the swing-up whose env, action repeat and `[cem]` are used on the
    /// true dynamics (empty: no true-dynamics part).
    pub true_model: String,
    /// Planner seeds on the true dynamics.
    pub seeds: Vec<u64>,
    /// Phase-1 run folders whose learned models are planned on (their own seeds and
    /// checkpoints; empty: no learned-model part).
    pub runs: Vec<String>,
    /// The planner settings.
    pub variants: Vec<StudyVariant>,
}

impl StudyConfig {
    /// Reads and checks a study file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the study {}", path.display()))?;
        let s: Self = toml::from_str(&text)
            .with_context(|| format!("parsing the study {}", path.display()))?;
        s.validate()
            .with_context(|| format!("in the study {}", path.display()))?;
        Ok(s)
    }

    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<()> {
        check_run_name(&self.name)?;
        ensure!(
            (1..=1000).contains(&self.episodes),
            "`episodes` must be in 1..=1000, got {}",
            self.episodes
        );
        ensure!(
            !self.true_model.is_empty() || !self.runs.is_empty(),
            "give `true_model` (a swing-up config) or `runs` (phase-1 run folders), or both"
        );
        ensure!(
            self.true_model.is_empty() || self.seeds.len() >= 2,
            "`seeds`: a result needs at least two planner seeds on the true dynamics"
        );
        ensure!(
            self.runs.is_empty() || self.runs.len() >= 2,
            "`runs`: a result needs at least two learned models"
        );
        ensure!(!self.variants.is_empty(), "`variants`: give at least one");
        for (i, v) in self.variants.iter().enumerate() {
            v.cem
                .validate()
                .with_context(|| format!("in variants[{i}].cem ({})", v.family))?;
            ensure!(
                v.cem.lb.is_none() && v.cem.ub.is_none(),
                "variants[{i}].cem: leave lb/ub unset (the planner's action bounds are used)"
            );
        }
        Ok(())
    }
}

/// One variant's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VariantResult {
    /// Its curve.
    pub family: String,
    /// `n_sample/n_elite/n_iter`.
    pub label: String,
    /// Samples evaluated per plan (every iteration run, elites carried).
    pub samples_per_plan: usize,
    /// Mean return per planner seed on the true dynamics.
    pub true_model: Option<Stat>,
    /// Mean return per learned model.
    pub learned: Option<Stat>,
    /// Planning time per action, ms (mean over everything evaluated).
    pub plan_ms: f64,
}

/// Evaluates every variant and writes `runs/<name>/{study.json, study.md, study.png}`.
pub fn study(config: &StudyConfig, runs_dir: &Path, device: &Device) -> Result<Vec<VariantResult>> {
    config.validate()?;
    let base = if config.true_model.is_empty() {
        None
    } else {
        Some(PlanetConfig::load(Path::new(&config.true_model))?)
    };
    let learned: Vec<(PathBuf, PlanetConfig)> = config
        .runs
        .iter()
        .map(|r| {
            let dir = PathBuf::from(r);
            let cfg = PlanetConfig::load(&dir.join("config.toml"))
                .with_context(|| format!("the learned model {r}"))?;
            ensure!(
                cfg.phase == Phase::Cem,
                "{r}: plan on a phase-1 run (phase = \"cem\"), not {:?}",
                cfg.phase
            );
            Ok((dir, cfg))
        })
        .collect::<Result<_>>()?;
    let mut results = Vec::new();
    for v in &config.variants {
        let label = format!("{}/{}/{}", v.cem.n_sample, v.cem.n_elite, v.cem.n_iter);
        let (mut ms, mut n_ms) = (0.0, 0);
        let true_model = match &base {
            None => None,
            Some(b) => {
                let mut means = Vec::new();
                for &seed in &config.seeds {
                    let mut cfg = b.clone();
                    cfg.cem.cem = v.cem.clone();
                    cfg.cem.seed = seed;
                    let s = true_model_eval_on(&cfg, &periodic_eval_seeds(config.episodes))?;
                    eprintln!(
                        "{} {label}, true dynamics, seed {seed}: {:.1}",
                        v.family, s.mean
                    );
                    means.push(s.mean);
                    ms += s.plan_ms;
                    n_ms += 1;
                }
                Some(Stat::of(means))
            }
        };
        let learned_stat = if learned.is_empty() {
            None
        } else {
            let mut means = Vec::new();
            for (dir, run_cfg) in &learned {
                let mut cfg = run_cfg.clone();
                cfg.cem.cem = v.cem.clone();
                let (mut agent, mut env) = load_agent_as(dir, &cfg, device)
                    .with_context(|| format!("loading {}", dir.display()))?;
                let s = evaluate_on(
                    &mut agent,
                    env.as_mut(),
                    &periodic_eval_seeds(config.episodes),
                    &label,
                )?;
                eprintln!(
                    "{} {label}, learned model {}: {:.1}",
                    v.family,
                    dir.display(),
                    s.mean
                );
                means.push(s.mean);
                ms += s.plan_ms;
                n_ms += 1;
            }
            Some(Stat::of(means))
        };
        results.push(VariantResult {
            family: v.family.clone(),
            label,
            samples_per_plan: v.cem.evaluations_per_solve(),
            true_model,
            learned: learned_stat,
            plan_ms: ms / n_ms.max(1) as f64,
        });
    }
    let out = runs_dir.join(&config.name);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    atomic_write(
        &out.join("study.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    atomic_write(&out.join("study.md"), study_table(&results).as_bytes())?;
    let mut charts = Vec::new();
    if base.is_some() {
        charts.push(chart(&results, "true dynamics", |r| r.true_model.as_ref()));
    }
    if !learned.is_empty() {
        charts.push(chart(&results, "learned models", |r| r.learned.as_ref()));
    }
    line_charts(&out.join("study.png"), &charts, (640, 420))?;
    Ok(results)
}

fn chart(
    results: &[VariantResult],
    what: &str,
    stat: impl Fn(&VariantResult) -> Option<&Stat>,
) -> LineChart {
    let mut families: Vec<&str> = Vec::new();
    for r in results {
        if !families.contains(&r.family.as_str()) {
            families.push(&r.family);
        }
    }
    let series = families
        .iter()
        .enumerate()
        .map(|(i, fam)| {
            let mut pts: Vec<(f64, &Stat)> = results
                .iter()
                .filter(|r| r.family == *fam)
                .filter_map(|r| stat(r).map(|s| ((r.samples_per_plan as f64).log10(), s)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let band = pts
                .iter()
                .filter(|(_, s)| s.ci95.is_finite())
                .map(|(x, s)| (*x, s.mean - s.ci95, s.mean + s.ci95))
                .collect();
            Series::new(*fam, pts.iter().map(|(x, s)| (*x, s.mean)).collect())
                .with_band(band)
                .with_color(i)
        })
        .collect();
    LineChart {
        title: format!("Return against samples per plan, {what} (95% band over seeds)"),
        x_label: "log10 samples per plan".into(),
        y_label: "evaluation return".into(),
        series,
        ..LineChart::default()
    }
}

fn cell(s: &Option<Stat>) -> String {
    s.as_ref()
        .map_or("-".into(), |s| format!("{:.1} +-{:.1}", s.mean, s.ci95))
}

/// The results as a markdown table.
pub fn study_table(results: &[VariantResult]) -> String {
    let mut t = String::from(
        "| planner | samples / elites / iterations | samples per plan | true dynamics | learned models | plan ms |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} |\n",
            r.family,
            r.label,
            r.samples_per_plan,
            cell(&r.true_model),
            cell(&r.learned),
            r.plan_ms
        ));
    }
    t
}
