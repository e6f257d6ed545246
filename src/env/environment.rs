//! The [`Env`] trait and what one step returns ([`Step`]); `Box<dyn Env>` and `&mut E` are
//! environments too.

use super::space::Space;
use crate::error::Result;

/// What one environment step returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The observation after the step (a fresh vector each step).
    pub obs: Vec<f64>,
    /// The reward for the transition.
    pub reward: f64,
    /// The episode ended inside the task (a terminal state): do not bootstrap.
    pub terminated: bool,
    /// The episode was cut from outside the task (e.g. a time limit): bootstrap.
    pub truncated: bool,
}

impl Step {
    /// Whether the episode is over for either reason.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

// ANCHOR: env
/// A Gymnasium-style environment.
///
/// Seeding: `reset(Some(seed))` reseeds the environment's own generator; `reset(None)` continues
/// its random stream, so a run seeded once is reproducible. Environments never use a thread-local
/// generator.
pub trait Env: Send {
    /// The space observations live in.
    fn observation_space(&self) -> &Space;

    /// The space of valid actions.
    fn action_space(&self) -> &Space;

    /// Starts a new episode and returns its first observation.
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>>;

    /// Applies one action. A NaN action, or one of the wrong length, is an error; what happens
    /// to an action outside the space is documented by each environment (clipped or rejected).
    fn step(&mut self, action: &[f64]) -> Result<Step>;

    /// Roughly how long one `step` takes, in nanoseconds. Only a hint, which [`VecEnv`] uses to
    /// decide how many environments one parallel task steps: the default (100 ns) suits
    /// analytic environments; a physics simulator should return its measured cost.
    fn step_cost_hint_ns(&self) -> u64 {
        100
    }

    /// How many steps of the innermost environment the last `step` took: 1 for a plain
    /// environment; an action-repeat wrapper returns the steps it repeated (fewer than its
    /// repeat when the episode ended inside it). The episode runner counts environment steps
    /// with it.
    fn substeps(&self) -> usize {
        1
    }

    /// The most steps an episode lasts (Gymnasium's `spec.max_episode_steps`), where the
    /// environment has a limit: `TimeLimit` sets it, an action-repeat wrapper counts it in its
    /// own steps. Agents size what depends on the episode length (training chunks) from it
    /// rather than from a config's env kind. Default: no limit known.
    fn max_episode_steps(&self) -> Option<usize> {
        None
    }
}
// ANCHOR_END: env

/// Implements [`Env`] for a pointer-like type by forwarding every method to the environment it
/// points at.
macro_rules! forward_env {
    ($($ty:ty),*) => {$(
        impl<E: Env + ?Sized> Env for $ty {
            fn observation_space(&self) -> &Space {
                (**self).observation_space()
            }
            fn action_space(&self) -> &Space {
                (**self).action_space()
            }
            fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
                (**self).reset(seed)
            }
            fn step(&mut self, action: &[f64]) -> Result<Step> {
                (**self).step(action)
            }
            fn step_cost_hint_ns(&self) -> u64 {
                (**self).step_cost_hint_ns()
            }
            fn substeps(&self) -> usize {
                (**self).substeps()
            }
            fn max_episode_steps(&self) -> Option<usize> {
                (**self).max_episode_steps()
            }
        }
    )*};
}

forward_env!(Box<E>, &mut E);
