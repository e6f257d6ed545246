//! Run folders of plain PPO: a run killed (SIGKILL) after a checkpoint and resumed with
//! `--resume` ends with the same metrics, bit for bit (the wall-clock columns aside), as a run
//! never interrupted (the environments are rebuilt mid-episode by replaying their episodes);
//! `seeds` trains a run per seed and summarises them, and `--summarise-only` rereads the same.

use std::process::{Command, Stdio};
use std::time::Duration;

use dcem::run::MetricsCsv;

const CONFIG: &str = r#"
name = "k"
seed = 4
total_steps = 6400
num_envs = 2
num_steps = 64
eval_episodes = 1
checkpoint_every = 3
[env]
kind = "cartpole"
[ppo]
epochs = 2
minibatches = 2
"#;

#[test]
fn a_killed_run_resumes_exactly() {
    let dir = std::env::temp_dir().join(format!("ppo-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let train = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ppo"));
        c.args(["train", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--runs-dir")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    // Past the second checkpoint (update 6), then killed wherever it is.
    let metrics = dir.join("k").join("metrics.csv");
    let killed_at =
        dcem::run::kill_after_rows(&mut train(&[]), &metrics, 7, Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("{e}"));
    for extra in [&["--resume"][..], &["--name", "straight"][..]] {
        let out = train(extra).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Bit patterns (a return is NaN where no episode ended), wall-clock column aside.
    let columns = |run: &str| -> Vec<Vec<u64>> {
        let (names, rows) = MetricsCsv::read(&dir.join(run).join("metrics.csv")).unwrap();
        // Every column but the two wall-clock ones.
        let kept: Vec<usize> = (0..names.len())
            .filter(|&i| !["perf/env_steps_per_s", "perf/wall_s"].contains(&names[i].as_str()))
            .collect();
        assert_eq!(kept.len(), names.len() - 2, "{names:?}");
        rows.into_iter()
            .map(|r| kept.iter().map(|&i| r[i].to_bits()).collect())
            .collect()
    };
    let (resumed, straight) = (columns("k"), columns("straight"));
    assert!(killed_at < 50, "killed after {killed_at} rows: too late");
    assert_eq!(resumed.len(), 50, "killed after {killed_at} rows");
    assert_eq!(resumed, straight, "killed after {killed_at} rows");
    // A run of another config is not resumed.
    std::fs::write(&cfg, CONFIG.replace("seed = 4", "seed = 5")).unwrap();
    let out = train(&["--resume"]).output().unwrap();
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn seeds_train_each_seed_and_summarise_them() {
    let dir = std::env::temp_dir().join(format!("ppo-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        CONFIG.replace("total_steps = 6400", "total_steps = 512"),
    )
    .unwrap();
    let seeds = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ppo"))
            .args(["seeds", "--seeds", "0,1", "--config"])
            .arg(&cfg)
            .arg("--runs-dir")
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = seeds(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary_dir = dir.join("k_seeds");
    let md = std::fs::read_to_string(summary_dir.join("summary.md")).unwrap();
    assert!(md.contains("| 0 | ") && md.contains("| 1 | "), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(json["protocol"]["runs"], 2);
    assert!(summary_dir.join("performance_profile.png").exists());
    for seed in [0, 1] {
        let (cols, rows) =
            MetricsCsv::read(&dir.join(format!("k_s{seed}")).join("metrics.csv")).unwrap();
        assert!(cols.iter().any(|c| c == "train/return_last20"), "{cols:?}");
        assert!(rows.last().unwrap()[13] > 0.0, "perf/wall_s is not counted");
    }
    // Rereading the finished runs gives the same table, written elsewhere.
    let again = dir.join("again");
    let out = seeds(&["--summarise-only", "--summary-dir", again.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(again.join("summary.md")).unwrap(),
        md
    );
    // An interrupted seed (a folder without eval.json) is not silently retrained.
    std::fs::remove_file(dir.join("k_s1").join("eval.json")).unwrap();
    let out = seeds(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--resume"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
