//! On-policy collection: a [`Ppo`] policy acting in a [`VecEnv`] (same-step autoreset, every
//! episode seeded), the steps kept per environment, and a [`RolloutBatch`] with GAE advantages
//! out. Plain PPO collects a fixed number of steps per environment; phase 3 collects whole
//! episodes. What the policy sees is an [`InputFilter`] of the observations
//! ([`super::input`]).

use std::time::Instant;

use rand::Rng;
use rand::rngs::ChaCha8Rng;

use super::gae::gae;
use super::input::InputFilter;
use super::policy::PolicyMean;
use super::ppo::{Ppo, RolloutBatch};
use crate::env::{Autoreset, Env, Space, VecEnv};
use crate::error::{Error, Result};

/// Where the per-decision noise seeds of a stochastic policy mean come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanSeeds {
    /// All 0 (a deterministic mean such as an MLP; nothing is drawn).
    Zero,
    /// One `u64` drawn from the acting generator per decision, before the action noise (a
    /// sampling-based planner: the update recomputes the same mean from the stored seed).
    Drawn,
}

impl PlanSeeds {
    pub(crate) fn draw(self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            PlanSeeds::Zero => 0,
            PlanSeeds::Drawn => rng.next_u64(),
        }
    }
}

/// How much one collection gathers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// This many steps in every environment; streams cut mid-episode are bootstrapped.
    Steps(usize),
    /// Steps until this many episodes (over all environments) have ended.
    Episodes(usize),
}

/// What one collection gathered.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// The steps, environment by environment, with values, advantages and returns set.
    pub batch: RolloutBatch,
    /// Returns of the episodes that ended, in the order they ended.
    pub episode_returns: Vec<f64>,
    /// Decisions taken (over all environments).
    pub decisions: usize,
    /// Steps of the innermost environments (decisions times the action repeat).
    pub env_steps: usize,
    /// Seconds spent filtering and acting.
    pub act_s: f64,
    /// Seconds spent stepping the environments.
    pub env_s: f64,
}

/// One environment's steps.
#[derive(Default)]
struct Stream {
    inputs: Vec<f64>,
    value_inputs: Vec<f64>,
    next_obs: Vec<f64>,
    seeds: Vec<u64>,
    actions: Vec<f64>,
    logp: Vec<f64>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    ends: Vec<bool>,
}

/// A [`Collector`]'s state between collections (see [`Collector::state`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CollectorState {
    /// The environments' episodes.
    pub envs: crate::env::VecEnvState,
    /// The previous action of each environment.
    pub prev: Vec<f64>,
    /// Whether each environment's next step starts an episode.
    pub first: Vec<bool>,
    /// The return of each environment's episode so far.
    pub ep_ret: Vec<f64>,
}

/// Collects on-policy experience from a [`VecEnv`] whose episodes it resets as they end (the
/// same step) with seeds counted from the start seed; between collections the environments
/// stay where they were.
pub struct Collector<E: Env> {
    envs: VecEnv<E>,
    obs: Vec<f64>,
    prev: Vec<f64>,
    first: Vec<bool>,
    ep_ret: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl<E: Env> Collector<E> {
    /// Takes `envs` (set to same-step, seeded autoresets here) with a box action space.
    pub fn new(envs: VecEnv<E>) -> Result<Self> {
        let Space::Box(b) = envs.envs()[0].action_space() else {
            return Err(Error::option(
                "action_space",
                "on-policy collection acts in a continuous (Box) action space",
            ));
        };
        let (low, high) = (b.low().to_vec(), b.high().to_vec());
        let n = envs.len();
        let act_dim = envs.action_dim();
        Ok(Self {
            envs: envs
                .with_autoreset(Autoreset::SameStep)
                .with_seeded_autoresets()
                .with_replay_log(),
            obs: Vec::new(),
            prev: vec![0.0; n * act_dim],
            first: vec![true; n],
            ep_ret: vec![0.0; n],
            low,
            high,
        })
    }

    /// The environments.
    pub fn envs(&self) -> &VecEnv<E> {
        &self.envs
    }

    /// Where the collection stands between two collections (the environments' episodes, the
    /// previous actions, episode starts and returns so far), for a checkpoint; the input
    /// filters' state is the caller's.
    pub fn state(&self) -> Result<CollectorState> {
        Ok(CollectorState {
            envs: self.envs.state()?,
            prev: self.prev.clone(),
            first: self.first.clone(),
            ep_ret: self.ep_ret.clone(),
        })
    }

    /// Continues from a [`Collector::state`]: the environments are rebuilt by replaying their
    /// episodes, so the next collection is the one the saved collector would have made.
    pub fn restore(&mut self, state: &CollectorState) -> Result<()> {
        let n = self.envs.len();
        let ad = self.envs.action_dim();
        if state.prev.len() != n * ad || state.first.len() != n || state.ep_ret.len() != n {
            return Err(Error::shape(
                "Collector::restore state",
                format!("{n} environments of {ad} actions"),
                (state.prev.len(), state.first.len(), state.ep_ret.len()),
            ));
        }
        self.obs = self.envs.restore(&state.envs)?;
        self.prev = state.prev.clone();
        self.first = state.first.clone();
        self.ep_ret = state.ep_ret.clone();
        Ok(())
    }

    /// Starts new episodes everywhere: environment `i` is reset with `seed + i`, and later
    /// episodes get the following seeds in the order they start.
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        self.obs = self.envs.reset(Some(seed))?;
        self.first.iter_mut().for_each(|f| *f = true);
        self.ep_ret.iter_mut().for_each(|r| *r = 0.0);
        Ok(())
    }

    /// Acts with `ppo` (sampled actions, clipped to the action box for the environment) until
    /// `budget` is met; `filters` (one per environment) make the policy's inputs, the value
    /// function sees the observations. Values of every observation acted on and of every next
    /// observation (the final one where an episode ended) are computed after the rollout, and
    /// GAE(`gamma`, `lambda`) runs over each environment's stream.
    pub fn collect<P: PolicyMean>(
        &mut self,
        ppo: &Ppo<P>,
        filters: &mut [Box<dyn InputFilter>],
        seeds: PlanSeeds,
        budget: Budget,
        rng: &mut ChaCha8Rng,
    ) -> Result<Collected> {
        let n = self.envs.len();
        let (od, ad) = (self.envs.obs_dim(), self.envs.action_dim());
        if self.obs.is_empty() {
            return Err(Error::NeedsReset(
                "call Collector::reset before collecting".into(),
            ));
        }
        if filters.len() != n {
            return Err(Error::shape(
                "Collector filters",
                format!("{n} (one per environment)"),
                filters.len(),
            ));
        }
        let mut streams: Vec<Stream> = (0..n).map(|_| Stream::default()).collect();
        let mut out = Collected::default();
        let mut t = 0usize;
        loop {
            let done = match budget {
                Budget::Steps(k) => t >= k,
                Budget::Episodes(k) => out.episode_returns.len() >= k,
            };
            if done {
                break;
            }
            t += 1;
            let t0 = Instant::now();
            let mut inputs = Vec::new();
            for (e, filter) in filters.iter_mut().enumerate() {
                if self.first[e] {
                    filter.reset();
                    self.prev[e * ad..(e + 1) * ad].fill(0.0);
                    self.first[e] = false;
                }
                let obs = &self.obs[e * od..(e + 1) * od];
                inputs.push(filter.input(obs, &self.prev[e * ad..(e + 1) * ad])?);
            }
            let plan_seeds: Vec<u64> = (0..n).map(|_| seeds.draw(rng)).collect();
            let flat: Vec<f64> = inputs.concat();
            let acted = ppo.act(&flat, &plan_seeds, false, rng)?;
            let clipped: Vec<f64> = acted
                .actions
                .iter()
                .enumerate()
                .map(|(i, v)| v.clamp(self.low[i % ad], self.high[i % ad]))
                .collect();
            out.act_s += t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let step = self.envs.step(&clipped)?;
            out.env_s += t1.elapsed().as_secs_f64();
            out.decisions += n;
            for e in 0..n {
                let next = match &step.final_obs[e] {
                    Some(last) => last.as_slice(),
                    None => &step.obs[e * od..(e + 1) * od],
                };
                let reward = step.reward[e];
                if !(reward.is_finite() && next.iter().all(|v| v.is_finite())) {
                    return Err(Error::Data(format!(
                        "environment {e} returned a non-finite observation or reward \
                         (reward {reward})"
                    )));
                }
                let s = &mut streams[e];
                s.inputs.extend_from_slice(&inputs[e]);
                s.value_inputs
                    .extend_from_slice(&self.obs[e * od..(e + 1) * od]);
                s.next_obs.extend_from_slice(next);
                s.seeds.push(plan_seeds[e]);
                s.actions
                    .extend_from_slice(&acted.actions[e * ad..(e + 1) * ad]);
                s.logp.push(acted.logp[e]);
                s.rewards.push(reward);
                s.terminated.push(step.terminated[e]);
                let end = step.terminated[e] || step.truncated[e];
                s.ends.push(end);
                out.env_steps += step.substeps[e];
                self.ep_ret[e] += reward;
                if end {
                    out.episode_returns.push(self.ep_ret[e]);
                    self.ep_ret[e] = 0.0;
                    self.first[e] = true;
                }
            }
            self.prev.copy_from_slice(&clipped);
            self.obs = step.obs;
        }
        out.batch = streams_to_batch(ppo, streams)?;
        Ok(out)
    }
}

/// The streams, environment by environment, as one batch with values and GAE advantages.
fn streams_to_batch<P: PolicyMean>(ppo: &Ppo<P>, streams: Vec<Stream>) -> Result<RolloutBatch> {
    let c = ppo.config();
    let mut batch = RolloutBatch::default();
    let mut next_obs = Vec::new();
    for s in &streams {
        batch.inputs.extend_from_slice(&s.inputs);
        batch.value_inputs.extend_from_slice(&s.value_inputs);
        batch.seeds.extend_from_slice(&s.seeds);
        batch.actions.extend_from_slice(&s.actions);
        batch.logp.extend_from_slice(&s.logp);
        next_obs.extend_from_slice(&s.next_obs);
    }
    if batch.logp.is_empty() {
        return Err(Error::Data("the collection gathered no steps".into()));
    }
    let values = ppo.values(&batch.value_inputs)?;
    let next_values = ppo.values(&next_obs)?;
    let (mut adv, mut ret) = (Vec::new(), Vec::new());
    let mut begin = 0;
    for s in &streams {
        let r = begin..begin + s.rewards.len();
        let (a, g) = gae(
            &s.rewards,
            &values[r.clone()],
            &next_values[r],
            &s.terminated,
            &s.ends,
            c.gamma,
            c.gae_lambda,
        )?;
        adv.extend(a);
        ret.extend(g);
        begin += s.rewards.len();
    }
    batch.values = values;
    batch.set_advantages(adv, ret)?;
    Ok(batch)
}
