//! PlaNet-style online model-based RL with a learned RSSM and a (D)CEM planner (paper
//! sect. 5.2.2, appendix D, alg. 3).
//!
//! * Phase 1: seed episodes with uniform random actions, then every step the agent filters its
//!   latent state with the RSSM's posterior, plans with full-space CEM on the learned model
//!   (warm-started by shifting) and adds Gaussian exploration noise; every `update_every` steps
//!   it takes `updates` gradient steps on the variational bound over `[batch x chunk]`
//!   sequence chunks from the replay buffer.
//! * Phase 2: the same loop, planning with latent DCEM through an action decoder
//!   `z -> u_{1:H}` that is learned online: after each model update the agent solves the
//!   latent problem from replayed posterior states and steps the decoder on the predicted cost
//!   of the solution, through DCEM. Phase 2 can start from a phase-1 run (`init_from`).
//!
//! Actions are planned in `[-1, 1]^A` and mapped linearly onto the environment's bounds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, Int, Tensor, TensorData};
use dcem::agent::{Agent, Metrics, Transition};
use dcem::env::{Env, Space};
use dcem::model::{Model, RepeatActions};
use dcem::nn::{Rssm, RssmConfig, SequenceBatch, normal_noise, tensor_from_f64, to_f64_vec};
use dcem::optim::{Adam, AdamConfig, clip_grad_norm};
use dcem::planner::Planner;
use dcem::planning::{
    CemPlanner, CemPlannerConfig, LatentDcemPlanner, LatentPlannerConfig, MlpDecoder,
    MlpDecoderConfig,
};
use dcem::replay::{EpisodeRecord, ReplayBuffer};
use dcem::run::Checkpoint;
use dcem::run::MetricsCsv;
use dcem::run::plot::{LineChart, Series, line_charts};
use dcem::run::{Existing, RunDir, atomic_write, check_run_name, progress_bar};
use dcem_envs::{EnvSpec, SwingupModel, make_env};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

pub use dcem::run::{EvalSummary, RunOptions};

pub mod phase3;

/// Which planner the agent acts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Phase 1: full-space CEM on the learned model.
    Cem,
    /// Phase 2: latent DCEM through a decoder learned online.
    LatentDcem,
    /// Phase 3: PPO fine-tuning of the latent DCEM controller (from a phase-2 run, no
    /// likelihood fitting); see [`phase3`].
    Ppo,
}

/// The online loop's options (alg. 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Episodes with uniform random actions before planning starts (skipped when the run
    /// starts from another run's replay buffer).
    pub seed_episodes: usize,
    /// Planning episodes after the seed episodes.
    pub episodes: usize,
    /// Seed episodes draw actions uniformly from `[-s, s]` (normalised units; 1: the whole
    /// action range). Below 1 for tasks where full-range random forces throw the system far
    /// from anywhere a good policy goes (the swing-up's 100 N cart).
    pub seed_action_scale: f64,
    /// Environment steps each planned action is held (PlaNet: cheetah 4, walker 2).
    pub action_repeat: usize,
    /// Agent steps (after action repeat) between model updates.
    pub update_every: usize,
    /// Gradient steps per model update.
    pub updates: usize,
    /// Sequences per training batch.
    pub batch: usize,
    /// Steps per training sequence.
    pub chunk: usize,
    /// Standard deviation of the Gaussian noise added to planned actions (in `[-1, 1]` units).
    pub exploration_noise: f64,
    /// Evaluate (no exploration noise) after every this many planning episodes (0: never).
    pub eval_every: usize,
    /// Episodes per periodic evaluation.
    pub eval_episodes: usize,
    /// Episodes of the final evaluation (written to `eval.json`; 0: none).
    pub final_eval_episodes: usize,
    /// Write a checkpoint (model, optimisers, decoder, replay buffer, generators) after every
    /// this many episodes, and always at the end.
    pub checkpoint_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed_episodes: 5,
            episodes: 100,
            seed_action_scale: 1.0,
            action_repeat: 4,
            update_every: 10,
            updates: 4,
            batch: 50,
            chunk: 50,
            exploration_noise: 0.3,
            eval_every: 10,
            eval_episodes: 1,
            final_eval_episodes: 10,
            checkpoint_every: 5,
        }
    }
}

/// The model optimiser (PlaNet: Adam, learning rate 1e-3, epsilon 1e-4, gradient norm 1000).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Adam's options.
    pub adam: AdamConfig,
    /// Clip the gradient's global norm to this (0: no clipping).
    pub clip_norm: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            adam: AdamConfig {
                lr: 1e-3,
                eps: 1e-4,
                ..AdamConfig::default()
            },
            clip_norm: 1000.0,
        }
    }
}

/// Online decoder learning (phase 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderTrainConfig {
    /// The decoder network.
    pub net: MlpDecoderConfig,
    /// Its optimiser.
    pub adam: AdamConfig,
    /// Clip the decoder gradient's global norm to this (0: no clipping).
    pub clip_norm: f64,
    /// Replayed posterior states solved from per decoder step.
    pub batch: usize,
    /// A decoder step after every this many model gradient steps.
    pub every: usize,
}

impl Default for DecoderTrainConfig {
    fn default() -> Self {
        Self {
            net: MlpDecoderConfig {
                latent_dim: 8,
                hidden: 200,
                hidden_layers: 2,
                ..MlpDecoderConfig::default()
            },
            adam: AdamConfig {
                lr: 1e-3,
                ..AdamConfig::default()
            },
            clip_norm: 10.0,
            batch: 8,
            every: 4,
        }
    }
}

/// A whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanetConfig {
    /// Run folder name under the runs folder.
    pub name: String,
    /// Seed of the model's initialisation, exploration noise, batch sampling and episode starts.
    pub seed: u64,
    /// The planner to act with.
    pub phase: Phase,
    /// A run folder to start from (its model, model optimiser and replay buffer; and its
    /// decoder when it has one). Empty: start from scratch.
    pub init_from: String,
    /// Keep the replay buffer of `init_from` (else start with an empty one and seed episodes).
    pub keep_buffer: bool,
    /// The environment.
    pub env: EnvSpec,
    /// The online loop.
    pub train: TrainConfig,
    /// The RSSM.
    pub model: RssmConfig,
    /// The model's optimiser.
    pub optim: OptimConfig,
    /// Full-space CEM (phase 1). Its horizon is also the decoder's.
    pub cem: CemPlannerConfig,
    /// Latent DCEM (phase 2).
    pub latent: LatentPlannerConfig,
    /// The decoder and its online training (phase 2).
    pub decoder: DecoderTrainConfig,
    /// PPO fine-tuning (phase 3).
    pub finetune: phase3::FinetuneConfig,
}

impl Default for PlanetConfig {
    fn default() -> Self {
        Self {
            name: "planet".into(),
            seed: 0,
            phase: Phase::Cem,
            init_from: String::new(),
            keep_buffer: true,
            env: EnvSpec::default(),
            train: TrainConfig::default(),
            model: RssmConfig::default(),
            optim: OptimConfig::default(),
            cem: CemPlannerConfig::default(),
            latent: LatentPlannerConfig::default(),
            decoder: DecoderTrainConfig::default(),
            finetune: phase3::FinetuneConfig::default(),
        }
    }
}

impl PlanetConfig {
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
        let t = &self.train;
        for (name, v) in [
            ("train.action_repeat", t.action_repeat),
            ("train.update_every", t.update_every),
            ("train.batch", t.batch),
            ("train.checkpoint_every", t.checkpoint_every),
        ] {
            ensure!(v >= 1, "`{name}` must be at least 1, got {v}");
        }
        ensure!(
            t.chunk >= 2,
            "`train.chunk` must be at least 2, got {}",
            t.chunk
        );
        ensure!(
            t.exploration_noise.is_finite() && t.exploration_noise >= 0.0,
            "`train.exploration_noise` must be finite and >= 0, got {}",
            t.exploration_noise
        );
        ensure!(
            t.seed_action_scale > 0.0 && t.seed_action_scale <= 1.0,
            "`train.seed_action_scale` must be in (0, 1], got {}",
            t.seed_action_scale
        );
        ensure!(
            t.eval_every == 0 || t.eval_episodes >= 1,
            "`train.eval_episodes` must be at least 1 when `train.eval_every` is set"
        );
        ensure!(
            t.seed_episodes >= 1 || !self.init_from.is_empty(),
            "`train.seed_episodes` must be at least 1 unless the run starts from `init_from`"
        );
        if let EnvSpec::Swingup { episode_steps } = self.env {
            ensure!(
                episode_steps / t.action_repeat >= t.chunk,
                "`train.chunk` ({}) is longer than a swing-up episode in agent steps \
                 ({episode_steps} / action_repeat {} = {}): shorten the chunk or lengthen \
                 `env.episode_steps`",
                t.chunk,
                t.action_repeat,
                episode_steps / t.action_repeat
            );
        }
        self.model.validate().context("in [model]")?;
        self.optim.adam.validate().context("in [optim.adam]")?;
        ensure!(
            self.optim.clip_norm.is_finite() && self.optim.clip_norm >= 0.0,
            "`optim.clip_norm` must be finite and >= 0"
        );
        self.cem.validate().context("in [cem]")?;
        ensure!(
            (self.cem.action_low, self.cem.action_high) == (-1.0, 1.0),
            "`cem.action_low`/`cem.action_high` must stay -1/1: planned actions are normalised \
             and mapped onto the environment's bounds"
        );
        self.latent.validate().context("in [latent]")?;
        self.decoder.net.validate().context("in [decoder.net]")?;
        self.decoder.adam.validate().context("in [decoder.adam]")?;
        ensure!(
            self.decoder.batch >= 1 && self.decoder.every >= 1,
            "`decoder.batch` and `decoder.every` must be at least 1"
        );
        ensure!(
            self.decoder.clip_norm.is_finite() && self.decoder.clip_norm >= 0.0,
            "`decoder.clip_norm` must be finite and >= 0"
        );
        if self.phase == Phase::Ppo {
            ensure!(
                !self.init_from.is_empty(),
                "phase = \"ppo\" fine-tunes a phase-2 run: set `init_from` to its folder"
            );
            self.finetune.validate().context("in [finetune]")?;
        }
        Ok(())
    }

    /// Seed episodes plus planning episodes.
    pub fn total_episodes(&self) -> usize {
        self.train.seed_episodes + self.train.episodes
    }
}

/// The columns of `metrics.csv`, one row per episode.
pub const METRICS: [&str; 15] = [
    "episode",
    "env_steps",
    "return",
    "eval_return",
    "loss",
    "loss_obs",
    "loss_reward",
    "kl",
    "decoder_cost",
    "updates",
    "plan_ms",
    "update_ms",
    "steps_per_s",
    "wall_s",
    "seed_episode",
];

/// The device named on the command line. Only the CPU backend is built in; the code is generic
/// over burn's device, so a GPU backend is a matter of enabling it in burn's features.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::flex()),
        other => bail!(
            "unknown or unavailable device {other:?}: this build has the CPU backend only \
             (`--device cpu`); a CUDA build needs burn's `cuda` feature"
        ),
    }
}

/// Maps normalised actions in `[-1, 1]` onto an environment's box.
#[derive(Clone, Debug)]
pub struct ActionMap {
    low: Vec<f64>,
    high: Vec<f64>,
}

impl ActionMap {
    /// The map for `env`'s action space (a bounded box).
    pub fn new(env: &dyn Env) -> Result<Self> {
        let Space::Box(b) = env.action_space() else {
            bail!("planet_dcem needs a continuous (Box) action space");
        };
        ensure!(
            b.low().iter().chain(b.high()).all(|v| v.is_finite()),
            "planet_dcem needs finite action bounds, got {:?} .. {:?}",
            b.low(),
            b.high()
        );
        Ok(Self {
            low: b.low().to_vec(),
            high: b.high().to_vec(),
        })
    }

    /// Width of an action.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// The environment's action for a normalised one (clipped to `[-1, 1]` first).
    pub fn to_env(&self, a: &[f64]) -> Vec<f64> {
        a.iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(x, (l, h))| l + 0.5 * (x.clamp(-1.0, 1.0) + 1.0) * (h - l))
            .collect()
    }
}

fn to_plain_rssm(m: &Rssm, plain: &Device) -> Result<Rssm> {
    let mut out = m.clone();
    let params = m
        .params()
        .into_iter()
        .map(|p| Tensor::<2>::from_data(p.into_data(), plain))
        .collect();
    out.set_params(params)?;
    Ok(out)
}

fn to_plain_decoder(d: &MlpDecoder, plain: &Device) -> Result<MlpDecoder> {
    let mut out = d.clone();
    let params = d
        .net
        .params()
        .into_iter()
        .map(|p| Tensor::<2>::from_data(p.into_data(), plain))
        .collect();
    out.net.set_params(params)?;
    Ok(out)
}

fn grads_of(params: &[Tensor<2>], grads: &burn::tensor::Gradients) -> Vec<Option<Tensor<2>>> {
    params
        .iter()
        .map(|p| p.grad(grads).map(|g| g.autodiff()))
        .collect()
}

/// Running means of the update metrics within an episode.
#[derive(Clone, Debug, Default)]
struct UpdateStats {
    n: usize,
    loss: f64,
    obs: f64,
    reward: f64,
    kl: f64,
    decoder_n: usize,
    decoder_cost: f64,
    seconds: f64,
}

impl UpdateStats {
    fn mean(&self, v: f64) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            v / self.n as f64
        }
    }
}

/// The agent: an RSSM, its optimiser, the planners, the replay buffer and the belief state.
pub struct PlanetAgent {
    config: PlanetConfig,
    device: Device,
    plain: Device,
    /// The model's parameters, on the autodiff device (detached between updates).
    pub model: Rssm,
    plain_model: Rssm,
    model_adam: Adam,
    cem: CemPlanner,
    latent_act: Option<LatentDcemPlanner<MlpDecoder>>,
    latent_train: Option<LatentDcemPlanner<MlpDecoder>>,
    decoder_adam: Option<Adam>,
    /// The replay buffer.
    pub buffer: ReplayBuffer,
    rng: ChaCha8Rng,
    belief: Tensor<2>,
    prev_action: Vec<f64>,
    /// Add exploration noise in `act`.
    pub explore: bool,
    steps: usize,
    stats: UpdateStats,
    plan_seconds: f64,
    plans: usize,
}

impl PlanetAgent {
    /// A fresh agent for observations of width `obs_dim` and actions of width `action_dim`.
    pub fn new(
        config: &PlanetConfig,
        obs_dim: usize,
        action_dim: usize,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let plain = device.clone();
        let device = device.clone().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let model = Rssm::new(config.model.clone(), obs_dim, action_dim, &device, &mut rng)?;
        let n = model.params().len();
        let (latent_act, latent_train, decoder_adam) = if config.phase == Phase::LatentDcem {
            let decoder = MlpDecoder::new(
                &config.decoder.net,
                config.cem.horizon,
                action_dim,
                (-1.0, 1.0),
                &device,
                &mut rng,
            )?;
            let n_dec = decoder.net.params().len();
            let mut act_cfg = config.latent.clone();
            act_cfg.seed = config.latent.seed.wrapping_add(1);
            (
                Some(LatentDcemPlanner::new(
                    act_cfg,
                    to_plain_decoder(&decoder, &plain)?,
                )?),
                Some(LatentDcemPlanner::new(config.latent.clone(), decoder)?),
                Some(Adam::new(config.decoder.adam.clone(), n_dec)?),
            )
        } else {
            (None, None, None)
        };
        Ok(Self {
            plain_model: to_plain_rssm(&model, &plain)?,
            model_adam: Adam::new(config.optim.adam.clone(), n)?,
            model,
            cem: CemPlanner::new(config.cem.clone())?,
            latent_act,
            latent_train,
            decoder_adam,
            buffer: ReplayBuffer::new(obs_dim, action_dim),
            rng,
            belief: Tensor::zeros([1, config.model.state_dim()], &plain),
            prev_action: vec![0.0; action_dim],
            explore: true,
            steps: 0,
            stats: UpdateStats::default(),
            plan_seconds: 0.0,
            plans: 0,
            config: config.clone(),
            device,
            plain,
        })
    }

    /// The action decoder (phase 2), as trained.
    pub fn decoder(&self) -> Option<&MlpDecoder> {
        self.latent_train.as_ref().map(|p| p.decoder())
    }

    /// The learned model on the plain (non-autodiff) device, as planning sees it.
    pub fn planning_model(&self) -> &Rssm {
        &self.plain_model
    }

    /// The agent's generator (exploration noise, random actions, batch sampling).
    pub fn rng_mut(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    fn random_action(&mut self) -> Vec<f64> {
        let s = self.config.train.seed_action_scale;
        (0..self.prev_action.len())
            .map(|_| s * self.rng.random_range(-1.0..1.0))
            .collect()
    }

    /// Plans from the current belief (after [`PlanetAgent::filter`]).
    fn plan_action(&mut self) -> Result<Vec<f64>> {
        let t0 = Instant::now();
        let plan = match &mut self.latent_act {
            Some(p) => p.plan(&self.plain_model, self.belief.clone())?,
            None => self.cem.plan(&self.plain_model, self.belief.clone())?,
        };
        let a = to_f64_vec(plan.first_action())?;
        self.plan_seconds += t0.elapsed().as_secs_f64();
        self.plans += 1;
        Ok(a)
    }

    /// Updates the belief with the new observation (and the previous action).
    fn filter(&mut self, obs: &[f64]) -> Result<()> {
        let a = tensor_from_f64(&self.prev_action, [1, self.prev_action.len()], &self.plain)?;
        let o = tensor_from_f64(obs, [1, obs.len()], &self.plain)?;
        self.belief = self.plain_model.filter(self.belief.clone(), a, o)?;
        Ok(())
    }

    /// One model update (and, in phase 2, a decoder step every `decoder.every` updates).
    pub fn train_step(&mut self) -> Result<()> {
        let t0 = Instant::now();
        let (b, l) = (self.config.train.batch, self.config.train.chunk);
        let chunks = self.buffer.sample(b, l, &mut self.rng)?;
        let dev = &self.device;
        let z = self.config.model.stoch;
        let batch = SequenceBatch {
            obs: tensor_from_f64(&chunks.obs, [l * b, self.buffer.obs_dim()], dev)?,
            actions: tensor_from_f64(&chunks.actions, [l * b, self.buffer.action_dim()], dev)?,
            rewards: tensor_from_f64(&chunks.rewards, [l * b, 1], dev)?,
            noise: normal_noise(l * b, z, dev, &mut self.rng)?,
            length: l,
            batch: b,
        };
        let tracked = self.model.clone().require_grad();
        let loss = tracked.loss(&batch)?;
        let values = to_f64_vec(Tensor::cat(
            vec![
                loss.total.clone(),
                loss.obs.clone(),
                loss.reward.clone(),
                loss.kl.clone(),
            ],
            0,
        ))?;
        ensure!(
            values.iter().all(|v| v.is_finite()),
            "the model loss is not finite ({values:?}): lower optim.adam.lr or check the \
             observations"
        );
        let grads = loss.total.backward();
        let mut g = grads_of(&tracked.params(), &grads);
        if self.config.optim.clip_norm > 0.0 {
            clip_grad_norm(&mut g, self.config.optim.clip_norm)?;
        }
        let new = self.model_adam.step(self.model.params(), g)?;
        self.model.set_params(new)?;
        self.plain_model = to_plain_rssm(&self.model, &self.plain)?;
        let s = &mut self.stats;
        s.n += 1;
        s.loss += values[0];
        s.obs += values[1];
        s.reward += values[2];
        s.kl += values[3];
        if self.latent_train.is_some() && self.stats.n.is_multiple_of(self.config.decoder.every) {
            let cost = self.decoder_step(loss.states)?;
            self.stats.decoder_n += 1;
            self.stats.decoder_cost += cost;
        }
        self.stats.seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// One decoder step: solve the latent problem with DCEM from `decoder.batch` of the given
    /// posterior states, and step the decoder on the predicted cost of the solutions.
    fn decoder_step(&mut self, states: Tensor<2>) -> Result<f64> {
        let rows = states.dims()[0];
        let idx: Vec<i64> = (0..self.config.decoder.batch)
            .map(|_| self.rng.random_range(0..rows) as i64)
            .collect();
        let n = idx.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &self.device);
        let starts = states.select(0, idx);
        let (Some(planner), Some(adam)) = (&mut self.latent_train, &mut self.decoder_adam) else {
            bail!("decoder_step needs the latent planner");
        };
        let params = planner.decoder().net.params();
        let tracked = planner.decoder().clone().require_grad();
        *planner.decoder_mut() = tracked;
        let model = &self.model;
        let plan = planner.plan(model, starts.clone())?;
        let cost = model.cost(starts, plan.actions)?.mean();
        let value = cost.clone().into_scalar::<f64>();
        ensure!(
            value.is_finite(),
            "the decoder's training cost is {value}: lower decoder.adam.lr or decoder.clip_norm"
        );
        let grads = cost.backward();
        let mut g = grads_of(&planner.decoder().net.params(), &grads);
        if self.config.decoder.clip_norm > 0.0 {
            clip_grad_norm(&mut g, self.config.decoder.clip_norm)?;
        }
        let new = adam.step(params, g)?;
        let decoder = planner.decoder_mut();
        decoder.net.set_params(new)?;
        *decoder = decoder.detached();
        let plain = to_plain_decoder(planner.decoder(), &self.plain)?;
        if let Some(act) = &mut self.latent_act {
            *act.decoder_mut() = plain;
        }
        Ok(value)
    }

    fn take_stats(&mut self) -> (UpdateStats, f64, usize) {
        let out = (
            std::mem::take(&mut self.stats),
            self.plan_seconds,
            self.plans,
        );
        self.plan_seconds = 0.0;
        self.plans = 0;
        out
    }

    /// Stores everything a resumed run needs (not the buffer: see [`ReplayBuffer::save`]).
    fn put_state(&self, ck: &mut Checkpoint) -> Result<()> {
        for (name, p) in self.model.param_names().iter().zip(self.model.params()) {
            ck.put_tensor(&format!("model.{name}"), &p)?;
        }
        ck.put_adam("model_adam", &self.model_adam)?;
        if let (Some(p), Some(adam)) = (&self.latent_train, &self.decoder_adam) {
            ck.put_mlp("decoder", &p.decoder().net)?;
            ck.put_adam("decoder_adam", adam)?;
            ck.put_rng("rng.latent_train", p.rng())?;
        }
        if let Some(p) = &self.latent_act {
            ck.put_rng("rng.latent_act", p.rng())?;
        }
        ck.put_rng("rng.agent", &self.rng)?;
        ck.put_rng("rng.cem", self.cem.rng())?;
        ck.put_meta("agent_steps", &self.steps)?;
        Ok(())
    }

    /// Loads the model (and its optimiser) from a checkpoint; with `everything`, also the
    /// decoder, generators and step count (resuming this run rather than starting from another).
    fn load_state(&mut self, ck: &Checkpoint, everything: bool) -> Result<()> {
        let params = self
            .model
            .param_names()
            .iter()
            .map(|n| ck.tensor::<2>(&format!("model.{n}"), &self.device))
            .collect::<dcem::Result<Vec<_>>>()
            .context("loading the model (is the [model] section the same as the checkpoint's?)")?;
        self.model.set_params(params)?;
        self.plain_model = to_plain_rssm(&self.model, &self.plain)?;
        self.model_adam = ck.adam(
            "model_adam",
            self.config.optim.adam.clone(),
            self.model.params().len(),
            &self.device,
        )?;
        let has_decoder = ck.has_tensor("decoder.layers.0.weight");
        if let (Some(p), Some(adam)) = (&mut self.latent_train, &mut self.decoder_adam)
            && has_decoder
        {
            ck.load_mlp("decoder", &mut p.decoder_mut().net, &self.device)?;
            *adam = ck.adam(
                "decoder_adam",
                self.config.decoder.adam.clone(),
                p.decoder().net.params().len(),
                &self.device,
            )?;
            let plain = to_plain_decoder(p.decoder(), &self.plain)?;
            if let Some(act) = &mut self.latent_act {
                *act.decoder_mut() = plain;
            }
        }
        if everything {
            self.rng = ck.rng("rng.agent")?;
            self.cem.set_rng(ck.rng("rng.cem")?);
            if let Some(p) = &mut self.latent_train {
                p.set_rng(ck.rng("rng.latent_train")?);
            }
            if let Some(p) = &mut self.latent_act {
                p.set_rng(ck.rng("rng.latent_act")?);
            }
            self.steps = ck.meta("agent_steps")?;
        }
        Ok(())
    }
}

impl Agent for PlanetAgent {
    /// Filters the belief with `obs`, plans, and returns the first planned action (normalised,
    /// with exploration noise when `explore` is set).
    fn act(&mut self, obs: &[f64]) -> dcem::Result<Vec<f64>> {
        self.filter(obs)
            .map_err(|e| dcem::Error::Data(format!("{e:#}")))?;
        let mut a = self
            .plan_action()
            .map_err(|e| dcem::Error::Data(format!("{e:#}")))?;
        if self.explore && self.config.train.exploration_noise > 0.0 {
            let noise = rand_distr::Normal::new(0.0, self.config.train.exploration_noise)
                .map_err(|e| dcem::Error::option("train.exploration_noise", e.to_string()))?;
            for v in &mut a {
                *v =
                    (*v + rand_distr::Distribution::sample(&noise, &mut self.rng)).clamp(-1.0, 1.0);
            }
        }
        self.prev_action = a.clone();
        Ok(a)
    }

    fn observe(&mut self, _transition: &Transition) -> dcem::Result<()> {
        self.steps += 1;
        Ok(())
    }

    /// Model (and decoder) updates when `update_every` steps have passed since the last.
    fn update(&mut self) -> dcem::Result<Metrics> {
        if !self.steps.is_multiple_of(self.config.train.update_every)
            || self.buffer.episodes().is_empty()
        {
            return Ok(Vec::new());
        }
        for _ in 0..self.config.train.updates {
            self.train_step()
                .map_err(|e| dcem::Error::Data(format!("{e:#}")))?;
        }
        let s = &self.stats;
        Ok(vec![
            ("loss/model", s.mean(s.loss)),
            ("loss/kl", s.mean(s.kl)),
        ])
    }

    fn reset(&mut self) {
        self.belief = Tensor::zeros([1, self.config.model.state_dim()], &self.plain);
        self.prev_action.iter_mut().for_each(|v| *v = 0.0);
        self.cem.reset();
        if let Some(p) = &mut self.latent_act {
            p.reset();
        }
    }
}

/// How an episode chooses actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Uniform random actions (seed episodes).
    Random,
    /// Planned, with exploration noise and model updates.
    Train,
    /// Planned, no noise, no updates.
    Eval,
}

/// What one episode did.
#[derive(Clone, Debug)]
pub struct EpisodeOutcome {
    /// Return in environment reward.
    pub ret: f64,
    /// Environment steps taken.
    pub env_steps: usize,
    /// The recorded agent steps.
    pub record: EpisodeRecord,
}

/// Runs one episode of `env` (reset with `seed`) with the agent.
pub fn run_episode(
    agent: &mut PlanetAgent,
    env: &mut dyn Env,
    map: &ActionMap,
    mode: Mode,
    seed: u64,
) -> Result<EpisodeOutcome> {
    let repeat = agent.config.train.action_repeat;
    let mut obs = env.reset(Some(seed))?;
    agent.reset();
    agent.explore = mode == Mode::Train;
    let mut record = EpisodeRecord::default();
    let (mut ret, mut env_steps) = (0.0, 0);
    loop {
        let a = match mode {
            Mode::Random => agent.random_action(),
            Mode::Train | Mode::Eval => agent.act(&obs)?,
        };
        let env_action = map.to_env(&a);
        let mut reward = 0.0;
        let mut done = false;
        let mut next = obs.clone();
        for _ in 0..repeat {
            let step = env.step(&env_action)?;
            reward += step.reward;
            env_steps += 1;
            next = step.obs;
            if step.terminated || step.truncated {
                done = true;
                break;
            }
        }
        ensure!(
            next.iter().all(|v| v.is_finite()) && reward.is_finite(),
            "the environment returned a non-finite observation or reward"
        );
        record.push(&obs, &a, reward)?;
        ret += reward;
        if mode != Mode::Eval {
            agent.observe(&Transition {
                obs: obs.clone(),
                action: a.clone(),
                reward,
                next_obs: next.clone(),
                terminated: false,
                truncated: done,
            })?;
        }
        if mode == Mode::Train {
            agent.update()?;
        }
        obs = next;
        if done {
            break;
        }
    }
    Ok(EpisodeOutcome {
        ret,
        env_steps,
        record,
    })
}

/// Seeds of the evaluation episodes: disjoint from training episodes' seeds, the same in every
/// run so that runs are compared on the same start states.
pub fn eval_seed(i: usize) -> u64 {
    1_000_000 + i as u64
}

fn train_seed(config: &PlanetConfig, episode: usize) -> u64 {
    config
        .seed
        .wrapping_mul(100_003)
        .wrapping_add(episode as u64)
}

/// Evaluates the agent's planner for `episodes` episodes (no noise, no learning).
pub fn evaluate(
    agent: &mut PlanetAgent,
    env: &mut dyn Env,
    map: &ActionMap,
    episodes: usize,
    label: &str,
) -> Result<EvalSummary> {
    let mut returns = Vec::with_capacity(episodes);
    let (s0, p0) = (agent.plan_seconds, agent.plans);
    for i in 0..episodes {
        returns.push(run_episode(agent, env, map, Mode::Eval, eval_seed(i))?.ret);
    }
    let plans = (agent.plans - p0).max(1) as f64;
    let ms = 1e3 * (agent.plan_seconds - s0) / plans;
    agent.plan_seconds = s0;
    agent.plans = p0;
    Ok(EvalSummary::new(label, returns, ms))
}

/// The upper bound of the swing-up: the config's CEM planner on the true dynamics
/// (`SwingupModel`, actions held for the config's action repeat), on the evaluation seeds.
pub fn true_model_eval(config: &PlanetConfig, episodes: usize) -> Result<EvalSummary> {
    let EnvSpec::Swingup { .. } = config.env else {
        bail!("the true-dynamics planner exists for the swing-up only (env.kind = \"swingup\")");
    };
    let mut env = make_env(&config.env)?;
    let model = RepeatActions {
        model: SwingupModel,
        repeat: config.train.action_repeat,
    };
    let device = Device::flex();
    let mut planner = CemPlanner::new(config.cem.clone())?;
    let mut returns = Vec::with_capacity(episodes);
    let (mut secs, mut plans) = (0.0, 0usize);
    for i in 0..episodes {
        let mut obs = env.reset(Some(eval_seed(i)))?;
        planner.reset();
        let mut ret = 0.0;
        'episode: loop {
            let t0 = Instant::now();
            let state = tensor_from_f64(&obs, [1, obs.len()], &device)?;
            let a = to_f64_vec(planner.plan(&model, state)?.first_action())?;
            secs += t0.elapsed().as_secs_f64();
            plans += 1;
            for _ in 0..config.train.action_repeat {
                let step = env.step(&a)?;
                ret += step.reward;
                obs = step.obs;
                if step.terminated || step.truncated {
                    break 'episode;
                }
            }
        }
        returns.push(ret);
    }
    Ok(EvalSummary::new(
        "CEM on the true dynamics",
        returns,
        1e3 * secs / plans.max(1) as f64,
    ))
}

/// Counters saved with every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Progress {
    episode: usize,
    env_steps: usize,
    wall_s: f64,
}

fn save_checkpoint(dir: &RunDir, agent: &PlanetAgent, progress: &Progress) -> Result<()> {
    // The buffer first: a checkpoint never points past the buffer on disk, and a buffer longer
    // than its checkpoint is cut back on resume.
    agent.buffer.save(&dir.checkpoints().join("buffer.bin"))?;
    let mut ck = Checkpoint::new();
    agent.put_state(&mut ck)?;
    ck.put_meta("progress", progress)?;
    ck.put_meta("buffer_episodes", &agent.buffer.episodes().len())?;
    ck.save(&dir.checkpoints().join("latest.safetensors"))?;
    Ok(())
}

fn load_checkpoint(
    path: &Path,
    agent: &mut PlanetAgent,
    everything: bool,
    with_buffer: bool,
) -> Result<Progress> {
    let file = path.join("checkpoints").join("latest.safetensors");
    let ck = Checkpoint::load(&file).with_context(|| format!("loading {}", file.display()))?;
    agent.load_state(&ck, everything)?;
    if with_buffer {
        let mut buffer = ReplayBuffer::load(&path.join("checkpoints").join("buffer.bin"))?;
        let n: usize = ck.meta("buffer_episodes")?;
        ensure!(
            buffer.episodes().len() >= n,
            "the replay buffer in {} holds {} episodes, fewer than its checkpoint's {n}",
            path.display(),
            buffer.episodes().len()
        );
        ensure!(
            buffer.obs_dim() == agent.buffer.obs_dim()
                && buffer.action_dim() == agent.buffer.action_dim(),
            "the replay buffer in {} is for another environment",
            path.display()
        );
        buffer.truncate(n);
        agent.buffer = buffer;
    }
    Ok(ck.meta("progress")?)
}

/// A finished (or interrupted) run, read back from its folder.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// Its config.
    pub config: PlanetConfig,
    /// `metrics.csv` rows.
    pub rows: Vec<Vec<f64>>,
    /// `eval.json`, when the run finished with a final evaluation.
    pub eval: Option<EvalSummary>,
}

/// Reads a run folder.
pub fn load_run(dir: &Path) -> Result<RunSummary> {
    let config = PlanetConfig::load(&dir.join("config.toml"))?;
    let (_, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    let eval_path = dir.join("eval.json");
    let eval = if eval_path.exists() {
        let text = std::fs::read_to_string(&eval_path)?;
        Some(
            serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", eval_path.display()))?,
        )
    } else {
        None
    };
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        config,
        rows,
        eval,
    })
}

fn col(name: &str) -> usize {
    METRICS.iter().position(|c| *c == name).unwrap_or(0)
}

/// The learning curves of a run: returns (training and evaluation) against environment steps,
/// the model losses and the planning time per action.
pub fn write_plots(run: &RunSummary, hline: Option<(f64, String)>) -> Result<()> {
    if run.config.phase == Phase::Ppo {
        return phase3::write_plots(run);
    }
    let pts = |c: &str| -> Vec<(f64, f64)> {
        run.rows
            .iter()
            .map(|r| (r[col("env_steps")], r[col(c)]))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let mut returns = LineChart {
        title: format!("{}: episode return", run.config.env.name()),
        x_label: "environment steps".into(),
        y_label: "return".into(),
        series: vec![
            Series::new("training (with noise)", pts("return")),
            Series::new("evaluation", pts("eval_return")),
        ],
        ..Default::default()
    };
    if let Some(h) = hline {
        returns.hlines.push(h);
    }
    let losses = LineChart {
        title: "model loss per step".into(),
        x_label: "environment steps".into(),
        y_label: "loss".into(),
        log_y: true,
        series: vec![
            Series::new("observation", pts("loss_obs")),
            Series::new("reward", pts("loss_reward")),
            Series::new("KL", pts("kl")),
        ],
        ..Default::default()
    };
    let mut charts = vec![returns, losses];
    if run.rows.iter().any(|r| r[col("decoder_cost")].is_finite()) {
        charts.push(LineChart {
            title: "decoder: predicted cost of the DCEM plan".into(),
            x_label: "environment steps".into(),
            y_label: "cost".into(),
            series: vec![Series::new("decoder cost", pts("decoder_cost"))],
            ..Default::default()
        });
    }
    line_charts(&run.dir.join("learning_curves.png"), &charts, (720, 420))?;
    Ok(())
}

/// Runs (or resumes) the experiment of `config`, writing `runs/<name>/`: `config.toml`,
/// `metrics.csv`, `learning_curves.png`, `checkpoints/{latest.safetensors,buffer.bin}`, and
/// `eval.json` after the final evaluation.
pub fn train(config: &PlanetConfig, opts: &RunOptions, device: &Device) -> Result<RunSummary> {
    config.validate()?;
    if config.phase == Phase::Ppo {
        return phase3::finetune(config, opts, device);
    }
    let mut env = make_env(&config.env)?;
    let map = ActionMap::new(env.as_ref())?;
    let obs_dim = env.observation_space().flat_dim();
    let dir = RunDir::create(opts.runs_dir.join(&config.name), opts.existing)?;
    let mut agent = PlanetAgent::new(config, obs_dim, map.dim(), device)?;
    let total = config.total_episodes();

    let (mut progress, mut metrics) = if opts.existing == Existing::Resume {
        let saved = PlanetConfig::load(&dir.file("config.toml"))?;
        ensure!(
            saved
                == PlanetConfig {
                    train: TrainConfig {
                        episodes: saved.train.episodes,
                        ..config.train.clone()
                    },
                    ..config.clone()
                },
            "the config differs from the run's own (beyond `train.episodes`); resume with {}",
            dir.file("config.toml").display()
        );
        let progress = load_checkpoint(dir.path(), &mut agent, true, true)
            .with_context(|| format!("resuming {}", dir.path().display()))?;
        ensure!(
            progress.episode <= total,
            "the run already has {} episodes, more than the {total} asked for: raise              `train.episodes` (--episodes) to at least {}",
            progress.episode,
            progress.episode.saturating_sub(config.train.seed_episodes)
        );
        let metrics =
            MetricsCsv::resume(dir.file("metrics.csv"), &METRICS, progress.episode as f64)?;
        (progress, metrics)
    } else {
        if !config.init_from.is_empty() {
            let from = PathBuf::from(&config.init_from);
            load_checkpoint(&from, &mut agent, false, config.keep_buffer)
                .with_context(|| format!("starting from the run in {}", from.display()))?;
        }
        (
            Progress::default(),
            MetricsCsv::create(dir.file("metrics.csv"), &METRICS)?,
        )
    };
    dir.write_config(config)?;
    let seeded = !agent.buffer.episodes().is_empty() && progress.episode == 0;
    let bar = progress_bar(opts.progress, total as u64, &config.name, "episodes");
    bar.set_position(progress.episode as u64);
    let start = Instant::now() - std::time::Duration::from_secs_f64(progress.wall_s);
    while progress.episode < total {
        let i = progress.episode;
        let seed_episode = i < config.train.seed_episodes;
        if seed_episode && seeded {
            // Started from another run's buffer: its episodes stand in for the seed episodes.
            progress.episode += 1;
            bar.inc(1);
            continue;
        }
        let mode = if seed_episode {
            Mode::Random
        } else {
            Mode::Train
        };
        let t0 = Instant::now();
        let out = run_episode(&mut agent, env.as_mut(), &map, mode, train_seed(config, i))
            .with_context(|| format!("episode {}", i + 1))?;
        let secs = t0.elapsed().as_secs_f64();
        agent.buffer.push(out.record)?;
        progress.env_steps += out.env_steps;
        let (stats, plan_s, plans) = agent.take_stats();
        let trained = i + 1 - config.train.seed_episodes.min(i + 1);
        let eval = if !seed_episode
            && config.train.eval_every > 0
            && (trained.is_multiple_of(config.train.eval_every) || i + 1 == total)
        {
            evaluate(
                &mut agent,
                env.as_mut(),
                &map,
                config.train.eval_episodes,
                "periodic",
            )?
            .mean
        } else {
            f64::NAN
        };
        progress.episode += 1;
        progress.wall_s = start.elapsed().as_secs_f64();
        let row = [
            progress.episode as f64,
            progress.env_steps as f64,
            out.ret,
            eval,
            stats.mean(stats.loss),
            stats.mean(stats.obs),
            stats.mean(stats.reward),
            stats.mean(stats.kl),
            if stats.decoder_n == 0 {
                f64::NAN
            } else {
                stats.decoder_cost / stats.decoder_n as f64
            },
            stats.n as f64,
            if plans == 0 {
                f64::NAN
            } else {
                1e3 * plan_s / plans as f64
            },
            if stats.n == 0 {
                f64::NAN
            } else {
                1e3 * stats.seconds / stats.n as f64
            },
            out.env_steps as f64 / secs,
            progress.wall_s,
            if seed_episode { 1.0 } else { 0.0 },
        ];
        metrics.append(&row)?;
        bar.inc(1);
        bar.set_message(format!(
            "steps {}  return {:.1}{}  loss {:.3} (kl {:.2})  {:.0} steps/s",
            progress.env_steps,
            out.ret,
            if eval.is_finite() {
                format!("  eval {eval:.1}")
            } else {
                String::new()
            },
            row[4],
            row[7],
            row[12]
        ));
        if progress
            .episode
            .is_multiple_of(config.train.checkpoint_every)
            || progress.episode == total
        {
            save_checkpoint(&dir, &agent, &progress)?;
        }
    }
    bar.finish_and_clear();
    if config.train.final_eval_episodes > 0 {
        let label = match config.phase {
            Phase::Cem => "full CEM on the learned model",
            Phase::LatentDcem => "latent DCEM on the learned model",
            Phase::Ppo => unreachable!("phase 3 returned above"),
        };
        let summary = evaluate(
            &mut agent,
            env.as_mut(),
            &map,
            config.train.final_eval_episodes,
            label,
        )?;
        atomic_write(
            &dir.file("eval.json"),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
    }
    let run = load_run(dir.path())?;
    if opts.report {
        write_plots(&run, None)?;
    }
    Ok(run)
}

/// Loads a run's agent from its latest checkpoint (model and decoder) for evaluation.
pub fn load_agent(dir: &Path, device: &Device) -> Result<(PlanetConfig, PlanetAgent, ActionMap)> {
    let config = PlanetConfig::load(&dir.join("config.toml"))?;
    let env = make_env(&config.env)?;
    let map = ActionMap::new(env.as_ref())?;
    let obs_dim = env.observation_space().flat_dim();
    let mut agent = PlanetAgent::new(&config, obs_dim, map.dim(), device)?;
    load_checkpoint(dir, &mut agent, false, false)?;
    Ok((config, agent, map))
}

/// The markdown table of evaluation summaries.
pub fn eval_table(rows: &[EvalSummary]) -> String {
    let mut s = String::from(
        "| planner | episodes | mean return | 95% CI | std | planning ms/action |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} | +-{:.1} | {:.1} | {:.1} |\n",
            r.label, r.episodes, r.mean, r.ci95, r.std, r.plan_ms
        ));
    }
    s
}

/// Floating-point operations (multiply and add counted separately) of the RSSM's matmuls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RssmFlops {
    /// One imagined step of planning: input layer, GRU, prior, reward head.
    pub imagine_step: f64,
    /// One step of the training loss, forward only: encoder, input, GRU, prior, posterior,
    /// observation and reward heads.
    pub loss_step: f64,
}

/// The matmul FLOPs of an RSSM with these sizes (element-wise work is not counted).
pub fn rssm_flops(m: &RssmConfig, obs_dim: usize, action_dim: usize) -> RssmFlops {
    let (d, z, h) = (m.deter as f64, m.stoch as f64, m.hidden as f64);
    let (o, a) = (obs_dim as f64, action_dim as f64);
    let input = (z + a) * h;
    let gru = (h + d) * 3.0 * d;
    let prior = d * h + h * 2.0 * z;
    let posterior = (d + h) * h + h * 2.0 * z;
    let encoder = o * h + h * h;
    let obs_head = (d + z) * h + h * h + h * o;
    let reward = (d + z) * h + h * h + h;
    RssmFlops {
        imagine_step: 2.0 * (input + gru + prior + reward),
        loss_step: 2.0 * (encoder + input + gru + prior + posterior + obs_head + reward),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_onto_the_env_box() {
        let env = make_env(&EnvSpec::default()).unwrap();
        let map = ActionMap::new(env.as_ref()).unwrap();
        assert_eq!(map.to_env(&[-1.0]), vec![-1.0]);
        assert_eq!(map.to_env(&[2.0]), vec![1.0]);
        let m = ActionMap {
            low: vec![-2.0, 0.0],
            high: vec![2.0, 10.0],
        };
        assert_eq!(m.to_env(&[0.5, -1.0]), vec![1.0, 0.0]);
        assert_eq!(m.to_env(&[1.0, 0.0]), vec![2.0, 5.0]);
    }

    #[test]
    fn the_shipped_configs_parse_and_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in [
            "planet_swingup",
            "planet_swingup_latent",
            "planet_cheetah_run",
            "planet_walker_walk",
            "planet_cheetah_run_2core",
            "planet_walker_walk_2core",
            "planet_swingup_ppo",
            "planet_swingup_ppo_decoder",
            "planet_swingup_ppo_model",
            "planet_cheetah_run_latent",
            "planet_cheetah_run_ppo",
            "planet_walker_walk_latent",
            "planet_walker_walk_ppo",
        ] {
            let cfg = PlanetConfig::load(&root.join(format!("{name}.toml"))).unwrap();
            assert_eq!(cfg.name, name);
        }
    }

    #[test]
    fn unknown_devices_and_env_kinds_are_refused() {
        assert!(parse_device("cuda").is_err());
        let bad: std::result::Result<PlanetConfig, _> = toml::from_str("[env]\nkind = \"mars\"");
        assert!(bad.is_err());
    }

    #[test]
    fn eval_summary_statistics() {
        let s = EvalSummary::new("x", vec![1.0, 2.0, 3.0], 0.0);
        assert!((s.mean - 2.0).abs() < 1e-12);
        assert!((s.std - 1.0).abs() < 1e-12);
        assert!((s.ci95 - 1.96 / 3f64.sqrt()).abs() < 1e-12);
    }
}
