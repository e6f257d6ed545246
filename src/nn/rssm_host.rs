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
//! A batch of at least `SPLIT_MIN_BATCH` sequences is swept as two halves side by side, each
//! on its own thread with its products kept on it, and their gradients summed: the halves are
//! fixed by the batch size, not by the number of threads (on one thread they run one after
//! the other).
//! (`rssm_cpu.rs` calls this, and rolls [`Rssm::imagine`](super::Rssm::imagine) out on the host
//! with its samples split the same way.)
//!
//! Layout: every activation is a row-major `[rows, width]` buffer, row `t * batch + b` for step
//! `t` of sequence `b`; weights are `[in, out]` as in [`Linear`](super::Linear).

use burn::tensor::{Tensor, TensorData};

use super::RssmConfig;
use super::host_kernels::{Net, Real, cols, pair, put_cols, relu, sigmoid, softplus, squash, tanh};

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
    /// Observations already in the model's space (`Rssm::obs_to_model`).
    pub obs: Vec<F>,
    pub actions: Vec<F>,
    pub rewards: Vec<F>,
    pub noise: Vec<F>,
}

impl<F: Copy> HostBatch<F> {
    /// Sequences `at..at + n` of a batch of `b` sequences of `l` steps, rows still time-major.
    fn part(&self, l: usize, b: usize, at: usize, n: usize) -> Self {
        let take = |v: &[F]| -> Vec<F> {
            let w = v.len().checked_div(l * b).unwrap_or(0);
            (0..l)
                .flat_map(|t| v[(t * b + at) * w..(t * b + at + n) * w].iter().copied())
                .collect()
        };
        HostBatch {
            obs: take(&self.obs),
            actions: take(&self.actions),
            rewards: take(&self.rewards),
            noise: take(&self.noise),
        }
    }
}

/// `b` rows as `(first, count)` parts: two halves from `SPLIT_MIN_BATCH` rows on, else one.
pub(super) fn batch_parts(b: usize) -> Vec<(usize, usize)> {
    if b >= SPLIT_MIN_BATCH {
        vec![(0, b / 2), (b / 2, b - b / 2)]
    } else {
        vec![(0, b)]
    }
}

/// A host rollout of `n` rows: `roll` on every part of the batch ([`batch_parts`], side by side
/// where it pays), its rewards `[n, horizon]` and, with `keep_states`, its visited states
/// `[n, horizon + 1, width]` (each part's in row order) as f32 tensors on `device`.
pub(super) fn host_rollout(
    (n, horizon, width): (usize, usize, usize),
    keep_states: bool,
    device: &burn::tensor::Device,
    roll: impl Fn(&(usize, usize)) -> (Vec<f32>, Vec<f32>) + Sync,
) -> (Tensor<2>, Option<Tensor<3>>) {
    let (mut rewards, mut visited) = (Vec::new(), Vec::new());
    for (r, v) in on_parts(&batch_parts(n), roll) {
        rewards.extend(r);
        visited.extend(v);
    }
    let rewards = Tensor::<2>::from_data(TensorData::new(rewards, [n, horizon]), device);
    let visited = keep_states
        .then(|| Tensor::<3>::from_data(TensorData::new(visited, [n, horizon + 1, width]), device));
    (rewards, visited)
}

/// `work` on every part, the parts side by side on rayon's threads, each with its products on
/// its own thread while the parts keep every thread busy.
pub(super) fn on_parts<T: Sync, R: Send>(parts: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let serial = parts.len() >= rayon::current_num_threads();
    let run = |p: &T| super::host_kernels::with_serial_products(serial, || work(p));
    match parts {
        [a, b] => {
            let (x, y) = rayon::join(|| run(a), || run(b));
            vec![x, y]
        }
        _ => parts.iter().map(run).collect(),
    }
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

/// Batches at least this large are split in two halves of rows (sequences, samples), each
/// swept on its own thread: the per-step products of a recurrence are too small to split
/// across threads well, and the halves need no synchronisation between steps.
const SPLIT_MIN_BATCH: usize = 8;

/// One part's forward sweep: what its backward sweep reads, and its unnormalised loss sums.
struct Forward<F> {
    obs_sq: Vec<F>,
    enc: Vec<Vec<F>>,
    embed: Vec<F>,
    u_in: Vec<F>,
    x_in: Vec<F>,
    g_in: Vec<F>,
    reset: Vec<F>,
    cand_pre: Vec<F>,
    cand: Vec<F>,
    update: Vec<F>,
    h_all: Vec<F>,
    p_in: Vec<F>,
    q1: Vec<F>,
    q_raw: Vec<F>,
    q_std: Vec<F>,
    prior: Vec<Vec<F>>,
    ratio: Vec<F>,
    delta: Vec<F>,
    p_std: Vec<F>,
    feats: Vec<F>,
    obs_out: Vec<Vec<F>>,
    obs_err: Vec<F>,
    rew_out: Vec<Vec<F>>,
    rew_err: Vec<F>,
    /// `0.5 sum err^2` of the observations and rewards, and the KL summed over rows.
    sums: [f64; 3],
}

/// The loss gradient's seeds: `d total / d obs_err`, `/ d rew_err` per unit error, and the KL
/// term's weight per row on its prior and on its posterior side (equal without KL balancing;
/// zero while the free nats clamp it).
#[derive(Clone, Copy)]
struct Seeds<F> {
    obs: F,
    reward: F,
    kl_prior: F,
    kl_posterior: F,
}

impl<F: Real> HostRssm<F> {
    /// The loss of `Rssm::loss_tensor_ops` and its gradient. A batch of at least
    /// `SPLIT_MIN_BATCH` sequences is swept as two halves side by side (`rayon::join`); the
    /// halves are fixed by the batch size alone, not by the number of threads.
    pub fn loss(&self, s: &Shape, data: &HostBatch<F>) -> HostLoss<F> {
        let (l, b, c) = (s.length, s.batch, s.config);
        let (rows, rr) = (l * b, l.saturating_sub(1) * b);
        let parts = batch_parts(b);
        let split: Vec<(Shape, HostBatch<F>)> = parts
            .iter()
            .map(|&(at, n)| (Shape { batch: n, ..*s }, data.part(l, b, at, n)))
            .collect();
        let fwd = on_parts(&split, |(ps, pd)| self.forward(ps, pd));
        let sum = |i: usize| fwd.iter().map(|f| f.sums[i]).sum::<f64>();
        let obs_loss = sum(0) / rows as f64;
        let rew_loss = sum(1) / rr as f64;
        let kl = sum(2) / rows as f64;
        let total = obs_loss + c.reward_scale * rew_loss + c.kl_scale * kl.max(c.free_nats);
        // KL balancing keeps the value and splits the gradient: a share `b` to the prior, `1 - b`
        // to the posterior (both sides have the KL's value, so one clamp decides for both).
        let (to_prior, to_posterior) = match c.kl_balance {
            Some(b) => (b, 1.0 - b),
            None => (1.0, 1.0),
        };
        let kl_seed = |share: f64| {
            if kl >= c.free_nats {
                F::of(c.kl_scale * share / rows as f64)
            } else {
                F::ZERO
            }
        };
        let seeds = Seeds {
            obs: F::of(1.0 / rows as f64),
            reward: F::of(c.reward_scale / rr as f64),
            kl_prior: kl_seed(to_prior),
            kl_posterior: kl_seed(to_posterior),
        };
        let jobs: Vec<_> = split.iter().zip(&fwd).collect();
        let mut part_grads = on_parts(&jobs, |((ps, pd), f)| self.backward(ps, pd, f, seeds));
        let mut grads = part_grads.swap_remove(0);
        for other in part_grads {
            for (g, o) in grads.iter_mut().zip(other) {
                g.iter_mut().zip(o).for_each(|(a, v)| *a += v);
            }
        }
        // The posterior states back in the batch's time-major row order.
        let fw = c.deter + c.stoch;
        let mut states = vec![F::ZERO; rows * fw];
        for (&(at, n), f) in parts.iter().zip(&fwd) {
            for t in 0..l {
                let dst = (t * b + at) * fw;
                states[dst..dst + n * fw].copy_from_slice(&f.feats[t * n * fw..(t + 1) * n * fw]);
            }
        }
        HostLoss {
            total,
            obs: obs_loss,
            reward: rew_loss,
            kl,
            grads,
            states,
        }
    }

    /// One part's forward sweep (its own `Shape` and rows).
    fn forward(&self, s: &Shape, data: &HostBatch<F>) -> Forward<F> {
        let (l, b, c) = (s.length, s.batch, s.config);
        let (d, z, hd, na) = (c.deter, c.stoch, c.hidden, s.action);
        let rows = l * b;
        let min_std = F::of(c.min_std);
        let obs_sq = data.obs.clone();

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
        let obs_sum = 0.5 * obs_err.iter().map(|e| e.to_f64() * e.to_f64()).sum::<f64>();
        let rr = rows - b;
        let feats_r = &feats[b * fw..];
        let rew_out = self.reward_head.forward(feats_r, rr);
        let rew_err: Vec<F> = rew_out[rew_out.len() - 1]
            .iter()
            .zip(&data.rewards[..rr])
            .map(|(p, r)| *p - squash(*r, c.symlog))
            .collect();
        let rew_sum = 0.5 * rew_err.iter().map(|e| e.to_f64() * e.to_f64()).sum::<f64>();
        Forward {
            obs_sq,
            enc,
            embed,
            u_in,
            x_in,
            g_in,
            reset,
            cand_pre,
            cand,
            update,
            h_all,
            p_in,
            q1,
            q_raw,
            q_std,
            prior,
            ratio,
            delta,
            p_std,
            feats,
            obs_out,
            obs_err,
            rew_out,
            rew_err,
            sums: [obs_sum, rew_sum, kl_sum],
        }
    }

    /// One part's backward sweep: the gradient of the whole batch's loss (`seeds` carry its
    /// normalisation) through this part's rows, per parameter.
    fn backward(
        &self,
        s: &Shape,
        data: &HostBatch<F>,
        f: &Forward<F>,
        seeds: Seeds<F>,
    ) -> Vec<Vec<F>> {
        let (l, b, c) = (s.length, s.batch, s.config);
        let (d, z, hd) = (c.deter, c.stoch, c.hidden);
        let (rows, rr) = (l * b, l.saturating_sub(1) * b);
        let (ui, gi, pi, fw) = (z + s.action, hd + d, d + hd, d + z);
        let p_raw = &f.prior[f.prior.len() - 1];
        let feats_r = &f.feats[b * fw..];
        let mut grads: Vec<Vec<F>> = self
            .nets()
            .iter()
            .flat_map(|n| n.layers.iter())
            .flat_map(|ly| [vec![F::ZERO; ly.w.len()], vec![F::ZERO; ly.b.len()]])
            .collect();
        let d_obs: Vec<F> = f.obs_err.iter().map(|e| *e * seeds.obs).collect();
        let mut d_feats = self
            .obs_head
            .backward(&f.feats, &f.obs_out, rows, d_obs, &mut grads, true)
            .unwrap_or_default();
        let d_rew: Vec<F> = f.rew_err.iter().map(|e| *e * seeds.reward).collect();
        if let Some(dr) = self
            .reward_head
            .backward(feats_r, &f.rew_out, rr, d_rew, &mut grads, true)
        {
            for (g, v) in d_feats[b * fw..].iter_mut().zip(dr) {
                *g += v;
            }
        }
        // The KL term's gradient (zero while the free nats clamp it).
        let (cp, ck) = (seeds.kl_prior, seeds.kl_posterior);
        let mut d_praw = vec![F::ZERO; rows * 2 * z];
        let mut dq_mean_kl = vec![F::ZERO; rows * z];
        let mut dq_std_kl = vec![F::ZERO; rows * z];
        for row in 0..rows {
            for j in 0..z {
                let k = row * z + j;
                let (rho, dl, ps) = (f.ratio[k], f.delta[k], f.p_std[k]);
                d_praw[row * 2 * z + j] = -cp * dl / ps;
                let dps = cp * (F::ONE - rho * rho - dl * dl) / ps;
                d_praw[row * 2 * z + z + j] = dps * sigmoid(p_raw[row * 2 * z + z + j]);
                dq_mean_kl[k] = ck * dl / ps;
                dq_std_kl[k] = ck * (rho / ps - F::ONE / f.q_std[k]);
            }
        }
        let dh_prior = self
            .prior
            .backward(&f.h_all, &f.prior, rows, d_praw, &mut grads, true)
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
                    dqr[i * 2 * z + z + j] = dstd * sigmoid(f.q_raw[(r0 + i) * 2 * z + z + j]);
                }
            }
            let mut da1 = post[1].input_grad(dqr, b);
            for (g, a) in da1.iter_mut().zip(&f.q1[r0 * hd..(r0 + b) * hd]) {
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
                    let hp = if t > 0 { f.h_all[k - b * d] } else { F::ZERO };
                    let (u, c, rs) = (f.update[k], f.cand[k], f.reset[k]);
                    let g = dh[i * d + j];
                    let dpre = g * u * (F::ONE - c * c);
                    dg[i * 3 * d + j] = dpre * f.cand_pre[k] * rs * (F::ONE - rs);
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
                    dx[i * hd + j] = if f.x_in[(r0 + i) * hd + j] > F::ZERO {
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
        self.input.layers[0].add_grads(&f.u_in, &d_x, rows, gw, gb);
        let (gw, gb) = pair(&mut grads, self.gru.first);
        self.gru.layers[0].add_grads(&f.g_in, &d_gates, rows, gw, gb);
        let (gw, gb) = pair(&mut grads, self.posterior.first + 2);
        post[1].add_grads(&f.q1, &d_qraw, rows, gw, gb);
        let (gw, gb) = pair(&mut grads, self.posterior.first);
        post[0].add_grads(&f.p_in, &d_q1, rows, gw, gb);
        // The encoder, through its output ReLU.
        for (g, a) in d_embed.iter_mut().zip(&f.embed) {
            if *a <= F::ZERO {
                *g = F::ZERO;
            }
        }
        self.encoder
            .backward(&f.obs_sq, &f.enc, rows, d_embed, &mut grads, false);
        grads
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
