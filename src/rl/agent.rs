//! [`PpoAgent`]: a PPO policy as an [`Agent`], for the episode runner.

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::collect::PlanSeeds;
use super::gae::gae;
use super::input::InputFilter;
use super::policy::PolicyMean;
use super::ppo::{Ppo, RolloutBatch};
use crate::agent::{Agent, Metrics, Mode, Transition};
use crate::env::Space;
use crate::error::{Error, Result};

/// A Gaussian policy around any [`PolicyMean`] acting through an [`InputFilter`]: in
/// [`Mode::Train`] it samples, records every transition and runs a PPO update once
/// `steps_per_update` steps are in; in [`Mode::Eval`] it returns the mean action; in
/// [`Mode::Seed`] it samples and records as in training, and those steps count towards the next
/// update (the policy has not changed, so they are on-policy). Actions are
/// clipped to the action box before they reach the environment (the stored action, whose
/// log-probability PPO uses, is the sampled one). Multi-environment training collects with
/// [`Collector`](super::Collector) and steps the same [`Ppo`].
pub struct PpoAgent<P: PolicyMean> {
    /// The learner.
    pub ppo: Ppo<P>,
    filter: Box<dyn InputFilter>,
    seeds: PlanSeeds,
    rng: ChaCha8Rng,
    low: Vec<f64>,
    high: Vec<f64>,
    mode: Mode,
    prev: Vec<f64>,
    steps_per_update: usize,
    pending: Pending,
}

/// Transitions recorded since the last update.
#[derive(Default)]
struct Pending {
    batch: RolloutBatch,
    next_obs: Vec<f64>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    ends: Vec<bool>,
    last_input: Vec<f64>,
    last_seed: u64,
    last_logp: f64,
    last_action: Vec<f64>,
}

impl<P: PolicyMean> PpoAgent<P> {
    /// An agent acting in `action_space` (a box) with `ppo`; `steps_per_update` transitions per
    /// PPO update in training (0: never update, acting only); `rng` draws the action noise (and
    /// the plan seeds with [`PlanSeeds::Drawn`]).
    pub fn new(
        ppo: Ppo<P>,
        filter: Box<dyn InputFilter>,
        seeds: PlanSeeds,
        action_space: &Space,
        steps_per_update: usize,
        rng: ChaCha8Rng,
    ) -> Result<Self> {
        let Space::Box(b) = action_space else {
            return Err(Error::option(
                "action_space",
                "a PPO agent acts in a continuous (Box) action space",
            ));
        };
        Ok(Self {
            ppo,
            filter,
            seeds,
            rng,
            low: b.low().to_vec(),
            high: b.high().to_vec(),
            mode: Mode::Eval,
            prev: vec![0.0; b.dim()],
            steps_per_update,
            pending: Pending::default(),
        })
    }

    /// Restarts the acting generator from `seed` (evaluations that draw plan seeds from a fixed
    /// stream).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Replaces the input filter (a belief filter over the model as it is after an update).
    pub fn set_filter(&mut self, filter: Box<dyn InputFilter>) {
        self.filter = filter;
    }
}

impl<P: PolicyMean> Agent for PpoAgent<P> {
    fn act(&mut self, obs: &[f64]) -> Result<Vec<f64>> {
        let input = self.filter.input(obs, &self.prev)?;
        let seed = self.seeds.draw(&mut self.rng);
        let acted = self
            .ppo
            .act(&input, &[seed], self.mode == Mode::Eval, &mut self.rng)?;
        let a: Vec<f64> = acted
            .actions
            .iter()
            .zip(self.low.iter().zip(&self.high))
            .map(|(v, (l, h))| v.clamp(*l, *h))
            .collect();
        self.prev = a.clone();
        let p = &mut self.pending;
        p.last_input = input;
        p.last_seed = seed;
        p.last_logp = acted.logp[0];
        p.last_action = acted.actions;
        Ok(a)
    }

    fn observe(&mut self, t: &Transition) -> Result<()> {
        let p = &mut self.pending;
        p.batch.inputs.extend_from_slice(&p.last_input);
        p.batch.value_inputs.extend_from_slice(&t.obs);
        p.batch.seeds.push(p.last_seed);
        p.batch.actions.extend_from_slice(&p.last_action);
        p.batch.logp.push(p.last_logp);
        p.next_obs.extend_from_slice(&t.next_obs);
        p.rewards.push(t.reward);
        p.terminated.push(t.terminated);
        p.ends.push(t.terminated || t.truncated);
        Ok(())
    }

    /// A PPO update (values, GAE over the recorded stream, `ppo.epochs` passes) once
    /// `steps_per_update` transitions are recorded; its metrics under `loss/*`.
    fn update(&mut self) -> Result<Metrics> {
        if self.steps_per_update == 0 || self.pending.rewards.len() < self.steps_per_update {
            return Ok(Vec::new());
        }
        let mut p = std::mem::take(&mut self.pending);
        let values = self.ppo.values(&p.batch.value_inputs)?;
        let next_values = self.ppo.values(&p.next_obs)?;
        let c = self.ppo.config();
        let (adv, ret) = gae(
            &p.rewards,
            &values,
            &next_values,
            &p.terminated,
            &p.ends,
            c.gamma,
            c.gae_lambda,
        )?;
        p.batch.values = values;
        p.batch.set_advantages(adv, ret)?;
        let stats = self.ppo.update(&p.batch, &mut self.rng)?;
        Ok(stats.named())
    }

    fn reset(&mut self, mode: Mode) {
        self.mode = mode;
        self.filter.reset();
        self.prev.iter_mut().for_each(|v| *v = 0.0);
    }
}
