//! Unit tests of the probabilistic ensemble.
use super::*;
use crate::nn::to_f64_vec;
use crate::optim::{Adam, AdamConfig};
use crate::replay::EpisodeRecord;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

fn small(members: usize) -> EnsembleConfig {
    EnsembleConfig {
        members,
        hidden: 8,
        layers: 2,
        ..Default::default()
    }
}

/// Member `m`'s network evaluated on the host in f64 from the stacked parameters.
fn member_forward(e: &Ensemble, m: usize, x: &[f64]) -> Vec<f64> {
    let mut h = x.to_vec();
    let last = e.weights.len() - 1;
    for (i, (w, b)) in e.weights.iter().zip(&e.biases).enumerate() {
        let [rows, out] = w.dims();
        let d_in = rows / e.config.members;
        let w = to_f64_vec(w.clone()).unwrap();
        let b = to_f64_vec(b.clone()).unwrap();
        let mut y: Vec<f64> = (0..out).map(|j| b[m * out + j]).collect();
        for (k, hk) in h.iter().enumerate() {
            for (j, yj) in y.iter_mut().enumerate() {
                *yj += hk * w[(m * d_in + k) * out + j];
            }
        }
        if i < last {
            y.iter_mut()
                .for_each(|v| *v = if *v > 0.0 { *v } else { v.exp() - 1.0 });
        }
        h = y;
    }
    h
}

#[test]
fn stacked_members_are_independent_networks() {
    let dev = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let e = Ensemble::new(small(3), 2, 1, &dev, &mut rng).unwrap();
    let xs = [0.3, -0.7, 0.5, 1.1, 0.2, -0.4];
    let x = tensor_from_f64(&xs, [1, 2, 3], &dev)
        .unwrap()
        .repeat_dim(0, 3);
    let out = to_f64_vec(e.forward(x)).unwrap();
    let d_out = 2 * (2 + 1);
    for m in 0..3 {
        for n in 0..2 {
            let want = member_forward(&e, m, &xs[n * 3..n * 3 + 3]);
            let got = &out[(m * 2 + n) * d_out..(m * 2 + n + 1) * d_out];
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "member {m} row {n}: {a} vs {b}");
            }
        }
    }
    // Different members, different functions.
    assert!((out[0] - out[2 * d_out]).abs() > 1e-6);
}

#[test]
fn rollout_cost_is_minus_the_member_mean_return() {
    let dev = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let e = Ensemble::new(small(4), 3, 2, &dev, &mut rng).unwrap();
    let states = tensor_from_f64(&[0.1, 0.2, 0.3, -0.5, 0.0, 0.4], [2, 3], &dev).unwrap();
    let acts: Vec<f64> = (0..2 * 5 * 2).map(|i| (i as f64 * 0.37).sin()).collect();
    let actions = tensor_from_f64(&acts, [2, 5, 2], &dev).unwrap();
    let r = e.rollout(states.clone(), actions.clone(), true).unwrap();
    let (rewards, visited) = e.imagine(states, actions, true).unwrap();
    assert_eq!(visited.unwrap().dims(), [2, 6, 3]);
    assert_eq!(r.states.unwrap().dims(), [2, 6, 3]);
    let rw = to_f64_vec(rewards).unwrap();
    let cost = to_f64_vec(r.cost).unwrap();
    for b in 0..2 {
        let sum: f64 = rw[b * 5..b * 5 + 5].iter().sum();
        assert!((cost[b] + sum).abs() < 1e-5, "{} vs {}", cost[b], -sum);
    }
}

/// The host rollout (what planning on the CPU runs) equals the tensor operations, for every
/// activation, with non-trivial normalisation, clamped actions and both halves of a split
/// batch.
#[test]
fn host_rollout_equals_the_tensor_ops() {
    let dev = Device::flex();
    for (k, activation) in [
        Activation::Elu,
        Activation::Relu,
        Activation::Softplus,
        Activation::Tanh,
    ]
    .into_iter()
    .enumerate()
    {
        let mut rng = ChaCha8Rng::seed_from_u64(10 + k as u64);
        let cfg = EnsembleConfig {
            members: 3,
            hidden: 16,
            layers: 3,
            activation,
            // Odd cases plan pessimistically: both paths subtract the same spread.
            disagreement_penalty: if k % 2 == 1 { 0.7 } else { 0.0 },
            ..Default::default()
        };
        let (od, ad, n, h) = (4, 2, 70, 5);
        let mut e = Ensemble::new(cfg, od, ad, &dev, &mut rng).unwrap();
        let row = |v: Vec<f64>| tensor_from_f64(&v, [1, v.len()], &dev).unwrap();
        let mut r = |lo: f64, hi: f64, len: usize| -> Vec<f64> {
            (0..len).map(|_| rng.random_range(lo..hi)).collect()
        };
        e.norm = [
            row(r(-1.0, 1.0, od + ad)),
            row(r(0.5, 2.0, od + ad)),
            row(r(-0.2, 0.2, od + 1)),
            row(r(0.1, 0.5, od + 1)),
        ];
        let states = tensor_from_f64(&r(-1.0, 1.0, n * od), [n, od], &dev).unwrap();
        let actions = tensor_from_f64(&r(-1.5, 1.5, n * h * ad), [n, h, ad], &dev).unwrap();
        let (rh, vh) = e.imagine_host(&states, &actions, true).unwrap();
        let (ro, vo) = e.imagine_tensor_ops(states, actions, true).unwrap();
        for (a, b) in [(rh, ro)] {
            let (a, b) = (to_f64_vec(a).unwrap(), to_f64_vec(b).unwrap());
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() < 1e-4 * (1.0 + y.abs()),
                    "{activation:?}: reward {x} vs {y}"
                );
            }
        }
        let (a, b) = (
            to_f64_vec(vh.unwrap()).unwrap(),
            to_f64_vec(vo.unwrap()).unwrap(),
        );
        assert_eq!(a.len(), n * (h + 1) * od);
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() < 1e-4 * (1.0 + y.abs()),
                "{activation:?}: state {x} vs {y}"
            );
        }
    }
}

#[test]
fn the_disagreement_penalty_subtracts_a_multiple_of_the_members_spread() {
    let dev = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (od, ad, n, h) = (3, 1, 9, 4);
    let e = Ensemble::new(EnsembleConfig::default(), od, ad, &dev, &mut rng).unwrap();
    let states = tensor_from_f64(&vec![0.3; n * od], [n, od], &dev).unwrap();
    let actions: Vec<f64> = (0..n * h * ad).map(|i| (i as f64 * 0.37).sin()).collect();
    let actions = tensor_from_f64(&actions, [n, h, ad], &dev).unwrap();
    let rewards = |kappa: f64, host: bool| -> Vec<f64> {
        let mut m = e.clone();
        m.config.disagreement_penalty = kappa;
        let r = if host {
            m.imagine_host(&states, &actions, false).unwrap().0
        } else {
            m.imagine_tensor_ops(states.clone(), actions.clone(), false)
                .unwrap()
                .0
        };
        to_f64_vec(r).unwrap()
    };
    for host in [true, false] {
        let (r0, r1, r2) = (rewards(0.0, host), rewards(1.0, host), rewards(2.0, host));
        for i in 0..n * h {
            let gap = r0[i] - r1[i];
            // Fresh members disagree: the spread is positive, and twice the penalty takes off
            // twice as much.
            assert!(gap > 1e-6, "host {host}: gap {gap} at {i}");
            assert!(
                ((r0[i] - r2[i]) - 2.0 * gap).abs() < 1e-4 * (1.0 + gap),
                "host {host}: {} vs {}",
                r0[i] - r2[i],
                2.0 * gap
            );
        }
    }
}

#[test]
fn bad_shapes_and_options_are_errors() {
    let dev = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let e = Ensemble::new(small(2), 3, 1, &dev, &mut rng).unwrap();
    let states = Tensor::<2>::zeros([2, 4], &dev);
    let actions = Tensor::<3>::zeros([2, 5, 1], &dev);
    assert!(e.rollout(states, actions, false).is_err());
    let bad = EnsembleConfig {
        min_logvar: 1.0,
        max_logvar: 0.0,
        ..small(2)
    };
    let msg = Ensemble::new(bad, 3, 1, &dev, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("min_logvar"), "{msg}");
    let zero = EnsembleConfig {
        members: 0,
        ..small(2)
    };
    assert!(Ensemble::new(zero, 3, 1, &dev, &mut rng).is_err());
    let negative = EnsembleConfig {
        disagreement_penalty: -1.0,
        ..small(2)
    };
    let msg = Ensemble::new(negative, 3, 1, &dev, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("disagreement_penalty"), "{msg}");
    let mut e2 = e.clone();
    assert!(e2.set_params(e.params()[1..].to_vec()).is_err());
}

/// Episodes of `x' = x + 0.5 a`, reward `-x^2`, from random starts and actions.
fn linear_buffer(rng: &mut ChaCha8Rng) -> ReplayBuffer {
    let mut buf = ReplayBuffer::new(1, 1);
    for _ in 0..20 {
        let mut ep = EpisodeRecord::default();
        let mut x: f64 = rng.random_range(-1.0..1.0);
        for _ in 0..20 {
            let a: f64 = rng.random_range(-1.0..1.0);
            ep.push(&[x], &[a], -x * x).unwrap();
            x += 0.5 * a;
        }
        buf.push(ep).unwrap();
    }
    buf
}

#[test]
fn normaliser_matches_the_buffer_moments() {
    let dev = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let buf = linear_buffer(&mut rng);
    let mut e = Ensemble::new(small(2), 1, 1, &dev, &mut rng).unwrap();
    e.fit_normaliser(&buf).unwrap();
    // The observation change is exactly 0.5 a, so its std is half the action's.
    let in_std = to_f64_vec(e.normaliser()[1].clone()).unwrap();
    let out_std = to_f64_vec(e.normaliser()[3].clone()).unwrap();
    assert!(
        (out_std[0] - 0.5 * in_std[1]).abs() < 1e-4,
        "{out_std:?} {in_std:?}"
    );
    assert!(e.fit_normaliser(&ReplayBuffer::new(1, 1)).is_err());
    assert!(e.fit_normaliser(&ReplayBuffer::new(2, 1)).is_err());
}

#[test]
fn learns_simple_dynamics_and_reward() {
    let dev = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let buf = linear_buffer(&mut rng);
    let cfg = EnsembleConfig {
        members: 3,
        hidden: 32,
        layers: 2,
        batch: 64,
        ..Default::default()
    };
    let mut e = Ensemble::new(cfg, 1, 1, &dev, &mut rng).unwrap();
    e.fit_normaliser(&buf).unwrap();
    let mut adam = Adam::new(
        AdamConfig {
            lr: 3e-3,
            ..Default::default()
        },
        e.params().len(),
    )
    .unwrap();
    let mut first = f64::NAN;
    let mut last = f64::NAN;
    for i in 0..400 {
        let batch = e.sample_batch(&buf, 64, &dev, &mut rng).unwrap();
        let tracked = e.clone().require_grad();
        let loss = tracked.loss(&batch).unwrap();
        let mse = to_f64_vec(loss.obs.clone() + loss.reward.clone()).unwrap()[0];
        if i == 0 {
            first = mse;
        }
        last = mse;
        let new =
            crate::train::gradient_step(loss.total, &tracked.params(), e.params(), &mut adam, 0.0)
                .unwrap();
        e.set_params(new).unwrap();
    }
    assert!(
        last < 0.05 * first,
        "normalised squared error {first} -> {last}"
    );
    // Three steps of +1 actions from x = -0.5: x goes -0.5, 0, 0.5; rewards -0.25, 0, -0.25.
    let plain = e.to_device(&Device::flex());
    let (r, v) = plain
        .imagine(
            tensor_from_f64(&[-0.5], [1, 1], &Device::flex()).unwrap(),
            tensor_from_f64(&[1.0, 1.0, 1.0], [1, 3, 1], &Device::flex()).unwrap(),
            true,
        )
        .unwrap();
    let r = to_f64_vec(r).unwrap();
    let v = to_f64_vec(v.unwrap()).unwrap();
    for (got, want) in r.iter().zip([-0.25, 0.0, -0.25]) {
        assert!((got - want).abs() < 0.08, "rewards {r:?}");
    }
    for (got, want) in v.iter().zip([-0.5, 0.0, 0.5, 1.0]) {
        assert!((got - want).abs() < 0.1, "states {v:?}");
    }
}

#[test]
fn planning_off_the_tape_equals_the_autodiff_path() {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let e = Ensemble::new(small(3), 2, 1, &plain, &mut rng).unwrap();
    let e_ad = e.to_device(&ad);
    let s: Vec<f64> = (0..8).map(|i| (i as f64 * 0.9).cos()).collect();
    let a: Vec<f64> = (0..4 * 6).map(|i| (i as f64 * 0.41).sin() * 1.3).collect();
    let costs = |m: &Ensemble, dev: &Device| {
        let states = tensor_from_f64(&s, [4, 2], dev).unwrap();
        let actions = tensor_from_f64(&a, [4, 6, 1], dev).unwrap();
        to_f64_vec(m.cost(states, actions).unwrap()).unwrap()
    };
    for (x, y) in costs(&e, &plain).iter().zip(costs(&e_ad, &ad)) {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
    }
}
