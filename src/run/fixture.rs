//! Behaviour fixtures: a short, seeded run's `metrics.csv` kept in the repository and compared
//! with a fresh run of the same config, column by column and bit for bit, so that a change meant
//! to keep behaviour (a refactor) is checked to have kept it.
//!
//! Wall-clock columns cannot be compared and are named in [`FixtureCheck::ignore`]; a column
//! renamed since the fixture was recorded is mapped in [`FixtureCheck::renamed`] (old name to
//! new), which documents the rename where it is checked. Setting the environment variable
//! `DCEM_RECORD_FIXTURES=1` makes [`FixtureCheck::check`] write the fresh file over the fixture
//! instead of comparing (to record fixtures on purpose, never in CI).

use std::path::Path;

use super::{MetricsCsv, atomic_write, io_err};
use crate::error::{Error, Result};

/// How a fresh metrics file is compared with its fixture.
#[derive(Clone, Debug, Default)]
pub struct FixtureCheck<'a> {
    /// Fixture columns not compared (wall-clock times, rates).
    pub ignore: &'a [&'a str],
    /// `(name in the fixture, name now)` for columns renamed since the fixture was recorded.
    pub renamed: &'a [(&'a str, &'a str)],
}

impl FixtureCheck<'_> {
    /// Compares the metrics file `actual` with the fixture `expected`: every fixture column
    /// but the ignored ones must exist in `actual` (under its new name if renamed) with the same
    /// values, bit for bit (NaN equals NaN), in the same number of rows. With
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
            for (row, (w, h)) in want.iter().zip(&have).enumerate() {
                let (a, b) = (w[i], h[j]);
                if !(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())) {
                    return Err(Error::Data(format!(
                        "{}: column `{now}` row {row} is {b}, the fixture {} has {a}",
                        actual.display(),
                        expected.display()
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
        };
        check.compare(&fixture, &same).unwrap();
        let err = check.compare(&fixture, &other).unwrap_err().to_string();
        assert!(err.contains("loss/model") && err.contains("row 1"), "{err}");
        let unmapped = FixtureCheck {
            ignore: &["wall_s"],
            renamed: &[],
        };
        assert!(unmapped.compare(&fixture, &same).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
