//! The experiment's config (`configs/cartpole_embed.toml`), validated with errors that name
//! the field.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use dcem::limits::{self, MemoryEstimate};
use dcem::optim::{AdamConfig, PlateauConfig};
use dcem::planning::{LatentPlannerConfig, MlpDecoderConfig};
use dcem::run::check_run_name;
use serde::{Deserialize, Serialize};

/// A full-space CEM baseline: hard elites over the whole `horizon`-step sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Samples per iteration.
    pub n_sample: usize,
    /// Elites per iteration.
    pub n_elite: usize,
    /// Iterations.
    pub n_iter: usize,
}

impl Baseline {
    /// `CEM 100/10/30`.
    pub fn label(&self) -> String {
        format!("CEM {}/{}/{}", self.n_sample, self.n_elite, self.n_iter)
    }
}

/// The ablation grid: one run per latent size (at the base tau) and per tau (at the base latent
/// size), paper fig. 9.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sweep {
    /// Latent sizes to train.
    pub latent_dims: Vec<usize>,
    /// Temperatures to train (0: hard CEM in the latent space, the decoder updated through the
    /// final decode only).
    pub taus: Vec<f64>,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            latent_dims: vec![2, 8, 16],
            taus: vec![0.0, 1.0, 0.1],
        }
    }
}

// ANCHOR: embed_config
/// One experiment, as read from `configs/cartpole_embed.toml`. Defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// Run name: outputs go to `runs/<name>/`.
    pub name: String,
    /// Seed of the decoder's initialisation, the training start states and the solver noise.
    pub seed: u64,
    /// Decoder updates (alg. 2 iterations).
    pub iterations: usize,
    /// Start states per decoder update (the loss is their mean cost; the reference: 1).
    pub batch_states: usize,
    /// Planning horizon (steps of a decoded sequence).
    pub horizon: usize,
    /// Size of the fixed validation set of start states.
    pub val_states: usize,
    /// Seed of the validation set (the same set for every run and baseline).
    pub val_seed: u64,
    /// A JSON file whose `states` (rows `(x, x', cos th, sin th, th')`) are the validation set
    /// instead of `val_states` drawn from `val_seed` (e.g. `data/cartpole_ref_val_states.json`,
    /// the reference implementation's 100 states). Empty: drawn.
    pub val_file: String,
    /// Solve the validation set (and step the schedule) every this many iterations.
    pub val_every: usize,
    /// Write a checkpoint every this many iterations (0: only at validations that improve and
    /// at the end).
    pub checkpoint_every: usize,
    /// Clip the gradient's global L2 norm to this (0: no clipping).
    pub clip_norm: f64,
    /// The decoder's optimiser.
    pub adam: AdamConfig,
    /// Learning-rate schedule on the validation cost.
    pub plateau: PlateauConfig,
    /// The decoder.
    pub decoder: MlpDecoderConfig,
    /// The latent (D)CEM planner.
    pub planner: LatentPlannerConfig,
    /// Full-space CEM baselines solved on the validation set.
    pub baselines: Vec<Baseline>,
    /// Initial standard deviation of the baselines (actions in [-1, 1]; the reference uses half
    /// the action range).
    pub baseline_sigma: f64,
    /// The ablation grid of `sweep`.
    pub sweep: Sweep,
}
// ANCHOR_END: embed_config

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            name: "cartpole_embed".into(),
            seed: 0,
            iterations: 3000,
            batch_states: 1,
            horizon: 20,
            val_states: 100,
            val_seed: 0,
            val_file: String::new(),
            val_every: 100,
            checkpoint_every: 500,
            clip_norm: 1.0,
            adam: AdamConfig {
                lr: 5e-4,
                ..AdamConfig::default()
            },
            plateau: PlateauConfig {
                factor: 0.5,
                patience: 20,
                ..PlateauConfig::default()
            },
            decoder: MlpDecoderConfig::default(),
            planner: LatentPlannerConfig::default(),
            baselines: vec![
                Baseline {
                    n_sample: 100,
                    n_elite: 10,
                    n_iter: 30,
                },
                Baseline {
                    n_sample: 1000,
                    n_elite: 10,
                    n_iter: 10,
                },
            ],
            baseline_sigma: 1.0,
            sweep: Sweep::default(),
        }
    }
}

impl EmbedConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(dcem::train::load_config(path, Self::validate)?)
    }

    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        check_run_name(&self.name)?;
        ensure!(self.iterations >= 1, "`iterations` must be at least 1");
        ensure!(self.batch_states >= 1, "`batch_states` must be at least 1");
        ensure!(self.horizon >= 1, "`horizon` must be at least 1");
        ensure!(self.val_states >= 1, "`val_states` must be at least 1");
        ensure!(self.val_every >= 1, "`val_every` must be at least 1");
        ensure!(
            self.clip_norm >= 0.0 && self.clip_norm.is_finite(),
            "`clip_norm` must be finite and >= 0 (0 turns clipping off)"
        );
        ensure!(
            self.baseline_sigma > 0.0 && self.baseline_sigma.is_finite(),
            "`baseline_sigma` must be finite and > 0"
        );
        for (i, b) in self.baselines.iter().enumerate() {
            ensure!(
                b.n_sample >= 2 && (1..=b.n_sample).contains(&b.n_elite) && b.n_iter >= 1,
                "`baselines[{i}]` needs n_sample >= 2, 1 <= n_elite <= n_sample, n_iter >= 1"
            );
        }
        ensure!(
            self.sweep.latent_dims.iter().all(|d| *d >= 1),
            "`sweep.latent_dims` must all be at least 1"
        );
        ensure!(
            self.sweep.taus.iter().all(|t| t.is_finite() && *t >= 0.0),
            "`sweep.taus` must all be finite and >= 0"
        );
        self.adam.validate().context("in [adam]")?;
        self.plateau.validate().context("in [plateau]")?;
        self.decoder.validate().context("in [decoder]")?;
        self.planner.validate().context("in [planner]")?;
        self.check_sizes()
    }

    /// Bounds on every size and count (`dcem::limits`), then the memory of the largest tensors
    /// (the training solve keeps every iteration on the tape) against the budget.
    fn check_sizes(&self) -> Result<()> {
        for (name, v) in [
            ("batch_states", self.batch_states),
            ("horizon", self.horizon),
            ("val_states", self.val_states),
        ] {
            limits::check_dim(name, v)?;
        }
        for (name, v) in [
            ("iterations", self.iterations),
            ("val_every", self.val_every),
            ("checkpoint_every", self.checkpoint_every),
        ] {
            limits::check_count(name, v)?;
        }
        for (i, b) in self.baselines.iter().enumerate() {
            limits::check_dim("baselines.n_sample", b.n_sample)
                .and_then(|()| limits::check_count("baselines.n_iter", b.n_iter))
                .with_context(|| format!("in baselines[{i}]"))?;
        }
        for d in &self.sweep.latent_dims {
            limits::check_dim("sweep.latent_dims", *d)?;
        }
        let c = &self.planner.cem;
        let widest = self
            .sweep
            .latent_dims
            .iter()
            .copied()
            .fold(self.decoder.latent_dim, usize::max);
        let mut est = MemoryEstimate::new();
        // Per sample: the decoded plan, the cartpole states along it and the decoder's layers.
        let per_sample =
            self.horizon * 6 + self.decoder.hidden * self.decoder.hidden_layers + widest;
        est.add(
            "training solve [batch_states x n_sample x n_iter, plan and states]",
            2.0,
            &[self.batch_states, c.n_sample, c.n_iter, per_sample],
        )
        .add(
            "validation solve [val_states x n_sample, plan and states]",
            2.0,
            &[self.val_states, c.n_sample, per_sample],
        );
        for b in &self.baselines {
            est.add(
                format!("baseline {} [val_states x n_sample x horizon]", b.label()),
                4.0,
                &[self.val_states, b.n_sample, self.horizon, 5],
            );
        }
        est.check("this config")?;
        Ok(())
    }

    /// Short name of the variant (`latent2_tau1`, `latent2_hard`).
    pub fn variant_label(&self) -> String {
        let tau = self.planner.cem.tau;
        let t = if tau == 0.0 {
            "hard".to_string()
        } else {
            format!("tau{tau}")
        };
        format!("latent{}_{t}", self.decoder.latent_dim)
    }

    /// The configs `sweep` trains: this one first, then one per other latent size and per other
    /// tau, each named `<name>/<variant>`.
    pub fn sweep_variants(&self) -> Vec<EmbedConfig> {
        let mut out = vec![self.clone()];
        for &d in &self.sweep.latent_dims {
            if d != self.decoder.latent_dim {
                let mut c = self.clone();
                c.decoder.latent_dim = d;
                out.push(c);
            }
        }
        for &t in &self.sweep.taus {
            if t != self.planner.cem.tau {
                let mut c = self.clone();
                c.planner.cem.tau = t;
                out.push(c);
            }
        }
        out
    }
}
