//! The online loop of alg. 3 over the framework's episode runner: seed episodes with random
//! actions, then planning episodes with exploration noise and model (and decoder) updates,
//! periodic and final evaluations on fixed start states, checkpoints and resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor};
use dcem::agent::Mode;
use dcem::env::Env;
use dcem::env::RecordEpisodes;
use dcem::run::{EvalSummary, Existing, Run, RunOptions};
use dcem::runner::{eval_seeds, evaluate as evaluate_returns, periodic_eval_seeds, run_episode};

use crate::agent::PlanetAgent;
use crate::checkpoint::{Progress, load_checkpoint, save_checkpoint};
use crate::config::{Phase, PlanetConfig, env_dims, planet_env, train_seed};
use crate::diagnose;
use crate::report::{METRICS, RunSummary, load_run, write_plots};

/// Evaluates the agent's planner for `episodes` episodes on the final evaluation's seeds (no
/// noise, no learning); the planning time per action is the planner's alone.
pub fn evaluate(
    agent: &mut PlanetAgent,
    env: &mut dyn Env,
    episodes: usize,
    label: &str,
) -> Result<EvalSummary> {
    evaluate_on(agent, env, &eval_seeds(episodes), label)
}

/// [`evaluate`] on the given episode seeds (periodic evaluations: [`periodic_eval_seeds`],
/// disjoint from the final evaluation's).
pub fn evaluate_on(
    agent: &mut PlanetAgent,
    env: &mut dyn Env,
    seeds: &[u64],
    label: &str,
) -> Result<EvalSummary> {
    let (s0, p0) = (agent.plan_seconds, agent.plans);
    let returns = evaluate_returns(agent, env, seeds)?;
    let plans = (agent.plans - p0).max(1) as f64;
    let ms = 1e3 * (agent.plan_seconds - s0) / plans;
    agent.plan_seconds = s0;
    agent.plans = p0;
    Ok(EvalSummary::new(label, returns, ms))
}

/// Runs (or resumes) phase 1 or 2 of `config`, writing `runs/<name>/`: `config.toml`,
/// `metrics.csv`, `learning_curves.png`, `checkpoints/{latest.safetensors,buffer.bin}`, and
/// after the final evaluation `eval.json` and, for the cart-pole environments, its first
/// episode as `eval_episode.gif`.
pub fn train_online(
    config: &PlanetConfig,
    opts: &RunOptions,
    device: &Device,
) -> Result<RunSummary> {
    config.validate()?;
    ensure!(
        config.phase != Phase::Ppo,
        "phase = \"ppo\" runs through planet_dcem::phase3::finetune (or planet_dcem::train)"
    );
    let mut env = planet_env(config)?;
    // Checks the config against the env before the run folder is touched.
    let mut agent = PlanetAgent::for_env(config, env.as_ref(), device)?;
    let dir = Run::open(opts, &config.name)?;
    let total = config.total_episodes();

    let resuming = opts.existing == Existing::Resume;
    let mut progress = if resuming {
        let mut saved = PlanetConfig::load(&dir.file("config.toml"))?;
        saved.train.episodes = config.train.episodes;
        Run::check_same_config(&dir, &saved, config, "train.episodes")?;
        let progress = load_checkpoint(dir.path(), &mut agent, true, true)
            .with_context(|| format!("resuming {}", dir.path().display()))?;
        ensure!(
            progress.episode <= total,
            "the run already has {} episodes, more than the {total} asked for: raise \
             `train.episodes` (--episodes) to at least {}",
            progress.episode,
            progress.episode.saturating_sub(config.train.seed_episodes)
        );
        progress
    } else {
        if !config.init_from.is_empty() {
            let from = PathBuf::from(&config.init_from);
            load_checkpoint(&from, &mut agent, false, config.keep_buffer)
                .with_context(|| format!("starting from the run in {}", from.display()))?;
        }
        Progress::default()
    };
    let resume_at = resuming.then_some(progress.episode);
    let mut run = Run::start(
        dir,
        config,
        &METRICS,
        resume_at,
        (total, "episodes", opts.progress),
    )?;
    if resume_at.is_none() && config.decoder.offline_steps > 0 {
        offline_decoder(&mut agent, run.dir().path(), env.as_mut(), config)?;
        save_checkpoint(run.dir(), &agent, &progress)?;
    }
    if resume_at.is_none() && config.value.enabled && config.value.offline_steps > 0 {
        offline_value(&mut agent, run.dir().path(), config.value.offline_steps)?;
        save_checkpoint(run.dir(), &agent, &progress)?;
    }
    let seeded = !agent.buffer.episodes().is_empty() && progress.episode == 0;
    let start = Instant::now() - std::time::Duration::from_secs_f64(progress.wall_s);
    while progress.episode < total {
        let i = progress.episode;
        let seed_episode = i < config.train.seed_episodes;
        if seed_episode && seeded {
            // Started from another run's buffer: its episodes stand in for the seed episodes.
            progress.episode += 1;
            run.bar().inc(1);
            continue;
        }
        let mode = if seed_episode {
            Mode::Seed
        } else {
            Mode::Train
        };
        let t0 = Instant::now();
        let out = run_episode(&mut agent, env.as_mut(), train_seed(config, i), mode)
            .with_context(|| format!("episode {}", i + 1))?;
        if seed_episode && i + 1 == config.train.seed_episodes {
            // Fit the model to the seed episodes before it is planned on.
            for k in 0..config.train.seed_updates {
                agent
                    .train_step()
                    .with_context(|| format!("seed update {}", k + 1))?;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        progress.env_steps += out.env_steps;
        let (stats, plan_s, plans) = agent.take_stats();
        let trained = i + 1 - config.train.seed_episodes.min(i + 1);
        let eval = if !seed_episode
            && config.train.eval_every > 0
            && (trained.is_multiple_of(config.train.eval_every) || i + 1 == total)
        {
            evaluate_on(
                &mut agent,
                env.as_mut(),
                &periodic_eval_seeds(config.train.eval_episodes),
                "periodic",
            )?
            .mean
        } else {
            f64::NAN
        };
        progress.episode += 1;
        progress.wall_s = start.elapsed().as_secs_f64();
        let per = |total: f64, n: usize| if n == 0 { f64::NAN } else { total / n as f64 };
        let steps_per_s = out.env_steps as f64 / secs;
        let (loss, kl) = (stats.mean(stats.loss), stats.mean(stats.kl));
        run.log_named(&[
            ("episode", progress.episode as f64),
            ("env_steps", progress.env_steps as f64),
            ("train/return", out.ret),
            ("eval/return", eval),
            ("loss/model", loss),
            ("loss/obs", stats.mean(stats.obs)),
            ("loss/reward", stats.mean(stats.reward)),
            ("loss/kl", kl),
            (
                "loss/decoder_cost",
                per(stats.decoder_cost, stats.decoder_n),
            ),
            ("train/updates", stats.n as f64),
            ("perf/plan_ms", per(1e3 * plan_s, plans)),
            ("perf/update_ms", per(1e3 * stats.seconds, stats.n)),
            ("perf/env_steps_per_s", steps_per_s),
            ("perf/wall_s", progress.wall_s),
            ("train/seed_episode", if seed_episode { 1.0 } else { 0.0 }),
            ("loss/value", per(stats.value_loss, stats.value_n)),
        ])?;
        run.bar().inc(1);
        run.bar().set_message(format!(
            "steps {}  return {:.1}{}  loss {:.3} (kl {:.2})  {:.0} steps/s",
            progress.env_steps,
            out.ret,
            if eval.is_finite() {
                format!("  eval {eval:.1}")
            } else {
                String::new()
            },
            loss,
            kl,
            steps_per_s
        ));
        if progress
            .episode
            .is_multiple_of(config.train.checkpoint_every)
            || progress.episode == total
        {
            save_checkpoint(run.dir(), &agent, &progress)?;
        }
    }
    let dir = run.finish();
    if config.train.final_eval_episodes > 0 {
        let label = match config.phase {
            Phase::Cem => "full CEM on the learned model",
            Phase::LatentDcem => "latent DCEM on the learned model",
            Phase::Ppo => unreachable!("phase 3 is refused above"),
        };
        // The final evaluation's episodes are recorded for the diagnostics (never trained on).
        agent.take_plan_log();
        let mut recorded = RecordEpisodes::new(env.as_mut());
        let summary = evaluate(
            &mut agent,
            &mut recorded,
            config.train.final_eval_episodes,
            label,
        )?;
        summary.save(&dir.file("eval.json"))?;
        let plan_log = agent.take_plan_log();
        let d = diagnose::diagnose(
            &agent.world,
            recorded.episodes(),
            &plan_log,
            config.cem.horizon,
        )?;
        diagnose::write(dir.path(), &d)?;
        // The first evaluation episode as a video, where the environment can be drawn.
        if let Some(ep) = recorded.episodes().first() {
            dcem_envs::render::write_episode_gif(
                &config.env,
                &ep.obs,
                config.train.action_repeat,
                &dir.file("eval_episode.gif"),
            )?;
        }
    }
    let run = load_run(dir.path())?;
    if opts.report {
        write_plots(&run, None)?;
    }
    Ok(run)
}

/// `value.offline_steps` terminal-value updates on the replay buffer of `init_from` before the
/// first episode; writes `value_offline.csv` (step, loss).
fn offline_value(agent: &mut PlanetAgent, dir: &Path, steps: usize) -> Result<()> {
    ensure!(
        !agent.buffer.episodes().is_empty(),
        "`value.offline_steps` needs the replay buffer of `init_from` (keep_buffer = true)"
    );
    let mut csv = String::from("step,value_loss\n");
    let t0 = Instant::now();
    let (mut window, mut in_window) = (0.0, 0);
    for i in 1..=steps {
        let loss = agent
            .offline_value_step()
            .with_context(|| format!("offline value step {i}"))?;
        csv.push_str(&format!("{i},{loss}\n"));
        window += loss;
        in_window += 1;
        if i % (steps / 20).max(1) == 0 || i == steps {
            eprintln!(
                "offline value step {i}/{steps}: mean loss {:.5} over the last {in_window} \
                 ({:.0} s)",
                window / in_window as f64,
                t0.elapsed().as_secs_f64()
            );
            (window, in_window) = (0.0, 0);
        }
    }
    dcem::run::atomic_write(&dir.join("value_offline.csv"), csv.as_bytes())?;
    Ok(())
}

/// Phase 2's offline stage: `decoder.offline_steps` decoder steps from replayed states, no
/// environment steps or model updates; writes `offline.csv` (step, decoder cost) and, when
/// there is a final evaluation, `eval_offline.json` (the latent planner after the stage).
fn offline_decoder(
    agent: &mut PlanetAgent,
    dir: &Path,
    env: &mut dyn Env,
    config: &PlanetConfig,
) -> Result<()> {
    ensure!(
        !agent.buffer.episodes().is_empty(),
        "`decoder.offline_steps` needs the replay buffer of `init_from` (keep_buffer = true)"
    );
    let steps = config.decoder.offline_steps;
    let mut csv = String::from("step,decoder_cost,val_cost\n");
    let t0 = Instant::now();
    let mut val = OfflineValidation::new(agent, config)?;
    if let Some(v) = &mut val {
        let c = v.check(agent, 0)?;
        csv.push_str(&format!("0,,{c}\n"));
    }
    let (mut window, mut in_window) = (0.0, 0);
    for i in 1..=steps {
        let cost = agent
            .offline_decoder_step()
            .with_context(|| format!("offline decoder step {i}"))?;
        let checked = match &mut val {
            Some(v) if i % config.decoder.offline_val_every == 0 || i == steps => {
                v.check(agent, i)?.to_string()
            }
            _ => String::new(),
        };
        csv.push_str(&format!("{i},{cost},{checked}\n"));
        window += cost;
        in_window += 1;
        if i % (steps / 20).max(1) == 0 || i == steps {
            let checks = val.as_ref().map_or(String::new(), |v| {
                format!(
                    "; validation {:.3} (best {:.3} at step {})",
                    v.last, v.best.0, v.best.1
                )
            });
            eprintln!(
                "offline decoder step {i}/{steps}: mean cost {:.3} over the last {in_window}\
                 {checks} ({:.0} s)",
                window / in_window as f64,
                t0.elapsed().as_secs_f64()
            );
            (window, in_window) = (0.0, 0);
        }
    }
    dcem::run::atomic_write(&dir.join("offline.csv"), csv.as_bytes())?;
    if let Some(v) = val {
        v.finish(agent, dir)?;
    }
    if config.train.final_eval_episodes > 0 {
        let summary = evaluate(
            agent,
            env,
            config.train.final_eval_episodes,
            "latent DCEM after the offline decoder steps",
        )?;
        eprintln!(
            "after {steps} offline decoder steps: evaluation {:.1} +-{:.1}",
            summary.mean, summary.ci95
        );
        summary.save(&dir.join("eval_offline.json"))?;
    }
    Ok(())
}

/// The seed of the sampling noise of every offline validation solve (common random numbers).
const OFFLINE_VAL_SEED: u64 = 0x0ff1_1e5e_ed00_0001;

/// Phase 2's offline validation (`decoder.offline_val_states`): fixed replayed states, full-space
/// CEM's predicted cost on them, and the best decoder so far.
struct OfflineValidation {
    states: Tensor<2>,
    cem_cost: f64,
    best: (f64, usize, Vec<Tensor<2>>),
    last: f64,
}

/// What `offline_val.json` holds.
#[derive(serde::Serialize)]
struct OfflineValidationSummary {
    states: usize,
    full_cem_cost: f64,
    best_step: usize,
    best_cost: f64,
    last_cost: f64,
}

impl OfflineValidation {
    fn new(agent: &mut PlanetAgent, config: &PlanetConfig) -> Result<Option<Self>> {
        let n = config.decoder.offline_val_states;
        if n == 0 {
            return Ok(None);
        }
        let states = agent.offline_val_states(n)?;
        let t0 = Instant::now();
        let cem_cost = agent.predicted_plan_cost(states.clone(), true, OFFLINE_VAL_SEED)?;
        eprintln!(
            "offline validation on {n} replayed states: full-space CEM {cem_cost:.3} ({:.1} s)",
            t0.elapsed().as_secs_f64()
        );
        Ok(Some(Self {
            states,
            cem_cost,
            best: (f64::INFINITY, 0, Vec::new()),
            last: f64::NAN,
        }))
    }

    /// The latent planner's predicted cost on the states after `step` decoder steps; keeps the
    /// decoder when it is the best so far.
    fn check(&mut self, agent: &PlanetAgent, step: usize) -> Result<f64> {
        let cost = agent.predicted_plan_cost(self.states.clone(), false, OFFLINE_VAL_SEED)?;
        ensure!(
            cost.is_finite(),
            "the offline validation cost is {cost} at step {step}: lower decoder.adam.lr"
        );
        self.last = cost;
        if cost < self.best.0 {
            let params = agent
                .decoder_params()
                .context("offline validation needs phase 2's decoder")?;
            self.best = (cost, step, params);
        }
        Ok(cost)
    }

    /// Restores the best decoder and writes `offline_val.json`.
    fn finish(self, agent: &mut PlanetAgent, dir: &Path) -> Result<()> {
        let (best_cost, best_step, params) = self.best;
        agent.set_decoder_params(params)?;
        eprintln!(
            "offline validation: kept the decoder of step {best_step} (predicted cost \
             {best_cost:.3}, last {:.3}, full-space CEM {:.3})",
            self.last, self.cem_cost
        );
        let summary = OfflineValidationSummary {
            states: self.states.dims()[0],
            full_cem_cost: self.cem_cost,
            best_step,
            best_cost,
            last_cost: self.last,
        };
        let text = serde_json::to_string_pretty(&summary)?;
        dcem::run::atomic_write(&dir.join("offline_val.json"), text.as_bytes())?;
        Ok(())
    }
}

/// Loads a run's agent from its latest checkpoint (model and decoder) for evaluation, with its
/// environment; `act_tau` overrides the run's `decoder.act_tau` (phase 2).
pub fn load_agent(
    dir: &Path,
    act_tau: Option<f64>,
    device: &Device,
) -> Result<(PlanetConfig, PlanetAgent, Box<dyn Env>)> {
    let mut config = PlanetConfig::load(&dir.join("config.toml"))?;
    if act_tau.is_some() {
        config.decoder.act_tau = act_tau;
        config
            .validate()
            .context("--act-tau applies to phase-2 runs, with a temperature >= 0")?;
    }
    let (agent, env) = load_agent_as(dir, &config, device)?;
    Ok((config, agent, env))
}

/// Loads a run's latest checkpoint into an agent built from `config` (the run's own config,
/// possibly with another planner), with its environment.
pub fn load_agent_as(
    dir: &Path,
    config: &PlanetConfig,
    device: &Device,
) -> Result<(PlanetAgent, Box<dyn Env>)> {
    config.validate()?;
    let env = planet_env(config)?;
    let (obs_dim, action_dim) = env_dims(env.as_ref());
    let mut agent = PlanetAgent::new(config, obs_dim, action_dim, device)?;
    load_checkpoint(dir, &mut agent, false, false)?;
    Ok((agent, env))
}
