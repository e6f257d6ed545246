//! The run read back, its metrics columns, plots (validation curves, the samples figure) and
//! the results table.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::cem::{CemHooks, IterState};
use dcem::model::Model;
use dcem::nn::{tensor_from_f64, to_f64_vec};
use dcem::planner::Plan;
use dcem::planning::{ActionDecoder, LatentDcemPlanner, MlpDecoder};
use dcem::run::plot::{Heatmap, LineChart, Panel, Series};
use dcem::run::{MetricsCsv, plot};
use dcem_envs::SwingupModel;

use crate::agent::*;
use crate::config::*;

/// Columns of `metrics.csv` (`train/cost` is the mean over the iterations since the previous
/// row, `eval/cost` the mean cost on the validation states; row 0 is the untrained decoder).
pub const METRICS: [&str; 6] = [
    "iteration",
    "train/cost",
    "eval/cost",
    "eval/best_cost",
    "train/lr",
    "perf/iteration_ms",
];

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// The run's config.
    pub config: EmbedConfig,
    /// `(iteration, validation cost)` at every validation, from the untrained decoder on.
    pub val_curve: Vec<(usize, f64)>,
    /// Best validation cost and the iteration it was reached at.
    pub best: (usize, f64),
    /// Mean wall time of one training iteration (solve, backward, clipping, Adam), in ms.
    pub ms_per_iteration: f64,
    /// The baselines on the same validation set.
    pub baselines: Vec<BaselineResult>,
}

fn read_baselines(path: &Path) -> Result<Vec<BaselineResult>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ensure!(f.len() == 3, "{}: malformed line {l:?}", path.display());
            Ok(BaselineResult {
                label: f[0].to_string(),
                mean_cost: f[1].parse()?,
                ms_per_state: f[2].parse()?,
            })
        })
        .collect()
}

/// Reads a finished (or interrupted) run's metrics into a summary.
pub fn summarise(
    dir: &Path,
    config: EmbedConfig,
    baselines: Vec<BaselineResult>,
) -> Result<RunSummary> {
    let (header, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    ensure!(
        header == METRICS,
        "{} is not a cartpole_embed metrics file",
        dir.join("metrics.csv").display()
    );
    let val_curve: Vec<(usize, f64)> = rows.iter().map(|r| (r[0] as usize, r[2])).collect();
    let best = val_curve
        .iter()
        .copied()
        .fold((0, f64::INFINITY), |b, p| if p.1 < b.1 { p } else { b });
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        config,
        val_curve,
        best,
        ms_per_iteration: dcem::run::step_weighted_mean(&rows, 5),
        baselines,
    })
}

/// Loads a run folder's summary (config, metrics, baselines).
pub fn load_run(dir: &Path) -> Result<RunSummary> {
    let text = std::fs::read_to_string(dir.join("config.toml"))
        .with_context(|| format!("reading {}", dir.join("config.toml").display()))?;
    let config: EmbedConfig = toml::from_str(&text)?;
    let baselines = read_baselines(&dir.join("baselines.csv"))?;
    summarise(dir, config, baselines)
}

/// The validation curves of `runs` with the baselines as flat lines (paper fig. 9).
pub fn val_chart(runs: &[&RunSummary]) -> LineChart {
    let series: Vec<Series> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Series::new(
                r.config.variant_label(),
                r.val_curve.iter().map(|&(i, v)| (i as f64, v)).collect(),
            )
            .with_color(i)
        })
        .collect();
    let hlines = runs.first().map_or_else(Vec::new, |first| {
        first
            .baselines
            .iter()
            .map(|b| (b.mean_cost, format!("full-space {}", b.label)))
            .collect()
    });
    LineChart {
        title: "Validation cost (fixed start states)".into(),
        x_label: "iteration".into(),
        y_label: "mean controller cost".into(),
        series,
        hlines,
        ..LineChart::default()
    }
}

/// Samples of one solve, recorded per iteration as host rows.
#[derive(Clone, Debug, Default)]
pub struct SolveTrace {
    /// `samples[i]`: iteration `i`'s samples, one row per sample.
    pub samples: Vec<Vec<Vec<f64>>>,
}

fn recorder(trace: &mut SolveTrace) -> impl FnMut(&IterState<'_>) + '_ {
    move |s: &IterState<'_>| {
        let [_, n, d] = s.samples.dims();
        if let Ok(v) = to_f64_vec(s.samples.clone().reshape([n, d])) {
            trace
                .samples
                .push(v.chunks(d).map(<[f64]>::to_vec).collect());
        }
    }
}

/// One solve with every iteration's samples recorded.
fn traced(plan: impl FnOnce(CemHooks<'_>) -> dcem::Result<Plan>) -> Result<(Plan, SolveTrace)> {
    let mut trace = SolveTrace::default();
    let plan = {
        let mut rec = recorder(&mut trace);
        plan(CemHooks {
            on_iter: Some(&mut rec),
            project: None,
            stop: None,
        })?
    };
    Ok((plan, trace))
}

/// Paper fig. 3 for validation state `state_index`: the sequences full-space CEM (the first
/// baseline) samples at a few iterations, the decoded sequences latent DCEM samples at the same
/// iterations and, for a 2-D latent space, the cost surface `C(z)` with the latent samples.
pub fn samples_figure(
    path: &Path,
    config: &EmbedConfig,
    planner: &mut LatentDcemPlanner<MlpDecoder>,
    state_index: usize,
    device: &Device,
) -> Result<()> {
    let all = validation_states(config, device)?;
    let k = state_index.min(all.dims()[0] - 1);
    let x0 = all.slice([k..k + 1, 0..5]);
    let baseline = config.baselines.first().cloned().unwrap_or(Baseline {
        n_sample: 100,
        n_elite: 10,
        n_iter: 30,
    });
    let mut full = full_cem(config, &baseline)?;
    let (full_plan, full_trace) = traced(|h| full.plan_with(&SwingupModel, x0.clone(), h))?;
    let detached = planner.decoder().detached();
    *planner.decoder_mut() = detached;
    let (latent_plan, latent_trace) = traced(|h| planner.plan_with(&SwingupModel, x0.clone(), h))?;
    let pick = |n: usize| -> Vec<usize> {
        let mut v: Vec<usize> = [0, 1, 4, n.saturating_sub(1)]
            .into_iter()
            .filter(|i| *i < n)
            .collect();
        v.dedup();
        v
    };
    let seq_panel = |title: String, seqs: &[Vec<f64>], color: usize| {
        let series = seqs
            .iter()
            .map(|s| {
                Series::new(
                    "",
                    s.iter().enumerate().map(|(t, u)| (t as f64, *u)).collect(),
                )
                .with_color(color)
                .faint()
            })
            .collect();
        Panel::Line(LineChart {
            title,
            x_label: "time step".into(),
            y_label: "action".into(),
            series,
            ..LineChart::default()
        })
    };
    let mut panels = Vec::new();
    for &i in &pick(full_trace.samples.len()) {
        panels.push(seq_panel(
            format!("{}, iteration {}", baseline.label(), i + 1),
            &full_trace.samples[i],
            0,
        ));
    }
    let decode_rows = |rows: &[Vec<f64>]| -> Result<Vec<Vec<f64>>> {
        let l = planner.decoder().latent_dim();
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let z = tensor_from_f64(&flat, [rows.len(), l], device)?;
        let u = to_f64_vec(
            planner
                .decoder()
                .decode(z)?
                .reshape([rows.len(), config.horizon]),
        )?;
        Ok(u.chunks(config.horizon).map(<[f64]>::to_vec).collect())
    };
    let latent_iters = pick(latent_trace.samples.len());
    for &i in &latent_iters {
        let seqs = decode_rows(&latent_trace.samples[i])?;
        panels.push(seq_panel(
            format!("latent DCEM (decoded), iteration {}", i + 1),
            &seqs,
            1,
        ));
    }
    let full_cost = full_plan.diagnostics.cost[0];
    let latent_cost = latent_plan.diagnostics.cost[0];
    if planner.decoder().latent_dim() == 2 {
        let n = 41;
        let grid: Vec<f64> = (0..n)
            .map(|i| -1.0 + 2.0 * i as f64 / (n - 1) as f64)
            .collect();
        let flat: Vec<f64> = grid
            .iter()
            .flat_map(|y| grid.iter().flat_map(move |x| [*x, *y]))
            .collect();
        let z = tensor_from_f64(&flat, [n * n, 2], device)?;
        let u = planner.decoder().decode(z)?;
        let starts = x0.clone().expand([n * n, 5]);
        let c = to_f64_vec(SwingupModel.cost(starts, u)?)?;
        let values: Vec<Vec<f64>> = c.chunks(n).map(<[f64]>::to_vec).collect();
        let points = latent_iters
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                Series::new(
                    format!("iteration {}", i + 1),
                    latent_trace.samples[i]
                        .iter()
                        .map(|r| (r[0], r[1]))
                        .collect(),
                )
                .with_color(j)
            })
            .collect();
        panels.push(Panel::Heat(Heatmap {
            title: format!("C(z), light = low; solution {latent_cost:.2}"),
            x_label: "z1".into(),
            y_label: "z2".into(),
            x_range: (-1.0, 1.0),
            y_range: (-1.0, 1.0),
            values,
            lines: vec![],
            points,
        }));
    }
    plot::panel_grid(path, &panels, 4, (330, 250))?;
    eprintln!(
        "{}: start state {k}: {} cost {full_cost:.2}, latent DCEM cost {latent_cost:.2}",
        path.display(),
        baseline.label()
    );
    Ok(())
}

pub(crate) fn write_run_plots(run: &RunSummary, device: &Device) -> Result<()> {
    plot::line_chart(&run.dir.join("val_cost.png"), &val_chart(&[run]))?;
    let best = run.dir.join("checkpoints").join("best.safetensors");
    let (config, mut planner) = load_planner(&best, device)?;
    samples_figure(
        &run.dir.join("samples.png"),
        &config,
        &mut planner,
        0,
        device,
    )?;
    episode_video(
        &run.dir.join("eval_episode.gif"),
        &config,
        &mut planner,
        device,
    )?;
    Ok(())
}

/// The best decoder's latent DCEM as a model-predictive controller: one swing-up episode from
/// the first validation state (a plan per step, its first action executed on the native
/// environment), written as an animated GIF.
pub fn episode_video(
    path: &Path,
    config: &EmbedConfig,
    planner: &mut LatentDcemPlanner<MlpDecoder>,
    device: &Device,
) -> Result<()> {
    use dcem::env::Env;
    let detached = planner.decoder().detached();
    *planner.decoder_mut() = detached;
    let states = to_f64_vec(validation_states(config, device)?)?;
    let first: [f64; 5] = states[..5].try_into().context("no validation state")?;
    let mut env = dcem_envs::CartpoleSwingup::new(Default::default())?;
    let mut obs = env.reset_to(first)?;
    let mut observations = vec![obs.clone()];
    loop {
        let plan = dcem::planner::Planner::plan(
            planner,
            &SwingupModel,
            tensor_from_f64(&obs, [1, 5], device)?,
        )?;
        let action = to_f64_vec(plan.first_action())?;
        let step = env.step(&action)?;
        let done = step.done();
        obs = step.obs;
        observations.push(obs.clone());
        if done {
            break;
        }
    }
    dcem_envs::render::write_episode_gif(&dcem_envs::EnvSpec::default(), &observations, 1, path)?;
    Ok(())
}

/// The results table of `runs` against their baselines (markdown).
pub fn results_table(runs: &[&RunSummary]) -> String {
    let mut s = String::from(
        "| controller | samples per solve | best val cost | at iteration | final val cost | ms per iteration |\n|---|---|---|---|---|---|\n",
    );
    if let Some(first) = runs.first() {
        for b in &first.baselines {
            s.push_str(&format!(
                "| full-space {} | - | {:.2} | - | - | {:.1} per state |\n",
                b.label, b.mean_cost, b.ms_per_state
            ));
        }
        if let Some(p) = first.val_curve.first() {
            s.push_str(&format!(
                "| untrained decoder, latent {} | {} | {:.2} | 0 | - | - |\n",
                first.config.decoder.latent_dim, first.config.planner.cem.n_sample, p.1
            ));
        }
    }
    for r in runs {
        s.push_str(&format!(
            "| latent DCEM {} | {} x {} | {:.2} | {} | {:.2} | {:.1} |\n",
            r.config.variant_label(),
            r.config.planner.cem.n_sample,
            r.config.planner.cem.n_iter,
            r.best.1,
            r.best.0,
            r.val_curve.last().map_or(f64::NAN, |p| p.1),
            r.ms_per_iteration
        ));
    }
    s
}
