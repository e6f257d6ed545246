//! Proximal policy optimisation (Schulman et al. 2017) with a clipped surrogate, a value
//! function, GAE(lambda), an entropy bonus, minibatches and epochs, advantage normalisation and
//! gradient clipping, following CleanRL's `ppo_continuous_action.py` (metric names included).
//!
//! The policy is a diagonal Gaussian `N(mean(x), exp(log_std)^2)` around any [`PolicyMean`]: a
//! plain MLP, or the latent DCEM controller over a learned model. `log_std` is one learned vector
//! (state-independent) or a fixed one. The value function is a separate tanh MLP on its own
//! inputs (the observation), so the policy's inputs can be belief states.

use std::time::Instant;

use burn::tensor::{Device, Tensor};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_positive};
use crate::nn::{Activation, Mlp, tensor_from_f64, to_f64_vec};
use crate::optim::{Adam, AdamConfig, clip_grad_norm};
use crate::rl::policy::PolicyMean;
use crate::run::Checkpoint;
use crate::train::grads_of;

// ANCHOR: ppo_config
/// PPO's options. Defaults are CleanRL's continuous-action PPO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Learning rate of the policy (and of `log_std`), > 0.
    pub lr: f64,
    /// Learning rate of the value function; unset: `lr`.
    pub value_lr: Option<f64>,
    /// Adam's epsilon (CleanRL: 1e-5).
    pub adam_eps: f64,
    /// Discount, in [0, 1].
    pub gamma: f64,
    /// GAE's lambda, in [0, 1].
    pub gae_lambda: f64,
    /// Passes over each batch of experience, at least 1.
    pub epochs: usize,
    /// Minibatches per pass, at least 1.
    pub minibatches: usize,
    /// The surrogate's clipping range, > 0.
    pub clip_coef: f64,
    /// Clip the value loss around the old values too.
    pub clip_vloss: bool,
    /// Normalise the advantages within each minibatch.
    pub norm_adv: bool,
    /// Weight of the entropy bonus, >= 0.
    pub ent_coef: f64,
    /// Weight of the value loss, > 0.
    pub vf_coef: f64,
    /// Joint gradient-norm limit of every trained parameter, > 0.
    pub max_grad_norm: f64,
    /// Stop the passes early when the approximate KL of a minibatch exceeds this (unset: never).
    pub target_kl: Option<f64>,
    /// Initial log standard deviation of the Gaussian (ln 0.1 = -2.303 for sigma 0.1).
    pub init_log_std: f64,
    /// Learn `log_std`; otherwise it stays at `init_log_std`.
    pub learn_std: bool,
    /// Hidden width of the value function, at least 1.
    pub value_hidden: usize,
    /// Hidden layers of the value function, at least 1.
    pub value_layers: usize,
}
// ANCHOR_END: ppo_config

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            lr: 3e-4,
            value_lr: None,
            adam_eps: 1e-5,
            gamma: 0.99,
            gae_lambda: 0.95,
            epochs: 10,
            minibatches: 32,
            clip_coef: 0.2,
            clip_vloss: true,
            norm_adv: true,
            ent_coef: 0.0,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            init_log_std: 0.0,
            learn_std: true,
            value_hidden: 64,
            value_layers: 2,
        }
    }
}

impl PpoConfig {
    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_positive("ppo.lr", self.lr)?;
        if let Some(v) = self.value_lr {
            check_positive("ppo.value_lr", v)?;
        }
        check_positive("ppo.adam_eps", self.adam_eps)?;
        for (name, v) in [
            ("ppo.gamma", self.gamma),
            ("ppo.gae_lambda", self.gae_lambda),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::option(name, format!("must be in [0, 1], got {v}")));
            }
        }
        crate::limits::check_sizes(&[
            ("ppo.epochs", self.epochs),
            ("ppo.minibatches", self.minibatches),
            ("ppo.value_hidden", self.value_hidden),
            ("ppo.value_layers", self.value_layers),
        ])?;
        check_positive("ppo.clip_coef", self.clip_coef)?;
        check_positive("ppo.vf_coef", self.vf_coef)?;
        check_positive("ppo.max_grad_norm", self.max_grad_norm)?;
        if !(self.ent_coef >= 0.0 && self.ent_coef.is_finite()) {
            return Err(Error::option(
                "ppo.ent_coef",
                format!("must be finite and >= 0, got {}", self.ent_coef),
            ));
        }
        if let Some(k) = self.target_kl {
            check_positive("ppo.target_kl", k)?;
        }
        if !self.init_log_std.is_finite() {
            return Err(Error::option("ppo.init_log_std", "must be finite"));
        }
        Ok(())
    }
}

/// A batch of on-policy experience, flattened row-major. Fill it while acting, then call
/// [`RolloutBatch::set_advantages`] (from [`crate::rl::gae`]) before [`Ppo::update`].
#[derive(Clone, Debug, Default)]
pub struct RolloutBatch {
    /// Policy inputs `[n * input_dim]`.
    pub inputs: Vec<f64>,
    /// Value-function inputs `[n * value_dim]`.
    pub value_inputs: Vec<f64>,
    /// The noise seed of each step's policy mean.
    pub seeds: Vec<u64>,
    /// Sampled actions `[n * action_dim]`.
    pub actions: Vec<f64>,
    /// Their log-probabilities under the acting policy.
    pub logp: Vec<f64>,
    /// The acting value function's estimates.
    pub values: Vec<f64>,
    /// Advantages.
    pub advantages: Vec<f64>,
    /// Value targets.
    pub returns: Vec<f64>,
}

impl RolloutBatch {
    /// Steps held.
    pub fn len(&self) -> usize {
        self.logp.len()
    }

    /// Whether no step is held.
    pub fn is_empty(&self) -> bool {
        self.logp.is_empty()
    }

    /// Sets the advantages and value targets (one per step).
    pub fn set_advantages(&mut self, advantages: Vec<f64>, returns: Vec<f64>) -> Result<()> {
        if advantages.len() != self.len() || returns.len() != self.len() {
            return Err(Error::shape(
                "RolloutBatch advantages/returns",
                format!("{} each", self.len()),
                (advantages.len(), returns.len()),
            ));
        }
        self.advantages = advantages;
        self.returns = returns;
        Ok(())
    }
}

/// What [`Ppo::act`] returns for a batch of inputs.
#[derive(Clone, Debug)]
pub struct Acted {
    /// Sampled actions `[n * A]` (the means when acting deterministically).
    pub actions: Vec<f64>,
    /// The means `[n * A]`.
    pub means: Vec<f64>,
    /// Log-probabilities of the returned actions.
    pub logp: Vec<f64>,
}

/// Statistics of one [`Ppo::update`] (metric names as in `dcem::run::MetricsCsv`'s scheme).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PpoStats {
    /// `loss/policy` (mean over minibatches).
    pub policy_loss: f64,
    /// `loss/value`.
    pub value_loss: f64,
    /// `loss/entropy`.
    pub entropy: f64,
    /// `loss/approx_kl`.
    pub approx_kl: f64,
    /// `loss/clipfrac`.
    pub clipfrac: f64,
    /// `loss/explained_variance` of the acting values for the targets.
    pub explained_variance: f64,
    /// `loss/grad_norm`: mean gradient norm before clipping.
    pub grad_norm: f64,
    /// Minibatch steps taken.
    pub steps: usize,
    /// Seconds computing the policy means and losses on the tape (planning, for a DCEM policy).
    pub forward_s: f64,
    /// Seconds in backward passes.
    pub backward_s: f64,
    /// Seconds in the optimiser steps.
    pub optim_s: f64,
    /// The policy's standard deviation after the update (mean over coordinates).
    pub std: f64,
}

/// The metric names of [`PpoStats::named`], in its order.
pub const PPO_LOSS_METRICS: [&str; 7] = [
    "loss/policy",
    "loss/value",
    "loss/entropy",
    "loss/approx_kl",
    "loss/clipfrac",
    "loss/explained_variance",
    "loss/grad_norm",
];

impl PpoStats {
    /// `(name, value)` pairs in the framework's metric scheme (names: [`PPO_LOSS_METRICS`]).
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        let values = [
            self.policy_loss,
            self.value_loss,
            self.entropy,
            self.approx_kl,
            self.clipfrac,
            self.explained_variance,
            self.grad_norm,
        ];
        PPO_LOSS_METRICS.into_iter().zip(values).collect()
    }
}

/// `1 - Var(returns - values) / Var(returns)` (NaN when the returns do not vary).
pub fn explained_variance(values: &[f64], returns: &[f64]) -> f64 {
    let var = |x: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = x.collect();
        let n = v.len().max(1) as f64;
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n
    };
    let vr = var(&mut returns.iter().copied());
    if vr == 0.0 {
        return f64::NAN;
    }
    1.0 - var(&mut returns.iter().zip(values).map(|(r, v)| r - v)) / vr
}

/// A PPO learner: the policy mean, `log_std`, the value function and their optimisers, with
/// acting copies on the plain (non-autodiff) device.
#[derive(Debug)]
pub struct Ppo<P: PolicyMean> {
    config: PpoConfig,
    device: Device,
    plain: Device,
    /// The policy mean (parameters on the autodiff device, detached between updates).
    pub policy: P,
    /// The value function `value_dim -> hidden x layers -> 1` (tanh).
    pub value: Mlp,
    /// `log_std` `[1, A]`.
    pub log_std: Tensor<2>,
    acting: P,
    acting_value: Mlp,
    acting_log_std: Tensor<2>,
    adam_pi: Adam,
    adam_v: Adam,
    base_lr: (f64, f64),
}

impl<P: PolicyMean> Ppo<P> {
    /// A learner for `policy`, with a fresh value function on inputs of width `value_dim`.
    /// `device` is the plain device; training runs on its autodiff version.
    pub fn new<R: Rng + ?Sized>(
        config: PpoConfig,
        policy: P,
        value_dim: usize,
        device: &Device,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        if value_dim == 0 {
            return Err(Error::option("value_dim", "must be at least 1"));
        }
        let plain = device.clone();
        let ad = device.clone().autodiff();
        let policy = policy.to_device(&ad)?;
        let mut sizes = vec![value_dim];
        sizes.extend(std::iter::repeat_n(
            config.value_hidden,
            config.value_layers,
        ));
        sizes.push(1);
        let value = Mlp::new(&sizes, Activation::Tanh, &ad, rng)?;
        let a = policy.action_dim();
        let log_std = tensor_from_f64(&vec![config.init_log_std; a], [1, a], &ad)?;
        let n_pi = policy.params().len() + usize::from(config.learn_std);
        let adam = |lr: f64, n: usize| {
            Adam::new(
                AdamConfig {
                    lr,
                    eps: config.adam_eps,
                    ..AdamConfig::default()
                },
                n,
            )
        };
        let v_lr = config.value_lr.unwrap_or(config.lr);
        Ok(Self {
            acting: policy.to_device(&plain)?,
            acting_value: moved_mlp(&value, &plain)?,
            acting_log_std: Tensor::from_data(log_std.clone().into_data(), &plain),
            adam_pi: adam(config.lr, n_pi)?,
            adam_v: adam(v_lr, value.params().len())?,
            base_lr: (config.lr, v_lr),
            policy,
            value,
            log_std,
            config,
            device: ad,
            plain,
        })
    }

    /// The options.
    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    /// The acting copy of the policy mean (plain device).
    pub fn acting_policy(&self) -> &P {
        &self.acting
    }

    /// Scales both learning rates to `fraction` of the configured ones (linear annealing).
    pub fn set_lr_fraction(&mut self, fraction: f64) {
        self.adam_pi.set_lr(self.base_lr.0 * fraction);
        self.adam_v.set_lr(self.base_lr.1 * fraction);
    }

    /// The current standard deviations.
    pub fn std(&self) -> Result<Vec<f64>> {
        to_f64_vec(self.acting_log_std.clone().exp())
    }

    /// Acts on `n` input rows (`inputs: [n * input_dim]`): samples `mean + std * eps` (or
    /// returns the means with `deterministic`) and their log-probabilities.
    pub fn act<R: Rng + ?Sized>(
        &self,
        inputs: &[f64],
        seeds: &[u64],
        deterministic: bool,
        rng: &mut R,
    ) -> Result<Acted> {
        let d = self.acting.input_dim();
        let n = seeds.len();
        if inputs.len() != n * d || inputs.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "Ppo::act needs {n} finite input rows of width {d} (one per seed), got {} values",
                inputs.len()
            )));
        }
        let x = tensor_from_f64(inputs, [n, d], &self.plain)?;
        let mean = self.acting.mean(x, seeds)?;
        let means = to_f64_vec(mean.clone())?;
        let std = self.std()?;
        let a = std.len();
        let mut actions = means.clone();
        if !deterministic {
            for (i, v) in actions.iter_mut().enumerate() {
                let e: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
                *v += std[i % a] * e;
            }
        }
        let logp = to_f64_vec(gaussian_log_prob(
            mean,
            self.acting_log_std.clone(),
            tensor_from_f64(&actions, [n, a], &self.plain)?,
        ))?;
        Ok(Acted {
            actions,
            means,
            logp,
        })
    }

    /// The value estimates of `value_inputs: [n * value_dim]`.
    pub fn values(&self, value_inputs: &[f64]) -> Result<Vec<f64>> {
        let d = self.acting_value.d_in();
        if value_inputs.is_empty() || !value_inputs.len().is_multiple_of(d) {
            return Err(Error::Data(format!(
                "value inputs: need rows of width {d}, got {} values",
                value_inputs.len()
            )));
        }
        let n = value_inputs.len() / d;
        let x = tensor_from_f64(value_inputs, [n, d], &self.plain)?;
        to_f64_vec(self.acting_value.forward(x).reshape([n]))
    }

    /// `epochs` passes of minibatch steps on `batch` (whose advantages are set).
    pub fn update<R: Rng + ?Sized>(
        &mut self,
        batch: &RolloutBatch,
        rng: &mut R,
    ) -> Result<PpoStats> {
        let n = batch.len();
        let (d, a) = (self.policy.input_dim(), self.policy.action_dim());
        let vd = self.value.d_in();
        if n == 0
            || batch.inputs.len() != n * d
            || batch.value_inputs.len() != n * vd
            || batch.actions.len() != n * a
            || batch.seeds.len() != n
            || batch.values.len() != n
            || batch.advantages.len() != n
            || batch.returns.len() != n
        {
            return Err(Error::Data(format!(
                "Ppo::update: a batch of {n} steps needs inputs of {d}, value inputs of {vd} and \
                 actions of {a} per step, and one seed, value, advantage and return per step"
            )));
        }
        let c = &self.config;
        let mb = n.div_ceil(c.minibatches.min(n));
        let mut stats = PpoStats {
            explained_variance: explained_variance(&batch.values, &batch.returns),
            ..PpoStats::default()
        };
        let mut order: Vec<usize> = (0..n).collect();
        let mut sums = [0.0f64; 5];
        'epochs: for _ in 0..c.epochs {
            order.shuffle(rng);
            for idx in order.chunks(mb) {
                let step = self.minibatch_step(batch, idx, &mut stats)?;
                for (s, v) in sums.iter_mut().zip(step) {
                    *s += v;
                }
                if let Some(k) = self.config.target_kl
                    && step[3] > k
                {
                    break 'epochs;
                }
            }
        }
        let s = stats.steps.max(1) as f64;
        stats.policy_loss = sums[0] / s;
        stats.value_loss = sums[1] / s;
        stats.entropy = sums[2] / s;
        stats.approx_kl = sums[3] / s;
        stats.clipfrac = sums[4] / s;
        stats.grad_norm /= s;
        self.refresh()?;
        let std = self.std()?;
        stats.std = std.iter().sum::<f64>() / std.len().max(1) as f64;
        Ok(stats)
    }

    fn refresh(&mut self) -> Result<()> {
        self.acting = self.policy.to_device(&self.plain)?;
        self.acting_value = moved_mlp(&self.value, &self.plain)?;
        self.acting_log_std = Tensor::from_data(self.log_std.clone().into_data(), &self.plain);
        Ok(())
    }

    /// Stores the learner (trained policy parameters, `log_std`, value function, optimisers)
    /// under `prefix`.
    pub fn put_state(&self, ck: &mut Checkpoint, prefix: &str) -> Result<()> {
        for (i, p) in self.policy.params().iter().enumerate() {
            ck.put_tensor(&format!("{prefix}.policy.{i}"), p)?;
        }
        ck.put_tensor(&format!("{prefix}.log_std"), &self.log_std)?;
        ck.put_mlp(&format!("{prefix}.value"), &self.value)?;
        ck.put_adam(&format!("{prefix}.adam_pi"), &self.adam_pi)?;
        ck.put_adam(&format!("{prefix}.adam_v"), &self.adam_v)
    }

    /// Restores what [`Ppo::put_state`] stored.
    pub fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()> {
        let n = self.policy.params().len();
        let params = (0..n)
            .map(|i| ck.tensor::<2>(&format!("{prefix}.policy.{i}"), &self.device))
            .collect::<Result<Vec<_>>>()?;
        self.policy.set_params(params)?;
        self.log_std = ck.tensor(&format!("{prefix}.log_std"), &self.device)?;
        ck.load_mlp(&format!("{prefix}.value"), &mut self.value, &self.device)?;
        let adam_cfg = |lr: f64| AdamConfig {
            lr,
            eps: self.config.adam_eps,
            ..AdamConfig::default()
        };
        self.adam_pi = ck.adam(
            &format!("{prefix}.adam_pi"),
            adam_cfg(self.base_lr.0),
            n + usize::from(self.config.learn_std),
            &self.device,
        )?;
        self.adam_v = ck.adam(
            &format!("{prefix}.adam_v"),
            adam_cfg(self.base_lr.1),
            self.value.params().len(),
            &self.device,
        )?;
        self.refresh()
    }
}

fn moved_mlp(m: &Mlp, device: &Device) -> Result<Mlp> {
    let mut out = m.clone();
    out.set_params(
        m.params()
            .into_iter()
            .map(|p| Tensor::<2>::from_data(p.into_data(), device))
            .collect(),
    )?;
    Ok(out)
}

mod step;

mod loss;
pub use loss::{PpoLoss, PpoTargets, gaussian_log_prob, ppo_loss};
