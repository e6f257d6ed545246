//! The training loop: rollouts from `dcem::rl::Collector`, PPO updates, the final evaluation
//! through `dcem::runner` with a `PpoAgent`.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::env::{Env, Space, VecEnv};
use dcem::rl::{Budget, Collector, InputFilter, MlpPolicy, ObsInput, PlanSeeds, Ppo, PpoAgent};
use dcem::run::{
    Checkpoint, EvalSummary, Existing, MetricsCsv, Run, RunDir, RunOptions, progress_bar,
};
use dcem::runner::{eval_seeds, evaluate_timed};
use dcem_envs::make_env;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use crate::config::*;
use crate::report::*;

/// Evaluates the mean action (no sampling) for `episodes` episodes on the evaluation seeds,
/// through the episode runner.
pub fn evaluate(
    agent: &mut PpoAgent<MlpPolicy>,
    env: &mut dyn Env,
    episodes: usize,
) -> Result<EvalSummary> {
    let (returns, ms) = evaluate_timed(agent, env, &eval_seeds(episodes))?;
    Ok(EvalSummary::new("PPO, mean action", returns, ms))
}

/// Where a run stands, checkpointed with it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// Updates done.
    update: usize,
    /// Environment steps done.
    global_step: usize,
    /// The last (up to 20) training episode returns.
    recent: Vec<f64>,
    /// Steps at which the mean of `recent` first reached 450.
    first_450: Option<usize>,
    /// Seconds spent collecting and updating so far, over every session of the run
    /// (`perf/wall_s`; checkpoints and the final evaluation not counted).
    #[serde(default)]
    wall_s: f64,
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
    let resuming = opts.existing == Existing::Resume;
    let envs = (0..config.num_envs)
        .map(|_| make_env(&config.env))
        .collect::<dcem::Result<Vec<_>>>()?;
    let Space::Box(_) = envs[0].action_space() else {
        anyhow::bail!(
            "PPO here needs a Box action space (a Gaussian policy); use kind = \"cartpole\" for \
             the continuous CartPole"
        );
    };
    let action_space = envs[0].action_space().clone();
    let mut collector = Collector::new(VecEnv::new(envs)?)?;
    let obs_dim = collector.envs().obs_dim();
    let act_dim = collector.envs().action_dim();
    let dir = RunDir::create(opts.runs_dir.join(&config.name), opts.existing)?;
    if resuming {
        let mut saved = PpoAgentConfig::load(&dir.file("config.toml"))?;
        saved.total_steps = config.total_steps;
        Run::check_same_config(&dir, &saved, config, "total_steps")?;
    }
    let ck_path = Run::latest_checkpoint(&dir);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let policy = MlpPolicy::new(
        obs_dim,
        act_dim,
        config.policy.hidden,
        config.policy.layers,
        device,
        &mut rng,
    )?;
    let ppo = Ppo::new(config.ppo.clone(), policy, obs_dim, device, &mut rng)?;
    let mut agent = PpoAgent::new(
        ppo,
        Box::new(ObsInput),
        PlanSeeds::Zero,
        &action_space,
        0,
        ChaCha8Rng::seed_from_u64(0),
    )?;
    let mut filters: Vec<Box<dyn InputFilter>> = (0..config.num_envs)
        .map(|_| Box::new(ObsInput) as Box<dyn InputFilter>)
        .collect();
    let (ne, ns) = (config.num_envs, config.num_steps);
    let updates = config.updates();
    let mut at = Progress::default();
    let mut metrics = if resuming {
        let ck = Checkpoint::load(&ck_path)
            .with_context(|| format!("resuming {}", dir.path().display()))?;
        agent.ppo.load_state(&ck, "ppo")?;
        rng = ck.rng("rng")?;
        at = ck.meta("progress")?;
        ensure!(
            at.update <= updates,
            "checkpoint {} is at update {}, past the {updates} of {} steps: raise total_steps",
            ck_path.display(),
            at.update,
            config.total_steps
        );
        collector.restore(&ck.meta("collector")?)?;
        MetricsCsv::resume(dir.file("metrics.csv"), &METRICS, at.global_step as f64)?
    } else {
        collector.reset(config.seed.wrapping_mul(1_000_003))?;
        MetricsCsv::create(dir.file("metrics.csv"), &METRICS)?
    };
    dir.write_config(config)?;
    let save = |agent: &PpoAgent<MlpPolicy>,
                rng: &ChaCha8Rng,
                at: &Progress,
                collector: &Collector<_>|
     -> Result<()> {
        let mut ck = Checkpoint::new();
        agent.ppo.put_state(&mut ck, "ppo")?;
        ck.put_rng("rng", rng)?;
        ck.put_meta("progress", at)?;
        ck.put_meta("global_step", &at.global_step)?;
        ck.put_meta("collector", &collector.state()?)?;
        ck.save(&ck_path)?;
        Ok(())
    };
    let bar = progress_bar(opts.progress, updates as u64, &config.name, "updates");
    bar.set_position(at.update as u64);
    for update in at.update..updates {
        if config.anneal_lr {
            agent
                .ppo
                .set_lr_fraction(1.0 - update as f64 / updates as f64);
        }
        let t0 = Instant::now();
        let rollout = collector.collect(
            &agent.ppo,
            &mut filters,
            PlanSeeds::Zero,
            Budget::Steps(ns),
            &mut rng,
        )?;
        at.global_step += rollout.decisions;
        let finished = rollout.episode_returns;
        let stats = agent.ppo.update(&rollout.batch, &mut rng)?;
        let sps = (ne * ns) as f64 / t0.elapsed().as_secs_f64();
        let mean_ret = if finished.is_empty() {
            f64::NAN
        } else {
            finished.iter().sum::<f64>() / finished.len() as f64
        };
        at.recent.extend(&finished);
        if at.recent.len() > 20 {
            at.recent.drain(..at.recent.len() - 20);
        }
        let last20 = if at.recent.len() >= 10 {
            at.recent.iter().sum::<f64>() / at.recent.len() as f64
        } else {
            f64::NAN
        };
        if at.first_450.is_none() && last20 >= 450.0 {
            at.first_450 = Some(at.global_step);
        }
        at.wall_s += t0.elapsed().as_secs_f64();
        let lr = config.ppo.lr
            * if config.anneal_lr {
                1.0 - update as f64 / updates as f64
            } else {
                1.0
            };
        let mut row = vec![
            ("env_steps", at.global_step as f64),
            ("train/return", mean_ret),
            ("train/episodes", finished.len() as f64),
            ("train/lr", lr),
        ];
        row.extend(stats.named());
        row.extend([
            ("train/std", stats.std),
            ("perf/env_steps_per_s", sps),
            ("train/return_last20", last20),
            ("perf/wall_s", at.wall_s),
        ]);
        metrics.append_named(&row)?;
        bar.inc(1);
        bar.set_message(format!(
            "step {}  return {mean_ret:.1}  kl {:.4}  std {:.3}  {sps:.0} SPS",
            at.global_step, stats.approx_kl, stats.std
        ));
        at.update = update + 1;
        if config.checkpoint_every > 0 && at.update % config.checkpoint_every == 0 {
            save(&agent, &rng, &at, &collector)?;
        }
    }
    bar.finish_and_clear();
    save(&agent, &rng, &at, &collector)?;
    let mut env = make_env(&config.env)?;
    let eval = evaluate(&mut agent, env.as_mut(), config.eval_episodes)?;
    eval.save(&dir.file("eval.json"))?;
    if opts.report {
        write_plots(dir.path())?;
    }
    Ok(TrainOutcome {
        dir: dir.path().to_path_buf(),
        eval,
        first_450: at.first_450,
    })
}
