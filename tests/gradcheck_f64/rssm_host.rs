//! The RSSM loss as `Rssm::loss` computes it on the CPU (forward and backward on the host)
//! against central finite differences for every parameter, and against the op-by-op tape
//! (`Rssm::loss_tensor_ops`).

use super::*;
use dcem::nn::{Rssm, RssmConfig, SequenceBatch};

fn sequence_batch(l: usize, b: usize, dev: &Device) -> SequenceBatch {
    let part = |cols: usize, scale: f64, seed: u64| {
        tensor(
            &random(l * b * cols, scale, &mut ChaCha8Rng::seed_from_u64(seed)),
            [l * b, cols],
            dev,
        )
    };
    SequenceBatch {
        obs: part(2, 3.0, 11),
        actions: part(1, 1.0, 12),
        rewards: part(1, 2.0, 13),
        noise: part(3, 1.0, 14),
        length: l,
        batch: b,
    }
}

fn on_device(m: &Rssm, dev: &Device) -> Rssm {
    let mut p = m.clone();
    p.set_params(
        m.params()
            .into_iter()
            .map(|t| Tensor::from_data(t.into_data(), dev))
            .collect(),
    )
    .unwrap();
    p
}

/// The relative error, or the largest absolute value of `a` where `reference` is zero
/// everywhere (the prior's gradient while the KL term is clamped).
fn rel_or_abs(a: &[f64], reference: &[f64]) -> f64 {
    if reference.iter().all(|v| *v == 0.0) {
        a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    } else {
        rel_err(a, reference)
    }
}

#[test]
fn host_rssm_loss_matches_finite_differences_and_the_tape() {
    let device = device();
    let plain = device.clone().without_autodiff();
    // Free nats 0: the KL term has a gradient; 1e3: the clamp holds it at zero. 9 sequences are
    // swept as two halves (4 and 5) and summed; 3 in one part. Observations standardised
    // (rewards in symlog) in the last.
    for (l, b, symlog, free_nats, standardise) in [
        (4, 3, false, 0.0, false),
        (4, 3, true, 0.0, false),
        (4, 3, false, 1e3, false),
        (3, 9, true, 0.0, false),
        (3, 9, false, 1e3, false),
        (4, 3, true, 0.0, true),
    ] {
        let cfg = RssmConfig {
            deter: 4,
            stoch: 3,
            hidden: 5,
            free_nats,
            symlog,
            kl_scale: 0.7,
            reward_scale: 1.3,
            standardise,
            ..Default::default()
        };
        let label =
            format!("batch {b}, symlog {symlog}, free nats {free_nats}, standardise {standardise}");
        let mut model = Rssm::new(cfg, 2, 1, &device, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
        if standardise {
            model
                .set_obs_normaliser(vec![0.4, -1.2], vec![1.7, 0.6])
                .unwrap();
        }
        let tracked = model.clone().require_grad();
        let host = tracked.loss(&sequence_batch(l, b, &device)).unwrap();
        let ops = tracked
            .loss_tensor_ops(&sequence_batch(l, b, &device))
            .unwrap();
        for (what, a, o) in [
            ("total", host.total.clone(), ops.total.clone()),
            ("obs", host.obs.clone(), ops.obs.clone()),
            ("reward", host.reward.clone(), ops.reward.clone()),
            ("kl", host.kl.clone(), ops.kl.clone()),
        ] {
            let err = rel_err(&to_vec(a), &to_vec(o));
            assert!(
                err <= 1e-12,
                "{label}: {what} differs from the tape by {err:e}"
            );
        }
        let err = rel_err(&to_vec(host.states.clone()), &to_vec(ops.states.clone()));
        assert!(
            err <= 1e-12,
            "{label}: states differ from the tape by {err:e}"
        );
        let (gh, go) = (host.total.backward(), ops.total.backward());
        let base = on_device(&model, &plain);
        let batch = sequence_batch(l, b, &plain);
        let names = model.param_names();
        let params = base.params();
        let mut worst = (0.0f64, 0.0f64);
        for (i, p) in tracked.params().iter().enumerate() {
            let auto = to_vec(p.grad(&gh).unwrap());
            let tape = to_vec(p.grad(&go).unwrap());
            let vs_tape = rel_or_abs(&auto, &tape);
            let shape = params[i].dims();
            let fd = fd_grad(&to_vec(params[i].clone()), 1e-6, |v| {
                let mut all = params.clone();
                all[i] = tensor(v, [shape[0], shape[1]], &plain);
                let mut m = base.clone();
                m.set_params(all).unwrap();
                let loss = m.loss(&batch).unwrap();
                if free_nats > 0.0 {
                    // The clamped KL term is the constant 0.7 * free_nats, which would swamp the
                    // differences: difference the other terms.
                    to_vec(loss.obs)[0] + 1.3 * to_vec(loss.reward)[0]
                } else {
                    to_vec(loss.total)[0]
                }
            });
            let vs_fd = rel_or_abs(&auto, &fd);
            assert!(
                vs_tape <= 1e-10,
                "{label}: d/d{} differs from the tape by {vs_tape:e}",
                names[i]
            );
            assert!(
                vs_fd <= 1e-6,
                "{label}: d/d{} against finite differences: {vs_fd:e}",
                names[i]
            );
            worst = (worst.0.max(vs_tape), worst.1.max(vs_fd));
        }
        eprintln!(
            "host RSSM loss ({label}), every parameter: relative error {:.2e} against the tape, \
             {:.2e} against finite differences",
            worst.0, worst.1
        );
    }
}
