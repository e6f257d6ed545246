//! The Gaussian log-density and PPO's clipped loss against finite differences.

use super::*;

pub(super) fn vec1(v: &[f64], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

#[test]
fn gaussian_log_prob_gradient_matches_finite_differences() {
    use dcem::rl::gaussian_log_prob;
    let device = device();
    let plain = device.clone().without_autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (n, a) = (4, 3);
    let mean = random(n * a, 1.0, &mut rng);
    let log_std = random(a, 0.5, &mut rng);
    let actions = random(n * a, 1.5, &mut rng);
    let w = random(n, 1.0, &mut rng);
    let f = |m: &[f64], ls: &[f64], dev: &Device| -> Tensor<1> {
        (gaussian_log_prob(
            tensor(m, [n, a], dev),
            tensor(ls, [1, a], dev),
            tensor(&actions, [n, a], dev),
        ) * vec1(&w, dev))
        .sum()
    };
    // The density itself, against the closed form.
    let lp = to_vec(gaussian_log_prob(
        tensor(&mean, [n, a], &plain),
        tensor(&log_std, [1, a], &plain),
        tensor(&actions, [n, a], &plain),
    ));
    for i in 0..n {
        let want: f64 = (0..a)
            .map(|j| {
                let s = log_std[j].exp();
                let z = (actions[i * a + j] - mean[i * a + j]) / s;
                -0.5 * z * z - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum();
        assert!((lp[i] - want).abs() < 1e-12, "{} vs {want}", lp[i]);
    }
    let m_t = tensor(&mean, [n, a], &device).require_grad();
    let ls_t = tensor(&log_std, [1, a], &device).require_grad();
    let out = (gaussian_log_prob(m_t.clone(), ls_t.clone(), tensor(&actions, [n, a], &device))
        * vec1(&w, &device))
    .sum();
    let grads = out.backward();
    let g_m = to_vec(m_t.grad(&grads).unwrap());
    let g_ls = to_vec(ls_t.grad(&grads).unwrap());
    let fd_m = fd_grad(&mean, 1e-6, |m| to_vec(f(m, &log_std, &plain))[0]);
    let fd_ls = fd_grad(&log_std, 1e-6, |ls| to_vec(f(&mean, ls, &plain))[0]);
    let (e_m, e_ls) = (rel_err(&g_m, &fd_m), rel_err(&g_ls, &fd_ls));
    eprintln!("Gaussian log-prob: mean {e_m:.2e}, log_std {e_ls:.2e}");
    assert!(e_m <= 1e-7 && e_ls <= 1e-7, "{e_m:e} {e_ls:e}");
}

/// PPO targets whose ratios sit inside and outside the clip range, away from its edges.
pub(super) fn ppo_targets(
    n: usize,
    a: usize,
    mean: &[f64],
    log_std: &[f64],
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> (dcem::rl::ppo::PpoTargets, Vec<f64>) {
    use dcem::rl::gaussian_log_prob;
    let actions = random(n * a, 1.0, rng);
    let logp = to_vec(gaussian_log_prob(
        tensor(mean, [n, a], device),
        tensor(log_std, [1, a], device),
        tensor(&actions, [n, a], device),
    ));
    // Old log-probabilities shifted by ln(ratio) with ratios 0.5 .. 1.5 (clip 0.2).
    let shifts = [0.0, 0.1, -0.1, 0.4, -0.4, 0.15, -0.6, 0.3];
    let logp_old: Vec<f64> = logp
        .iter()
        .enumerate()
        .map(|(i, l)| l - (1.0f64 + shifts[i % shifts.len()]).ln())
        .collect();
    let adv = random(n, 1.0, rng);
    let returns = random(n, 2.0, rng);
    let values_old = random(n, 2.0, rng);
    let t = dcem::rl::ppo::PpoTargets {
        actions: tensor(&actions, [n, a], device),
        logp_old: vec1(&logp_old, device),
        advantages: vec1(&adv, device),
        returns: vec1(&returns, device),
        values_old: vec1(&values_old, device),
    };
    (t, values_old)
}

#[test]
fn ppo_loss_gradient_matches_finite_differences() {
    use dcem::rl::{PpoConfig, ppo_loss};
    let device = device();
    let plain = device.clone().without_autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let (n, a) = (8, 2);
    let mean = random(n * a, 1.0, &mut rng);
    let log_std = random(a, 0.3, &mut rng);
    for clip_vloss in [true, false] {
        let cfg = PpoConfig {
            clip_vloss,
            ent_coef: 0.01,
            ..PpoConfig::default()
        };
        let (targets, values_old) = ppo_targets(n, a, &mean, &log_std, &mut rng, &device);
        let targets_plain = dcem::rl::ppo::PpoTargets {
            actions: Tensor::from_data(targets.actions.clone().into_data(), &plain),
            logp_old: Tensor::from_data(targets.logp_old.clone().into_data(), &plain),
            advantages: Tensor::from_data(targets.advantages.clone().into_data(), &plain),
            returns: Tensor::from_data(targets.returns.clone().into_data(), &plain),
            values_old: Tensor::from_data(targets.values_old.clone().into_data(), &plain),
        };
        // New values: some inside the value clip range, some outside.
        let values: Vec<f64> = values_old
            .iter()
            .enumerate()
            .map(|(i, v)| v + [0.05, -0.5, 0.4, -0.1][i % 4])
            .collect();
        let loss = |m: &[f64], ls: &[f64], v: &[f64]| -> f64 {
            let l = ppo_loss(
                tensor(m, [n, a], &plain),
                tensor(ls, [1, a], &plain),
                vec1(v, &plain),
                &targets_plain,
                &cfg,
            )
            .unwrap();
            to_vec(l.total)[0]
        };
        let m_t = tensor(&mean, [n, a], &device).require_grad();
        let ls_t = tensor(&log_std, [1, a], &device).require_grad();
        let v_t = vec1(&values, &device).require_grad();
        let l = ppo_loss(m_t.clone(), ls_t.clone(), v_t.clone(), &targets, &cfg).unwrap();
        assert!(l.clipfrac > 0.0 && l.clipfrac < 1.0, "{}", l.clipfrac);
        let grads = l.total.backward();
        let checks = [
            (
                "mean",
                to_vec(m_t.grad(&grads).unwrap()),
                fd_grad(&mean, 1e-6, |m| loss(m, &log_std, &values)),
            ),
            (
                "log_std",
                to_vec(ls_t.grad(&grads).unwrap()),
                fd_grad(&log_std, 1e-6, |ls| loss(&mean, ls, &values)),
            ),
            (
                "values",
                to_vec(v_t.grad(&grads).unwrap()),
                fd_grad(&values, 1e-6, |v| loss(&mean, &log_std, v)),
            ),
        ];
        for (what, auto, fd) in checks {
            let err = rel_err(&auto, &fd);
            eprintln!("PPO loss (clip_vloss={clip_vloss}) w.r.t. {what}: relative error {err:.2e}");
            assert!(err <= 1e-6, "{what}: {err:e}\n{auto:?}\n{fd:?}");
        }
    }
}
