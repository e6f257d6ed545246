//! PlaNet's recurrent state-space model (RSSM) for proprioceptive observations (Hafner et al.,
//! 2019; DCEM paper sect. 5.2.2 and appendix D).
//!
//! The latent state is a deterministic GRU path `h` and a stochastic part `s`:
//!
//! ```text
//! h_t = GRU(h_{t-1}, relu(W_in [s_{t-1}, a_{t-1}]))           deterministic path
//! s_t ~ N(prior(h_t))                  (imagination)            prior p(s_t | h_t)
//! s_t ~ N(posterior(h_t, enc(o_t)))    (filtering, training)    posterior q(s_t | h_t, o_t)
//! o_t ~ N(obs_head(h_t, s_t), 1),  r_{t-1} ~ N(reward_head(h_t, s_t), 1)
//! ```
//!
//! The GRU computes its three gate pre-activations with one matmul over `[x, h]` (PlaNet's
//! cell: `r, c, u = split(W [x, h] + b)`, `c = tanh(sigmoid(r) * c)`, `u = sigmoid(u - 1)`,
//! `h' = u * c + (1 - u) * h`). Gaussian standard deviations are `softplus(raw) + min_std`.
//! Training maximises the one-step variational bound (PlaNet's eq. 3) over chunks of sequences:
//! Gaussian log-likelihood of observations and rewards minus `KL(posterior || prior)`, the
//! latter clamped from below at `free_nats` (its mean over the chunk; below it the KL term has
//! no gradient). Two options change what the model is trained for: an open-loop loss
//! (`overshoot`: the prior's mean rolled forward several steps under the recorded actions, its
//! predicted observations and rewards fitted, which is what planning imagines) and KL
//! balancing (`kl_balance`, DreamerV2's: more of the KL's gradient trains the prior). The
//! open-loop loss is computed as tensor ops on the tape; KL balancing on either path.
//!
//! As a [`Model`] the RSSM rolls action sequences forward from a batch of latent states
//! `[h, s]` with the prior's mean as the next stochastic state, and costs each sequence minus
//! its sum of predicted rewards: this is what the planners search over.

use burn::tensor::{DType, Device, Tensor, activation, s};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Model, Rollout};
use crate::nn::ensemble::Moments;
use crate::nn::{Activation, Mlp, tensor_from_f64};
use crate::replay::ReplayBuffer;

// ANCHOR: rssm_config
/// Sizes and loss options of [`Rssm`]. Defaults are the paper's (PlaNet's): a 200-unit GRU,
/// a 30-dimensional stochastic state, 200-unit hidden layers, free nats 3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RssmConfig {
    /// Units of the deterministic (GRU) path.
    pub deter: usize,
    /// Width of the stochastic state.
    pub stoch: usize,
    /// Units of every hidden layer (encoder, prior, posterior, heads, GRU input).
    pub hidden: usize,
    /// Lower bound added to the softplus of every standard deviation.
    pub min_std: f64,
    /// The KL term is `max(mean KL, free_nats)`.
    pub free_nats: f64,
    /// Weight of the KL term.
    pub kl_scale: f64,
    /// Weight of the reward log-likelihood.
    pub reward_scale: f64,
    /// Model observations and rewards in `symlog(x) = sign(x) ln(1 + |x|)` space (DreamerV3's
    /// squashing): the encoder sees and the heads predict symlog values, and imagined rewards
    /// are mapped back with `symexp`. For tasks whose observations and rewards span orders of
    /// magnitude (the swing-up's unbounded cart). With `standardise` it applies to the
    /// rewards only.
    pub symlog: bool,
    /// Model observations standardised per coordinate, `(o - mean) / std`, with the mean and
    /// standard deviation of every observation in the replay buffer (refitted at the end of
    /// every episode, as the ensemble's normaliser is; [`Rssm::fit_obs_normaliser`]) instead
    /// of squashing them: the encoder sees and the observation head predicts standardised
    /// values, so an error weighs the same at every magnitude of a coordinate. Rewards still
    /// follow `symlog`.
    pub standardise: bool,
    /// Steps of the open-loop (multi-step) prediction loss; 0: off. From every posterior
    /// state of a chunk the prior's mean is rolled this many steps forward under the chunk's
    /// actions (as planning imagines), and the observations and rewards it predicts are fitted
    /// like the one-step ones (gradients reach the start states' posterior too).
    pub overshoot: usize,
    /// Weight of the open-loop loss (its observation and reward terms averaged over the steps).
    pub overshoot_scale: f64,
    /// KL balancing (DreamerV2; DreamerV3's dynamics/representation split): with `b`, the
    /// KL term is `b max(KL(sg q || p), free) + (1 - b) max(KL(q || sg p), free)`, the same
    /// value as the plain term, but a share `b` of its gradient trains the prior towards the
    /// posterior and `1 - b` pulls the posterior towards the prior (DreamerV2: 0.8): the prior's
    /// gradient is weighted `kl_scale * b`, the posterior's `kl_scale * (1 - b)`. Unset: the
    /// plain KL (both sides at once, each weighted `kl_scale`).
    pub kl_balance: Option<f64>,
}
// ANCHOR_END: rssm_config

impl Default for RssmConfig {
    fn default() -> Self {
        Self {
            deter: 200,
            stoch: 30,
            hidden: 200,
            min_std: 0.1,
            free_nats: 3.0,
            kl_scale: 1.0,
            reward_scale: 1.0,
            symlog: false,
            standardise: false,
            overshoot: 0,
            overshoot_scale: 1.0,
            kl_balance: None,
        }
    }
}

impl RssmConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        crate::limits::check_sizes(&[
            ("deter", self.deter),
            ("stoch", self.stoch),
            ("hidden", self.hidden),
        ])?;
        for (name, v) in [
            ("min_std", self.min_std),
            ("free_nats", self.free_nats),
            ("kl_scale", self.kl_scale),
            ("reward_scale", self.reward_scale),
            ("overshoot_scale", self.overshoot_scale),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::option(
                    name,
                    format!("must be finite and >= 0, got {v}"),
                ));
            }
        }
        if let Some(b) = self.kl_balance
            && !(b > 0.0 && b < 1.0)
        {
            return Err(Error::option(
                "kl_balance",
                format!(
                    "must be in (0, 1) (DreamerV2: 0.8; leave it out for the plain KL), got {b}"
                ),
            ));
        }
        crate::limits::check_count("overshoot", self.overshoot)?;
        if self.min_std == 0.0 {
            return Err(Error::option(
                "min_std",
                "must be > 0 (it keeps the KL finite)",
            ));
        }
        Ok(())
    }

    /// Whether the loss has terms only its tensor-op path computes (the open-loop loss): then
    /// [`Rssm::loss`] takes that path on every device.
    pub fn needs_tensor_ops(&self) -> bool {
        self.overshoot > 0
    }

    /// Length of a latent state `[h, s]`.
    pub fn state_dim(&self) -> usize {
        self.deter + self.stoch
    }
}

/// A batch of sequence chunks for [`Rssm::loss`], time-major, as plain `f64`/`f32` host data
/// already on the device.
#[derive(Clone, Debug)]
pub struct SequenceBatch {
    /// Observations `[length * batch, obs_dim]`, row `t * batch + b`.
    pub obs: Tensor<2>,
    /// Actions `[length * batch, action_dim]`; row `t * batch + b` is the action taken after
    /// observation `t`.
    pub actions: Tensor<2>,
    /// Rewards `[length * batch, 1]`; row `t * batch + b` follows action `t`.
    pub rewards: Tensor<2>,
    /// Standard normal noise `[length * batch, stoch]` for the posterior samples.
    pub noise: Tensor<2>,
    /// Sequence length.
    pub length: usize,
    /// Sequences in the batch.
    pub batch: usize,
}

/// The terms of the training loss (tensors on the tape, scalars `[1]`).
#[derive(Clone, Debug)]
pub struct RssmLoss {
    /// The loss to minimise: `obs + reward_scale * reward + kl_scale * max(kl, free_nats)`
    /// (the KL term balanced with [`RssmConfig::kl_balance`]), plus `overshoot_scale` times the
    /// open-loop loss with [`RssmConfig::overshoot`].
    pub total: Tensor<1>,
    /// Negative observation log-likelihood per step (constants dropped).
    pub obs: Tensor<1>,
    /// Negative reward log-likelihood per step (constants dropped).
    pub reward: Tensor<1>,
    /// Mean `KL(posterior || prior)` per step, before the free-nats clamp.
    pub kl: Tensor<1>,
    /// The posterior states `[h, s]` of every step, detached, `[length * batch, state_dim]`
    /// (start states for planning from replayed data).
    pub states: Tensor<2>,
}

/// The RSSM. Parameters are plain tensors in [`Mlp`]s, like the rest of `dcem::nn`.
#[derive(Clone, Debug)]
pub struct Rssm {
    config: RssmConfig,
    obs_dim: usize,
    action_dim: usize,
    /// Observation encoder `o -> hidden` (two ReLU layers).
    pub encoder: Mlp,
    /// GRU input layer `[s, a] -> hidden` (followed by ReLU).
    pub input: Mlp,
    /// The GRU's fused gates `[x, h] -> 3 * deter` (reset, candidate, update).
    pub gru: Mlp,
    /// Prior `h -> [mean, raw std]` of the stochastic state.
    pub prior: Mlp,
    /// Posterior `[h, enc(o)] -> [mean, raw std]`.
    pub posterior: Mlp,
    /// Observation head `[h, s] -> o`.
    pub obs_head: Mlp,
    /// Reward head `[h, s] -> r`.
    pub reward_head: Mlp,
    /// Per-coordinate mean and standard deviation of the observations (used with
    /// [`RssmConfig::standardise`]; zeros and ones until fitted).
    obs_norm: ObsNormaliser,
}

/// The observation normaliser of [`RssmConfig::standardise`].
#[derive(Clone, Debug, PartialEq)]
struct ObsNormaliser {
    mean: Vec<f64>,
    std: Vec<f64>,
}

const PARTS: [&str; 7] = [
    "encoder",
    "input",
    "gru",
    "prior",
    "posterior",
    "obs_head",
    "reward_head",
];

impl Rssm {
    /// A freshly initialised model (PyTorch's default initialisation, from `rng`).
    pub fn new<R: Rng + ?Sized>(
        config: RssmConfig,
        obs_dim: usize,
        action_dim: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        if obs_dim == 0 || action_dim == 0 {
            return Err(Error::option(
                "obs_dim/action_dim",
                format!("must be at least 1, got {obs_dim}/{action_dim}"),
            ));
        }
        let (d, z, hd) = (config.deter, config.stoch, config.hidden);
        let relu = Activation::Relu;
        Ok(Self {
            encoder: Mlp::new(&[obs_dim, hd, hd], relu, device, rng)?,
            input: Mlp::new(&[z + action_dim, hd], relu, device, rng)?,
            gru: Mlp::new(&[hd + d, 3 * d], relu, device, rng)?,
            prior: Mlp::new(&[d, hd, 2 * z], relu, device, rng)?,
            posterior: Mlp::new(&[d + hd, hd, 2 * z], relu, device, rng)?,
            obs_head: Mlp::new(&[d + z, hd, hd, obs_dim], relu, device, rng)?,
            reward_head: Mlp::new(&[d + z, hd, hd, 1], relu, device, rng)?,
            obs_norm: ObsNormaliser {
                mean: vec![0.0; obs_dim],
                std: vec![1.0; obs_dim],
            },
            config,
            obs_dim,
            action_dim,
        })
    }

    /// The model's options.
    pub fn config(&self) -> &RssmConfig {
        &self.config
    }

    /// Length of an observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// The networks with their names, in a fixed order.
    pub fn parts(&self) -> [(&'static str, &Mlp); 7] {
        [
            (PARTS[0], &self.encoder),
            (PARTS[1], &self.input),
            (PARTS[2], &self.gru),
            (PARTS[3], &self.prior),
            (PARTS[4], &self.posterior),
            (PARTS[5], &self.obs_head),
            (PARTS[6], &self.reward_head),
        ]
    }

    fn parts_mut(&mut self) -> [&mut Mlp; 7] {
        [
            &mut self.encoder,
            &mut self.input,
            &mut self.gru,
            &mut self.prior,
            &mut self.posterior,
            &mut self.obs_head,
            &mut self.reward_head,
        ]
    }

    /// Every parameter, in the order of [`Rssm::param_names`].
    pub fn params(&self) -> Vec<Tensor<2>> {
        self.parts().iter().flat_map(|(_, m)| m.params()).collect()
    }

    /// Names of the parameters (`gru.layers.0.weight`, ...).
    pub fn param_names(&self) -> Vec<String> {
        self.parts()
            .iter()
            .flat_map(|(p, m)| m.param_names().into_iter().map(move |n| format!("{p}.{n}")))
            .collect()
    }

    /// Replaces every parameter (same order and shapes as [`Rssm::params`]).
    pub fn set_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        let total: usize = self.parts().iter().map(|(_, m)| m.params().len()).sum();
        if params.len() != total {
            return Err(Error::shape(
                "Rssm::set_params",
                format!("{total} tensors"),
                params.len(),
            ));
        }
        let mut it = params.into_iter();
        for m in self.parts_mut() {
            let n = m.params().len();
            m.set_params(it.by_ref().take(n).collect())?;
        }
        Ok(())
    }

    /// Marks every parameter as requiring gradients.
    pub fn require_grad(mut self) -> Self {
        for m in self.parts_mut() {
            *m = m.clone().require_grad();
        }
        self
    }

    /// A copy whose parameters are detached from any autodiff graph.
    pub fn detached(&self) -> Self {
        let mut out = self.clone();
        for m in out.parts_mut() {
            *m = m.detached();
        }
        out
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.parts().iter().map(|(_, m)| m.num_params()).sum()
    }

    /// The GRU cell: `h' = GRU(h, x)` for `h: [n, deter]`, `x: [n, hidden]`.
    pub fn gru_cell(&self, h: Tensor<2>, x: Tensor<2>) -> Tensor<2> {
        let d = self.config.deter;
        let parts = self.gru.forward(Tensor::cat(vec![x, h.clone()], 1));
        // Planning on the CPU (no autodiff, f32): the gating in one host pass.
        if parts.dtype() == DType::F32
            && !parts.is_autodiff()
            && parts.device().without_autodiff() == Device::flex()
            && let Some(out) = super::fast::gru_host(parts.clone(), h.clone(), d)
        {
            return out;
        }
        let reset = activation::sigmoid(parts.clone().slice(s![.., 0..d]));
        let cand = (reset * parts.clone().slice(s![.., d..2 * d])).tanh();
        let update = activation::sigmoid(parts.slice(s![.., 2 * d..3 * d]).sub_scalar(1.0));
        let keep = update.clone().neg().add_scalar(1.0);
        update * cand + keep * h
    }

    /// The deterministic transition `h_t = GRU(h_{t-1}, relu(W_in [s_{t-1}, a_{t-1}]))`.
    pub fn transition(&self, h: Tensor<2>, s: Tensor<2>, a: Tensor<2>) -> Tensor<2> {
        let x = activation::relu(self.input.forward(Tensor::cat(vec![s, a], 1)));
        self.gru_cell(h, x)
    }

    fn gaussian(&self, raw: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let z = self.config.stoch;
        let mean = raw.clone().slice(s![.., 0..z]);
        let std =
            activation::softplus(raw.slice(s![.., z..2 * z]), 1.0).add_scalar(self.config.min_std);
        (mean, std)
    }

    /// The prior's mean and standard deviation of `s_t` given `h_t`.
    pub fn prior_dist(&self, h: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        self.gaussian(self.prior.forward(h))
    }

    /// The posterior's mean and standard deviation of `s_t` given `h_t` and the encoded
    /// observation.
    pub fn posterior_dist(&self, h: Tensor<2>, embed: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        self.gaussian(self.posterior.forward(Tensor::cat(vec![h, embed], 1)))
    }

    /// The encoder's features of observations `[n, obs_dim]` (in environment units; mapped
    /// into the model's space here, [`Rssm::obs_to_model`]).
    pub fn encode(&self, obs: Tensor<2>) -> Tensor<2> {
        activation::relu(self.encoder.forward(self.obs_to_model(obs)))
    }

    /// Observations `[n, obs_dim]` in the space the model sees and predicts them in:
    /// standardised with `standardise`, else squashed as [`Rssm::squash`] does.
    pub fn obs_to_model(&self, obs: Tensor<2>) -> Tensor<2> {
        if self.config.standardise {
            let (mean, std) = self.obs_norm_rows(&obs);
            (obs - mean) / std
        } else {
            self.squash(obs)
        }
    }

    /// The inverse of [`Rssm::obs_to_model`]: predicted observations (the observation head's
    /// output) in environment units.
    pub fn obs_from_model(&self, x: Tensor<2>) -> Tensor<2> {
        if self.config.standardise {
            let (mean, std) = self.obs_norm_rows(&x);
            x * std + mean
        } else {
            self.unsquash(x)
        }
    }

    /// The normaliser's mean and std as `[1, obs_dim]` rows on `like`'s device, in its dtype.
    fn obs_norm_rows(&self, like: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (device, dtype) = (like.device(), like.dtype());
        let row = |v: &[f64]| {
            let data = burn::tensor::TensorData::new(v.to_vec(), [1, v.len()]);
            Tensor::<2>::from_data(data, (&device, dtype))
        };
        (row(&self.obs_norm.mean), row(&self.obs_norm.std))
    }

    /// `symlog(x)` when the model works in symlog space, else `x` (rewards; observations
    /// too unless `standardise` is set).
    pub fn squash(&self, x: Tensor<2>) -> Tensor<2> {
        if self.config.symlog {
            x.clone().sign() * x.abs().log1p()
        } else {
            x
        }
    }

    /// The inverse of [`Rssm::squash`] (`symexp`, its argument clamped to +-30).
    pub fn unsquash(&self, x: Tensor<2>) -> Tensor<2> {
        if self.config.symlog {
            x.clone().sign() * x.abs().clamp_max(30.0).exp().sub_scalar(1.0)
        } else {
            x
        }
    }

    /// The observation normaliser of [`RssmConfig::standardise`]: per-coordinate mean and
    /// standard deviation.
    pub fn obs_normaliser(&self) -> (&[f64], &[f64]) {
        (&self.obs_norm.mean, &self.obs_norm.std)
    }

    /// Replaces the observation normaliser (a checkpoint's): `obs_dim` means and `obs_dim`
    /// finite standard deviations above 0.
    pub fn set_obs_normaliser(&mut self, mean: Vec<f64>, std: Vec<f64>) -> Result<()> {
        if mean.len() != self.obs_dim || std.len() != self.obs_dim {
            return Err(Error::shape(
                "Rssm::set_obs_normaliser mean/std",
                format!("{} values each", self.obs_dim),
                (mean.len(), std.len()),
            ));
        }
        if mean.iter().any(|v| !v.is_finite()) || std.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(Error::Data(format!(
                "the RSSM's observation normaliser must have finite means and finite standard \
                 deviations above 0, got mean {mean:?}, std {std:?}"
            )));
        }
        self.obs_norm = ObsNormaliser { mean, std };
        Ok(())
    }

    /// Fits the observation normaliser to every observation in `buffer`: the mean and
    /// standard deviation (floored at 1e-4) of each coordinate.
    pub fn fit_obs_normaliser(&mut self, buffer: &ReplayBuffer) -> Result<()> {
        let od = self.obs_dim;
        if buffer.obs_dim() != od {
            return Err(Error::shape(
                "Rssm::fit_obs_normaliser buffer",
                format!("observations of {od}"),
                buffer.obs_dim(),
            ));
        }
        let mut moments = Moments::new(od);
        let mut x = vec![0.0; od];
        for ep in buffer.episodes() {
            for o in ep.obs.chunks_exact(od) {
                for (xi, v) in x.iter_mut().zip(o) {
                    *xi = f64::from(*v);
                }
                moments.add(&x);
            }
        }
        if moments.n == 0.0 {
            return Err(Error::Data(
                "the replay buffer holds no observation to normalise with".into(),
            ));
        }
        self.set_obs_normaliser(moments.mean(), moments.std())
    }

    /// Observations (row-major, `obs_dim` per row) mapped into the model's space on the host,
    /// as [`Rssm::obs_to_model`] does.
    pub(crate) fn obs_to_model_host<F: super::host_kernels::Real>(&self, obs: &mut [F]) {
        let c = &self.config;
        if c.standardise {
            for row in obs.chunks_exact_mut(self.obs_dim) {
                for ((v, m), s) in row
                    .iter_mut()
                    .zip(&self.obs_norm.mean)
                    .zip(&self.obs_norm.std)
                {
                    *v = F::of((v.to_f64() - m) / s);
                }
            }
        } else {
            for v in obs.iter_mut() {
                *v = super::host_kernels::squash(*v, c.symlog);
            }
        }
    }

    /// The zero latent state `[n, state_dim]` that every episode (and every training chunk)
    /// starts from.
    pub fn initial_state(&self, n: usize, device: &Device) -> Tensor<2> {
        Tensor::zeros([n, self.config.state_dim()], device)
    }

    /// One filtering step for acting: from the latent state `[h, s]` before the previous
    /// action, that action `[n, action_dim]` and the new observation `[n, obs_dim]`, the new
    /// latent state with the posterior's mean as `s`.
    pub fn filter(&self, state: Tensor<2>, action: Tensor<2>, obs: Tensor<2>) -> Result<Tensor<2>> {
        let n = state.dims()[0];
        let (d, z) = (self.config.deter, self.config.stoch);
        if state.dims() != [n, d + z]
            || action.dims() != [n, self.action_dim]
            || obs.dims() != [n, self.obs_dim]
        {
            return Err(Error::shape(
                "Rssm::filter state/action/obs",
                format!(
                    "[n, {}] / [n, {}] / [n, {}]",
                    d + z,
                    self.action_dim,
                    self.obs_dim
                ),
                (state.dims(), action.dims(), obs.dims()),
            ));
        }
        let h = self.transition(
            state.clone().slice(s![.., 0..d]),
            state.slice(s![.., d..d + z]),
            action,
        );
        let (mean, _) = self.posterior_dist(h.clone(), self.encode(obs));
        Ok(Tensor::cat(vec![h, mean], 1))
    }

    /// The training loss on a chunk batch. The first step of every sequence starts from the
    /// zero state with a zero previous action; the reward after action `t` is predicted from
    /// the state at `t + 1`.
    ///
    /// For f32 and f64 tensors on the CPU backend the loss and its gradient are computed on the
    /// host in one sweep each way (see `rssm_host.rs`) and `total` goes on the tape as its value
    /// plus `sum_i <theta_i - theta_i', g_i>`: gradients reach the parameters (and anything
    /// they were computed from) as through [`Rssm::loss_tensor_ops`], while `obs`, `reward` and
    /// `kl` are values only. Elsewhere, or when a batch tensor itself is tracked, it is
    /// [`Rssm::loss_tensor_ops`].
    pub fn loss(&self, batch: &SequenceBatch) -> Result<RssmLoss> {
        self.check_batch(batch)?;
        let on_cpu = |t: &Tensor<2>| t.device().without_autodiff() == Device::flex();
        let data = [&batch.obs, &batch.actions, &batch.rewards, &batch.noise];
        let params = self.params();
        if !self.config.needs_tensor_ops()
            && data.iter().all(|t| on_cpu(t) && !t.is_tracked())
            && params.iter().all(on_cpu)
            && let Some(out) = match batch.obs.dtype() {
                DType::F32 => self.loss_host::<f32>(batch, &params),
                DType::F64 => self.loss_host::<f64>(batch, &params),
                _ => None,
            }
        {
            return Ok(out);
        }
        self.loss_tensor_ops(batch)
    }

    fn check_batch(&self, batch: &SequenceBatch) -> Result<()> {
        let (l, b) = (batch.length, batch.batch);
        let rows = l * b;
        let check = |t: &Tensor<2>, w: usize, what: &'static str| -> Result<()> {
            if t.dims() != [rows, w] {
                return Err(Error::shape(what, format!("[{rows}, {w}]"), t.dims()));
            }
            Ok(())
        };
        if l < 2 || b == 0 {
            return Err(Error::option(
                "sequence chunk",
                format!("needs length >= 2 and batch >= 1, got {l} x {b}"),
            ));
        }
        if self.config.overshoot >= l {
            return Err(Error::option(
                "overshoot",
                format!(
                    "{} open-loop steps need chunks longer than that, got chunks of {l} steps: \
                     lower `overshoot` or lengthen the chunks",
                    self.config.overshoot
                ),
            ));
        }
        check(&batch.obs, self.obs_dim, "SequenceBatch::obs")?;
        check(&batch.actions, self.action_dim, "SequenceBatch::actions")?;
        check(&batch.rewards, 1, "SequenceBatch::rewards")?;
        check(&batch.noise, self.config.stoch, "SequenceBatch::noise")
    }

    /// [`Rssm::loss`] as tensor operations on the tape, op by op (any device; the reference
    /// the host path is tested against).
    pub fn loss_tensor_ops(&self, batch: &SequenceBatch) -> Result<RssmLoss> {
        self.check_batch(batch)?;
        let (l, b) = (batch.length, batch.batch);
        let (d, z) = (self.config.deter, self.config.stoch);
        let rows = l * b;
        let device = batch.obs.device();
        let embed = self.encode(batch.obs.clone());
        let mut h = Tensor::<2>::zeros([b, d], &device);
        let mut st = Tensor::<2>::zeros([b, z], &device);
        let mut a = Tensor::<2>::zeros([b, self.action_dim], &device);
        let mut feats = Vec::with_capacity(l);
        let mut kls = Vec::with_capacity(l);
        let mut kls_prior = Vec::new();
        for t in 0..l {
            let r = t * b..(t + 1) * b;
            h = self.transition(h, st, a);
            let (pm, ps) = self.prior_dist(h.clone());
            let (qm, qs) = self.posterior_dist(h.clone(), embed.clone().slice(r.clone()));
            st = qm.clone() + qs.clone() * batch.noise.clone().slice(r.clone());
            if self.config.kl_balance.is_some() {
                let (qm_, qs_) = (qm.clone().detach(), qs.clone().detach());
                kls_prior.push(gaussian_kl(qm_, qs_, pm.clone(), ps.clone()));
                kls.push(gaussian_kl(qm, qs, pm.detach(), ps.detach()));
            } else {
                kls.push(gaussian_kl(qm, qs, pm, ps));
            }
            feats.push(Tensor::cat(vec![h.clone(), st.clone()], 1));
            a = batch.actions.clone().slice(r);
        }
        let feats = Tensor::cat(feats, 0);
        let obs_err = self.obs_head.forward(feats.clone()) - self.obs_to_model(batch.obs.clone());
        let obs_loss = (obs_err.clone() * obs_err)
            .sum_dim(1)
            .mean()
            .mul_scalar(0.5);
        let predicted = self.reward_head.forward(feats.clone().slice(b..rows));
        let rew_err = predicted - self.squash(batch.rewards.clone().slice(0..rows - b));
        let rew_loss = (rew_err.clone() * rew_err).mean().mul_scalar(0.5);
        let kl = Tensor::cat(kls, 0).mean();
        let c = &self.config;
        let kl_term = match c.kl_balance {
            // `kl` (its posterior side) and the prior side have the same value.
            Some(b) => {
                let prior_side = Tensor::cat(kls_prior, 0).mean().clamp_min(c.free_nats);
                prior_side.mul_scalar(b) + kl.clone().clamp_min(c.free_nats).mul_scalar(1.0 - b)
            }
            None => kl.clone().clamp_min(c.free_nats),
        };
        let mut total = obs_loss.clone()
            + rew_loss.clone().mul_scalar(c.reward_scale)
            + kl_term.mul_scalar(c.kl_scale);
        let k = c.overshoot;
        if k > 0 {
            total = total
                + self
                    .open_loop_loss(batch, feats.clone(), k)
                    .mul_scalar(c.overshoot_scale);
        }
        Ok(RssmLoss {
            total,
            obs: obs_loss,
            reward: rew_loss,
            kl,
            states: feats.detach(),
        })
    }

    /// The open-loop loss of [`RssmConfig::overshoot`] over `k` steps from the posterior
    /// states `feats` (`[length * batch, state_dim]`, on the tape): every start `t` with
    /// `t + k < length` rolls the prior's mean forward under actions `t..t + k`; step `j`'s
    /// state predicts observation `t + j + 1` and reward `t + j`. Observation plus weighted
    /// reward loss, averaged over the `k` steps.
    fn open_loop_loss(&self, batch: &SequenceBatch, feats: Tensor<2>, k: usize) -> Tensor<1> {
        let (l, b) = (batch.length, batch.batch);
        let (d, z) = (self.config.deter, self.config.stoch);
        let n = (l - k) * b;
        let mut h = feats.clone().slice(s![0..n, 0..d]);
        let mut st = feats.slice(s![0..n, d..d + z]);
        let mut steps = Vec::with_capacity(k);
        for j in 0..k {
            let a = batch.actions.clone().slice(j * b..j * b + n);
            h = self.transition(h, st, a);
            st = self.prior.forward(h.clone()).slice(s![.., 0..z]);
            let f = Tensor::cat(vec![h.clone(), st.clone()], 1);
            let target = self.obs_to_model(batch.obs.clone().slice((j + 1) * b..(j + 1) * b + n));
            let obs_err = self.obs_head.forward(f.clone()) - target;
            let obs = (obs_err.clone() * obs_err)
                .sum_dim(1)
                .mean()
                .mul_scalar(0.5);
            let rew_target = self.squash(batch.rewards.clone().slice(j * b..j * b + n));
            let rew_err = self.reward_head.forward(f) - rew_target;
            let rew = (rew_err.clone() * rew_err).mean().mul_scalar(0.5);
            steps.push(obs + rew.mul_scalar(self.config.reward_scale));
        }
        Tensor::cat(steps, 0).mean()
    }

    /// Imagines `actions: [n, horizon, action_dim]` from latent states `[n, state_dim]` with
    /// the prior's mean as the stochastic state, returning the predicted rewards
    /// `[n, horizon]` and, with `keep_states`, the visited states `[n, horizon + 1, state_dim]`.
    /// Plain f32 tensors on the CPU (planning) are rolled out on the host (`rssm_cpu.rs`);
    /// anything else (a tape, another device) as tensor ops.
    pub fn imagine(
        &self,
        states: Tensor<2>,
        actions: Tensor<3>,
        keep_states: bool,
    ) -> Result<(Tensor<2>, Option<Tensor<3>>)> {
        let [n, sd] = states.dims();
        let [na, horizon, ad] = actions.dims();
        let (d, z) = (self.config.deter, self.config.stoch);
        if sd != d + z || na != n || ad != self.action_dim || horizon == 0 {
            return Err(Error::shape(
                "Rssm rollout states/actions",
                format!("[n, {}] and [n, horizon >= 1, {}]", d + z, self.action_dim),
                (states.dims(), actions.dims()),
            ));
        }
        // Planning on the CPU (plain f32 tensors): the whole rollout on the host.
        if super::plain_cpu(&states)
            && super::plain_cpu(&actions)
            && self.params().iter().all(super::plain_cpu)
            && let Some(out) = self.imagine_host(&states, &actions, keep_states)
        {
            return Ok(out);
        }
        let mut h = states.clone().slice(s![.., 0..d]);
        let mut st = states.clone().slice(s![.., d..d + z]);
        let mut feats = Vec::with_capacity(horizon);
        for t in 0..horizon {
            let a = actions.clone().slice(s![.., t..t + 1, ..]).reshape([n, ad]);
            h = self.transition(h, st, a);
            st = self.prior.forward(h.clone()).slice(s![.., 0..z]);
            feats.push(Tensor::cat(vec![h.clone(), st.clone()], 1));
        }
        // One reward-head pass over all steps: rows t * n + i.
        let all = Tensor::cat(feats, 0);
        let rewards = self
            .unsquash(self.reward_head.forward(all.clone()))
            .reshape([horizon, n])
            .transpose();
        let visited = keep_states.then(|| {
            let steps = all.reshape([horizon, n, d + z]).swap_dims(0, 1);
            Tensor::cat(vec![states.unsqueeze_dim::<3>(1), steps], 1)
        });
        Ok((rewards, visited))
    }
}

impl Model for Rssm {
    fn state_dim(&self) -> usize {
        self.config.state_dim()
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

/// `KL(N(qm, qs) || N(pm, ps))` per row, summed over the state's coordinates, `[rows, 1]`.
fn gaussian_kl(qm: Tensor<2>, qs: Tensor<2>, pm: Tensor<2>, ps: Tensor<2>) -> Tensor<2> {
    let ratio = qs / ps.clone();
    let diff = (qm - pm) / ps;
    let kl = (ratio.clone() * ratio.clone()).sub_scalar(1.0) + diff.clone() * diff
        - ratio.log().mul_scalar(2.0);
    kl.sum_dim(1).mul_scalar(0.5)
}

/// Standard normal noise `[rows, cols]` drawn on the host from `rng` (so a seeded run draws the
/// same noise on every backend), in the device's float dtype.
pub fn normal_noise<R: Rng + ?Sized>(
    rows: usize,
    cols: usize,
    device: &Device,
    rng: &mut R,
) -> Result<Tensor<2>> {
    let mut v = vec![0f32; rows * cols];
    crate::noise::fill_normal(rng, &mut v);
    let v: Vec<f64> = v.into_iter().map(f64::from).collect();
    tensor_from_f64(&v, [rows, cols], device)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
