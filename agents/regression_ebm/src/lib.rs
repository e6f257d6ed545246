//! Paper sect. 5.1: energy-based regression, unrolled gradient descent against DCEM.
//!
//! An energy network `E(x, y)` (an MLP `2-128-128-128-1` with Softplus) predicts
//! `y_hat(x) = argmin_y E(x, y)`, the argmin approximated by one of two differentiable inner
//! solvers started at `y0 = 0`:
//! - unrolled gradient descent, `y_{t+1} = y_t - lr * dE/dy(x, y_t)` for 10 steps (lr 0.1), or
//! - DCEM, 10 iterations of 100 samples and 10 soft elites (tau 1) from `N(0, 7^2)`.
//!
//! The loss `(y_hat - y*)^2` on the targets `y* = x sin x` is backpropagated through the solver
//! into the network. The paper's claim: both fit the data, but only DCEM's energy has minima
//! at its predictions, so only DCEM's predictions survive running the solver for more or fewer
//! steps than it was trained with.
//!
//! The training loop follows the reference code: each update picks one training point at
//! random and takes `inner_updates` (3) Adam steps on it, each a fresh solve; every update is
//! one Adam step. The full training set's MSE is logged every `eval_every` updates and drives a
//! reduce-on-plateau learning-rate schedule.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, Tensor};
use dcem::cem::{Cem, CemConfig, CemInit};
use dcem::gd::{GdConfig, unrolled_gd};
use dcem::nn::{Activation, Mlp, tensor_from_f64, to_f64_vec};
use dcem::optim::{Adam, AdamConfig, PlateauConfig, ReduceLrOnPlateau, clip_grad_norm};
use dcem::run::plot::{Heatmap, LineChart, Series};
use dcem::run::{Checkpoint, Existing, MetricsCsv, RunDir, check_run_name, plot, progress_bar};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which differentiable solver approximates `argmin_y E(x, y)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverKind {
    /// DCEM with the `[dcem]` options.
    Dcem,
    /// Unrolled gradient descent with the `[gd]` options.
    Gd,
}

impl SolverKind {
    /// Short name used in tables and legends.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dcem => "DCEM",
            Self::Gd => "unrolled GD",
        }
    }
}

/// One experiment, as read from `configs/regression_*.toml`. Defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegressionConfig {
    /// Run name: outputs go to `runs/<name>/`.
    pub name: String,
    /// Master seed (weights, point order, solver noise).
    pub seed: u64,
    /// The inner solver: "dcem" or "gd".
    pub solver: SolverKind,
    /// Adam steps in total (the reference run is reported up to 12,000; its config says
    /// 100,000).
    pub updates: usize,
    /// Training points, evenly spaced on [0, 2 pi], targets `x sin x`.
    pub n_points: usize,
    /// Width of each hidden layer of the energy network.
    pub hidden: usize,
    /// Number of hidden layers.
    pub hidden_layers: usize,
    /// Consecutive Adam steps taken on each randomly drawn point.
    pub inner_updates: usize,
    /// Log the full training MSE (and step the schedule) every this many updates.
    pub eval_every: usize,
    /// Write a checkpoint every this many updates (0: only at the end).
    pub checkpoint_every: usize,
    /// Clip the gradient's global L2 norm to this (0: no clipping).
    pub clip_norm: f64,
    /// Start of the inner solvers.
    pub y0: f64,
    /// Test-time ablation: predict with 1..=this many inner steps.
    pub ablation_max_steps: usize,
    /// The outer optimiser.
    pub adam: AdamConfig,
    /// Learning-rate schedule on the training MSE.
    pub plateau: PlateauConfig,
    /// DCEM options (used when `solver = "dcem"`).
    pub dcem: CemConfig,
    /// Unrolled GD options (used when `solver = "gd"`).
    pub gd: GdConfig,
}

impl Default for RegressionConfig {
    fn default() -> Self {
        Self {
            name: "regression_dcem".into(),
            seed: 0,
            solver: SolverKind::Dcem,
            updates: 12_000,
            n_points: 100,
            hidden: 128,
            hidden_layers: 3,
            inner_updates: 3,
            eval_every: 100,
            checkpoint_every: 2_000,
            clip_norm: 1.0,
            y0: 0.0,
            ablation_max_steps: 50,
            adam: AdamConfig::default(),
            plateau: PlateauConfig {
                factor: 0.5,
                patience: 20,
                ..PlateauConfig::default()
            },
            dcem: CemConfig {
                n_sample: 100,
                n_elite: 10,
                n_iter: 10,
                tau: 1.0,
                init_sigma: 7.0,
                normalize: true,
                iter_eps: 1e-4,
                ..CemConfig::default()
            },
            gd: GdConfig::default(),
        }
    }
}

impl RegressionConfig {
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
        ensure!(self.updates >= 1, "`updates` must be at least 1");
        ensure!(self.n_points >= 2, "`n_points` must be at least 2");
        ensure!(self.hidden >= 1, "`hidden` must be at least 1");
        ensure!(
            self.hidden_layers >= 1,
            "`hidden_layers` must be at least 1"
        );
        ensure!(
            self.inner_updates >= 1,
            "`inner_updates` must be at least 1"
        );
        ensure!(self.eval_every >= 1, "`eval_every` must be at least 1");
        ensure!(
            self.clip_norm >= 0.0 && self.clip_norm.is_finite(),
            "`clip_norm` must be finite and >= 0 (0 turns clipping off)"
        );
        ensure!(self.y0.is_finite(), "`y0` must be finite");
        ensure!(
            self.ablation_max_steps >= 1,
            "`ablation_max_steps` must be at least 1"
        );
        self.adam.validate().context("in [adam]")?;
        self.plateau.validate().context("in [plateau]")?;
        self.dcem.validate().context("in [dcem]")?;
        self.gd.validate().context("in [gd]")?;
        Ok(())
    }

    /// The inner steps the model is trained with (DCEM iterations or GD steps).
    pub fn train_steps(&self) -> usize {
        match self.solver {
            SolverKind::Dcem => self.dcem.n_iter,
            SolverKind::Gd => self.gd.steps,
        }
    }
}

/// The training data: `n` points evenly spaced on [0, 2 pi] and `y = x sin x`.
pub fn dataset(n: usize) -> (Vec<f64>, Vec<f64>) {
    let xs: Vec<f64> = (0..n)
        .map(|i| 2.0 * PI * i as f64 / (n - 1) as f64)
        .collect();
    let ys = xs.iter().map(|x| x * x.sin()).collect();
    (xs, ys)
}

/// The energy network and the solver that turns it into predictions.
#[derive(Clone, Debug)]
pub struct EnergyModel {
    /// `E(x, y)`: input `[x, y]`, one output.
    pub net: Mlp,
    /// The solver options.
    pub config: RegressionConfig,
}

impl EnergyModel {
    /// A freshly initialised model (PyTorch's `nn.Linear` initialisation, from `rng`).
    pub fn new(config: &RegressionConfig, device: &Device, rng: &mut ChaCha8Rng) -> Result<Self> {
        let mut sizes = vec![2];
        sizes.extend(std::iter::repeat_n(config.hidden, config.hidden_layers));
        sizes.push(1);
        Ok(Self {
            net: Mlp::new(&sizes, Activation::Softplus, device, rng)?,
            config: config.clone(),
        })
    }

    /// `E(x, y)` for `x, y: [n, 1]`, giving `[n, 1]`.
    pub fn energy(&self, x: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
        self.net.forward(Tensor::cat(vec![x, y], 1))
    }

    /// `dE/dy (x, y)` for `x, y: [n, 1]`, on the autodiff tape.
    pub fn energy_grad_y(&self, x: Tensor<2>, y: Tensor<2>) -> Result<Tensor<2>> {
        Ok(self.net.input_grad(Tensor::cat(vec![x, y], 1), 1..2)?)
    }

    /// Predictions `y_hat(x)` for `x: [n, 1]`, running the configured solver for `steps` inner
    /// steps. Differentiable with respect to the network when its parameters require grad.
    pub fn predict(&self, x: Tensor<2>, steps: usize, rng: &mut ChaCha8Rng) -> Result<Tensor<2>> {
        let n = x.dims()[0];
        let device = x.device();
        match self.config.solver {
            SolverKind::Gd => {
                let cfg = GdConfig {
                    steps,
                    ..self.config.gd.clone()
                };
                let y0 = Tensor::<2>::full([n, 1], self.config.y0, &device);
                let mut err = None;
                let iterates = unrolled_gd(
                    &cfg,
                    |y| match self.energy_grad_y(x.clone(), y.clone()) {
                        Ok(g) => g,
                        Err(e) => {
                            err.get_or_insert(e);
                            Tensor::zeros_like(&y)
                        }
                    },
                    y0,
                )?;
                if let Some(e) = err {
                    return Err(e);
                }
                iterates
                    .into_iter()
                    .last()
                    .context("GD returned no iterate")
            }
            SolverKind::Dcem => {
                let cfg = CemConfig {
                    n_iter: steps,
                    ..self.config.dcem.clone()
                };
                let solver = Cem::new(cfg.clone())?;
                let net = &self.net;
                let xs = x.clone().unsqueeze_dim::<3>(1);
                let f = |ys: Tensor<3>| {
                    let [b, s, _] = ys.dims();
                    let inp =
                        Tensor::cat(vec![xs.clone().expand([b, s, 1]), ys], 2).reshape([b * s, 2]);
                    net.forward(inp).reshape([b, s])
                };
                let init = CemInit::scalar(n, 1, self.config.y0, cfg.init_sigma, &device);
                Ok(solver.solve(f, init, rng)?.mu)
            }
        }
    }

    /// Saves the network and the training state to `path`.
    pub fn save(&self, path: &Path, state: &TrainState) -> Result<()> {
        let mut ck = Checkpoint::new();
        ck.put_mlp("net", &self.net)?;
        ck.put_adam("adam", &state.adam)?;
        ck.put_meta("config", &self.config)?;
        ck.put_meta("update", &state.update)?;
        ck.put_meta("plateau", &state.plateau)?;
        ck.put_rng("rng.train", &state.rng)?;
        ck.put_rng("rng.eval", &state.eval_rng)?;
        ck.save(path)?;
        Ok(())
    }

    /// Loads a model and its training state from a checkpoint written by [`EnergyModel::save`].
    pub fn load(path: &Path, device: &Device) -> Result<(Self, TrainState)> {
        let ck = Checkpoint::load(path)?;
        let config: RegressionConfig = ck.meta("config")?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut model = Self::new(&config, device, &mut rng)?;
        ck.load_mlp("net", &mut model.net, device)?;
        let adam = ck.adam(
            "adam",
            config.adam.clone(),
            model.net.params().len(),
            device,
        )?;
        let state = TrainState {
            update: ck.meta("update")?,
            adam,
            plateau: ck.meta("plateau")?,
            rng: ck.rng("rng.train")?,
            eval_rng: ck.rng("rng.eval")?,
        };
        Ok((model, state))
    }
}

/// Everything besides the weights that a resumed run needs.
#[derive(Debug)]
pub struct TrainState {
    /// Adam steps taken.
    pub update: usize,
    /// The optimiser.
    pub adam: Adam,
    /// The learning-rate schedule.
    pub plateau: ReduceLrOnPlateau,
    /// Point choice and training-time solver noise.
    pub rng: ChaCha8Rng,
    /// Solver noise of the logged evaluations.
    pub eval_rng: ChaCha8Rng,
}

/// Columns of `metrics.csv`.
pub const METRICS: [&str; 4] = ["update", "train_mse", "lr", "ms_per_update"];

/// Options of [`train`] that are not part of the experiment.
pub use dcem::run::RunOptions as TrainOptions;

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// `(update, train MSE)` at every log point.
    pub curve: Vec<(usize, f64)>,
    /// Mean wall time of one update (solve, backward, clipping, Adam), in ms, over the run.
    pub ms_per_update: f64,
    /// The trained model.
    pub model: EnergyModel,
}

fn full_batch(device: &Device, n: usize) -> Result<(Tensor<2>, Tensor<2>, Vec<f64>, Vec<f64>)> {
    let (xs, ys) = dataset(n);
    Ok((
        tensor_from_f64(&xs, [n, 1], device)?,
        tensor_from_f64(&ys, [n, 1], device)?,
        xs,
        ys,
    ))
}

/// MSE of the model's predictions on the training set with `steps` inner steps (no gradient).
pub fn train_mse(model: &EnergyModel, steps: usize, rng: &mut ChaCha8Rng) -> Result<f64> {
    let device = model.net.layers[0].weight.device();
    let (x, y, _, _) = full_batch(&device, model.config.n_points)?;
    let m = EnergyModel {
        net: model.net.detached(),
        config: model.config.clone(),
    };
    let pred = m.predict(x, steps, rng)?;
    Ok((pred - y).square().mean().into_scalar::<f64>())
}

/// One update: a solve on `x: [1, 1]`, the squared error to `y`, backward, clipping, Adam.
/// Returns the loss.
pub fn update_step(
    model: &mut EnergyModel,
    adam: &mut Adam,
    x: Tensor<2>,
    y: Tensor<2>,
    rng: &mut ChaCha8Rng,
) -> Result<f64> {
    let params = model.net.params();
    let train_net = model.net.clone().require_grad();
    let m = EnergyModel {
        net: train_net,
        config: model.config.clone(),
    };
    let pred = m.predict(x, model.config.train_steps(), rng)?;
    let loss = (pred - y).square().mean();
    let value = loss.clone().into_scalar::<f64>();
    ensure!(
        value.is_finite(),
        "the training loss is {value}: the energy network diverged (lower adam.lr or clip_norm)"
    );
    let grads = loss.backward();
    let mut g: Vec<Option<Tensor<2>>> = m
        .net
        .params()
        .iter()
        .map(|p| p.grad(&grads).map(|g| g.autodiff()))
        .collect();
    if model.config.clip_norm > 0.0 {
        clip_grad_norm(&mut g, model.config.clip_norm)?;
    }
    let new = adam.step(params, g)?;
    model.net.set_params(new)?;
    Ok(value)
}

/// Trains one model per its config, writing `runs/<name>/`.
pub fn train(
    config: &RegressionConfig,
    opts: &TrainOptions,
    device: &Device,
) -> Result<RunSummary> {
    config.validate()?;
    let dir = RunDir::create(opts.runs_dir.join(&config.name), opts.existing)?;
    let ck_path = dir.checkpoints().join("latest.safetensors");
    let resuming = opts.existing == Existing::Resume;
    let (mut model, mut state, mut metrics) = if resuming {
        let (model, state) = EnergyModel::load(&ck_path, device)
            .with_context(|| format!("resuming from {}", ck_path.display()))?;
        ensure!(
            model.config
                == RegressionConfig {
                    updates: model.config.updates,
                    ..config.clone()
                },
            "the config differs from the run's own (beyond `updates`); resume with {}",
            dir.file("config.toml").display()
        );
        let metrics = MetricsCsv::resume(dir.file("metrics.csv"), &METRICS, state.update as f64)?;
        (model, state, metrics)
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let model = EnergyModel::new(config, device, &mut rng)?;
        let adam = Adam::new(config.adam.clone(), model.net.params().len())?;
        let state = TrainState {
            update: 0,
            adam,
            plateau: ReduceLrOnPlateau::new(config.plateau.clone())?,
            rng,
            eval_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15),
        };
        let mut metrics = MetricsCsv::create(dir.file("metrics.csv"), &METRICS)?;
        let mut state = state;
        // Update 0: the untrained model, the baseline every curve starts from.
        let mse = train_mse(&model, config.train_steps(), &mut state.eval_rng)?;
        metrics.append(&[0.0, mse, config.adam.lr, 0.0])?;
        (model, state, metrics)
    };
    model.config.updates = config.updates;
    dir.write_config(&model.config)?;

    let (xs, ys) = dataset(config.n_points);
    let bar = progress_bar(
        opts.progress,
        config.updates as u64,
        &config.name,
        "updates",
    );
    bar.set_position(state.update as u64);
    let mut window_time = 0.0f64;
    let mut window_updates = 0usize;
    let mut last_loss = f64::NAN;
    while state.update < config.updates {
        let j = state.rng.random_range(0..config.n_points);
        let x = tensor_from_f64(&[xs[j]], [1, 1], device)?;
        let y = tensor_from_f64(&[ys[j]], [1, 1], device)?;
        for _ in 0..config.inner_updates {
            if state.update >= config.updates {
                break;
            }
            let t0 = Instant::now();
            last_loss = update_step(
                &mut model,
                &mut state.adam,
                x.clone(),
                y.clone(),
                &mut state.rng,
            )
            .with_context(|| format!("update {}", state.update + 1))?;
            let dt = t0.elapsed().as_secs_f64();
            window_time += dt;
            window_updates += 1;
            state.update += 1;
            bar.inc(1);
            if state.update % config.eval_every == 0 || state.update == config.updates {
                let mse = train_mse(&model, config.train_steps(), &mut state.eval_rng)?;
                let lr = state.plateau.step(mse, state.adam.lr());
                state.adam.set_lr(lr);
                let ms = 1e3 * window_time / window_updates.max(1) as f64;
                metrics.append(&[state.update as f64, mse, lr, ms])?;
                bar.set_message(format!(
                    "train MSE {mse:.4}  lr {lr:.1e}  {ms:.2} ms/update"
                ));
                window_time = 0.0;
                window_updates = 0;
            }
            if (config.checkpoint_every > 0 && state.update % config.checkpoint_every == 0)
                || state.update == config.updates
            {
                model.save(&ck_path, &state)?;
            }
        }
    }
    bar.finish_with_message(format!("done: last update loss {last_loss:.4}"));
    let (_, rows) = MetricsCsv::read(metrics.path())?;
    let curve: Vec<(usize, f64)> = rows.iter().map(|r| (r[0] as usize, r[1])).collect();
    let summary = RunSummary {
        dir: dir.path().to_path_buf(),
        curve,
        ms_per_update: dcem::run::step_weighted_mean(&rows, 3),
        model,
    };
    if opts.report {
        let analysis = analyse(&summary.model)?;
        write_run_report(&summary, &analysis)?;
    }
    Ok(summary)
}

/// Test-time behaviour of a trained model.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Solver name.
    pub solver: SolverKind,
    /// Inner steps used in training.
    pub train_steps: usize,
    /// `(steps, train MSE)` for 1..=`ablation_max_steps` test-time steps.
    pub ablation: Vec<(usize, f64)>,
    /// Predictions at the trained step count, one per training point.
    pub predictions: Vec<f64>,
    /// Median `|dE/dy|` at the predictions.
    pub median_abs_grad: f64,
    /// Median `|dE/dy|` over the whole plotted grid, the scale to read the above against.
    pub median_abs_grad_grid: f64,
    /// Fraction of predictions where `d2E/dy2 > 0`.
    pub frac_convex: f64,
    /// Median distance from a prediction to the nearest local minimum of `E(x, .)`.
    pub median_dist_to_min: f64,
    /// Fraction of predictions within 0.1 of a local minimum of `E(x, .)`.
    pub frac_near_min: f64,
    /// The energy surface, normalised per x column.
    pub surface: Surface,
}

/// `E(x, y)` on a grid, log-scaled and normalised to [0, 1] per x column (0 at the column's
/// minimum), as in the paper's fig. 2.
#[derive(Clone, Debug)]
pub struct Surface {
    /// x range of the grid.
    pub x_range: (f64, f64),
    /// y range of the grid.
    pub y_range: (f64, f64),
    /// `values[j][i]` at the j-th y and the i-th x.
    pub values: Vec<Vec<f64>>,
}

/// The y window of the energy surfaces and the local-minimum scan.
pub const Y_RANGE: (f64, f64) = (-7.0, 5.0);

/// Runs the test-time ablation, the local-minimum checks and the energy surface.
pub fn analyse(model: &EnergyModel) -> Result<Analysis> {
    let cfg = &model.config;
    let device = model.net.layers[0].weight.device();
    let m = EnergyModel {
        net: model.net.detached(),
        config: cfg.clone(),
    };
    let n = cfg.n_points;
    let (x, _, xs, ys) = full_batch(&device, n)?;

    // Test-time ablation: 1..=max inner steps, each from the same solver seed.
    let mut ablation = Vec::with_capacity(cfg.ablation_max_steps);
    for steps in 1..=cfg.ablation_max_steps {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1000 + steps as u64));
        let pred = to_f64_vec(m.predict(x.clone(), steps, &mut rng)?)?;
        let mse = pred
            .iter()
            .zip(&ys)
            .map(|(p, y)| (p - y).powi(2))
            .sum::<f64>()
            / n as f64;
        ablation.push((steps, mse));
    }

    // Predictions at the trained step count, and the energy's slope and curvature there.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1000 + cfg.train_steps() as u64));
    let pred_t = m.predict(x.clone(), cfg.train_steps(), &mut rng)?;
    let predictions = to_f64_vec(pred_t.clone())?;
    let grad = to_f64_vec(m.energy_grad_y(x.clone(), pred_t.clone())?)?;
    let h = 1e-2;
    let gp = to_f64_vec(m.energy_grad_y(x.clone(), pred_t.clone().add_scalar(h))?)?;
    let gm = to_f64_vec(m.energy_grad_y(x.clone(), pred_t.add_scalar(-h))?)?;
    let curvature: Vec<f64> = gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();

    // Dense scan of E(x_i, .) over Y_RANGE for the nearest local minimum.
    let ny_scan = 1201;
    let dy = (Y_RANGE.1 - Y_RANGE.0) / (ny_scan - 1) as f64;
    let grid_y: Vec<f64> = (0..ny_scan).map(|k| Y_RANGE.0 + k as f64 * dy).collect();
    let scan = energy_grid(&m, &xs, &grid_y, &device)?;
    let mut dists = Vec::with_capacity(n);
    for i in 0..n {
        let col: Vec<f64> = (0..ny_scan).map(|k| scan[k][i]).collect();
        let minima: Vec<f64> = (1..ny_scan - 1)
            .filter(|&k| col[k] < col[k - 1] && col[k] <= col[k + 1])
            .map(|k| grid_y[k])
            .collect();
        let d = minima
            .iter()
            .map(|ym| (ym - predictions[i]).abs())
            .fold(f64::INFINITY, f64::min);
        dists.push(d);
    }
    // The slope's typical size over the surface, for scale.
    let gx: Vec<f64> = xs
        .iter()
        .flat_map(|x| std::iter::repeat_n(*x, 41))
        .collect();
    let gy: Vec<f64> = (0..n)
        .flat_map(|_| (0..41).map(|k| Y_RANGE.0 + k as f64 * (Y_RANGE.1 - Y_RANGE.0) / 40.0))
        .collect();
    let ggrid = to_f64_vec(m.energy_grad_y(
        tensor_from_f64(&gx, [gx.len(), 1], &device)?,
        tensor_from_f64(&gy, [gy.len(), 1], &device)?,
    )?)?;

    // The plotted surface: per-column normalised log energy.
    let (nxs, nys) = (120, 120);
    let sx: Vec<f64> = (0..nxs)
        .map(|i| 2.0 * PI * (i as f64 + 0.5) / nxs as f64)
        .collect();
    let sy: Vec<f64> = (0..nys)
        .map(|j| Y_RANGE.0 + (Y_RANGE.1 - Y_RANGE.0) * (j as f64 + 0.5) / nys as f64)
        .collect();
    let mut surf = energy_grid(&m, &sx, &sy, &device)?;
    for i in 0..nxs {
        let lo = surf.iter().map(|row| row[i]).fold(f64::INFINITY, f64::min);
        let hi = surf
            .iter()
            .map(|row| (1.0 + row[i] - lo).ln())
            .fold(0.0f64, f64::max)
            .max(1e-12);
        for row in surf.iter_mut() {
            row[i] = (1.0 + row[i] - lo).ln() / hi;
        }
    }

    let abs_grad: Vec<f64> = grad.iter().map(|g| g.abs()).collect();
    let abs_grid: Vec<f64> = ggrid.iter().map(|g| g.abs()).collect();
    Ok(Analysis {
        solver: cfg.solver,
        train_steps: cfg.train_steps(),
        ablation,
        median_abs_grad: median(&abs_grad),
        median_abs_grad_grid: median(&abs_grid),
        frac_convex: curvature.iter().filter(|c| **c > 0.0).count() as f64 / n as f64,
        median_dist_to_min: median(&dists),
        frac_near_min: dists.iter().filter(|d| **d <= 0.1).count() as f64 / n as f64,
        predictions,
        surface: Surface {
            x_range: (0.0, 2.0 * PI),
            y_range: Y_RANGE,
            values: surf,
        },
    })
}

/// `E(x_i, y_k)` as `values[k][i]`.
fn energy_grid(m: &EnergyModel, xs: &[f64], ys: &[f64], device: &Device) -> Result<Vec<Vec<f64>>> {
    let (nx, ny) = (xs.len(), ys.len());
    let gx: Vec<f64> = (0..ny).flat_map(|_| xs.iter().copied()).collect();
    let gy: Vec<f64> = ys
        .iter()
        .flat_map(|y| std::iter::repeat_n(*y, nx))
        .collect();
    let e = to_f64_vec(m.energy(
        tensor_from_f64(&gx, [nx * ny, 1], device)?,
        tensor_from_f64(&gy, [nx * ny, 1], device)?,
    ))?;
    Ok(e.chunks(nx).map(<[f64]>::to_vec).collect())
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        0.5 * (s[k - 1] + s[k])
    }
}

/// The energy-surface panel of one model (paper fig. 2).
pub fn surface_panel(a: &Analysis, n_points: usize) -> Heatmap {
    let (xs, _) = dataset(n_points);
    let fine: Vec<(f64, f64)> = (0..=400)
        .map(|i| 2.0 * PI * i as f64 / 400.0)
        .map(|x| (x, x * x.sin()))
        .collect();
    Heatmap {
        title: format!(
            "{} energy (trained with {} steps)",
            a.solver.label(),
            a.train_steps
        ),
        x_label: "x".into(),
        y_label: "y".into(),
        x_range: a.surface.x_range,
        y_range: a.surface.y_range,
        values: a.surface.values.clone(),
        lines: vec![Series::new("target x sin x", fine).with_color(5)],
        points: vec![
            Series::new(
                "prediction",
                xs.iter()
                    .copied()
                    .zip(a.predictions.iter().copied())
                    .collect(),
            )
            .with_color(1),
        ],
    }
}

/// The test-time ablation chart (paper fig. 6, right) of one or more models.
pub fn ablation_chart(analyses: &[&Analysis]) -> LineChart {
    LineChart {
        title: "Test-time inner steps (trained with 10)".into(),
        x_label: "inner steps at test time".into(),
        y_label: "train MSE".into(),
        log_y: true,
        series: analyses
            .iter()
            .map(|a| {
                Series::new(
                    a.solver.label(),
                    a.ablation.iter().map(|(k, m)| (*k as f64, *m)).collect(),
                )
                .with_color(solver_color(a.solver))
            })
            .collect(),
        vlines: vec![(
            analyses.first().map_or(10, |a| a.train_steps) as f64,
            "trained steps".into(),
        )],
        hlines: vec![],
    }
}

/// The training-curve chart of one or more runs.
pub fn curve_chart(runs: &[(SolverKind, &[(usize, f64)])]) -> LineChart {
    LineChart {
        title: "Training MSE".into(),
        x_label: "update".into(),
        y_label: "train MSE".into(),
        log_y: true,
        series: runs
            .iter()
            .map(|(s, c)| {
                Series::new(s.label(), c.iter().map(|(u, m)| (*u as f64, *m)).collect())
                    .with_color(solver_color(*s))
            })
            .collect(),
        vlines: vec![],
        hlines: vec![],
    }
}

fn solver_color(s: SolverKind) -> usize {
    match s {
        SolverKind::Dcem => 0,
        SolverKind::Gd => 3,
    }
}

fn write_run_report(run: &RunSummary, a: &Analysis) -> Result<()> {
    let n = run.model.config.n_points;
    plot::heatmaps(
        &run.dir.join("energy_surface.png"),
        &[surface_panel(a, n)],
        (640, 520),
    )?;
    plot::line_chart(&run.dir.join("ablation.png"), &ablation_chart(&[a]))?;
    plot::line_chart(
        &run.dir.join("train_mse.png"),
        &curve_chart(&[(run.model.config.solver, &run.curve)]),
    )?;
    let mut csv = String::from("steps,train_mse\n");
    for (k, m) in &a.ablation {
        csv.push_str(&format!("{k},{m}\n"));
    }
    dcem::run::atomic_write(&run.dir.join("ablation.csv"), csv.as_bytes())?;
    Ok(())
}

/// The comparison table (markdown) of a GD and a DCEM run.
pub fn comparison_table(runs: &[(&RunSummary, &Analysis)], probe_steps: &[usize]) -> String {
    let mut s = String::new();
    let header: Vec<String> = runs
        .iter()
        .map(|(_, a)| a.solver.label().to_string())
        .collect();
    s.push_str(&format!("| | {} |\n", header.join(" | ")));
    s.push_str(&format!("|---|{}\n", "---|".repeat(runs.len())));
    let row = |name: &str, f: &dyn Fn(&RunSummary, &Analysis) -> String| {
        let cells: Vec<String> = runs.iter().map(|(r, a)| f(r, a)).collect();
        format!("| {name} | {} |\n", cells.join(" | "))
    };
    s.push_str(&row("updates", &|r, _| {
        r.curve.last().map_or("0".into(), |c| c.0.to_string())
    }));
    s.push_str(&row("final train MSE", &|r, _| {
        r.curve.last().map_or("-".into(), |c| format!("{:.4}", c.1))
    }));
    s.push_str(&row("best train MSE", &|r, _| {
        format!(
            "{:.4}",
            r.curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min)
        )
    }));
    for &k in probe_steps {
        s.push_str(&row(
            &format!("train MSE, {k} inner steps at test time"),
            &|_, a| {
                a.ablation
                    .iter()
                    .find(|(kk, _)| *kk == k)
                    .map_or("-".into(), |(_, m)| format!("{m:.4}"))
            },
        ));
    }
    s.push_str(&row("median abs dE/dy at the prediction", &|_, a| {
        format!("{:.3}", a.median_abs_grad)
    }));
    s.push_str(&row(
        "median abs dE/dy over the surface (scale)",
        &|_, a| format!("{:.3}", a.median_abs_grad_grid),
    ));
    s.push_str(&row("predictions with d2E/dy2 > 0", &|_, a| {
        format!("{:.0}%", 100.0 * a.frac_convex)
    }));
    s.push_str(&row(
        "median distance to the nearest local min of E(x, .)",
        &|_, a| format!("{:.3}", a.median_dist_to_min),
    ));
    s.push_str(&row("predictions within 0.1 of a local min", &|_, a| {
        format!("{:.0}%", 100.0 * a.frac_near_min)
    }));
    s.push_str(&row("ms per update (this run, wall clock)", &|r, _| {
        format!("{:.2}", r.ms_per_update)
    }));
    s
}

/// A finished run read back from its folder (`checkpoints/latest.safetensors` and
/// `metrics.csv`).
pub fn load_run(dir: &Path, device: &Device) -> Result<RunSummary> {
    let ck = dir.join("checkpoints").join("latest.safetensors");
    let (model, _) =
        EnergyModel::load(&ck, device).with_context(|| format!("loading {}", ck.display()))?;
    let (header, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    ensure!(
        header == METRICS,
        "{} is not a regression_ebm metrics file",
        dir.join("metrics.csv").display()
    );
    let curve = rows.iter().map(|r| (r[0] as usize, r[1])).collect();
    let ms = dcem::run::step_weighted_mean(&rows, 3);
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        curve,
        ms_per_update: ms,
        model,
    })
}

/// Recomputes a run's plots and ablation from its folder.
pub fn report_run(run: &RunSummary) -> Result<Analysis> {
    let a = analyse(&run.model)?;
    write_run_report(run, &a)?;
    Ok(a)
}

/// Writes the joint plots and the table of a comparison into `dir`.
pub fn write_comparison(dir: &Path, runs: &[(&RunSummary, &Analysis)]) -> Result<String> {
    if runs.is_empty() {
        bail!("nothing to compare");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let panels: Vec<Heatmap> = runs
        .iter()
        .map(|(r, a)| surface_panel(a, r.model.config.n_points))
        .collect();
    plot::heatmaps(&dir.join("energy_surfaces.png"), &panels, (560, 460))?;
    let analyses: Vec<&Analysis> = runs.iter().map(|(_, a)| *a).collect();
    plot::line_chart(&dir.join("ablation.png"), &ablation_chart(&analyses))?;
    let curves: Vec<(SolverKind, &[(usize, f64)])> = runs
        .iter()
        .map(|(r, _)| (r.model.config.solver, r.curve.as_slice()))
        .collect();
    plot::line_chart(&dir.join("train_mse.png"), &curve_chart(&curves))?;
    let table = comparison_table(runs, &[1, 5, 10, 20, 50]);
    dcem::run::atomic_write(&dir.join("comparison.md"), table.as_bytes())?;
    Ok(table)
}
