//! # dcem-envs: environments for the dcem framework
//!
//! Every environment implements [`dcem::env::Env`] (Gymnasium 1.x shaped: `reset(seed)`,
//! `step(action) -> Step`), owns a `ChaCha8Rng` (seeded by `reset(Some(seed))`, seed 0 until
//! then) and rejects NaN actions with an error.
//!
//! | environment | reference | observation | action |
//! |---|---|---|---|
//! | [`CartPole`] | Gymnasium `CartPole-v1` | x, x', theta, theta' | continuous in [-1, 1] x 10 N, or discrete {0, 1} |
//! | [`CartpoleSwingup`] | the DCEM paper's cartpole (the `mpc` package) | x, x', cos th, sin th, th' | [-1, 1] x 100 N |
//! | [`Pendulum`] | Gymnasium `Pendulum-v1` | cos th, sin th, th' | torque in [-2, 2] |
//! | `dmc::CheetahRun` (feature `mujoco`) | dm_control `cheetah.run` | qpos\[1..\], qvel (17) | 6 in [-1, 1] |
//! | `dmc::WalkerWalk` (feature `mujoco`) | dm_control `walker.walk` | orientations, height, qvel (24) | 6 in [-1, 1] |
//! | `GymEnv` (feature `python`) | any Python Gymnasium id, through embedded Python | flattened | the env's Box or Discrete |
//!
//! [`SwingupModel`] is the swing-up's dynamics and cost on burn tensors, batched and
//! differentiable: a [`dcem::model::Model`] for planning on the true dynamics.
//!
//! ```
//! use dcem::env::Env;
//! use dcem_envs::CartpoleSwingup;
//! let mut env = CartpoleSwingup::new(Default::default()).unwrap();
//! let obs = env.reset(Some(0)).unwrap();
//! let step = env.step(&[0.5]).unwrap();
//! assert_eq!(obs.len(), 5);
//! assert!(!step.terminated);
//! ```

/// The `observation_space` and `action_space` of an `Env` impl whose struct keeps its spaces in
/// the fields `obs_space` and `act_space` (every native environment of this crate).
macro_rules! spaces_in_fields {
    () => {
        fn observation_space(&self) -> &Space {
            &self.obs_space
        }

        fn action_space(&self) -> &Space {
            &self.act_space
        }
    };
}

mod cartpole;
#[cfg(feature = "mujoco")]
pub mod dmc;
#[cfg(feature = "python")]
mod gym;
mod pendulum;
mod registry;
pub mod render;
mod swingup;

pub use cartpole::{CartPole, CartPoleAction};
#[cfg(feature = "python")]
pub use gym::GymEnv;
pub use pendulum::Pendulum;
pub use swingup::{
    CartpoleSwingup, RolloutGradients, SwingupConfig, SwingupModel, swingup_dynamics,
    swingup_reward, swingup_rollout_adjoint,
};

use dcem::env::Space;
use dcem::{Error, Result};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// The bookkeeping every environment shares: its own generator, the step count of the current
/// episode, and whether a reset is needed before the next step.
#[derive(Debug)]
pub(crate) struct Episode {
    /// The environment's generator: seed 0 until `reset(Some(seed))` reseeds it.
    pub rng: ChaCha8Rng,
    steps: usize,
    ready: bool,
}

impl Episode {
    pub fn new() -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(0),
            steps: 0,
            ready: false,
        }
    }

    /// `reset(seed)`: `Some` reseeds the generator, `None` continues its stream.
    pub fn reseed(&mut self, seed: Option<u64>) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
    }

    /// Starts an episode from `state`, which must be finite.
    pub fn start(&mut self, state: &[f64]) -> Result<()> {
        if state.iter().any(|v| !v.is_finite()) {
            return Err(Error::option(
                "state",
                format!("must be finite, got {state:?}"),
            ));
        }
        self.steps = 0;
        self.ready = true;
        Ok(())
    }

    /// Checks that a step may be taken with `action`: the episode has started and not ended,
    /// and the action has one value per coordinate of `space` and no NaN.
    pub fn check_step(&self, space: &Space, action: &[f64], env: &str) -> Result<()> {
        if !self.ready {
            return Err(Error::NeedsReset(format!(
                "{env}: call reset before step (and after an episode ends)"
            )));
        }
        if action.len() != space.flat_dim() {
            return Err(Error::InvalidAction(format!(
                "{env}: expected {} value(s), got {}",
                space.flat_dim(),
                action.len()
            )));
        }
        if action.iter().any(|v| v.is_nan()) {
            return Err(Error::InvalidAction(format!(
                "{env}: action {action:?} contains NaN"
            )));
        }
        Ok(())
    }

    /// Ends the episode early (after an error): the next step needs a reset.
    #[cfg_attr(not(feature = "mujoco"), allow(dead_code))]
    pub fn abort(&mut self) {
        self.ready = false;
    }

    /// Counts a step and returns `truncated` (the step limit is reached, whether or not the step
    /// also terminated, as Gymnasium's `TimeLimit` does); the episode ends on either flag.
    pub fn finish_step(&mut self, terminated: bool, max_steps: usize) -> bool {
        self.steps += 1;
        let truncated = self.steps >= max_steps;
        self.ready = !(terminated || truncated);
        truncated
    }
}

// ANCHOR: env_spec
/// Which environment to build, as a config section (`kind = "swingup" | "cartpole" |
/// "cheetah_run" | "walker_walk" | "gym"`, or a kind a crate registered with
/// [`register_env`]). The DeepMind Control tasks need the `mujoco` feature, `gym` the `python`
/// feature; asking for one without it is an error that says how to build it.
#[derive(Clone, Debug, PartialEq)]
pub enum EnvSpec {
    /// The native [`CartpoleSwingup`].
    Swingup {
        /// Steps per episode (default 100).
        episode_steps: usize,
    },
    /// The native `CartPole-v1` with continuous actions (a force fraction in [-1, 1]; 500 steps,
    /// terminates when the pole falls).
    Cartpole {},
    /// DeepMind Control `cheetah.run` (1000 steps per episode).
    CheetahRun {},
    /// DeepMind Control `walker.walk` (1000 steps per episode).
    WalkerWalk {},
    /// Any Python Gymnasium environment with a Box action space, by id.
    Gym {
        /// The Gymnasium id, e.g. `Pendulum-v1`.
        id: String,
    },
    /// An environment registered by name ([`register_env`]), with the section's other keys as
    /// its options.
    Registered {
        /// The registered name.
        kind: String,
        /// Every key of the section but `kind`, passed to the registered constructor.
        options: toml::Table,
    },
}
// ANCHOR_END: env_spec

pub use registry::{BUILTIN_KINDS, EnvConstructor, register_env, registered_kinds};

/// `episode_steps` with its name in the error (serde's errors inside an internally tagged enum
/// do not say which field they are about).
pub(crate) fn episode_steps_named<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<usize, D::Error> {
    <usize as serde::Deserialize>::deserialize(d)
        .map_err(|e| serde::de::Error::custom(format!("`episode_steps`: {e}")))
}

/// `id` with its name in the error (as [`episode_steps_named`]).
pub(crate) fn gym_id_named<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    <String as serde::Deserialize>::deserialize(d)
        .map_err(|e| serde::de::Error::custom(format!("`id`: {e}")))
}

pub(crate) fn default_swingup_steps() -> usize {
    SwingupConfig::default().episode_steps
}

impl Default for EnvSpec {
    fn default() -> Self {
        Self::Swingup {
            episode_steps: default_swingup_steps(),
        }
    }
}

impl EnvSpec {
    /// A short name for logs and plots.
    pub fn name(&self) -> String {
        match self {
            Self::Swingup { .. } => "swingup".into(),
            Self::Cartpole {} => "cartpole (continuous)".into(),
            Self::CheetahRun {} => "cheetah.run".into(),
            Self::WalkerWalk {} => "walker.walk".into(),
            Self::Gym { id } => id.clone(),
            Self::Registered { kind, .. } => kind.clone(),
        }
    }
}

/// Builds the environment `spec` names.
pub fn make_env(spec: &EnvSpec) -> Result<Box<dyn dcem::env::Env>> {
    match spec {
        EnvSpec::Swingup { episode_steps } => Ok(Box::new(CartpoleSwingup::new(SwingupConfig {
            episode_steps: *episode_steps,
        })?)),
        EnvSpec::Cartpole {} => Ok(Box::new(CartPole::new(CartPoleAction::Continuous)?)),
        #[cfg(feature = "mujoco")]
        EnvSpec::CheetahRun {} => Ok(Box::new(dmc::CheetahRun::new()?)),
        #[cfg(feature = "mujoco")]
        EnvSpec::WalkerWalk {} => Ok(Box::new(dmc::WalkerWalk::new()?)),
        #[cfg(not(feature = "mujoco"))]
        EnvSpec::CheetahRun {} | EnvSpec::WalkerWalk {} => Err(Error::Config(format!(
            "env kind {:?} needs MuJoCo: run scripts/setup_venv.sh, then build with \
             `--features dcem-envs/mujoco`",
            spec.name()
        ))),
        #[cfg(feature = "python")]
        EnvSpec::Gym { id } => Ok(Box::new(GymEnv::new(id)?)),
        #[cfg(not(feature = "python"))]
        EnvSpec::Gym { id } => Err(Error::Config(format!(
            "env kind \"gym\" (id {id:?}) needs embedded Python: run scripts/setup_venv.sh, \
             then build with `--features dcem-envs/python`"
        ))),
        EnvSpec::Registered { kind, options } => registry::make(kind, options),
    }
}
