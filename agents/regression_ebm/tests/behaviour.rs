//! Behaviour fixtures: short seeded runs of both solvers must give the same metrics as the
//! runs recorded in `tests/fixtures/` (the time column aside), up to the float drift allowed
//! between CPU models. See
//! `dcem::run::FixtureCheck`.

use std::path::Path;
use std::process::Command;

use dcem::run::{FixtureCheck, Tolerance};

#[test]
fn short_runs_reproduce_their_fixtures() {
    let dir = std::env::temp_dir().join(format!("regression-behaviour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    for solver in ["gd", "dcem"] {
        let config = dir.join(format!("{solver}.toml"));
        std::fs::write(
            &config,
            format!(
                "name = \"{solver}\"\nseed = 2\nsolver = \"{solver}\"\nupdates = 60\n\
                 hidden = 16\neval_every = 20\ncheckpoint_every = 30\nablation_max_steps = 2\n"
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_regression_ebm"))
            .args(["train", "--config", config.to_str().unwrap()])
            .args(["--runs-dir", runs.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{solver}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/regression_{solver}.csv"));
        FixtureCheck {
            ignore: &["ms_per_update"],
            // Renamed to the framework's metric scheme since the fixtures were recorded.
            renamed: &[("train_mse", "eval/train_mse"), ("lr", "train/lr")],
            tolerance: Tolerance::ACROSS_CPUS,
        }
        .check(&fixture, &runs.join(solver).join("metrics.csv"))
        .unwrap_or_else(|e| panic!("{solver}: {e}"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
