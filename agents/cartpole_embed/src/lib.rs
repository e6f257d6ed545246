//! Paper sect. 5.2.1 (alg. 2): learning a latent action space for the cartpole swing-up.
//!
//! A decoder maps a latent point `z` in `[-1, 1]^d` to a 20-step force sequence (an MLP
//! `d-256-256-256-20` with ELU, squashed into the action range). From each training start state,
//! DCEM searches the latent space (100 samples, 10 soft elites, 10 iterations, tau 1) under the
//! ground-truth differentiable cartpole, and the cost of the decoded solution is backpropagated
//! through every DCEM iteration into the decoder. The question is whether 100 samples in the
//! learned 2-D space reach the cost of full-space CEM with ten times more samples.
//!
//! The planner is the framework's [`LatentDcemPlanner`] with an [`MlpDecoder`]; the model is
//! [`SwingupModel`]. Following the reference: one start state per iteration, Adam 5e-4, the
//! gradient norm clipped to 1, a fixed validation set of 100 start states solved every 100
//! iterations, whose mean cost drives a halve-on-plateau schedule (patience 20).

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor};
use dcem::cem::{CemConfig, CemHooks, IterState};
use dcem::model::Model;
use dcem::nn::{tensor_from_f64, to_f64_vec};
use dcem::optim::{Adam, AdamConfig, PlateauConfig, ReduceLrOnPlateau, clip_grad_norm};
use dcem::planning::{
    ActionDecoder, CemPlanner, CemPlannerConfig, LatentDcemPlanner, LatentPlannerConfig,
    MlpDecoder, MlpDecoderConfig,
};
use dcem::run::plot::{Heatmap, LineChart, Panel, Series};
use dcem::run::{Checkpoint, Existing, MetricsCsv, RunDir, check_run_name, plot, progress_bar};
use dcem_envs::SwingupModel;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// A full-space CEM baseline: hard elites over the whole `horizon`-step sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Samples per iteration.
    pub n_sample: usize,
    /// Elites per iteration.
    pub n_elite: usize,
    /// Iterations.
    pub n_iter: usize,
}

impl Baseline {
    /// `CEM 100/10/30`.
    pub fn label(&self) -> String {
        format!("CEM {}/{}/{}", self.n_sample, self.n_elite, self.n_iter)
    }
}

/// The ablation grid: one run per latent size (at the base tau) and per tau (at the base latent
/// size), paper fig. 9.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sweep {
    /// Latent sizes to train.
    pub latent_dims: Vec<usize>,
    /// Temperatures to train (0: hard CEM in the latent space, the decoder updated through the
    /// final decode only).
    pub taus: Vec<f64>,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            latent_dims: vec![2, 8, 16],
            taus: vec![0.0, 1.0, 0.1],
        }
    }
}

/// One experiment, as read from `configs/cartpole_embed.toml`. Defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// Run name: outputs go to `runs/<name>/`.
    pub name: String,
    /// Seed of the decoder's initialisation, the training start states and the solver noise.
    pub seed: u64,
    /// Decoder updates (alg. 2 iterations), one start state each.
    pub iterations: usize,
    /// Planning horizon (steps of a decoded sequence).
    pub horizon: usize,
    /// Size of the fixed validation set of start states.
    pub val_states: usize,
    /// Seed of the validation set (the same set for every run and baseline).
    pub val_seed: u64,
    /// Solve the validation set (and step the schedule) every this many iterations.
    pub val_every: usize,
    /// Write a checkpoint every this many iterations (0: only at validations that improve and
    /// at the end).
    pub checkpoint_every: usize,
    /// Clip the gradient's global L2 norm to this (0: no clipping).
    pub clip_norm: f64,
    /// The decoder's optimiser.
    pub adam: AdamConfig,
    /// Learning-rate schedule on the validation cost.
    pub plateau: PlateauConfig,
    /// The decoder.
    pub decoder: MlpDecoderConfig,
    /// The latent (D)CEM planner.
    pub planner: LatentPlannerConfig,
    /// Full-space CEM baselines solved on the validation set.
    pub baselines: Vec<Baseline>,
    /// Initial standard deviation of the baselines (actions in [-1, 1]; the reference uses half
    /// the action range).
    pub baseline_sigma: f64,
    /// The ablation grid of `sweep`.
    pub sweep: Sweep,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            name: "cartpole_embed".into(),
            seed: 0,
            iterations: 3000,
            horizon: 20,
            val_states: 100,
            val_seed: 0,
            val_every: 100,
            checkpoint_every: 500,
            clip_norm: 1.0,
            adam: AdamConfig {
                lr: 5e-4,
                ..AdamConfig::default()
            },
            plateau: PlateauConfig {
                factor: 0.5,
                patience: 20,
                ..PlateauConfig::default()
            },
            decoder: MlpDecoderConfig::default(),
            planner: LatentPlannerConfig::default(),
            baselines: vec![
                Baseline {
                    n_sample: 100,
                    n_elite: 10,
                    n_iter: 30,
                },
                Baseline {
                    n_sample: 1000,
                    n_elite: 10,
                    n_iter: 10,
                },
            ],
            baseline_sigma: 1.0,
            sweep: Sweep::default(),
        }
    }
}

impl EmbedConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let cfg: Self =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("checking config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        check_run_name(&self.name)?;
        ensure!(self.iterations >= 1, "`iterations` must be at least 1");
        ensure!(self.horizon >= 1, "`horizon` must be at least 1");
        ensure!(self.val_states >= 1, "`val_states` must be at least 1");
        ensure!(self.val_every >= 1, "`val_every` must be at least 1");
        ensure!(
            self.clip_norm >= 0.0 && self.clip_norm.is_finite(),
            "`clip_norm` must be finite and >= 0 (0 turns clipping off)"
        );
        ensure!(
            self.baseline_sigma > 0.0 && self.baseline_sigma.is_finite(),
            "`baseline_sigma` must be finite and > 0"
        );
        for (i, b) in self.baselines.iter().enumerate() {
            ensure!(
                b.n_sample >= 2 && (1..=b.n_sample).contains(&b.n_elite) && b.n_iter >= 1,
                "`baselines[{i}]` needs n_sample >= 2, 1 <= n_elite <= n_sample, n_iter >= 1"
            );
        }
        ensure!(
            self.sweep.latent_dims.iter().all(|d| *d >= 1),
            "`sweep.latent_dims` must all be at least 1"
        );
        ensure!(
            self.sweep.taus.iter().all(|t| t.is_finite() && *t >= 0.0),
            "`sweep.taus` must all be finite and >= 0"
        );
        self.adam.validate().context("in [adam]")?;
        self.plateau.validate().context("in [plateau]")?;
        self.decoder.validate().context("in [decoder]")?;
        self.planner.validate().context("in [planner]")?;
        Ok(())
    }

    /// Short name of the variant (`latent2_tau1`, `latent2_hard`).
    pub fn variant_label(&self) -> String {
        let tau = self.planner.cem.tau;
        let t = if tau == 0.0 {
            "hard".to_string()
        } else {
            format!("tau{tau}")
        };
        format!("latent{}_{t}", self.decoder.latent_dim)
    }

    /// The configs `sweep` trains: this one first, then one per other latent size and per other
    /// tau, each named `<name>/<variant>`.
    pub fn sweep_variants(&self) -> Vec<EmbedConfig> {
        let mut out = vec![self.clone()];
        for &d in &self.sweep.latent_dims {
            if d != self.decoder.latent_dim {
                let mut c = self.clone();
                c.decoder.latent_dim = d;
                out.push(c);
            }
        }
        for &t in &self.sweep.taus {
            if t != self.planner.cem.tau {
                let mut c = self.clone();
                c.planner.cem.tau = t;
                out.push(c);
            }
        }
        out
    }
}

/// `n` start states `(x, x', cos th, sin th, th')` with `x, x' ~ U(-0.5, 0.5)`,
/// `th ~ U(-pi, pi)`, `th' ~ U(-1, 1)`, row-major.
pub fn start_states(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut out = Vec::with_capacity(5 * n);
    for _ in 0..n {
        let x = rng.random_range(-0.5..0.5);
        let dx = rng.random_range(-0.5..0.5);
        let th: f64 = rng.random_range(-PI..PI);
        let dth = rng.random_range(-1.0..1.0);
        out.extend([x, dx, th.cos(), th.sin(), dth]);
    }
    out
}

/// The fixed validation states of `config`, `[val_states, 5]`.
pub fn validation_states(config: &EmbedConfig, device: &Device) -> Result<Tensor<2>> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.val_seed);
    let v = start_states(config.val_states, &mut rng);
    Ok(tensor_from_f64(&v, [config.val_states, 5], device)?)
}

/// The latent planner of `config` around a fresh decoder (initialised from `config.seed`).
pub fn new_planner(config: &EmbedConfig, device: &Device) -> Result<LatentDcemPlanner<MlpDecoder>> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let decoder = MlpDecoder::new(
        &config.decoder,
        config.horizon,
        1,
        (-1.0, 1.0),
        device,
        &mut rng,
    )?;
    let planner_cfg = LatentPlannerConfig {
        seed: config.seed ^ 0x5851_f42d_4c95_7f2d,
        ..config.planner.clone()
    };
    Ok(LatentDcemPlanner::new(planner_cfg, decoder)?)
}

/// One decoder update (alg. 2): solve from `x0: [1, 5]` with DCEM, the cost of the decoded
/// solution, backward through the solver, clipping, Adam. Returns the cost.
pub fn train_step(
    planner: &mut LatentDcemPlanner<MlpDecoder>,
    adam: &mut Adam,
    x0: Tensor<2>,
    clip_norm: f64,
) -> Result<f64> {
    let params = planner.decoder().net.params();
    let tracked = planner.decoder().clone().require_grad();
    *planner.decoder_mut() = tracked;
    let plan = dcem::planner::Planner::plan(planner, &SwingupModel, x0.clone())?;
    let loss = SwingupModel.cost(x0, plan.actions)?.sum();
    let value = loss.clone().into_scalar::<f64>();
    ensure!(
        value.is_finite(),
        "the training cost is {value}: the decoder diverged (lower adam.lr or clip_norm)"
    );
    let grads = loss.backward();
    let mut g: Vec<Option<Tensor<2>>> = planner
        .decoder()
        .net
        .params()
        .iter()
        .map(|p| p.grad(&grads).map(|g| g.autodiff()))
        .collect();
    if clip_norm > 0.0 {
        clip_grad_norm(&mut g, clip_norm)?;
    }
    let new = adam.step(params, g)?;
    let decoder = planner.decoder_mut();
    decoder.net.set_params(new)?;
    *decoder = decoder.detached();
    Ok(value)
}

/// Mean cost of the planner's solutions on `states` (no gradient), and the per-state costs.
pub fn validate_planner(
    planner: &mut LatentDcemPlanner<MlpDecoder>,
    states: Tensor<2>,
) -> Result<(f64, Vec<f64>)> {
    let detached = planner.decoder().detached();
    *planner.decoder_mut() = detached;
    let plan = dcem::planner::Planner::plan(planner, &SwingupModel, states)?;
    let costs = plan.diagnostics.cost;
    Ok((costs.iter().sum::<f64>() / costs.len() as f64, costs))
}

/// A baseline's result on the validation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineResult {
    /// `CEM 100/10/30`.
    pub label: String,
    /// Mean cost over the validation states.
    pub mean_cost: f64,
    /// Wall time of the batched solve divided by the number of states, in ms.
    pub ms_per_state: f64,
}

fn full_cem(config: &EmbedConfig, b: &Baseline) -> Result<CemPlanner> {
    Ok(CemPlanner::new(CemPlannerConfig {
        horizon: config.horizon,
        action_low: -1.0,
        action_high: 1.0,
        warm_start: false,
        seed: config.seed,
        cem: CemConfig {
            n_sample: b.n_sample,
            n_elite: b.n_elite,
            n_iter: b.n_iter,
            tau: 0.0,
            init_sigma: config.baseline_sigma,
            ..CemConfig::default()
        },
    })?)
}

/// Solves the validation set with each full-space CEM baseline of `config`.
pub fn run_baselines(config: &EmbedConfig, device: &Device) -> Result<Vec<BaselineResult>> {
    let states = validation_states(config, device)?;
    config
        .baselines
        .iter()
        .map(|b| {
            let mut planner = full_cem(config, b)?;
            let t0 = Instant::now();
            let plan = dcem::planner::Planner::plan(&mut planner, &SwingupModel, states.clone())?;
            let ms = 1e3 * t0.elapsed().as_secs_f64() / config.val_states as f64;
            let c = &plan.diagnostics.cost;
            Ok(BaselineResult {
                label: b.label(),
                mean_cost: c.iter().sum::<f64>() / c.len() as f64,
                ms_per_state: ms,
            })
        })
        .collect()
}

/// Columns of `metrics.csv` (`train_cost` is the mean over the iterations since the previous
/// row; row 0 is the untrained decoder).
pub const METRICS: [&str; 6] = [
    "iteration",
    "train_cost",
    "val_cost",
    "best_val_cost",
    "lr",
    "ms_per_iteration",
];

/// Options of [`train`] that are not part of the experiment.
pub use dcem::run::RunOptions as TrainOptions;

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

struct TrainState {
    iteration: usize,
    adam: Adam,
    plateau: ReduceLrOnPlateau,
    rng: ChaCha8Rng,
    best: (usize, f64),
}

fn save(
    path: &Path,
    config: &EmbedConfig,
    planner: &LatentDcemPlanner<MlpDecoder>,
    st: &TrainState,
) -> Result<()> {
    let mut ck = Checkpoint::new();
    ck.put_mlp("decoder", &planner.decoder().net)?;
    ck.put_adam("adam", &st.adam)?;
    ck.put_meta("config", config)?;
    ck.put_meta("iteration", &st.iteration)?;
    ck.put_meta("plateau", &st.plateau)?;
    ck.put_meta("best", &st.best)?;
    ck.put_rng("rng.train", &st.rng)?;
    ck.put_rng("rng.planner", planner.rng())?;
    ck.save(path)?;
    Ok(())
}

/// Loads a checkpoint written by a run: its config and the planner with the trained decoder.
pub fn load_planner(
    path: &Path,
    device: &Device,
) -> Result<(EmbedConfig, LatentDcemPlanner<MlpDecoder>)> {
    let ck = Checkpoint::load(path).with_context(|| format!("loading {}", path.display()))?;
    let config: EmbedConfig = ck.meta("config")?;
    let mut planner = new_planner(&config, device)?;
    ck.load_mlp("decoder", &mut planner.decoder_mut().net, device)?;
    planner.set_rng(ck.rng("rng.planner")?);
    Ok((config, planner))
}

fn load_state(
    path: &Path,
    device: &Device,
) -> Result<(EmbedConfig, LatentDcemPlanner<MlpDecoder>, TrainState)> {
    let (config, planner) = load_planner(path, device)?;
    let ck = Checkpoint::load(path)?;
    let n = planner.decoder().net.params().len();
    let st = TrainState {
        iteration: ck.meta("iteration")?,
        adam: ck.adam("adam", config.adam.clone(), n, device)?,
        plateau: ck.meta("plateau")?,
        rng: ck.rng("rng.train")?,
        best: ck.meta("best")?,
    };
    Ok((config, planner, st))
}

/// Trains one decoder per `config`, writing `runs/<name>/` (config, metrics.csv,
/// `checkpoints/{latest,best}.safetensors`, `baselines.csv`, plots). `baselines` are computed
/// when not given.
pub fn train(
    config: &EmbedConfig,
    opts: &TrainOptions,
    baselines: Option<&[BaselineResult]>,
    device: &Device,
) -> Result<RunSummary> {
    config.validate()?;
    let dir = RunDir::create(opts.runs_dir.join(&config.name), opts.existing)?;
    let latest = dir.checkpoints().join("latest.safetensors");
    let best_path = dir.checkpoints().join("best.safetensors");
    let val_states = validation_states(config, device)?;
    let baselines = match baselines {
        Some(b) => b.to_vec(),
        None => run_baselines(config, device)?,
    };
    write_baselines(&dir.file("baselines.csv"), &baselines)?;

    let (mut planner, mut st, mut metrics) = if opts.existing == Existing::Resume {
        let (saved, planner, st) = load_state(&latest, device)
            .with_context(|| format!("resuming {}", dir.path().display()))?;
        ensure!(
            saved
                == EmbedConfig {
                    iterations: saved.iterations,
                    ..config.clone()
                },
            "the config differs from the run's own (beyond `iterations`); resume with {}",
            dir.file("config.toml").display()
        );
        let metrics = MetricsCsv::resume(dir.file("metrics.csv"), &METRICS, st.iteration as f64)?;
        (planner, st, metrics)
    } else {
        let mut planner = new_planner(config, device)?;
        let n = planner.decoder().net.params().len();
        let mut st = TrainState {
            iteration: 0,
            adam: Adam::new(config.adam.clone(), n)?,
            plateau: ReduceLrOnPlateau::new(config.plateau.clone())?,
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x2545_f491_4f6c_dd1d),
            best: (0, f64::INFINITY),
        };
        let mut metrics = MetricsCsv::create(dir.file("metrics.csv"), &METRICS)?;
        let (val, _) = validate_planner(&mut planner, val_states.clone())?;
        st.best = (0, val);
        metrics.append(&[0.0, f64::NAN, val, val, config.adam.lr, 0.0])?;
        save(&best_path, config, &planner, &st)?;
        (planner, st, metrics)
    };
    dir.write_config(config)?;

    let bar = progress_bar(
        opts.progress,
        config.iterations as u64,
        &config.name,
        "iterations",
    );
    bar.set_position(st.iteration as u64);
    let (mut window_time, mut window_cost, mut window_n) = (0.0f64, 0.0f64, 0usize);
    while st.iteration < config.iterations {
        let x0 = tensor_from_f64(&start_states(1, &mut st.rng), [1, 5], device)?;
        let t0 = Instant::now();
        let cost = train_step(&mut planner, &mut st.adam, x0, config.clip_norm)
            .with_context(|| format!("iteration {}", st.iteration + 1))?;
        window_time += t0.elapsed().as_secs_f64();
        window_cost += cost;
        window_n += 1;
        st.iteration += 1;
        bar.inc(1);
        let at_val = st.iteration % config.val_every == 0 || st.iteration == config.iterations;
        if at_val {
            let (val, _) = validate_planner(&mut planner, val_states.clone())?;
            let lr = st.plateau.step(val, st.adam.lr());
            st.adam.set_lr(lr);
            let improved = val < st.best.1;
            if improved {
                st.best = (st.iteration, val);
                save(&best_path, config, &planner, &st)?;
            }
            let ms = 1e3 * window_time / window_n.max(1) as f64;
            metrics.append(&[
                st.iteration as f64,
                window_cost / window_n.max(1) as f64,
                val,
                st.best.1,
                lr,
                ms,
            ])?;
            bar.set_message(format!(
                "val {val:.2} (best {:.2})  lr {lr:.1e}  {ms:.1} ms/it",
                st.best.1
            ));
            (window_time, window_cost, window_n) = (0.0, 0.0, 0);
        }
        if (config.checkpoint_every > 0 && st.iteration % config.checkpoint_every == 0)
            || st.iteration == config.iterations
        {
            save(&latest, config, &planner, &st)?;
        }
    }
    bar.finish_and_clear();
    let summary = summarise(dir.path(), config.clone(), baselines)?;
    if opts.report {
        write_run_plots(&summary, device)?;
    }
    Ok(summary)
}

fn write_baselines(path: &Path, baselines: &[BaselineResult]) -> Result<()> {
    let mut text = String::from("baseline,mean_cost,ms_per_state\n");
    for b in baselines {
        text.push_str(&format!("{},{},{}\n", b.label, b.mean_cost, b.ms_per_state));
    }
    dcem::run::atomic_write(path, text.as_bytes())?;
    Ok(())
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
    let k = state_index.min(config.val_states - 1);
    let x0 = all.slice([k..k + 1, 0..5]);
    let baseline = config.baselines.first().cloned().unwrap_or(Baseline {
        n_sample: 100,
        n_elite: 10,
        n_iter: 30,
    });
    let mut full = full_cem(config, &baseline)?;
    let mut full_trace = SolveTrace::default();
    let full_plan = {
        let mut rec = recorder(&mut full_trace);
        full.plan_with(
            &SwingupModel,
            x0.clone(),
            CemHooks {
                on_iter: Some(&mut rec),
                project: None,
            },
        )?
    };
    let detached = planner.decoder().detached();
    *planner.decoder_mut() = detached;
    let mut latent_trace = SolveTrace::default();
    let latent_plan = {
        let mut rec = recorder(&mut latent_trace);
        planner.plan_with(
            &SwingupModel,
            x0.clone(),
            CemHooks {
                on_iter: Some(&mut rec),
                project: None,
            },
        )?
    };
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

fn write_run_plots(run: &RunSummary, device: &Device) -> Result<()> {
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

/// Trains every variant of `config.sweep` under `runs/<name>/`, then writes the joint
/// `val_cost.png`, `results.md` and the base variant's `samples.png` there. Returns the table.
pub fn sweep(config: &EmbedConfig, opts: &TrainOptions, device: &Device) -> Result<String> {
    config.validate()?;
    let root = opts.runs_dir.join(&config.name);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let baselines = run_baselines(config, device)?;
    for b in &baselines {
        eprintln!("{}: mean validation cost {:.2}", b.label, b.mean_cost);
    }
    let mut runs = Vec::new();
    for variant in config.sweep_variants() {
        let cfg = EmbedConfig {
            name: variant.variant_label(),
            ..variant
        };
        let sub = TrainOptions {
            runs_dir: root.clone(),
            ..opts.clone()
        };
        eprintln!("training {}", cfg.variant_label());
        runs.push(train(&cfg, &sub, Some(&baselines), device)?);
    }
    let refs: Vec<&RunSummary> = runs.iter().collect();
    plot::line_chart(&root.join("val_cost.png"), &val_chart(&refs))?;
    let table = results_table(&refs);
    dcem::run::atomic_write(&root.join("results.md"), table.as_bytes())?;
    let best = runs[0].dir.join("checkpoints").join("best.safetensors");
    let (cfg, mut planner) = load_planner(&best, device)?;
    samples_figure(&root.join("samples.png"), &cfg, &mut planner, 0, device)?;
    Ok(table)
}
