//! dm_control's walker domain (`suite/walker.py`) and its `walk` task.

use std::ops::{Deref, DerefMut};

use dcem::Result;
use rand::rngs::ChaCha8Rng;

use super::cheetah::uniform;
use super::physics::JointKind;
use super::{DomainPhysics, Physics, Sigmoid, Task, tolerance};

/// Torso height above which the stand reward is 1 (m).
const STAND_HEIGHT: f64 = 1.2;
/// Horizontal speed above which the move reward is 1 (m/s).
const WALK_SPEED: f64 = 1.0;

/// The walker's physics: a [`Physics`] of `walker.xml` with its named getters.
#[derive(Debug)]
pub struct WalkerPhysics {
    physics: Physics,
    torso: usize,
    subtreelinvel: usize,
}

impl WalkerPhysics {
    /// The z-z entry of the torso's orientation: 1 when upright, -1 upside down.
    pub fn torso_upright(&self) -> f64 {
        self.physics.xmat(self.torso)[8]
    }

    /// Height of the torso's frame.
    pub fn torso_height(&self) -> f64 {
        self.physics.xpos(self.torso)[2]
    }

    /// Horizontal velocity of the centre of mass (x of `torso_subtreelinvel`).
    pub fn horizontal_velocity(&self) -> f64 {
        self.physics.sensordata()[self.subtreelinvel]
    }

    /// Appends the planar orientations of all bodies but the world: `xx` and `xz` of each
    /// body's orientation matrix (14 values).
    pub fn orientations(&self, out: &mut Vec<f64>) {
        for body in 1..self.physics.nbody() {
            let m = self.physics.xmat(body);
            out.extend_from_slice(&[m[0], m[2]]);
        }
    }
}

impl Deref for WalkerPhysics {
    type Target = Physics;
    fn deref(&self) -> &Physics {
        &self.physics
    }
}

impl DerefMut for WalkerPhysics {
    fn deref_mut(&mut self) -> &mut Physics {
        &mut self.physics
    }
}

impl DomainPhysics for WalkerPhysics {
    const XML: &'static str = "walker.xml";
    fn wrap(physics: Physics) -> Result<Self> {
        let torso = physics.body_id("torso")?;
        let subtreelinvel = physics.sensor_adr("torso_subtreelinvel")?;
        Ok(Self {
            physics,
            torso,
            subtreelinvel,
        })
    }
}

/// The `walk` task: `stand = (3 standing + (1 + upright) / 2) / 4` with `standing` the
/// Gaussian tolerance of the torso height over (1.2, inf), margin 0.6; `move` the linear
/// tolerance of the horizontal velocity over (1, inf), margin 0.5, value 0.5 at the margin;
/// reward `stand (5 move + 1) / 6`. Reset (dm_control's
/// `randomize_limited_and_rotational_joints`): limited joints uniform in range, the unlimited
/// hinge (`rooty`) uniform in [-pi, pi), the slides where they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct Walk;

impl Task for Walk {
    type Physics = WalkerPhysics;
    const NAME: &'static str = "walker.walk";
    const N_SUB_STEPS: usize = 10;
    const OBS_DIM: usize = 24;

    fn randomize(&self, physics: &mut WalkerPhysics, rng: &mut ChaCha8Rng) {
        for joint in physics.joints() {
            let value = match (joint.limited, joint.kind) {
                (true, JointKind::Hinge | JointKind::Slide) => {
                    uniform(rng, joint.range[0], joint.range[1])
                }
                (false, JointKind::Hinge) => {
                    uniform(rng, -std::f64::consts::PI, std::f64::consts::PI)
                }
                _ => continue,
            };
            physics.qpos_mut()[joint.qpos_adr] = value;
        }
    }

    fn observation(&self, physics: &WalkerPhysics, out: &mut Vec<f64>) {
        physics.orientations(out);
        out.push(physics.torso_height());
        out.extend_from_slice(physics.qvel());
    }

    fn reward(&self, physics: &WalkerPhysics) -> f64 {
        let standing = tolerance(
            physics.torso_height(),
            (STAND_HEIGHT, f64::INFINITY),
            STAND_HEIGHT / 2.0,
            Sigmoid::Gaussian,
            0.1,
        );
        let upright = (1.0 + physics.torso_upright()) / 2.0;
        let stand_reward = (3.0 * standing + upright) / 4.0;
        let move_reward = tolerance(
            physics.horizontal_velocity(),
            (WALK_SPEED, f64::INFINITY),
            WALK_SPEED / 2.0,
            Sigmoid::Linear,
            0.5,
        );
        stand_reward * (5.0 * move_reward + 1.0) / 6.0
    }
}
