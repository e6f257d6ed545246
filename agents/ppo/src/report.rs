//! The metrics columns and the learning curves.

use std::path::Path;
use std::sync::LazyLock;

use anyhow::Result;
use dcem::rl::{PPO_LOSS_METRICS, write_ppo_curves};
use dcem::run::MetricsCsv;
use dcem::run::plot::{LineChart, Series};

/// Metrics columns (the framework's scheme: `dcem::run::MetricsCsv`).
pub static METRICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut columns = vec!["env_steps", "train/return", "train/episodes", "train/lr"];
    columns.extend(PPO_LOSS_METRICS);
    columns.extend([
        "train/std",
        "perf/env_steps_per_s",
        "train/return_last20",
        "perf/wall_s",
    ]);
    columns
});

/// Draws `learning_curves.png` of a run folder: episodic return, losses, KL and clip fraction
/// against environment steps.
pub fn write_plots(dir: &Path) -> Result<()> {
    let (cols, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    // By name, so that runs written before a column existed still draw (without it).
    let pts = |name: &str| -> Vec<(f64, f64)> {
        let Some(c) = cols.iter().position(|c| c == name) else {
            return Vec::new();
        };
        rows.iter()
            .map(|r| (r[0], r[c]))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let chart = |title: &str, y: &str, series: Vec<Series>, log_y: bool| LineChart {
        title: title.into(),
        x_label: "environment steps".into(),
        y_label: y.into(),
        log_y,
        series,
        ..Default::default()
    };
    let mut returns = chart(
        "episodic return (training, sampled actions)",
        "return",
        vec![
            Series::new("episodic return (per update)", pts("train/return")),
            Series::new("mean of the last 20 episodes", pts("train/return_last20")),
        ],
        false,
    );
    returns.hlines.push((450.0, "450".into()));
    let more = vec![
        chart(
            "losses",
            "loss",
            vec![Series::new("value loss", pts("loss/value"))],
            true,
        ),
        chart(
            "policy std",
            "std",
            vec![Series::new("std", pts("train/std"))],
            false,
        ),
    ];
    let path = dir.join("learning_curves.png");
    Ok(write_ppo_curves(
        &path,
        returns,
        "environment steps",
        &pts,
        more,
    )?)
}
