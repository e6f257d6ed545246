//! PPO's loss: the Gaussian log-density, the clipped surrogate, the (clipped) value loss and
//! the entropy bonus.

use super::*;

/// Log-density of `actions: [n, A]` under `N(mean: [n, A], exp(log_std: [1, A])^2)`,
/// summed over the action coordinates: `[n]`.
pub fn gaussian_log_prob(mean: Tensor<2>, log_std: Tensor<2>, actions: Tensor<2>) -> Tensor<1> {
    let n = mean.dims()[0];
    let z = (actions - mean) / log_std.clone().exp();
    let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    z.square()
        .mul_scalar(-0.5)
        .sub(log_std)
        .sub_scalar(half_ln_2pi)
        .sum_dim(1)
        .reshape([n])
}

/// The fixed inputs of one PPO minibatch loss.
#[derive(Clone, Debug)]
pub struct PpoTargets {
    /// Actions taken `[n, A]` (as sampled, before any clipping to the action space).
    pub actions: Tensor<2>,
    /// Their log-probabilities under the acting policy `[n]`.
    pub logp_old: Tensor<1>,
    /// Advantages `[n]` (already normalised if that is wanted).
    pub advantages: Tensor<1>,
    /// Value targets `[n]`.
    pub returns: Tensor<1>,
    /// The acting value function's estimates `[n]` (for the clipped value loss).
    pub values_old: Tensor<1>,
}

/// One minibatch's PPO loss and its parts.
#[derive(Clone, Debug)]
pub struct PpoLoss {
    /// `policy - ent_coef * entropy + vf_coef * value`, `[1]`.
    pub total: Tensor<1>,
    /// The clipped surrogate (to minimise), `[1]`.
    pub policy: Tensor<1>,
    /// The (clipped) value loss `0.5 * mean(max(...))`, `[1]`.
    pub value: Tensor<1>,
    /// The Gaussian's entropy, `[1]`.
    pub entropy: Tensor<1>,
    /// `mean((ratio - 1) - ln ratio)`, the approximate KL of old to new (CleanRL's `approx_kl`).
    pub approx_kl: f64,
    /// Fraction of samples whose ratio left `[1 - clip, 1 + clip]`.
    pub clipfrac: f64,
}

/// The PPO loss of new means `[n, A]`, `log_std` `[1, A]` and new values `[n]` against
/// `targets`, with `config`'s clip range and coefficients.
pub fn ppo_loss(
    mean: Tensor<2>,
    log_std: Tensor<2>,
    values: Tensor<1>,
    targets: &PpoTargets,
    config: &PpoConfig,
) -> Result<PpoLoss> {
    let [n, a] = mean.dims();
    if targets.actions.dims() != [n, a]
        || log_std.dims() != [1, a]
        || values.dims() != [n]
        || targets.logp_old.dims() != [n]
        || targets.advantages.dims() != [n]
        || targets.returns.dims() != [n]
        || targets.values_old.dims() != [n]
    {
        return Err(Error::shape(
            "ppo_loss inputs",
            format!("mean/actions [{n}, {a}], log_std [1, {a}], the rest [{n}]"),
            (mean.dims(), log_std.dims(), values.dims()),
        ));
    }
    let c = config.clip_coef;
    let logp = gaussian_log_prob(mean, log_std.clone(), targets.actions.clone());
    let logratio = logp - targets.logp_old.clone();
    let ratio = logratio.clone().exp();
    let adv = targets.advantages.clone();
    let unclipped = adv.clone().neg() * ratio.clone();
    let clipped = adv.neg() * ratio.clone().clamp(1.0 - c, 1.0 + c);
    let policy = unclipped.max_pair(clipped).mean();

    let err = (values.clone() - targets.returns.clone()).square();
    let value = if config.clip_vloss {
        let v_clip =
            targets.values_old.clone() + (values - targets.values_old.clone()).clamp(-c, c);
        let err_clip = (v_clip - targets.returns.clone()).square();
        err.max_pair(err_clip).mean().mul_scalar(0.5)
    } else {
        err.mean().mul_scalar(0.5)
    };
    let per_dim = 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln();
    let entropy = log_std.sum().add_scalar(per_dim * a as f64);
    let total = policy.clone() - entropy.clone().mul_scalar(config.ent_coef)
        + value.clone().mul_scalar(config.vf_coef);

    let lr = to_f64_vec(logratio.detach())?;
    let m = n.max(1) as f64;
    let approx_kl = lr.iter().map(|l| l.exp() - 1.0 - l).sum::<f64>() / m;
    let clipfrac = lr.iter().filter(|l| (l.exp() - 1.0).abs() > c).count() as f64 / m;
    Ok(PpoLoss {
        total,
        policy,
        value,
        entropy,
        approx_kl,
        clipfrac,
    })
}
