//! The experiment's config (`configs/ppo_cartpole.toml`), validated with errors that name the
//! field.

use std::path::Path;

use anyhow::{Result, ensure};
use dcem::limits::{self, MemoryEstimate};
use dcem::rl::PpoConfig;
use dcem::run::check_run_name;
use dcem_envs::EnvSpec;
use serde::{Deserialize, Serialize};

// ANCHOR: policy_net
/// The policy network's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyNet {
    /// Hidden units per layer.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
}
// ANCHOR_END: policy_net

impl Default for PolicyNet {
    fn default() -> Self {
        Self {
            hidden: 64,
            layers: 2,
        }
    }
}

/// The most environment steps one update may collect (`num_envs x num_steps`): its rollout
/// (observations, actions, values, log-probabilities) is held in memory.
pub const MAX_STEPS_PER_UPDATE: usize = 1 << 24;
/// The most episodes of the final evaluation.
pub const MAX_EVAL_EPISODES: usize = 100_000;

// ANCHOR: ppo_agent_config
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
    /// Write a checkpoint every this many updates (0: only at the end); `--resume` continues
    /// from the last one exactly.
    pub checkpoint_every: usize,
    /// The environment.
    pub env: EnvSpec,
    /// The policy mean's network.
    pub policy: PolicyNet,
    /// PPO's options.
    pub ppo: PpoConfig,
}
// ANCHOR_END: ppo_agent_config

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
            checkpoint_every: 10,
            env: EnvSpec::Cartpole {},
            policy: PolicyNet::default(),
            ppo: PpoConfig::default(),
        }
    }
}

impl PpoAgentConfig {
    /// Reads and validates a TOML config.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(dcem::train::load_config(path, Self::validate)?)
    }

    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_run_name(&self.name)?;
        ensure!(self.num_envs >= 1, "num_envs must be at least 1");
        ensure!(self.num_steps >= 1, "num_steps must be at least 1");
        let per_update = self.num_envs.checked_mul(self.num_steps);
        ensure!(
            per_update.is_some_and(|n| n <= MAX_STEPS_PER_UPDATE),
            "num_envs x num_steps ({} x {}) must be at most {MAX_STEPS_PER_UPDATE} (one update's \
             rollout is held in memory)",
            self.num_envs,
            self.num_steps
        );
        ensure!(
            self.total_steps >= self.num_envs * self.num_steps,
            "total_steps ({}) must cover at least one update of num_envs x num_steps = {}",
            self.total_steps,
            self.num_envs * self.num_steps
        );
        ensure!(
            (1..=MAX_EVAL_EPISODES).contains(&self.eval_episodes),
            "eval_episodes must be in 1..={MAX_EVAL_EPISODES} (the final evaluation), got {}",
            self.eval_episodes
        );
        ensure!(
            self.policy.hidden >= 1 && self.policy.layers >= 1,
            "policy.hidden and policy.layers must be at least 1"
        );
        limits::check_dim("policy.hidden", self.policy.hidden)?;
        limits::check_dim("policy.layers", self.policy.layers)?;
        limits::check_count("total_steps", self.total_steps)?;
        limits::check_count("checkpoint_every", self.checkpoint_every)?;
        // One update's rollout and its minibatch passes through the policy and value nets.
        let widest = self.policy.hidden.max(self.ppo.value_hidden);
        let layers = self.policy.layers.max(self.ppo.value_layers);
        MemoryEstimate::new()
            .add(
                "rollout and minibatch activations [num_envs x num_steps, hidden x layers]",
                4.0,
                &[self.num_envs, self.num_steps, widest, layers],
            )
            .check("this config")?;
        self.ppo.validate()?;
        Ok(())
    }

    /// Updates in the run.
    pub fn updates(&self) -> usize {
        self.total_steps / (self.num_envs * self.num_steps)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::train::train;
    use burn::tensor::Device;
    use dcem::run::{MetricsCsv, RunOptions};

    #[test]
    fn the_shipped_config_parses_and_bad_ones_name_the_field() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/ppo_cartpole.toml");
        let cfg = PpoAgentConfig::load(&root).unwrap();
        assert_eq!(cfg.env, EnvSpec::Cartpole {});
        assert!(cfg.total_steps <= 200_000);
        let bad = PpoAgentConfig {
            num_envs: 0,
            ..PpoAgentConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("num_envs"));
        let e = toml::from_str::<PpoAgentConfig>("[ppo]\nlr = 1e-3\nclip = 0.1\n").unwrap_err();
        assert!(e.to_string().contains("clip"), "{e}");
        // An unknown key under an env kind without options is refused like any other.
        for text in [
            "[env]\nkind = \"cartpole\"\nepisode_steps = 10\n",
            "[env]\nkind = \"cheetah_run\"\nx = 1\n",
        ] {
            let e = toml::from_str::<PpoAgentConfig>(text).unwrap_err();
            assert!(e.to_string().contains("unknown field"), "{text}: {e}");
        }
        // Sizes whose product overflows, and a final evaluation of no episodes.
        for (bad, field) in [
            (
                PpoAgentConfig {
                    num_envs: 1 << 33,
                    num_steps: 1 << 31,
                    ..PpoAgentConfig::default()
                },
                "num_envs x num_steps",
            ),
            (
                PpoAgentConfig {
                    eval_episodes: 0,
                    ..PpoAgentConfig::default()
                },
                "eval_episodes",
            ),
            (
                PpoAgentConfig {
                    total_steps: usize::MAX,
                    ..PpoAgentConfig::default()
                },
                "total_steps",
            ),
            (
                PpoAgentConfig {
                    policy: PolicyNet {
                        hidden: 1 << 22,
                        ..PolicyNet::default()
                    },
                    ..PpoAgentConfig::default()
                },
                "memory budget",
            ),
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
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
