//! What limits a planet agent, measured on its final-evaluation episodes (never trained on):
//!
//! - the model's open-loop prediction error over the planning horizon: from the belief the
//!   posterior filter holds at step `t` of an episode, the prior imagines the actions actually
//!   taken for `k = 1..H` steps; the predicted observations and rewards are compared with what
//!   happened (root mean square error per `k`, observations averaged over their coordinates);
//! - the planner's predicted return against the realised one: at every decision the plan's
//!   return as the model predicted it over the horizon, against the rewards actually received
//!   over the same `H` decisions that followed (model-predictive control re-plans every step,
//!   so a model that is right still sees the two differ by what re-planning changes).
//!
//! Written into the run folder as `diagnostics.json` and `diagnostics.png`.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Tensor, s};
use dcem::env::RecordedEpisode;
use dcem::model::Model;
use dcem::nn::{BeliefFilter, tensor_from_f64, to_f64_vec};
use dcem::run::atomic_write;
use dcem::run::plot::{LineChart, Series, has_outliers, line_charts};
use serde::{Deserialize, Serialize};

use crate::world::World;

/// The diagnostics of one run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Planning horizon `H` (agent steps).
    pub horizon: usize,
    /// Episodes measured.
    pub episodes: usize,
    /// `k = 1..=H`.
    pub k: Vec<usize>,
    /// Open-loop RMSE of the predicted observation `k` steps ahead (environment units).
    pub obs_rmse: Vec<f64>,
    /// The same per observation coordinate: `obs_rmse_by_coord[c][k - 1]` (what dominates
    /// `obs_rmse`). Empty in diagnostics written before it was measured.
    #[serde(default)]
    pub obs_rmse_by_coord: Vec<Vec<f64>>,
    /// Open-loop RMSE of the predicted reward `k` steps ahead.
    pub reward_rmse: Vec<f64>,
    /// Mean of the predicted minus the actual reward `k` steps ahead (over-prediction > 0).
    pub reward_bias: Vec<f64>,
    /// Start positions the open-loop errors average over.
    pub starts: usize,
    /// Per decision with `H` decisions after it: the plan's predicted return over the horizon.
    pub predicted: Vec<f64>,
    /// The rewards actually received over the same `H` decisions.
    pub realised: Vec<f64>,
}

impl Diagnostics {
    /// Mean predicted minus mean realised return over the horizon (the planner's optimism).
    pub fn optimism(&self) -> f64 {
        let n = self.predicted.len().max(1) as f64;
        (self.predicted.iter().sum::<f64>() - self.realised.iter().sum::<f64>()) / n
    }
}

/// Measures the diagnostics on recorded episodes, given the predicted return of every decision
/// made in them (in order, as [`crate::PlanetAgent::take_plan_log`] returns them).
pub fn diagnose(
    world: &World,
    episodes: &[RecordedEpisode],
    plan_log: &[f64],
    horizon: usize,
) -> Result<Diagnostics> {
    ensure!(horizon >= 1, "the planning horizon must be at least 1");
    let mut d = Diagnostics {
        horizon,
        episodes: episodes.len(),
        k: (1..=horizon).collect(),
        ..Diagnostics::default()
    };
    // Predicted against realised returns, decision by decision.
    let decisions: usize = episodes.iter().map(|e| e.actions.len()).sum();
    ensure!(
        plan_log.len() == decisions,
        "{} logged plans for {decisions} decisions",
        plan_log.len()
    );
    let mut at = 0;
    for ep in episodes {
        let t_max = ep.rewards.len();
        for t in 0..t_max {
            if t + horizon <= t_max {
                d.predicted.push(plan_log[at + t]);
                d.realised.push(ep.rewards[t..t + horizon].iter().sum());
            }
        }
        at += t_max;
    }
    // Open-loop errors: every start with a whole horizon ahead of it.
    let Some(open) = open_loop(world, episodes, horizon)? else {
        return Ok(d);
    };
    let (starts, od) = (open.starts, open.obs_dim);
    d.starts = starts;
    let (pred_obs, pred_rew, obs_next, rew) = (open.pred_obs, open.pred_rew, open.obs, open.rew);
    let (mut se_o, mut se_r, mut bias) =
        (vec![0.0; horizon], vec![0.0; horizon], vec![0.0; horizon]);
    let mut se_c = vec![vec![0.0; horizon]; od];
    for i in 0..starts {
        for k in 0..horizon {
            let row = i * horizon + k;
            let mut e = 0.0;
            for (c, se) in se_c.iter_mut().enumerate() {
                let sq = (pred_obs[row * od + c] - obs_next[row * od + c]).powi(2);
                se[k] += sq;
                e += sq;
            }
            se_o[k] += e / od as f64;
            let r = pred_rew[row] - rew[row];
            se_r[k] += r * r;
            bias[k] += r;
        }
    }
    let n = starts as f64;
    let rmse = |se: &[f64]| se.iter().map(|v| (v / n).sqrt()).collect::<Vec<f64>>();
    d.obs_rmse = rmse(&se_o);
    d.obs_rmse_by_coord = se_c.iter().map(|se| rmse(se)).collect();
    d.reward_rmse = rmse(&se_r);
    d.reward_bias = bias.iter().map(|v| v / n).collect();
    Ok(d)
}

/// Open-loop predictions from every start with a whole horizon ahead, with what happened.
struct OpenLoop {
    starts: usize,
    obs_dim: usize,
    /// `[starts * horizon * obs]` predicted observations, then the recorded ones.
    pred_obs: Vec<f64>,
    obs: Vec<f64>,
    /// `[starts * horizon]` predicted rewards, then the recorded ones.
    pred_rew: Vec<f64>,
    rew: Vec<f64>,
}

/// The RSSM imagines from the belief its posterior filters up to the start; the ensemble from
/// the observation at the start.
fn open_loop(
    world: &World,
    episodes: &[RecordedEpisode],
    horizon: usize,
) -> Result<Option<OpenLoop>> {
    let (mut states, mut actions, mut obs, mut rew) = (vec![], vec![], vec![], vec![]);
    let mut starts = 0;
    let ad = match world {
        World::Rssm(w) => Model::action_dim(w.filter.model()),
        World::Ensemble(w) => Model::action_dim(&w.plain),
    };
    for ep in episodes {
        let t_max = ep.actions.len();
        if t_max < horizon {
            continue;
        }
        let mut filter = match world {
            World::Rssm(w) => Some(BeliefFilter::new(w.filter.model().clone())),
            World::Ensemble(_) => None,
        };
        let mut prev = vec![0.0; ad];
        for t in 0..=t_max - horizon {
            if let Some(f) = &mut filter {
                f.update(&ep.obs[t], &prev)?;
                states.extend(to_f64_vec(f.belief().clone())?);
            } else {
                states.extend_from_slice(&ep.obs[t]);
            }
            for j in 0..horizon {
                actions.extend_from_slice(&ep.actions[t + j]);
                obs.extend_from_slice(&ep.obs[t + j + 1]);
                rew.push(ep.rewards[t + j]);
            }
            starts += 1;
            prev = ep.actions[t].clone();
        }
    }
    if starts == 0 {
        return Ok(None);
    }
    let od = obs.len() / (starts * horizon);
    let (pred_obs, pred_rew) = match world {
        World::Rssm(w) => {
            let model = w.filter.model();
            let device = model.gru.layers[0].weight.device();
            let sd = model.config().state_dim();
            let b = tensor_from_f64(&states, [starts, sd], &device)?;
            let a = tensor_from_f64(&actions, [starts * horizon, ad], &device)?
                .reshape([starts, horizon, ad]);
            let (pred_rew, visited) = model.imagine(b, a, true)?;
            let visited = visited.context("the model returned no imagined states")?;
            let feats = visited
                .slice(s![.., 1..horizon + 1, ..])
                .reshape([starts * horizon, sd]);
            let pred_obs: Tensor<2> = model.obs_from_model(model.obs_head.forward(feats));
            (to_f64_vec(pred_obs)?, to_f64_vec(pred_rew)?)
        }
        World::Ensemble(w) => {
            let device = w.plain.normaliser()[0].device();
            let b = tensor_from_f64(&states, [starts, od], &device)?;
            let a = tensor_from_f64(&actions, [starts * horizon, ad], &device)?
                .reshape([starts, horizon, ad]);
            let (pred_rew, visited) = w.plain.imagine(b, a, true)?;
            let visited = visited.context("the model returned no imagined states")?;
            let pred_obs = visited.slice(s![.., 1..horizon + 1, ..]);
            (to_f64_vec(pred_obs)?, to_f64_vec(pred_rew)?)
        }
    };
    Ok(Some(OpenLoop {
        starts,
        obs_dim: od,
        pred_obs,
        obs,
        pred_rew,
        rew,
    }))
}

/// Writes `diagnostics.json` and `diagnostics.png` (open-loop errors against `k`; predicted and
/// realised `H`-step returns along the measured decisions) into `dir`.
pub fn write(dir: &Path, d: &Diagnostics) -> Result<()> {
    atomic_write(
        &dir.join("diagnostics.json"),
        serde_json::to_string_pretty(d)?.as_bytes(),
    )?;
    let ks: Vec<f64> = d.k.iter().map(|&k| k as f64).collect();
    let pts = |v: &[f64]| ks.iter().copied().zip(v.iter().copied()).collect();
    let errors = LineChart {
        title: format!(
            "open-loop prediction error ({} starts, {} evaluation episodes)",
            d.starts, d.episodes
        ),
        x_label: "steps ahead k".into(),
        y_label: "RMSE".into(),
        log_y: true,
        series: vec![
            Series::new("observation", pts(&d.obs_rmse)),
            Series::new("reward", pts(&d.reward_rmse)),
        ],
        ..Default::default()
    };
    let idx = |v: &[f64]| v.iter().enumerate().map(|(i, &x)| (i as f64, x)).collect();
    let returns = LineChart {
        title: format!(
            "{}-step return: predicted by the plan vs received (mean gap {:+.2})",
            d.horizon,
            d.optimism()
        ),
        x_label: "decision (evaluation episodes in a row)".into(),
        y_label: "return over the horizon".into(),
        symlog_y: has_outliers(d.predicted.iter().chain(&d.realised).copied()),
        series: vec![
            Series::new("predicted by the model", idx(&d.predicted)),
            Series::new("received", idx(&d.realised)),
        ],
        ..Default::default()
    };
    line_charts(&dir.join("diagnostics.png"), &[errors, returns], (720, 400))?;
    Ok(())
}
