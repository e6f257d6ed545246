//! What a run folder holds and how it is shown: the columns of `metrics.csv` (phases 1-2 and
//! phase 3), the run read back, its learning curves and the evaluation table.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::Result;
use dcem::rl::{PPO_LOSS_METRICS, write_ppo_curves};
use dcem::run::plot::{LineChart, Series, has_outliers, line_charts};
use dcem::run::{EvalSummary, MetricsCsv};

use crate::config::{Phase, PlanetConfig};

/// The columns of `metrics.csv`, one row per episode (`loss/value`, the terminal value's TD
/// loss, last: runs written before it have one column fewer and are read as such).
pub const METRICS: [&str; 16] = [
    "episode",
    "env_steps",
    "train/return",
    "eval/return",
    "loss/model",
    "loss/obs",
    "loss/reward",
    "loss/kl",
    "loss/decoder_cost",
    "train/updates",
    "perf/plan_ms",
    "perf/update_ms",
    "perf/env_steps_per_s",
    "perf/wall_s",
    "train/seed_episode",
    "loss/value",
];

/// The columns of a phase-3 `metrics.csv`, one row per PPO step.
pub static PPO_METRICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut columns = vec!["ppo_step", "env_steps", "train/return", "eval/return"];
    columns.extend(PPO_LOSS_METRICS);
    columns.extend([
        "train/std",
        "perf/rollout_s",
        "perf/plan_ms",
        "perf/env_s",
        "perf/update_s",
        "perf/forward_s",
        "perf/backward_s",
        "perf/optim_s",
        "perf/env_steps_per_s",
        "perf/wall_s",
    ]);
    columns
});

/// A finished (or interrupted) run, read back from its folder.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// Its config.
    pub config: PlanetConfig,
    /// `metrics.csv` rows.
    pub rows: Vec<Vec<f64>>,
    /// `eval.json`, when the run finished with a final evaluation.
    pub eval: Option<EvalSummary>,
}

/// Reads a run folder.
pub fn load_run(dir: &Path) -> Result<RunSummary> {
    let config = PlanetConfig::load(&dir.join("config.toml"))?;
    let (_, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    let eval_path = dir.join("eval.json");
    let eval = if eval_path.exists() {
        Some(EvalSummary::load(&eval_path)?)
    } else {
        None
    };
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        config,
        rows,
        eval,
    })
}

fn col(name: &str) -> usize {
    METRICS.iter().position(|c| *c == name).unwrap_or(0)
}

/// The learning curves of a run: returns (training and evaluation) against environment steps,
/// the model losses and the planning time per action.
pub fn write_plots(run: &RunSummary, hline: Option<(f64, String)>) -> Result<()> {
    if run.config.phase == Phase::Ppo {
        return write_ppo_plots(run);
    }
    let pts = |c: &str| -> Vec<(f64, f64)> {
        run.rows
            .iter()
            .map(|r| {
                (
                    r[col("env_steps")],
                    r.get(col(c)).copied().unwrap_or(f64::NAN),
                )
            })
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let (train, eval) = (pts("train/return"), pts("eval/return"));
    let symlog_y = has_outliers(train.iter().chain(&eval).map(|p| p.1));
    let mut returns = LineChart {
        title: format!("{}: episode return", run.config.env.name()),
        x_label: "environment steps".into(),
        y_label: "return".into(),
        symlog_y,
        series: vec![
            Series::new("training (with noise)", train),
            Series::new("evaluation", eval),
        ],
        ..Default::default()
    };
    if let Some(h) = hline {
        returns.hlines.push(h);
    }
    let losses = LineChart {
        title: "model loss per step".into(),
        x_label: "environment steps".into(),
        y_label: "loss".into(),
        log_y: true,
        series: vec![
            Series::new("observation", pts("loss/obs")),
            Series::new("reward", pts("loss/reward")),
            Series::new("KL", pts("loss/kl")),
            Series::new("terminal value (TD)", pts("loss/value")),
        ],
        ..Default::default()
    };
    let mut charts = vec![returns, losses];
    if run
        .rows
        .iter()
        .any(|r| r[col("loss/decoder_cost")].is_finite())
    {
        charts.push(LineChart {
            title: "decoder: predicted cost of the DCEM plan".into(),
            x_label: "environment steps".into(),
            y_label: "cost".into(),
            series: vec![Series::new("decoder cost", pts("loss/decoder_cost"))],
            ..Default::default()
        });
    }
    line_charts(&run.dir.join("learning_curves.png"), &charts, (720, 420))?;
    Ok(())
}

/// The phase-2 controller's evaluation stored by a phase-3 run.
pub fn eval_before(dir: &Path) -> Result<Option<EvalSummary>> {
    let p = dir.join("eval_before.json");
    if !p.exists() {
        return Ok(None);
    }
    Ok(Some(EvalSummary::load(&p)?))
}

/// Learning curves of a phase-3 run: returns per PPO step, the losses, KL and clip fraction, and
/// where the time of a PPO step goes.
fn write_ppo_plots(run: &RunSummary) -> Result<()> {
    let col = |name: &str| PPO_METRICS.iter().position(|c| *c == name).unwrap_or(0);
    let pts = |name: &str| -> Vec<(f64, f64)> {
        run.rows
            .iter()
            .map(|r| (r[0], r[col(name)]))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let chart = |title: &str, y: &str, series: Vec<Series>| LineChart {
        title: title.into(),
        x_label: "PPO step".into(),
        y_label: y.into(),
        series,
        ..Default::default()
    };
    let mut returns = chart(
        &format!(
            "{}: return (PPO on {})",
            run.config.env.name(),
            run.config.finetune.parts.label()
        ),
        "return",
        [
            Series::new("training episodes (sampled)", pts("train/return")),
            Series::new("periodic evaluation (mean action)", pts("eval/return")),
        ]
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect(),
    );
    returns.symlog_y = has_outliers(
        returns
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    if let Some(b) = eval_before(&run.dir)? {
        returns
            .hlines
            .push((b.mean, format!("before PPO ({:.1})", b.mean)));
    }
    if let Some(a) = &run.eval {
        returns
            .hlines
            .push((a.mean, format!("after PPO ({:.1})", a.mean)));
    }
    let seconds = chart(
        "seconds per PPO step",
        "s",
        vec![
            Series::new("rollout (planning + env)", pts("perf/rollout_s")),
            Series::new("update: forward through DCEM", pts("perf/forward_s")),
            Series::new("update: backward", pts("perf/backward_s")),
        ],
    );
    let path = run.dir.join("learning_curves.png");
    Ok(write_ppo_curves(
        &path,
        returns,
        "PPO step",
        &pts,
        vec![seconds],
    )?)
}

/// The markdown table of evaluation summaries (each row's interval is Student's t over that
/// run's evaluation episodes).
pub fn eval_table(rows: &[EvalSummary]) -> String {
    let mut s = String::from(
        "| planner | episodes | mean return | 95% CI (Student's t over the episodes) | std | \
         planning ms/action |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} | +-{:.1} | {:.1} | {:.1} |\n",
            r.label,
            r.episodes,
            r.mean,
            r.ci95_t(),
            r.std,
            r.plan_ms
        ));
    }
    s
}

/// Runs of one config that differ only in their seed (and name), summarised over the seeds as
/// the protocol reports them (mean, median, IQM with stratified-bootstrap intervals; with a
/// bound, the seeds below `fail_share` of it counted as failed). One section per config given
/// with at least two seeds; empty when there is none.
pub fn seed_groups_table(
    runs: &[RunSummary],
    bound: Option<f64>,
    fail_share: f64,
) -> Result<String> {
    use dcem::run::protocol::{BootstrapOptions, SeedStats};
    let key = |r: &RunSummary| {
        let mut c = r.config.clone();
        c.seed = 0;
        c.name = String::new();
        c
    };
    let mut groups: Vec<(PlanetConfig, Vec<&RunSummary>)> = Vec::new();
    for r in runs.iter().filter(|r| r.eval.is_some()) {
        let k = key(r);
        match groups.iter_mut().find(|(c, _)| *c == k) {
            Some((_, g)) => g.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    let mut md = String::new();
    for (_, g) in groups.iter().filter(|(_, g)| g.len() >= 2) {
        let finals: Vec<f64> = g
            .iter()
            .filter_map(|r| r.eval.as_ref().map(|e| e.mean))
            .collect();
        let fail = bound.map(|b| {
            (
                fail_share * b,
                format!("{:.0}% of the true-model bound {b:.1}", 100.0 * fail_share),
            )
        });
        let stats = SeedStats::of(&finals, fail, &BootstrapOptions::default())?;
        let seeds: Vec<String> = g.iter().map(|r| r.config.seed.to_string()).collect();
        md.push_str(&format!(
            "\nOver the seeds {} of one config ({} ...):\n\n{}",
            seeds.join(", "),
            g[0].config.name,
            stats.markdown(1)
        ));
    }
    Ok(md)
}
