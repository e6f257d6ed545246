//! PlaNet-style online model-based RL with a learned RSSM and a (D)CEM planner (paper
//! sect. 5.2.2, appendix D, alg. 3).
//!
//! `dynamics = "ensemble"` learns a PETS-style probabilistic ensemble over the observation
//! instead of the RSSM (fully observed environments, phases 1 and 2): the state the planner
//! starts from is then the observation itself (see [`world`]).
//!
//! * Phase 1: seed episodes with uniform random actions, then every step the agent filters its
//!   latent state with the RSSM's posterior, plans with full-space CEM on the learned model
//!   (warm-started by shifting) and adds Gaussian exploration noise; every `update_every` steps
//!   it takes `updates` gradient steps on the variational bound over `[batch x chunk]`
//!   sequence chunks from the replay buffer.
//! * Phase 2: the same loop, planning with latent DCEM through an action decoder
//!   `z -> u_{1:H}` that is learned online: after each model update the agent solves the
//!   latent problem from replayed posterior states and steps the decoder on the predicted cost
//!   of the solution, through DCEM. Phase 2 can start from a phase-1 run (`init_from`), and
//!   first train the decoder offline from that run's buffer (`decoder.offline_steps`),
//!   validated on fixed replayed states with the best decoder kept (`decoder.offline_val_states`).
//!
//! Actions are planned in `[-1, 1]^A` and mapped linearly onto the environment's bounds.
//!
//! The crate is split by concern: [`config`] (the TOML experiment), [`agent`] (the
//! [`PlanetAgent`]: planner, decoder learning), [`world`] (the RSSM and its belief filter, or
//! the ensemble), [`train`] (the online loop
//! over `dcem::runner`), [`checkpoint`], [`report`] (metrics columns, plots, tables),
//! [`diagnose`] (open-loop model error and predicted against received returns),
//! [`phase3`] (PPO fine-tuning of the latent DCEM controller), [`seeds`] (one config over
//! several seeds, summarised with confidence intervals), [`study`] (return against samples
//! per plan for planner variants, e.g. CEM against iCEM) and [`compare`] (learning curves
//! against published figures, and where a run's time went).

use anyhow::{Result, bail};
use burn::tensor::Device;
use dcem::agent::MpcAgent;
use dcem::env::ActionRepeat;
use dcem::model::{Model, RepeatActions};
use dcem::nn::RssmConfig;
use dcem::planning::CemPlanner;
use dcem::runner::{eval_seeds, evaluate_timed};
use dcem_envs::{EnvSpec, SwingupModel, make_env};

pub mod agent;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod diagnose;
pub mod phase3;
pub mod report;
pub mod seeds;
pub mod study;
pub mod train;
pub mod value;
pub mod world;

pub use agent::PlanetAgent;
pub use config::{
    DecoderTrainConfig, FinetuneConfig, OptimConfig, Phase, PlanetConfig, TrainConfig,
};
pub use config::{env_dims, planet_env};
pub use dcem::device::parse_device;
pub use dcem::run::{EvalSummary, RunOptions};
pub use report::{METRICS, PPO_METRICS, RunSummary, eval_table, load_run, write_plots};
pub use train::{evaluate, load_agent, load_agent_as, train_online};

/// Runs (or resumes) the experiment of `config`: phases 1 and 2 with [`train_online`], phase 3
/// with [`phase3::finetune`].
pub fn train(config: &PlanetConfig, opts: &RunOptions, device: &Device) -> Result<RunSummary> {
    if config.phase == Phase::Ppo {
        phase3::finetune(config, opts, device)
    } else {
        train_online(config, opts, device)
    }
}

/// The upper bound of the swing-up: the config's CEM planner on the true dynamics
/// (`SwingupModel`, actions held for the config's action repeat) in an [`MpcAgent`], on the
/// evaluation seeds.
pub fn true_model_eval(config: &PlanetConfig, episodes: usize) -> Result<EvalSummary> {
    true_model_eval_on(config, &eval_seeds(episodes))
}

/// [`true_model_eval`] from the start states of the given episode seeds (e.g.
/// `dcem::runner::periodic_eval_seeds`, the development start states).
pub fn true_model_eval_on(config: &PlanetConfig, seeds: &[u64]) -> Result<EvalSummary> {
    let EnvSpec::Swingup { .. } = config.env else {
        bail!(
            "the shipped true-dynamics model is the swing-up's (env.kind = \"swingup\"); for \
             another environment pass its model to `true_model_eval_with`"
        );
    };
    true_model_eval_with(config, SwingupModel, seeds)
}

/// The bound for any environment, a registered one included: the config's CEM planner on
/// `model`, a per-step model of the true dynamics and cost of the config's environment (its
/// actions held for the config's action repeat), in an [`MpcAgent`] on that environment, from
/// the start states of `seeds`.
pub fn true_model_eval_with<M: Model + 'static>(
    config: &PlanetConfig,
    model: M,
    seeds: &[u64],
) -> Result<EvalSummary> {
    let mut env = ActionRepeat::new(make_env(&config.env)?, config.train.action_repeat)?;
    let model = RepeatActions {
        model,
        repeat: config.train.action_repeat,
    };
    let planner = CemPlanner::new(config.cem.clone())?;
    let mut agent = MpcAgent::new(Box::new(model), Box::new(planner), Device::flex());
    let (returns, ms) = evaluate_timed(&mut agent, &mut env, seeds)?;
    Ok(EvalSummary::new("CEM on the true dynamics", returns, ms))
}

/// Floating-point operations (multiply and add counted separately) of the RSSM's matmuls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RssmFlops {
    /// One imagined step of planning: input layer, GRU, prior, reward head.
    pub imagine_step: f64,
    /// One step of the training loss, forward only: encoder, input, GRU, prior, posterior,
    /// observation and reward heads.
    pub loss_step: f64,
}

/// The matmul FLOPs of an RSSM with these sizes (element-wise work is not counted).
pub fn rssm_flops(m: &RssmConfig, obs_dim: usize, action_dim: usize) -> RssmFlops {
    let (d, z, h) = (m.deter as f64, m.stoch as f64, m.hidden as f64);
    let (o, a) = (obs_dim as f64, action_dim as f64);
    let input = (z + a) * h;
    let gru = (h + d) * 3.0 * d;
    let prior = d * h + h * 2.0 * z;
    let posterior = (d + h) * h + h * 2.0 * z;
    let encoder = o * h + h * h;
    let obs_head = (d + z) * h + h * h + h * o;
    let reward = (d + z) * h + h * h + h;
    RssmFlops {
        imagine_step: 2.0 * (input + gru + prior + reward),
        loss_step: 2.0 * (encoder + input + gru + prior + posterior + obs_head + reward),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_shipped_configs_parse_and_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("planet_")
                    .and_then(|n| n.strip_suffix(".toml"))
                    .map(|n| format!("planet_{n}"))
            })
            .collect();
        names.sort();
        assert!(names.len() >= 20, "{names:?}");
        for name in &names {
            let cfg = PlanetConfig::load(&root.join(format!("{name}.toml")))
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(&cfg.name, name);
        }
        // The defaults are a valid config on their own (an empty file).
        PlanetConfig::default().validate().unwrap();
    }

    /// `PlanetAgent::with_planner` acts with the planner it is given (here a random-shooting
    /// CEM of one iteration) through the episode runner, and learns from what it observes.
    #[test]
    fn any_planner_drives_the_planet_agent() {
        use dcem::agent::Mode;
        use dcem::planning::CemPlannerConfig;
        let mut cfg = PlanetConfig {
            env: EnvSpec::Swingup { episode_steps: 20 },
            ..PlanetConfig::default()
        };
        cfg.train.action_repeat = 2;
        cfg.train.chunk = 5;
        cfg.train.batch = 2;
        cfg.train.update_every = 5;
        cfg.model = RssmConfig {
            deter: 8,
            stoch: 2,
            hidden: 8,
            ..RssmConfig::default()
        };
        let mut shooting = CemPlannerConfig {
            horizon: 3,
            ..CemPlannerConfig::default()
        };
        shooting.cem.n_sample = 8;
        shooting.cem.n_elite = 2;
        shooting.cem.n_iter = 1;
        let planner = CemPlanner::new(shooting).unwrap();
        let mut env = planet_env(&cfg).unwrap();
        let (o, a) = env_dims(env.as_ref());
        let device = Device::flex();
        let mut agent = PlanetAgent::with_planner(&cfg, o, a, Box::new(planner), &device).unwrap();
        let seed = dcem::runner::run_episode(&mut agent, env.as_mut(), 1, Mode::Seed).unwrap();
        assert!(seed.updates.is_empty(), "no updates in a seed episode");
        let ep = dcem::runner::run_episode(&mut agent, env.as_mut(), 2, Mode::Train).unwrap();
        assert_eq!((ep.steps, ep.env_steps), (10, 20));
        assert_eq!(ep.updates.len(), 2, "an update every 5 of 10 steps");
        assert_eq!(agent.buffer.episodes().len(), 2);
        let returns = dcem::runner::evaluate(&mut agent, env.as_mut(), &[7]).unwrap();
        assert!(returns[0].is_finite());
        assert_eq!(
            agent.buffer.episodes().len(),
            2,
            "evaluation stores nothing"
        );
    }

    #[test]
    fn unknown_devices_and_env_kinds_are_refused() {
        assert!(parse_device("cuda").is_err());
        let bad: std::result::Result<PlanetConfig, _> = toml::from_str("[env]\nkind = \"mars\"");
        assert!(bad.is_err());
    }

    #[test]
    fn eval_summary_statistics() {
        let s = EvalSummary::new("x", vec![1.0, 2.0, 3.0], 0.0);
        assert!((s.mean - 2.0).abs() < 1e-12);
        assert!((s.std - 1.0).abs() < 1e-12);
        // Student's t with 2 degrees of freedom (4.303), not the normal approximation.
        assert!((s.ci95 - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert!((s.ci95_t() - s.ci95).abs() < 1e-12);
    }
}
