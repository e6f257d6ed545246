//! Behaviour fixtures: a short, seeded run's `metrics.csv` kept in the repository and compared
//! with a fresh run of the same config, column by column, so that a change meant to keep
//! behaviour (a refactor) is checked to have kept it.
//!
//! The comparison allows a [`Tolerance`]: the same binary gives different float results on
//! different CPUs (the matrix kernels pick their instructions, FMA or not and the vector width,
//! when they run, so sums round differently), and a seeded run's metrics drift from there. Measured
//! between two CPU models on the shipped fixtures: at most 9e-5 of a column's largest value, but
//! on two near-cancelling columns (phase 3's policy loss and approximate KL: 2.6e-3 and 9e-4 of
//! theirs, 1.3e-6 and 1.6e-9 in absolute terms). [`Tolerance::ACROSS_CPUS`] allows 1e-3 of the
//! column's largest value plus 1e-5, about 10 and 8 times those; a change of behaviour (another
//! seed, a changed update) moves values by far more.
//! [`Tolerance::EXACT`] asks for the same bits.
//!
//! Wall-clock columns cannot be compared and are named in [`FixtureCheck::ignore`]; a column
//! renamed since the fixture was recorded is mapped in [`FixtureCheck::renamed`] (old name to
//! new), which documents the rename where it is checked. Setting the environment variable
//! `DCEM_RECORD_FIXTURES=1` makes [`FixtureCheck::check`] write the fresh file over the fixture
//! instead of comparing (to record fixtures on purpose, never in CI).

use std::path::Path;

use super::{MetricsCsv, atomic_write, io_err};
use crate::error::{Error, Result};

/// How far a fresh value may be from its fixture value: `|fresh - fixture| <= abs + rel *
/// scale`, where `scale` is the largest of `|fixture|`, `|fresh|` and the largest finite `|value|`
/// of the fixture's column. Equal bits (equal infinities included) and NaN against NaN always
/// pass; a NaN or an infinity against anything else always fails.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Fraction of the scale allowed.
    pub rel: f64,
    /// Absolute slack, for columns whose values cancel to near zero.
    pub abs: f64,
}

impl Tolerance {
    /// The same bits.
    pub const EXACT: Self = Self { rel: 0.0, abs: 0.0 };
    /// What the same run may differ by between CPU models (see the module docs).
    pub const ACROSS_CPUS: Self = Self {
        rel: 1e-3,
        abs: 1e-5,
    };

    fn allows(self, fixture: f64, fresh: f64, scale: f64) -> bool {
        if fixture.to_bits() == fresh.to_bits() || (fixture.is_nan() && fresh.is_nan()) {
            return true;
        }
        if !(fixture.is_finite() && fresh.is_finite()) {
            return false;
        }
        let scale = scale.max(fixture.abs()).max(fresh.abs());
        (fresh - fixture).abs() <= self.abs + self.rel * scale
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::ACROSS_CPUS
    }
}

/// How a fresh metrics file is compared with its fixture.
#[derive(Clone, Debug, Default)]
pub struct FixtureCheck<'a> {
    /// Fixture columns not compared (wall-clock times, rates).
    pub ignore: &'a [&'a str],
    /// `(name in the fixture, name now)` for columns renamed since the fixture was recorded.
    pub renamed: &'a [(&'a str, &'a str)],
    /// How far values may be from the fixture's.
    pub tolerance: Tolerance,
}

impl FixtureCheck<'_> {
    /// Compares the metrics file `actual` with the fixture `expected`: every fixture column
    /// but the ignored ones must exist in `actual` (under its new name if renamed) with the same
    /// values within [`FixtureCheck::tolerance`], in the same number of rows. With
    /// `DCEM_RECORD_FIXTURES=1` it copies `actual` to `expected` instead and returns `Ok`.
    pub fn check(&self, expected: &Path, actual: &Path) -> Result<()> {
        if std::env::var("DCEM_RECORD_FIXTURES").as_deref() == Ok("1") {
            let bytes = std::fs::read(actual).map_err(io_err(actual))?;
            if let Some(dir) = expected.parent() {
                std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            }
            return atomic_write(expected, &bytes);
        }
        self.compare(expected, actual)
    }

    /// [`FixtureCheck::check`] for the per-episode returns of an evaluation summary (an
    /// `eval.json`, [`EvalSummary`](super::EvalSummary)), against a fixture with the columns
    /// `episode,return`.
    pub fn check_returns(&self, expected: &Path, summary: &Path) -> Result<()> {
        let eval = super::EvalSummary::load(summary)?;
        let mut csv = String::from("episode,return\n");
        for (i, r) in eval.returns.iter().enumerate() {
            csv.push_str(&format!("{i},{r}\n"));
        }
        let actual = summary.with_extension("returns.csv");
        atomic_write(&actual, csv.as_bytes())?;
        self.check(expected, &actual)
    }

    /// The comparison of [`FixtureCheck::check`], never recording.
    pub fn compare(&self, expected: &Path, actual: &Path) -> Result<()> {
        let (want_cols, want) = MetricsCsv::read(expected)?;
        let (have_cols, have) = MetricsCsv::read(actual)?;
        if want.len() != have.len() {
            return Err(Error::Data(format!(
                "{} has {} rows, the fixture {} has {}",
                actual.display(),
                have.len(),
                expected.display(),
                want.len()
            )));
        }
        let mut compared = 0;
        for (i, name) in want_cols.iter().enumerate() {
            if self.ignore.contains(&name.as_str()) {
                continue;
            }
            let now = self
                .renamed
                .iter()
                .find(|(old, _)| old == name)
                .map_or(name.as_str(), |(_, new)| new);
            let j = have_cols.iter().position(|c| c == now).ok_or_else(|| {
                Error::Data(format!(
                    "{} has no column `{now}` (fixture column `{name}`)",
                    actual.display()
                ))
            })?;
            let scale = want
                .iter()
                .map(|w| w[i].abs())
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max);
            for (row, (w, h)) in want.iter().zip(&have).enumerate() {
                let (a, b) = (w[i], h[j]);
                if !self.tolerance.allows(a, b, scale) {
                    return Err(Error::Data(format!(
                        "{}: column `{now}` row {row} is {b}, the fixture {} has {a} (allowed: \
                         {} + {} x {})",
                        actual.display(),
                        expected.display(),
                        self.tolerance.abs,
                        self.tolerance.rel,
                        scale.max(a.abs()).max(b.abs())
                    )));
                }
            }
            compared += 1;
        }
        if compared == 0 {
            return Err(Error::Data(format!(
                "{}: no column left to compare",
                expected.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn equal_renamed_and_ignored_columns_pass_and_a_changed_value_fails() {
        let dir = std::env::temp_dir().join(format!("dcem-fixture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = write(&dir, "want.csv", "step,loss,wall_s\n1,0.5,3\n2,NaN,4\n");
        let same = write(
            &dir,
            "same.csv",
            "step,loss/model,wall_s\n1,0.5,9\n2,NaN,1\n",
        );
        let other = write(
            &dir,
            "other.csv",
            "step,loss/model,wall_s\n1,0.5,9\n2,0.25,1\n",
        );
        let check = FixtureCheck {
            ignore: &["wall_s"],
            renamed: &[("loss", "loss/model")],
            tolerance: Tolerance::EXACT,
        };
        check.compare(&fixture, &same).unwrap();
        let err = check.compare(&fixture, &other).unwrap_err().to_string();
        assert!(err.contains("loss/model") && err.contains("row 1"), "{err}");
        let unmapped = FixtureCheck {
            ignore: &["wall_s"],
            renamed: &[],
            tolerance: Tolerance::EXACT,
        };
        assert!(unmapped.compare(&fixture, &same).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tolerance_takes_float_drift_and_refuses_changes() {
        let t = Tolerance::ACROSS_CPUS;
        // Rounding drift, relative to the column's scale.
        assert!(t.allows(100.0, 100.0 + 1e-4, 100.0));
        assert!(t.allows(0.01, 0.01 + 1e-3, 1000.0));
        // Near-cancelling values: the absolute slack.
        assert!(t.allows(1e-7, -2e-6, 1e-6));
        // Changed values, NaN and infinities.
        assert!(!t.allows(100.0, 101.0, 100.0));
        assert!(!t.allows(1e-3, 2e-3, 1e-3));
        assert!(!t.allows(1.0, f64::NAN, 1.0));
        assert!(!t.allows(f64::INFINITY, 1e300, 1e300));
        assert!(t.allows(f64::NAN, f64::NAN, 0.0));
        assert!(t.allows(f64::NEG_INFINITY, f64::NEG_INFINITY, 0.0));
        assert!(!Tolerance::EXACT.allows(1.0, 1.0 + f64::EPSILON, 1.0));
    }
}
