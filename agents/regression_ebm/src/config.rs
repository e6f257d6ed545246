//! The experiment's config (`configs/regression_{dcem,gd}.toml`), validated with errors that
//! name the field.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use dcem::cem::CemConfig;
use dcem::gd::GdConfig;
use dcem::limits::{self, MemoryEstimate};
use dcem::optim::{AdamConfig, PlateauConfig};
use dcem::run::check_run_name;
use serde::{Deserialize, Serialize};

/// Which differentiable solver approximates `argmin_y E(x, y)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverKind {
    /// DCEM with the `[dcem]` options.
    Dcem,
    /// Unrolled gradient descent with the `[gd]` options.
    Gd,
}

impl SolverKind {
    /// Short name used in tables and legends.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dcem => "DCEM",
            Self::Gd => "unrolled GD",
        }
    }
}

// ANCHOR: regression_config
/// One experiment, as read from `configs/regression_*.toml`. Defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegressionConfig {
    /// Run name: outputs go to `runs/<name>/`.
    pub name: String,
    /// Master seed (weights, point order, solver noise).
    pub seed: u64,
    /// The inner solver: "dcem" or "gd".
    pub solver: SolverKind,
    /// Adam steps in total (the reference run is reported up to 12,000; its config says
    /// 100,000).
    pub updates: usize,
    /// Training points, evenly spaced on [0, 2 pi], targets `x sin x`.
    pub n_points: usize,
    /// Width of each hidden layer of the energy network.
    pub hidden: usize,
    /// Number of hidden layers.
    pub hidden_layers: usize,
    /// Consecutive Adam steps taken on each randomly drawn point.
    pub inner_updates: usize,
    /// Log the full training MSE (and step the schedule) every this many updates.
    pub eval_every: usize,
    /// Write a checkpoint every this many updates (0: only at the end).
    pub checkpoint_every: usize,
    /// Clip the gradient's global L2 norm to this (0: no clipping).
    pub clip_norm: f64,
    /// Start of the inner solvers.
    pub y0: f64,
    /// Test-time ablation: predict with 1..=this many inner steps.
    pub ablation_max_steps: usize,
    /// The outer optimiser.
    pub adam: AdamConfig,
    /// Learning-rate schedule on the training MSE.
    pub plateau: PlateauConfig,
    /// DCEM options (used when `solver = "dcem"`).
    pub dcem: CemConfig,
    /// Unrolled GD options (used when `solver = "gd"`).
    pub gd: GdConfig,
}
// ANCHOR_END: regression_config

impl Default for RegressionConfig {
    fn default() -> Self {
        Self {
            name: "regression_dcem".into(),
            seed: 0,
            solver: SolverKind::Dcem,
            updates: 12_000,
            n_points: 100,
            hidden: 128,
            hidden_layers: 3,
            inner_updates: 3,
            eval_every: 100,
            checkpoint_every: 2_000,
            clip_norm: 1.0,
            y0: 0.0,
            ablation_max_steps: 50,
            adam: AdamConfig::default(),
            plateau: PlateauConfig {
                factor: 0.5,
                patience: 20,
                ..PlateauConfig::default()
            },
            dcem: CemConfig {
                n_sample: 100,
                n_elite: 10,
                n_iter: 10,
                tau: 1.0,
                init_sigma: 7.0,
                normalize: true,
                iter_eps: 1e-4,
                ..CemConfig::default()
            },
            gd: GdConfig::default(),
        }
    }
}

impl RegressionConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(dcem::train::load_config(path, Self::validate)?)
    }

    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        check_run_name(&self.name)?;
        ensure!(self.updates >= 1, "`updates` must be at least 1");
        ensure!(self.n_points >= 2, "`n_points` must be at least 2");
        ensure!(self.hidden >= 1, "`hidden` must be at least 1");
        ensure!(
            self.hidden_layers >= 1,
            "`hidden_layers` must be at least 1"
        );
        ensure!(
            self.inner_updates >= 1,
            "`inner_updates` must be at least 1"
        );
        ensure!(self.eval_every >= 1, "`eval_every` must be at least 1");
        ensure!(
            self.clip_norm >= 0.0 && self.clip_norm.is_finite(),
            "`clip_norm` must be finite and >= 0 (0 turns clipping off)"
        );
        ensure!(self.y0.is_finite(), "`y0` must be finite");
        ensure!(
            self.ablation_max_steps >= 1,
            "`ablation_max_steps` must be at least 1"
        );
        self.adam.validate().context("in [adam]")?;
        self.plateau.validate().context("in [plateau]")?;
        self.dcem.validate().context("in [dcem]")?;
        self.gd.validate().context("in [gd]")?;
        for (name, v) in [
            ("n_points", self.n_points),
            ("hidden", self.hidden),
            ("hidden_layers", self.hidden_layers),
        ] {
            limits::check_dim(name, v)?;
        }
        for (name, v) in [
            ("updates", self.updates),
            ("inner_updates", self.inner_updates),
            ("eval_every", self.eval_every),
            ("checkpoint_every", self.checkpoint_every),
            ("ablation_max_steps", self.ablation_max_steps),
        ] {
            limits::check_count(name, v)?;
        }
        // The evaluation solves every training point at once, every iteration on the tape
        // at most; the ablation does so for up to `ablation_max_steps` steps.
        let steps = self.train_steps().max(self.ablation_max_steps);
        MemoryEstimate::new()
            .add(
                "solve over the training set [n_points x dcem.n_sample x max(inner steps, \
                 ablation_max_steps), hidden x hidden_layers]",
                2.0,
                &[
                    self.n_points,
                    self.dcem.n_sample,
                    steps,
                    self.hidden * self.hidden_layers + 2,
                ],
            )
            .check("this config")?;
        if self.solver == SolverKind::Dcem {
            // The network is trained through the solver's soft top-k: without it the prediction
            // has no gradient with respect to the network.
            ensure!(
                self.dcem.tau > 0.0,
                "`dcem.tau` = 0 (hard elites, plain CEM) gives the energy network no gradient \
                 through the solver, so nothing could be learned: set dcem.tau > 0 (the \
                 paper's 1), or use solver = \"gd\""
            );
            ensure!(
                self.dcem.n_elite < self.dcem.n_sample,
                "`dcem.n_elite` = `dcem.n_sample` ({}) averages every sample, so the prediction \
                 does not depend on the network: set dcem.n_elite below dcem.n_sample (the \
                 paper's 10 of 100)",
                self.dcem.n_sample
            );
        }
        Ok(())
    }

    /// The inner steps the model is trained with (DCEM iterations or GD steps).
    pub fn train_steps(&self) -> usize {
        match self.solver {
            SolverKind::Dcem => self.dcem.n_iter,
            SolverKind::Gd => self.gd.steps,
        }
    }
}
