//! The RSSM's training loss and its gradient on the host: one forward and one backward sweep
//! over the sequence in plain loops, with the matrix products through `gemm` (the library burn's
//! CPU backend multiplies with), instead of one taped tensor op per element-wise step.
//!
//! [`Rssm::loss`](super::Rssm::loss) takes this path for f32 and f64 tensors on the CPU backend
//! and puts the result back on the tape as `total + sum_i <theta_i - theta_i', g_i>` (primes
//! detached, `g_i` this module's gradient): the value is exact and the gradient with respect to
//! every parameter is `g_i`. [`Rssm::loss_tensor_ops`](super::Rssm::loss_tensor_ops) is the same
//! loss op by op, the path on other devices and the reference the tests compare this one with.
//!
//! [`Rssm::imagine`](super::Rssm::imagine) rolls plain f32 tensors out on the host the same
//! way (planning, no tape): the products through `gemm`, the GRU's gating in one vectorised
//! pass, only the prior's mean computed, one reward-head product over every step.
//!
//! Layout: every activation is a row-major `[rows, width]` buffer, row `t * batch + b` for step
//! `t` of sequence `b`; weights are `[in, out]` as in [`Linear`](super::Linear).

use burn::tensor::{Tensor, TensorData};

use super::host_kernels::{
    Layer, Net, Real, cols, pair, put_cols, relu, sigmoid, softplus, squash, tanh,
};
use super::{Linear, Mlp, Rssm, RssmConfig, RssmLoss, SequenceBatch};

/// The RSSM's networks on the host, in `Rssm::parts` order.
pub(crate) struct HostRssm<F> {
    pub encoder: Net<F>,
    pub input: Net<F>,
    pub gru: Net<F>,
    pub prior: Net<F>,
    pub posterior: Net<F>,
    pub obs_head: Net<F>,
    pub reward_head: Net<F>,
}

/// Sizes, and the model's options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape<'a> {
    pub length: usize,
    pub batch: usize,
    pub action: usize,
    pub config: &'a RssmConfig,
}

/// The sequence batch on the host (row-major, time-major rows as in `SequenceBatch`).
pub(crate) struct HostBatch<F> {
    pub obs: Vec<F>,
    pub actions: Vec<F>,
    pub rewards: Vec<F>,
    pub noise: Vec<F>,
}

/// The loss terms, the gradient of `total` per parameter (in `Rssm::params` order) and the
/// posterior states `[rows, deter + stoch]`.
pub(crate) struct HostLoss<F> {
    pub total: f64,
    pub obs: f64,
    pub reward: f64,
    pub kl: f64,
    pub grads: Vec<Vec<F>>,
    pub states: Vec<F>,
}

impl<F: Real> HostRssm<F> {
    /// The loss of `Rssm::loss_tensor_ops` and its gradient.
    pub fn loss(&self, s: &Shape, data: &HostBatch<F>) -> HostLoss<F> {
        let (l, b, c) = (s.length, s.batch, s.config);
        let (d, z, hd, na) = (c.deter, c.stoch, c.hidden, s.action);
        let rows = l * b;
        let min_std = F::of(c.min_std);
        let obs_sq: Vec<F> = data.obs.iter().map(|v| squash(*v, c.symlog)).collect();

        // Forward. The encoder over every observation at once (its output also goes through a
        // ReLU).
        let enc = self.encoder.forward(&obs_sq, rows);
        let embed: Vec<F> = enc[enc.len() - 1].iter().map(|v| relu(*v)).collect();
        let (ui, gi, pi) = (z + na, hd + d, d + hd);
        let mut u_in = vec![F::ZERO; rows * ui]; // [s_{t-1}, a_{t-1}]
        let mut x_in = vec![F::ZERO; rows * hd]; // relu(input layer)
        let mut g_in = vec![F::ZERO; rows * gi]; // [x_t, h_{t-1}]
        let mut reset = vec![F::ZERO; rows * d];
        let mut cand_pre = vec![F::ZERO; rows * d]; // the candidate's part of the gates
        let mut cand = vec![F::ZERO; rows * d];
        let mut update = vec![F::ZERO; rows * d];
        let mut h_all = vec![F::ZERO; rows * d];
        let mut p_in = vec![F::ZERO; rows * pi]; // [h_t, embed_t]
        let mut q1 = vec![F::ZERO; rows * hd];
        let mut q_raw = vec![F::ZERO; rows * 2 * z];
        let mut q_mean = vec![F::ZERO; rows * z];
        let mut q_std = vec![F::ZERO; rows * z];
        let mut s_all = vec![F::ZERO; rows * z];
        for t in 0..l {
            let r = t * b..(t + 1) * b;
            if t > 0 {
                let prev = (t - 1) * b..t * b;
                let u = &mut u_in[r.start * ui..r.end * ui];
                put_cols(u, ui, 0, &s_all[prev.start * z..prev.end * z], z);
                put_cols(u, ui, z, &data.actions[prev.start * na..prev.end * na], na);
            }
            let mut x = self.input.layers[0].forward(&u_in[r.start * ui..r.end * ui], b);
            x.iter_mut().for_each(|v| *v = relu(*v));
            x_in[r.start * hd..r.end * hd].copy_from_slice(&x);
            let gin = &mut g_in[r.start * gi..r.end * gi];
            put_cols(gin, gi, 0, &x, hd);
            if t > 0 {
                put_cols(gin, gi, hd, &h_all[(t - 1) * b * d..t * b * d], d);
            }
            let gates = self.gru.layers[0].forward(gin, b);
            for i in 0..b {
                let g = &gates[i * 3 * d..(i + 1) * 3 * d];
                let row = (r.start + i) * d;
                for j in 0..d {
                    let hp = if t > 0 {
                        h_all[row - b * d + j]
                    } else {
                        F::ZERO
                    };
                    let rs = sigmoid(g[j]);
                    let c = tanh(rs * g[d + j]);
                    let u = sigmoid(g[2 * d + j] - F::ONE);
                    reset[row + j] = rs;
                    cand_pre[row + j] = g[d + j];
                    cand[row + j] = c;
                    update[row + j] = u;
                    h_all[row + j] = u * c + (F::ONE - u) * hp;
                }
            }
            let pin = &mut p_in[r.start * pi..r.end * pi];
            put_cols(pin, pi, 0, &h_all[r.start * d..r.end * d], d);
            put_cols(pin, pi, d, &embed[r.start * hd..r.end * hd], hd);
            let mut a1 = self.posterior.layers[0].forward(pin, b);
            a1.iter_mut().for_each(|v| *v = relu(*v));
            let raw = self.posterior.layers[1].forward(&a1, b);
            q1[r.start * hd..r.end * hd].copy_from_slice(&a1);
            for i in 0..b {
                let row = r.start + i;
                for j in 0..z {
                    let m = raw[i * 2 * z + j];
                    let sd = softplus(raw[i * 2 * z + z + j]) + min_std;
                    q_mean[row * z + j] = m;
                    q_std[row * z + j] = sd;
                    s_all[row * z + j] = m + sd * data.noise[row * z + j];
                }
            }
            q_raw[r.start * 2 * z..r.end * 2 * z].copy_from_slice(&raw);
        }
        // The prior over every step at once, and the KL terms.
        let prior = self.prior.forward(&h_all, rows);
        let p_raw = &prior[prior.len() - 1];
        let mut kl_sum = 0.0;
        let mut ratio = vec![F::ZERO; rows * z];
        let mut delta = vec![F::ZERO; rows * z];
        let mut p_std = vec![F::ZERO; rows * z];
        for row in 0..rows {
            for j in 0..z {
                let k = row * z + j;
                let ps = softplus(p_raw[row * 2 * z + z + j]) + min_std;
                let rho = q_std[k] / ps;
                let dl = (q_mean[k] - p_raw[row * 2 * z + j]) / ps;
                kl_sum += 0.5 * (rho * rho - F::ONE + dl * dl - F::of(2.0) * rho.ln()).to_f64();
                ratio[k] = rho;
                delta[k] = dl;
                p_std[k] = ps;
            }
        }
        let kl = kl_sum / rows as f64;
        // The heads on the features [h_t, s_t].
        let fw = d + z;
        let mut feats = vec![F::ZERO; rows * fw];
        put_cols(&mut feats, fw, 0, &h_all, d);
        put_cols(&mut feats, fw, d, &s_all, z);
        let obs_out = self.obs_head.forward(&feats, rows);
        let obs_err: Vec<F> = obs_out[obs_out.len() - 1]
            .iter()
            .zip(&obs_sq)
            .map(|(p, o)| *p - *o)
            .collect();
        let obs_loss =
            0.5 * obs_err.iter().map(|e| e.to_f64() * e.to_f64()).sum::<f64>() / rows as f64;
        let rr = rows - b;
        let feats_r = &feats[b * fw..];
        let rew_out = self.reward_head.forward(feats_r, rr);
        let rew_err: Vec<F> = rew_out[rew_out.len() - 1]
            .iter()
            .zip(&data.rewards[..rr])
            .map(|(p, r)| *p - squash(*r, c.symlog))
            .collect();
        let rew_loss =
            0.5 * rew_err.iter().map(|e| e.to_f64() * e.to_f64()).sum::<f64>() / rr as f64;
        let total = obs_loss + c.reward_scale * rew_loss + c.kl_scale * kl.max(c.free_nats);

        // Backward.
        let mut grads: Vec<Vec<F>> = self
            .nets()
            .iter()
            .flat_map(|n| n.layers.iter())
            .flat_map(|ly| [vec![F::ZERO; ly.w.len()], vec![F::ZERO; ly.b.len()]])
            .collect();
        let scale = F::of(1.0 / rows as f64);
        let d_obs: Vec<F> = obs_err.iter().map(|e| *e * scale).collect();
        let mut d_feats = self
            .obs_head
            .backward(&feats, &obs_out, rows, d_obs, &mut grads, true)
            .unwrap_or_default();
        let rscale = F::of(c.reward_scale / rr as f64);
        let d_rew: Vec<F> = rew_err.iter().map(|e| *e * rscale).collect();
        if let Some(dr) = self
            .reward_head
            .backward(feats_r, &rew_out, rr, d_rew, &mut grads, true)
        {
            for (g, v) in d_feats[b * fw..].iter_mut().zip(dr) {
                *g += v;
            }
        }
        // The KL term's gradient (zero while the free nats clamp it).
        let ck = if kl >= c.free_nats {
            F::of(c.kl_scale / rows as f64)
        } else {
            F::ZERO
        };
        let mut d_praw = vec![F::ZERO; rows * 2 * z];
        let mut dq_mean_kl = vec![F::ZERO; rows * z];
        let mut dq_std_kl = vec![F::ZERO; rows * z];
        for row in 0..rows {
            for j in 0..z {
                let k = row * z + j;
                let (rho, dl, ps) = (ratio[k], delta[k], p_std[k]);
                d_praw[row * 2 * z + j] = -ck * dl / ps;
                let dps = ck * (F::ONE - rho * rho - dl * dl) / ps;
                d_praw[row * 2 * z + z + j] = dps * sigmoid(p_raw[row * 2 * z + z + j]);
                dq_mean_kl[k] = ck * dl / ps;
                dq_std_kl[k] = ck * (rho / ps - F::ONE / q_std[k]);
            }
        }
        let dh_prior = self
            .prior
            .backward(&h_all, &prior, rows, d_praw, &mut grads, true)
            .unwrap_or_default();
        // Through time, last step first.
        let mut d_gates = vec![F::ZERO; rows * 3 * d];
        let mut d_x = vec![F::ZERO; rows * hd];
        let mut d_q1 = vec![F::ZERO; rows * hd];
        let mut d_qraw = vec![F::ZERO; rows * 2 * z];
        let mut d_embed = vec![F::ZERO; rows * hd];
        let mut dh_carry = vec![F::ZERO; b * d];
        let mut ds_carry = vec![F::ZERO; b * z];
        let post = &self.posterior.layers;
        for t in (0..l).rev() {
            let r0 = t * b;
            let mut dh = vec![F::ZERO; b * d];
            for i in 0..b {
                for j in 0..d {
                    let k = (r0 + i) * d + j;
                    dh[i * d + j] = d_feats[(r0 + i) * fw + j] + dh_prior[k] + dh_carry[i * d + j];
                }
            }
            // The posterior sample s_t = mean + std * noise.
            let dqr = &mut d_qraw[r0 * 2 * z..(r0 + b) * 2 * z];
            for i in 0..b {
                for j in 0..z {
                    let k = (r0 + i) * z + j;
                    let ds = d_feats[(r0 + i) * fw + d + j] + ds_carry[i * z + j];
                    dqr[i * 2 * z + j] = ds + dq_mean_kl[k];
                    let dstd = ds * data.noise[k] + dq_std_kl[k];
                    dqr[i * 2 * z + z + j] = dstd * sigmoid(q_raw[(r0 + i) * 2 * z + z + j]);
                }
            }
            let mut da1 = post[1].input_grad(dqr, b);
            for (g, a) in da1.iter_mut().zip(&q1[r0 * hd..(r0 + b) * hd]) {
                if *a <= F::ZERO {
                    *g = F::ZERO;
                }
            }
            let dpin = post[0].input_grad(&da1, b);
            d_q1[r0 * hd..(r0 + b) * hd].copy_from_slice(&da1);
            for i in 0..b {
                for j in 0..d {
                    dh[i * d + j] += dpin[i * pi + j];
                }
                d_embed[(r0 + i) * hd..(r0 + i + 1) * hd]
                    .copy_from_slice(&dpin[i * pi + d..(i + 1) * pi]);
            }
            // The GRU: h = u c + (1 - u) h_prev, c = tanh(r * g_c).
            let dg = &mut d_gates[r0 * 3 * d..(r0 + b) * 3 * d];
            let mut dh_prev = vec![F::ZERO; b * d];
            for i in 0..b {
                for j in 0..d {
                    let k = (r0 + i) * d + j;
                    let hp = if t > 0 { h_all[k - b * d] } else { F::ZERO };
                    let (u, c, rs) = (update[k], cand[k], reset[k]);
                    let g = dh[i * d + j];
                    let dpre = g * u * (F::ONE - c * c);
                    dg[i * 3 * d + j] = dpre * cand_pre[k] * rs * (F::ONE - rs);
                    dg[i * 3 * d + d + j] = dpre * rs;
                    dg[i * 3 * d + 2 * d + j] = g * (c - hp) * u * (F::ONE - u);
                    dh_prev[i * d + j] = g * (F::ONE - u);
                }
            }
            let dgin = self.gru.layers[0].input_grad(dg, b);
            let dx = &mut d_x[r0 * hd..(r0 + b) * hd];
            for i in 0..b {
                for j in 0..hd {
                    let v = dgin[i * gi + j];
                    dx[i * hd + j] = if x_in[(r0 + i) * hd + j] > F::ZERO {
                        v
                    } else {
                        F::ZERO
                    };
                }
                for j in 0..d {
                    dh_prev[i * d + j] += dgin[i * gi + hd + j];
                }
            }
            if t > 0 {
                let du = self.input.layers[0].input_grad(dx, b);
                ds_carry = cols(&du, ui, 0, z);
                dh_carry = dh_prev;
            }
        }
        // The per-step layers' weight gradients over every step at once.
        let (gw, gb) = pair(&mut grads, self.input.first);
        self.input.layers[0].add_grads(&u_in, &d_x, rows, gw, gb);
        let (gw, gb) = pair(&mut grads, self.gru.first);
        self.gru.layers[0].add_grads(&g_in, &d_gates, rows, gw, gb);
        let (gw, gb) = pair(&mut grads, self.posterior.first + 2);
        post[1].add_grads(&q1, &d_qraw, rows, gw, gb);
        let (gw, gb) = pair(&mut grads, self.posterior.first);
        post[0].add_grads(&p_in, &d_q1, rows, gw, gb);
        // The encoder, through its output ReLU.
        for (g, a) in d_embed.iter_mut().zip(&embed) {
            if *a <= F::ZERO {
                *g = F::ZERO;
            }
        }
        self.encoder
            .backward(&obs_sq, &enc, rows, d_embed, &mut grads, false);
        HostLoss {
            total,
            obs: obs_loss,
            reward: rew_loss,
            kl,
            grads,
            states: feats,
        }
    }

    fn nets(&self) -> [&Net<F>; 7] {
        [
            &self.encoder,
            &self.input,
            &self.gru,
            &self.prior,
            &self.posterior,
            &self.obs_head,
            &self.reward_head,
        ]
    }
}

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
        let data = HostBatch {
            obs: read(&batch.obs)?,
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
        let mut h = cols(&s0, sd, 0, d);
        let mut st = cols(&s0, sd, d, z);
        let fw = d + z;
        let mut feats = vec![0f32; horizon * n * fw];
        let (ui, gi) = (z + na, hd + d);
        for t in 0..horizon {
            let mut u = vec![0f32; n * ui];
            for i in 0..n {
                u[i * ui..i * ui + z].copy_from_slice(&st[i * z..(i + 1) * z]);
                let a = (i * horizon + t) * na;
                u[i * ui + z..(i + 1) * ui].copy_from_slice(&acts[a..a + na]);
            }
            let mut x = input.forward(&u, n);
            x.iter_mut().for_each(|v| *v = relu(*v));
            let mut gin = vec![0f32; n * gi];
            put_cols(&mut gin, gi, 0, &x, hd);
            put_cols(&mut gin, gi, hd, &h, d);
            let g = gru.forward(&gin, n);
            let mut next = vec![0f32; n * d];
            super::fast::gru_gates(&g, &h, d, &mut next);
            h = next;
            let mut p1 = prior_hidden.forward(&h, n);
            p1.iter_mut().for_each(|v| *v = relu(*v));
            st = prior_mean.forward(&p1, n);
            let rows = &mut feats[t * n * fw..(t + 1) * n * fw];
            put_cols(rows, fw, 0, &h, d);
            put_cols(rows, fw, d, &st, z);
        }
        // One reward-head pass over all steps: rows t * n + i.
        let out = reward.forward(&feats, horizon * n);
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
        let device = states.device();
        let rewards = Tensor::<2>::from_data(TensorData::new(rewards, [n, horizon]), &device);
        let visited = keep_states.then(|| {
            let mut v = Vec::with_capacity(n * (horizon + 1) * fw);
            for i in 0..n {
                v.extend_from_slice(&s0[i * sd..(i + 1) * sd]);
                for t in 0..horizon {
                    let row = (t * n + i) * fw;
                    v.extend_from_slice(&feats[row..row + fw]);
                }
            }
            Tensor::<3>::from_data(TensorData::new(v, [n, horizon + 1, fw]), &device)
        });
        Some((rewards, visited))
    }
}

/// The GRU's gating for `parts: [n, 3 d]` and `h: [n, d]` in one vectorised host pass (plain
/// f32 on the CPU; None when the data is not f32).
pub(super) fn gru_host(parts: Tensor<2>, h: Tensor<2>, d: usize) -> Option<Tensor<2>> {
    let [n, _] = h.dims();
    let device = h.device();
    let p: Vec<f32> = parts.into_data().try_into_vec::<f32>().ok()?;
    let hv: Vec<f32> = h.into_data().try_into_vec::<f32>().ok()?;
    let mut out = vec![0f32; n * d];
    crate::nn::fast::gru_gates(&p, &hv, d, &mut out);
    Some(Tensor::from_data(TensorData::new(out, [n, d]), &device))
}

/// A tensor's data on the host as `F` (None when it holds another type).
fn host_data<F: burn::tensor::Element>(t: &Tensor<2>) -> Option<Vec<F>> {
    t.clone().into_data().try_to_vec::<F>().ok()
}

/// A layer's weight and bias on the host as `F`.
fn host_layer<F: Real + burn::tensor::Element>(ly: &Linear) -> Option<Layer<F>> {
    let [d_in, d_out] = ly.weight.dims();
    Some(Layer {
        w: host_data(&ly.weight)?,
        b: host_data(&ly.bias)?,
        d_in,
        d_out,
    })
}
