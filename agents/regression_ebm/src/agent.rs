//! The energy model, its two inner solvers (unrolled GD and DCEM) and the data set.

use std::f64::consts::PI;
use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor};
use dcem::cem::{Cem, CemConfig, CemInit};
use dcem::gd::{GdConfig, unrolled_gd};
use dcem::nn::{Activation, Mlp, tensor_from_f64};
use dcem::optim::{Adam, ReduceLrOnPlateau};
use dcem::run::Checkpoint;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use crate::config::*;

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
        ck.put_meta("point", &[state.point, state.in_point])?;
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
        // Checkpoints written before the position within a point was saved resume at a new
        // point.
        let [point, in_point] = ck.meta::<[usize; 2]>("point").unwrap_or([0, 0]);
        let update: usize = ck.meta("update")?;
        anyhow::ensure!(
            update <= config.updates && point < config.n_points && in_point <= config.inner_updates,
            "checkpoint {} holds impossible counters (update {update} of {}, point {point} of \
             {}, step {in_point} of {} on it): the file is damaged; start the run again with \
             --overwrite",
            path.display(),
            config.updates,
            config.n_points,
            config.inner_updates
        );
        let state = TrainState {
            update,
            point,
            in_point,
            adam,
            plateau: ck.meta("plateau")?,
            rng: ck.rng("rng.train")?,
            eval_rng: ck.rng("rng.eval")?,
        };
        Ok((model, state))
    }
}

/// The training set as tensors `[n, 1]` and as values.
pub(crate) fn full_batch(
    device: &Device,
    n: usize,
) -> Result<(Tensor<2>, Tensor<2>, Vec<f64>, Vec<f64>)> {
    let (xs, ys) = dataset(n);
    Ok((
        tensor_from_f64(&xs, [n, 1], device)?,
        tensor_from_f64(&ys, [n, 1], device)?,
        xs,
        ys,
    ))
}

/// Everything besides the weights that a resumed run needs.
#[derive(Debug)]
pub struct TrainState {
    /// Adam steps taken.
    pub update: usize,
    /// The training point being worked on and the steps already taken on it (of
    /// `inner_updates`; 0: the next step draws a new point), so a resume continues mid-point.
    pub point: usize,
    /// See `point`.
    pub in_point: usize,
    /// The optimiser.
    pub adam: Adam,
    /// The learning-rate schedule.
    pub plateau: ReduceLrOnPlateau,
    /// Point choice and training-time solver noise.
    pub rng: ChaCha8Rng,
    /// Solver noise of the logged evaluations.
    pub eval_rng: ChaCha8Rng,
}
