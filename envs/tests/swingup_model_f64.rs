//! The batched differentiable swing-up against the native env, and its gradients against finite
//! differences, in f64 (this binary switches the CPU device to f64 before any tensor exists).

use std::sync::Once;

use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};
use dcem::env::Env;
use dcem::model::Model;
use dcem_envs::{CartpoleSwingup, SwingupConfig, SwingupModel};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

fn device() -> Device {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let mut d = Device::flex();
        d.configure(FloatDType::F64)
            .expect("configure f64 before any tensor exists");
    });
    let d = Device::flex();
    assert_eq!(Tensor::<1>::zeros([1], &d).dtype(), DType::F64);
    d
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_into_vec::<f64>().expect("f64 data")
}

#[test]
fn model_equals_the_native_env_step_for_step() {
    let device = device();
    let (b, h) = (4, 100);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut starts = Vec::new();
    let mut actions = Vec::new();
    let mut native_states = Vec::new();
    let mut native_cost = Vec::new();
    for i in 0..b {
        let mut env = CartpoleSwingup::new(SwingupConfig { episode_steps: h }).unwrap();
        let obs = env.reset(Some(i as u64)).unwrap();
        starts.extend_from_slice(&obs);
        let mut states = vec![obs];
        let mut total = 0.0;
        for _ in 0..h {
            // Some actions outside [-1, 1]: both sides clip them.
            let a: f64 = rng.random_range(-1.2..1.2);
            actions.push(a);
            let s = env.step(&[a]).unwrap();
            total += s.reward;
            states.push(s.obs);
        }
        native_states.push(states);
        native_cost.push(-total);
    }
    let st = Tensor::<2>::from_data(TensorData::new(starts, [b, 5]), &device);
    let at = Tensor::<3>::from_data(TensorData::new(actions, [b, h, 1]), &device);
    let rollout = SwingupModel.rollout(st, at, true).unwrap();
    let cost = to_vec(rollout.cost);
    let states = to_vec(rollout.states.unwrap());
    let mut worst = 0.0f64;
    for i in 0..b {
        assert!(
            (cost[i] - native_cost[i]).abs() <= 1e-9 * native_cost[i].abs().max(1.0),
            "cost {} vs {}",
            cost[i],
            native_cost[i]
        );
        for t in 0..=h {
            for k in 0..5 {
                let m = states[(i * (h + 1) + t) * 5 + k];
                let n = native_states[i][t][k];
                worst = worst.max((m - n).abs() / n.abs().max(1.0));
            }
        }
    }
    assert!(
        worst <= 1e-10,
        "largest relative state difference over 100 steps: {worst:e}"
    );
}

#[test]
fn model_gradients_match_finite_differences() {
    let device = device().autodiff();
    let plain = device.clone().without_autodiff();
    let (b, h) = (2, 15);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let starts: Vec<f64> = (0..b)
        .flat_map(|_| {
            let th: f64 = rng.random_range(-3.0..3.0);
            vec![
                rng.random_range(-0.5..0.5),
                rng.random_range(-0.5..0.5),
                th.cos(),
                th.sin(),
                rng.random_range(-1.0..1.0),
            ]
        })
        .collect();
    // Actions inside (-1, 1), away from the clamp where the gradient has a kink.
    let actions: Vec<f64> = (0..b * h).map(|_| rng.random_range(-0.9..0.9)).collect();
    let cost = |s: &[f64], a: &[f64], dev: &Device| {
        let st = Tensor::<2>::from_data(TensorData::new(s.to_vec(), [b, 5]), dev);
        let at = Tensor::<3>::from_data(TensorData::new(a.to_vec(), [b, h, 1]), dev);
        (st, at)
    };
    let (st, at) = cost(&starts, &actions, &device);
    let (st, at) = (st.require_grad(), at.require_grad());
    let total = SwingupModel.cost(st.clone(), at.clone()).unwrap().sum();
    let grads = total.backward();
    let g_actions = to_vec(at.grad(&grads).unwrap());
    let g_states = to_vec(st.grad(&grads).unwrap());
    // The same through the tensor-op rollout (the path on other devices).
    let ops_grads = SwingupModel
        .rollout_ops(st.clone(), at.clone(), false)
        .unwrap()
        .cost
        .sum()
        .backward();
    let ops_actions = to_vec(at.grad(&ops_grads).unwrap());
    let ops_states = to_vec(st.grad(&ops_grads).unwrap());
    let f = |s: &[f64], a: &[f64]| {
        let (st, at) = cost(s, a, &plain);
        to_vec(SwingupModel.cost(st, at).unwrap())
            .iter()
            .sum::<f64>()
    };
    let h_fd = 1e-6;
    let fd = |which: usize, i: usize| {
        let (mut s1, mut a1) = (starts.clone(), actions.clone());
        let (mut s2, mut a2) = (starts.clone(), actions.clone());
        if which == 0 {
            s1[i] += h_fd;
            s2[i] -= h_fd;
        } else {
            a1[i] += h_fd;
            a2[i] -= h_fd;
        }
        (f(&s1, &a1) - f(&s2, &a2)) / (2.0 * h_fd)
    };
    let fd_a: Vec<f64> = (0..actions.len()).map(|i| fd(1, i)).collect();
    let fd_s: Vec<f64> = (0..starts.len()).map(|i| fd(0, i)).collect();
    let rel = |a: &[f64], b: &[f64]| {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
            / scale
    };
    let (ea, es) = (rel(&g_actions, &fd_a), rel(&g_states, &fd_s));
    eprintln!("swing-up model: relative error d/d actions {ea:.2e}, d/d start states {es:.2e}");
    let (oa, os) = (rel(&ops_actions, &fd_a), rel(&ops_states, &fd_s));
    eprintln!("tensor-op rollout: relative error d/d actions {oa:.2e}, d/d start states {os:.2e}");
    assert!(
        oa <= 1e-6 && os <= 1e-6,
        "tensor ops: actions {oa:e}, states {os:e}"
    );
    assert!(ea <= 1e-6 && es <= 1e-6, "actions {ea:e}, states {es:e}");
}

#[test]
fn wrong_shapes_are_errors() {
    let device = device();
    let err = SwingupModel
        .rollout(
            Tensor::zeros([2, 4], &device),
            Tensor::zeros([2, 3, 1], &device),
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("SwingupModel::rollout"), "{err}");
    assert!(
        SwingupModel
            .rollout(
                Tensor::zeros([2, 5], &device),
                Tensor::zeros([3, 3, 1], &device),
                false
            )
            .is_err()
    );
}

#[test]
fn fused_and_tensor_rollouts_agree_in_value_and_gradient() {
    // `Model::cost` on the CPU takes the fused host rollout (checked against finite differences
    // above); `rollout_ops` is the tensor-op path other devices use.
    let device = device().autodiff();
    let (b, h) = (6, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let starts: Vec<f64> = (0..b)
        .flat_map(|_| {
            let th: f64 = rng.random_range(-3.1..3.1);
            vec![
                rng.random_range(-0.5..0.5),
                rng.random_range(-0.5..0.5),
                th.cos(),
                th.sin(),
                rng.random_range(-1.0..1.0),
            ]
        })
        .collect();
    let actions: Vec<f64> = (0..b * h).map(|_| rng.random_range(-0.95..0.95)).collect();
    let run = |fused: bool| {
        let st =
            Tensor::<2>::from_data(TensorData::new(starts.clone(), [b, 5]), &device).require_grad();
        let at = Tensor::<3>::from_data(TensorData::new(actions.clone(), [b, h, 1]), &device)
            .require_grad();
        let cost = if fused {
            SwingupModel.cost(st.clone(), at.clone()).unwrap()
        } else {
            SwingupModel
                .rollout_ops(st.clone(), at.clone(), false)
                .unwrap()
                .cost
        };
        // A non-uniform weighting so that every row's gradient is checked separately.
        let w: Vec<f64> = (0..b).map(|i| 1.0 + i as f64).collect();
        let wt = Tensor::<1>::from_data(TensorData::new(w, [b]), &device);
        let grads = (cost.clone() * wt).sum().backward();
        (
            to_vec(cost),
            to_vec(at.grad(&grads).unwrap()),
            to_vec(st.grad(&grads).unwrap()),
        )
    };
    let (c1, ga1, gs1) = run(true);
    let (c2, ga2, gs2) = run(false);
    let close = |x: &[f64], y: &[f64], what: &str, tol: f64| {
        let scale = y.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        let err = x
            .iter()
            .zip(y)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
            / scale;
        assert!(err <= tol, "{what}: relative difference {err:e}");
    };
    // Values agree to rounding; the tensor path's gradients are within a few 1e-8 of finite
    // differences (burn's backward of the scalar ops), the fused path's within 1e-9.
    close(&c1, &c2, "cost", 1e-10);
    close(&ga1, &ga2, "d cost / d actions", 1e-7);
    close(&gs1, &gs2, "d cost / d start states", 1e-7);
}
