//! Behaviour fixture: a short seeded embedding run must give the same metrics as the run
//! recorded in `tests/fixtures/` (the time column aside), up to the float drift allowed between
//! CPU models. See `dcem::run::FixtureCheck`.

use std::path::Path;
use std::process::Command;

use dcem::run::{FixtureCheck, Tolerance};

const CONFIG: &str = r#"
name = "embed"
seed = 4
iterations = 40
horizon = 10
val_states = 6
val_every = 10
checkpoint_every = 20
baselines = [{ n_sample = 20, n_elite = 4, n_iter = 3 }]
[adam]
lr = 2e-3
[decoder]
latent_dim = 2
hidden = 16
hidden_layers = 2
[planner.cem]
n_sample = 16
n_elite = 4
n_iter = 3
tau = 1.0
"#;

#[test]
fn short_run_reproduces_its_fixture() {
    let dir = std::env::temp_dir().join(format!("embed-behaviour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("embed.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let runs = dir.join("runs");
    let out = Command::new(env!("CARGO_BIN_EXE_cartpole_embed"))
        .args(["train", "--config", config.to_str().unwrap()])
        .args(["--runs-dir", runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/embed.csv");
    FixtureCheck {
        ignore: &["ms_per_iteration"],
        // Renamed to the framework's metric scheme since the fixture was recorded.
        renamed: &[
            ("train_cost", "train/cost"),
            ("val_cost", "eval/cost"),
            ("best_val_cost", "eval/best_cost"),
            ("lr", "train/lr"),
        ],
        tolerance: Tolerance::ACROSS_CPUS,
    }
    .check(&fixture, &runs.join("embed").join("metrics.csv"))
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
