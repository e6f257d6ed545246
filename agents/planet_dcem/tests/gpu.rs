//! A short agent run on the wgpu device against the same run on the CPU: the planet binary with
//! `--device wgpu` trains the ensemble agent on the swing-up and writes the same metrics as with
//! `--device cpu`, within stated tolerances.
//!
//! Built with the `wgpu` feature (`cargo test -p planet-dcem --features wgpu --test gpu`);
//! skipped with a message where no wgpu device comes up, unless `DCEM_REQUIRE_GPU=1` (CI).
#![cfg(feature = "wgpu")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dcem::run::MetricsCsv;

/// Two random seed episodes, then two planned ones (updates every 5 steps in those).
const CONFIG: &str = r#"
name = "gpu"
seed = 1
phase = "cem"
dynamics = "ensemble"
[env]
kind = "swingup"
episode_steps = 40
[train]
seed_episodes = 2
episodes = 2
seed_action_scale = 0.3
action_repeat = 2
update_every = 5
updates = 2
chunk = 10
eval_every = 0
final_eval_episodes = 1
checkpoint_every = 2
[ensemble]
members = 2
hidden = 16
layers = 2
batch = 16
[cem]
horizon = 5
[cem.cem]
n_sample = 32
n_elite = 4
n_iter = 3
tau = 0.0
iter_eps = 0.0
init_sigma = 0.5
"#;

fn run(device: &str, dir: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let config = dir.join("gpu.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_planet_dcem"))
        .args(["train", "--config", config.to_str().unwrap()])
        .args(["--runs-dir", dir.to_str().unwrap(), "--name", device])
        .args(["--device", device, "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "--device {device}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    MetricsCsv::read(&dir.join(device).join("metrics.csv")).unwrap()
}

#[test]
fn a_short_ensemble_run_on_wgpu_matches_the_cpu() {
    if let Err(e) = dcem::device::wgpu_device() {
        assert!(
            std::env::var("DCEM_REQUIRE_GPU").as_deref() != Ok("1"),
            "DCEM_REQUIRE_GPU=1 but {e}"
        );
        eprintln!("SKIPPED (no wgpu device; set DCEM_REQUIRE_GPU=1 to fail instead): {e}");
        return;
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("planet-gpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (header, cpu) = run("cpu", &dir);
    let (_, gpu) = run("wgpu", &dir);
    assert_eq!(cpu.len(), gpu.len(), "rows");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (ret, loss) = (col("train/return"), col("loss/model"));
    for (i, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert!(
            g[loss].is_nan() == c[loss].is_nan(),
            "episode {i}: loss {} vs {}",
            g[loss],
            c[loss]
        );
        // Seed episodes act at random from the run's seed: the same returns.
        if i < 2 {
            assert!((g[ret] - c[ret]).abs() <= 1e-9, "seed episode {i} return");
        }
        // The model's losses: f32 rounding of each device (measured: 1e-7 of the loss).
        if c[loss].is_finite() {
            assert!(
                (g[loss] - c[loss]).abs() <= 1e-4 * (1.0 + c[loss].abs()),
                "episode {i}: model loss {} on wgpu vs {} on the cpu",
                g[loss],
                c[loss]
            );
        }
        // Planned episodes: the plans agree to f32 rounding, which the swing-up's dynamics
        // can amplify; the returns stay within 1% (measured: equal).
        if i >= 2 {
            assert!(
                (g[ret] - c[ret]).abs() <= 0.01 * (1.0 + c[ret].abs()),
                "planned episode {i}: return {} on wgpu vs {} on the cpu",
                g[ret],
                c[ret]
            );
        }
    }
    assert!(
        cpu.iter().filter(|r| r[loss].is_finite()).count() >= 2,
        "the run made no model updates to compare"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
