//! `VecEnv`: many environments stepped in parallel with rayon, with their autoreset modes.

use rayon::prelude::*;

use super::environment::{Env, Step};
use crate::error::{Error, Result};

/// The result of stepping a [`VecEnv`]: one row per environment.
#[derive(Clone, Debug, PartialEq)]
pub struct VecStep {
    /// Observations, row-major `[n_envs, obs_dim]`.
    pub obs: Vec<f64>,
    /// Rewards, one per environment.
    pub reward: Vec<f64>,
    /// `terminated` flags, one per environment.
    pub terminated: Vec<bool>,
    /// `truncated` flags, one per environment.
    pub truncated: Vec<bool>,
    /// Steps of each innermost environment ([`Env::substeps`]; 0 for an environment that was
    /// reset instead of stepped).
    pub substeps: Vec<usize>,
    /// With [`Autoreset::SameStep`], the last observation of each episode that ended at this
    /// step (its row of `obs` is already the next episode's first); `None` elsewhere.
    pub final_obs: Vec<Option<Vec<f64>>>,
}

/// When a [`VecEnv`] resets an environment whose episode ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Autoreset {
    /// Gymnasium 1.x's default: the step after the end ignores its action, resets, and returns
    /// the first observation with reward 0 and both flags false.
    #[default]
    NextStep,
    /// Gymnasium's `SAME_STEP` (and CleanRL's): the step that ends an episode resets at once and
    /// returns the next episode's first observation, the final one going to
    /// [`VecStep::final_obs`]. Every step is then a real transition.
    SameStep,
}

/// Many environments stepped in parallel with rayon, with Gymnasium 1.x's default
/// "next step" autoreset: after an environment's episode ends, its next `step` call ignores the
/// action, resets it and returns the first observation of the new episode with reward 0 and
/// both flags false.
pub struct VecEnv<E> {
    envs: Vec<E>,
    needs_reset: Vec<bool>,
    started: bool,
    obs_dim: usize,
    act_dim: usize,
    autoreset: Autoreset,
    /// With seeded autoresets: the seed of the next reset.
    next_seed: Option<u64>,
    seeded: bool,
    /// With [`VecEnv::with_replay_log`]: each environment's current episode as its reset seed
    /// and the actions applied since, enough to rebuild it by replay.
    log: Option<Vec<(Option<u64>, Vec<f64>)>>,
}

/// Where a [`VecEnv`] stands, saved by [`VecEnv::state`] and rebuilt by [`VecEnv::restore`]:
/// each environment's current episode (reset seed and the actions applied since), which ones
/// are due a reset, and the next autoreset seed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VecEnvState {
    /// Per environment: the seed its current episode was reset with, and the actions since
    /// (row after row of `action_dim` values).
    pub episodes: Vec<(u64, Vec<f64>)>,
    /// Per environment: its episode has ended and its next step resets it.
    pub needs_reset: Vec<bool>,
    /// The seed of the next autoreset.
    pub next_seed: Option<u64>,
}

impl<E: Env> VecEnv<E> {
    /// Wraps `envs`, which must be non-empty and share observation and action sizes.
    pub fn new(envs: Vec<E>) -> Result<Self> {
        let first = envs
            .first()
            .ok_or_else(|| Error::option("n_envs", "a VecEnv needs at least one environment"))?;
        let obs_dim = first.observation_space().flat_dim();
        let act_dim = first.action_space().flat_dim();
        for (i, e) in envs.iter().enumerate() {
            if e.observation_space().flat_dim() != obs_dim || e.action_space().flat_dim() != act_dim
            {
                return Err(Error::shape(
                    "VecEnv member spaces",
                    format!("obs {obs_dim}, action {act_dim} as env 0"),
                    (
                        i,
                        e.observation_space().flat_dim(),
                        e.action_space().flat_dim(),
                    ),
                ));
            }
        }
        let n = envs.len();
        Ok(Self {
            envs,
            needs_reset: vec![false; n],
            started: false,
            obs_dim,
            act_dim,
            autoreset: Autoreset::NextStep,
            next_seed: None,
            seeded: false,
            log: None,
        })
    }

    /// Keeps a replay log (each episode's reset seed and actions) so that [`VecEnv::state`]
    /// can save where the environments stand and [`VecEnv::restore`] rebuild it exactly, for
    /// environments whose seeded reset and steps are deterministic (every environment here).
    pub fn with_replay_log(mut self) -> Self {
        self.log = Some(vec![(None, Vec::new()); self.envs.len()]);
        self
    }

    /// Where the environments stand (needs [`VecEnv::with_replay_log`] and seeded resets).
    pub fn state(&self) -> Result<VecEnvState> {
        let log = self.log.as_ref().ok_or_else(|| {
            Error::option(
                "VecEnv::state",
                "the environments keep no replay log: build them with with_replay_log",
            )
        })?;
        let episodes = log
            .iter()
            .map(|(seed, actions)| Some((((*seed)?), actions.clone())))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Error::option(
                    "VecEnv::state",
                    "an episode was started without a seed, so it cannot be replayed: reset \
                     with a seed and use seeded autoresets",
                )
            })?;
        Ok(VecEnvState {
            episodes,
            needs_reset: self.needs_reset.clone(),
            next_seed: self.next_seed,
        })
    }

    /// Rebuilds `state` by resetting every environment with its episode's seed and replaying
    /// its actions; returns the observations `[n_envs, obs_dim]` it stands at. An episode that
    /// ends before its replay does is an error (the environment is not deterministic, or the
    /// state is from another one).
    pub fn restore(&mut self, state: &VecEnvState) -> Result<Vec<f64>> {
        let n = self.envs.len();
        if state.episodes.len() != n || state.needs_reset.len() != n {
            return Err(Error::shape(
                "VecEnv::restore state",
                format!("{n} environments"),
                (state.episodes.len(), state.needs_reset.len()),
            ));
        }
        let act_dim = self.act_dim.max(1);
        let mut obs = Vec::with_capacity(n * self.obs_dim);
        for (i, (seed, actions)) in state.episodes.iter().enumerate() {
            if actions.len() % act_dim != 0 {
                return Err(Error::shape(
                    "VecEnv::restore actions",
                    format!("rows of {act_dim}"),
                    actions.len(),
                ));
            }
            let mut last = self.envs[i].reset(Some(*seed))?;
            let steps = actions.len() / act_dim;
            for (k, a) in actions.chunks(act_dim).enumerate() {
                let step = self.envs[i].step(a)?;
                if step.done() && k + 1 < steps {
                    return Err(Error::Data(format!(
                        "environment {i}'s episode ended after {} of its {steps} replayed \
                         steps: the saved state is not from these environments",
                        k + 1
                    )));
                }
                last = step.obs;
            }
            obs.extend(last);
        }
        self.needs_reset = state.needs_reset.clone();
        self.next_seed = state.next_seed;
        self.started = true;
        if self.log.is_some() {
            self.log = Some(
                state
                    .episodes
                    .iter()
                    .map(|(s, a)| (Some(*s), a.clone()))
                    .collect(),
            );
        }
        Ok(obs)
    }

    /// Sets when finished episodes are reset (default [`Autoreset::NextStep`]).
    pub fn with_autoreset(mut self, mode: Autoreset) -> Self {
        self.autoreset = mode;
        self
    }

    /// Seeds every automatic reset: after `reset(Some(s))` (environment `i` gets `s + i`), the
    /// following autoresets take `s + n`, `s + n + 1`, ... in the order the episodes end (by
    /// environment index within a step), so that every episode of a run has its own seed.
    /// Without it an autoreset continues the environment's own random stream.
    pub fn with_seeded_autoresets(mut self) -> Self {
        self.seeded = true;
        self
    }

    fn autoreset_seed(&mut self) -> Option<u64> {
        let seed = self.next_seed?;
        self.next_seed = Some(seed.wrapping_add(1));
        Some(seed)
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Always false: a `VecEnv` holds at least one environment.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Length of one observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Length of one action.
    pub fn action_dim(&self) -> usize {
        self.act_dim
    }

    /// The environments.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets every environment; with `Some(seed)` environment `i` gets `seed + i`
    /// (Gymnasium's convention). Returns observations `[n_envs, obs_dim]`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        let obs: Vec<Vec<f64>> = self
            .envs
            .par_iter_mut()
            .enumerate()
            .map(|(i, e)| e.reset(seed.map(|s| s.wrapping_add(i as u64))))
            .collect::<Result<_>>()?;
        self.needs_reset.iter_mut().for_each(|r| *r = false);
        self.started = true;
        self.next_seed = match seed {
            Some(s) if self.seeded => Some(s.wrapping_add(self.envs.len() as u64)),
            _ => None,
        };
        if let Some(log) = self.log.as_mut() {
            for (i, entry) in log.iter_mut().enumerate() {
                *entry = (seed.map(|s| s.wrapping_add(i as u64)), Vec::new());
            }
        }
        Ok(obs.concat())
    }

    /// Resets environment `i` with `seeds[i]` (`None`: it continues its own random stream), as
    /// Gymnasium's vector envs take a list of seeds. Automatic resets are not seeded after it.
    /// Returns observations `[n_envs, obs_dim]`.
    pub fn reset_each(&mut self, seeds: &[Option<u64>]) -> Result<Vec<f64>> {
        if seeds.len() != self.envs.len() {
            return Err(Error::shape(
                "VecEnv::reset_each seeds",
                format!("one per environment ({})", self.envs.len()),
                seeds.len(),
            ));
        }
        let obs: Vec<Vec<f64>> = self
            .envs
            .par_iter_mut()
            .zip(seeds.par_iter())
            .map(|(e, s)| e.reset(*s))
            .collect::<Result<_>>()?;
        self.needs_reset.iter_mut().for_each(|r| *r = false);
        self.started = true;
        self.next_seed = None;
        if let Some(log) = self.log.as_mut() {
            for (entry, s) in log.iter_mut().zip(seeds) {
                *entry = (*s, Vec::new());
            }
        }
        Ok(obs.concat())
    }

    /// Steps every environment with its row of `actions` (`[n_envs, action_dim]`, row-major).
    pub fn step(&mut self, actions: &[f64]) -> Result<VecStep> {
        if !self.started {
            return Err(Error::NeedsReset(
                "call VecEnv::reset before the first step".into(),
            ));
        }
        if actions.len() != self.envs.len() * self.act_dim {
            return Err(Error::shape(
                "VecEnv::step actions",
                format!("{} x {} values", self.envs.len(), self.act_dim),
                actions.len(),
            ));
        }
        let (n, act_dim, obs_dim) = (self.envs.len(), self.act_dim, self.obs_dim);
        let mut out = VecStep {
            obs: vec![0.0; n * obs_dim],
            reward: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            substeps: vec![0; n],
            final_obs: vec![None; n],
        };
        // Seeds of the resets due at this step (next-step mode), in environment order.
        let due = self.needs_reset.clone();
        let seeds: Vec<Option<u64>> = due
            .iter()
            .map(|&d| if d { self.autoreset_seed() } else { None })
            .collect();
        // Give each parallel task about 20 us of work (rayon's overhead is about 1 us a task),
        // but no more than an even share of the environments.
        let cost = self.envs[0].step_cost_hint_ns().max(1);
        let threads = rayon::current_num_threads().max(1);
        let min_len = ((20_000 / cost) as usize)
            .clamp(1, 16)
            .min(n.div_ceil(threads));
        self.envs
            .par_iter_mut()
            .zip(self.needs_reset.par_iter_mut())
            .zip(seeds.par_iter())
            .zip(actions.par_chunks(act_dim.max(1)))
            .zip(out.obs.par_chunks_mut(obs_dim.max(1)))
            .zip(out.reward.par_iter_mut())
            .zip(out.terminated.par_iter_mut())
            .zip(out.truncated.par_iter_mut())
            .zip(out.substeps.par_iter_mut())
            .with_min_len(min_len)
            .try_for_each(
                |(
                    (
                        ((((((env, needs_reset), seed), action), obs), reward), terminated),
                        truncated,
                    ),
                    substeps,
                )| {
                    let step = if *needs_reset {
                        *needs_reset = false;
                        Step {
                            obs: env.reset(*seed)?,
                            reward: 0.0,
                            terminated: false,
                            truncated: false,
                        }
                    } else {
                        let step = env.step(action)?;
                        *needs_reset = step.done();
                        *substeps = env.substeps();
                        step
                    };
                    if step.obs.len() != obs.len() {
                        return Err(Error::shape(
                            "VecEnv member observation",
                            format!("{} values", obs.len()),
                            step.obs.len(),
                        ));
                    }
                    obs.copy_from_slice(&step.obs);
                    *reward = step.reward;
                    *terminated = step.terminated;
                    *truncated = step.truncated;
                    Ok(())
                },
            )?;
        if let Some(log) = self.log.as_mut() {
            for (i, entry) in log.iter_mut().enumerate() {
                if due[i] {
                    *entry = (seeds[i], Vec::new());
                } else {
                    entry
                        .1
                        .extend_from_slice(&actions[i * act_dim..(i + 1) * act_dim]);
                }
            }
        }
        if self.autoreset == Autoreset::SameStep {
            self.reset_finished(&mut out)?;
        }
        Ok(out)
    }

    /// Same-step autoreset: the environments whose episode ended at this step are reset now
    /// (seeds in environment order), their final observations kept in `final_obs`.
    fn reset_finished(&mut self, out: &mut VecStep) -> Result<()> {
        let obs_dim = self.obs_dim;
        let done: Vec<usize> = (0..self.envs.len())
            .filter(|&i| self.needs_reset[i])
            .collect();
        let seeds: Vec<Option<u64>> = done.iter().map(|_| self.autoreset_seed()).collect();
        for (&i, seed) in done.iter().zip(seeds) {
            let first = self.envs[i].reset(seed)?;
            if first.len() != obs_dim {
                return Err(Error::shape(
                    "VecEnv member observation",
                    format!("{obs_dim} values"),
                    first.len(),
                ));
            }
            let row = &mut out.obs[i * obs_dim..(i + 1) * obs_dim];
            out.final_obs[i] = Some(row.to_vec());
            row.copy_from_slice(&first);
            self.needs_reset[i] = false;
            if let Some(log) = self.log.as_mut() {
                log[i] = (seed, Vec::new());
            }
        }
        Ok(())
    }
}
