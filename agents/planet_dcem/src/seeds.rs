//! One config over several seeds: the runs (in parallel, up to the cores), then a summary of
//! what they measured: per seed, and over the seeds the final evaluation's mean, median and IQM
//! with stratified-bootstrap 95% intervals and the count of failed seeds
//! ([`dcem::run::protocol`]); the learning curves with bands (Student's t over the seeds at each
//! episode) and the final evaluations' performance profile.
//!
//! Every run is an ordinary run folder `<runs_dir>/<name>_s<seed>` made by `planet_dcem train`
//! (as a child process, so that a crash in one seed leaves the others running); the summary goes
//! to `<runs_dir>/<name>_seeds/`: `summary.json`, `summary.md`, `learning_curves.png`,
//! `performance_profile.png` and each seed's log in `logs/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
pub use dcem::run::Stat;
use dcem::run::plot::{LineChart, Series, has_outliers, line_charts};
use dcem::run::protocol::{self, BootstrapOptions, SeedStats};
use dcem::run::{EvalSummary, check_run_name, check_seeds, write_summary};
use serde::{Deserialize, Serialize};

use crate::report::{RunSummary, load_run};

/// How [`run_seeds`] runs and summarises.
#[derive(Clone, Debug)]
pub struct SeedsOptions {
    /// The experiment's config file.
    pub config: PathBuf,
    /// The seeds (at least 2, distinct).
    pub seeds: Vec<u64>,
    /// Runs at a time (at least 1).
    pub jobs: usize,
    /// Folder of the run folders.
    pub runs_dir: PathBuf,
    /// Base name: runs are `<name>_s<seed>`, the summary `<name>_seeds`.
    pub name: String,
    /// Extra arguments for every `train` (e.g. `--episodes 50`, `--resume`, `--overwrite`).
    pub train_args: Vec<String>,
    /// Episode counts at which the returns are summarised.
    pub at: Vec<usize>,
    /// The true-dynamics bound (`true-model --out` JSON), drawn and compared with.
    pub bound: Option<EvalSummary>,
    /// A seed whose final evaluation is below this share of the bound counts as failed.
    pub fail_share: f64,
}

/// The default of [`SeedsOptions::fail_share`]: a seed below 60% of the bound failed.
pub const FAIL_SHARE: f64 = 0.6;

/// What the seeds measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedsSummary {
    /// The config the runs were made from.
    pub config: String,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// The run folders, in seed order.
    pub runs: Vec<PathBuf>,
    /// Mean return of each run's final evaluation (`eval.json`); its `ci95` is Student's t
    /// over the seeds (kept for older summaries; `protocol` is the reported one).
    pub final_eval: Stat,
    /// The final evaluations over the seeds as the protocol reports them: mean, median and IQM
    /// with stratified-bootstrap 95% intervals, and the failed seeds (below `fail_share` of the
    /// bound, when there is one).
    pub protocol: SeedStats,
    /// Per summarised episode count `k`: the periodic evaluation return logged at episode `k`
    /// (NaN where none was), and the mean training return over episodes `k - 4 ..= k`.
    pub at: Vec<AtEpisode>,
    /// Wall time of each run (seconds, from its metrics).
    pub wall_s: Stat,
    /// The true-dynamics bound's mean return, when given.
    pub bound: Option<f64>,
}

/// The returns around one episode count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtEpisode {
    /// The episode count (seed episodes included, as in `metrics.csv`).
    pub episode: usize,
    /// Periodic evaluation return at that episode.
    pub eval: Stat,
    /// Training return (with exploration noise), mean of the last 5 episodes up to it.
    pub train: Stat,
}

fn col(run: &RunSummary, name: &str) -> Result<usize> {
    crate::report::METRICS
        .iter()
        .position(|c| *c == name)
        .with_context(|| format!("{}: no column {name}", run.dir.display()))
}

/// Runs the seeds (skipping none: an existing run folder follows `train_args`' `--resume` /
/// `--overwrite`, else it is refused by `train`), then summarises them.
pub fn run_seeds(opts: &SeedsOptions) -> Result<SeedsSummary> {
    check_run_name(&opts.name)?;
    ensure!(
        opts.seeds.len() >= 2,
        "give at least two seeds (a result over one seed is an anecdote)"
    );
    check_seeds(&opts.seeds)?;
    ensure!(opts.jobs >= 1, "--jobs must be at least 1");
    let out = opts.runs_dir.join(format!("{}_seeds", opts.name));
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let exe = std::env::current_exe().context("locating the planet_dcem binary")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / opts.jobs.min(opts.seeds.len())).max(1);
    let mut pending: Vec<u64> = opts.seeds.iter().rev().copied().collect();
    let mut running: Vec<(u64, Child)> = Vec::new();
    let mut failed = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < opts.jobs
            && let Some(seed) = pending.pop()
        {
            let log = logs.join(format!("seed{seed}.log"));
            let file = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let args = child_args(opts, seed);
            let child = Command::new(&exe)
                .arg("train")
                .arg("--config")
                .arg(&opts.config)
                .arg("--runs-dir")
                .arg(&opts.runs_dir)
                .args(["--name", &run_name(&opts.name, seed)])
                .args(["--seed", &seed.to_string(), "--quiet"])
                .args(&args)
                .env("RAYON_NUM_THREADS", threads.to_string())
                .stdout(Stdio::from(file.try_clone()?))
                .stderr(Stdio::from(file))
                .spawn()
                .with_context(|| format!("starting seed {seed}"))?;
            eprintln!(
                "seed {seed}: started ({threads} threads), log {}",
                log.display()
            );
            running.push((seed, child));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut still = Vec::new();
        for (seed, mut child) in running {
            match child.try_wait()? {
                Some(status) if status.success() => eprintln!("seed {seed}: done"),
                Some(status) => {
                    eprintln!("seed {seed}: failed ({status}); see its log");
                    failed.push(seed);
                }
                None => still.push((seed, child)),
            }
        }
        running = still;
    }
    if !failed.is_empty() {
        bail!(
            "seeds {failed:?} failed; their logs are in {} (the other runs are kept: rerun with \
             --resume to continue them)",
            logs.display()
        );
    }
    let dirs: Vec<PathBuf> = opts
        .seeds
        .iter()
        .map(|&s| opts.runs_dir.join(run_name(&opts.name, s)))
        .collect();
    summarise(
        &opts.config.display().to_string(),
        &opts.seeds,
        &dirs,
        &opts.at,
        opts.bound.as_ref(),
        opts.fail_share,
        &out,
    )
}

/// The extra `train` arguments of one seed: with `--resume`, a seed whose run folder does not
/// exist yet (a seeds command stopped before it started) starts instead.
fn child_args(opts: &SeedsOptions, seed: u64) -> Vec<String> {
    let dir = opts.runs_dir.join(run_name(&opts.name, seed));
    let started = dir
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    opts.train_args
        .iter()
        .filter(|a| started || a.as_str() != "--resume")
        .cloned()
        .collect()
}

/// The run folder name of one seed.
pub fn run_name(name: &str, seed: u64) -> String {
    format!("{name}_s{seed}")
}

/// Reads the finished runs `dirs` (one per seed) and writes `summary.json`, `summary.md`,
/// `learning_curves.png` and `performance_profile.png` into `out`; with a bound, a seed below
/// `fail_share` of it counts as failed.
pub fn summarise(
    config: &str,
    seeds: &[u64],
    dirs: &[PathBuf],
    at: &[usize],
    bound: Option<&EvalSummary>,
    fail_share: f64,
    out: &Path,
) -> Result<SeedsSummary> {
    ensure!(
        fail_share.is_finite() && (0.0..=1.0).contains(&fail_share),
        "the failure share must be in [0, 1], got {fail_share}"
    );
    let runs = dirs
        .iter()
        .map(|d| load_run(d).with_context(|| format!("reading {}", d.display())))
        .collect::<Result<Vec<_>>>()?;
    let mut finals = Vec::new();
    for r in &runs {
        let e = r.eval.as_ref().with_context(|| {
            format!(
                "{} has no eval.json: the run did not finish (resume it)",
                r.dir.display()
            )
        })?;
        finals.push(e.mean);
    }
    // Episode counts no run reached are left out.
    let mut longest = 0;
    for r in &runs {
        let ep = col(r, "episode")?;
        longest = longest.max(r.rows.last().map_or(0, |row| row[ep] as usize));
    }
    let mut at_rows = Vec::new();
    for &k in at.iter().filter(|&&k| k <= longest) {
        let (mut ev, mut tr) = (Vec::new(), Vec::new());
        for r in &runs {
            let (ep, ret, eval) = (
                col(r, "episode")?,
                col(r, "train/return")?,
                col(r, "eval/return")?,
            );
            let row = r.rows.iter().find(|row| row[ep] as usize == k);
            ev.push(row.map_or(f64::NAN, |row| row[eval]));
            let window: Vec<f64> = r
                .rows
                .iter()
                .filter(|row| (row[ep] as usize) <= k && (row[ep] as usize) + 5 > k)
                .map(|row| row[ret])
                .collect();
            tr.push(if window.is_empty() {
                f64::NAN
            } else {
                window.iter().sum::<f64>() / window.len() as f64
            });
        }
        at_rows.push(AtEpisode {
            episode: k,
            eval: Stat::of(ev),
            train: Stat::of(tr),
        });
    }
    let mut walls = Vec::new();
    for r in &runs {
        let w = col(r, "perf/wall_s")?;
        walls.push(r.rows.last().map_or(f64::NAN, |row| row[w]));
    }
    let fail = bound.map(|b| {
        (
            fail_share * b.mean,
            format!(
                "{:.0}% of the true-model bound {:.1}",
                100.0 * fail_share,
                b.mean
            ),
        )
    });
    let protocol = SeedStats::of(&finals, fail, &BootstrapOptions::default())?;
    let summary = SeedsSummary {
        config: config.to_string(),
        seeds: seeds.to_vec(),
        runs: dirs.to_vec(),
        protocol,
        final_eval: Stat::of(finals),
        at: at_rows,
        wall_s: Stat::of(walls),
        bound: bound.map(|b| b.mean),
    };
    write_summary(
        out,
        &summary,
        &table(&summary),
        Some(&protocol_table(&summary)),
    )?;
    plot(&runs, &summary, &out.join("learning_curves.png"))?;
    plot_profile(&summary, &out.join("performance_profile.png"))?;
    Ok(summary)
}

fn fmt_stat(s: &Stat) -> String {
    if s.ci95.is_finite() {
        format!("{:.1} +-{:.1}", s.mean, s.ci95)
    } else {
        format!("{:.1}", s.mean)
    }
}

/// The summary as a markdown table: one row per seed, then the mean with its 95% CI.
pub fn table(s: &SeedsSummary) -> String {
    let mut head = String::from("| seed | final evaluation |");
    let mut rule = String::from("|---|---|");
    for a in &s.at {
        head.push_str(&format!(
            " eval @ ep {k} | train @ ep {k} (last 5) |",
            k = a.episode
        ));
        rule.push_str("---|---|");
    }
    head.push_str(" wall s |");
    rule.push_str("---|");
    let mut out = format!("{head}\n{rule}\n");
    for (i, seed) in s.seeds.iter().enumerate() {
        out.push_str(&format!("| {seed} | {:.1} |", s.final_eval.values[i]));
        for a in &s.at {
            out.push_str(&format!(
                " {:.1} | {:.1} |",
                a.eval.values[i], a.train.values[i]
            ));
        }
        out.push_str(&format!(" {:.0} |\n", s.wall_s.values[i]));
    }
    out.push_str(&format!(
        "| mean (95% CI, {} seeds) | {} |",
        s.seeds.len(),
        fmt_stat(&s.final_eval)
    ));
    for a in &s.at {
        out.push_str(&format!(
            " {} | {} |",
            fmt_stat(&a.eval),
            fmt_stat(&a.train)
        ));
    }
    out.push_str(&format!(" {:.0} |\n", s.wall_s.mean));
    out.push_str(&format!(
        "\nFinal evaluation over the {} seeds (each seed's mean over its final-evaluation \
         episodes, from the fixed final-evaluation start states):\n\n{}",
        s.seeds.len(),
        s.protocol.markdown(1)
    ));
    if let Some(b) = s.bound {
        out.push_str(&format!(
            "\nTrue-dynamics bound: {b:.1}; mean {:.0}%, median {:.0}%, IQM {:.0}% of it.\n",
            100.0 * s.protocol.mean.point / b,
            100.0 * s.protocol.median.point / b,
            100.0 * s.protocol.iqm.point / b,
        ));
    }
    out.push_str("\nThe per-episode columns' +- are Student-t 95% intervals over the seeds.\n");
    out
}

/// The protocol's table alone (what the README quotes): the final evaluations' mean, median and
/// IQM with their intervals and the failed seeds, with their share of the bound.
pub fn protocol_table(s: &SeedsSummary) -> String {
    let p = &s.protocol;
    let seeds: Vec<String> = s.seeds.iter().map(u64::to_string).collect();
    let pct = |v: f64| match s.bound {
        Some(b) => format!(" ({:.0}%)", 100.0 * v / b),
        None => String::new(),
    };
    let mut md = format!(
        "| seeds | mean | median | IQM | failed seeds |\n|---|---|---|---|---|\n\
         | {} | {}{} | {}{} | {}{} | {} |\n",
        seeds.join(", "),
        p.mean.fmt(1),
        pct(p.mean.point),
        p.median.fmt(1),
        pct(p.median.point),
        p.iqm.fmt(1),
        pct(p.iqm.point),
        match &p.fail_rule {
            Some(rule) => format!("{} (below {rule})", p.failed),
            None => "-".into(),
        }
    );
    md.push_str(&format!("\n{}.", p.method));
    if let Some(b) = s.bound {
        md.push_str(&format!(" Percentages: of the true-model bound {b:.1}."));
    }
    md.push('\n');
    md
}

/// The final evaluations' performance profile, with the bound and the failure threshold
/// marked.
fn plot_profile(s: &SeedsSummary, path: &Path) -> Result<()> {
    let v = s.final_eval.values.clone();
    let (lo, hi) = v
        .iter()
        .chain(s.bound.iter())
        .chain(s.protocol.fail_below.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    let pad = 0.05 * (hi - lo).max(1.0);
    let taus = protocol::taus(lo - pad, hi + pad, 200);
    let profile = protocol::performance_profile(&[v], &taus, &BootstrapOptions::default())?;
    let mut marks = Vec::new();
    if let Some(b) = s.bound {
        marks.push((format!("true-model bound {b:.1}"), b));
    }
    if let Some(t) = s.protocol.fail_below {
        marks.push((format!("failure threshold {t:.1}"), t));
    }
    protocol::plot_performance_profiles(
        path,
        &format!(
            "final evaluation over {} seeds: performance profile (95% bootstrap band)",
            s.seeds.len()
        ),
        "final evaluation return",
        &[(s.config.clone(), profile)],
        &marks,
    )?;
    Ok(())
}

/// A mean curve `(x, y)` and its band `(x, low, high)`.
type Banded = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

/// Mean and 95% band over the seeds of one column against the episode.
fn band(runs: &[RunSummary], name: &str) -> Result<Banded> {
    let (mut line, mut band) = (Vec::new(), Vec::new());
    let Some(first) = runs.first() else {
        return Ok((line, band));
    };
    let (ep, c) = (col(first, "episode")?, col(first, name)?);
    for row in &first.rows {
        let k = row[ep];
        let vals: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.rows.iter().find(|x| x[ep] == k).map(|x| x[c]))
            .collect();
        let s = Stat::of(vals);
        if s.mean.is_finite() {
            line.push((k, s.mean));
            if s.ci95.is_finite() {
                band.push((k, s.mean - s.ci95, s.mean + s.ci95));
            }
        }
    }
    Ok((line, band))
}

fn plot(runs: &[RunSummary], s: &SeedsSummary, path: &Path) -> Result<()> {
    let (train, train_band) = band(runs, "train/return")?;
    let (eval, eval_band) = band(runs, "eval/return")?;
    let symlog_y = match runs.first() {
        Some(r) => {
            let c = col(r, "train/return")?;
            has_outliers(
                runs.iter()
                    .flat_map(|r| r.rows.iter().map(move |row| row[c])),
            )
        }
        None => false,
    };
    let mut chart = LineChart {
        title: format!(
            "{}: return over {} seeds (mean, 95% CI band)",
            runs.first().map_or(String::new(), |r| r.config.env.name()),
            s.seeds.len()
        ),
        x_label: "episode".into(),
        y_label: "return".into(),
        symlog_y,
        series: vec![
            Series::new("training (with noise)", train)
                .with_color(0)
                .with_band(train_band),
            Series::new("evaluation", eval)
                .with_color(1)
                .with_band(eval_band),
        ],
        ..Default::default()
    };
    if let Some(b) = s.bound {
        chart
            .hlines
            .push((b, format!("CEM, true dynamics ({b:.1})")));
    }
    line_charts(path, &[chart], (820, 480))?;
    Ok(())
}
