//! Model and Planner traits with the full-space CEM planner on a toy model.

use burn::tensor::{Device, Tensor, s};
use dcem::model::{Model, Rollout};
use dcem::planner::{Planner, shift_plan};
use dcem::planning::{CemPlanner, CemPlannerConfig};
use dcem::{Error, Result};

/// A 1-D point mass: state (position, velocity), action = force in [-1, 1], dt = 0.1.
/// Cost = sum over steps of position^2 + 0.01 force^2 (states before each action).
struct PointMass;

impl Model for PointMass {
    fn state_dim(&self) -> usize {
        2
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn rollout(&self, states: Tensor<2>, actions: Tensor<3>, keep_states: bool) -> Result<Rollout> {
        let [b, sd] = states.dims();
        let [ba, h, a] = actions.dims();
        if sd != 2 || a != 1 || ba != b {
            return Err(Error::shape(
                "PointMass::rollout",
                "[B, 2] and [B, H, 1]",
                (states.dims(), actions.dims()),
            ));
        }
        let mut pos = states.clone().slice(s![.., 0..1]);
        let mut vel = states.slice(s![.., 1..2]);
        let mut cost = Tensor::<2>::zeros([b, 1], &pos.device());
        let mut visited = vec![Tensor::cat(vec![pos.clone(), vel.clone()], 1)];
        for t in 0..h {
            let u = actions.clone().slice(s![.., t..t + 1, ..]).reshape([b, 1]);
            cost = cost + pos.clone().square() + u.clone().square().mul_scalar(0.01);
            pos = pos + vel.clone().mul_scalar(0.1);
            vel = vel + u.mul_scalar(0.1);
            if keep_states {
                visited.push(Tensor::cat(vec![pos.clone(), vel.clone()], 1));
            }
        }
        let states = keep_states.then(|| Tensor::stack(visited, 1));
        Ok(Rollout {
            cost: cost.reshape([b]),
            states,
        })
    }
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 data")
}

fn small_config() -> CemPlannerConfig {
    let mut cfg = CemPlannerConfig {
        horizon: 10,
        ..Default::default()
    };
    cfg.cem.n_sample = 200;
    cfg.cem.n_elite = 20;
    cfg
}

#[test]
fn planner_pushes_the_mass_towards_the_origin() {
    let device = Device::flex();
    let mut planner = CemPlanner::new(small_config()).unwrap();
    let states = Tensor::<2>::from_floats([[1.0, 0.0], [-1.0, 0.0]], &device);
    let plan = planner.plan(&PointMass, states.clone()).unwrap();
    assert_eq!(plan.actions.dims(), [2, 10, 1]);
    let first = to_vec(plan.first_action());
    assert!(first[0] < -0.5 && first[1] > 0.5, "first actions {first:?}");
    // The plan beats doing nothing.
    let idle = to_vec(
        PointMass
            .cost(states, Tensor::zeros([2, 10, 1], &device))
            .unwrap(),
    );
    for (p, i) in plan.diagnostics.cost.iter().zip(&idle) {
        assert!(*p < *i as f64, "plan cost {p} vs idle {i}");
    }
    assert!(
        to_vec(plan.actions)
            .iter()
            .all(|v| (-1.0..=1.0).contains(v))
    );
}

#[test]
fn rollout_keeps_states_when_asked() {
    let device = Device::flex();
    let r = PointMass
        .rollout(
            Tensor::<2>::from_floats([[1.0, 2.0]], &device),
            Tensor::zeros([1, 3, 1], &device),
            true,
        )
        .unwrap();
    let states = r.states.unwrap();
    assert_eq!(states.dims(), [1, 4, 2]);
    let last = to_vec(states.slice(s![.., 3..4, ..]));
    assert!(
        (last[0] - 1.6).abs() < 1e-6 && (last[1] - 2.0).abs() < 1e-6,
        "{last:?}"
    );
}

#[test]
fn warm_start_shifts_the_previous_plan() {
    let device = Device::flex();
    let plan = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device).reshape([1, 4, 1]);
    assert_eq!(to_vec(shift_plan(plan, 0.0)), vec![2.0, 3.0, 4.0, 0.0]);
    // Same seed, same plans; reset forgets the warm start.
    let states = Tensor::<2>::from_floats([[0.5, -0.2]], &device);
    let mut a = CemPlanner::new(small_config()).unwrap();
    let mut b = CemPlanner::new(small_config()).unwrap();
    let pa = to_vec(a.plan(&PointMass, states.clone()).unwrap().actions);
    let pb = to_vec(b.plan(&PointMass, states.clone()).unwrap().actions);
    assert_eq!(pa, pb);
    let warm = to_vec(a.plan(&PointMass, states.clone()).unwrap().actions);
    b.reset();
    let cold = to_vec(b.plan(&PointMass, states).unwrap().actions);
    assert_ne!(warm, cold);
}

#[test]
fn bad_states_and_configs_are_errors() {
    let device = Device::flex();
    let mut planner = CemPlanner::new(small_config()).unwrap();
    let err = planner
        .plan(&PointMass, Tensor::zeros([1, 3], &device))
        .unwrap_err()
        .to_string();
    assert!(err.contains("CemPlanner::plan states"), "{err}");
    for (field, cfg) in [
        (
            "horizon",
            CemPlannerConfig {
                horizon: 0,
                ..Default::default()
            },
        ),
        (
            "action_high",
            CemPlannerConfig {
                action_low: 1.0,
                action_high: 1.0,
                ..Default::default()
            },
        ),
        ("cem.lb", {
            let mut c = CemPlannerConfig::default();
            c.cem.ub = Some(1.0);
            c
        }),
        ("n_elite", {
            let mut c = CemPlannerConfig::default();
            c.cem.n_elite = 2000;
            c
        }),
    ] {
        let err = CemPlanner::new(cfg).unwrap_err().to_string();
        assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
    }
}

#[test]
fn dcem_planning_is_differentiable_through_the_start_state() {
    let device = Device::flex().autodiff();
    let mut cfg = small_config();
    cfg.cem.tau = 1.0;
    cfg.cem.n_sample = 100;
    cfg.cem.n_elite = 10;
    let mut planner = CemPlanner::new(cfg).unwrap();
    let states = Tensor::<2>::from_floats([[0.7, 0.1]], &device).require_grad();
    let plan = planner.plan(&PointMass, states.clone()).unwrap();
    let grads = plan.first_action().sum().backward();
    let g = to_vec(states.grad(&grads).unwrap());
    assert!(
        g.iter().all(|v| v.is_finite()) && g.iter().any(|v| v.abs() > 1e-6),
        "{g:?}"
    );
}
