//! An append-only CSV of metrics, one row per logged step, flushed row by row.
//!
//! # Metric names
//!
//! Every agent's `metrics.csv` names its columns in one scheme, so that runs of different
//! agents read alike:
//!
//! | name | what |
//! |---|---|
//! | first column: `episode`, `iteration`, `update`, `ppo_step` | the row's step counter |
//! | `env_steps` | environment steps so far (after action repeat: steps of the simulator) |
//! | `train/...` | measured on the training data or episodes: `train/return` (episode return with exploration), `train/cost`, `train/lr`, `train/std`, `train/updates`, `train/episodes`, `train/seed_episode` |
//! | `eval/...` | measured without exploration or on held-out data: `eval/return`, `eval/cost`, `eval/best_cost`, `eval/train_mse` |
//! | `loss/...` | optimised quantities and their diagnostics: `loss/model`, `loss/obs`, `loss/reward`, `loss/kl`, `loss/decoder_cost`, `loss/policy`, `loss/value`, `loss/entropy`, `loss/approx_kl`, `loss/clipfrac`, `loss/explained_variance`, `loss/grad_norm` |
//! | `perf/...` | wall-clock measurements (never compared between runs): `perf/plan_ms`, `perf/update_ms`, `perf/iteration_ms`, `perf/env_steps_per_s`, `perf/rollout_s`, `perf/env_s`, `perf/update_s`, `perf/forward_s`, `perf/backward_s`, `perf/optim_s`, `perf/wall_s` |
//!
//! Values are per row: a mean over the steps since the previous row where the row covers
//! several (losses, costs), else the value at the row's step. NaN marks "not measured in this
//! row" (no evaluation, no update).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::{atomic_write, io_err};
use crate::error::{Error, Result};

/// A metrics file with a fixed header. The first column is the step counter.
#[derive(Debug)]
pub struct MetricsCsv {
    path: PathBuf,
    columns: Vec<String>,
    file: File,
}

impl MetricsCsv {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: impl Into<PathBuf>, columns: &[&str]) -> Result<Self> {
        let path = path.into();
        let header = format!("{}\n", columns.join(","));
        atomic_write(&path, header.as_bytes())?;
        Self::open_append(path, columns)
    }

    /// Reopens an existing file to continue a run from step `upto`: rows with a step above it
    /// (logged after the checkpoint being resumed) are dropped, the rest kept as they are. The
    /// header must match `columns`.
    pub fn resume(path: impl Into<PathBuf>, columns: &[&str], upto: f64) -> Result<Self> {
        let path = path.into();
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut lines = BufReader::new(file).lines();
        let header = lines
            .next()
            .transpose()
            .map_err(io_err(&path))?
            .unwrap_or_default();
        if header != columns.join(",") {
            return Err(Error::Config(format!(
                "{} has columns `{header}`, expected `{}`: it belongs to another kind of run",
                path.display(),
                columns.join(",")
            )));
        }
        let mut kept = format!("{header}\n");
        for line in lines {
            let line = line.map_err(io_err(&path))?;
            let step: f64 = line
                .split(',')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    Error::Data(format!("{}: unreadable row `{line}`", path.display()))
                })?;
            // A row cut short by a killed process has fewer fields: drop it with the rest.
            if step <= upto && line.split(',').count() == columns.len() {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        atomic_write(&path, kept.as_bytes())?;
        Self::open_append(path, columns)
    }

    fn open_append(path: PathBuf, columns: &[&str]) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            path,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            file,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one row (as many values as columns) and flushes it.
    pub fn append(&mut self, values: &[f64]) -> Result<()> {
        if values.len() != self.columns.len() {
            return Err(Error::shape(
                "metrics row",
                format!("{} values ({})", self.columns.len(), self.columns.join(",")),
                values.len(),
            ));
        }
        let row: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
        writeln!(self.file, "{}", row.join(",")).map_err(io_err(&self.path))?;
        self.file.flush().map_err(io_err(&self.path))
    }

    /// Appends one row given by name, in any order: each column takes the value named after it,
    /// a column without one is NaN ("not measured in this row"), and a name that is not a
    /// column (or is given twice) is an error naming it, so that no measurement is dropped.
    pub fn append_named(&mut self, values: &[(&str, f64)]) -> Result<()> {
        let row = named_row(&self.columns, values)?;
        self.append(&row)
    }

    /// Reads a metrics file: the header and the rows.
    pub fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f64>())
                    .collect::<std::result::Result<Vec<f64>, _>>()
                    .map_err(|e| Error::Data(format!("{}: row `{l}`: {e}", path.display())))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((header, rows))
    }
}

/// The row of `columns` that `values` name (see [`MetricsCsv::append_named`]).
fn named_row(columns: &[String], values: &[(&str, f64)]) -> Result<Vec<f64>> {
    let mut row = vec![f64::NAN; columns.len()];
    let mut given = vec![false; columns.len()];
    for (name, value) in values {
        let Some(i) = columns.iter().position(|c| c == name) else {
            return Err(Error::Data(format!(
                "metric `{name}` is not a column of this metrics file ({})",
                columns.join(",")
            )));
        };
        if given[i] {
            return Err(Error::Data(format!(
                "metric `{name}` given twice in one row"
            )));
        }
        given[i] = true;
        row[i] = *value;
    }
    Ok(row)
}
