//! A plain-PPO run killed (SIGKILL) after a checkpoint and resumed with `--resume` ends with the
//! same metrics, bit for bit (the steps-per-second column aside), as a run never interrupted:
//! the environments are rebuilt mid-episode by replaying their episodes.

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
        MetricsCsv::read(&dir.join(run).join("metrics.csv"))
            .unwrap()
            .1
            .into_iter()
            .map(|r| r[..11].iter().map(|v| v.to_bits()).collect())
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
