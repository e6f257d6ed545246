//! [`Physics`]: one MuJoCo simulation (a shared model and this simulation's data), stepped the
//! way dm_control's `mujoco.Physics` steps it.

use std::path::Path;
use std::sync::Arc;

use dcem::{Error, Result};
use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase, MjtWarning};

/// The MuJoCo release this module is written and tested against (the PyPI `mujoco==3.17.0`
/// wheel that `scripts/setup_venv.sh` installs, the version `mujoco-rs` 7.0.0 binds).
pub const MUJOCO_VERSION: &str = "3.17.0";

/// The warnings after which dm_control calls the state invalid (`PhysicsError`): MuJoCo met a
/// NaN or huge position, velocity or acceleration and reset the simulation.
const DIVERGENCE: [MjtWarning; 3] = [
    MjtWarning::mjWARN_BADQPOS,
    MjtWarning::mjWARN_BADQVEL,
    MjtWarning::mjWARN_BADQACC,
];

/// Checks that the loaded libmujoco is the release this module was built for.
pub fn check_library_version() -> Result<()> {
    let found = mujoco_rs::mujoco_version();
    if found != MUJOCO_VERSION {
        return Err(Error::Config(format!(
            "libmujoco {found} was loaded, but dcem-envs needs MuJoCo {MUJOCO_VERSION}: run \
             scripts/setup_venv.sh (PyPI mujoco=={MUJOCO_VERSION}) and rebuild, or point \
             MUJOCO_DYNAMIC_LINK_DIR at a folder holding MuJoCo {MUJOCO_VERSION}'s libmujoco.so"
        )));
    }
    Ok(())
}

/// Loads and compiles a model file, with its `<include>`s resolved relative to it.
pub fn load_model(xml: &Path) -> Result<Arc<MjModel>> {
    check_library_version()?;
    if !xml.is_file() {
        return Err(Error::Io {
            path: xml.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "model file not found (is dm-control==1.0.50 installed in .venv? run \
                 scripts/setup_venv.sh, or set DCEM_DM_CONTROL_SUITE to the dm_control/suite \
                 folder)",
            ),
        });
    }
    MjModel::from_xml(xml)
        .map(Arc::new)
        .map_err(|e| Error::Config(format!("MuJoCo could not load {}: {e:?}", xml.display())))
}

/// A MuJoCo simulation in the manner of dm_control's `mujoco.Physics`: the model is shared
/// (cheap to clone, safe across threads), the data is this simulation's own.
///
/// [`Physics::step`] uses dm_control's step order (`mj_step2`, then `n - 1` times `mj_step`,
/// then `mj_step1`), so that after a step every position- and velocity-dependent quantity
/// (body frames, sensors) is up to date with the new state and the trajectory is the one
/// dm_control computes, bit for bit. A step after which MuJoCo reports a bad position,
/// velocity or acceleration (it resets the simulation when that happens) is an error, as it is
/// a `PhysicsError` in dm_control.
pub struct Physics {
    model: Arc<MjModel>,
    data: MjData<Arc<MjModel>>,
}

impl std::fmt::Debug for Physics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Physics")
            .field("nq", &self.nq())
            .field("nv", &self.nv())
            .field("nu", &self.nu())
            .field("time", &self.time())
            .finish()
    }
}

impl Physics {
    /// A fresh simulation of `model` (the state of `mj_makeData`).
    pub fn new(model: Arc<MjModel>) -> Self {
        Self {
            data: MjData::new(model.clone()),
            model,
        }
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<MjModel> {
        &self.model
    }

    /// Number of position coordinates.
    pub fn nq(&self) -> usize {
        self.model().ffi().nq as usize
    }

    /// Number of degrees of freedom (velocity coordinates).
    pub fn nv(&self) -> usize {
        self.model().ffi().nv as usize
    }

    /// Number of actuators.
    pub fn nu(&self) -> usize {
        self.model().ffi().nu as usize
    }

    /// The integration timestep of one `mj_step`.
    pub fn timestep(&self) -> f64 {
        self.model().opt().timestep
    }

    /// Simulation time.
    pub fn time(&self) -> f64 {
        self.data.time()
    }

    /// Sets the simulation time.
    pub fn set_time(&mut self, time: f64) {
        self.data.set_time(time);
    }

    /// Joint positions `qpos`.
    pub fn qpos(&self) -> &[f64] {
        self.data.qpos()
    }

    /// Mutable joint positions; call [`Physics::forward`] before reading derived quantities.
    pub fn qpos_mut(&mut self) -> &mut [f64] {
        self.data.qpos_mut()
    }

    /// Joint velocities `qvel`.
    pub fn qvel(&self) -> &[f64] {
        self.data.qvel()
    }

    /// The accelerations MuJoCo's constraint solver starts from on the next step.
    pub fn qacc_warmstart(&self) -> &[f64] {
        self.data.qacc_warmstart()
    }

    /// The controls of the next step.
    pub fn ctrl(&self) -> &[f64] {
        self.data.ctrl()
    }

    /// Sets the controls, as dm_control's `set_control`: MuJoCo clamps each to its actuator's
    /// `ctrlrange` when it uses it. `ctrl` must have one value per actuator and no NaN.
    pub fn set_control(&mut self, ctrl: &[f64]) -> Result<()> {
        if ctrl.len() != self.nu() {
            return Err(Error::InvalidAction(format!(
                "expected {} control value(s), got {}",
                self.nu(),
                ctrl.len()
            )));
        }
        if ctrl.iter().any(|v| v.is_nan()) {
            return Err(Error::InvalidAction(format!(
                "control {ctrl:?} contains NaN"
            )));
        }
        self.data.ctrl_mut().copy_from_slice(ctrl);
        Ok(())
    }

    /// Sets the full dynamic state (positions, velocities, solver warm start) and recomputes
    /// every derived quantity with [`Physics::forward`]. Lengths must match the model and every
    /// value must be finite.
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64], qacc_warmstart: &[f64]) -> Result<()> {
        let (nq, nv) = (self.nq(), self.nv());
        for (what, got, want) in [
            ("qpos", qpos.len(), nq),
            ("qvel", qvel.len(), nv),
            ("qacc_warmstart", qacc_warmstart.len(), nv),
        ] {
            if got != want {
                return Err(Error::shape(
                    "physics state",
                    format!("{what} of {want}"),
                    got,
                ));
            }
        }
        if qpos
            .iter()
            .chain(qvel)
            .chain(qacc_warmstart)
            .any(|v| !v.is_finite())
        {
            return Err(Error::NonFinite {
                what: "physics state",
                detail: "qpos, qvel and qacc_warmstart must be finite".into(),
            });
        }
        self.data.qpos_mut().copy_from_slice(qpos);
        self.data.qvel_mut().copy_from_slice(qvel);
        self.data
            .qacc_warmstart_mut()
            .copy_from_slice(qacc_warmstart);
        self.forward()
    }

    /// Resets to the model's default state (`mj_resetData`: reference pose, zero velocities,
    /// controls and time) and recomputes derived quantities, as dm_control's `reset_context`
    /// does on entry. Controls are zero, so no actuator acts during that `mj_forward`, as in
    /// dm_control (which disables actuation for it).
    pub fn reset(&mut self) -> Result<()> {
        self.data.reset();
        self.forward()
    }

    /// `mj_forward`: recomputes everything that depends on the state, without advancing time.
    pub fn forward(&mut self) -> Result<()> {
        self.guarded(|data| data.forward())
    }

    /// Advances `nstep` integration steps (at least 1) with the current controls, in
    /// dm_control's order; an error if the simulation diverges (the state is then MuJoCo's
    /// reset state: reset the episode).
    pub fn step(&mut self, nstep: usize) -> Result<()> {
        let nstep = nstep.max(1);
        self.guarded(|data| {
            data.step2();
            for _ in 1..nstep {
                data.step();
            }
            data.step1();
        })
    }

    fn guarded(&mut self, f: impl FnOnce(&mut MjData<Arc<MjModel>>)) -> Result<()> {
        let before = DIVERGENCE.map(|w| self.data.warning()[w as usize].number);
        f(&mut self.data);
        let warnings = self.data.warning();
        // Empty (no allocation) unless the step diverged.
        let new: Vec<&str> = DIVERGENCE
            .iter()
            .zip(before)
            .filter(|(w, before)| warnings[**w as usize].number > *before)
            .map(|(w, _)| match w {
                MjtWarning::mjWARN_BADQPOS => "mjWARN_BADQPOS",
                MjtWarning::mjWARN_BADQVEL => "mjWARN_BADQVEL",
                _ => "mjWARN_BADQACC",
            })
            .collect();
        if new.is_empty() {
            Ok(())
        } else {
            Err(Error::NonFinite {
                what: "MuJoCo physics",
                detail: format!(
                    "the simulation diverged ({}) at time {:.4}; MuJoCo reset its state. \
                     Reset the episode; if it keeps happening, check the controls and the \
                     model's timestep",
                    new.join(", "),
                    self.time()
                ),
            })
        }
    }

    /// The id of the body called `name`.
    pub fn body_id(&self, name: &str) -> Result<usize> {
        self.model()
            .name_to_id(MjtObjBase::mjOBJ_BODY, name)
            .ok_or_else(|| Error::Config(format!("the model has no body called `{name}`")))
    }

    /// The address in `sensordata` of the (first value of the) sensor called `name`.
    pub fn sensor_adr(&self, name: &str) -> Result<usize> {
        let id = self
            .model()
            .name_to_id(MjtObjBase::mjOBJ_SENSOR, name)
            .ok_or_else(|| Error::Config(format!("the model has no sensor called `{name}`")))?;
        Ok(self.model().sensor_adr()[id] as usize)
    }

    /// All sensor readings.
    pub fn sensordata(&self) -> &[f64] {
        self.data.sensordata()
    }

    /// Row-major orientation matrix of body `id` in the world frame.
    pub fn xmat(&self, id: usize) -> &[f64; 9] {
        &self.data.xmat()[id]
    }

    /// World position of body `id`'s frame.
    pub fn xpos(&self, id: usize) -> &[f64; 3] {
        &self.data.xpos()[id]
    }

    /// Number of bodies, the world body 0 included.
    pub fn nbody(&self) -> usize {
        self.model().ffi().nbody as usize
    }

    /// Per joint: `(limited, type is hinge, type is slide, range)`, in model order, with the
    /// joint's first `qpos` address.
    pub(crate) fn joints(&self) -> Vec<Joint> {
        use mujoco_rs::prelude::MjtJoint;
        let m = self.model();
        (0..m.ffi().njnt as usize)
            .map(|j| Joint {
                limited: m.jnt_limited()[j],
                kind: match m.jnt_type()[j] {
                    MjtJoint::mjJNT_HINGE => JointKind::Hinge,
                    MjtJoint::mjJNT_SLIDE => JointKind::Slide,
                    _ => JointKind::Other,
                },
                range: m.jnt_range()[j],
                qpos_adr: m.jnt_qposadr()[j] as usize,
            })
            .collect()
    }
}

/// What the reset distributions need to know of a joint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joint {
    pub limited: bool,
    pub kind: JointKind,
    pub range: [f64; 2],
    pub qpos_adr: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JointKind {
    Hinge,
    Slide,
    Other,
}
