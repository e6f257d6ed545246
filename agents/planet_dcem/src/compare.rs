//! Learning curves against published figures (`planet_dcem compare`): the evaluation returns of
//! single runs and of a group of seed runs against environment steps, with the published
//! returns of other methods at fixed budgets marked as points, in one plot per task; and a
//! markdown table with the final evaluations and where each run's time went per 1,000
//! environment steps (planning, model updates, environment and the rest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use dcem::run::Stat;
use dcem::run::atomic_write;
use dcem::run::plot::{LineChart, Series, line_charts};
use dcem::run::protocol::{BootstrapOptions, SeedStats};
use serde::Deserialize;

use crate::report::{METRICS, RunSummary, load_run};

/// One published method's returns at fixed budgets.
#[derive(Clone, Debug, Deserialize)]
pub struct PublishedMethod {
    /// The method's name, as drawn in the legend.
    pub name: String,
    /// Where the figures come from.
    pub source: String,
    /// Environment-step budgets.
    pub steps: Vec<f64>,
    /// Per task (e.g. `cheetah_run`), one return per budget.
    #[serde(flatten)]
    pub tasks: BTreeMap<String, Vec<f64>>,
}

/// A file of published figures (`configs/published_dmc.toml`).
#[derive(Clone, Debug, Deserialize)]
pub struct Published {
    /// The methods.
    pub method: Vec<PublishedMethod>,
}

impl Published {
    /// Reads and checks a published-figures file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let p: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for m in &p.method {
            for (task, values) in &m.tasks {
                ensure!(
                    values.len() == m.steps.len(),
                    "{}: method {:?} gives {} returns for {task} but {} budgets in `steps`",
                    path.display(),
                    m.name,
                    values.len(),
                    m.steps.len()
                );
            }
        }
        Ok(p)
    }
}

/// What `compare` draws and tabulates.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// The task's key in the published file (`cheetah_run`, `walker_walk`).
    pub task: String,
    /// Runs drawn one curve each.
    pub runs: Vec<PathBuf>,
    /// Groups of runs, each of one config over seeds: each group drawn as the mean with a 95%
    /// band.
    pub seeds: Vec<Vec<PathBuf>>,
    /// The published figures.
    pub published: Published,
    /// Published budgets beyond this many environment steps are tabulated, not drawn.
    pub max_steps: f64,
    /// The PNG; the table goes next to it with the extension `md`.
    pub out: PathBuf,
}

fn col(name: &str) -> usize {
    METRICS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| unreachable!("{name} is one of the metrics columns"))
}

/// A run's evaluation returns against environment steps: the periodic ones, with the final
/// evaluation (`eval.json`, more episodes) in place of the last one.
pub fn eval_curve(run: &RunSummary) -> Vec<(f64, f64)> {
    let (steps, eval) = (col("env_steps"), col("eval/return"));
    let mut pts: Vec<(f64, f64)> = run
        .rows
        .iter()
        .filter(|r| r[eval].is_finite())
        .map(|r| (r[steps], r[eval]))
        .collect();
    if let (Some(e), Some(last)) = (&run.eval, run.rows.last()) {
        let at = last[steps];
        pts.retain(|p| p.0 != at);
        pts.push((at, e.mean));
    }
    pts
}

/// Seconds per 1,000 environment steps of a run's training episodes (seed episodes and
/// evaluations left out), and the whole run's wall time.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Planning.
    pub plan: f64,
    /// Model (and decoder) updates.
    pub update: f64,
    /// The environment, and whatever else an episode spends.
    pub rest: f64,
    /// Evaluation episodes over the whole run, seconds.
    pub eval_total: f64,
    /// The run's wall time, seconds.
    pub wall: f64,
}

/// Where a run's time went (see [`Timing`]).
pub fn timing(run: &RunSummary) -> Timing {
    let c = |n| col(n);
    let repeat = run.config.train.action_repeat.max(1) as f64;
    let (mut steps_total, mut plan, mut update, mut episode_s) = (0.0, 0.0, 0.0, 0.0);
    let mut all_episodes_s = 0.0;
    let mut prev_steps = 0.0;
    for r in &run.rows {
        let steps = r[c("env_steps")] - prev_steps;
        prev_steps = r[c("env_steps")];
        let secs = steps / r[c("perf/env_steps_per_s")];
        all_episodes_s += secs;
        if r[c("train/seed_episode")] == 1.0 || !secs.is_finite() {
            continue;
        }
        let p = (steps / repeat) * r[c("perf/plan_ms")] / 1e3;
        let u = r[c("train/updates")] * r[c("perf/update_ms")] / 1e3;
        steps_total += steps;
        plan += if p.is_finite() { p } else { 0.0 };
        update += if u.is_finite() { u } else { 0.0 };
        episode_s += secs;
    }
    let wall = run.rows.last().map_or(f64::NAN, |r| r[c("perf/wall_s")]);
    let per_k = 1e3 / steps_total;
    Timing {
        plan: plan * per_k,
        update: update * per_k,
        rest: (episode_s - plan - update) * per_k,
        eval_total: wall - all_episodes_s,
        wall,
    }
}

fn run_label(run: &RunSummary) -> String {
    let name = run
        .dir
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    format!("{name} (seed {})", run.config.seed)
}

/// The name of a group of seed runs: the first run folder's name without its `_s<seed>`.
fn group_name(seeds: &[RunSummary]) -> String {
    let name = seeds
        .first()
        .and_then(|r| r.dir.file_name())
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    match name.rsplit_once("_s") {
        Some((stem, seed)) if !seed.is_empty() && seed.bytes().all(|b| b.is_ascii_digit()) => {
            stem.to_string()
        }
        _ => name,
    }
}

/// One group of seed runs: its table row (the final evaluations' mean, median and IQM with
/// stratified-bootstrap 95% intervals, [`dcem::run::protocol`]) and its curve (the mean of the
/// evaluations at the steps every seed has, with a Student-t 95% band over the seeds).
fn seed_group(seeds: &[RunSummary]) -> Result<(String, Series)> {
    let curves: Vec<Vec<(f64, f64)>> = seeds.iter().map(eval_curve).collect();
    let (mut line, mut band) = (Vec::new(), Vec::new());
    for &(x, _) in curves.first().map_or(&[][..], |c| c.as_slice()) {
        let vals: Vec<f64> = curves
            .iter()
            .filter_map(|c| c.iter().find(|p| p.0 == x).map(|p| p.1))
            .collect();
        if vals.len() < curves.len() {
            continue;
        }
        let s = Stat::of(vals);
        line.push((x, s.mean));
        band.push((x, s.mean - s.ci95, s.mean + s.ci95));
    }
    let finals = Stat::of(
        seeds
            .iter()
            .map(|r| r.eval.as_ref().map_or(f64::NAN, |e| e.mean))
            .collect(),
    );
    let name = format!("{}: {} seeds", group_name(seeds), seeds.len());
    let at = line.last().map_or(f64::NAN, |p| p.0);
    let summary = match finals.values.iter().all(|v| v.is_finite()) {
        true => {
            let p = SeedStats::of(&finals.values, None, &BootstrapOptions::default())?;
            format!(
                "mean {}, median {}, IQM {}",
                p.mean.fmt(1),
                p.median.fmt(1),
                p.iqm.fmt(1)
            )
        }
        false => "unfinished seeds".into(),
    };
    let row = format!(
        "| {name} ({}) | {at:.0} | {summary} (per seed: {}) | measured |\n",
        seeds
            .iter()
            .map(|r| r.config.seed.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        finals
            .values
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((row, Series::new(name, line).with_band(band)))
}

/// The time table under the curves: one row per run folder, a folder given both as a run and
/// in a seed group (or twice) listed once.
fn timing_table<'a>(runs: impl Iterator<Item = &'a RunSummary>) -> String {
    let mut md = String::from(
        "\n| run | planning s / 1k steps | model updates s / 1k steps | environment and rest \
         s / 1k steps | evaluations, s | wall h |\n|---|---|---|---|---|---|\n",
    );
    let mut listed = std::collections::HashSet::new();
    for r in runs {
        if !listed.insert(r.dir.canonicalize().unwrap_or_else(|_| r.dir.clone())) {
            continue;
        }
        let t = timing(r);
        md.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} |\n",
            run_label(r),
            t.plan,
            t.update,
            t.rest,
            t.eval_total,
            t.wall / 3600.0
        ));
    }
    md
}

/// Draws the plot and writes the table; returns the table.
pub fn compare(opts: &CompareOptions) -> Result<String> {
    ensure!(
        !opts.runs.is_empty() || !opts.seeds.is_empty(),
        "give at least one run (--run) or seed runs (--seeds)"
    );
    ensure!(
        opts.seeds.iter().all(|g| g.len() >= 2),
        "each --seeds needs at least two runs (a result over one seed is an anecdote)"
    );
    ensure!(
        opts.published
            .method
            .iter()
            .any(|m| m.tasks.contains_key(&opts.task)),
        "no published method gives figures for task {:?}; the file has: {}",
        opts.task,
        opts.published
            .method
            .iter()
            .flat_map(|m| m.tasks.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let load = |d: &PathBuf| load_run(d).with_context(|| format!("reading {}", d.display()));
    let runs = opts.runs.iter().map(load).collect::<Result<Vec<_>>>()?;
    let groups = opts
        .seeds
        .iter()
        .map(|g| g.iter().map(load).collect::<Result<Vec<_>>>())
        .collect::<Result<Vec<_>>>()?;
    let mut series = Vec::new();
    let mut md = format!(
        "| {} | simulator steps | return: ours are evaluations (one run: Student-t 95% CI over \
         its episodes; seed groups: bootstrap 95% CIs over the seeds), published ones as their \
         label says | source |\n\
         |---|---|---|---|\n",
        opts.task
    );
    for (i, r) in runs.iter().enumerate() {
        let pts = eval_curve(r);
        let last = r.rows.last().map_or(f64::NAN, |x| x[col("env_steps")]);
        let fin = r.eval.as_ref().map_or("unfinished".to_string(), |e| {
            format!(
                "{:.1} +-{:.1} ({} episodes)",
                e.mean,
                e.ci95_t(),
                e.episodes
            )
        });
        md.push_str(&format!(
            "| {} | {last:.0} | {fin} | measured |\n",
            run_label(r)
        ));
        series.push(Series::new(run_label(r), pts).with_color(i));
    }
    for (g, seeds) in groups.iter().enumerate() {
        let (row, curve) = seed_group(seeds)?;
        md.push_str(&row);
        series.push(curve.with_color(runs.len() + g));
    }
    for (j, m) in opts.published.method.iter().enumerate() {
        let Some(values) = m.tasks.get(&opts.task) else {
            continue;
        };
        let pts: Vec<(f64, f64)> = m
            .steps
            .iter()
            .copied()
            .zip(values.iter().copied())
            .collect();
        for &(x, y) in &pts {
            let y = if y.fract() == 0.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.1}")
            };
            md.push_str(&format!(
                "| {} (published) | {x:.0} | {y} | {} |\n",
                m.name, m.source
            ));
        }
        let drawn: Vec<(f64, f64)> = pts.into_iter().filter(|p| p.0 <= opts.max_steps).collect();
        if !drawn.is_empty() {
            series.push(
                Series::new(format!("{} (published)", m.name), drawn)
                    .with_color(runs.len() + groups.len() + j)
                    .markers(j % 2 == 1),
            );
        }
    }
    md.push_str(&timing_table(runs.iter().chain(groups.iter().flatten())));
    let chart = LineChart {
        title: format!("{}: return against simulator steps", opts.task),
        x_label: "simulator steps (environment steps, each action repeat counted)".into(),
        y_label: "return".into(),
        series,
        legend_left: true,
        ..Default::default()
    };
    if let Some(parent) = opts.out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    line_charts(&opts.out, &[chart], (900, 520))?;
    atomic_write(&opts.out.with_extension("md"), md.as_bytes())?;
    Ok(md)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::PlanetConfig;
    use dcem::run::EvalSummary;

    /// A metrics row from the columns that matter here (the others NaN).
    fn row(pairs: &[(&str, f64)]) -> Vec<f64> {
        let mut r = vec![f64::NAN; METRICS.len()];
        for (name, v) in pairs {
            r[col(name)] = *v;
        }
        r
    }

    fn run(rows: Vec<Vec<f64>>, eval: Option<EvalSummary>) -> RunSummary {
        let mut config = PlanetConfig::default();
        config.train.action_repeat = 4;
        RunSummary {
            dir: PathBuf::from("runs/x"),
            config,
            rows,
            eval,
        }
    }

    #[test]
    fn the_shipped_published_file_loads_and_a_short_task_list_is_refused() {
        let shipped =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/published_dmc.toml");
        let p = Published::load(&shipped).unwrap();
        // DreamerV3 at 100k simulator steps (not its 80k point); TD-MPC2's step 100k drawn at
        // 200k simulator steps (action repeat 2).
        let dreamer = p
            .method
            .iter()
            .find(|m| m.name.starts_with("DreamerV3"))
            .unwrap();
        assert_eq!(dreamer.steps[0], 100_000.0);
        assert_eq!(dreamer.tasks["cheetah_run"][0], 283.2);
        assert_eq!(dreamer.tasks["walker_walk"][0], 475.2);
        let tdmpc2 = p
            .method
            .iter()
            .find(|m| m.name == "TD-MPC2 (evaluations)")
            .unwrap();
        assert_eq!(tdmpc2.steps[0], 200_000.0);
        assert_eq!(tdmpc2.tasks["cheetah_run"][0], 519.0);
        let dir = std::env::temp_dir().join(format!("planet-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[[method]]\nname = \"A\"\nsource = \"s\"\nsteps = [1, 2]\ncheetah_run = [3]\n",
        )
        .unwrap();
        let err = format!("{:#}", Published::load(&bad).unwrap_err());
        assert!(
            err.contains("\"A\"") && err.contains("cheetah_run"),
            "{err}"
        );
        let unknown = compare(&CompareOptions {
            task: "cheetah_walk".into(),
            runs: vec![dir.join("none")],
            seeds: Vec::new(),
            published: p,
            max_steps: 1e5,
            out: dir.join("x.png"),
        })
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("cheetah_run, walker_walk"), "{unknown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn time_per_1k_steps_is_split_from_the_metrics() {
        // A seed episode (left out), then two training episodes of 1000 steps (250 plans
        // each at action repeat 4), the second followed by an evaluation.
        let rows = vec![
            row(&[
                ("env_steps", 1000.0),
                ("perf/env_steps_per_s", 10_000.0),
                ("train/seed_episode", 1.0),
                ("perf/wall_s", 0.1),
            ]),
            row(&[
                ("env_steps", 2000.0),
                ("perf/env_steps_per_s", 100.0),
                ("train/seed_episode", 0.0),
                ("perf/plan_ms", 20.0),
                ("train/updates", 100.0),
                ("perf/update_ms", 40.0),
                ("perf/wall_s", 10.1),
            ]),
            row(&[
                ("env_steps", 3000.0),
                ("perf/env_steps_per_s", 50.0),
                ("train/seed_episode", 0.0),
                ("perf/plan_ms", 40.0),
                ("train/updates", 100.0),
                ("perf/update_ms", 80.0),
                ("perf/wall_s", 40.1),
                ("eval/return", 7.0),
            ]),
        ];
        let t = timing(&run(rows, None));
        // Planning 5 s and 10 s, updates 4 s and 8 s, episodes 10 s and 20 s.
        assert!((t.plan - 7.5).abs() < 1e-9, "{t:?}");
        assert!((t.update - 6.0).abs() < 1e-9, "{t:?}");
        assert!((t.rest - 1.5).abs() < 1e-9, "{t:?}");
        assert!((t.eval_total - 10.0).abs() < 1e-9, "{t:?}");
        assert!((t.wall - 40.1).abs() < 1e-12);
    }

    #[test]
    fn a_run_given_twice_has_one_row_in_the_time_table() {
        let a = run(Vec::new(), None);
        let mut b = run(Vec::new(), None);
        b.dir = PathBuf::from("runs/y");
        let table = timing_table([&a, &b, &a, &b].into_iter());
        // Header, separator and one row per folder.
        assert_eq!(table.trim().lines().count(), 4, "{table}");
        assert_eq!(table.matches("| x (seed 0)").count(), 1, "{table}");
        assert_eq!(table.matches("| y (seed 0)").count(), 1, "{table}");
    }

    #[test]
    fn a_seed_group_is_named_by_its_config_and_averaged_where_every_seed_has_a_point() {
        let at = |dir: &str, pts: &[(f64, f64)], fin: f64| {
            let rows = pts
                .iter()
                .map(|&(x, y)| row(&[("env_steps", x), ("eval/return", y)]))
                .collect();
            let mut r = run(rows, Some(EvalSummary::new("final", vec![fin], 1.0)));
            r.dir = PathBuf::from(dir);
            r
        };
        let seeds = vec![
            at(
                "runs/cheetah_value_50k_s1",
                &[(1e3, 2.0), (2e3, 4.0), (3e3, 0.0)],
                10.0,
            ),
            at(
                "runs/cheetah_value_50k_s12",
                &[(1e3, 4.0), (3e3, 0.0)],
                20.0,
            ),
        ];
        let (row, series) = seed_group(&seeds).unwrap();
        // Two seeds: every bootstrap resample's mean lies between them.
        assert!(
            row.starts_with(
                "| cheetah_value_50k: 2 seeds (0, 0) | 3000 | mean 15.0 [10.0, 20.0], median 15.0 \
                 [10.0, 20.0], IQM 15.0 [10.0, 20.0]"
            ),
            "{row}"
        );
        assert!(row.contains("(per seed: 10.0, 20.0)"), "{row}");
        // 2000 steps is left out (one seed has no evaluation there); the last point is the
        // final evaluations' mean.
        assert_eq!(series.points, vec![(1e3, 3.0), (3e3, 15.0)]);
        let named = |d: &str| group_name(&[at(d, &[], 0.0)]);
        assert_eq!(named("runs/walker_s"), "walker_s");
        assert_eq!(named("runs/walker_sx"), "walker_sx");
        assert_eq!(named("runs/walker_s0"), "walker");
    }

    #[test]
    fn the_final_evaluation_replaces_the_last_periodic_one() {
        let rows = vec![
            row(&[("env_steps", 1000.0), ("eval/return", 5.0)]),
            row(&[("env_steps", 2000.0)]),
            row(&[("env_steps", 3000.0), ("eval/return", 9.0)]),
        ];
        let periodic = eval_curve(&run(rows.clone(), None));
        assert_eq!(periodic, vec![(1000.0, 5.0), (3000.0, 9.0)]);
        let fin = EvalSummary::new("final", vec![10.0, 12.0], 1.0);
        let curve = eval_curve(&run(rows, Some(fin)));
        assert_eq!(curve, vec![(1000.0, 5.0), (3000.0, 11.0)]);
    }
}
