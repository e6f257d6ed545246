//! Generalised advantage estimation (Schulman et al. 2016).

use crate::error::{Error, Result};

/// Advantages and value targets of one stream of consecutive steps by GAE(`lambda`).
///
/// Per step `t`: `rewards[t]`, the value of the observation acted on `values[t]`, the value of
/// the observation that followed `next_values[t]` (for the last step of an episode cut by a time
/// limit this is the value of the final observation, so truncation is bootstrapped),
/// `terminated[t]` (the task ended: no bootstrap) and `episode_end[t]` (terminated or truncated:
/// the recursion stops). With
/// `delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)`,
/// `A_t = delta_t + gamma * lambda * (1 - episode_end_t) * A_{t+1}`; the stream's last step is an
/// end of the recursion whatever `episode_end` says (its `next_values` entry bootstraps it).
/// Returns `(advantages, returns)` with `returns = advantages + values` (the value targets).
///
/// With `lambda = 1` and an episode that terminates at its last step, the advantages are the
/// discounted returns minus the values.
pub fn gae(
    rewards: &[f64],
    values: &[f64],
    next_values: &[f64],
    terminated: &[bool],
    episode_end: &[bool],
    gamma: f64,
    lambda: f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = rewards.len();
    if values.len() != n
        || next_values.len() != n
        || terminated.len() != n
        || episode_end.len() != n
    {
        return Err(Error::shape(
            "gae inputs",
            format!("five sequences of length {n}"),
            (
                values.len(),
                next_values.len(),
                terminated.len(),
                episode_end.len(),
            ),
        ));
    }
    if !(0.0..=1.0).contains(&gamma) {
        return Err(Error::option(
            "gamma",
            format!("must be in [0, 1], got {gamma}"),
        ));
    }
    if !(0.0..=1.0).contains(&lambda) {
        return Err(Error::option(
            "gae_lambda",
            format!("must be in [0, 1], got {lambda}"),
        ));
    }
    let mut adv = vec![0.0; n];
    let mut next_adv = 0.0;
    for t in (0..n).rev() {
        let boot = if terminated[t] { 0.0 } else { next_values[t] };
        let delta = rewards[t] + gamma * boot - values[t];
        let carry = if episode_end[t] || t + 1 == n {
            0.0
        } else {
            next_adv
        };
        adv[t] = delta + gamma * lambda * carry;
        next_adv = adv[t];
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    Ok((adv, returns))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_lengths_and_bad_coefficients_are_refused() {
        let e = gae(&[1.0], &[], &[0.0], &[false], &[false], 0.9, 0.9).unwrap_err();
        assert!(e.to_string().contains("gae inputs"), "{e}");
        let e = gae(&[1.0], &[0.0], &[0.0], &[false], &[false], 1.5, 0.9).unwrap_err();
        assert!(e.to_string().contains("gamma"), "{e}");
        let e = gae(&[1.0], &[0.0], &[0.0], &[false], &[false], 0.9, -0.1).unwrap_err();
        assert!(e.to_string().contains("gae_lambda"), "{e}");
    }
}
