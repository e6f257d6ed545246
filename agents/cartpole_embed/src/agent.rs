//! Alg. 2's pieces: start states, the latent DCEM planner over the decoder, one decoder step
//! through DCEM, validation, and the full-space CEM baselines.

use std::f64::consts::PI;
use std::time::Instant;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor};
use dcem::cem::CemConfig;
use dcem::model::Model;
use dcem::nn::tensor_from_f64;
use dcem::optim::Adam;
use dcem::planning::{
    CemPlanner, CemPlannerConfig, LatentDcemPlanner, LatentPlannerConfig, MlpDecoder,
};
use dcem::run::Checkpoint;
use dcem::train::gradient_step;
use dcem_envs::SwingupModel;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::*;

/// `n` start states `(x, x', cos th, sin th, th')` with `x, x' ~ U(-0.5, 0.5)`,
/// `th ~ U(-pi, pi)`, `th' ~ U(-1, 1)`, row-major.
pub fn start_states(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut out = Vec::with_capacity(5 * n);
    for _ in 0..n {
        let x = rng.random_range(-0.5..0.5);
        let dx = rng.random_range(-0.5..0.5);
        let th: f64 = rng.random_range(-PI..PI);
        let dth = rng.random_range(-1.0..1.0);
        out.extend([x, dx, th.cos(), th.sin(), dth]);
    }
    out
}

/// The fixed validation states of `config`, `[n, 5]`: read from `config.val_file`, else
/// `val_states` drawn from `val_seed`.
pub fn validation_states(config: &EmbedConfig, device: &Device) -> Result<Tensor<2>> {
    if !config.val_file.is_empty() {
        let v = read_states(Path::new(&config.val_file))?;
        return Ok(tensor_from_f64(&v, [v.len() / 5, 5], device)?);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.val_seed);
    let v = start_states(config.val_states, &mut rng);
    Ok(tensor_from_f64(&v, [config.val_states, 5], device)?)
}

/// Start states from a JSON file with a `states` array of `(x, x', cos th, sin th, th')` rows,
/// row-major.
pub fn read_states(path: &Path) -> Result<Vec<f64>> {
    #[derive(Deserialize)]
    struct File {
        states: Vec<Vec<f64>>,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the validation states {}", path.display()))?;
    let f: File = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected a JSON object with `states`, rows of 5 numbers",
            path.display()
        )
    })?;
    ensure!(!f.states.is_empty(), "{}: no states", path.display());
    for (i, row) in f.states.iter().enumerate() {
        ensure!(
            row.len() == 5 && row.iter().all(|v| v.is_finite()),
            "{}: state {i} is not 5 finite numbers (x, x', cos th, sin th, th')",
            path.display()
        );
    }
    Ok(f.states.concat())
}

/// The latent planner of `config` around a fresh decoder (initialised from `config.seed`).
pub fn new_planner(config: &EmbedConfig, device: &Device) -> Result<LatentDcemPlanner<MlpDecoder>> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let decoder = MlpDecoder::new(
        &config.decoder,
        config.horizon,
        1,
        (-1.0, 1.0),
        device,
        &mut rng,
    )?;
    let planner_cfg = LatentPlannerConfig {
        seed: config.seed ^ 0x5851_f42d_4c95_7f2d,
        ..config.planner.clone()
    };
    Ok(LatentDcemPlanner::new(planner_cfg, decoder)?)
}

/// One decoder update (alg. 2): solve from `x0: [n, 5]` with DCEM, the mean cost of the
/// decoded solutions, backward through the solver, clipping, Adam. Returns the mean cost.
pub fn train_step(
    planner: &mut LatentDcemPlanner<MlpDecoder>,
    adam: &mut Adam,
    x0: Tensor<2>,
    clip_norm: f64,
) -> Result<f64> {
    let params = planner.decoder().net.params();
    let tracked = planner.decoder().clone().require_grad();
    *planner.decoder_mut() = tracked;
    let plan = dcem::planner::Planner::plan(planner, &SwingupModel, x0.clone())?;
    let loss = SwingupModel.cost(x0, plan.actions)?.mean();
    let value = loss.clone().into_scalar::<f64>();
    ensure!(
        value.is_finite(),
        "the training cost is {value}: the decoder diverged (lower adam.lr or clip_norm)"
    );
    let new = gradient_step(
        loss,
        &planner.decoder().net.params(),
        params,
        adam,
        clip_norm,
    )?;
    let decoder = planner.decoder_mut();
    decoder.net.set_params(new)?;
    *decoder = decoder.detached();
    Ok(value)
}

/// Mean cost of the planner's solutions on `states` (no gradient), and the per-state costs.
pub fn validate_planner(
    planner: &mut LatentDcemPlanner<MlpDecoder>,
    states: Tensor<2>,
) -> Result<(f64, Vec<f64>)> {
    let detached = planner.decoder().detached();
    *planner.decoder_mut() = detached;
    let plan = dcem::planner::Planner::plan(planner, &SwingupModel, states)?;
    let costs = plan.diagnostics.cost;
    Ok((costs.iter().sum::<f64>() / costs.len() as f64, costs))
}

/// A baseline's result on the validation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineResult {
    /// `CEM 100/10/30`.
    pub label: String,
    /// Mean cost over the validation states.
    pub mean_cost: f64,
    /// Wall time of the batched solve divided by the number of states, in ms.
    pub ms_per_state: f64,
}

pub(crate) fn full_cem(config: &EmbedConfig, b: &Baseline) -> Result<CemPlanner> {
    Ok(CemPlanner::new(CemPlannerConfig {
        horizon: config.horizon,
        action_low: -1.0,
        action_high: 1.0,
        warm_start: false,
        seed: config.seed,
        cem: CemConfig {
            n_sample: b.n_sample,
            n_elite: b.n_elite,
            n_iter: b.n_iter,
            tau: 0.0,
            init_sigma: config.baseline_sigma,
            ..CemConfig::default()
        },
    })?)
}

/// Solves the validation set with each full-space CEM baseline of `config`.
pub fn run_baselines(config: &EmbedConfig, device: &Device) -> Result<Vec<BaselineResult>> {
    let states = validation_states(config, device)?;
    config
        .baselines
        .iter()
        .map(|b| {
            let mut planner = full_cem(config, b)?;
            let t0 = Instant::now();
            let plan = dcem::planner::Planner::plan(&mut planner, &SwingupModel, states.clone())?;
            let ms = 1e3 * t0.elapsed().as_secs_f64() / states.dims()[0] as f64;
            let c = &plan.diagnostics.cost;
            Ok(BaselineResult {
                label: b.label(),
                mean_cost: c.iter().sum::<f64>() / c.len() as f64,
                ms_per_state: ms,
            })
        })
        .collect()
}

/// Loads a checkpoint written by a run: its config and the planner with the trained decoder.
pub fn load_planner(
    path: &Path,
    device: &Device,
) -> Result<(EmbedConfig, LatentDcemPlanner<MlpDecoder>)> {
    let ck = Checkpoint::load(path).with_context(|| format!("loading {}", path.display()))?;
    let config: EmbedConfig = ck.meta("config")?;
    let mut planner = new_planner(&config, device)?;
    ck.load_mlp("decoder", &mut planner.decoder_mut().net, device)?;
    planner.set_rng(ck.rng("rng.planner")?);
    Ok((config, planner))
}
