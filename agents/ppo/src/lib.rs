//! Plain PPO (CleanRL's `ppo_continuous_action.py`): a Gaussian policy around a tanh MLP mean,
//! a tanh MLP value function, `num_envs` environments stepped in lockstep for `num_steps` steps
//! per update, GAE, clipped surrogate, linear learning-rate annealing.
//!
//! Actions are sampled unclipped (their log-probabilities are of the sampled values) and clipped
//! to the action space before the environment sees them. Episodes cut by a time limit are
//! bootstrapped from the value of their final observation.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::env::{Env, Space};
use dcem::rl::{MlpPolicy, Ppo, PpoConfig, RolloutBatch, gae};
use dcem::run::plot::{LineChart, Series, line_charts};
use dcem::run::{
    Checkpoint, EvalSummary, MetricsCsv, RunDir, RunOptions, atomic_write, check_run_name,
    progress_bar,
};
use dcem_envs::{EnvSpec, make_env};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The policy network's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyNet {
    /// Hidden units per layer.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
}

impl Default for PolicyNet {
    fn default() -> Self {
        Self {
            hidden: 64,
            layers: 2,
        }
    }
}

/// A plain-PPO experiment (`configs/ppo_cartpole.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoAgentConfig {
    /// Run folder name under the runs directory.
    pub name: String,
    /// Seed of the networks, the sampling and the environments.
    pub seed: u64,
    /// Environment steps in total (over all environments).
    pub total_steps: usize,
    /// Environments stepped in lockstep.
    pub num_envs: usize,
    /// Steps per environment per update.
    pub num_steps: usize,
    /// Anneal the learning rate linearly to 0 over the run.
    pub anneal_lr: bool,
    /// Episodes of the final evaluation (mean action, no noise).
    pub eval_episodes: usize,
    /// The environment.
    pub env: EnvSpec,
    /// The policy mean's network.
    pub policy: PolicyNet,
    /// PPO's options.
    pub ppo: PpoConfig,
}

impl Default for PpoAgentConfig {
    fn default() -> Self {
        Self {
            name: "ppo_cartpole".into(),
            seed: 1,
            total_steps: 200_000,
            num_envs: 4,
            num_steps: 128,
            anneal_lr: true,
            eval_episodes: 20,
            env: EnvSpec::Cartpole,
            policy: PolicyNet::default(),
            ppo: PpoConfig::default(),
        }
    }
}

impl PpoAgentConfig {
    /// Reads and validates a TOML config.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config {}", path.display()))?;
        let cfg: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_run_name(&self.name)?;
        ensure!(self.num_envs >= 1, "num_envs must be at least 1");
        ensure!(self.num_steps >= 1, "num_steps must be at least 1");
        ensure!(
            self.total_steps >= self.num_envs * self.num_steps,
            "total_steps ({}) must cover at least one update of num_envs x num_steps = {}",
            self.total_steps,
            self.num_envs * self.num_steps
        );
        ensure!(
            self.policy.hidden >= 1 && self.policy.layers >= 1,
            "policy.hidden and policy.layers must be at least 1"
        );
        self.ppo.validate()?;
        Ok(())
    }

    /// Updates in the run.
    pub fn updates(&self) -> usize {
        self.total_steps / (self.num_envs * self.num_steps)
    }
}

/// Metrics columns (CleanRL's names).
pub const METRICS: [&str; 12] = [
    "global_step",
    "charts/episodic_return",
    "charts/episodes",
    "charts/learning_rate",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "charts/std",
    "charts/SPS",
];

fn box_space(env: &dyn Env) -> Result<(Vec<f64>, Vec<f64>)> {
    match env.action_space() {
        Space::Box(b) => Ok((b.low().to_vec(), b.high().to_vec())),
        Space::Discrete(_) => anyhow::bail!(
            "PPO here needs a Box action space (a Gaussian policy); use kind = \"cartpole\" for \
             the continuous CartPole"
        ),
    }
}

fn clip(a: &[f64], (low, high): &(Vec<f64>, Vec<f64>)) -> Vec<f64> {
    a.iter()
        .zip(low.iter().zip(high))
        .map(|(v, (l, h))| v.clamp(*l, *h))
        .collect()
}

/// Evaluates the mean action (no sampling) for `episodes` episodes on the evaluation seeds
/// (1_000_000 + i).
pub fn evaluate(ppo: &Ppo<MlpPolicy>, env: &mut dyn Env, episodes: usize) -> Result<EvalSummary> {
    let space = box_space(env)?;
    let mut returns = Vec::with_capacity(episodes);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (mut secs, mut acts) = (0.0, 0usize);
    for i in 0..episodes {
        let mut obs = env.reset(Some(1_000_000 + i as u64))?;
        let mut ret = 0.0;
        loop {
            let t0 = Instant::now();
            let a = ppo.act(&obs, &[0], true, &mut rng)?.actions;
            secs += t0.elapsed().as_secs_f64();
            acts += 1;
            let step = env.step(&clip(&a, &space))?;
            ret += step.reward;
            obs = step.obs;
            if step.terminated || step.truncated {
                break;
            }
        }
        returns.push(ret);
    }
    Ok(EvalSummary::new(
        "PPO, mean action",
        returns,
        1e3 * secs / acts.max(1) as f64,
    ))
}

/// What [`train`] returns.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The run folder.
    pub dir: std::path::PathBuf,
    /// The final evaluation.
    pub eval: EvalSummary,
    /// Steps at which the mean training episodic return first reached 450 (CartPole's bar), if it
    /// did.
    pub first_450: Option<usize>,
}

/// Runs the experiment, writing `runs/<name>/`: `config.toml`, `metrics.csv` (one row per
/// update), `learning_curves.png`, `checkpoints/latest.safetensors` (the final learner) and
/// `eval.json`.
pub fn train(config: &PpoAgentConfig, opts: &RunOptions, device: &Device) -> Result<TrainOutcome> {
    config.validate()?;
    ensure!(
        opts.existing != dcem::run::Existing::Resume,
        "plain PPO runs take minutes and are not resumable: rerun with --overwrite"
    );
    let mut envs = (0..config.num_envs)
        .map(|_| make_env(&config.env))
        .collect::<dcem::Result<Vec<_>>>()?;
    let space = box_space(envs[0].as_ref())?;
    let obs_dim = envs[0].observation_space().flat_dim();
    let act_dim = space.0.len();
    let dir = RunDir::create(opts.runs_dir.join(&config.name), opts.existing)?;
    dir.write_config(config)?;
    let mut metrics = MetricsCsv::create(dir.file("metrics.csv"), &METRICS)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let policy = MlpPolicy::new(
        obs_dim,
        act_dim,
        config.policy.hidden,
        config.policy.layers,
        device,
        &mut rng,
    )?;
    let mut ppo = Ppo::new(config.ppo.clone(), policy, obs_dim, device, &mut rng)?;

    let (ne, ns) = (config.num_envs, config.num_steps);
    let mut episode_seed = config.seed.wrapping_mul(1_000_003);
    let mut obs: Vec<Vec<f64>> = Vec::with_capacity(ne);
    for env in envs.iter_mut() {
        obs.push(env.reset(Some(episode_seed))?);
        episode_seed += 1;
    }
    let mut ep_ret = vec![0.0; ne];
    let updates = config.updates();
    let bar = progress_bar(opts.progress, updates as u64, &config.name, "updates");
    let mut global_step = 0usize;
    let mut first_450 = None;
    let mut recent: Vec<f64> = Vec::new();
    let start = Instant::now();
    for update in 0..updates {
        if config.anneal_lr {
            ppo.set_lr_fraction(1.0 - update as f64 / updates as f64);
        }
        let t0 = Instant::now();
        // Per environment: the stream of steps of this rollout.
        let mut o_buf = vec![Vec::with_capacity(ns * obs_dim); ne];
        let mut a_buf = vec![Vec::with_capacity(ns * act_dim); ne];
        let mut lp_buf = vec![Vec::with_capacity(ns); ne];
        let mut v_buf = vec![Vec::with_capacity(ns); ne];
        let mut r_buf = vec![Vec::with_capacity(ns); ne];
        let mut term_buf = vec![Vec::with_capacity(ns); ne];
        let mut end_buf = vec![Vec::with_capacity(ns); ne];
        // The value of the observation after each step (filled once known).
        let mut vn_buf = vec![vec![0.0; ns]; ne];
        let mut finished = Vec::new();
        for t in 0..ns {
            let flat: Vec<f64> = obs.iter().flatten().copied().collect();
            let acted = ppo.act(&flat, &vec![0; ne], false, &mut rng)?;
            let values = ppo.values(&flat)?;
            let mut finals = Vec::new();
            for e in 0..ne {
                let a = &acted.actions[e * act_dim..(e + 1) * act_dim];
                let step = envs[e].step(&clip(a, &space))?;
                ensure!(
                    step.obs.iter().all(|v| v.is_finite()) && step.reward.is_finite(),
                    "the environment returned a non-finite observation or reward"
                );
                o_buf[e].extend_from_slice(&obs[e]);
                a_buf[e].extend_from_slice(a);
                lp_buf[e].push(acted.logp[e]);
                v_buf[e].push(values[e]);
                r_buf[e].push(step.reward);
                term_buf[e].push(step.terminated);
                end_buf[e].push(step.terminated || step.truncated);
                ep_ret[e] += step.reward;
                if step.terminated || step.truncated {
                    finals.push((e, step.obs));
                    finished.push(ep_ret[e]);
                    ep_ret[e] = 0.0;
                    obs[e] = envs[e].reset(Some(episode_seed))?;
                    episode_seed += 1;
                } else {
                    obs[e] = step.obs;
                }
            }
            if t > 0 {
                for e in 0..ne {
                    if !end_buf[e][t - 1] {
                        vn_buf[e][t - 1] = values[e];
                    }
                }
            }
            if !finals.is_empty() {
                let flat: Vec<f64> = finals.iter().flat_map(|(_, o)| o.iter().copied()).collect();
                let v = ppo.values(&flat)?;
                for ((e, _), v) in finals.iter().zip(v) {
                    vn_buf[*e][t] = v;
                }
            }
            global_step += ne;
        }
        // Bootstrap the last step of each stream from the current observation's value.
        let flat: Vec<f64> = obs.iter().flatten().copied().collect();
        let last = ppo.values(&flat)?;
        let mut batch = RolloutBatch::default();
        let (mut adv_all, mut ret_all) = (Vec::new(), Vec::new());
        for e in 0..ne {
            if !end_buf[e][ns - 1] {
                vn_buf[e][ns - 1] = last[e];
            }
            let (adv, ret) = gae(
                &r_buf[e],
                &v_buf[e],
                &vn_buf[e],
                &term_buf[e],
                &end_buf[e],
                config.ppo.gamma,
                config.ppo.gae_lambda,
            )?;
            adv_all.extend(adv);
            ret_all.extend(ret);
            batch.inputs.extend_from_slice(&o_buf[e]);
            batch.actions.extend_from_slice(&a_buf[e]);
            batch.logp.extend_from_slice(&lp_buf[e]);
            batch.values.extend_from_slice(&v_buf[e]);
        }
        batch.value_inputs = batch.inputs.clone();
        batch.seeds = vec![0; batch.logp.len()];
        batch.set_advantages(adv_all, ret_all)?;
        let stats = ppo.update(&batch, &mut rng)?;
        let sps = (ne * ns) as f64 / t0.elapsed().as_secs_f64();
        let mean_ret = if finished.is_empty() {
            f64::NAN
        } else {
            finished.iter().sum::<f64>() / finished.len() as f64
        };
        recent.extend(&finished);
        if recent.len() > 20 {
            recent.drain(..recent.len() - 20);
        }
        if first_450.is_none()
            && recent.len() >= 10
            && recent.iter().sum::<f64>() / recent.len() as f64 >= 450.0
        {
            first_450 = Some(global_step);
        }
        let lr = config.ppo.lr
            * if config.anneal_lr {
                1.0 - update as f64 / updates as f64
            } else {
                1.0
            };
        metrics.append(&[
            global_step as f64,
            mean_ret,
            finished.len() as f64,
            lr,
            stats.policy_loss,
            stats.value_loss,
            stats.entropy,
            stats.approx_kl,
            stats.clipfrac,
            stats.explained_variance,
            stats.std,
            sps,
        ])?;
        bar.inc(1);
        bar.set_message(format!(
            "step {global_step}  return {mean_ret:.1}  kl {:.4}  std {:.3}  {sps:.0} SPS",
            stats.approx_kl, stats.std
        ));
    }
    bar.finish_and_clear();
    let mut ck = Checkpoint::new();
    ppo.put_state(&mut ck, "ppo")?;
    ck.put_meta("global_step", &global_step)?;
    ck.put_meta("wall_s", &start.elapsed().as_secs_f64())?;
    ck.save(&dir.checkpoints().join("latest.safetensors"))?;
    let eval = evaluate(&ppo, envs[0].as_mut(), config.eval_episodes)?;
    atomic_write(
        &dir.file("eval.json"),
        serde_json::to_string_pretty(&eval)?.as_bytes(),
    )?;
    if opts.report {
        write_plots(dir.path())?;
    }
    Ok(TrainOutcome {
        dir: dir.path().to_path_buf(),
        eval,
        first_450,
    })
}

/// Draws `learning_curves.png` of a run folder: episodic return, losses, KL and clip fraction
/// against environment steps.
pub fn write_plots(dir: &Path) -> Result<()> {
    let (_, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    let col = |name: &str| METRICS.iter().position(|c| *c == name).unwrap_or(0);
    let pts = |name: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .map(|r| (r[0], r[col(name)]))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let chart = |title: &str, y: &str, series: Vec<Series>, log_y: bool| LineChart {
        title: title.into(),
        x_label: "environment steps".into(),
        y_label: y.into(),
        log_y,
        series,
        ..Default::default()
    };
    let mut returns = chart(
        "episodic return (training, sampled actions)",
        "return",
        vec![Series::new(
            "episodic return",
            pts("charts/episodic_return"),
        )],
        false,
    );
    returns.hlines.push((450.0, "450".into()));
    line_charts(
        &dir.join("learning_curves.png"),
        &[
            returns,
            chart(
                "losses",
                "loss",
                vec![Series::new("value loss", pts("losses/value_loss"))],
                true,
            ),
            chart(
                "approx KL and clip fraction",
                "",
                vec![
                    Series::new("approx KL", pts("losses/approx_kl")),
                    Series::new("clip fraction", pts("losses/clipfrac")),
                ],
                false,
            ),
            chart(
                "policy std",
                "std",
                vec![Series::new("std", pts("charts/std"))],
                false,
            ),
        ],
        (640, 380),
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses_and_bad_ones_name_the_field() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/ppo_cartpole.toml");
        let cfg = PpoAgentConfig::load(&root).unwrap();
        assert_eq!(cfg.env, EnvSpec::Cartpole);
        assert!(cfg.total_steps <= 200_000);
        let bad = PpoAgentConfig {
            num_envs: 0,
            ..PpoAgentConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("num_envs"));
        let e = toml::from_str::<PpoAgentConfig>("[ppo]\nlr = 1e-3\nclip = 0.1\n").unwrap_err();
        assert!(e.to_string().contains("clip"), "{e}");
    }

    #[test]
    fn a_short_run_writes_its_folder() {
        let tmp = std::env::temp_dir().join(format!("ppo_agent_test_{}", std::process::id()));
        let cfg = PpoAgentConfig {
            name: "short".into(),
            total_steps: 512,
            num_envs: 2,
            num_steps: 64,
            eval_episodes: 1,
            ppo: PpoConfig {
                epochs: 2,
                minibatches: 2,
                ..PpoConfig::default()
            },
            ..PpoAgentConfig::default()
        };
        let opts = RunOptions {
            runs_dir: tmp.clone(),
            existing: dcem::run::Existing::Overwrite,
            progress: false,
            report: true,
        };
        let out = train(&cfg, &opts, &Device::flex()).unwrap();
        let (_, rows) = MetricsCsv::read(&out.dir.join("metrics.csv")).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3][0], 512.0);
        assert!(out.dir.join("learning_curves.png").exists());
        assert!(out.eval.mean >= 1.0);
        std::fs::remove_dir_all(tmp).unwrap();
    }
}
