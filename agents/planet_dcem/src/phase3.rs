//! Phase 3 (paper sect. 5.2.2): the latent DCEM controller over the learned model is the policy
//! class, and PPO fine-tunes its parts for episode return instead of likelihood.
//!
//! The policy is `pi(a | b) = N(first action of decoder(z*(b)), sigma^2)`, `b` the belief state
//! the RSSM filter holds, `z*(b)` the DCEM solution of the latent planning problem on the
//! model's imagined reward (a [`DcemPolicy`]). Every PPO step collects `episodes_per_step`
//! episodes with sampled actions, then takes `ppo.epochs` passes ("passes" in the paper) of
//! minibatch steps; the policy gradient flows through every solver iteration into the reward
//! head, the transition (GRU input layer, GRU, prior) and the decoder, each trained or frozen per
//! [`DcemParts`]. The value function is a fresh tanh MLP on the observation. The model is not
//! fitted to data in this phase. Each decision's planner noise has its own seed, stored with the
//! step, so the update recomputes exactly the mean the agent acted with.
//!
//! The run starts from a phase-2 run's checkpoint (`init_from`: its model and decoder), writes
//! `metrics.csv` (one row per PPO step), checkpoints every `checkpoint_every` PPO steps, resumes
//! from them, and evaluates the controller before fine-tuning (`eval_before.json`) and after
//! (`eval.json`) on the same evaluation episodes with the mean action.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::env::Env;
use dcem::nn::{tensor_from_f64, to_f64_vec};
use dcem::planning::LatentDcemPlanner;
use dcem::rl::{DcemParts, DcemPolicy, Ppo, PpoConfig, RolloutBatch, gae};
use dcem::run::plot::{LineChart, Series, line_charts};
use dcem::run::{
    Checkpoint, EvalSummary, Existing, MetricsCsv, RunDir, RunOptions, atomic_write, progress_bar,
};
use dcem_envs::make_env;
use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{
    ActionMap, Phase, PlanetAgent, PlanetConfig, RunSummary, TrainConfig, eval_seed,
    load_checkpoint, load_run, train_seed,
};

/// Phase 3's options (`[finetune]`). Defaults follow the paper: 10 episodes per PPO step, one
/// pass, fixed action std 0.1, lr 1e-4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// PPO steps in the run.
    pub steps: usize,
    /// Episodes collected per PPO step.
    pub episodes_per_step: usize,
    /// Which parts of the controller are trained.
    pub parts: DcemParts,
    /// PPO's options (`epochs` are the paper's passes; `lr` its 1e-4 or 1e-5; `learn_std` and
    /// `init_log_std` its fixed 0.1 or learned std).
    pub ppo: PpoConfig,
    /// Episodes of the evaluations before and after fine-tuning.
    pub eval_episodes: usize,
    /// Evaluate (`periodic_eval_episodes` episodes) every this many PPO steps (0: never).
    pub eval_every: usize,
    /// Episodes of the periodic evaluation.
    pub periodic_eval_episodes: usize,
    /// Checkpoint every this many PPO steps.
    pub checkpoint_every: usize,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 10,
            episodes_per_step: 10,
            parts: DcemParts {
                reward: true,
                transition: true,
                decoder: true,
            },
            ppo: PpoConfig {
                lr: 1e-4,
                value_lr: Some(1e-3),
                epochs: 1,
                minibatches: 4,
                init_log_std: 0.1f64.ln(),
                learn_std: false,
                ..PpoConfig::default()
            },
            eval_episodes: 50,
            eval_every: 0,
            periodic_eval_episodes: 5,
            checkpoint_every: 1,
        }
    }
}

impl FinetuneConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("finetune.episodes_per_step", self.episodes_per_step),
            ("finetune.eval_episodes", self.eval_episodes),
            ("finetune.checkpoint_every", self.checkpoint_every),
        ] {
            ensure!(v >= 1, "`{name}` must be at least 1, got {v}");
        }
        ensure!(
            self.eval_every == 0 || self.periodic_eval_episodes >= 1,
            "`finetune.periodic_eval_episodes` must be at least 1 when `finetune.eval_every` is set"
        );
        self.ppo.validate()?;
        Ok(())
    }
}

/// The columns of a phase-3 `metrics.csv`, one row per PPO step.
pub const METRICS: [&str; 21] = [
    "ppo_step",
    "env_steps",
    "return",
    "eval_return",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
    "grad_norm",
    "std",
    "rollout_s",
    "plan_ms",
    "env_s",
    "update_s",
    "forward_s",
    "backward_s",
    "optim_s",
    "charts/SPS",
    "wall_s",
];

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Progress {
    ppo_step: usize,
    env_steps: usize,
    wall_s: f64,
}

/// Timings of a batch of episodes.
#[derive(Clone, Debug, Default)]
struct RolloutTimes {
    plan_s: f64,
    env_s: f64,
    decisions: usize,
}

/// The controller of `config`'s `init_from` run as a [`DcemPolicy`] with `config`'s trained
/// parts.
fn load_policy(
    config: &PlanetConfig,
    obs_dim: usize,
    action_dim: usize,
    device: &Device,
) -> Result<DcemPolicy> {
    let from = PathBuf::from(&config.init_from);
    let mut c = config.clone();
    c.phase = Phase::LatentDcem;
    c.init_from = String::new();
    c.train = TrainConfig {
        seed_episodes: 1,
        ..c.train
    };
    let mut agent = PlanetAgent::new(&c, obs_dim, action_dim, device)?;
    load_checkpoint(&from, &mut agent, false, false)
        .with_context(|| format!("loading the phase-2 run in {}", from.display()))?;
    let ck = from.join("checkpoints").join("latest.safetensors");
    ensure!(
        Checkpoint::load(&ck)?.has_tensor("decoder.layers.0.weight"),
        "{} has no action decoder: phase 3 starts from a phase-2 (latent_dcem) run",
        from.display()
    );
    let decoder = agent
        .decoder()
        .context("the phase-2 agent has no decoder")?
        .detached();
    Ok(DcemPolicy {
        model: agent.model.detached(),
        planner: LatentDcemPlanner::new(config.latent.clone(), decoder)?,
        parts: config.finetune.parts,
    })
}

/// One episode with the controller: returns (return, env steps) and appends the steps (and
/// per-step rewards, values and episode flags) to `out`.
#[allow(clippy::too_many_arguments)]
fn episode(
    ppo: &Ppo<DcemPolicy>,
    env: &mut dyn Env,
    map: &ActionMap,
    repeat: usize,
    seed: u64,
    deterministic: bool,
    rng: &mut ChaCha8Rng,
    times: &mut RolloutTimes,
    mut out: Option<&mut Stream>,
) -> Result<(f64, usize)> {
    let model = &ppo.acting_policy().model;
    let plain = model.gru.layers[0].weight.device();
    let sd = model.config().state_dim();
    let ad = map.dim();
    let mut obs = env.reset(Some(seed))?;
    let mut belief = tensor_from_f64(&vec![0.0; sd], [1, sd], &plain)?;
    let mut prev = vec![0.0; ad];
    let (mut ret, mut steps) = (0.0, 0usize);
    loop {
        let t0 = Instant::now();
        let a_t = tensor_from_f64(&prev, [1, ad], &plain)?;
        let o_t = tensor_from_f64(&obs, [1, obs.len()], &plain)?;
        belief = model.filter(belief, a_t, o_t)?;
        let b = to_f64_vec(belief.clone())?;
        let plan_seed = rng.next_u64();
        let acted = ppo.act(&b, &[plan_seed], deterministic, rng)?;
        times.plan_s += t0.elapsed().as_secs_f64();
        times.decisions += 1;
        let a: Vec<f64> = acted.actions.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
        let t1 = Instant::now();
        let env_action = map.to_env(&a);
        let (mut reward, mut terminated, mut end) = (0.0, false, false);
        let mut next = obs.clone();
        for _ in 0..repeat {
            let step = env.step(&env_action)?;
            reward += step.reward;
            steps += 1;
            next = step.obs;
            if step.terminated || step.truncated {
                terminated = step.terminated;
                end = true;
                break;
            }
        }
        times.env_s += t1.elapsed().as_secs_f64();
        ensure!(
            next.iter().all(|v| v.is_finite()) && reward.is_finite(),
            "the environment returned a non-finite observation or reward"
        );
        ret += reward;
        if let Some(s) = out.as_deref_mut() {
            s.batch.inputs.extend_from_slice(&b);
            s.batch.value_inputs.extend_from_slice(&obs);
            s.batch.seeds.push(plan_seed);
            s.batch.actions.extend_from_slice(&acted.actions);
            s.batch.logp.extend_from_slice(&acted.logp);
            s.rewards.push(reward);
            s.terminated.push(terminated);
            s.ends.push(end);
            s.next_obs.extend_from_slice(&next);
        }
        prev = a;
        obs = next;
        if end {
            break;
        }
    }
    Ok((ret, steps))
}

/// Steps collected for one PPO update.
#[derive(Default)]
struct Stream {
    batch: RolloutBatch,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    ends: Vec<bool>,
    next_obs: Vec<f64>,
}

/// Evaluates the controller's mean action on the evaluation episodes.
fn evaluate(
    ppo: &Ppo<DcemPolicy>,
    env: &mut dyn Env,
    map: &ActionMap,
    repeat: usize,
    episodes: usize,
    label: &str,
) -> Result<EvalSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(7_000_000);
    let mut times = RolloutTimes::default();
    let mut returns = Vec::with_capacity(episodes);
    for i in 0..episodes {
        let (ret, _) = episode(
            ppo,
            env,
            map,
            repeat,
            eval_seed(i),
            true,
            &mut rng,
            &mut times,
            None,
        )?;
        returns.push(ret);
    }
    Ok(EvalSummary::new(
        label,
        returns,
        1e3 * times.plan_s / times.decisions.max(1) as f64,
    ))
}

fn save(dir: &RunDir, ppo: &Ppo<DcemPolicy>, rng: &ChaCha8Rng, progress: &Progress) -> Result<()> {
    let mut ck = Checkpoint::new();
    ppo.put_state(&mut ck, "ppo")?;
    let model = &ppo.policy.model;
    for (name, p) in model.param_names().iter().zip(model.params()) {
        ck.put_tensor(&format!("model.{name}"), &p)?;
    }
    ck.put_mlp("decoder", &ppo.policy.planner.decoder().net)?;
    ck.put_rng("rng.phase3", rng)?;
    ck.put_meta("progress", progress)?;
    ck.save(&dir.checkpoints().join("latest.safetensors"))?;
    Ok(())
}

/// Runs (or resumes) phase 3 of `config` (see the module docs).
pub fn finetune(config: &PlanetConfig, opts: &RunOptions, device: &Device) -> Result<RunSummary> {
    let f = &config.finetune;
    let mut env = make_env(&config.env)?;
    let map = ActionMap::new(env.as_ref())?;
    let obs_dim = env.observation_space().flat_dim();
    let repeat = config.train.action_repeat;
    let policy = load_policy(config, obs_dim, map.dim(), device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut ppo = Ppo::new(f.ppo.clone(), policy, obs_dim, device, &mut rng)?;
    let dir = RunDir::create(opts.runs_dir.join(&config.name), opts.existing)?;

    let (mut progress, mut metrics) = if opts.existing == Existing::Resume {
        let saved = PlanetConfig::load(&dir.file("config.toml"))?;
        let mut same = config.clone();
        same.finetune.steps = saved.finetune.steps;
        ensure!(
            saved == same,
            "the config differs from the run's own (beyond `finetune.steps`); resume with {}",
            dir.file("config.toml").display()
        );
        let file = dir.checkpoints().join("latest.safetensors");
        let ck = Checkpoint::load(&file).with_context(|| format!("loading {}", file.display()))?;
        // The whole controller as checkpointed (not as `init_from` holds it now), then the
        // learner's own state.
        let ad = device.clone().autodiff();
        let model = &mut ppo.policy.model;
        let params = model
            .param_names()
            .iter()
            .map(|n| ck.tensor::<2>(&format!("model.{n}"), &ad))
            .collect::<dcem::Result<Vec<_>>>()?;
        model.set_params(params)?;
        ck.load_mlp("decoder", &mut ppo.policy.planner.decoder_mut().net, &ad)?;
        ppo.load_state(&ck, "ppo")?;
        rng = ck.rng("rng.phase3")?;
        let progress: Progress = ck.meta("progress")?;
        ensure!(
            progress.ppo_step <= f.steps,
            "the run already has {} PPO steps, more than the {} asked for: raise `finetune.steps`",
            progress.ppo_step,
            f.steps
        );
        let metrics =
            MetricsCsv::resume(dir.file("metrics.csv"), &METRICS, progress.ppo_step as f64)?;
        (progress, metrics)
    } else {
        (
            Progress::default(),
            MetricsCsv::create(dir.file("metrics.csv"), &METRICS)?,
        )
    };
    dir.write_config(config)?;
    if !dir.file("eval_before.json").exists() {
        eprintln!(
            "evaluating the phase-2 controller ({} episodes) ...",
            f.eval_episodes
        );
        let before = evaluate(
            &ppo,
            env.as_mut(),
            &map,
            repeat,
            f.eval_episodes,
            "latent DCEM controller before PPO",
        )?;
        atomic_write(
            &dir.file("eval_before.json"),
            serde_json::to_string_pretty(&before)?.as_bytes(),
        )?;
    }
    let bar = progress_bar(opts.progress, f.steps as u64, &config.name, "PPO steps");
    bar.set_position(progress.ppo_step as u64);
    let start = Instant::now() - std::time::Duration::from_secs_f64(progress.wall_s);
    while progress.ppo_step < f.steps {
        let t0 = Instant::now();
        let mut stream = Stream::default();
        let mut times = RolloutTimes::default();
        let mut returns = Vec::new();
        let mut env_steps = 0;
        for e in 0..f.episodes_per_step {
            let seed = train_seed(config, progress.ppo_step * f.episodes_per_step + e);
            let (ret, n) = episode(
                &ppo,
                env.as_mut(),
                &map,
                repeat,
                seed,
                false,
                &mut rng,
                &mut times,
                Some(&mut stream),
            )?;
            returns.push(ret);
            env_steps += n;
        }
        let rollout_s = t0.elapsed().as_secs_f64();
        // Values of the observations acted on and of the ones that followed; GAE per episode.
        let n = stream.batch.len();
        let values = ppo.values(&stream.batch.value_inputs)?;
        let next_values = ppo.values(&stream.next_obs)?;
        let (mut adv, mut ret) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut begin = 0;
        for t in 0..n {
            if stream.ends[t] || t + 1 == n {
                let r = begin..t + 1;
                let (a, g) = gae(
                    &stream.rewards[r.clone()],
                    &values[r.clone()],
                    &next_values[r.clone()],
                    &stream.terminated[r.clone()],
                    &stream.ends[r],
                    f.ppo.gamma,
                    f.ppo.gae_lambda,
                )?;
                adv.extend(a);
                ret.extend(g);
                begin = t + 1;
            }
        }
        stream.batch.values = values;
        stream.batch.set_advantages(adv, ret)?;
        let t1 = Instant::now();
        let stats = ppo
            .update(&stream.batch, &mut rng)
            .with_context(|| format!("PPO step {}", progress.ppo_step + 1))?;
        let update_s = t1.elapsed().as_secs_f64();
        progress.ppo_step += 1;
        progress.env_steps += env_steps;
        let eval = if f.eval_every > 0 && progress.ppo_step.is_multiple_of(f.eval_every) {
            evaluate(
                &ppo,
                env.as_mut(),
                &map,
                repeat,
                f.periodic_eval_episodes,
                "periodic",
            )?
            .mean
        } else {
            f64::NAN
        };
        progress.wall_s = start.elapsed().as_secs_f64();
        let mean_ret = returns.iter().sum::<f64>() / returns.len() as f64;
        let row = [
            progress.ppo_step as f64,
            progress.env_steps as f64,
            mean_ret,
            eval,
            stats.policy_loss,
            stats.value_loss,
            stats.entropy,
            stats.approx_kl,
            stats.clipfrac,
            stats.explained_variance,
            stats.grad_norm,
            stats.std,
            rollout_s,
            1e3 * times.plan_s / times.decisions.max(1) as f64,
            times.env_s,
            update_s,
            stats.forward_s,
            stats.backward_s,
            stats.optim_s,
            env_steps as f64 / (rollout_s + update_s),
            progress.wall_s,
        ];
        metrics.append(&row)?;
        bar.inc(1);
        bar.set_message(format!(
            "return {mean_ret:.1}  kl {:.4}  clipfrac {:.2}  rollout {rollout_s:.0}s  update {update_s:.0}s",
            stats.approx_kl, stats.clipfrac
        ));
        if progress.ppo_step.is_multiple_of(f.checkpoint_every) || progress.ppo_step == f.steps {
            save(&dir, &ppo, &rng, &progress)?;
        }
    }
    bar.finish_and_clear();
    let after = evaluate(
        &ppo,
        env.as_mut(),
        &map,
        repeat,
        f.eval_episodes,
        &format!("latent DCEM + PPO ({})", f.parts.label()),
    )?;
    atomic_write(
        &dir.file("eval.json"),
        serde_json::to_string_pretty(&after)?.as_bytes(),
    )?;
    let run = load_run(dir.path())?;
    if opts.report {
        write_plots(&run)?;
    }
    Ok(run)
}

/// The phase-2 controller's evaluation stored by a phase-3 run.
pub fn eval_before(dir: &Path) -> Result<Option<EvalSummary>> {
    let p = dir.join("eval_before.json");
    if !p.exists() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&std::fs::read_to_string(&p)?)?))
}

/// Learning curves of a phase-3 run: returns per PPO step, the losses, KL and clip fraction, and
/// where the time of a PPO step goes.
pub fn write_plots(run: &RunSummary) -> Result<()> {
    let col = |name: &str| METRICS.iter().position(|c| *c == name).unwrap_or(0);
    let pts = |name: &str| -> Vec<(f64, f64)> {
        run.rows
            .iter()
            .map(|r| (r[0], r[col(name)]))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let chart = |title: &str, y: &str, series: Vec<Series>| LineChart {
        title: title.into(),
        x_label: "PPO step".into(),
        y_label: y.into(),
        series,
        ..Default::default()
    };
    let mut returns = chart(
        &format!(
            "{}: return (PPO on {})",
            run.config.env.name(),
            run.config.finetune.parts.label()
        ),
        "return",
        [
            Series::new("training episodes (sampled)", pts("return")),
            Series::new("periodic evaluation (mean action)", pts("eval_return")),
        ]
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect(),
    );
    if let Some(b) = eval_before(&run.dir)? {
        returns
            .hlines
            .push((b.mean, format!("before PPO ({:.1})", b.mean)));
    }
    if let Some(a) = &run.eval {
        returns
            .hlines
            .push((a.mean, format!("after PPO ({:.1})", a.mean)));
    }
    line_charts(
        &run.dir.join("learning_curves.png"),
        &[
            returns,
            chart(
                "approx KL and clip fraction",
                "",
                vec![
                    Series::new("approx KL", pts("losses/approx_kl")),
                    Series::new("clip fraction", pts("losses/clipfrac")),
                ],
            ),
            chart(
                "seconds per PPO step",
                "s",
                vec![
                    Series::new("rollout (planning + env)", pts("rollout_s")),
                    Series::new("update: forward through DCEM", pts("forward_s")),
                    Series::new("update: backward", pts("backward_s")),
                ],
            ),
        ],
        (640, 380),
    )?;
    Ok(())
}
