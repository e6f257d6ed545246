//! Small-budget runs of the regression agent: the loss falls, runs resume where they stopped,
//! bad configs are refused with the field named, and the comparison over seeds is summarised
//! from the run folders' files.

use burn::tensor::Device;
use dcem::run::Existing;
use regression_ebm::{RegressionConfig, SolverKind, TrainOptions, load_run, train};

fn small(solver: SolverKind, name: &str) -> RegressionConfig {
    RegressionConfig {
        name: name.into(),
        solver,
        hidden: 64,
        updates: 450,
        eval_every: 50,
        checkpoint_every: 150,
        ablation_max_steps: 3,
        ..RegressionConfig::default()
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

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("regression-ebm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The untrained energy's predictions sit near y0 = 0, an MSE of about 6 on x sin x; a model
/// that does not learn keeps it. Both solvers must at least halve it within 450 updates
/// (the reference reaches about 2 after 300).
#[test]
fn loss_falls_for_both_solvers() {
    let device = Device::flex().autodiff();
    let dir = tmpdir("falls");
    for solver in [SolverKind::Gd, SolverKind::Dcem] {
        let cfg = small(solver, &format!("{solver:?}"));
        let run = train(&cfg, &opts(&dir, Existing::Refuse), &device).expect("train");
        let first = run.curve[0].1;
        let best = run.curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
        assert_eq!(run.curve[0].0, 0);
        assert_eq!(run.curve.last().map(|c| c.0), Some(450));
        assert!(first > 3.0, "{solver:?}: untrained MSE {first}");
        assert!(best < 0.5 * first, "{solver:?}: MSE {first} -> best {best}");
        for f in [
            "config.toml",
            "metrics.csv",
            "energy_surface.png",
            "ablation.png",
            "train_mse.png",
        ] {
            assert!(run.dir.join(f).is_file(), "{f} missing");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_continues_and_refuses_to_clobber() {
    let device = Device::flex().autodiff();
    let dir = tmpdir("resume");
    let mut cfg = small(SolverKind::Gd, "r");
    cfg.updates = 150;
    train(&cfg, &opts(&dir, Existing::Refuse), &device).expect("first part");
    // A second fresh run of the same name must not touch the first one.
    let err = train(&cfg, &opts(&dir, Existing::Refuse), &device).expect_err("must refuse");
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    cfg.updates = 300;
    let run = train(&cfg, &opts(&dir, Existing::Resume), &device).expect("resume");
    let steps: Vec<usize> = run.curve.iter().map(|c| c.0).collect();
    assert_eq!(steps, (0..=6).map(|k| 50 * k).collect::<Vec<_>>());
    let loaded = load_run(&run.dir, &device).expect("load");
    assert_eq!(loaded.curve.len(), 7);
    assert_eq!(loaded.model.config.updates, 300);
    // A checkpoint whose counter says more updates than the run has (rewritten with a valid
    // checksum) is refused on resume, not reported as a finished run.
    let ck_path = run.dir.join("checkpoints").join("latest.safetensors");
    let mut ck = dcem::run::Checkpoint::load(&ck_path).expect("checkpoint");
    ck.put_meta("update", &1_000_000_000usize).expect("meta");
    ck.save(&ck_path).expect("save");
    let err = train(&cfg, &opts(&dir, Existing::Resume), &device).expect_err("bad counter");
    assert!(
        format!("{err:#}").contains("impossible counters"),
        "{err:#}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Killed after a checkpoint taken in the middle of a point's three steps, the resumed run ends
/// bitwise where the uninterrupted one does: the same logged MSEs and the same network.
#[test]
fn resume_mid_point_is_exact() {
    let device = Device::flex().autodiff();
    let dir = tmpdir("exact");
    let mut cfg = small(SolverKind::Dcem, "straight");
    cfg.hidden = 16;
    cfg.updates = 200;
    cfg.checkpoint_every = 100; // 100 = 33 points and one step of the 34th
    let straight = train(&cfg, &opts(&dir, Existing::Refuse), &device).expect("straight");
    cfg.name = "resumed".into();
    cfg.updates = 100;
    train(&cfg, &opts(&dir, Existing::Refuse), &device).expect("first part");
    cfg.updates = 200;
    let resumed = train(&cfg, &opts(&dir, Existing::Resume), &device).expect("resume");
    assert_eq!(resumed.curve, straight.curve);
    let params = |r: &regression_ebm::RunSummary| {
        r.model
            .net
            .params()
            .into_iter()
            .flat_map(|p| dcem::nn::to_f64_vec(p).expect("values"))
            .collect::<Vec<f64>>()
    };
    assert_eq!(params(&resumed), params(&straight));
    std::fs::remove_dir_all(&dir).ok();
}

/// A DCEM solver that passes no gradient is refused by the library's update too, not only by
/// the config check: an error, not a panic.
#[test]
fn an_update_without_gradient_is_an_error() {
    let device = Device::flex().autodiff();
    for (tau, n_elite) in [(0.0, 10), (1.0, 100)] {
        let mut cfg = small(SolverKind::Dcem, "g");
        cfg.dcem.tau = tau;
        cfg.dcem.n_elite = n_elite;
        let mut rng: rand::rngs::ChaCha8Rng = rand::SeedableRng::seed_from_u64(0);
        let mut model = regression_ebm::EnergyModel::new(&cfg, &device, &mut rng).expect("model");
        let mut adam =
            dcem::optim::Adam::new(cfg.adam.clone(), model.net.params().len()).expect("adam");
        let x = dcem::nn::tensor_from_f64(&[1.0], [1, 1], &device).expect("x");
        let y = dcem::nn::tensor_from_f64(&[0.5], [1, 1], &device).expect("y");
        let err = regression_ebm::update_step(&mut model, &mut adam, x, y, &mut rng)
            .expect_err("no gradient");
        assert!(format!("{err:#}").contains("tau > 0"), "{err:#}");
    }
}

#[test]
fn bad_configs_name_the_field() {
    let dir = tmpdir("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let cases = [
        ("updates = 0\n", "updates"),
        ("solver = \"newton\"\n", "solver"),
        ("[dcem]\nn_elite = 500\n", "n_elite"),
        ("lerning_rate = 1.0\n", "lerning_rate"),
        ("[gd]\nlr = -1.0\n", "lr"),
        // Sizes and counts beyond their bounds, and a solve too large for the memory budget.
        ("n_points = 100000000000\n", "n_points"),
        (
            "ablation_max_steps = 9223372036854775807\n",
            "ablation_max_steps",
        ),
        ("hidden = 18446744073709551615\n", "hidden"),
        ("n_points = 1000000\nhidden = 10000\n", "memory budget"),
        ("[dcem]\nn_sample = 4000000000\n", "n_sample"),
        // Valid for the solver alone, but the network could learn nothing through it.
        ("solver = \"dcem\"\n[dcem]\ntau = 0.0\n", "dcem.tau"),
        (
            "solver = \"dcem\"\n[dcem]\nn_sample = 30\nn_elite = 30\n",
            "dcem.n_elite",
        ),
    ];
    for (text, field) in cases {
        let p = dir.join("c.toml");
        std::fs::write(&p, text).expect("write");
        let err = RegressionConfig::load(&p).expect_err(text);
        assert!(format!("{err:#}").contains(field), "{text}: {err:#}");
    }
    let missing = RegressionConfig::load(&dir.join("nope.toml")).expect_err("missing file");
    assert!(format!("{missing:#}").contains("nope.toml"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Killed (SIGKILL) at whatever moment after its first checkpoints, then resumed with
/// `--resume`: the same logged MSEs and learning rates as a run never interrupted.
#[test]
fn a_killed_run_resumes_exactly() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = tmpdir("kill");
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "name = \"k\"\nsolver = \"dcem\"\nhidden = 16\nupdates = 1500\neval_every = 50\n\
         checkpoint_every = 100\nablation_max_steps = 2\n[dcem]\nn_sample = 30\nn_elite = 5\n\
         n_iter = 4\n",
    )
    .expect("config");
    let train = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_regression_ebm"));
        c.args(["train", "--config"])
            .arg(&cfg)
            .arg("--runs-dir")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    // Past the second checkpoint (update 200), then killed wherever it is.
    let metrics = dir.join("k").join("metrics.csv");
    let killed_at =
        dcem::run::kill_after_rows(&mut train(&[]), &metrics, 6, Duration::from_secs(300))
            .unwrap_or_else(|e| panic!("{e}"));
    for extra in [&["--resume"][..], &["--name", "straight"][..]] {
        let out = train(extra).output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let columns = |run: &str| -> Vec<Vec<f64>> {
        dcem::run::MetricsCsv::read(&dir.join(run).join("metrics.csv"))
            .expect("metrics")
            .1
            .into_iter()
            .map(|r| r[..3].to_vec())
            .collect()
    };
    let (resumed, straight) = (columns("k"), columns("straight"));
    assert_eq!(resumed.len(), 31, "killed after {killed_at} rows");
    assert_eq!(resumed, straight, "killed after {killed_at} rows");
    std::fs::remove_dir_all(&dir).ok();
}

/// `seeds` runs the comparison per seed, and its summary is made from the folders' files alone:
/// rereading them (`summarise_only`) gives the same table, and a non-finite analysis value
/// (written as JSON `null`) reads back as NaN instead of failing.
#[test]
fn seeds_compare_per_seed_and_summarise_from_files() {
    use regression_ebm::AnalysisSummary;
    use regression_ebm::seeds::{seeds, summary_dir};
    let dir = tmpdir("seeds");
    let (mut gd, mut dcem) = (small(SolverKind::Gd, "g"), small(SolverKind::Dcem, "d"));
    gd.updates = 100;
    dcem.updates = 100;
    let o = opts(&dir, Existing::Refuse);
    let device = Device::flex().autodiff();
    let out = seeds("cmp", &gd, &dcem, &[0, 1], &o, false, None, &device).unwrap();
    assert_eq!(out, summary_dir(&dir, "cmp"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| 0 | ") && md.contains("| 1 | ") && md.contains("at 3 test-time steps"));
    assert!(dir.join("cmp_s1").join("comparison.md").exists());
    let again = dir.join("again");
    seeds("cmp", &gd, &dcem, &[0, 1], &o, true, Some(&again), &device).unwrap();
    assert_eq!(
        std::fs::read_to_string(again.join("summary.md")).unwrap(),
        md
    );
    let run = dir.join("cmp_s0").join("g");
    let mut a = AnalysisSummary::load(&run).unwrap();
    a.median_dist_to_min = f64::INFINITY;
    a.ablation[0].1 = f64::NAN;
    std::fs::write(
        run.join("analysis.json"),
        serde_json::to_string(&a).unwrap(),
    )
    .unwrap();
    let b = AnalysisSummary::load(&run).unwrap();
    assert!(b.median_dist_to_min.is_nan() && b.ablation[0].1.is_nan());
    assert_eq!(b.frac_near_min, a.frac_near_min);
    std::fs::remove_dir_all(&dir).ok();
}
