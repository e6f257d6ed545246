//! The PlaNet agent (alg. 3): a dynamics model learned online (the RSSM, with a belief filtered
//! with its posterior, or the probabilistic ensemble over observations; see [`World`]), any
//! [`Planner`] on the learned model, and, in phase 2, the learning of the latent planner's
//! action decoder through DCEM (offline from replayed states, then online).

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Device, Int, Tensor, TensorData};
use dcem::agent::{Agent, Metrics, Mode, Transition};
use dcem::env::Env;
use dcem::model::TerminalValue;
use dcem::nn::to_f64_vec;
use dcem::optim::Adam;
use dcem::planner::Planner;
use dcem::planning::{CemPlanner, LatentDcemPlanner, MlpDecoder};
use dcem::replay::{EpisodeRecord, ReplayBuffer};
use dcem::run::Checkpoint;
use dcem::train::{gradient_step, to_device};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::config::{Phase, PlanetConfig};
use crate::value::ValueLearner;
use crate::world::World;

/// Phase 2's decoder learning: a latent DCEM planner on the autodiff device whose decoder is
/// stepped on the predicted cost of its solutions, and the decoder's optimiser.
struct DecoderLearner {
    planner: LatentDcemPlanner<MlpDecoder>,
    adam: Adam,
}

/// The agent: a dynamics model (the RSSM or the ensemble) and its planning state, its
/// optimiser, the acting planner (and phase 2's decoder learner) and the replay buffer.
pub struct PlanetAgent {
    config: PlanetConfig,
    device: Device,
    plain: Device,
    /// The learned dynamics and what planning starts from.
    pub world: World,
    model_adam: Adam,
    planner: Box<dyn Planner>,
    learner: Option<DecoderLearner>,
    /// The terminal value (`[value]`).
    value: Option<ValueLearner>,
    /// The replay buffer.
    pub buffer: ReplayBuffer,
    episode: EpisodeRecord,
    rng: ChaCha8Rng,
    prev_action: Vec<f64>,
    /// The episode's mode (set by [`Agent::reset`]): exploration noise in `Train`, uniformly
    /// random actions in `Seed`, the plan's predicted return logged in `Eval`.
    mode: Mode,
    steps: usize,
    pub(crate) stats: UpdateStats,
    pub(crate) plan_seconds: f64,
    pub(crate) plans: usize,
    /// The predicted return of every plan made in evaluation episodes (see
    /// [`PlanetAgent::take_plan_log`]).
    plan_log: Vec<f64>,
}

impl PlanetAgent {
    /// A fresh agent for observations of width `obs_dim` and actions of width `action_dim`,
    /// acting with the planner of `config.phase`: full-space CEM (phase 1) or latent DCEM
    /// through a decoder learned online (phase 2).
    pub fn new(
        config: &PlanetConfig,
        obs_dim: usize,
        action_dim: usize,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let plain = device.clone();
        let autodiff = device.clone().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let world = World::new(config, obs_dim, action_dim, device, &mut rng)?;
        let (planner, learner): (Box<dyn Planner>, _) = if config.phase == Phase::LatentDcem {
            let decoder = MlpDecoder::new(
                &config.decoder.net,
                config.cem.horizon,
                action_dim,
                (-1.0, 1.0),
                &autodiff,
                &mut rng,
            )?;
            let mut act_cfg = config.acting_latent();
            act_cfg.seed = config.latent.seed.wrapping_add(1);
            let mut acting = LatentDcemPlanner::new(act_cfg, decoder.clone())?;
            acting
                .decoder_mut()
                .net
                .set_params(to_device(decoder.net.params(), &plain))?;
            let adam = Adam::new(config.decoder.adam.clone(), decoder.net.params().len())?;
            let learner = DecoderLearner {
                planner: LatentDcemPlanner::new(config.latent.clone(), decoder)?,
                adam,
            };
            (Box::new(acting), Some(learner))
        } else {
            (Box::new(CemPlanner::new(config.cem.clone())?), None)
        };
        Self::assemble(
            config,
            world,
            planner,
            learner,
            device,
            rng,
            (obs_dim, action_dim),
        )
    }

    /// A fresh agent for `env` (the environment it will act in, with the config's wrappers
    /// applied, e.g. from [`crate::planet_env`]): the config is checked against it
    /// ([`PlanetConfig::check_env`]: episode length, memory at its widths) and the widths come
    /// from its spaces.
    pub fn for_env(config: &PlanetConfig, env: &dyn Env, device: &Device) -> Result<Self> {
        config.check_env(env)?;
        let (obs_dim, action_dim) = crate::config::env_dims(env);
        Self::new(config, obs_dim, action_dim, device)
    }

    /// A fresh agent that acts with `planner` (any planner of `[-1, 1]`-normalised action
    /// sequences) on the model it learns (`config.dynamics`); no decoder learning.
    pub fn with_planner(
        config: &PlanetConfig,
        obs_dim: usize,
        action_dim: usize,
        planner: Box<dyn Planner>,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let world = World::new(config, obs_dim, action_dim, device, &mut rng)?;
        Self::assemble(
            config,
            world,
            planner,
            None,
            device,
            rng,
            (obs_dim, action_dim),
        )
    }

    fn assemble(
        config: &PlanetConfig,
        world: World,
        planner: Box<dyn Planner>,
        learner: Option<DecoderLearner>,
        device: &Device,
        mut rng: ChaCha8Rng,
        (obs_dim, action_dim): (usize, usize),
    ) -> Result<Self> {
        let plain = device.clone();
        let value = if config.value.enabled {
            let autodiff = device.clone().autodiff();
            Some(ValueLearner::new(
                &config.value,
                obs_dim,
                &autodiff,
                &plain,
                &mut rng,
            )?)
        } else {
            None
        };
        Ok(Self {
            value,
            model_adam: Adam::new(config.optim.adam.clone(), world.params().len())?,
            world,
            planner,
            learner,
            buffer: ReplayBuffer::new(obs_dim, action_dim),
            episode: EpisodeRecord::default(),
            rng,
            prev_action: vec![0.0; action_dim],
            mode: Mode::Train,
            steps: 0,
            stats: UpdateStats::default(),
            plan_seconds: 0.0,
            plans: 0,
            plan_log: Vec::new(),
            config: config.clone(),
            device: device.clone().autodiff(),
            plain,
        })
    }

    /// The action decoder (phase 2), as trained.
    pub fn decoder(&self) -> Option<&MlpDecoder> {
        self.learner.as_ref().map(|l| l.planner.decoder())
    }

    /// The learned model (detached) for a phase-3 controller.
    pub fn controller_model(&self) -> dcem::rl::ControllerModel {
        self.world.controller_model()
    }

    /// The returns the model predicted for the plans of the evaluation episodes since the last
    /// call (the negated plan cost over the planning horizon, one per decision, in order; with
    /// a terminal value, its weighted value of the final state included).
    pub fn take_plan_log(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.plan_log)
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

    /// Plans from the current belief.
    fn plan_action(&mut self) -> Result<Vec<f64>> {
        let t0 = Instant::now();
        let (model, state) = self.world.planning()?;
        let plan = match (&self.value, self.world.normalisers()) {
            (Some(value), Some((_, norm))) => {
                let with_value = TerminalValue {
                    model,
                    value: |obs: Tensor<2>| value.values(obs, norm),
                    weight: self.config.value.weight(self.config.cem.horizon),
                };
                self.planner.plan(&with_value, state)?
            }
            _ => self.planner.plan(model, state)?,
        };
        let a = to_f64_vec(plan.first_action())?;
        if self.mode == Mode::Eval
            && let Some(cost) = plan.diagnostics.cost.first()
        {
            self.plan_log.push(-cost);
        }
        self.plan_seconds += t0.elapsed().as_secs_f64();
        self.plans += 1;
        Ok(a)
    }

    /// One model update (and, in phase 2, a decoder step every `decoder.every` updates).
    pub fn train_step(&mut self) -> Result<()> {
        let t0 = Instant::now();
        let (loss, tracked) =
            self.world
                .loss(&self.config, &self.buffer, 0, &self.device, &mut self.rng)?;
        let values = loss.values;
        ensure!(
            values[..3].iter().all(|v| v.is_finite()),
            "the model loss is not finite ({values:?}): lower optim.adam.lr or check the \
             observations"
        );
        let new = gradient_step(
            loss.total,
            &tracked,
            self.world.params(),
            &mut self.model_adam,
            self.config.optim.clip_norm,
        )?;
        self.world.set_params(new, &self.plain)?;
        let s = &mut self.stats;
        s.n += 1;
        s.loss += values[0];
        s.obs += values[1];
        s.reward += values[2];
        s.kl += values[3];
        if let Some(loss) = self.value_step()? {
            self.stats.value_n += 1;
            self.stats.value_loss += loss;
        }
        let every = self.config.decoder.every;
        if self.learner.is_some() && every > 0 && self.stats.n.is_multiple_of(every) {
            let states = if self.config.decoder.recent_episodes == 0 {
                loss.states
            } else {
                self.replayed_starts()?
            };
            let cost = self.decoder_step(states)?;
            self.stats.decoder_n += 1;
            self.stats.decoder_cost += cost;
        }
        self.stats.seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// One terminal-value update on the replay buffer and its loss; None without a value.
    fn value_step(&mut self) -> Result<Option<f64>> {
        match (&mut self.value, self.world.normalisers()) {
            (Some(value), Some((norm, plain_norm))) => value
                .step(&self.buffer, norm, plain_norm, &mut self.rng)
                .map(Some),
            _ => Ok(None),
        }
    }

    /// One terminal-value update on the replay buffer, no model update (`value.offline_steps`);
    /// its loss.
    pub fn offline_value_step(&mut self) -> Result<f64> {
        self.value_step()?
            .context("offline value steps need [value] enabled with dynamics = \"ensemble\"")
    }

    /// One decoder step from states replayed from the buffer (no model update): the offline
    /// decoder training of `decoder.offline_steps`. Returns the decoder's training cost.
    pub fn offline_decoder_step(&mut self) -> Result<f64> {
        let states = self.replayed_starts()?;
        self.decoder_step(states)
    }

    /// `n` states replayed like the decoder's start states (several draws when one is short),
    /// for validating the offline stage.
    pub fn offline_val_states(&mut self, n: usize) -> Result<Tensor<2>> {
        let (mut parts, mut rows) = (Vec::new(), 0);
        while rows < n {
            let s = self.replayed_starts()?;
            ensure!(s.dims()[0] > 0, "the buffer gave no states to validate on");
            rows += s.dims()[0];
            parts.push(s);
        }
        Ok(Tensor::cat(parts, 0).narrow(0, 0, n))
    }

    /// Mean cost the model (its plain copy) predicts for the plans made from `states` (no
    /// decoder step): by the latent planner with the current decoder (`full_cem` false) or by
    /// full-space CEM with `[cem]` without warm start (true). Each state is solved alone (a
    /// batch of states costs more per state), state `k` with sampling noise drawn from
    /// `seed + k`, so equal seeds give equal noise.
    pub fn predicted_plan_cost(&self, states: Tensor<2>, full_cem: bool, seed: u64) -> Result<f64> {
        let decoder = match (&self.learner, full_cem) {
            (_, true) => None,
            (Some(l), false) => {
                let mut d = l.planner.decoder().detached();
                d.net.set_params(to_device(d.net.params(), &self.plain))?;
                Some(d)
            }
            (None, false) => bail!("the latent planner's cost needs phase 2's decoder"),
        };
        let model = self.world.plain_model();
        let states = to_device(vec![states], &self.plain)
            .pop()
            .context("no states")?;
        let n = states.dims()[0];
        let mut total = 0.0;
        for k in 0..n {
            let state_seed = seed.wrapping_add(k as u64);
            let mut planner: Box<dyn Planner> = match &decoder {
                None => {
                    let mut cfg = self.config.cem.clone();
                    cfg.seed = state_seed;
                    cfg.warm_start = false;
                    Box::new(CemPlanner::new(cfg)?)
                }
                Some(d) => {
                    let mut cfg = self.config.acting_latent();
                    cfg.seed = state_seed;
                    Box::new(LatentDcemPlanner::new(cfg, d.clone())?)
                }
            };
            let x0 = states.clone().narrow(0, k, 1);
            let plan = planner.plan(model, x0.clone())?;
            total += model.cost(x0, plan.actions)?.sum().into_scalar::<f64>();
        }
        Ok(total / n as f64)
    }

    /// The decoder's parameters (phase 2).
    pub fn decoder_params(&self) -> Option<Vec<Tensor<2>>> {
        self.decoder().map(|d| d.net.params())
    }

    /// Replaces the decoder's parameters in the learner and the acting planner (phase 2).
    pub fn set_decoder_params(&mut self, params: Vec<Tensor<2>>) -> Result<()> {
        let learner = self
            .learner
            .as_mut()
            .context("only phase 2 has a decoder")?;
        self.planner
            .set_params(to_device(params.clone(), &self.plain))?;
        learner.planner.decoder_mut().net.set_params(params)?;
        Ok(())
    }

    /// States to solve from, replayed from the last `decoder.recent_episodes` episodes of the
    /// buffer (all when 0): the model's posterior states or the observations.
    fn replayed_starts(&mut self) -> Result<Tensor<2>> {
        let recent = self.config.decoder.recent_episodes;
        let (loss, _) = self.world.loss(
            &self.config,
            &self.buffer,
            recent,
            &self.device,
            &mut self.rng,
        )?;
        Ok(loss.states.detach())
    }

    /// One decoder step (alg. 3's inner DCEM): solve the latent problem with DCEM from
    /// `decoder.batch` of the given states (posterior states or observations), and step the decoder on the predicted
    /// cost of the solutions; the acting planner then gets the new decoder.
    fn decoder_step(&mut self, states: Tensor<2>) -> Result<f64> {
        let rows = states.dims()[0];
        let idx: Vec<i64> = (0..self.config.decoder.batch)
            .map(|_| self.rng.random_range(0..rows) as i64)
            .collect();
        let n = idx.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &self.device);
        let starts = states.select(0, idx);
        let Some(learner) = &mut self.learner else {
            bail!("decoder_step needs the latent planner");
        };
        let params = learner.planner.decoder().net.params();
        let tracked = learner.planner.decoder().clone().require_grad();
        *learner.planner.decoder_mut() = tracked;
        let model = self.world.train_model();
        let plan = learner.planner.plan(model, starts.clone())?;
        let cost = model.cost(starts, plan.actions)?.mean();
        let value = cost.clone().into_scalar::<f64>();
        ensure!(
            value.is_finite(),
            "the decoder's training cost is {value}: lower decoder.adam.lr or decoder.clip_norm"
        );
        let new = gradient_step(
            cost,
            &learner.planner.decoder().net.params(),
            params,
            &mut learner.adam,
            self.config.decoder.clip_norm,
        )?;
        let decoder = learner.planner.decoder_mut();
        decoder.net.set_params(new)?;
        *decoder = decoder.detached();
        self.planner
            .set_params(to_device(decoder.net.params(), &self.plain))?;
        Ok(value)
    }

    pub(crate) fn take_stats(&mut self) -> (UpdateStats, f64, usize) {
        let out = (
            std::mem::take(&mut self.stats),
            self.plan_seconds,
            self.plans,
        );
        self.plan_seconds = 0.0;
        self.plans = 0;
        out
    }

    /// The checkpoint key of the acting planner's generator.
    fn planner_rng_key(&self) -> &'static str {
        if self.learner.is_some() {
            "rng.latent_act"
        } else {
            "rng.cem"
        }
    }

    /// Stores everything a resumed run needs (not the buffer: see [`ReplayBuffer::save`]).
    pub(crate) fn put_state(&self, ck: &mut Checkpoint) -> Result<()> {
        self.world.put(ck)?;
        ck.put_adam("model_adam", &self.model_adam)?;
        if let Some(l) = &self.learner {
            ck.put_mlp("decoder", &l.planner.decoder().net)?;
            ck.put_adam("decoder_adam", &l.adam)?;
            ck.put_rng("rng.latent_train", l.planner.rng())?;
        }
        if let Some(v) = &self.value {
            v.put(ck)?;
        }
        ck.put_rng("rng.agent", &self.rng)?;
        if let Some(rng) = self.planner.rng_state() {
            ck.put_rng(self.planner_rng_key(), rng)?;
        }
        ck.put_meta("agent_steps", &self.steps)?;
        Ok(())
    }

    /// Loads the model (and its optimiser) from a checkpoint; with `everything`, also the
    /// decoder, generators and step count (resuming this run rather than starting from another).
    pub(crate) fn load_state(&mut self, ck: &Checkpoint, everything: bool) -> Result<()> {
        self.world.load(ck, &self.device, &self.plain)?;
        self.model_adam = ck.adam(
            "model_adam",
            self.config.optim.adam.clone(),
            self.world.params().len(),
            &self.device,
        )?;
        if let Some(v) = &mut self.value {
            let autodiff = self.device.clone();
            let found = v.load(ck, &autodiff, &self.plain)?;
            ensure!(
                found || !everything,
                "the checkpoint has no terminal value but [value] is enabled: resume with the \
                 run's own config (value.enabled as it was)"
            );
        }
        let has_decoder = ck.has_tensor("decoder.layers.0.weight");
        if let Some(l) = &mut self.learner
            && has_decoder
        {
            ck.load_mlp("decoder", &mut l.planner.decoder_mut().net, &self.device)?;
            l.adam = ck.adam(
                "decoder_adam",
                self.config.decoder.adam.clone(),
                l.planner.decoder().net.params().len(),
                &self.device,
            )?;
            self.planner
                .set_params(to_device(l.planner.decoder().net.params(), &self.plain))?;
        }
        if everything {
            self.rng = ck.rng("rng.agent")?;
            if self.planner.rng_state().is_some() {
                let key = self.planner_rng_key();
                self.planner.set_rng_state(ck.rng(key)?);
            }
            if let Some(l) = &mut self.learner {
                l.planner.set_rng(ck.rng("rng.latent_train")?);
            }
            self.steps = ck.meta("agent_steps")?;
        }
        Ok(())
    }
}

fn data_err(e: anyhow::Error) -> dcem::Error {
    dcem::Error::Data(format!("{e:#}"))
}

impl Agent for PlanetAgent {
    /// Filters the belief with `obs`, plans, and returns the first planned action (normalised,
    /// with exploration noise in [`Mode::Train`]); uniformly random in [`Mode::Seed`].
    fn act(&mut self, obs: &[f64]) -> dcem::Result<Vec<f64>> {
        if self.mode == Mode::Seed {
            return Ok(self.random_action());
        }
        self.world
            .observe(obs, &self.prev_action)
            .map_err(data_err)?;
        let mut a = self.plan_action().map_err(data_err)?;
        if self.mode == Mode::Train && self.config.train.exploration_noise > 0.0 {
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

    /// Records the step into the episode that goes to the replay buffer when it ends.
    fn observe(&mut self, t: &Transition) -> dcem::Result<()> {
        self.episode.push(&t.obs, &t.action, t.reward)?;
        self.steps += 1;
        Ok(())
    }

    /// Model (and decoder) updates when `update_every` steps have passed since the last; none
    /// in the seed episodes.
    fn update(&mut self) -> dcem::Result<Metrics> {
        if self.mode != Mode::Train
            || !self.steps.is_multiple_of(self.config.train.update_every)
            || self.buffer.episodes().is_empty()
        {
            return Ok(Vec::new());
        }
        for _ in 0..self.config.train.updates {
            self.train_step().map_err(data_err)?;
        }
        let s = &self.stats;
        Ok(vec![
            ("loss/model", s.mean(s.loss)),
            ("loss/kl", s.mean(s.kl)),
        ])
    }

    fn reset(&mut self, mode: Mode) {
        self.mode = mode;
        self.episode = EpisodeRecord::default();
        self.world.reset();
        self.prev_action.iter_mut().for_each(|v| *v = 0.0);
        self.planner.reset();
    }

    /// The finished episode goes into the replay buffer (and the ensemble re-fits its
    /// normalisation to it).
    fn end_episode(&mut self) -> dcem::Result<()> {
        self.buffer.push(std::mem::take(&mut self.episode))?;
        self.world
            .end_episode(&self.buffer, &self.plain)
            .map_err(data_err)
    }
}

/// Running means of the update metrics within an episode.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateStats {
    pub n: usize,
    pub loss: f64,
    pub obs: f64,
    pub reward: f64,
    pub kl: f64,
    pub decoder_n: usize,
    pub decoder_cost: f64,
    pub value_n: usize,
    pub value_loss: f64,
    pub seconds: f64,
}

impl UpdateStats {
    pub fn mean(&self, v: f64) -> f64 {
        if self.n == 0 {
            f64::NAN
        } else {
            v / self.n as f64
        }
    }
}
