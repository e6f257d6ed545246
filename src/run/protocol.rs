//! Aggregate statistics over training seeds as rliable (Agarwal et al., NeurIPS 2021)
//! computes them: the mean, the median and the interquartile mean (IQM, the 25% trimmed mean),
//! each with a stratified-bootstrap percentile confidence interval; the count of failed runs;
//! and performance profiles (the share of runs scoring above each threshold) with bootstrap
//! bands.
//!
//! Scores are grouped by task (`tasks[t][r]`: run `r` of task `t`, tasks may have different
//! run counts). The bootstrap is stratified as rliable's `StratifiedBootstrap`: every resample
//! draws each task's runs with replacement from that task's runs alone. The IQM pools all runs
//! of all tasks, as rliable's `aggregate_iqm` (`scipy.stats.trim_mean(.., 0.25, axis=None)`:
//! with `n` scores, `floor(n / 4)` are cut from each end). The mean is the mean over tasks of
//! the per-task means (rliable's `aggregate_mean`). The median is the median of every run's
//! score pooled (rliable's `aggregate_median` takes the median of per-task *means*, which for
//! one task is the mean again; over seeds of one task the median of the runs is the useful
//! one). Intervals are the bootstrap's percentiles with numpy's default linear interpolation.
//!
//! These are for scores over *independent runs* (training seeds). An interval over the few
//! evaluation episodes of one run is a different thing: [`crate::run::Stat`] gives it with
//! Student's t.

use std::path::Path;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An aggregate of scores over runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Mean over tasks of the per-task mean.
    Mean,
    /// Median of all runs' scores.
    Median,
    /// Interquartile mean: the mean of all runs' scores after `floor(n / 4)` are cut from each
    /// end of their sorted order.
    Iqm,
}

impl Aggregate {
    /// The aggregate of `tasks[t][r]`; NaN when there are no scores.
    pub fn of(self, tasks: &[Vec<f64>]) -> f64 {
        match self {
            Self::Mean => {
                let means: Vec<f64> = tasks
                    .iter()
                    .filter(|t| !t.is_empty())
                    .map(|t| mean(t))
                    .collect();
                mean(&means)
            }
            Self::Median => {
                let mut all: Vec<f64> = tasks.iter().flatten().copied().collect();
                median_sorted(sort(&mut all))
            }
            Self::Iqm => {
                let mut all: Vec<f64> = tasks.iter().flatten().copied().collect();
                iqm_sorted(sort(&mut all))
            }
        }
    }

    /// The name a table prints.
    pub fn label(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Median => "median",
            Self::Iqm => "IQM",
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

fn sort(v: &mut [f64]) -> &[f64] {
    v.sort_by(f64::total_cmp);
    v
}

fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

fn iqm_sorted(v: &[f64]) -> f64 {
    let cut = v.len() / 4;
    mean(&v[cut..v.len() - cut])
}

/// numpy's `percentile(.., q)` with linear interpolation, of sorted values (`q` in `[0, 1]`).
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let h = (v.len() - 1) as f64 * q;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (v[hi] - v[lo]) * frac
}

/// How intervals are bootstrapped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapOptions {
    /// Bootstrap resamples (rliable: 50,000 for intervals, 2,000 for profiles).
    pub resamples: usize,
    /// Coverage of the interval (0.95: the 2.5th and 97.5th percentiles).
    pub confidence: f64,
    /// Seed of the resampling (intervals are reproducible).
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            resamples: 10_000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

impl BootstrapOptions {
    fn check(&self) -> Result<()> {
        if self.resamples < 100 {
            return Err(Error::option(
                "bootstrap resamples",
                format!("must be at least 100, got {}", self.resamples),
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::option(
                "bootstrap confidence",
                format!("must be in (0, 1), got {}", self.confidence),
            ));
        }
        Ok(())
    }
}

/// A point estimate with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The estimate on the scores themselves.
    pub point: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
}

impl Interval {
    /// `point [lo, hi]` with `digits` decimals.
    pub fn fmt(&self, digits: usize) -> String {
        format!(
            "{:.d$} [{:.d$}, {:.d$}]",
            self.point,
            self.lo,
            self.hi,
            d = digits
        )
    }
}

fn check_tasks(tasks: &[Vec<f64>]) -> Result<()> {
    if tasks.is_empty() || tasks.iter().any(|t| t.is_empty()) {
        return Err(Error::option(
            "scores",
            "need at least one task with at least one run each",
        ));
    }
    if let Some(v) = tasks.iter().flatten().find(|v| !v.is_finite()) {
        return Err(Error::option(
            "scores",
            format!(
                "must be finite, got {v} (a failed or missing run: give it a score or leave it out and count it)"
            ),
        ));
    }
    Ok(())
}

/// Draws stratified resamples of `tasks` and hands each to `f`.
fn resample(tasks: &[Vec<f64>], opts: &BootstrapOptions, mut f: impl FnMut(&[Vec<f64>])) {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut draw: Vec<Vec<f64>> = tasks.iter().map(|t| vec![0.0; t.len()]).collect();
    for _ in 0..opts.resamples {
        for (d, t) in draw.iter_mut().zip(tasks) {
            for x in d.iter_mut() {
                *x = t[rng.random_range(0..t.len())];
            }
        }
        f(&draw);
    }
}

/// `agg` of `tasks` with its stratified-bootstrap percentile interval.
pub fn interval(agg: Aggregate, tasks: &[Vec<f64>], opts: &BootstrapOptions) -> Result<Interval> {
    check_tasks(tasks)?;
    opts.check()?;
    let mut stats = Vec::with_capacity(opts.resamples);
    resample(tasks, opts, |d| stats.push(agg.of(d)));
    let stats = sort(&mut stats);
    let alpha = 1.0 - opts.confidence;
    Ok(Interval {
        point: agg.of(tasks),
        lo: quantile_sorted(stats, alpha / 2.0),
        hi: quantile_sorted(stats, 1.0 - alpha / 2.0),
    })
}

/// The protocol's summary of one score per training seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedStats {
    /// Runs summarised.
    pub runs: usize,
    /// Mean over the runs, with its interval.
    pub mean: Interval,
    /// Median over the runs, with its interval.
    pub median: Interval,
    /// Interquartile mean over the runs, with its interval.
    pub iqm: Interval,
    /// The score below which a run counts as failed (None: no threshold was stated).
    pub fail_below: Option<f64>,
    /// How the threshold was stated, e.g. "60% of the true-model bound 77.1".
    pub fail_rule: Option<String>,
    /// Runs scoring below `fail_below`.
    pub failed: usize,
    /// How the intervals were made.
    pub method: String,
}

impl SeedStats {
    /// The statistics of one score per run (e.g. per training seed), failed runs counted below
    /// `fail`'s threshold (with the words that state it).
    pub fn of(
        scores: &[f64],
        fail: Option<(f64, String)>,
        opts: &BootstrapOptions,
    ) -> Result<Self> {
        let tasks = vec![scores.to_vec()];
        let failed = fail
            .as_ref()
            .map_or(0, |(t, _)| scores.iter().filter(|s| **s < *t).count());
        Ok(Self {
            runs: scores.len(),
            mean: interval(Aggregate::Mean, &tasks, opts)?,
            median: interval(Aggregate::Median, &tasks, opts)?,
            iqm: interval(Aggregate::Iqm, &tasks, opts)?,
            fail_below: fail.as_ref().map(|f| f.0),
            fail_rule: fail.map(|f| f.1),
            failed,
            method: method_words(opts),
        })
    }

    /// A markdown table of the three aggregates and the failed runs (with a sentence on how
    /// the intervals were made).
    pub fn markdown(&self, digits: usize) -> String {
        let failed = match &self.fail_rule {
            Some(rule) => format!("{} of {} (below {rule})", self.failed, self.runs),
            None => "no threshold stated".into(),
        };
        format!(
            "| runs | mean | median | IQM | failed runs |\n|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {failed} |\n\n{}.\n",
            self.runs,
            self.mean.fmt(digits),
            self.median.fmt(digits),
            self.iqm.fmt(digits),
            self.method
        )
    }
}

fn method_words(opts: &BootstrapOptions) -> String {
    format!(
        "Intervals: {:.0}% stratified-bootstrap percentile intervals over the runs \
         ({} resamples, seed {}), as rliable computes them",
        100.0 * opts.confidence,
        opts.resamples,
        opts.seed
    )
}

/// One point of a performance profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfilePoint {
    /// The threshold.
    pub tau: f64,
    /// Share of runs scoring above `tau` (mean over tasks of each task's share), with its
    /// interval.
    pub share: Interval,
}

/// Share of `tasks`' runs scoring strictly above `tau` (rliable's score distribution).
fn share_above(tasks: &[Vec<f64>], tau: f64) -> f64 {
    let per: Vec<f64> = tasks
        .iter()
        .map(|t| t.iter().filter(|s| **s > tau).count() as f64 / t.len() as f64)
        .collect();
    mean(&per)
}

/// The performance profile of `tasks` at each of `taus`, with stratified-bootstrap bands.
pub fn performance_profile(
    tasks: &[Vec<f64>],
    taus: &[f64],
    opts: &BootstrapOptions,
) -> Result<Vec<ProfilePoint>> {
    check_tasks(tasks)?;
    opts.check()?;
    let mut stats: Vec<Vec<f64>> = vec![Vec::with_capacity(opts.resamples); taus.len()];
    resample(tasks, opts, |d| {
        for (s, tau) in stats.iter_mut().zip(taus) {
            s.push(share_above(d, *tau));
        }
    });
    let alpha = 1.0 - opts.confidence;
    Ok(taus
        .iter()
        .zip(&mut stats)
        .map(|(tau, s)| {
            let s = sort(s);
            ProfilePoint {
                tau: *tau,
                share: Interval {
                    point: share_above(tasks, *tau),
                    lo: quantile_sorted(s, alpha / 2.0),
                    hi: quantile_sorted(s, 1.0 - alpha / 2.0),
                },
            }
        })
        .collect())
}

/// `n` thresholds evenly from `lo` to `hi`.
pub fn taus(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Draws performance profiles (one line with its band per named profile) as a PNG: the share
/// of runs scoring above each threshold, `x_label` naming the score. `marks` are vertical
/// reference lines (dashed; e.g. the bound), each with its label.
pub fn plot_performance_profiles(
    path: &Path,
    title: &str,
    x_label: &str,
    profiles: &[(String, Vec<ProfilePoint>)],
    marks: &[(String, f64)],
) -> Result<()> {
    use super::plot::{LineChart, Series, line_chart};
    let series: Vec<Series> = profiles
        .iter()
        .enumerate()
        .map(|(i, (name, p))| {
            Series::new(
                name.clone(),
                p.iter().map(|q| (q.tau, q.share.point)).collect(),
            )
            .with_band(p.iter().map(|q| (q.tau, q.share.lo, q.share.hi)).collect())
            .with_color(i)
        })
        .collect();
    let chart = LineChart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "share of runs scoring above".into(),
        series,
        vlines: marks.iter().map(|(name, x)| (*x, name.clone())).collect(),
        ..LineChart::default()
    };
    line_chart(path, &chart)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn iqm_cuts_a_quarter_from_each_end_as_scipy_trim_mean() {
        // n = 10: floor(2.5) = 2 cut from each end, the mean of the middle 6.
        let v: Vec<f64> = vec![9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0, 100.0];
        let iqm = Aggregate::Iqm.of(std::slice::from_ref(&v));
        assert!((iqm - (3.0 + 4.0 + 5.0 + 6.0 + 7.0 + 8.0) / 6.0).abs() < 1e-12);
        // n = 3: nothing cut.
        assert!((Aggregate::Iqm.of(&[vec![1.0, 2.0, 9.0]]) - 4.0).abs() < 1e-12);
        assert!((Aggregate::Median.of(&[v]) - 5.5).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_linearly_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile_sorted(&v, 0.025) - 1.075).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.975) - 3.925).abs() < 1e-12);
        assert_eq!(quantile_sorted(&v, 1.0), 4.0);
    }

    #[test]
    fn intervals_hold_the_point_are_seeded_and_shrink_with_more_runs() {
        let opts = BootstrapOptions::default();
        let few: Vec<f64> = (0..5).map(|i| (i * 7 % 5) as f64).collect();
        let many: Vec<f64> = (0..50).map(|i| (i * 7 % 5) as f64).collect();
        for agg in [Aggregate::Mean, Aggregate::Median, Aggregate::Iqm] {
            let a = interval(agg, std::slice::from_ref(&few), &opts).unwrap();
            assert!(a.lo <= a.point && a.point <= a.hi, "{agg:?}: {a:?}");
            assert_eq!(a, interval(agg, std::slice::from_ref(&few), &opts).unwrap());
            let b = interval(agg, std::slice::from_ref(&many), &opts).unwrap();
            assert!(b.hi - b.lo < a.hi - a.lo, "{agg:?}: {b:?} vs {a:?}");
        }
    }

    #[test]
    fn stratified_resamples_stay_within_their_task() {
        // Two tasks far apart: every resample keeps 3 runs of each, so the mean of task means
        // can never leave the range the tasks' own extremes allow.
        let tasks = vec![vec![0.0, 1.0, 2.0], vec![100.0, 101.0, 102.0]];
        let i = interval(Aggregate::Mean, &tasks, &BootstrapOptions::default()).unwrap();
        assert!((i.point - 51.0).abs() < 1e-12);
        assert!(i.lo >= 50.0 && i.hi <= 52.0, "{i:?}");
    }

    #[test]
    fn failed_runs_are_counted_below_the_stated_threshold() {
        let s = SeedStats::of(
            &[10.0, 50.0, 70.0, 80.0],
            Some((60.0, "60% of 100".into())),
            &BootstrapOptions::default(),
        )
        .unwrap();
        assert_eq!((s.runs, s.failed), (4, 2));
        assert!(s.markdown(1).contains("2 of 4 (below 60% of 100)"));
    }

    #[test]
    fn profiles_fall_from_one_to_zero() {
        let p = performance_profile(
            &[vec![1.0, 2.0, 3.0, 4.0]],
            &[0.0, 2.5, 5.0],
            &BootstrapOptions::default(),
        )
        .unwrap();
        let shares: Vec<f64> = p.iter().map(|q| q.share.point).collect();
        assert_eq!(shares, vec![1.0, 0.5, 0.0]);
        assert!(p[1].share.lo < 0.5 && p[1].share.hi > 0.5);
    }

    #[test]
    fn bad_scores_and_options_are_refused_with_the_reason() {
        let opts = BootstrapOptions::default();
        let e = interval(Aggregate::Mean, &[vec![1.0, f64::NAN]], &opts).unwrap_err();
        assert!(e.to_string().contains("finite"), "{e}");
        assert!(interval(Aggregate::Mean, &[vec![]], &opts).is_err());
        let bad = BootstrapOptions {
            resamples: 10,
            ..opts
        };
        let e = interval(Aggregate::Mean, &[vec![1.0]], &bad).unwrap_err();
        assert!(e.to_string().contains("resamples"), "{e}");
    }
}
