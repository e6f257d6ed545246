//! Unit tests of the RSSM.
use super::*;
use rand::SeedableRng;

#[test]
fn host_gating_equals_the_tensor_ops() {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    // The autodiff device takes the tensor-op path (the host path has no gradient).
    assert!(ad.is_autodiff() && !plain.is_autodiff());
    let cfg = RssmConfig {
        deter: 16,
        stoch: 4,
        hidden: 12,
        ..Default::default()
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(0);
    let m = Rssm::new(cfg, 3, 2, &plain, &mut rng).unwrap();
    let mut m_ad = m.clone();
    m_ad.set_params(
        m.params()
            .into_iter()
            .map(|p| Tensor::from_data(p.into_data(), &ad))
            .collect(),
    )
    .unwrap();
    let states = normal_noise(9, 20, &plain, &mut rng).unwrap();
    let actions = normal_noise(9, 10, &plain, &mut rng)
        .unwrap()
        .reshape([9, 5, 2]);
    let fused = crate::nn::to_f64_vec(m.cost(states.clone(), actions.clone()).unwrap()).unwrap();
    let ops = crate::nn::to_f64_vec(
        m_ad.cost(
            Tensor::from_data(states.clone().into_data(), &ad),
            Tensor::from_data(actions.clone().into_data(), &ad),
        )
        .unwrap(),
    )
    .unwrap();
    for (a, b) in fused.iter().zip(&ops) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // The visited states of the host rollout (plain CPU) and of the tensor ops.
    for symlog in [false, true] {
        let mut m = m.clone();
        let mut m_ad = m_ad.clone();
        m.config.symlog = symlog;
        m_ad.config.symlog = symlog;
        let host = m.imagine(states.clone(), actions.clone(), true).unwrap();
        let ops = m_ad
            .imagine(
                Tensor::from_data(states.clone().into_data(), &ad),
                Tensor::from_data(actions.clone().into_data(), &ad),
                true,
            )
            .unwrap();
        for (a, b) in [
            (host.0, ops.0),
            (
                host.1.unwrap().reshape([9, 6 * 20]),
                ops.1.unwrap().reshape([9, 6 * 20]),
            ),
        ] {
            let (a, b) = (
                crate::nn::to_f64_vec(a).unwrap(),
                crate::nn::to_f64_vec(b).unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
    }
}

#[test]
fn host_loss_equals_the_tape_in_f32() {
    // The plain KL and KL balancing (the host sweep splits the KL's gradient as the tape's
    // stop-gradients do).
    for kl_balance in [None, Some(0.7)] {
        host_loss_equals_the_tape_with(kl_balance, false);
    }
    // Standardised observations (a normaliser away from zeros and ones).
    host_loss_equals_the_tape_with(None, true);
}

fn host_loss_equals_the_tape_with(kl_balance: Option<f64>, standardise: bool) {
    let ad = Device::flex().autodiff();
    let cfg = RssmConfig {
        deter: 32,
        stoch: 6,
        hidden: 24,
        free_nats: 0.5,
        kl_balance,
        symlog: true,
        standardise,
        ..Default::default()
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(3);
    let mut m = Rssm::new(cfg, 5, 2, &ad, &mut rng).unwrap().require_grad();
    if standardise {
        m.set_obs_normaliser(
            vec![0.5, -1.0, 0.0, 2.0, 0.1],
            vec![2.0, 0.5, 1.0, 3.0, 0.25],
        )
        .unwrap();
    }
    // 9 sequences: swept as two halves.
    let (l, b) = (10, 9);
    let batch = SequenceBatch {
        obs: normal_noise(l * b, 5, &ad, &mut rng)
            .unwrap()
            .mul_scalar(2.0),
        actions: normal_noise(l * b, 2, &ad, &mut rng).unwrap(),
        rewards: normal_noise(l * b, 1, &ad, &mut rng).unwrap(),
        noise: normal_noise(l * b, 6, &ad, &mut rng).unwrap(),
        length: l,
        batch: b,
    };
    let host = m.loss(&batch).unwrap();
    let ops = m.loss_tensor_ops(&batch).unwrap();
    let v = |t: Tensor<1>| crate::nn::to_f64_vec(t).unwrap()[0];
    for (a, o) in [
        (host.total.clone(), ops.total.clone()),
        (host.obs, ops.obs),
        (host.reward, ops.reward),
        (host.kl, ops.kl),
    ] {
        let (a, o) = (v(a), v(o));
        assert!((a - o).abs() <= 1e-5 * (1.0 + o.abs()), "{a} vs {o}");
    }
    let (gh, go) = (host.total.backward(), ops.total.backward());
    for (name, p) in m.param_names().iter().zip(m.params()) {
        let a = crate::nn::to_f64_vec(p.grad(&gh).unwrap()).unwrap();
        let o = crate::nn::to_f64_vec(p.grad(&go).unwrap()).unwrap();
        let scale = o.iter().fold(1e-6f64, |s, x| s.max(x.abs()));
        let err = a
            .iter()
            .zip(&o)
            .fold(0.0f64, |e, (x, y)| e.max((x - y).abs()))
            / scale;
        assert!(
            err <= 1e-4,
            "kl_balance {kl_balance:?}, standardise {standardise}: d/d{name}: relative \
             difference {err:e}"
        );
    }
}

#[test]
fn kl_balancing_keeps_the_value_and_gives_the_prior_its_share_of_the_gradient() {
    let ad = Device::flex().autodiff();
    let cfg = RssmConfig {
        deter: 8,
        stoch: 3,
        hidden: 6,
        free_nats: 0.0,
        ..Default::default()
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(5);
    let plain = Rssm::new(cfg, 3, 2, &ad, &mut rng).unwrap().require_grad();
    let mut balanced = plain.clone();
    balanced.config.kl_balance = Some(0.8);
    let (l, b) = (6, 3);
    let batch = SequenceBatch {
        obs: normal_noise(l * b, 3, &ad, &mut rng).unwrap(),
        actions: normal_noise(l * b, 2, &ad, &mut rng).unwrap(),
        rewards: normal_noise(l * b, 1, &ad, &mut rng).unwrap(),
        noise: normal_noise(l * b, 3, &ad, &mut rng).unwrap(),
        length: l,
        batch: b,
    };
    let (p, q) = (plain.loss(&batch).unwrap(), balanced.loss(&batch).unwrap());
    let v = |t: Tensor<1>| crate::nn::to_f64_vec(t).unwrap()[0];
    let (vp, vq) = (v(p.total.clone()), v(q.total.clone()));
    assert!((vp - vq).abs() <= 1e-5 * (1.0 + vp.abs()), "{vp} vs {vq}");
    // The prior's parameters reach the loss only through the KL term: their gradient is the
    // balance's share of the plain one.
    let (gp, gq) = (p.total.backward(), q.total.backward());
    let (wp, wq) = (
        &plain.prior.layers[0].weight,
        &balanced.prior.layers[0].weight,
    );
    let a = crate::nn::to_f64_vec(wp.grad(&gp).unwrap()).unwrap();
    let c = crate::nn::to_f64_vec(wq.grad(&gq).unwrap()).unwrap();
    let scale = a.iter().fold(1e-9f64, |s, x| s.max(x.abs()));
    for (x, y) in a.iter().zip(&c) {
        assert!((0.8 * x - y).abs() <= 1e-5 * scale, "{x} x 0.8 vs {y}");
    }
}

#[test]
fn bad_loss_options_are_named() {
    for (cfg, name) in [
        (
            RssmConfig {
                kl_balance: Some(1.0),
                ..Default::default()
            },
            "kl_balance",
        ),
        (
            RssmConfig {
                overshoot_scale: f64::NAN,
                ..Default::default()
            },
            "overshoot_scale",
        ),
    ] {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn an_open_loop_longer_than_the_chunks_is_an_error() {
    let plain = Device::flex();
    let cfg = RssmConfig {
        deter: 4,
        stoch: 2,
        hidden: 4,
        overshoot: 4,
        ..Default::default()
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(1);
    let m = Rssm::new(cfg, 3, 1, &plain, &mut rng).unwrap();
    let (l, b) = (4, 2);
    let batch = SequenceBatch {
        obs: normal_noise(l * b, 3, &plain, &mut rng).unwrap(),
        actions: normal_noise(l * b, 1, &plain, &mut rng).unwrap(),
        rewards: normal_noise(l * b, 1, &plain, &mut rng).unwrap(),
        noise: normal_noise(l * b, 2, &plain, &mut rng).unwrap(),
        length: l,
        batch: b,
    };
    let e = m.loss(&batch).unwrap_err().to_string();
    assert!(e.contains("overshoot") && e.contains("chunks of 4"), "{e}");
}

#[test]
fn the_observation_normaliser_fits_the_buffer_and_maps_both_ways() {
    let plain = Device::flex();
    let cfg = RssmConfig {
        deter: 8,
        stoch: 2,
        hidden: 6,
        standardise: true,
        ..Default::default()
    };
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(5);
    let mut m = Rssm::new(cfg, 2, 1, &plain, &mut rng).unwrap();
    let mut buf = ReplayBuffer::new(2, 1);
    let mut ep = crate::replay::EpisodeRecord::default();
    // Coordinate 0: 1, 3, 5 (mean 3, std sqrt(8/3)); coordinate 1: constant 7 (std floored).
    for x in [1.0, 3.0, 5.0] {
        ep.push(&[x, 7.0], &[0.0], 0.0).unwrap();
    }
    buf.push(ep).unwrap();
    m.fit_obs_normaliser(&buf).unwrap();
    let (mean, std) = m.obs_normaliser();
    assert!((mean[0] - 3.0).abs() < 1e-12 && (mean[1] - 7.0).abs() < 1e-12);
    assert!((std[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12 && std[1] == 1e-4);
    let obs = tensor_from_f64(&[5.0, 7.0, 1.0, 7.5], [2, 2], &plain).unwrap();
    let z = m.obs_to_model(obs.clone());
    let zv = crate::nn::to_f64_vec(z.clone()).unwrap();
    let s0 = (8.0f64 / 3.0).sqrt();
    for (a, b) in zv.iter().zip([2.0 / s0, 0.0, -2.0 / s0, 0.5 / 1e-4]) {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let back = crate::nn::to_f64_vec(m.obs_from_model(z)).unwrap();
    for (a, b) in back.iter().zip([5.0, 7.0, 1.0, 7.5]) {
        assert!((a - b).abs() <= 1e-4, "{a} vs {b}");
    }
    // The host mapping is the same.
    let mut host = vec![5.0f64, 7.0, 1.0, 7.5];
    m.obs_to_model_host(&mut host);
    for (a, b) in host.iter().zip(&zv) {
        assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // Bad normalisers and buffers are named.
    let e = m.set_obs_normaliser(vec![0.0], vec![1.0]).unwrap_err();
    assert!(e.to_string().contains("set_obs_normaliser"), "{e}");
    let e = m
        .set_obs_normaliser(vec![0.0, 0.0], vec![1.0, 0.0])
        .unwrap_err();
    assert!(e.to_string().contains("standard deviations above 0"), "{e}");
    let e = m
        .set_obs_normaliser(vec![f64::NAN, 0.0], vec![1.0, 1.0])
        .unwrap_err();
    assert!(e.to_string().contains("finite means"), "{e}");
    let e = m.fit_obs_normaliser(&ReplayBuffer::new(2, 1)).unwrap_err();
    assert!(e.to_string().contains("no observation"), "{e}");
    let e = m.fit_obs_normaliser(&ReplayBuffer::new(3, 1)).unwrap_err();
    assert!(e.to_string().contains("fit_obs_normaliser"), "{e}");
}
