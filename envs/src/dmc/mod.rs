//! DeepMind Control Suite tasks on MuJoCo 3.17.0 (feature `mujoco`): [`CheetahRun`] and
//! [`WalkerWalk`], equal step for step to dm_control 1.0.50's `cheetah.run` and `walker.walk`.
//!
//! The structure is dm_control's: a domain physics wrapper ([`CheetahPhysics`],
//! [`WalkerPhysics`], each a [`Physics`] with named getters), a [`Task`] (reset distribution,
//! observation, reward) and [`ControlEnv`], the `control.Environment` that steps them. Rewards
//! use [`tolerance`], dm_control's shaping function.
//!
//! | task | observation (dm_control key order) | action | steps | control step |
//! |---|---|---|---|---|
//! | [`CheetahRun`] | position = qpos\[1..\] (8), velocity = qvel (9) | 6 in [-1, 1] | 1000 | 0.01 s (1 substep) |
//! | [`WalkerWalk`] | orientations (14), height (1), velocity (9) | 6 in [-1, 1] | 1000 | 0.025 s (10 substeps) |
//!
//! Actions go to MuJoCo's `ctrl` as they are, as in dm_control; MuJoCo clamps them to the
//! actuators' `ctrlrange` of [-1, 1], so an action outside the space acts as its clipped value.
//! Episodes never terminate and are truncated after 1000 steps. A diverged simulation is an
//! [`dcem::Error::NonFinite`] error and the episode must be reset.
//!
//! The model files are read from the installed `dm-control` package ([`suite_dir`]), never
//! copied. The library is the PyPI `mujoco==3.17.0` wheel's; `scripts/setup_venv.sh` installs
//! both and `.cargo/config.toml` points the build at them.
//!
//! ```no_run
//! use dcem::env::Env;
//! use dcem_envs::dmc::CheetahRun;
//! let mut env = CheetahRun::new().unwrap();
//! let obs = env.reset(Some(0)).unwrap();
//! let step = env.step(&[0.0; 6]).unwrap();
//! assert_eq!((obs.len(), step.obs.len()), (17, 17));
//! ```

mod cheetah;
mod locate;
mod physics;
mod walker;

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

pub use cheetah::{CheetahPhysics, Run};
pub use locate::{PYTHON_VAR, SUITE_DIR_VAR, suite_dir, use_suite_dir};
pub use mujoco_rs::prelude::MjModel;
pub use physics::{MUJOCO_VERSION, Physics, check_library_version, load_model};
pub use walker::{Walk, WalkerPhysics};

use dcem::env::{BoxSpace, Env, Space, Step};
use dcem::{Error, Result};
use rand::rngs::ChaCha8Rng;

use crate::Episode;

/// `cheetah.run`: make the half-cheetah run forward; reward `clamp(v / 10, 0, 1)`.
pub type CheetahRun = ControlEnv<Run>;
/// `walker.walk`: make the planar walker stand up and walk forward at 1 m/s or more.
pub type WalkerWalk = ControlEnv<Walk>;

/// The shape of [`tolerance`] outside the bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sigmoid {
    /// `exp(-(d s)^2 / 2)`, with `s` such that the value at `d = 1` is `value_at_margin`.
    Gaussian,
    /// `1 - d (1 - value_at_margin)` while positive, else 0.
    Linear,
}

/// dm_control's `rewards.tolerance`: 1 when `x` is within `bounds` (inclusive; either end may be
/// infinite), otherwise a sigmoid of the distance to the nearest bound in units of `margin`
/// that equals `value_at_margin` one margin away. With `margin == 0` it is 0 outside.
/// Computed with dm_control's operations in the same order, so the values are the same bits.
pub fn tolerance(
    x: f64,
    bounds: (f64, f64),
    margin: f64,
    sigmoid: Sigmoid,
    value_at_margin: f64,
) -> f64 {
    let (lower, upper) = bounds;
    debug_assert!(lower <= upper && margin >= 0.0);
    if lower <= x && x <= upper {
        return 1.0;
    }
    if margin == 0.0 {
        return 0.0;
    }
    let d = if x < lower { lower - x } else { x - upper } / margin;
    match sigmoid {
        Sigmoid::Gaussian => {
            let scale = (-2.0 * value_at_margin.ln()).sqrt();
            // numpy's `(x * scale)**2` calls libm's pow, which is not always the correctly
            // rounded square; call it too (the opaque exponent keeps the compiler from
            // turning it into a multiplication) so the reward has dm_control's bits.
            (-0.5 * (d * scale).powf(std::hint::black_box(2.0))).exp()
        }
        Sigmoid::Linear => {
            let scaled = d * (1.0 - value_at_margin);
            if scaled.abs() < 1.0 {
                1.0 - scaled
            } else {
                0.0
            }
        }
    }
}

/// A domain's physics: a [`Physics`] (reachable through `Deref`) plus the ids its named
/// getters need, resolved once.
pub trait DomainPhysics: Deref<Target = Physics> + DerefMut + Send + Sized {
    /// The model file in dm_control's `suite` folder.
    const XML: &'static str;
    /// Wraps a simulation of the domain's model, resolving named bodies and sensors.
    fn wrap(physics: Physics) -> Result<Self>;
}

/// A task on a domain, in the manner of dm_control's `base.Task`.
pub trait Task: Send + Sized + Default {
    /// The domain's physics.
    type Physics: DomainPhysics;
    /// The task's name, `domain.task`.
    const NAME: &'static str;
    /// MuJoCo steps per control step.
    const N_SUB_STEPS: usize;
    /// Control steps per episode (dm_control's time limit over the control timestep).
    const MAX_STEPS: usize = 1000;
    /// Length of the flat observation.
    const OBS_DIM: usize;

    /// The random part of the reset: writes sampled joint positions into `qpos` after
    /// `mj_resetData` (uses `rng`; dm_control draws from its own numpy generator, so the
    /// draws differ while the distribution is the same).
    fn randomize(&self, physics: &mut Self::Physics, rng: &mut ChaCha8Rng);
    /// The deterministic rest of dm_control's `initialize_episode` (cheetah: 200 settling
    /// steps and time 0).
    fn settle(&self, _physics: &mut Self::Physics) -> Result<()> {
        Ok(())
    }
    /// Appends the flat observation, in dm_control's key order.
    fn observation(&self, physics: &Self::Physics, out: &mut Vec<f64>);
    /// The reward of the state in `physics`.
    fn reward(&self, physics: &Self::Physics) -> f64;
}

/// dm_control's `control.Environment` for one [`Task`], as an [`Env`].
pub struct ControlEnv<T: Task> {
    physics: T::Physics,
    task: T,
    episode: Episode,
    obs_space: Space,
    act_space: Space,
}

impl<T: Task> std::fmt::Debug for ControlEnv<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlEnv")
            .field("task", &T::NAME)
            .field("physics", &*self.physics)
            .finish()
    }
}

impl<T: Task> ControlEnv<T> {
    /// Loads the task's model from dm_control's installed `suite` folder (see [`suite_dir`]).
    pub fn new() -> Result<Self> {
        Self::with_model(Self::load_model()?)
    }

    /// Loads and compiles the task's model file, to share among environments with
    /// [`ControlEnv::with_model`].
    pub fn load_model() -> Result<Arc<MjModel>> {
        load_model(&suite_dir()?.join(<T::Physics as DomainPhysics>::XML))
    }

    /// An environment on an already loaded model (shared, read-only; each environment has its
    /// own simulation data, so environments on one model may step on different threads).
    pub fn with_model(model: Arc<MjModel>) -> Result<Self> {
        let physics = T::Physics::wrap(Physics::new(model))?;
        let nu = physics.nu();
        let ranges = physics.model().actuator_ctrlrange().to_vec();
        let act_space = Space::Box(BoxSpace::new(
            ranges.iter().map(|r| r[0]).collect(),
            ranges.iter().map(|r| r[1]).collect(),
            vec![nu],
        )?);
        let obs_space = Space::Box(BoxSpace::uniform(
            T::OBS_DIM,
            f64::NEG_INFINITY,
            f64::INFINITY,
        )?);
        Ok(Self {
            physics,
            task: T::default(),
            episode: Episode::new(),
            obs_space,
            act_space,
        })
    }

    /// Another environment on the same model, with its own data and generator (seed 0).
    pub fn share(&self) -> Result<Self> {
        Self::with_model(self.physics.model().clone())
    }

    /// The domain physics.
    pub fn physics(&self) -> &T::Physics {
        &self.physics
    }

    /// The domain physics, mutable: for experiments and benchmarks that drive MuJoCo directly
    /// (stepping it bypasses the episode's step count).
    pub fn physics_mut(&mut self) -> &mut T::Physics {
        &mut self.physics
    }

    /// The current flat observation.
    pub fn observation(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(T::OBS_DIM);
        self.task.observation(&self.physics, &mut out);
        out
    }

    /// The reward of the current state (what a step that ended in it returned).
    pub fn reward(&self) -> f64 {
        self.task.reward(&self.physics)
    }

    /// Starts an episode the way `reset` does, but with the randomised joint positions given
    /// (a full `qpos`, as dm_control's random draws left it) instead of drawn: `mj_resetData`,
    /// `qpos`, the task's settling, then `mj_forward`. Replays dm_control's resets exactly.
    pub fn reset_from_qpos(&mut self, qpos: &[f64]) -> Result<Vec<f64>> {
        if qpos.len() != self.physics.nq() {
            return Err(Error::shape(
                "qpos",
                format!("{} values", self.physics.nq()),
                qpos.len(),
            ));
        }
        self.episode.start(qpos)?;
        self.begin(Some(qpos))
    }

    /// Starts an episode from a full dynamic state (positions, velocities, solver warm start),
    /// as recorded from dm_control after its reset, followed by `mj_forward`.
    pub fn reset_to_state(
        &mut self,
        qpos: &[f64],
        qvel: &[f64],
        qacc_warmstart: &[f64],
    ) -> Result<Vec<f64>> {
        let joined: Vec<f64> = qpos
            .iter()
            .chain(qvel)
            .chain(qacc_warmstart)
            .copied()
            .collect();
        self.episode.start(&joined)?;
        if let Err(e) = self.physics.set_state(qpos, qvel, qacc_warmstart) {
            self.episode.abort();
            return Err(e);
        }
        self.physics.set_time(0.0);
        Ok(self.observation())
    }

    /// dm_control's reset: `mj_resetData` and `mj_forward`, the task's `initialize_episode`
    /// (random joint positions, or `qpos` when given, then its settling), then `mj_forward`.
    fn begin(&mut self, qpos: Option<&[f64]>) -> Result<Vec<f64>> {
        let Self {
            physics,
            task,
            episode,
            ..
        } = self;
        let result = physics.reset().and_then(|()| {
            match qpos {
                Some(q) => physics.qpos_mut().copy_from_slice(q),
                None => task.randomize(physics, &mut episode.rng),
            }
            task.settle(physics)?;
            physics.forward()
        });
        if let Err(e) = result {
            self.episode.abort();
            return Err(e);
        }
        Ok(self.observation())
    }
}

impl<T: Task> Env for ControlEnv<T> {
    spaces_in_fields!();

    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        self.episode.reseed(seed);
        self.episode.start(&[])?;
        self.begin(None)
    }

    /// MuJoCo steps take microseconds: about 10 us per substep for these models.
    fn step_cost_hint_ns(&self) -> u64 {
        10_000 * T::N_SUB_STEPS as u64
    }

    fn step(&mut self, action: &[f64]) -> Result<Step> {
        self.episode.check_step(&self.act_space, action, T::NAME)?;
        self.physics.set_control(action)?;
        if let Err(e) = self.physics.step(T::N_SUB_STEPS) {
            self.episode.abort();
            return Err(e);
        }
        let reward = self.task.reward(&self.physics);
        let obs = self.observation();
        let truncated = self.episode.finish_step(false, T::MAX_STEPS);
        Ok(Step {
            obs,
            reward,
            terminated: false,
            truncated,
        })
    }
    fn max_episode_steps(&self) -> Option<usize> {
        Some(T::MAX_STEPS)
    }
}
