//! dm_control's cheetah domain (`suite/cheetah.py`) and its `run` task.

use std::ops::{Deref, DerefMut};

use dcem::Result;
use rand::RngExt;
use rand::rngs::ChaCha8Rng;

use super::{DomainPhysics, Physics, Sigmoid, Task, tolerance};

/// Speed above which the run reward is 1 (m/s).
const RUN_SPEED: f64 = 10.0;
/// Zero-control steps after the random pose, before the episode starts.
const SETTLE_STEPS: usize = 200;

/// The cheetah's physics: a [`Physics`] of `cheetah.xml` with its named getters.
#[derive(Debug)]
pub struct CheetahPhysics {
    physics: Physics,
    subtreelinvel: usize,
}

impl CheetahPhysics {
    /// Forward speed: x of the torso's subtree linear velocity sensor (`torso_subtreelinvel`).
    pub fn speed(&self) -> f64 {
        self.physics.sensordata()[self.subtreelinvel]
    }
}

impl Deref for CheetahPhysics {
    type Target = Physics;
    fn deref(&self) -> &Physics {
        &self.physics
    }
}

impl DerefMut for CheetahPhysics {
    fn deref_mut(&mut self) -> &mut Physics {
        &mut self.physics
    }
}

impl DomainPhysics for CheetahPhysics {
    const XML: &'static str = "cheetah.xml";
    fn wrap(physics: Physics) -> Result<Self> {
        let subtreelinvel = physics.sensor_adr("torso_subtreelinvel")?;
        Ok(Self {
            physics,
            subtreelinvel,
        })
    }
}

/// The `run` task: reward `tolerance(speed, (10, inf), margin 10, linear, 0)`, i.e.
/// `clamp(speed / 10, 0, 1)`. Reset: every limited joint uniform in its range, then 200 steps
/// with zero control, then time 0.
#[derive(Debug, Default, Clone, Copy)]
pub struct Run;

impl Task for Run {
    type Physics = CheetahPhysics;
    const NAME: &'static str = "cheetah.run";
    const N_SUB_STEPS: usize = 1;
    const OBS_DIM: usize = 17;

    fn randomize(&self, physics: &mut CheetahPhysics, rng: &mut ChaCha8Rng) {
        for joint in physics.joints() {
            if joint.limited {
                let [lo, hi] = joint.range;
                physics.qpos_mut()[joint.qpos_adr] = uniform(rng, lo, hi);
            }
        }
    }

    fn settle(&self, physics: &mut CheetahPhysics) -> Result<()> {
        physics.step(SETTLE_STEPS)?;
        physics.set_time(0.0);
        Ok(())
    }

    fn observation(&self, physics: &CheetahPhysics, out: &mut Vec<f64>) {
        out.extend_from_slice(&physics.qpos()[1..]);
        out.extend_from_slice(physics.qvel());
    }

    fn reward(&self, physics: &CheetahPhysics) -> f64 {
        tolerance(
            physics.speed(),
            (RUN_SPEED, f64::INFINITY),
            RUN_SPEED,
            Sigmoid::Linear,
            0.0,
        )
    }
}

/// numpy's `uniform(lo, hi)`: a value in [lo, hi) (lo itself when the range is empty).
pub(super) fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    if lo < hi {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}
