//! The episode runner: the one loop in which every agent meets every environment.
//!
//! [`run_episode`] resets the environment and the agent, then until the episode ends: the agent
//! acts, the environment steps, and in [`Mode::Train`] the agent observes the transition and
//! updates (in [`Mode::Seed`] it only observes); [`evaluate`] runs evaluation episodes on fixed seeds ([`eval_seeds`]), the same in
//! every run, so that runs are compared on the same start states. Time limits, action repeat and
//! action rescaling are the environment's wrappers ([`TimeLimit`](crate::env::TimeLimit),
//! [`ActionRepeat`](crate::env::ActionRepeat), [`RescaleAction`](crate::env::RescaleAction)),
//! not the runner's.
//!
//! ```
//! use dcem::agent::{Agent, Metrics, Mode, Transition};
//! use dcem::env::{Env, TimeLimit};
//! use dcem::runner::{evaluate, eval_seeds};
//! # use dcem::env::{BoxSpace, Space, Step};
//! # struct Walk { x: f64, space: Space }
//! # impl Env for Walk {
//! #     fn observation_space(&self) -> &Space { &self.space }
//! #     fn action_space(&self) -> &Space { &self.space }
//! #     fn reset(&mut self, _seed: Option<u64>) -> dcem::Result<Vec<f64>> { self.x = 1.0; Ok(vec![self.x]) }
//! #     fn step(&mut self, a: &[f64]) -> dcem::Result<Step> {
//! #         self.x += a[0];
//! #         Ok(Step { obs: vec![self.x], reward: -self.x.abs(), terminated: false, truncated: false })
//! #     }
//! # }
//! struct Halve;
//! impl Agent for Halve {
//!     fn act(&mut self, obs: &[f64]) -> dcem::Result<Vec<f64>> { Ok(vec![-0.5 * obs[0]]) }
//!     fn observe(&mut self, _t: &Transition) -> dcem::Result<()> { Ok(()) }
//!     fn update(&mut self) -> dcem::Result<Metrics> { Ok(Vec::new()) }
//! }
//! let space = Space::Box(BoxSpace::uniform(1, -10.0, 10.0)?);
//! let mut env = TimeLimit::new(Walk { x: 0.0, space }, 3)?;
//! let returns = evaluate(&mut Halve, &mut env, &eval_seeds(2))?;
//! assert_eq!(returns, vec![-0.875, -0.875]); // -(0.5 + 0.25 + 0.125)
//! # Ok::<(), dcem::Error>(())
//! ```

use std::time::Instant;

use crate::agent::{Agent, Metrics, Mode, MpcAgent, Transition};
use crate::env::{Env, VecEnv};
use crate::error::{Error, Result};

/// What one episode did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Episode {
    /// The sum of the rewards.
    pub ret: f64,
    /// Agent decisions (`act` calls).
    pub steps: usize,
    /// Steps of the innermost environment (decisions times the action repeat, less where the
    /// episode ended inside a repeat).
    pub env_steps: usize,
    /// Seconds spent in `act`.
    pub act_seconds: f64,
    /// The metrics of every non-empty update, in order.
    pub updates: Vec<Metrics>,
}

impl Episode {
    /// Mean milliseconds per decision (NaN for an empty episode).
    pub fn act_ms(&self) -> f64 {
        if self.steps == 0 {
            f64::NAN
        } else {
            1e3 * self.act_seconds / self.steps as f64
        }
    }
}

/// Runs one episode of `env`, reset with `seed`. In [`Mode::Train`] every transition goes to
/// [`Agent::observe`] followed by [`Agent::update`], and [`Agent::end_episode`] closes the
/// episode; [`Mode::Seed`] is the same without the updates; in [`Mode::Eval`] the agent only
/// acts. A non-finite observation or reward from the
/// environment is an error naming the step.
pub fn run_episode(
    agent: &mut dyn Agent,
    env: &mut dyn Env,
    seed: u64,
    mode: Mode,
) -> Result<Episode> {
    let mut obs = env.reset(Some(seed))?;
    agent.reset(mode);
    let mut out = Episode::default();
    loop {
        let t0 = Instant::now();
        let action = agent.act(&obs)?;
        out.act_seconds += t0.elapsed().as_secs_f64();
        out.steps += 1;
        let step = env.step(&action)?;
        out.env_steps += env.substeps();
        if !(step.reward.is_finite() && step.obs.iter().all(|v| v.is_finite())) {
            return Err(Error::Data(format!(
                "the environment returned a non-finite observation or reward at step {} \
                 (reward {})",
                out.steps, step.reward
            )));
        }
        out.ret += step.reward;
        let done = step.done();
        if mode.observes() {
            agent.observe(&Transition {
                obs,
                action,
                reward: step.reward,
                next_obs: step.obs.clone(),
                terminated: step.terminated,
                truncated: step.truncated,
            })?;
        }
        if mode == Mode::Train {
            let metrics = agent.update()?;
            if !metrics.is_empty() {
                out.updates.push(metrics);
            }
        }
        obs = step.obs;
        if done {
            break;
        }
    }
    if mode.observes() {
        agent.end_episode()?;
    }
    Ok(out)
}

/// The seeds of evaluation episode `0..n`: disjoint from training seeds and the same in every
/// run, so that evaluations of different runs start from the same states.
pub fn eval_seeds(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| 1_000_000 + i).collect()
}

/// The seeds of periodic (during training) evaluation episode `0..n`: disjoint from training
/// seeds and from [`eval_seeds`], so that a config chosen on periodic evaluations has never
/// seen the start states of the final evaluation it is reported on.
pub fn periodic_eval_seeds(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| 2_000_000 + i).collect()
}

/// Runs one [`Mode::Eval`] episode per seed and returns the returns.
pub fn evaluate(agent: &mut dyn Agent, env: &mut dyn Env, seeds: &[u64]) -> Result<Vec<f64>> {
    seeds
        .iter()
        .map(|&s| Ok(run_episode(agent, env, s, Mode::Eval)?.ret))
        .collect()
}

/// [`evaluate`], also returning the mean milliseconds per decision.
pub fn evaluate_timed(
    agent: &mut dyn Agent,
    env: &mut dyn Env,
    seeds: &[u64],
) -> Result<(Vec<f64>, f64)> {
    let (mut returns, mut secs, mut steps) = (Vec::with_capacity(seeds.len()), 0.0, 0usize);
    for &s in seeds {
        let ep = run_episode(agent, env, s, Mode::Eval)?;
        returns.push(ep.ret);
        secs += ep.act_seconds;
        steps += ep.steps;
    }
    Ok((returns, 1e3 * secs / steps.max(1) as f64))
}

/// [`evaluate`] with one environment per seed, all planned in one call per step
/// ([`MpcAgent::act_batch`]): environment `i` of `envs` runs the episode of `seeds[i]`. An
/// environment whose episode has ended keeps being stepped (and planned for, so that every
/// row keeps its warm start) until the last one ends; what it collects after its end is not
/// counted. The returns equal [`evaluate`]'s up to the planner's noise, which is drawn for the
/// whole batch at once.
pub fn evaluate_batched<E: Env>(
    agent: &mut MpcAgent,
    envs: &mut VecEnv<E>,
    seeds: &[u64],
) -> Result<Vec<f64>> {
    if seeds.len() != envs.len() {
        return Err(Error::shape(
            "evaluate_batched seeds",
            format!("one per environment ({})", envs.len()),
            seeds.len(),
        ));
    }
    let resets: Vec<Option<u64>> = seeds.iter().map(|s| Some(*s)).collect();
    let mut obs = envs.reset_each(&resets)?;
    agent.reset(Mode::Eval);
    let mut returns = vec![0.0; seeds.len()];
    let mut running = vec![true; seeds.len()];
    let mut steps = 0usize;
    while running.iter().any(|r| *r) {
        let actions = agent.act_batch(&obs)?;
        let step = envs.step(&actions)?;
        steps += 1;
        for (i, live) in running.iter_mut().enumerate() {
            if !*live {
                continue;
            }
            let row = &step.obs[i * envs.obs_dim()..(i + 1) * envs.obs_dim()];
            if !(step.reward[i].is_finite() && row.iter().all(|v| v.is_finite())) {
                return Err(Error::Data(format!(
                    "environment {i} returned a non-finite observation or reward at step \
                     {steps} (reward {})",
                    step.reward[i]
                )));
            }
            returns[i] += step.reward[i];
            *live = !(step.terminated[i] || step.truncated[i]);
        }
        obs = step.obs;
    }
    Ok(returns)
}
