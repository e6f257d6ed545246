//! The ensemble's planning rollouts: as tensor operations (any device), and on the host for
//! plain f32 tensors on the CPU (what the planners call there): per member and step, one `gemm`
//! product per layer over the samples, the hidden activation in one vectorised pass, only the
//! mean half of the last layer computed, and the samples split in two halves side by side as
//! the RSSM's rollout splits them.

use burn::tensor::{Tensor, s};

use super::Ensemble;
use crate::error::{Error, Result};
use crate::nn::Activation;
use crate::nn::host_kernels::{Layer, cols, relu, tanh};

/// The hidden activation of `h`; `slope` is scratch for the fused kernels.
fn activate(kind: Activation, h: Vec<f32>, slope: &mut Vec<f32>) -> Vec<f32> {
    let mut out = vec![0f32; h.len()];
    slope.resize(h.len(), 0.0);
    match kind {
        Activation::Elu => crate::nn::fast::elu_and_slope(&h, &mut out, slope),
        Activation::Softplus => crate::nn::fast::softplus_and_slope(&h, &mut out, slope),
        Activation::Relu => out.iter_mut().zip(&h).for_each(|(o, v)| *o = relu(*v)),
        Activation::Tanh => out.iter_mut().zip(&h).for_each(|(o, v)| *o = tanh(*v)),
    }
    out
}

impl Ensemble {
    /// A rollout's `states: [n, obs]` and `actions: [n, horizon >= 1, action]`, or the error.
    fn check_rollout(&self, states: &Tensor<2>, actions: &Tensor<3>) -> Result<()> {
        let (od, ad) = (self.obs_dim, self.action_dim);
        let [n, sd] = states.dims();
        let [na, horizon, a] = actions.dims();
        if sd != od || na != n || a != ad || horizon == 0 {
            return Err(Error::shape(
                "Ensemble rollout states/actions",
                format!("[n, {od}] and [n, horizon >= 1, {ad}]"),
                (states.dims(), actions.dims()),
            ));
        }
        Ok(())
    }

    /// Rolls `actions: [n, horizon, action]` out from `states: [n, obs]` under every member:
    /// the member-mean predicted rewards `[n, horizon]` (less `disagreement_penalty` times
    /// their standard deviation over the members) and, with `keep_states`, the member-mean
    /// visited observations `[n, horizon + 1, obs]`.
    pub fn imagine(
        &self,
        states: Tensor<2>,
        actions: Tensor<3>,
        keep_states: bool,
    ) -> Result<(Tensor<2>, Option<Tensor<3>>)> {
        // Planning on the CPU (plain f32 tensors): the whole rollout on the host. Bad shapes
        // go to the tensor ops, whose check names them.
        if self.check_rollout(&states, &actions).is_ok()
            && crate::nn::plain_cpu(&states)
            && crate::nn::plain_cpu(&actions)
            && self
                .weights
                .iter()
                .chain(&self.biases)
                .chain(&self.norm)
                .all(crate::nn::plain_cpu)
            && let Some(out) = self.imagine_host(&states, &actions, keep_states)
        {
            return Ok(out);
        }
        self.imagine_tensor_ops(states, actions, keep_states)
    }

    /// [`Ensemble::imagine`] as tensor operations on any device, also on the CPU where
    /// `imagine` takes the host path (the reference that path is tested and benched against).
    pub fn imagine_tensor_ops(
        &self,
        states: Tensor<2>,
        actions: Tensor<3>,
        keep_states: bool,
    ) -> Result<(Tensor<2>, Option<Tensor<3>>)> {
        self.check_rollout(&states, &actions)?;
        let (e, ad) = (self.config.members, self.action_dim);
        let od = self.obs_dim;
        let [n, _] = states.dims();
        let [_, horizon, _] = actions.dims();
        let mut x: Tensor<3> = states.clone().unsqueeze_dim::<3>(0).repeat_dim(0, e);
        let mut rewards = Vec::with_capacity(horizon);
        let mut visited = Vec::new();
        for t in 0..horizon {
            let at = actions
                .clone()
                .slice(s![.., t..t + 1, ..])
                .reshape([1, n, ad])
                .repeat_dim(0, e);
            let (next, r) = self.step(x, at);
            x = next;
            let mean = r.clone().mean_dim(0);
            let kappa = self.config.disagreement_penalty;
            let r = if kappa > 0.0 {
                // Population standard deviation over the members (an epsilon keeps its
                // gradient finite where they agree exactly).
                let var = (r - mean.clone()).powi_scalar(2).mean_dim(0);
                mean - (var + 1e-12).sqrt() * kappa
            } else {
                mean
            };
            rewards.push(r.reshape([n, 1]));
            if keep_states {
                visited.push(x.clone().mean_dim(0).reshape([n, 1, od]));
            }
        }
        let rewards = Tensor::cat(rewards, 1);
        let visited = keep_states.then(|| {
            let mut all = vec![states.unsqueeze_dim::<3>(1)];
            all.extend(visited);
            Tensor::cat(all, 1)
        });
        Ok((rewards, visited))
    }

    /// [`Ensemble::imagine`] on the host for plain f32 tensors on the CPU; None when a tensor's
    /// data is not f32.
    pub(super) fn imagine_host(
        &self,
        states: &Tensor<2>,
        actions: &Tensor<3>,
        keep_states: bool,
    ) -> Option<(Tensor<2>, Option<Tensor<3>>)> {
        let (e, od, ad) = (self.config.members, self.obs_dim, self.action_dim);
        let (inw, d) = (od + ad, od + 1);
        let [n, _] = states.dims();
        let [_, horizon, _] = actions.dims();
        let data = |t: &Tensor<2>| t.clone().into_data().try_to_vec::<f32>().ok();
        let ws = self.weights.iter().map(data).collect::<Option<Vec<_>>>()?;
        let bs = self.biases.iter().map(data).collect::<Option<Vec<_>>>()?;
        let last = ws.len() - 1;
        // Each member's layers, cut from the stacked parameters; of the last layer only the
        // mean half (the log-variances are not used in planning).
        let members: Vec<Vec<Layer<f32>>> = (0..e)
            .map(|m| {
                ws.iter()
                    .zip(&bs)
                    .zip(&self.weights)
                    .enumerate()
                    .map(|(i, ((w, b), wt))| {
                        let [rows, out] = wt.dims();
                        let d_in = rows / e;
                        let wm = &w[m * d_in * out..(m + 1) * d_in * out];
                        let bm = &b[m * out..(m + 1) * out];
                        if i == last {
                            Layer {
                                w: cols(wm, out, 0, d),
                                b: bm[..d].to_vec(),
                                d_in,
                                d_out: d,
                            }
                        } else {
                            Layer {
                                w: wm.to_vec(),
                                b: bm.to_vec(),
                                d_in,
                                d_out: out,
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let norm = self.norm.iter().map(data).collect::<Option<Vec<_>>>()?;
        let (in_mean, in_std, out_mean, out_std) = (&norm[0], &norm[1], &norm[2], &norm[3]);
        let s0 = data(states)?;
        let acts = actions.clone().into_data().try_to_vec::<f32>().ok()?;
        let kind = self.config.activation;
        let share = 1.0 / e as f32;
        let kappa = self.config.disagreement_penalty as f32;
        // Samples `at..at + n`: their member-mean rewards `[n, horizon]` and visited states.
        let roll = |&(at, n): &(usize, usize)| -> (Vec<f32>, Vec<f32>) {
            let s0 = &s0[at * od..(at + n) * od];
            let acts = &acts[at * horizon * ad..(at + n) * horizon * ad];
            let mut rewards = vec![0f32; n * horizon];
            // Sum of squared member rewards, for the disagreement penalty.
            let mut squares = vec![0f32; if kappa > 0.0 { n * horizon } else { 0 }];
            let mut visited = Vec::new();
            if keep_states {
                visited = vec![0f32; n * (horizon + 1) * od];
                for i in 0..n {
                    let row = i * (horizon + 1) * od;
                    visited[row..row + od].copy_from_slice(&s0[i * od..(i + 1) * od]);
                }
            }
            let (mut inp, mut slope) = (vec![0f32; n * inw], Vec::new());
            for layers in &members {
                let mut x = s0.to_vec();
                for t in 0..horizon {
                    for (i, row) in inp.chunks_mut(inw).enumerate() {
                        for c in 0..od {
                            row[c] = (x[i * od + c] - in_mean[c]) / in_std[c];
                        }
                        let a = &acts[(i * horizon + t) * ad..(i * horizon + t + 1) * ad];
                        for c in 0..ad {
                            row[od + c] =
                                (a[c].clamp(-1.0, 1.0) - in_mean[od + c]) / in_std[od + c];
                        }
                    }
                    let mut h = layers[0].forward(&inp, n);
                    for layer in &layers[1..] {
                        h = layer.forward(&activate(kind, h, &mut slope), n);
                    }
                    for (i, y) in h.chunks(d).enumerate() {
                        let xi = &mut x[i * od..(i + 1) * od];
                        for c in 0..od {
                            xi[c] += y[c] * out_std[c] + out_mean[c];
                        }
                        let r = y[od] * out_std[od] + out_mean[od];
                        rewards[i * horizon + t] += share * r;
                        if kappa > 0.0 {
                            squares[i * horizon + t] += share * r * r;
                        }
                        if keep_states {
                            let row = (i * (horizon + 1) + t + 1) * od;
                            for (v, xc) in visited[row..row + od].iter_mut().zip(xi.iter()) {
                                *v += share * xc;
                            }
                        }
                    }
                }
            }
            if kappa > 0.0 {
                for (r, sq) in rewards.iter_mut().zip(&squares) {
                    *r -= kappa * (sq - *r * *r).max(0.0).sqrt();
                }
            }
            (rewards, visited)
        };
        Some(crate::nn::rssm_host::host_rollout(
            (n, horizon, od),
            keep_states,
            &states.device(),
            roll,
        ))
    }
}
