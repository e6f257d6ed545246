//! A terminal value for the planner (`[value]`, with `dynamics = "ensemble"`): a network
//! `V(observation)` fitted by n-step temporal differences to the replay buffer's real
//! transitions, bootstrapped from a Polyak-averaged copy of itself; the acting planner's cost
//! then counts `discount^horizon * V` of the observation each imagined rollout ends in
//! ([`dcem::model::TerminalValue`]), so that a horizon of a dozen steps sees what lies beyond it
//! (TD-MPC's and LOOP's terminal value). The value is of the agent's own past behaviour (the
//! buffer's actions: the planners that filled it, with their exploration noise), not of an
//! optimal policy. The network reads observations normalised as the ensemble's inputs are, and
//! predicts the value times `1 - discount` (a mean reward per step, of the rewards' scale).

use anyhow::{Result, ensure};
use burn::tensor::{Device, Tensor};
use dcem::nn::{Activation, Mlp, tensor_from_f64, to_f64_vec};
use dcem::optim::{Adam, AdamConfig};
use dcem::replay::ReplayBuffer;
use dcem::run::Checkpoint;
use dcem::train::{gradient_step, to_device};
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The widest hidden layer and the largest batch `[value]` accepts.
const MAX_WIDTH: usize = 4096;
const MAX_BATCH: usize = 65_536;
const MAX_OFFLINE_STEPS: usize = 10_000_000;
const MAX_RECENT: usize = 1_000_000;

// ANCHOR: value_config
/// The terminal value's network and training (`[value]`; off unless `enabled`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValueConfig {
    /// Learn the value and plan with it.
    pub enabled: bool,
    /// Units per hidden layer.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// The optimiser.
    pub adam: AdamConfig,
    /// Clip the gradient's global norm to this (0: no clipping).
    pub clip_norm: f64,
    /// Discount per agent step, in (0, 1).
    pub discount: f64,
    /// Rewards summed before bootstrapping (n of the n-step target).
    pub n_step: usize,
    /// Transitions per value update (one update per model update).
    pub batch: usize,
    /// Fit the value to the last this many episodes of the buffer only (0: the whole buffer):
    /// the value of the recent behaviour rather than of every planner that filled the buffer.
    pub recent_episodes: usize,
    /// Fraction of the network blended into the target copy after each update, in (0, 1].
    pub polyak: f64,
    /// Value updates on the replay buffer of `init_from` before the first episode (a value for
    /// a model trained without one); writes `value_offline.csv`.
    pub offline_steps: usize,
}
// ANCHOR_END: value_config

impl Default for ValueConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            hidden: 256,
            layers: 2,
            activation: Activation::Elu,
            adam: AdamConfig {
                lr: 3e-4,
                ..AdamConfig::default()
            },
            clip_norm: 100.0,
            discount: 0.99,
            n_step: 5,
            batch: 256,
            recent_episodes: 0,
            polyak: 0.01,
            offline_steps: 0,
        }
    }
}

impl ValueConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        for (name, v, max) in [
            ("value.hidden", self.hidden, MAX_WIDTH),
            ("value.layers", self.layers, 16),
            ("value.n_step", self.n_step, 1000),
            ("value.batch", self.batch, MAX_BATCH),
        ] {
            ensure!(
                (1..=max).contains(&v),
                "`{name}` must be in 1..={max}, got {v}"
            );
        }
        ensure!(
            self.recent_episodes <= MAX_RECENT,
            "`value.recent_episodes` must be at most {MAX_RECENT} (0: the whole buffer), got {}",
            self.recent_episodes
        );
        ensure!(
            self.offline_steps <= MAX_OFFLINE_STEPS,
            "`value.offline_steps` must be at most {MAX_OFFLINE_STEPS}, got {}",
            self.offline_steps
        );
        ensure!(
            self.discount > 0.0 && self.discount < 1.0,
            "`value.discount` must be in (0, 1), got {}",
            self.discount
        );
        ensure!(
            self.polyak > 0.0 && self.polyak <= 1.0,
            "`value.polyak` must be in (0, 1], got {}",
            self.polyak
        );
        ensure!(
            self.clip_norm.is_finite() && self.clip_norm >= 0.0,
            "`value.clip_norm` must be finite and >= 0, got {}",
            self.clip_norm
        );
        self.adam
            .validate()
            .map_err(|e| anyhow::anyhow!("in [value.adam]: {e}"))
    }

    /// The value's weight in a plan's cost: `discount^horizon`.
    pub fn weight(&self, horizon: usize) -> f64 {
        self.discount.powi(horizon.min(i32::MAX as usize) as i32)
    }
}

/// The value network (autodiff device), its plain copy (planning) and its target copy.
pub(crate) struct ValueLearner {
    config: ValueConfig,
    net: Mlp,
    plain: Mlp,
    target: Mlp,
    adam: Adam,
}

/// `(o - mean) / std` over the observation columns of the ensemble's input normaliser.
fn normalise(obs: Tensor<2>, norm: &[Tensor<2>; 4]) -> Tensor<2> {
    let od = obs.dims()[1];
    let mean = norm[0].clone().slice(burn::tensor::s![.., 0..od]);
    let std = norm[1].clone().slice(burn::tensor::s![.., 0..od]);
    (obs - mean) / std
}

impl ValueLearner {
    /// A fresh value for observations of width `obs_dim`; the target starts as a copy.
    pub fn new(
        config: &ValueConfig,
        obs_dim: usize,
        autodiff: &Device,
        plain: &Device,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        config.validate()?;
        let mut sizes = vec![obs_dim];
        sizes.extend(std::iter::repeat_n(config.hidden, config.layers));
        sizes.push(1);
        let net = Mlp::new(&sizes, config.activation, autodiff, rng)?;
        let plain_net = copy_to(&net, plain)?;
        Ok(Self {
            adam: Adam::new(config.adam.clone(), net.params().len())?,
            target: plain_net.clone(),
            plain: plain_net,
            net,
            config: config.clone(),
        })
    }

    /// The values `[n]` of observations `[n, obs]` (plain device) under the plain copy, with
    /// the ensemble's plain normaliser.
    pub fn values(&self, obs: Tensor<2>, norm: &[Tensor<2>; 4]) -> dcem::Result<Tensor<1>> {
        Ok(self.scaled(&self.plain, obs, norm))
    }

    fn scaled(&self, net: &Mlp, obs: Tensor<2>, norm: &[Tensor<2>; 4]) -> Tensor<1> {
        let n = obs.dims()[0];
        net.forward(normalise(obs, norm))
            .reshape([n])
            .mul_scalar(1.0 / (1.0 - self.config.discount))
    }

    /// One update on `batch` n-step targets from `buffer`: `norm` is the ensemble's normaliser
    /// on the autodiff device, `plain_norm` on the plain one. Returns the loss (in units of
    /// the value times `1 - discount`, squared); an error when it is not finite.
    pub fn step(
        &mut self,
        buffer: &ReplayBuffer,
        norm: &[Tensor<2>; 4],
        plain_norm: &[Tensor<2>; 4],
        rng: &mut ChaCha8Rng,
    ) -> Result<f64> {
        let (n, b, od) = (self.config.n_step, self.config.batch, buffer.obs_dim());
        let chunks = buffer.sample_recent(b, n + 1, self.config.recent_episodes, rng)?;
        let plain = plain_norm[0].device();
        let device = norm[0].device();
        let last = tensor_from_f64(&chunks.obs[n * b * od..(n + 1) * b * od], [b, od], &plain)?;
        let boot = to_f64_vec(self.scaled(&self.target, last, plain_norm))?;
        let g = self.config.discount;
        let scale = 1.0 - g;
        let targets: Vec<f64> = (0..b)
            .map(|i| {
                let rewards: f64 = (0..n)
                    .map(|k| g.powi(k as i32) * chunks.rewards[k * b + i])
                    .sum();
                (rewards + g.powi(n as i32) * boot[i]) * scale
            })
            .collect();
        let first = tensor_from_f64(&chunks.obs[..b * od], [b, od], &device)?;
        let targets = tensor_from_f64(&targets, [b], &device)?;
        let tracked = self.net.clone().require_grad();
        let pred = tracked.forward(normalise(first, norm)).reshape([b]);
        let loss = (pred - targets).powi_scalar(2).mean();
        let value = to_f64_vec(loss.clone())?[0];
        ensure!(
            value.is_finite(),
            "the value loss is not finite ({value}): lower value.adam.lr or check the rewards"
        );
        let new = gradient_step(
            loss,
            &tracked.params(),
            self.net.params(),
            &mut self.adam,
            self.config.clip_norm,
        )?;
        self.net.set_params(new)?;
        self.net = self.net.detached();
        self.plain = copy_to(&self.net, &plain)?;
        let tau = self.config.polyak;
        let blended = self
            .target
            .params()
            .into_iter()
            .zip(self.plain.params())
            .map(|(t, p)| t.mul_scalar(1.0 - tau) + p.mul_scalar(tau))
            .collect();
        self.target.set_params(blended)?;
        Ok(value)
    }

    /// Stores the network, its target copy and optimiser.
    pub fn put(&self, ck: &mut Checkpoint) -> Result<()> {
        ck.put_mlp("value", &self.net)?;
        ck.put_mlp("value_target", &self.target)?;
        ck.put_adam("value_adam", &self.adam)?;
        Ok(())
    }

    /// Loads what [`ValueLearner::put`] stored; `Ok(false)` when the checkpoint has no value
    /// (a run started without one: the value starts fresh).
    pub fn load(&mut self, ck: &Checkpoint, autodiff: &Device, plain: &Device) -> Result<bool> {
        if !ck.has_tensor("value.layers.0.weight") {
            return Ok(false);
        }
        let hint = "is [value] the same as the checkpoint's?";
        let ctx = |e: dcem::Error| anyhow::anyhow!("loading the value ({hint}): {e}");
        ck.load_mlp("value", &mut self.net, autodiff).map_err(ctx)?;
        ck.load_mlp("value_target", &mut self.target, plain)
            .map_err(ctx)?;
        self.adam = ck
            .adam(
                "value_adam",
                self.config.adam.clone(),
                self.net.params().len(),
                autodiff,
            )
            .map_err(ctx)?;
        self.plain = copy_to(&self.net, plain)?;
        Ok(true)
    }
}

/// A copy of `net` on `device` (off the tape on a plain device).
fn copy_to(net: &Mlp, device: &Device) -> Result<Mlp> {
    let mut out = net.clone();
    out.set_params(to_device(net.params(), device))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use burn::tensor::TensorData;
    use dcem::replay::EpisodeRecord;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// An ensemble normaliser that leaves inputs and targets as they are.
    fn identity_norm(od: usize, ad: usize, device: &Device) -> [Tensor<2>; 4] {
        let t =
            |v: f32, n: usize| Tensor::<2>::from_data(TensorData::new(vec![v; n], [1, n]), device);
        [
            t(0.0, od + ad),
            t(1.0, od + ad),
            t(0.0, od + 1),
            t(1.0, od + 1),
        ]
    }

    /// Rewards `1 + o[0]` of i.i.d. observations: `V(o) = o[0] + 1 / (1 - discount)`, which
    /// needs the reward of the observation's own step and the bootstrap from `n` steps on.
    #[test]
    fn n_step_targets_learn_the_value_of_a_known_process() {
        let (od, ad) = (3, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut buffer = ReplayBuffer::new(od, ad);
        for _ in 0..8 {
            let mut ep = EpisodeRecord::default();
            for _ in 0..50 {
                let obs: Vec<f64> = (0..od).map(|_| rng.random_range(-1.0..1.0)).collect();
                ep.push(&obs, &[0.0], 1.0 + obs[0]).unwrap();
            }
            buffer.push(ep).unwrap();
        }
        let plain = Device::flex();
        let autodiff = plain.clone().autodiff();
        let norm = |device: &Device| identity_norm(od, ad, device);
        let config = ValueConfig {
            enabled: true,
            hidden: 32,
            discount: 0.5,
            n_step: 2,
            batch: 64,
            polyak: 0.2,
            adam: AdamConfig {
                lr: 3e-3,
                ..AdamConfig::default()
            },
            ..ValueConfig::default()
        };
        let mut value = ValueLearner::new(&config, od, &autodiff, &plain, &mut rng).unwrap();
        let (n_ad, n_plain) = (norm(&autodiff), norm(&plain));
        let mut last = f64::NAN;
        for _ in 0..600 {
            last = value.step(&buffer, &n_ad, &n_plain, &mut rng).unwrap();
        }
        let probe = Tensor::<2>::from_data(
            TensorData::new(vec![0.8f32, 0.0, 0.0, -0.8, 0.3, -0.3], [2, od]),
            &plain,
        );
        let v = to_f64_vec(value.values(probe, &n_plain).unwrap()).unwrap();
        assert!((v[0] - 2.8).abs() < 0.15, "V(0.8, ..) = {}, want 2.8", v[0]);
        assert!(
            (v[1] - 1.2).abs() < 0.15,
            "V(-0.8, ..) = {}, want 1.2",
            v[1]
        );
        assert!(last < 0.05, "final loss {last}");
        // The target copy and optimiser travel through a checkpoint.
        let mut ck = Checkpoint::new();
        value.put(&mut ck).unwrap();
        let mut fresh = ValueLearner::new(&config, od, &autodiff, &plain, &mut rng).unwrap();
        assert!(fresh.load(&ck, &autodiff, &plain).unwrap());
        assert_eq!(
            to_f64_vec(fresh.target.params()[0].clone()).unwrap(),
            to_f64_vec(value.target.params()[0].clone()).unwrap()
        );
    }

    /// With `recent_episodes`, the targets come from the newest episodes only: old episodes
    /// paying 100 a step and new ones 0 give a first loss near the untrained network's output
    /// scale instead of near 100^2 (targets are in units of a reward per step).
    #[test]
    fn recent_episodes_restrict_the_targets_to_the_newest_episodes() {
        let (od, ad) = (2, 1);
        let mut buffer = ReplayBuffer::new(od, ad);
        for e in 0..6 {
            let mut ep = EpisodeRecord::default();
            for t in 0..20 {
                let obs = [0.1 * t as f64, -0.05 * t as f64];
                ep.push(&obs, &[0.0], if e < 4 { 100.0 } else { 0.0 })
                    .unwrap();
            }
            buffer.push(ep).unwrap();
        }
        let plain = Device::flex();
        let autodiff = plain.clone().autodiff();
        let norm = |device: &Device| identity_norm(od, ad, device);
        let first_loss = |recent_episodes: usize| {
            let config = ValueConfig {
                enabled: true,
                hidden: 16,
                batch: 64,
                discount: 0.5,
                recent_episodes,
                ..ValueConfig::default()
            };
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut value = ValueLearner::new(&config, od, &autodiff, &plain, &mut rng).unwrap();
            value
                .step(&buffer, &norm(&autodiff), &norm(&plain), &mut rng)
                .unwrap()
        };
        let (recent, all) = (first_loss(2), first_loss(0));
        assert!(recent < 10.0, "loss on the 2 newest episodes {recent}");
        assert!(all > 1000.0, "loss on the whole buffer {all}");
    }

    #[test]
    fn bad_value_options_are_named() {
        for (config, field) in [
            (
                ValueConfig {
                    discount: 1.0,
                    ..ValueConfig::default()
                },
                "value.discount",
            ),
            (
                ValueConfig {
                    polyak: 0.0,
                    ..ValueConfig::default()
                },
                "value.polyak",
            ),
            (
                ValueConfig {
                    hidden: 1 << 40,
                    ..ValueConfig::default()
                },
                "value.hidden",
            ),
            (
                ValueConfig {
                    n_step: 0,
                    ..ValueConfig::default()
                },
                "value.n_step",
            ),
            (
                ValueConfig {
                    offline_steps: usize::MAX,
                    ..ValueConfig::default()
                },
                "value.offline_steps",
            ),
            (
                ValueConfig {
                    recent_episodes: usize::MAX,
                    ..ValueConfig::default()
                },
                "value.recent_episodes",
            ),
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        assert!((ValueConfig::default().weight(12) - 0.99f64.powi(12)).abs() < 1e-15);
    }
}
