//! The experiment's config: one TOML file per run (`configs/planet_*.toml`), validated with
//! errors that name the field.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use dcem::env::{ActionRepeat, Env, RescaleAction};
use dcem::limits::{self, MemoryEstimate};
use dcem::nn::{EnsembleConfig, RssmConfig};
use dcem::optim::AdamConfig;
use dcem::planning::{CemPlannerConfig, LatentPlannerConfig, MlpDecoderConfig};
use dcem::rl::{DcemParts, PpoConfig};
use dcem::run::check_run_name;
use dcem_envs::{EnvSpec, make_env};
use serde::{Deserialize, Serialize};

// ANCHOR: phase
/// Which planner the agent acts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Phase 1: full-space CEM on the learned model.
    Cem,
    /// Phase 2: latent DCEM through a decoder learned online.
    LatentDcem,
    /// Phase 3: PPO fine-tuning of the latent DCEM controller (from a phase-2 run, no
    /// likelihood fitting); see [`crate::phase3`].
    Ppo,
}
// ANCHOR_END: phase

// ANCHOR: dynamics
/// The dynamics model the agent learns and plans on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dynamics {
    /// PlaNet's recurrent state-space model over observations (`[model]`): latent beliefs
    /// filtered with its posterior. Every phase.
    #[default]
    Rssm,
    /// A PETS-style probabilistic ensemble over the observation itself (`[ensemble]`), for
    /// fully observed environments; phases 1 and 2 (the decoder plans from observations).
    Ensemble,
}
// ANCHOR_END: dynamics

// ANCHOR: train_config
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
    /// Environment steps each planned action is held (PlaNet: cheetah 4, walker 2; the default
    /// 2 suits the default env, the 100-step swing-up, and its 50-step chunks).
    pub action_repeat: usize,
    /// Model updates (gradient steps) on the seed episodes' data after the last seed episode,
    /// before the first planning episode (0: none; the first planning episode then starts on
    /// the freshly initialised model and learns only while it acts).
    pub seed_updates: usize,
    /// Agent steps (after action repeat) between model updates.
    pub update_every: usize,
    /// Gradient steps per model update.
    pub updates: usize,
    /// Sequences per training batch (the RSSM; the ensemble's minibatch is `ensemble.batch`).
    pub batch: usize,
    /// Steps per training sequence (the RSSM).
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
// ANCHOR_END: train_config

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed_episodes: 5,
            episodes: 100,
            seed_action_scale: 1.0,
            action_repeat: 2,
            seed_updates: 0,
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

// ANCHOR: optim_config
/// The model optimiser (PlaNet: Adam, learning rate 1e-3, epsilon 1e-4, gradient norm 1000).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Adam's options.
    pub adam: AdamConfig,
    /// Clip the gradient's global norm to this (0: no clipping).
    pub clip_norm: f64,
}
// ANCHOR_END: optim_config

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

/// The most validation states of phase 2's offline stage (`decoder.offline_val_states`).
pub const MAX_OFFLINE_VAL_STATES: usize = 4096;

// ANCHOR: decoder_train_config
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
    /// A decoder step after every this many model gradient steps (0: none online, the
    /// decoder of the offline stage is kept while the model goes on learning).
    pub every: usize,
    /// Decoder steps taken offline before the first episode, from states replayed from the
    /// buffer of the run it starts from (`init_from`), with no environment steps and no model
    /// updates (0: none).
    pub offline_steps: usize,
    /// Draw the decoder's start states from the buffer's last this many episodes only (0: the
    /// model's training batch, from the whole buffer).
    pub recent_episodes: usize,
    /// Validate the offline stage on this many states replayed once from the same episodes
    /// (0: no validation): every `offline_val_every` steps the latent planner solves them on the
    /// model with fixed noise, and the decoder with the lowest predicted cost is kept for the
    /// online stage.
    pub offline_val_states: usize,
    /// Offline decoder steps between two validations.
    pub offline_val_every: usize,
    /// Temperature of the latent planner when acting, in evaluations and in the offline
    /// validation (phase 2 only; unset: `latent.cem.tau`, the one the decoder is trained
    /// through). 0: hard elites in the latent space over the decoder learned with soft ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_tau: Option<f64>,
}
// ANCHOR_END: decoder_train_config

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
            offline_steps: 0,
            recent_episodes: 0,
            offline_val_states: 0,
            offline_val_every: 50,
            act_tau: None,
        }
    }
}

// ANCHOR: planet_config
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
    /// The dynamics model learned and planned on.
    pub dynamics: Dynamics,
    /// The RSSM (`dynamics = "rssm"`).
    pub model: RssmConfig,
    /// The probabilistic ensemble (`dynamics = "ensemble"`).
    pub ensemble: EnsembleConfig,
    /// The model's optimiser.
    pub optim: OptimConfig,
    /// Full-space CEM (phase 1). Its horizon is also the decoder's.
    pub cem: CemPlannerConfig,
    /// Latent DCEM (phase 2).
    pub latent: LatentPlannerConfig,
    /// The decoder and its online training (phase 2).
    pub decoder: DecoderTrainConfig,
    /// PPO fine-tuning (phase 3).
    pub finetune: FinetuneConfig,
    /// A terminal value for the planner (off by default; with the ensemble).
    pub value: crate::value::ValueConfig,
}
// ANCHOR_END: planet_config

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
            dynamics: Dynamics::Rssm,
            model: RssmConfig::default(),
            ensemble: EnsembleConfig::default(),
            optim: OptimConfig::default(),
            cem: CemPlannerConfig::default(),
            latent: LatentPlannerConfig::default(),
            decoder: DecoderTrainConfig::default(),
            finetune: FinetuneConfig::default(),
            value: Default::default(),
        }
    }
}

impl PlanetConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(dcem::train::load_config(path, Self::validate)?)
    }

    /// The latent planner phase 2 acts with: `latent` at `decoder.act_tau` when set.
    pub fn acting_latent(&self) -> LatentPlannerConfig {
        let mut cfg = self.latent.clone();
        if let Some(t) = self.decoder.act_tau {
            cfg.cem.tau = t;
        }
        cfg
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
            self.dynamics != Dynamics::Rssm || self.model.overshoot < t.chunk,
            "`model.overshoot` ({}) needs training chunks longer than that: lower it or raise \
             `train.chunk` ({})",
            self.model.overshoot,
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
        self.model.validate().context("in [model]")?;
        self.ensemble.validate().context("in [ensemble]")?;
        self.value.validate()?;
        ensure!(
            !self.value.enabled || self.dynamics == Dynamics::Ensemble,
            "`value.enabled` needs dynamics = \"ensemble\" (the value reads observations)"
        );
        ensure!(
            !self.value.enabled || self.phase != Phase::Ppo,
            "`value.enabled` is for the planners of phases 1 and 2: phase 3's controller does not \
             plan with a terminal value (remove [value] or set enabled = false)"
        );
        ensure!(
            self.value.offline_steps == 0
                || (self.value.enabled && !self.init_from.is_empty() && self.keep_buffer),
            "`value.offline_steps` fits the value to the buffer of the run it starts from: it \
             needs value.enabled, `init_from` and keep_buffer = true"
        );
        let parts = self.finetune.parts;
        ensure!(
            self.dynamics == Dynamics::Rssm
                || self.phase != Phase::Ppo
                || parts.reward == parts.transition,
            "with dynamics = \"ensemble\" one network per member predicts the reward and the \
             next observation: set finetune.parts.reward and finetune.parts.transition alike \
             (both true trains the ensemble, both false freezes it)"
        );
        ensure!(
            self.decoder.offline_steps == 0
                || (self.phase == Phase::LatentDcem
                    && !self.init_from.is_empty()
                    && self.keep_buffer),
            "`decoder.offline_steps` trains phase 2's decoder from the buffer of the run it \
             starts from: it needs phase = \"latent_dcem\", `init_from` and keep_buffer = true"
        );
        ensure!(
            self.decoder.offline_val_states == 0
                || (self.decoder.offline_steps > 0
                    && self.decoder.offline_val_every >= 1
                    && self.decoder.offline_val_states <= MAX_OFFLINE_VAL_STATES),
            "`decoder.offline_val_states` validates the offline stage: it needs \
             `decoder.offline_steps` > 0, `decoder.offline_val_every` >= 1 and at most \
             {MAX_OFFLINE_VAL_STATES} states (got {} states every {} steps)",
            self.decoder.offline_val_states,
            self.decoder.offline_val_every
        );
        if let Some(t) = self.decoder.act_tau {
            ensure!(
                t.is_finite() && t >= 0.0,
                "`decoder.act_tau` must be finite and >= 0 (0: hard elites), got {t}"
            );
            ensure!(
                self.phase == Phase::LatentDcem,
                "`decoder.act_tau` sets how phase 2 (phase = \"latent_dcem\") acts; phase 3's \
                 policy is the controller at `latent.cem.tau`: remove it"
            );
        }
        self.optim.adam.validate().context("in [optim.adam]")?;
        ensure!(
            self.optim.clip_norm.is_finite() && self.optim.clip_norm >= 0.0,
            "`optim.clip_norm` must be finite and >= 0"
        );
        self.cem.validate().context("in [cem]")?;
        ensure!(
            -1.0 <= self.cem.action_low && self.cem.action_high <= 1.0,
            "`cem.action_low`/`cem.action_high` must lie within -1/1 (got {}/{}): planned actions \
             are normalised and mapped onto the environment's bounds",
            self.cem.action_low,
            self.cem.action_high
        );
        ensure!(
            (self.cem.action_low, self.cem.action_high) == (-1.0, 1.0) || self.phase == Phase::Cem,
            "a narrower `cem.action_low`/`cem.action_high` is for phase = \"cem\": the decoders \
             of phases 2 and 3 act on all of -1/1"
        );
        self.latent.validate().context("in [latent]")?;
        self.decoder.net.validate().context("in [decoder.net]")?;
        self.decoder.adam.validate().context("in [decoder.adam]")?;
        ensure!(
            self.decoder.batch >= 1,
            "`decoder.batch` must be at least 1"
        );
        ensure!(
            self.decoder.every >= 1 || self.decoder.offline_steps >= 1,
            "`decoder.every = 0` (no decoder steps online) needs `decoder.offline_steps` >= 1: \
             the decoder would never be trained"
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
        self.check_sizes()
    }

    /// Bounds on every size and count (`dcem::limits`), then the memory the run's largest
    /// tensors would take against the budget.
    fn check_sizes(&self) -> Result<()> {
        let (t, d) = (&self.train, &self.decoder);
        for (name, v) in [
            ("train.batch", t.batch),
            ("train.chunk", t.chunk),
            ("decoder.batch", d.batch),
        ] {
            limits::check_dim(name, v)?;
        }
        let f = &self.finetune;
        for (name, v) in [
            ("train.seed_episodes", t.seed_episodes),
            ("train.episodes", t.episodes),
            ("train.action_repeat", t.action_repeat),
            ("train.update_every", t.update_every),
            ("train.updates", t.updates),
            ("train.seed_updates", t.seed_updates),
            ("train.eval_every", t.eval_every),
            ("train.eval_episodes", t.eval_episodes),
            ("train.final_eval_episodes", t.final_eval_episodes),
            ("train.checkpoint_every", t.checkpoint_every),
            ("decoder.every", d.every),
            ("decoder.offline_steps", d.offline_steps),
            ("decoder.recent_episodes", d.recent_episodes),
            ("decoder.offline_val_every", d.offline_val_every),
            ("finetune.steps", f.steps),
            ("finetune.episodes_per_step", f.episodes_per_step),
            ("finetune.eval_episodes", f.eval_episodes),
            ("finetune.eval_every", f.eval_every),
            ("finetune.periodic_eval_episodes", f.periodic_eval_episodes),
            ("finetune.checkpoint_every", f.checkpoint_every),
        ] {
            limits::check_count(name, v)?;
        }
        Ok(())
    }

    /// The checks that need the environment the agent will act in (`env` as the agent sees it,
    /// [`planet_env`]'s wrapping: episode lengths in agent steps): a training chunk no longer
    /// than an episode, and the run's largest tensors within the memory budget at the env's
    /// observation and action widths. Every entry point calls it before it allocates; a
    /// [`crate::PlanetAgent`] built by hand on an own environment should too.
    pub fn check_env(&self, env: &dyn Env) -> Result<()> {
        let t = &self.train;
        let steps = env.max_episode_steps();
        if let Some(n) = steps {
            ensure!(
                n >= t.chunk,
                "`train.chunk` ({}) is longer than an episode of {} in agent steps ({n} with \
                 action_repeat {}): shorten the chunk or lengthen the episodes",
                t.chunk,
                self.env.name(),
                t.action_repeat
            );
        }
        let (obs, act) = env_dims(env);
        let env_steps = steps.map_or(UNKNOWN_EPISODE_STEPS, |n| n.saturating_mul(t.action_repeat));
        self.memory_estimate(obs, act, env_steps)
            .check("this config")?;
        Ok(())
    }

    /// The largest tensors a run of this config holds (f32 elements; an upper-order estimate)
    /// for an environment of `obs` observation and `act` action widths and episodes of
    /// `ep_steps` environment steps.
    pub fn memory_estimate(&self, obs: usize, act: usize, ep_steps: usize) -> MemoryEstimate {
        let (m, e, t) = (&self.model, &self.ensemble, &self.train);
        let h = self.cem.horizon;
        // Per imagined sample and step: the state, the GRU's gates and hidden layers (the
        // ensemble: every member's hidden layers), as extra dimensions of a rollout's shape.
        let step: Vec<usize> = match self.dynamics {
            Dynamics::Rssm => vec![5 * m.deter + 2 * m.stoch + 3 * m.hidden],
            Dynamics::Ensemble => vec![2, e.members, e.hidden, e.layers],
        };
        let rollout =
            |lead: &[usize]| -> Vec<usize> { lead.iter().chain(&step).copied().collect() };
        let (lat, dec) = (&self.latent.cem, &self.decoder);
        let mut est = MemoryEstimate::new();
        est.add(
            "replay buffer [(train.seed_episodes + train.episodes) x env.episode_steps, obs + \
             action + 1]",
            1.0,
            &[self.total_episodes(), ep_steps, obs + act + 1],
        )
        .add(
            "model update [train.batch x train.chunk, activations and gradients]",
            2.0,
            &[
                t.batch,
                t.chunk,
                obs + act + 6 * m.hidden + 10 * m.deter + 10 * m.stoch,
            ],
        )
        .add(
            "ensemble update [members x ensemble.batch x layers, ensemble.hidden]",
            4.0,
            &[e.members, e.batch, e.layers, e.hidden],
        )
        .add(
            "full-CEM rollout [cem.n_sample x horizon, state and gates]",
            2.0,
            &rollout(&[self.cem.cem.n_sample, h]),
        )
        .add(
            "latent-DCEM rollout [latent.n_sample x horizon, state and gates]",
            2.0,
            &rollout(&[lat.n_sample, h]),
        )
        .add(
            "decoder step (every iteration on the tape) [decoder.batch x latent.n_sample x \
             n_iter x horizon, state and gates]",
            1.0,
            &rollout(&[dec.batch, lat.n_sample, lat.n_iter, h]),
        )
        .add(
            "offline validation [offline_val_states x latent.n_sample x horizon, state]",
            1.0,
            &rollout(&[dec.offline_val_states, lat.n_sample, h]),
        )
        .add(
            "decoder [latent.n_sample x decoder.batch, hidden x layers]",
            2.0,
            &[
                lat.n_sample,
                dec.batch,
                dec.net.hidden,
                dec.net.hidden_layers,
            ],
        );
        est
    }

    /// Seed episodes plus planning episodes.
    pub fn total_episodes(&self) -> usize {
        self.train.seed_episodes + self.train.episodes
    }
}

/// Environment steps per episode assumed by the memory estimate of an environment that reports
/// no limit (`Env::max_episode_steps` is `None`): dm_control's and many Gymnasium tasks' 1000.
pub const UNKNOWN_EPISODE_STEPS: usize = 1000;

/// The environment of `config` as the agent sees it: actions normalised to `[-1, 1]`
/// ([`RescaleAction`]) and held for `train.action_repeat` steps ([`ActionRepeat`]).
pub fn planet_env(config: &PlanetConfig) -> Result<Box<dyn Env>> {
    let env = RescaleAction::new(make_env(&config.env)?)?;
    Ok(Box::new(ActionRepeat::new(
        env,
        config.train.action_repeat,
    )?))
}

/// Observation and action widths of an environment.
pub fn env_dims(env: &dyn Env) -> (usize, usize) {
    (
        env.observation_space().flat_dim(),
        env.action_space().flat_dim(),
    )
}

/// The seed of training episode `episode`.
pub(crate) fn train_seed(config: &PlanetConfig, episode: usize) -> u64 {
    config
        .seed
        .wrapping_mul(100_003)
        .wrapping_add(episode as u64)
}

// ANCHOR: finetune_config
/// Phase 3's options (`[finetune]`). Defaults follow the paper: 10 episodes per PPO step, one
/// pass, fixed action std 0.1, lr 1e-4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// PPO steps in the run.
    pub steps: usize,
    /// Episodes collected per PPO step.
    pub episodes_per_step: usize,
    /// Which parts of the controller are trained.
    pub parts: DcemParts,
    /// PPO's options (`epochs` are the paper's passes; `lr` its 1e-4 or 1e-5; `learn_std` and
    /// `init_log_std` its fixed 0.1 or learned std).
    pub ppo: PpoConfig,
    /// Episodes of the evaluations before and after fine-tuning.
    pub eval_episodes: usize,
    /// Evaluate (`periodic_eval_episodes` episodes) every this many PPO steps (0: never).
    pub eval_every: usize,
    /// Episodes of the periodic evaluation.
    pub periodic_eval_episodes: usize,
    /// Checkpoint every this many PPO steps.
    pub checkpoint_every: usize,
}
// ANCHOR_END: finetune_config

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 10,
            episodes_per_step: 10,
            parts: DcemParts {
                reward: true,
                transition: true,
                decoder: true,
            },
            ppo: PpoConfig {
                lr: 1e-4,
                value_lr: Some(1e-3),
                epochs: 1,
                minibatches: 4,
                init_log_std: 0.1f64.ln(),
                learn_std: false,
                ..PpoConfig::default()
            },
            eval_episodes: 50,
            eval_every: 0,
            periodic_eval_episodes: 5,
            checkpoint_every: 1,
        }
    }
}

impl FinetuneConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("finetune.episodes_per_step", self.episodes_per_step),
            ("finetune.eval_episodes", self.eval_episodes),
            ("finetune.checkpoint_every", self.checkpoint_every),
        ] {
            ensure!(v >= 1, "`{name}` must be at least 1, got {v}");
        }
        ensure!(
            self.eval_every == 0 || self.periodic_eval_episodes >= 1,
            "`finetune.periodic_eval_episodes` must be at least 1 when `finetune.eval_every` is set"
        );
        self.ppo.validate()?;
        Ok(())
    }
}
