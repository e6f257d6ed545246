//! The dynamics model a planet agent learns and plans on (`dynamics` in the config): PlaNet's
//! RSSM with the belief its posterior filters, or a PETS-style probabilistic ensemble over the
//! observation itself.

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor};
use dcem::model::Model;
use dcem::nn::{
    BeliefFilter, Ensemble, Rssm, SequenceBatch, normal_noise, tensor_from_f64, to_f64_vec,
};
use dcem::replay::ReplayBuffer;
use dcem::rl::ControllerModel;
use dcem::run::Checkpoint;
use dcem::train::to_device;
use rand::rngs::ChaCha8Rng;

use crate::config::{Dynamics, PlanetConfig};

/// The RSSM, on the autodiff device, and the belief filtered with its plain copy.
pub struct RssmWorld {
    /// The model's parameters, on the autodiff device (detached between updates).
    pub model: Rssm,
    /// The belief, filtered with the model on the plain device (what planning sees).
    pub filter: BeliefFilter,
}

/// The ensemble, on the autodiff device, its plain copy and the last observation.
pub struct EnsembleWorld {
    /// The ensemble's parameters, on the autodiff device (detached between updates).
    pub model: Ensemble,
    /// The plain copy planning uses.
    pub plain: Ensemble,
    obs: Option<Tensor<2>>,
}

/// The learned dynamics of a planet agent.
pub enum World {
    /// `dynamics = "rssm"`.
    Rssm(Box<RssmWorld>),
    /// `dynamics = "ensemble"`.
    Ensemble(Box<EnsembleWorld>),
}

/// The losses of one update: total, observation, reward, KL (NaN for the ensemble).
pub(crate) struct StepLoss {
    pub total: Tensor<1>,
    pub values: [f64; 4],
    /// States to plan from: the RSSM's posterior states, the ensemble's replayed observations
    /// (the decoder learner's starts).
    pub states: Tensor<2>,
}

fn to_plain_rssm(m: &Rssm, plain: &Device) -> Result<Rssm> {
    let mut out = m.clone();
    out.set_params(to_device(m.params(), plain))?;
    Ok(out)
}

impl World {
    /// A fresh model of `config.dynamics`, its parameters drawn from `rng`.
    pub fn new(
        config: &PlanetConfig,
        obs_dim: usize,
        action_dim: usize,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        let autodiff = device.clone().autodiff();
        Ok(match config.dynamics {
            Dynamics::Rssm => {
                let model = Rssm::new(config.model.clone(), obs_dim, action_dim, &autodiff, rng)?;
                Self::rssm(model, device)?
            }
            Dynamics::Ensemble => {
                let model =
                    Ensemble::new(config.ensemble.clone(), obs_dim, action_dim, &autodiff, rng)?;
                Self::Ensemble(Box::new(EnsembleWorld {
                    plain: model.to_device(device),
                    model,
                    obs: None,
                }))
            }
        })
    }

    /// The world of an RSSM (on the autodiff device) filtering on `plain`.
    pub fn rssm(model: Rssm, plain: &Device) -> Result<Self> {
        Ok(Self::Rssm(Box::new(RssmWorld {
            filter: BeliefFilter::new(to_plain_rssm(&model, plain)?),
            model,
        })))
    }

    /// The trainable parameters (autodiff device).
    pub fn params(&self) -> Vec<Tensor<2>> {
        match self {
            Self::Rssm(w) => w.model.params(),
            Self::Ensemble(w) => w.model.params(),
        }
    }

    /// Replaces the parameters and refreshes the plain copy planning uses.
    pub fn set_params(&mut self, params: Vec<Tensor<2>>, plain: &Device) -> Result<()> {
        match self {
            Self::Rssm(w) => {
                w.model.set_params(params)?;
                w.filter.set_model(to_plain_rssm(&w.model, plain)?);
            }
            Self::Ensemble(w) => {
                w.model.set_params(params)?;
                w.plain = w.model.to_device(plain);
            }
        }
        Ok(())
    }

    /// The model on the autodiff device (what the decoder learns through).
    pub fn train_model(&self) -> &dyn Model {
        match self {
            Self::Rssm(w) => &w.model,
            Self::Ensemble(w) => &w.model,
        }
    }

    /// The plain copy of the model (what planning uses).
    pub fn plain_model(&self) -> &dyn Model {
        match self {
            Self::Rssm(w) => w.filter.model(),
            Self::Ensemble(w) => &w.plain,
        }
    }

    /// The model, detached from any autodiff graph, as a phase-3 controller's model (the
    /// ensemble with its normaliser).
    pub fn controller_model(&self) -> ControllerModel {
        match self {
            Self::Rssm(w) => ControllerModel::Rssm(Box::new(w.model.detached())),
            Self::Ensemble(w) => ControllerModel::Ensemble(Box::new(w.plain.clone())),
        }
    }

    /// The ensemble's normalisers on the autodiff and the plain device (what the terminal
    /// value reads its observations through); None for the RSSM.
    pub fn normalisers(&self) -> Option<(&[Tensor<2>; 4], &[Tensor<2>; 4])> {
        match self {
            Self::Rssm(_) => None,
            Self::Ensemble(w) => Some((w.model.normaliser(), w.plain.normaliser())),
        }
    }

    /// Takes in the observation that follows `prev_action` (the RSSM filters its belief).
    pub fn observe(&mut self, obs: &[f64], prev_action: &[f64]) -> Result<()> {
        match self {
            Self::Rssm(w) => w.filter.update(obs, prev_action)?,
            Self::Ensemble(w) => {
                let device = w.plain.normaliser()[0].device();
                w.obs = Some(tensor_from_f64(obs, [1, obs.len()], &device)?);
            }
        }
        Ok(())
    }

    /// The model planning uses (plain device) and the state to plan from.
    pub fn planning(&self) -> Result<(&dyn Model, Tensor<2>)> {
        Ok(match self {
            Self::Rssm(w) => (w.filter.model() as &dyn Model, w.filter.belief().clone()),
            Self::Ensemble(w) => (
                &w.plain as &dyn Model,
                w.obs
                    .clone()
                    .context("the ensemble plans from an observation: none yet")?,
            ),
        })
    }

    /// Forgets the episode's state.
    pub fn reset(&mut self) {
        match self {
            Self::Rssm(w) => w.filter.reset(),
            Self::Ensemble(w) => w.obs = None,
        }
    }

    /// The end of an episode: the ensemble (and the RSSM with `model.standardise`) re-fits
    /// its normalisation to the whole buffer.
    pub fn end_episode(&mut self, buffer: &ReplayBuffer, plain: &Device) -> Result<()> {
        match self {
            Self::Ensemble(w) => {
                w.model.fit_normaliser(buffer)?;
                w.plain = w.model.to_device(plain);
            }
            Self::Rssm(w) if w.model.config().standardise => {
                w.model.fit_obs_normaliser(buffer)?;
                w.filter.set_model(to_plain_rssm(&w.model, plain)?);
            }
            Self::Rssm(_) => {}
        }
        Ok(())
    }

    /// The loss of one minibatch drawn from `buffer` (from its last `recent` episodes; 0: all),
    /// on the autodiff device, with its parameters tracked (their gradients are taken against
    /// [`World::params`]' order).
    pub(crate) fn loss(
        &self,
        config: &PlanetConfig,
        buffer: &ReplayBuffer,
        recent: usize,
        device: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<(StepLoss, Vec<Tensor<2>>)> {
        match self {
            Self::Rssm(w) => {
                let (b, l) = (config.train.batch, config.train.chunk);
                let chunks = buffer.sample_recent(b, l, recent, rng)?;
                let batch = SequenceBatch {
                    obs: tensor_from_f64(&chunks.obs, [l * b, buffer.obs_dim()], device)?,
                    actions: tensor_from_f64(
                        &chunks.actions,
                        [l * b, buffer.action_dim()],
                        device,
                    )?,
                    rewards: tensor_from_f64(&chunks.rewards, [l * b, 1], device)?,
                    noise: normal_noise(l * b, config.model.stoch, device, rng)?,
                    length: l,
                    batch: b,
                };
                let tracked = w.model.clone().require_grad();
                let loss = tracked.loss(&batch)?;
                let v = to_f64_vec(Tensor::cat(
                    vec![
                        loss.total.clone(),
                        loss.obs.clone(),
                        loss.reward.clone(),
                        loss.kl.clone(),
                    ],
                    0,
                ))?;
                Ok((
                    StepLoss {
                        total: loss.total,
                        values: [v[0], v[1], v[2], v[3]],
                        states: loss.states,
                    },
                    tracked.params(),
                ))
            }
            Self::Ensemble(w) => {
                let batch =
                    w.model
                        .sample_recent(buffer, config.ensemble.batch, recent, device, rng)?;
                let tracked = w.model.clone().require_grad();
                let loss = tracked.loss(&batch)?;
                let v = to_f64_vec(Tensor::cat(
                    vec![loss.total.clone(), loss.obs.clone(), loss.reward.clone()],
                    0,
                ))?;
                let [e, n, od] = batch.obs.dims();
                Ok((
                    StepLoss {
                        total: loss.total,
                        values: [v[0], v[1], v[2], f64::NAN],
                        states: batch.obs.reshape([e * n, od]),
                    },
                    tracked.params(),
                ))
            }
        }
    }

    /// Stores the parameters (and the ensemble's or the standardising RSSM's normalisation).
    pub fn put(&self, ck: &mut Checkpoint) -> Result<()> {
        match self {
            Self::Rssm(w) => {
                for (name, p) in w.model.param_names().iter().zip(w.model.params()) {
                    ck.put_tensor(&format!("model.{name}"), &p)?;
                }
                if w.model.config().standardise {
                    // As bits: a resumed run continues with exactly the same normaliser.
                    let (mean, std) = w.model.obs_normaliser();
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
                    ck.put_meta("model.obs_norm", &(bits(mean), bits(std)))?;
                }
            }
            Self::Ensemble(w) => {
                for (name, p) in w.model.param_names().iter().zip(w.model.params()) {
                    ck.put_tensor(&format!("ensemble.{name}"), &p)?;
                }
                for (i, t) in w.model.normaliser().iter().enumerate() {
                    ck.put_tensor(&format!("ensemble.norm.{i}"), t)?;
                }
            }
        }
        Ok(())
    }

    /// Loads what [`World::put`] stored.
    pub fn load(&mut self, ck: &Checkpoint, device: &Device, plain: &Device) -> Result<()> {
        let hint = "is the [model] / [ensemble] section (and `dynamics`) the same as the \
                    checkpoint's?";
        let load = |prefix: &str, names: Vec<String>| -> Result<Vec<Tensor<2>>> {
            names
                .iter()
                .map(|n| ck.tensor::<2>(&format!("{prefix}.{n}"), device))
                .collect::<dcem::Result<Vec<_>>>()
                .with_context(|| format!("loading the model ({hint})"))
        };
        let params = match self {
            Self::Rssm(w) => {
                if w.model.config().standardise {
                    let (mean, std): (Vec<u64>, Vec<u64>) = ck
                        .meta("model.obs_norm")
                        .with_context(|| format!("loading the observation normaliser ({hint})"))?;
                    let floats = |v: Vec<u64>| v.into_iter().map(f64::from_bits).collect();
                    w.model.set_obs_normaliser(floats(mean), floats(std))?;
                }
                load("model", w.model.param_names())?
            }
            Self::Ensemble(w) => {
                let norm = load("ensemble.norm", (0..4).map(|i| i.to_string()).collect())?;
                let norm: [Tensor<2>; 4] = norm
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("four normalisation tensors"))?;
                w.model.set_normaliser(norm)?;
                load("ensemble", w.model.param_names())?
            }
        };
        self.set_params(params, plain)
    }
}
