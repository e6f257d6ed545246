//! Behaviour fixture: a short seeded PPO run must give the same metrics as the run recorded in
//! `tests/fixtures/` before the agent was rebuilt on `dcem::rl`'s collector and `PpoAgent` (the
//! rate column aside; columns renamed to the framework's metric scheme are mapped), up to the
//! float drift allowed between CPU models. See `dcem::run::FixtureCheck`.

use std::path::Path;
use std::process::Command;

use dcem::run::{FixtureCheck, Tolerance};

const CONFIG: &str = r#"
name = "ppo"
seed = 3
total_steps = 768
num_envs = 4
num_steps = 64
anneal_lr = true
eval_episodes = 2
[env]
kind = "cartpole"
[policy]
hidden = 16
layers = 2
[ppo]
lr = 1e-3
epochs = 2
minibatches = 2
learn_std = true
"#;

#[test]
fn short_run_reproduces_its_fixture() {
    let dir = std::env::temp_dir().join(format!("ppo-behaviour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ppo.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let runs = dir.join("runs");
    let out = Command::new(env!("CARGO_BIN_EXE_ppo"))
        .args(["train", "--config", config.to_str().unwrap()])
        .args(["--runs-dir", runs.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppo.csv");
    FixtureCheck {
        ignore: &["charts/SPS"],
        renamed: &[
            ("global_step", "env_steps"),
            ("charts/episodic_return", "train/return"),
            ("charts/episodes", "train/episodes"),
            ("charts/learning_rate", "train/lr"),
            ("losses/policy_loss", "loss/policy"),
            ("losses/value_loss", "loss/value"),
            ("losses/entropy", "loss/entropy"),
            ("losses/approx_kl", "loss/approx_kl"),
            ("losses/clipfrac", "loss/clipfrac"),
            ("losses/explained_variance", "loss/explained_variance"),
            ("charts/std", "train/std"),
        ],
        tolerance: Tolerance::ACROSS_CPUS,
    }
    .check(&fixture, &runs.join("ppo").join("metrics.csv"))
    .unwrap();
    let eval_fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppo_eval.csv");
    FixtureCheck::default()
        .check_returns(&eval_fixture, &runs.join("ppo").join("eval.json"))
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
