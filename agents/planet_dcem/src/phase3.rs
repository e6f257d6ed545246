//! Phase 3 (paper sect. 5.2.2): the latent DCEM controller over the learned model is the policy
//! class, and PPO fine-tunes its parts for episode return instead of likelihood.
//!
//! The policy is `pi(a | b) = N(first action of decoder(z*(b)), sigma^2)`, `b` the belief state the
//! RSSM filter holds (with the ensemble, the observation), `z*(b)` the DCEM solution of the latent
//! planning problem on the model's imagined reward (a [`DcemPolicy`]). Every PPO step collects
//! `episodes_per_step` episodes with sampled actions, then takes `ppo.epochs` passes ("passes" in
//! the paper) of minibatch steps; the policy gradient flows through every solver iteration into the
//! reward head, the transition (GRU input layer, GRU, prior) and the decoder, each trained or
//! frozen per [`dcem::rl::DcemParts`] (the ensemble's layers are one part). The value function is a fresh
//! tanh MLP on the observation. The model is not fitted to data in this phase. Each decision's
//! planner noise has its own seed, stored with the step, so the update recomputes exactly the mean
//! the agent acted with.
//!
//! The run starts from a phase-2 run's checkpoint (`init_from`: its model and decoder), writes
//! `metrics.csv` (one row per PPO step), checkpoints every `checkpoint_every` PPO steps, resumes
//! from them, and evaluates the controller before fine-tuning (`eval_before.json`) and after
//! (`eval.json`) on the same evaluation episodes with the mean action.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;
use dcem::env::{Env, VecEnv};
use dcem::planning::LatentDcemPlanner;
use dcem::rl::{Budget, Collector, DcemPolicy, InputFilter, PlanSeeds, Ppo, PpoAgent};
use dcem::run::{Checkpoint, EvalSummary, Existing, Run, RunOptions};
use dcem::runner::{eval_seeds, evaluate_timed, periodic_eval_seeds};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::agent::PlanetAgent;
use crate::checkpoint::load_checkpoint;
pub use crate::config::FinetuneConfig;
use crate::config::{Phase, PlanetConfig, TrainConfig, env_dims, planet_env, train_seed};
use crate::report::{PPO_METRICS as METRICS, RunSummary, load_run, write_plots};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Progress {
    ppo_step: usize,
    env_steps: usize,
    wall_s: f64,
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
        model: agent.controller_model(),
        planner: LatentDcemPlanner::new(config.latent.clone(), decoder)?,
        parts: config.finetune.parts,
    })
}

/// The controller as an agent for evaluation episodes: the mean action, its belief filtered
/// with the controller's current model, plan seeds drawn from a fixed stream (the same in every
/// evaluation).
fn controller_agent(ppo: Ppo<DcemPolicy>, env: &dyn Env) -> Result<PpoAgent<DcemPolicy>> {
    let filter = ppo.acting_policy().model.input_filter();
    Ok(PpoAgent::new(
        ppo,
        filter,
        PlanSeeds::Drawn,
        env.action_space(),
        0,
        ChaCha8Rng::seed_from_u64(EVAL_STREAM),
    )?)
}

/// The seed of the plan-seed stream of every evaluation.
const EVAL_STREAM: u64 = 7_000_000;

/// Evaluates the controller's mean action on the given evaluation episodes (the final
/// evaluation's [`eval_seeds`], or the periodic evaluations' [`periodic_eval_seeds`]).
fn evaluate(
    agent: &mut PpoAgent<DcemPolicy>,
    env: &mut dyn Env,
    seeds: &[u64],
    label: &str,
) -> Result<EvalSummary> {
    agent.set_filter(agent.ppo.acting_policy().model.input_filter());
    agent.reseed(EVAL_STREAM);
    let (returns, ms) = evaluate_timed(agent, env, seeds)?;
    Ok(EvalSummary::new(label, returns, ms))
}

fn save(run: &Run, ppo: &Ppo<DcemPolicy>, rng: &ChaCha8Rng, progress: &Progress) -> Result<()> {
    let mut ck = Checkpoint::new();
    ppo.put_state(&mut ck, "ppo")?;
    let model = &ppo.policy.model;
    for (name, p) in model.param_names().iter().zip(model.params()) {
        ck.put_tensor(&format!("model.{name}"), &p)?;
    }
    ck.put_mlp("decoder", &ppo.policy.planner.decoder().net)?;
    ck.put_rng("rng.phase3", rng)?;
    ck.put_meta("progress", progress)?;
    run.save_checkpoint(&ck)?;
    Ok(())
}

/// Runs (or resumes) phase 3 of `config` (see the module docs).
pub fn finetune(config: &PlanetConfig, opts: &RunOptions, device: &Device) -> Result<RunSummary> {
    let f = &config.finetune;
    let mut env = planet_env(config)?;
    config.check_env(env.as_ref())?;
    let (obs_dim, action_dim) = env_dims(env.as_ref());
    let policy = load_policy(config, obs_dim, action_dim, device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut ppo = Ppo::new(f.ppo.clone(), policy, obs_dim, device, &mut rng)?;
    let dir = Run::open(opts, &config.name)?;

    let resuming = opts.existing == Existing::Resume;
    let mut progress = if resuming {
        let mut saved = PlanetConfig::load(&dir.file("config.toml"))?;
        saved.finetune.steps = f.steps;
        Run::check_same_config(&dir, &saved, config, "finetune.steps")?;
        let file = Run::latest_checkpoint(&dir);
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
        progress
    } else {
        Progress::default()
    };
    let resume_at = resuming.then_some(progress.ppo_step);
    let mut run = Run::start(
        dir,
        config,
        &METRICS,
        resume_at,
        (f.steps, "PPO steps", opts.progress),
    )?;
    let mut agent = controller_agent(ppo, env.as_ref())?;
    if !run.dir().file("eval_before.json").exists() {
        eprintln!(
            "evaluating the phase-2 controller ({} episodes) ...",
            f.eval_episodes
        );
        let before = evaluate(
            &mut agent,
            env.as_mut(),
            &eval_seeds(f.eval_episodes),
            "latent DCEM controller before PPO",
        )?;
        before.save(&run.dir().file("eval_before.json"))?;
    }
    let mut collector = Collector::new(VecEnv::new(vec![planet_env(config)?])?)?;
    let start = Instant::now() - std::time::Duration::from_secs_f64(progress.wall_s);
    while progress.ppo_step < f.steps {
        // The PPO step's episodes, seeded in a row from the first one's training seed.
        let t0 = Instant::now();
        collector.reset(train_seed(config, progress.ppo_step * f.episodes_per_step))?;
        let mut filters: Vec<Box<dyn InputFilter>> =
            vec![agent.ppo.acting_policy().model.input_filter()];
        let rollout = collector.collect(
            &agent.ppo,
            &mut filters,
            PlanSeeds::Drawn,
            Budget::Episodes(f.episodes_per_step),
            &mut rng,
        )?;
        let rollout_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let stats = agent
            .ppo
            .update(&rollout.batch, &mut rng)
            .with_context(|| format!("PPO step {}", progress.ppo_step + 1))?;
        let update_s = t1.elapsed().as_secs_f64();
        progress.ppo_step += 1;
        progress.env_steps += rollout.env_steps;
        let eval = if f.eval_every > 0 && progress.ppo_step.is_multiple_of(f.eval_every) {
            evaluate(
                &mut agent,
                env.as_mut(),
                &periodic_eval_seeds(f.periodic_eval_episodes),
                "periodic",
            )?
            .mean
        } else {
            f64::NAN
        };
        progress.wall_s = start.elapsed().as_secs_f64();
        let returns = &rollout.episode_returns;
        let mean_ret = returns.iter().sum::<f64>() / returns.len() as f64;
        let mut row = vec![
            ("ppo_step", progress.ppo_step as f64),
            ("env_steps", progress.env_steps as f64),
            ("train/return", mean_ret),
            ("eval/return", eval),
        ];
        row.extend(stats.named());
        row.extend([
            ("train/std", stats.std),
            ("perf/rollout_s", rollout_s),
            (
                "perf/plan_ms",
                1e3 * rollout.act_s / rollout.decisions.max(1) as f64,
            ),
            ("perf/env_s", rollout.env_s),
            ("perf/update_s", update_s),
            ("perf/forward_s", stats.forward_s),
            ("perf/backward_s", stats.backward_s),
            ("perf/optim_s", stats.optim_s),
            (
                "perf/env_steps_per_s",
                rollout.env_steps as f64 / (rollout_s + update_s),
            ),
            ("perf/wall_s", progress.wall_s),
        ]);
        run.log_named(&row)?;
        run.bar().inc(1);
        run.bar().set_message(format!(
            "return {mean_ret:.1}  kl {:.4}  clipfrac {:.2}  rollout {rollout_s:.0}s  update {update_s:.0}s",
            stats.approx_kl, stats.clipfrac
        ));
        if progress.ppo_step.is_multiple_of(f.checkpoint_every) || progress.ppo_step == f.steps {
            save(&run, &agent.ppo, &rng, &progress)?;
        }
    }
    let dir = run.finish();
    let after = evaluate(
        &mut agent,
        env.as_mut(),
        &eval_seeds(f.eval_episodes),
        &format!("latent DCEM + PPO ({})", f.parts.label()),
    )?;
    after.save(&dir.file("eval.json"))?;
    let run = load_run(dir.path())?;
    if opts.report {
        write_plots(&run, None)?;
    }
    Ok(run)
}
