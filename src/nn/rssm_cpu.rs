//! The RSSM's host paths on the CPU, as [`Rssm`] calls them: the loss and gradient of
//! `rssm_host.rs` put back on the tape, and [`Rssm::imagine`](super::Rssm::imagine) for plain
//! f32 tensors (what planning calls): the products through `gemm`, the GRU's gating in one
//! vectorised pass, only the prior's mean computed, one reward-head product over every step,
//! the samples split in two halves side by side as the loss splits its sequences.

use burn::tensor::{Tensor, TensorData};

use super::host_kernels::{Layer, Net, Real, cols, relu};
use super::rssm_host::{HostBatch, HostRssm, Shape};
use super::{Linear, Mlp, Rssm, RssmLoss, SequenceBatch};

impl Rssm {
    /// [`Rssm::loss`] on the host in `F` (None when a tensor's data is not `F`).
    pub(super) fn loss_host<F: Real + burn::tensor::Element>(
        &self,
        batch: &SequenceBatch,
        params: &[Tensor<2>],
    ) -> Option<RssmLoss> {
        let read = host_data::<F>;
        let mut first = 0;
        let mut net = |m: &Mlp| -> Option<Net<F>> {
            let layers = m
                .layers
                .iter()
                .map(host_layer)
                .collect::<Option<Vec<_>>>()?;
            let out = Net { first, layers };
            first += 2 * m.layers.len();
            Some(out)
        };
        let model = HostRssm {
            encoder: net(&self.encoder)?,
            input: net(&self.input)?,
            gru: net(&self.gru)?,
            prior: net(&self.prior)?,
            posterior: net(&self.posterior)?,
            obs_head: net(&self.obs_head)?,
            reward_head: net(&self.reward_head)?,
        };
        let mut obs = read(&batch.obs)?;
        self.obs_to_model_host(&mut obs);
        let data = HostBatch {
            obs,
            actions: read(&batch.actions)?,
            rewards: read(&batch.rewards)?,
            noise: read(&batch.noise)?,
        };
        let c = self.config();
        let shape = Shape {
            length: batch.length,
            batch: batch.batch,
            action: crate::model::Model::action_dim(self),
            config: c,
        };
        let out = model.loss(&shape, &data);
        let device = batch.obs.device();
        let dtype = batch.obs.dtype();
        let scalar =
            |v: f64| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), (&device, dtype));
        let mut total = scalar(out.total);
        for (p, g) in params.iter().zip(out.grads) {
            if p.is_tracked() {
                let g = Tensor::<2>::from_data(TensorData::new(g, p.dims()), (&device, dtype));
                let moved = p.clone() - p.clone().detach();
                total = total + (moved * g).sum();
            }
        }
        let rows = batch.length * batch.batch;
        let states = Tensor::<2>::from_data(
            TensorData::new(out.states, [rows, c.state_dim()]),
            (&device, dtype),
        );
        Some(RssmLoss {
            total,
            obs: scalar(out.obs),
            reward: scalar(out.reward),
            kl: scalar(out.kl),
            states,
        })
    }

    /// [`Rssm::imagine`] on the host for plain f32 tensors on the CPU (what planning calls):
    /// the same products and gates in one pass per step, without a tensor op per step. None
    /// when a tensor's data is not f32.
    pub(super) fn imagine_host(
        &self,
        states: &Tensor<2>,
        actions: &Tensor<3>,
        keep_states: bool,
    ) -> Option<(Tensor<2>, Option<Tensor<3>>)> {
        let [n, sd] = states.dims();
        let [_, horizon, na] = actions.dims();
        let c = self.config();
        let (d, z, hd) = (c.deter, c.stoch, c.hidden);
        let layer = |m: &Mlp, i: usize| host_layer::<f32>(&m.layers[i]);
        let input = layer(&self.input, 0)?;
        let gru = layer(&self.gru, 0)?;
        let prior_hidden = layer(&self.prior, 0)?;
        // Only the prior's mean is used: the first `z` outputs of its last layer.
        let last = layer(&self.prior, 1)?;
        let prior_mean = Layer {
            w: cols(&last.w, last.d_out, 0, z),
            b: last.b[..z].to_vec(),
            d_in: last.d_in,
            d_out: z,
        };
        let reward = Net {
            layers: (0..self.reward_head.layers.len())
                .map(|i| layer(&self.reward_head, i))
                .collect::<Option<Vec<_>>>()?,
            first: 0,
        };
        let s0 = host_data::<f32>(states)?;
        let acts = actions.clone().into_data().try_to_vec::<f32>().ok()?;
        let fw = d + z;
        // Samples `at..at + n`: their rewards `[n, horizon]` and visited states.
        let roll = |&(at, n): &(usize, usize)| -> (Vec<f32>, Vec<f32>) {
            let s0 = &s0[at * sd..(at + n) * sd];
            let acts = &acts[at * horizon * na..(at + n) * horizon * na];
            // Every step's deterministic and stochastic states, rows t * n + i; the products
            // take their inputs as column blocks, so nothing is copied side by side.
            let h0 = cols(s0, sd, 0, d);
            let s_init = cols(s0, sd, d, z);
            let mut h_all = vec![0f32; horizon * n * d];
            let mut s_all = vec![0f32; horizon * n * z];
            let mut a_t = vec![0f32; n * na];
            for t in 0..horizon {
                for (i, a) in a_t.chunks_mut(na).enumerate() {
                    let at = (i * horizon + t) * na;
                    a.copy_from_slice(&acts[at..at + na]);
                }
                let (h_done, h_next) = h_all.split_at_mut(t * n * d);
                let h = if t == 0 {
                    &h0[..]
                } else {
                    &h_done[(t - 1) * n * d..]
                };
                let st = if t == 0 {
                    &s_init[..]
                } else {
                    &s_all[(t - 1) * n * z..t * n * z]
                };
                let mut x = input.forward_blocks(&[(st, z), (&a_t, na)], n);
                x.iter_mut().for_each(|v| *v = relu(*v));
                let g = gru.forward_blocks(&[(&x, hd), (h, d)], n);
                let h_new = &mut h_next[..n * d];
                super::fast::gru_gates(&g, h, d, h_new);
                let mut p1 = prior_hidden.forward(h_new, n);
                p1.iter_mut().for_each(|v| *v = relu(*v));
                let mean = prior_mean.forward(&p1, n);
                s_all[t * n * z..(t + 1) * n * z].copy_from_slice(&mean);
            }
            // One reward-head pass over all steps: rows t * n + i.
            let rows = horizon * n;
            let first = reward.layers[0].forward_blocks(&[(&h_all, d), (&s_all, z)], rows);
            let out = reward.forward_from_first(first, rows);
            let r = &out[out.len() - 1];
            let mut rewards = vec![0f32; n * horizon];
            for t in 0..horizon {
                for i in 0..n {
                    let v = r[t * n + i];
                    rewards[i * horizon + t] = if c.symlog {
                        let m = v.abs().min(30.0).exp() - 1.0;
                        if v < 0.0 { -m } else { m }
                    } else {
                        v
                    };
                }
            }
            let mut visited = Vec::new();
            if keep_states {
                visited.reserve(n * (horizon + 1) * fw);
                for i in 0..n {
                    visited.extend_from_slice(&s0[i * sd..(i + 1) * sd]);
                    for t in 0..horizon {
                        let row = t * n + i;
                        visited.extend_from_slice(&h_all[row * d..(row + 1) * d]);
                        visited.extend_from_slice(&s_all[row * z..(row + 1) * z]);
                    }
                }
            }
            (rewards, visited)
        };
        Some(super::rssm_host::host_rollout(
            (n, horizon, fw),
            keep_states,
            &states.device(),
            roll,
        ))
    }
}

/// A tensor's data on the host as `F` (None when it holds another type).
pub(super) fn host_data<F: burn::tensor::Element>(t: &Tensor<2>) -> Option<Vec<F>> {
    t.clone().into_data().try_to_vec::<F>().ok()
}

/// A layer's weight and bias on the host as `F`.
pub(super) fn host_layer<F: Real + burn::tensor::Element>(ly: &Linear) -> Option<Layer<F>> {
    let [d_in, d_out] = ly.weight.dims();
    Some(Layer {
        w: host_data(&ly.weight)?,
        b: host_data(&ly.bias)?,
        d_in,
        d_out,
    })
}
