//! A tiny embedding run: the validation cost must improve on the untrained decoder's, a
//! resumed run must continue from its checkpoint, and bad configs must name the field.

use burn::tensor::Device;
use cartpole_embed::{
    Baseline, EmbedConfig, LatentSolver, TrainOptions, eval, load_run, seeds, train,
};
use dcem::planning::{LatentPlannerConfig, MlpDecoderConfig};
use dcem::run::Existing;

fn tiny(name: &str) -> EmbedConfig {
    let mut planner = LatentPlannerConfig::default();
    planner.cem.n_sample = 30;
    planner.cem.n_elite = 5;
    planner.cem.n_iter = 5;
    EmbedConfig {
        name: name.into(),
        iterations: 150,
        horizon: 10,
        val_states: 16,
        val_every: 50,
        checkpoint_every: 50,
        adam: dcem::optim::AdamConfig {
            lr: 2e-3,
            ..Default::default()
        },
        decoder: MlpDecoderConfig {
            hidden: 32,
            hidden_layers: 2,
            ..Default::default()
        },
        planner,
        baselines: vec![Baseline {
            n_sample: 50,
            n_elite: 5,
            n_iter: 5,
        }],
        ..EmbedConfig::default()
    }
}

fn opts(dir: &std::path::Path, existing: Existing) -> TrainOptions {
    TrainOptions {
        runs_dir: dir.to_path_buf(),
        existing,
        progress: false,
        report: true,
    }
}

#[test]
fn validation_cost_improves_and_resume_continues() {
    let dir = std::env::temp_dir().join(format!("cartpole_embed_smoke_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let device = Device::flex().autodiff();
    let cfg = tiny("smoke");
    let run = train(&cfg, &opts(&dir, Existing::Refuse), None, &device).unwrap();
    let untrained = run.val_curve[0].1;
    assert!(
        run.best.1 < untrained - 0.5,
        "validation cost did not improve: untrained {untrained}, best {}",
        run.best.1
    );
    for f in [
        "metrics.csv",
        "config.toml",
        "baselines.csv",
        "val_cost.png",
        "samples.png",
        "eval_episode.gif",
    ] {
        assert!(run.dir.join(f).is_file(), "missing {f}");
    }
    assert!(run.dir.join("checkpoints/best.safetensors").is_file());
    // An existing run is refused without --overwrite/--resume.
    assert!(train(&cfg, &opts(&dir, Existing::Refuse), None, &device).is_err());
    // Resume to 200 iterations: the first 150 rows are kept, one more validation is added.
    let longer = EmbedConfig {
        iterations: 200,
        ..cfg.clone()
    };
    let resumed = train(&longer, &opts(&dir, Existing::Resume), None, &device).unwrap();
    assert_eq!(resumed.val_curve.len(), run.val_curve.len() + 1);
    assert_eq!(
        &resumed.val_curve[..run.val_curve.len()],
        &run.val_curve[..]
    );
    assert_eq!(resumed.val_curve.last().unwrap().0, 200);
    let reloaded = load_run(&run.dir).unwrap();
    assert_eq!(reloaded.val_curve, resumed.val_curve);
    // Exact: the same validation costs, bit for bit, as 200 iterations without a stop.
    let straight = EmbedConfig {
        name: "straight".into(),
        ..longer.clone()
    };
    let straight = train(&straight, &opts(&dir, Existing::Refuse), None, &device).unwrap();
    assert_eq!(straight.val_curve, resumed.val_curve);
    // Resuming with a different experiment is refused.
    let other = EmbedConfig {
        seed: 9,
        ..longer.clone()
    };
    assert!(train(&other, &opts(&dir, Existing::Resume), None, &device).is_err());
    // So is a checkpoint whose counter is past the run's end (rewritten with a valid checksum).
    let ck_path = run.dir.join("checkpoints").join("latest.safetensors");
    let mut ck = dcem::run::Checkpoint::load(&ck_path).unwrap();
    ck.put_meta("iteration", &1_000_000_000usize).unwrap();
    ck.save(&ck_path).unwrap();
    let err = train(&longer, &opts(&dir, Existing::Resume), None, &device).unwrap_err();
    assert!(format!("{err:#}").contains("holds iteration"), "{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configs_name_the_field() {
    let cases: Vec<(EmbedConfig, &str)> = vec![
        (
            EmbedConfig {
                val_every: 0,
                ..EmbedConfig::default()
            },
            "val_every",
        ),
        (
            EmbedConfig {
                batch_states: 0,
                ..EmbedConfig::default()
            },
            "batch_states",
        ),
        (
            EmbedConfig {
                name: "a/b".into(),
                ..EmbedConfig::default()
            },
            "name",
        ),
        (
            EmbedConfig {
                baselines: vec![Baseline {
                    n_sample: 10,
                    n_elite: 20,
                    n_iter: 1,
                }],
                ..EmbedConfig::default()
            },
            "baselines[0]",
        ),
        // Sizes and counts beyond their bounds, and solves too large for the memory budget.
        (
            EmbedConfig {
                val_states: usize::MAX,
                ..EmbedConfig::default()
            },
            "val_states",
        ),
        (
            EmbedConfig {
                iterations: usize::MAX,
                ..EmbedConfig::default()
            },
            "iterations",
        ),
        (
            EmbedConfig {
                batch_states: 1 << 20,
                ..EmbedConfig::default()
            },
            "memory budget",
        ),
        (
            EmbedConfig {
                baselines: vec![Baseline {
                    n_sample: 1 << 22,
                    n_elite: 10,
                    n_iter: 1,
                }],
                ..EmbedConfig::default()
            },
            "memory budget",
        ),
    ];
    for (cfg, field) in cases {
        let err = format!("{:#}", cfg.validate().unwrap_err());
        assert!(err.contains(field), "{field}: {err}");
    }
    let mut cfg = EmbedConfig::default();
    cfg.decoder.latent_dim = 0;
    let err = format!("{:#}", cfg.validate().unwrap_err());
    assert!(err.contains("latent_dim"), "{err}");
    let parsed: Result<EmbedConfig, _> = toml::from_str("iteratons = 5");
    assert!(parsed.unwrap_err().to_string().contains("iteratons"));
}

#[test]
fn shipped_config_is_the_default() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/cartpole_embed.toml");
    assert_eq!(EmbedConfig::load(&path).unwrap(), EmbedConfig::default());
    let b8 = EmbedConfig::load(&path.with_file_name("cartpole_embed_b8.toml")).unwrap();
    assert_eq!((b8.batch_states, b8.adam.lr), (8, 2e-4));
}

/// Several start states per update, two seeds, and the best decoders measured again on the
/// reference's validation states: the summary holds each run's own best cost.
#[test]
fn seeds_summarise_batched_runs_on_both_state_sets() {
    let dir = std::env::temp_dir().join(format!("cartpole_embed_seeds_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let device = Device::flex().autodiff();
    let cfg = EmbedConfig {
        iterations: 60,
        val_every: 30,
        batch_states: 4,
        ..tiny("multi")
    };
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/cartpole_ref_val_states.json");
    let s = seeds(
        &cfg,
        &[0, 1],
        Some(&reference),
        &opts(&dir, Existing::Refuse),
        false,
        &device,
    )
    .unwrap();
    assert_eq!(s.sets.len(), 2);
    for (i, seed) in [0, 1].iter().enumerate() {
        let run = load_run(&dir.join(format!("multi_s{seed}"))).unwrap();
        assert_eq!(s.sets[0].best.values[i], run.best.1);
        assert!(s.sets[1].best.values[i].is_finite());
    }
    assert_ne!(s.sets[0].best.values[0], s.sets[0].best.values[1]);
    assert_eq!(s.sets[1].baselines.len(), 1);
    assert!(dir.join("multi_seeds/val_cost.png").is_file());
    let md = std::fs::read_to_string(dir.join("multi_seeds/summary.md")).unwrap();
    assert!(md.contains("mean, 95% CI"), "{md}");
    // Rereading gives the same summary; a bad states file is named.
    let again = seeds(
        &cfg,
        &[0, 1],
        None,
        &opts(&dir, Existing::Refuse),
        true,
        &device,
    )
    .unwrap();
    assert_eq!(again.sets[0].best.values, s.sets[0].best.values);
    // The best decoders solved again: fixed draws (the same numbers twice), hard and soft
    // elites, on the config's states and on a file's.
    let solvers: Vec<LatentSolver> = vec!["30/5/5/1".parse().unwrap(), "30/5/5/0".parse().unwrap()];
    let e = eval(&cfg, &dir, &[0, 1], &solvers, 2, None, &device).unwrap();
    assert_eq!(e.solvers.len(), 2);
    for r in &e.solvers {
        assert_eq!(r.draws.len(), 2);
        assert!(r.draws.iter().flatten().all(|c| c.is_finite()));
        assert_ne!(r.draws[0][0], r.draws[0][1], "two draws of the same solver");
    }
    let e2 = eval(&cfg, &dir, &[0, 1], &solvers, 2, None, &device).unwrap();
    assert_eq!(e2.solvers[1].draws, e.solvers[1].draws);
    assert!(dir.join("multi_seeds/eval.md").is_file());
    eval(&cfg, &dir, &[1], &[], 1, Some(&reference), &device).unwrap();
    let md =
        std::fs::read_to_string(dir.join("multi_seeds/eval_cartpole_ref_val_states.md")).unwrap();
    assert!(md.contains("30/5/5 tau 1"), "{md}");
    let err = format!(
        "{:#}",
        eval(&cfg, &dir, &[7], &[], 1, None, &device).unwrap_err()
    );
    assert!(err.contains("seed 7") && err.contains("seeds"), "{err}");
    let err = eval(&cfg, &dir, &[0], &[], 0, None, &device).unwrap_err();
    assert!(err.to_string().contains("--draws"), "{err}");
    let err = format!(
        "{:#}",
        eval(
            &cfg,
            &dir,
            &[0],
            &["30/40/5/1".parse().unwrap()],
            1,
            None,
            &device
        )
        .unwrap_err()
    );
    assert!(err.contains("--solver 30/40/5/1"), "{err}");
    let bad = EmbedConfig {
        val_file: dir.join("missing.json").display().to_string(),
        ..cfg
    };
    let err = format!(
        "{:#}",
        train(&bad, &opts(&dir, Existing::Overwrite), None, &device).unwrap_err()
    );
    assert!(err.contains("missing.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Killed (SIGKILL) at whatever moment after its second checkpoint, then resumed with
/// `--resume`: the same metrics (wall-clock column aside) as a run never interrupted.
#[test]
fn a_killed_run_resumes_exactly() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = std::env::temp_dir().join(format!("cartpole_embed_kill_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    let config = EmbedConfig {
        iterations: 3000,
        checkpoint_every: 25,
        val_every: 25,
        ..tiny("k")
    };
    std::fs::write(&cfg, toml::to_string(&config).unwrap()).unwrap();
    let train = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cartpole_embed"));
        c.args(["train", "--config"])
            .arg(&cfg)
            .arg("--runs-dir")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    // Rows every 25 iterations: past the second checkpoint (iteration 50).
    let metrics = dir.join("k").join("metrics.csv");
    let killed_at =
        dcem::run::kill_after_rows(&mut train(&[]), &metrics, 3, Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("{e}"));
    // Both finish at 400 iterations: the resumed one and one that never stopped.
    for extra in [
        &["--resume", "--iterations", "400"][..],
        &["--name", "straight", "--iterations", "400"][..],
    ] {
        let out = train(extra).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Bit patterns: the first row's training cost is NaN (no update yet).
    let columns = |run: &str| -> Vec<Vec<u64>> {
        dcem::run::MetricsCsv::read(&dir.join(run).join("metrics.csv"))
            .unwrap()
            .1
            .into_iter()
            .map(|r| r[..5].iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    let (resumed, straight) = (columns("k"), columns("straight"));
    assert!(
        killed_at < 16,
        "killed after {killed_at} rows: too late to test a resume"
    );
    assert_eq!(resumed.len(), 17, "killed after {killed_at} rows");
    assert_eq!(resumed, straight, "killed after {killed_at} rows");
    std::fs::remove_dir_all(&dir).ok();
}
