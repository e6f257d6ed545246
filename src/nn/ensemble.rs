//! A probabilistic ensemble of dynamics networks (PETS: Chua et al., 2018) over fully observed
//! states, as a [`Model`] the planners use.
//!
//! Each of `members` networks maps a normalised `(observation, action)` to a diagonal Gaussian
//! over the normalised `(observation change, reward)`; members are trained on independently
//! drawn minibatches with the Gaussian negative log-likelihood, the log-variance softly bounded
//! to `[min_logvar, max_logvar]`. The members' weights are stacked (`[members * in, out]`
//! matrices) so that every member runs in one batched matrix product.
//!
//! Planning rolls every action sequence out under every member, each member propagating its own
//! mean prediction (trajectory sampling with one particle per member, without aleatoric noise:
//! the native environments are deterministic), and the sequence's cost is minus the predicted
//! return averaged over the members (less, with `disagreement_penalty`, a multiple of the
//! members' standard deviation at every step). Actions are clamped to `[-1, 1]` as the environments do.
//! On the CPU with plain f32 tensors the rollout runs on the host (`ensemble/rollout.rs`: one
//! `gemm` product per layer, member and step); elsewhere as tensor operations.

use burn::tensor::{Device, Tensor, s};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::{Activation, fast, tensor_from_f64};
use crate::error::{Error, Result};
use crate::model::{Model, Rollout};
use crate::replay::ReplayBuffer;

// ANCHOR: ensemble_config
/// Sizes and loss bounds of an [`Ensemble`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleConfig {
    /// Networks in the ensemble.
    pub members: usize,
    /// Units of every hidden layer.
    pub hidden: usize,
    /// Hidden layers per network.
    pub layers: usize,
    /// Hidden-layer nonlinearity.
    pub activation: Activation,
    /// Soft lower bound of the predicted log-variance (normalised units).
    pub min_logvar: f64,
    /// Soft upper bound of the predicted log-variance (normalised units).
    pub max_logvar: f64,
    /// Transitions per member in one update's minibatch.
    pub batch: usize,
    /// The planning reward of a step is the members' mean prediction minus this many standard
    /// deviations over the members (0: the mean). Above 0 the planner is pessimistic where the
    /// members disagree, as they do beyond the states they were trained on, so that it does
    /// not exploit what the model makes up there.
    pub disagreement_penalty: f64,
}
// ANCHOR_END: ensemble_config

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            members: 5,
            hidden: 64,
            layers: 3,
            activation: Activation::Elu,
            min_logvar: -10.0,
            max_logvar: 0.5,
            batch: 256,
            disagreement_penalty: 0.0,
        }
    }
}

impl EnsembleConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        crate::limits::check_sizes(&[
            ("ensemble.members", self.members),
            ("ensemble.hidden", self.hidden),
            ("ensemble.layers", self.layers),
            ("ensemble.batch", self.batch),
        ])?;
        if !(self.disagreement_penalty.is_finite() && self.disagreement_penalty >= 0.0) {
            return Err(Error::option(
                "ensemble.disagreement_penalty",
                format!(
                    "must be finite and >= 0 (0: plan on the members' mean), got {}",
                    self.disagreement_penalty
                ),
            ));
        }
        if !(self.min_logvar.is_finite()
            && self.max_logvar.is_finite()
            && self.min_logvar < self.max_logvar)
        {
            return Err(Error::option(
                "ensemble.min_logvar / max_logvar",
                format!(
                    "must be finite with min < max, got {} and {}",
                    self.min_logvar, self.max_logvar
                ),
            ));
        }
        Ok(())
    }
}

/// The losses of one minibatch (means over members, transitions and coordinates).
#[derive(Clone, Debug)]
pub struct EnsembleLoss {
    /// The Gaussian negative log-likelihood (up to a constant), the quantity trained.
    pub total: Tensor<1>,
    /// Squared error of the mean observation change (normalised units).
    pub obs: Tensor<1>,
    /// Squared error of the mean reward (normalised units).
    pub reward: Tensor<1>,
}

/// Transitions for every member: `[members, n, width]` each.
#[derive(Clone, Debug)]
pub struct TransitionBatch {
    /// Observations before the action.
    pub obs: Tensor<3>,
    /// Actions.
    pub actions: Tensor<3>,
    /// Observations after the action.
    pub next_obs: Tensor<3>,
    /// Rewards (`width` 1).
    pub rewards: Tensor<3>,
}

/// The ensemble: stacked layer parameters and the input/output normalisation.
#[derive(Clone, Debug)]
pub struct Ensemble {
    config: EnsembleConfig,
    obs_dim: usize,
    action_dim: usize,
    /// Per layer `[members * in, out]`.
    weights: Vec<Tensor<2>>,
    /// Per layer `[members, out]`.
    biases: Vec<Tensor<2>>,
    /// `[1, obs + action]` mean and standard deviation of the inputs, then `[1, obs + 1]` of
    /// the targets (observation change, reward).
    norm: [Tensor<2>; 4],
}

impl Ensemble {
    /// A fresh ensemble (PyTorch's default initialisation, drawn from `rng`) with identity
    /// normalisation until [`Ensemble::fit_normaliser`].
    pub fn new<R: Rng + ?Sized>(
        config: EnsembleConfig,
        obs_dim: usize,
        action_dim: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        if obs_dim == 0 || action_dim == 0 {
            return Err(Error::option(
                "ensemble dims",
                "observations and actions need at least one coordinate",
            ));
        }
        let e = config.members;
        let d_in = obs_dim + action_dim;
        let d_out = 2 * (obs_dim + 1);
        let mut sizes = vec![d_in];
        sizes.extend(std::iter::repeat_n(config.hidden, config.layers));
        sizes.push(d_out);
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for w in sizes.windows(2) {
            let bound = 1.0 / (w[0] as f64).sqrt();
            let mut draw = |n: usize| -> Vec<f64> {
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            weights.push(tensor_from_f64(
                &draw(e * w[0] * w[1]),
                [e * w[0], w[1]],
                device,
            )?);
            biases.push(tensor_from_f64(&draw(e * w[1]), [e, w[1]], device)?);
        }
        let ones = |n| tensor_from_f64(&vec![1.0; n], [1, n], device);
        let zeros = |n| tensor_from_f64(&vec![0.0; n], [1, n], device);
        Ok(Self {
            norm: [
                zeros(d_in)?,
                ones(d_in)?,
                zeros(obs_dim + 1)?,
                ones(obs_dim + 1)?,
            ],
            config,
            obs_dim,
            action_dim,
            weights,
            biases,
        })
    }

    /// The options it was built with.
    pub fn config(&self) -> &EnsembleConfig {
        &self.config
    }

    /// Width of an observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// The trainable parameters, layer by layer: weight then bias.
    pub fn params(&self) -> Vec<Tensor<2>> {
        self.weights
            .iter()
            .zip(&self.biases)
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// Names of [`Ensemble::params`] (for checkpoints).
    pub fn param_names(&self) -> Vec<String> {
        (0..self.weights.len())
            .flat_map(|i| [format!("layers.{i}.weight"), format!("layers.{i}.bias")])
            .collect()
    }

    /// Replaces the parameters (same order and shapes as [`Ensemble::params`]).
    pub fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        let want: Vec<[usize; 2]> = self.params().iter().map(Tensor::dims).collect();
        let got: Vec<[usize; 2]> = params.iter().map(Tensor::dims).collect();
        if want != got {
            return Err(Error::shape(
                "Ensemble::set_params",
                format!("{want:?}"),
                got,
            ));
        }
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for (i, p) in params.into_iter().enumerate() {
            if i % 2 == 0 {
                weights.push(p);
            } else {
                biases.push(p);
            }
        }
        self.weights = weights;
        self.biases = biases;
        Ok(())
    }

    /// The normalisation tensors: input mean and std, target mean and std (each `[1, n]`).
    pub fn normaliser(&self) -> &[Tensor<2>; 4] {
        &self.norm
    }

    /// Replaces the normalisation tensors (shapes as [`Ensemble::normaliser`]).
    pub fn set_normaliser(&mut self, norm: [Tensor<2>; 4]) -> Result<()> {
        let want: Vec<[usize; 2]> = self.norm.iter().map(Tensor::dims).collect();
        let got: Vec<[usize; 2]> = norm.iter().map(Tensor::dims).collect();
        if want != got {
            return Err(Error::shape(
                "Ensemble::set_normaliser",
                format!("{want:?}"),
                got,
            ));
        }
        self.norm = norm;
        Ok(())
    }

    /// A copy with every tensor moved to `device` (detached).
    pub fn to_device(&self, device: &Device) -> Self {
        let mv = |t: &Tensor<2>| Tensor::<2>::from_data(t.clone().into_data(), device);
        Self {
            config: self.config.clone(),
            obs_dim: self.obs_dim,
            action_dim: self.action_dim,
            weights: self.weights.iter().map(mv).collect(),
            biases: self.biases.iter().map(mv).collect(),
            norm: self.norm.clone().map(|t| mv(&t)),
        }
    }

    /// Parameters tracked by autodiff.
    pub fn require_grad(mut self) -> Self {
        self.weights = self.weights.into_iter().map(Tensor::require_grad).collect();
        self.biases = self.biases.into_iter().map(Tensor::require_grad).collect();
        self
    }

    /// Sets the normalisation to the mean and standard deviation (floored at 1e-4) of the
    /// inputs and targets of every transition in `buffer` (consecutive steps of an episode).
    pub fn fit_normaliser(&mut self, buffer: &ReplayBuffer) -> Result<()> {
        let (od, ad) = (self.obs_dim, self.action_dim);
        if buffer.obs_dim() != od || buffer.action_dim() != ad {
            return Err(Error::shape(
                "Ensemble::fit_normaliser buffer",
                format!("obs {od}, action {ad}"),
                (buffer.obs_dim(), buffer.action_dim()),
            ));
        }
        let (mut inputs, mut targets) = (Moments::new(od + ad), Moments::new(od + 1));
        let (mut x, mut y) = (vec![0.0; od + ad], vec![0.0; od + 1]);
        for ep in buffer.episodes() {
            for t in 0..ep.len().saturating_sub(1) {
                for c in 0..od {
                    x[c] = f64::from(ep.obs[t * od + c]);
                    y[c] = f64::from(ep.obs[(t + 1) * od + c]) - x[c];
                }
                for c in 0..ad {
                    x[od + c] = f64::from(ep.actions[t * ad + c]);
                }
                y[od] = f64::from(ep.rewards[t]);
                inputs.add(&x);
                targets.add(&y);
            }
        }
        if inputs.n == 0.0 {
            return Err(Error::Data(
                "the replay buffer holds no transition to normalise with".into(),
            ));
        }
        let device = self.norm[0].device();
        let row = |v: Vec<f64>| {
            let n = v.len();
            tensor_from_f64(&v, [1, n], &device)
        };
        self.norm = [
            row(inputs.mean())?,
            row(inputs.std())?,
            row(targets.mean())?,
            row(targets.std())?,
        ];
        Ok(())
    }

    /// The raw output `[members, n, 2 * (obs + 1)]` for normalised inputs `[members, n, in]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let e = self.config.members;
        let last = self.weights.len() - 1;
        let mut h = x;
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let [rows, out] = w.dims();
            h = h.matmul(w.clone().reshape([e, rows / e, out])) + b.clone().reshape([e, 1, out]);
            if i < last {
                h = self.activate(h);
            }
        }
        h
    }

    /// The hidden activation; off the autodiff device (planning), ELU and softplus take the
    /// host kernel's value directly.
    fn activate(&self, h: Tensor<3>) -> Tensor<3> {
        let kind = match self.config.activation {
            Activation::Elu => Some(fast::Kind::Elu),
            Activation::Softplus => Some(fast::Kind::Softplus),
            Activation::Relu | Activation::Tanh => None,
        };
        if let Some(kind) = kind
            && !h.device().is_autodiff()
            && fast::fused_applies(&h)
            && let Some(v) = fast::fused_value(kind, h.clone())
        {
            return v;
        }
        self.config.activation.apply(h)
    }

    fn inputs(&self, obs: Tensor<3>, actions: Tensor<3>) -> Tensor<3> {
        let x = Tensor::cat(vec![obs, actions.clamp(-1.0, 1.0)], 2);
        let [mean, std] = [0, 1].map(|i| self.norm[i].clone().unsqueeze_dim::<3>(0));
        (x - mean) / std
    }

    /// Each member's mean prediction from `obs: [members, n, obs]` and `actions: [members, n,
    /// action]`: the next observation `[members, n, obs]` and the reward `[members, n, 1]`.
    pub fn step(&self, obs: Tensor<3>, actions: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let d = self.obs_dim + 1;
        let out = self.forward(self.inputs(obs.clone(), actions));
        let [mean, std] = [2, 3].map(|i| self.norm[i].clone().unsqueeze_dim::<3>(0));
        let y = out.slice(s![.., .., 0..d]) * std + mean;
        let delta = y.clone().slice(s![.., .., 0..self.obs_dim]);
        (obs + delta, y.slice(s![.., .., self.obs_dim..d]))
    }

    /// The training loss on a batch of transitions (one minibatch per member).
    pub fn loss(&self, batch: &TransitionBatch) -> Result<EnsembleLoss> {
        let (e, od) = (self.config.members, self.obs_dim);
        let [m, n, w] = batch.obs.dims();
        if m != e
            || w != od
            || batch.actions.dims() != [e, n, self.action_dim]
            || batch.next_obs.dims() != [e, n, od]
            || batch.rewards.dims() != [e, n, 1]
        {
            return Err(Error::shape(
                "Ensemble::loss batch",
                format!(
                    "[{e}, n, {od}] obs and next obs, [{e}, n, {}] actions, [{e}, n, 1] rewards",
                    self.action_dim
                ),
                (
                    batch.obs.dims(),
                    batch.actions.dims(),
                    batch.next_obs.dims(),
                    batch.rewards.dims(),
                ),
            ));
        }
        let d = od + 1;
        let out = self.forward(self.inputs(batch.obs.clone(), batch.actions.clone()));
        let [mean, std] = [2, 3].map(|i| self.norm[i].clone().unsqueeze_dim::<3>(0));
        let target = (Tensor::cat(
            vec![
                batch.next_obs.clone() - batch.obs.clone(),
                batch.rewards.clone(),
            ],
            2,
        ) - mean)
            / std;
        let err = (out.clone().slice(s![.., .., 0..d]) - target).powi_scalar(2);
        let (lo, hi) = (self.config.min_logvar, self.config.max_logvar);
        let soft = Activation::Softplus;
        let raw = out.slice(s![.., .., d..2 * d]);
        let logvar = soft.apply(raw.neg().add_scalar(hi)).neg().add_scalar(hi);
        let logvar = soft.apply(logvar.sub_scalar(lo)).add_scalar(lo);
        let nll = (err.clone() * logvar.clone().neg().exp() + logvar).mean();
        Ok(EnsembleLoss {
            total: nll,
            obs: err.clone().slice(s![.., .., 0..od]).mean(),
            reward: err.slice(s![.., .., od..d]).mean(),
        })
    }

    /// Draws `batch` transitions per member from `buffer` (each member its own draw).
    pub fn sample_batch<R: Rng + ?Sized>(
        &self,
        buffer: &ReplayBuffer,
        batch: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<TransitionBatch> {
        self.sample_recent(buffer, batch, 0, device, rng)
    }

    /// [`Ensemble::sample_batch`] from the last `recent` episodes only (0: all of them).
    pub fn sample_recent<R: Rng + ?Sized>(
        &self,
        buffer: &ReplayBuffer,
        batch: usize,
        recent: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<TransitionBatch> {
        let (e, od, ad) = (self.config.members, self.obs_dim, self.action_dim);
        let n = e * batch;
        let c = buffer.sample_recent(n, 2, recent, rng)?;
        let t3 = |v: &[f64], w: usize| -> Result<Tensor<3>> {
            tensor_from_f64(v, [e, batch, w], device)
        };
        Ok(TransitionBatch {
            obs: t3(&c.obs[..n * od], od)?,
            actions: t3(&c.actions[..n * ad], ad)?,
            next_obs: t3(&c.obs[n * od..], od)?,
            rewards: t3(&c.rewards[..n], 1)?,
        })
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.params()
            .iter()
            .map(|p| p.dims().iter().product::<usize>())
            .sum()
    }
}

impl Model for Ensemble {
    fn state_dim(&self) -> usize {
        self.obs_dim
    }

    fn action_dim(&self) -> usize {
        self.action_dim
    }

    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        let n = states.dims()[0];
        let (rewards, states) = self.imagine(states, actions, keep_states)?;
        Ok(Rollout {
            cost: rewards.sum_dim(1).reshape([n]).neg(),
            states,
        })
    }
}

/// Running mean and variance per coordinate.
pub(crate) struct Moments {
    pub(crate) n: f64,
    sum: Vec<f64>,
    sq: Vec<f64>,
}

impl Moments {
    pub(crate) fn new(d: usize) -> Self {
        Self {
            n: 0.0,
            sum: vec![0.0; d],
            sq: vec![0.0; d],
        }
    }

    pub(crate) fn add(&mut self, x: &[f64]) {
        self.n += 1.0;
        for (i, v) in x.iter().enumerate() {
            self.sum[i] += v;
            self.sq[i] += v * v;
        }
    }

    pub(crate) fn mean(&self) -> Vec<f64> {
        self.sum.iter().map(|s| s / self.n).collect()
    }

    /// Floored at 1e-4.
    pub(crate) fn std(&self) -> Vec<f64> {
        self.sum
            .iter()
            .zip(&self.sq)
            .map(|(s, q)| {
                let m = s / self.n;
                (q / self.n - m * m).max(0.0).sqrt().max(1e-4)
            })
            .collect()
    }
}

mod rollout;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
