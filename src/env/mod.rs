//! Environments: the [`Env`] trait and [`Step`] (`environment`), the [`Space`]s (`space`), the
//! wrappers [`TimeLimit`], [`ActionRepeat`], [`RescaleAction`] and [`RecordEpisodes`]
//! (`wrappers`), and a rayon-parallel [`VecEnv`] (`vec_env`).
//!
//! The API mirrors Gymnasium 1.x so that Python bindings stay thin: `reset(seed)` returns the
//! first observation, `step(action)` returns observation, reward, `terminated` (the task ended,
//! e.g. the pole fell) and `truncated` (the episode was cut, e.g. by a time limit).
//! Observations and actions are flat `f64` vectors; their [`Space`]s give shape and bounds.

mod environment;
mod space;
mod vec_env;
mod wrappers;

pub use environment::{Env, Step};
pub use space::{BoxSpace, Space};
pub use vec_env::{Autoreset, VecEnv, VecEnvState, VecStep};
pub use wrappers::{ActionRepeat, RecordEpisodes, RecordedEpisode, RescaleAction, TimeLimit};
