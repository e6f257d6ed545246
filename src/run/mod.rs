//! Run folders: `runs/<name>/{config.toml, metrics.csv, *.png, checkpoints/}`.
//!
//! Everything here writes through [`atomic_write`] (a temporary file renamed over the target),
//! so a run killed mid-write never leaves a half-written config, checkpoint or plot behind, and
//! an existing run folder is never reused unless asked.

mod checkpoint;
mod fixture;
mod metrics;
pub mod plot;
pub mod protocol;
mod stat;

pub use checkpoint::Checkpoint;
pub use fixture::{FixtureCheck, Tolerance};
pub use metrics::MetricsCsv;
pub use protocol::{Aggregate, BootstrapOptions, Interval, SeedStats};
pub use stat::Stat;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Checks that `name` can name a run folder (non-empty, no path separators, not `.`/`..`).
pub fn check_run_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(Error::option(
            "name",
            format!("must be a plain folder name, got {name:?}"),
        ));
    }
    Ok(())
}

/// How a training command treats its run folder, shared by the agents.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where run folders go (`runs`).
    pub runs_dir: PathBuf,
    /// What to do with an existing run folder of the same name.
    pub existing: Existing,
    /// Show a progress bar (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Write the run's plots (and any end-of-run analysis) when training ends.
    pub report: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            runs_dir: PathBuf::from("runs"),
            existing: Existing::Refuse,
            progress: true,
            report: true,
        }
    }
}

/// Refuses a list of training seeds that is empty or names a seed twice (each seed is one run
/// folder, `<name>_s<seed>`).
pub fn check_seeds(seeds: &[u64]) -> Result<()> {
    if seeds.is_empty() {
        return Err(Error::option(
            "seeds",
            "the list is empty: give at least one seed, e.g. --seeds 0,1,2",
        ));
    }
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::option(
            "seeds",
            format!("seed {} is given twice: the seeds must be distinct", w[0]),
        ));
    }
    Ok(())
}

/// Writes a summary over seeds into `out` (created if missing): `summary.json` (`summary`
/// serialised), `summary.md` (`table`) and, where given, `protocol.md` (`protocol`), each
/// atomically, so that an interrupted write leaves the previous file.
pub fn write_summary<S: Serialize>(
    out: &Path,
    summary: &S,
    table: &str,
    protocol: Option<&str>,
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::Data(format!("serialising {}: {e}", out.display())))?;
    atomic_write(&out.join("summary.json"), json.as_bytes())?;
    atomic_write(&out.join("summary.md"), table.as_bytes())?;
    if let Some(protocol) = protocol {
        atomic_write(&out.join("protocol.md"), protocol.as_bytes())?;
    }
    Ok(())
}

/// The command-line flags of a run, the same in every agent's binary (flattened into their
/// `train` commands with `#[command(flatten)]`): its folder (`--runs-dir DIR`, `--overwrite`,
/// `--resume`) and the overrides of the config's identity (`--name NAME`, `--seed N`).
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Folder that holds the run folders.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Replace an existing run folder of the same name (default: refuse).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Continue the run in the existing folder from its last checkpoint (exactly where an
    /// uninterrupted run would be).
    #[arg(long)]
    pub resume: bool,
    /// Override the config's run name.
    #[arg(long)]
    pub name: Option<String>,
    /// Override the config's seed.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl RunArgs {
    /// Writes `--name` and `--seed`, where given, into a config's `name` and `seed`.
    pub fn apply_overrides(&self, name: &mut String, seed: &mut u64) {
        if let Some(n) = &self.name {
            name.clone_from(n);
        }
        if let Some(s) = self.seed {
            *seed = s;
        }
    }

    /// What to do with an existing run folder.
    pub fn existing(&self) -> Existing {
        Existing::from_flags(self.overwrite, self.resume)
    }

    /// The run options these flags give, with a progress bar when `progress`.
    pub fn options(&self, progress: bool) -> RunOptions {
        RunOptions {
            runs_dir: self.runs_dir.clone(),
            existing: self.existing(),
            progress,
            report: true,
        }
    }
}

/// The mean of column `col` of metrics rows whose column 0 counts steps (updates, iterations)
/// and whose `col` is a per-step average over the steps since the previous row: each row is
/// weighted by those steps. 0 when no steps are covered.
pub fn step_weighted_mean(rows: &[Vec<f64>], col: usize) -> f64 {
    let (mut total, mut steps) = (0.0, 0.0);
    for w in rows.windows(2) {
        let n = w[1][0] - w[0][0];
        if n > 0.0 && col < w[1].len() {
            total += w[1][col] * n;
            steps += n;
        }
    }
    if steps > 0.0 { total / steps } else { 0.0 }
}

/// A progress bar for `len` steps of `unit` (on stderr; hidden when `show` is false or stderr
/// is not a terminal, so logs and CI output stay clean).
pub fn progress_bar(show: bool, len: u64, name: &str, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let template = format!(
        "{{prefix}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}}) {{msg}}"
    );
    let style = indicatif::ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(name.to_string());
    bar
}

/// Wraps an I/O error with its path.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that
/// readers see either the old file or the complete new one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    // On any error the partial temporary file goes (after a full disk it would keep the disk
    // full); the file at `path` is untouched.
    let out = std::fs::write(&tmp, bytes)
        .map_err(io_err(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io_err(path)));
    if out.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    out
}

/// Removes the temporary files `atomic_write` leaves behind when a process is killed between
/// writing and renaming (`.tmp-<pid>-<name>` in `dir`). Returns how many were removed.
pub(crate) fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = dir.read_dir() else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// A sibling of `path` to write before renaming (keeps the extension, which image encoders
/// read).
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

/// How to treat a run folder that already holds files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Refuse (the default: nothing already written is touched).
    Refuse,
    /// Keep the folder and its files (resuming a run).
    Resume,
    /// Delete the folder's contents first.
    Overwrite,
}

impl Existing {
    /// The choice of a command line's `--overwrite` and `--resume` flags (the agents' binaries
    /// make the two conflict): overwrite, resume, or by default refuse.
    pub fn from_flags(overwrite: bool, resume: bool) -> Self {
        if overwrite {
            Self::Overwrite
        } else if resume {
            Self::Resume
        } else {
            Self::Refuse
        }
    }
}

/// A run's output folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Opens `path` as a run folder, creating it. With [`Existing::Refuse`] a folder that
    /// already holds files is an error that says how to proceed.
    pub fn create(path: impl Into<PathBuf>, existing: Existing) -> Result<Self> {
        let root = path.into();
        let has_files = root
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if has_files {
            match existing {
                Existing::Refuse => {
                    return Err(Error::Config(format!(
                        "run folder {} already exists and holds files; pick another name, \
                         resume it, or pass the overwrite option to replace it",
                        root.display()
                    )));
                }
                Existing::Overwrite => {
                    std::fs::remove_dir_all(&root).map_err(io_err(&root))?;
                }
                Existing::Resume => {}
            }
        } else if existing == Existing::Resume {
            return Err(Error::Config(format!(
                "cannot resume: run folder {} does not exist or is empty",
                root.display()
            )));
        }
        std::fs::create_dir_all(root.join("checkpoints")).map_err(io_err(&root))?;
        // A run killed while writing left its temporary files: nothing reads them.
        for d in [root.clone(), root.join("checkpoints")] {
            remove_stale_temporaries(&d);
        }
        Ok(Self { root })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A file inside the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The checkpoints folder.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Writes the resolved config as `config.toml`.
    pub fn write_config<C: Serialize>(&self, config: &C) -> Result<()> {
        let text = toml::to_string_pretty(config)
            .map_err(|e| Error::Config(format!("cannot serialise the config: {e}")))?;
        atomic_write(&self.file("config.toml"), text.as_bytes())
    }
}

/// Summary statistics of evaluation returns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalSummary {
    /// What was evaluated.
    pub label: String,
    /// Episodes.
    pub episodes: usize,
    /// Mean return.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Half-width of the 95% confidence interval of the mean: Student's t over the episodes
    /// (summaries written before it used the normal approximation, 1.96; [`EvalSummary::ci95_t`]
    /// recomputes it from `returns`).
    pub ci95: f64,
    /// Every episode's return.
    pub returns: Vec<f64>,
    /// Mean planning (or policy) time per action, milliseconds.
    pub plan_ms: f64,
}

impl EvalSummary {
    /// Writes the summary as pretty JSON to `path` (atomically, creating its folder): a run's
    /// `eval.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Data(format!("cannot serialise an evaluation summary: {e}")))?;
        atomic_write(path, text.as_bytes())
    }

    /// Reads a summary written by [`EvalSummary::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|e| Error::Data(format!("{}: {e}", path.display())))
    }

    /// Statistics of `returns`.
    pub fn new(label: impl Into<String>, returns: Vec<f64>, plan_ms: f64) -> Self {
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let var = if returns.len() > 1 {
            returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            label: label.into(),
            episodes: returns.len(),
            mean,
            std: var.sqrt(),
            // One episode has no interval; 0 keeps the JSON a number.
            ci95: if returns.len() < 2 {
                0.0
            } else {
                Stat::of(returns.clone()).ci95
            },
            returns,
            plan_ms,
        }
    }

    /// The Student-t 95% half-width over the episodes' returns (NaN with one episode),
    /// whatever the stored `ci95` was computed with.
    pub fn ci95_t(&self) -> f64 {
        Stat::of(self.returns.clone()).ci95
    }
}

/// A run being written: its folder, its `metrics.csv` and its progress bar, opened the same way
/// by every agent. [`Run::open`] creates (or refuses, or overwrites) `runs/<name>/`; a resumed
/// run is checked against its own config ([`Run::check_same_config`]) and its metrics are cut
/// back to its last checkpoint ([`Run::start`]).
pub struct Run {
    dir: RunDir,
    metrics: MetricsCsv,
    bar: indicatif::ProgressBar,
}

impl Run {
    /// Opens `<opts.runs_dir>/<name>` as [`RunDir::create`] does under `opts.existing`.
    pub fn open(opts: &RunOptions, name: &str) -> Result<RunDir> {
        check_run_name(name)?;
        RunDir::create(opts.runs_dir.join(name), opts.existing)
    }

    /// On resume: `saved` (the run's own config, the budget field `budget` set to the asked
    /// value) must equal `config`, else the error says to resume with the run's own config.
    pub fn check_same_config<C: PartialEq>(
        dir: &RunDir,
        saved_with_budget: &C,
        config: &C,
        budget: &str,
    ) -> Result<()> {
        if saved_with_budget == config {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "the config differs from the run's own (beyond `{budget}`); resume with {}",
                dir.file("config.toml").display()
            )))
        }
    }

    /// Starts writing: `metrics.csv` with `columns` is created, or, resuming from a checkpoint
    /// at step `resume_at`, cut back to that step and reopened; `config` is written as
    /// `config.toml`; the progress bar counts `total` `unit`s from the step reached.
    pub fn start<C: Serialize>(
        dir: RunDir,
        config: &C,
        columns: &[&str],
        resume_at: Option<usize>,
        (total, unit, show): (usize, &str, bool),
    ) -> Result<Self> {
        let metrics = match resume_at {
            Some(step) => MetricsCsv::resume(dir.file("metrics.csv"), columns, step as f64)?,
            None => MetricsCsv::create(dir.file("metrics.csv"), columns)?,
        };
        dir.write_config(config)?;
        let name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bar = progress_bar(show, total as u64, &name, unit);
        bar.set_position(resume_at.unwrap_or(0) as u64);
        Ok(Self { dir, metrics, bar })
    }

    /// The run folder.
    pub fn dir(&self) -> &RunDir {
        &self.dir
    }

    /// Appends a row to `metrics.csv` (flushed), given by name ([`MetricsCsv::append_named`]):
    /// columns not named are NaN, a name that is not a column is an error.
    pub fn log_named(&mut self, values: &[(&str, f64)]) -> Result<()> {
        self.metrics.append_named(values)
    }

    /// The progress bar (advance it, set its message).
    pub fn bar(&self) -> &indicatif::ProgressBar {
        &self.bar
    }

    /// Writes `checkpoint` as `checkpoints/latest.safetensors` (atomically).
    pub fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        checkpoint.save(&self.dir.checkpoints().join("latest.safetensors"))
    }

    /// The latest checkpoint (`checkpoints/latest.safetensors`).
    pub fn latest_checkpoint(dir: &RunDir) -> PathBuf {
        dir.checkpoints().join("latest.safetensors")
    }

    /// Clears the progress bar and hands back the folder.
    pub fn finish(self) -> RunDir {
        self.bar.finish_and_clear();
        self.dir
    }
}

/// Starts `cmd` and kills it (SIGKILL) once the run's `metrics` file holds at least `rows`
/// rows: how the agents' tests interrupt a run at an arbitrary moment after a checkpoint.
/// Returns the rows written when it died; an error if the run ends first or does not get there
/// within `timeout`.
pub fn kill_after_rows(
    cmd: &mut std::process::Command,
    metrics: &Path,
    rows: usize,
    timeout: std::time::Duration,
) -> Result<usize> {
    let program = PathBuf::from(cmd.get_program());
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        path: program,
        source: e,
    })?;
    let t0 = std::time::Instant::now();
    let count = || MetricsCsv::read(metrics).map_or(0, |(_, r)| r.len());
    while count() < rows {
        let ended = child.try_wait().map_err(io_err(metrics))?.is_some();
        if ended || t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Data(format!(
                "the run {} before {} held {rows} rows",
                if ended { "ended" } else { "timed out" },
                metrics.display()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().map_err(io_err(metrics))?;
    child.wait().map_err(io_err(metrics))?;
    Ok(count())
}
