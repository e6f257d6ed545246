//! An environment the framework does not ship, added from outside: Gymnasium's
//! `MountainCarContinuous-v0` as a [`dcem::env::Env`], its dynamics as a batched
//! [`dcem::model::Model`] for planning, and the registration that lets a config name it
//! (`[env] kind = "mountain_car_continuous"`) so that the project's agents train on it.
//!
//! The dynamics are Gymnasium 1.x's (`gymnasium/envs/classic_control/continuous_mountain_car.py`):
//! position in `[-1.2, 0.6]`, velocity in `[-0.07, 0.07]`, force `clip(a, -1, 1)` times power
//! 0.0015 against gravity `0.0025 cos(3 x)`; the episode ends at the goal (`x >= 0.45` with
//! `v >= 0`, reward +100) and every step costs `0.1 a^2`; starts at `x ~ U(-0.6, -0.4)`, `v =
//! 0`; 999 steps per episode.

use burn::tensor::{Device, Tensor, s};
use dcem::agent::MpcAgent;
use dcem::env::{BoxSpace, Env, Space, Step, TimeLimit};
use dcem::model::{Model, Rollout};
use dcem::planning::{CemPlanner, CemPlannerConfig};
use dcem::run::{Existing, RunOptions};
use dcem::runner::{eval_seeds, evaluate};
use planet_dcem::{PlanetConfig, RunSummary};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// The kind a config names this environment by.
pub const KIND: &str = "mountain_car_continuous";
/// Gymnasium's step limit of `MountainCarContinuous-v0`.
pub const MAX_EPISODE_STEPS: usize = 999;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.45;
const GOAL_VELOCITY: f64 = 0.0;
const POWER: f64 = 0.0015;
const GRAVITY: f64 = 0.0025;

/// One step of the dynamics: `(position, velocity)` after applying `force` (already clipped).
pub fn dynamics(position: f64, velocity: f64, force: f64) -> (f64, f64) {
    let mut v =
        (velocity + force * POWER - GRAVITY * (3.0 * position).cos()).clamp(-MAX_SPEED, MAX_SPEED);
    let x = (position + v).clamp(MIN_POSITION, MAX_POSITION);
    if x == MIN_POSITION && v < 0.0 {
        v = 0.0;
    }
    (x, v)
}

/// `MountainCarContinuous-v0` without its time limit ([`mountain_car`] adds it).
pub struct MountainCar {
    state: [f64; 2],
    rng: ChaCha8Rng,
    obs: Space,
    act: Space,
}

impl MountainCar {
    /// A car at rest at the bottom of the valley until the first reset.
    pub fn new() -> dcem::Result<Self> {
        let obs = BoxSpace::new(
            vec![MIN_POSITION, -MAX_SPEED],
            vec![MAX_POSITION, MAX_SPEED],
            vec![2],
        )?;
        Ok(Self {
            state: [-0.5, 0.0],
            rng: ChaCha8Rng::seed_from_u64(0),
            obs: Space::Box(obs),
            act: Space::Box(BoxSpace::uniform(1, -1.0, 1.0)?),
        })
    }
}

// ANCHOR: env
impl Env for MountainCar {
    fn observation_space(&self) -> &Space {
        &self.obs
    }

    fn action_space(&self) -> &Space {
        &self.act
    }

    fn reset(&mut self, seed: Option<u64>) -> dcem::Result<Vec<f64>> {
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
        self.state = [self.rng.random_range(-0.6..-0.4), 0.0];
        Ok(self.state.to_vec())
    }

    fn step(&mut self, action: &[f64]) -> dcem::Result<Step> {
        let [a] = action else {
            return Err(dcem::Error::InvalidAction(format!(
                "mountain car: expected 1 value, got {}",
                action.len()
            )));
        };
        if a.is_nan() {
            return Err(dcem::Error::InvalidAction(
                "mountain car: the action is NaN".into(),
            ));
        }
        let (x, v) = dynamics(self.state[0], self.state[1], a.clamp(-1.0, 1.0));
        self.state = [x, v];
        let terminated = x >= GOAL_POSITION && v >= GOAL_VELOCITY;
        let reward = if terminated { 100.0 } else { 0.0 } - 0.1 * a * a;
        Ok(Step {
            obs: self.state.to_vec(),
            reward,
            terminated,
            truncated: false,
        })
    }
}
// ANCHOR_END: env

// ANCHOR: time_limit
/// The environment as Gymnasium registers it: [`MountainCar`] with its 999-step limit.
pub fn mountain_car() -> dcem::Result<TimeLimit<MountainCar>> {
    TimeLimit::new(MountainCar::new()?, MAX_EPISODE_STEPS)
}
// ANCHOR_END: time_limit

// ANCHOR: register
/// Registers [`KIND`] with the environments crate, so that a config's `[env] kind =
/// "mountain_car_continuous"` builds it (no options); call it before loading such a config.
pub fn register() -> dcem::Result<()> {
    dcem_envs::register_env(KIND, |options| {
        if let Some(key) = options.keys().next() {
            return Err(dcem::Error::Config(format!(
                "env kind {KIND:?} takes no options, got `{key}`"
            )));
        }
        Ok(Box::new(mountain_car()?))
    })
}
// ANCHOR_END: register

/// The same dynamics on batches of tensors, for planning. A plan's cost is minus a shaped
/// return: the car's mechanical energy at every step (so that a short horizon still rewards
/// swinging up the far side of the valley), the goal bonus for every step at the goal, and the
/// action penalty.
pub struct MountainCarModel;

// ANCHOR: model
impl Model for MountainCarModel {
    fn state_dim(&self) -> usize {
        2
    }

    fn action_dim(&self) -> usize {
        1
    }

    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep: bool) -> dcem::Result<Rollout> {
        let [b, h, a] = actions.dims();
        let [bs, sd] = states.dims();
        if a != 1 || sd != 2 || bs != b {
            return Err(dcem::Error::Shape {
                what: "mountain car model: states and actions",
                expected: "[B, 2] and [B, H, 1]".into(),
                got: format!("[{bs}, {sd}] and [{b}, {h}, {a}]"),
            });
        }
        let mut x = states.clone().slice(s![.., 0..1]);
        let mut v = states.slice(s![.., 1..2]);
        let mut cost = x.zeros_like();
        let mut visited = keep.then(|| vec![Tensor::cat(vec![x.clone(), v.clone()], 1)]);
        for t in 0..h {
            let u = actions.clone().slice(s![.., t..t + 1, ..]).reshape([b, 1]);
            let force = u.clone().clamp(-1.0, 1.0);
            v = (v + force.mul_scalar(POWER) - x.clone().mul_scalar(3.0).cos().mul_scalar(GRAVITY))
                .clamp(-MAX_SPEED, MAX_SPEED);
            x = (x + v.clone()).clamp(MIN_POSITION, MAX_POSITION);
            // At the left wall the car stops (Gymnasium zeroes a negative velocity there).
            let at_wall = x.clone().lower_equal_elem(MIN_POSITION).float();
            v = v.clone() - (v.clone().clamp(-MAX_SPEED, 0.0) * at_wall);
            let energy = v.clone().square().mul_scalar(0.5)
                + x.clone().mul_scalar(3.0).sin().mul_scalar(GRAVITY / 3.0);
            let at_goal = x.clone().greater_equal_elem(GOAL_POSITION).float();
            cost = cost - energy.mul_scalar(1e3) - at_goal.mul_scalar(100.0)
                + u.square().mul_scalar(0.1);
            if let Some(states) = visited.as_mut() {
                states.push(Tensor::cat(vec![x.clone(), v.clone()], 1));
            }
        }
        Ok(Rollout {
            cost: cost.reshape([b]),
            states: visited.map(|s| Tensor::stack(s, 1)),
        })
    }
}
// ANCHOR_END: model

// ANCHOR: mpc
/// Full-space CEM on [`MountainCarModel`] as an agent (horizon 40, the planner's defaults
/// otherwise): the returns of `episodes` evaluation episodes.
pub fn mpc_returns(episodes: usize) -> dcem::Result<Vec<f64>> {
    let planner = CemPlanner::new(CemPlannerConfig {
        horizon: 40,
        ..CemPlannerConfig::default()
    })?;
    let mut agent = MpcAgent::new(
        Box::new(MountainCarModel),
        Box::new(planner),
        Device::flex(),
    );
    evaluate(&mut agent, &mut mountain_car()?, &eval_seeds(episodes))
}
// ANCHOR_END: mpc

/// The example's planet config (`configs/planet_mountain_car.toml`).
pub fn planet_config() -> anyhow::Result<PlanetConfig> {
    register()?;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/planet_mountain_car.toml"
    );
    PlanetConfig::load(std::path::Path::new(path))
}

// ANCHOR: train
/// Trains the planet agent of `config` on the registered environment through its public entry
/// point, writing `<runs_dir>/<config.name>/` as the `planet_dcem` binary does (an existing
/// run folder is refused, resumed or overwritten as `existing` says).
pub fn train_planet(
    config: &PlanetConfig,
    runs_dir: &std::path::Path,
    existing: Existing,
) -> anyhow::Result<RunSummary> {
    register()?;
    let opts = RunOptions {
        runs_dir: runs_dir.to_path_buf(),
        existing,
        ..RunOptions::default()
    };
    planet_dcem::train(config, &opts, &Device::flex().autodiff())
}
// ANCHOR_END: train
