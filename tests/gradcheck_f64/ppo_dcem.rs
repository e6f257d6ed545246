//! The policy gradient of the latent DCEM controller (phase 3), over an RSSM and over an
//! ensemble, against finite differences.

use std::ops::Range;

use dcem::planning::{LatentDcemPlanner, LatentPlannerConfig, MlpDecoder, MlpDecoderConfig};
use dcem::rl::{ControllerModel, DcemParts, DcemPolicy, PolicyMean, PpoConfig, ppo_loss};

use super::ppo_loss::{ppo_targets, vec1};
use super::*;

/// A small latent planner (16 samples, 4 soft elites, 3 iterations) with a decoder of latent
/// width 2 for `horizon` steps of 1 action.
fn small_planner(
    horizon: usize,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> LatentDcemPlanner<MlpDecoder> {
    let decoder = MlpDecoder::new(
        &MlpDecoderConfig {
            latent_dim: 2,
            hidden: 4,
            hidden_layers: 1,
            activation: dcem::nn::Activation::Elu,
            init: dcem::nn::Init::ScaledNormal,
        },
        horizon,
        1,
        (-1.0, 1.0),
        device,
        rng,
    )
    .unwrap();
    let cfg = LatentPlannerConfig {
        cem: CemConfig {
            n_sample: 16,
            n_elite: 4,
            n_iter: 3,
            tau: 1.0,
            init_sigma: 0.5,
            normalize: true,
            iter_eps: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    LatentDcemPlanner::new(cfg, decoder).unwrap()
}

/// Checks that the PPO loss of `policy` on 3 random inputs has gradients in every group of
/// `groups` (ranges over [`PolicyMean::params`], `n_params` in all) that match finite
/// differences.
fn check_policy_gradient(
    policy: &DcemPolicy,
    groups: &[(&str, Range<usize>)],
    n_params: usize,
    rng: &mut ChaCha8Rng,
) {
    let device = device();
    let plain = device.clone().without_autodiff();
    let (n, a, sd) = (3, 1, policy.input_dim());
    let states = random(n * sd, 1.0, rng);
    let seeds = [5u64, 6, 7];
    let mean0 = to_vec(
        policy
            .to_device(&plain)
            .unwrap()
            .mean(tensor(&states, [n, sd], &plain), &seeds)
            .unwrap(),
    );
    // A row's mean does not depend on the rest of the batch.
    let alone = to_vec(
        policy
            .to_device(&plain)
            .unwrap()
            .mean(tensor(&states[sd..2 * sd], [1, sd], &plain), &seeds[1..2])
            .unwrap(),
    );
    assert!(
        (alone[0] - mean0[1]).abs() < 1e-12,
        "{alone:?} vs {mean0:?}"
    );
    let log_std = vec![-1.0];
    let ppo = PpoConfig::default();
    let (targets, values_old) = ppo_targets(n, a, &mean0, &log_std, rng, &plain);
    let to_ad = |t: Tensor<1>| Tensor::<1>::from_data(t.into_data(), &device);
    let targets_ad = dcem::rl::ppo::PpoTargets {
        actions: Tensor::from_data(targets.actions.clone().into_data(), &device),
        logp_old: to_ad(targets.logp_old.clone()),
        advantages: to_ad(targets.advantages.clone()),
        returns: to_ad(targets.returns.clone()),
        values_old: to_ad(targets.values_old.clone()),
    };
    let loss_of = |p: &DcemPolicy, dev: &Device, t: &dcem::rl::ppo::PpoTargets| {
        let mean = p.mean(tensor(&states, [n, sd], dev), &seeds).unwrap();
        ppo_loss(
            mean,
            tensor(&log_std, [1, a], dev),
            vec1(&values_old, dev),
            t,
            &ppo,
        )
        .unwrap()
        .total
    };
    let mut tracked = policy.to_device(&device).unwrap();
    let params: Vec<Tensor<2>> = tracked
        .params()
        .into_iter()
        .map(|p| p.require_grad())
        .collect();
    assert_eq!(params.len(), n_params);
    tracked.set_params(params.clone()).unwrap();
    let grads = loss_of(&tracked, &device, &targets_ad).backward();
    let host: Vec<Vec<f64>> = params.iter().map(|p| to_vec(p.clone())).collect();
    let shapes: Vec<[usize; 2]> = params.iter().map(|p| p.dims()).collect();
    let base = policy.to_device(&plain).unwrap();
    for (name, range) in groups {
        let mut auto = Vec::new();
        let mut fd = Vec::new();
        for i in range.clone() {
            let g = params[i]
                .grad(&grads)
                .map(to_vec)
                .unwrap_or_else(|| vec![0.0; host[i].len()]);
            auto.extend(g);
            fd.extend(fd_grad(&host[i], 1e-6, |v| {
                let mut p = base.to_device(&plain).unwrap();
                let mut all: Vec<Tensor<2>> = host
                    .iter()
                    .zip(&shapes)
                    .map(|(h, s)| tensor(h, *s, &plain))
                    .collect();
                all[i] = tensor(v, shapes[i], &plain);
                p.set_params(all).unwrap();
                to_vec(loss_of(&p, &plain, &targets))[0]
            }));
        }
        let nonzero = auto.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = rel_err(&auto, &fd);
        eprintln!(
            "PPO loss through DCEM w.r.t. {name}: max |grad| {nonzero:.2e}, relative error {err:.2e}"
        );
        assert!(nonzero > 1e-6, "no gradient reached the {name} parameters");
        assert!(err <= 1e-5, "{name}: relative error {err:e}");
    }
}

const ALL_PARTS: DcemParts = DcemParts {
    reward: true,
    transition: true,
    decoder: true,
};

/// The policy gradient of the latent DCEM controller reaches the decoder, the reward head and
/// the transition through every solver iteration, and matches finite differences.
#[test]
fn ppo_gradient_through_dcem_reaches_decoder_reward_and_transition() {
    let device = device();
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let model = small_rssm(&device, &mut rng, false);
    let policy = DcemPolicy {
        model: ControllerModel::Rssm(Box::new(model)),
        planner: small_planner(3, &device, &mut rng),
        parts: ALL_PARTS,
    };
    // transition: input, gru, prior (2 tensors each, prior has 2 layers); reward head; decoder.
    let groups = [("transition", 0..8), ("reward", 8..14), ("decoder", 14..18)];
    check_policy_gradient(&policy, &groups, 18, &mut rng);
}

/// Over a probabilistic ensemble (observations as inputs, a normaliser that is not the
/// identity) the policy gradient reaches every member's layers and the decoder, and matches
/// finite differences; with the model frozen only the decoder is trained.
#[test]
fn ppo_gradient_through_dcem_over_an_ensemble() {
    use dcem::nn::{Activation, Ensemble, EnsembleConfig};
    let device = device();
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    let (od, ad) = (3, 1);
    let mut model = Ensemble::new(
        EnsembleConfig {
            members: 2,
            hidden: 5,
            layers: 2,
            activation: Activation::Elu,
            ..Default::default()
        },
        od,
        ad,
        &device,
        &mut rng,
    )
    .unwrap();
    let norm = [
        tensor(&random(od + ad, 0.5, &mut rng), [1, od + ad], &device),
        tensor(&[0.8, 1.3, 0.6, 1.1], [1, od + ad], &device),
        tensor(&random(od + 1, 0.2, &mut rng), [1, od + 1], &device),
        tensor(&[0.5, 0.9, 1.4, 2.0], [1, od + 1], &device),
    ];
    model.set_normaliser(norm).unwrap();
    let mut policy = DcemPolicy {
        model: ControllerModel::Ensemble(Box::new(model)),
        planner: small_planner(3, &device, &mut rng),
        parts: ALL_PARTS,
    };
    assert_eq!(policy.input_dim(), od);
    // Three layers (weight and bias each) for the members, then the decoder's 2 layers.
    let groups = [("ensemble", 0..6), ("decoder", 6..10)];
    check_policy_gradient(&policy, &groups, 10, &mut rng);
    // Reward or transition alone train the same (joint) network.
    policy.parts = DcemParts {
        reward: true,
        transition: false,
        decoder: false,
    };
    assert_eq!(policy.params().len(), 6);
    policy.parts = DcemParts {
        reward: false,
        transition: false,
        decoder: true,
    };
    check_policy_gradient(&policy, &[("decoder", 0..4)], 4, &mut rng);
}
