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

mod cartpole;
mod pendulum;
mod swingup;

pub use cartpole::{CartPole, CartPoleAction};
pub use pendulum::Pendulum;
pub use swingup::{CartpoleSwingup, SwingupConfig, SwingupModel, swingup_dynamics, swingup_reward};

use dcem::env::Space;
use dcem::{Error, Result};

/// Checks that `action` has one value per coordinate of `space` and no NaN.
pub(crate) fn check_action(space: &Space, action: &[f64], env: &str) -> Result<()> {
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
