//! One PPO minibatch step: the loss on the tape, its backward pass, clipping and Adam.

use super::*;

impl<P: PolicyMean> Ppo<P> {
    /// One clipped-surrogate step on the minibatch `idx` of `batch`: the means recomputed on
    /// the tape (for a DCEM policy: every solve again, with its stored seed), the loss, one
    /// backward pass, joint gradient clipping, and Adam on the policy (and `log_std`) and the
    /// value function. Returns the policy loss, value loss, entropy, approximate KL and clip
    /// fraction; timings and the gradient norm go into `stats`.
    pub(super) fn minibatch_step(
        &mut self,
        batch: &RolloutBatch,
        idx: &[usize],
        stats: &mut PpoStats,
    ) -> Result<[f64; 5]> {
        let c = &self.config;
        let (d, a) = (self.policy.input_dim(), self.policy.action_dim());
        let vd = self.value.d_in();
        let t0 = Instant::now();
        let rows = |src: &[f64], w: usize| -> Vec<f64> {
            idx.iter()
                .flat_map(|&i| src[i * w..(i + 1) * w].iter().copied())
                .collect()
        };
        let m = idx.len();
        // Advantages normalised within the minibatch (CleanRL's norm_adv).
        let mut adv = rows(&batch.advantages, 1);
        if c.norm_adv && m > 1 {
            let mean = adv.iter().sum::<f64>() / m as f64;
            let sd = (adv.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1) as f64).sqrt();
            adv.iter_mut().for_each(|x| *x = (*x - mean) / (sd + 1e-8));
        }
        let dev = &self.device;
        let targets = PpoTargets {
            actions: tensor_from_f64(&rows(&batch.actions, a), [m, a], dev)?,
            logp_old: tensor_from_f64(&rows(&batch.logp, 1), [m], dev)?,
            advantages: tensor_from_f64(&adv, [m], dev)?,
            returns: tensor_from_f64(&rows(&batch.returns, 1), [m], dev)?,
            values_old: tensor_from_f64(&rows(&batch.values, 1), [m], dev)?,
        };
        let seeds: Vec<u64> = idx.iter().map(|&i| batch.seeds[i]).collect();
        // The policy, log std and value function tracked for this step.
        let mut old_pi = self.policy.params();
        let pi_params: Vec<Tensor<2>> = old_pi.iter().map(|p| p.clone().require_grad()).collect();
        let mut tracked = self.policy.to_device(dev)?;
        tracked.set_params(pi_params.clone())?;
        let log_std = if c.learn_std {
            self.log_std.clone().require_grad()
        } else {
            self.log_std.clone()
        };
        let value = self.value.clone().require_grad();
        let x = tensor_from_f64(&rows(&batch.inputs, d), [m, d], dev)?;
        let mean = tracked.mean(x, &seeds)?;
        let vx = tensor_from_f64(&rows(&batch.value_inputs, vd), [m, vd], dev)?;
        let values = value.forward(vx).reshape([m]);
        let loss = ppo_loss(mean, log_std.clone(), values, &targets, c)?;
        let parts = to_f64_vec(Tensor::cat(
            vec![
                loss.total.clone(),
                loss.policy.clone(),
                loss.value.clone(),
                loss.entropy.clone(),
            ],
            0,
        ))?;
        if parts.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "PPO loss",
                detail: format!("{parts:?}: lower ppo.lr, or check the rewards and observations"),
            });
        }
        let t1 = Instant::now();
        let grads = loss.total.backward();
        let t2 = Instant::now();
        // One global norm over the policy's, log std's and value function's gradients.
        let mut g = grads_of(&pi_params, &grads);
        if c.learn_std {
            g.push(log_std.grad(&grads).map(|g| g.autodiff()));
        }
        let n_pi = g.len();
        g.extend(grads_of(&value.params(), &grads));
        stats.grad_norm += clip_grad_norm(&mut g, c.max_grad_norm)?;
        let g_v = g.split_off(n_pi);
        if c.learn_std {
            old_pi.push(self.log_std.clone());
        }
        let mut new_pi = self.adam_pi.step(old_pi, g)?;
        if c.learn_std {
            self.log_std = new_pi.pop().ok_or_else(|| Error::Data("log_std".into()))?;
        }
        self.policy.set_params(new_pi)?;
        let new_v = self.adam_v.step(self.value.params(), g_v)?;
        self.value.set_params(new_v)?;
        let t3 = Instant::now();
        stats.forward_s += (t1 - t0).as_secs_f64();
        stats.backward_s += (t2 - t1).as_secs_f64();
        stats.optim_s += (t3 - t2).as_secs_f64();
        stats.steps += 1;
        Ok([parts[1], parts[2], parts[3], loss.approx_kl, loss.clipfrac])
    }
}
