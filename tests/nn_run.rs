//! The framework's training utilities: Adam against hand-computed steps, gradient clipping,
//! the plateau schedule, checkpoints and metrics files.

use burn::tensor::{Device, Tensor};
use dcem::nn::{Activation, Mlp, elu_and_slope, softplus_and_slope, tensor_from_f64, to_f64_vec};
use dcem::optim::{Adam, AdamConfig, PlateauConfig, ReduceLrOnPlateau, clip_grad_norm};
use dcem::run::{Checkpoint, Existing, MetricsCsv, RunDir, check_seeds};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dcem-nn-run-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn softplus_f64(a: f64) -> f64 {
    a.max(0.0) + (-a.abs()).exp().ln_1p()
}

fn sigmoid_f64(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

#[test]
fn fused_softplus_matches_the_f64_formula() {
    let mut a: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.01).collect();
    a.extend([
        -1e4, -200.0, -88.0, -87.5, 87.5, 200.0, 1e4, 1e-8, -1e-8, 0.0,
    ]);
    let (mut v, mut s) = (vec![0.0; a.len()], vec![0.0; a.len()]);
    softplus_and_slope(&a, &mut v, &mut s);
    for ((a, v), s) in a.iter().zip(&v).zip(&s) {
        let (want_v, want_s) = (softplus_f64(*a as f64), sigmoid_f64(*a as f64));
        // Within a few f32 ulps of the result, or of 1 where the result is tiny.
        let tol_v = 4.0 * f32::EPSILON as f64 * want_v.abs().max(1e-6);
        assert!(
            (*v as f64 - want_v).abs() <= tol_v.max(1e-12),
            "softplus({a}) = {v}, want {want_v}"
        );
        assert!(
            (*s as f64 - want_s).abs() <= 4.0 * f32::EPSILON as f64 * want_s.max(1e-6),
            "sigmoid({a}) = {s}, want {want_s}"
        );
    }
}

#[test]
fn fused_elu_matches_the_f64_formula() {
    let mut a: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.01).collect();
    a.extend([-1e4, -200.0, -88.0, -87.5, 200.0, 1e4, 1e-8, -1e-8, 0.0]);
    let (mut v, mut s) = (vec![0.0; a.len()], vec![0.0; a.len()]);
    elu_and_slope(&a, &mut v, &mut s);
    for ((a, v), s) in a.iter().zip(&v).zip(&s) {
        let x = *a as f64;
        let (want_v, want_s) = if x > 0.0 {
            (x, 1.0)
        } else {
            (x.exp_m1(), x.exp())
        };
        // exp(a) - 1 is formed in f32, so near 0 the error is a few ulps of 1.
        assert!(
            (*v as f64 - want_v).abs() <= 4.0 * f32::EPSILON as f64 * want_v.abs().max(1.0),
            "elu({a}) = {v}, want {want_v}"
        );
        assert!(
            (*s as f64 - want_s).abs() <= 4.0 * f32::EPSILON as f64 * want_s.max(1e-30),
            "elu'({a}) = {s}, want {want_s}"
        );
    }
}

#[test]
fn elu_activation_gives_value_and_slope_on_the_tape() {
    let device = Device::flex().autodiff();
    let host: Vec<f64> = (-30..=30).map(|i| i as f64 * 0.3).collect();
    let a = tensor_from_f64(&host, [61, 1], &device)
        .unwrap()
        .require_grad();
    let out = Activation::Elu.apply(a.clone());
    let values = to_f64_vec(out.clone()).unwrap();
    let grad = to_f64_vec(a.grad(&out.sum().backward()).unwrap().autodiff()).unwrap();
    for ((x, v), g) in host.iter().zip(&values).zip(&grad) {
        let x = *x as f32 as f64;
        let (want_v, want_g) = if x > 0.0 {
            (x, 1.0)
        } else {
            (x.exp_m1(), x.exp())
        };
        assert!(
            (v - want_v).abs() <= 1e-6 * want_v.abs().max(1.0),
            "elu({x}) = {v}"
        );
        assert!((g - want_g).abs() <= 1e-6, "elu slope at {x}: {g}");
    }
}

#[test]
fn softplus_activation_gives_value_and_slope_on_the_tape() {
    // f32 on the CPU takes the fused path: its value and gradient must match the formula.
    let device = Device::flex().autodiff();
    let host: Vec<f64> = (-30..=30).map(|i| i as f64 * 0.7).collect();
    let a = tensor_from_f64(&host, [61, 1], &device)
        .unwrap()
        .require_grad();
    let out = Activation::Softplus.apply(a.clone());
    let values = to_f64_vec(out.clone()).unwrap();
    let grad = to_f64_vec(a.grad(&out.sum().backward()).unwrap().autodiff()).unwrap();
    for ((x, v), g) in host.iter().zip(&values).zip(&grad) {
        let x32 = *x as f32 as f64;
        assert!((v - softplus_f64(x32)).abs() <= 1e-5 * softplus_f64(x32).max(1e-3));
        assert!((g - sigmoid_f64(x32)).abs() <= 1e-6, "slope at {x}: {g}");
    }
}

#[test]
fn adam_matches_hand_computed_steps() {
    let device = Device::flex().autodiff();
    let cfg = AdamConfig::default();
    let mut adam = Adam::new(cfg.clone(), 1).unwrap();
    let mut p = tensor_from_f64(&[1.0, -2.0], [1, 2], &device).unwrap();
    let grads = [[0.5, -1.0], [0.25, 3.0]];
    let (mut m, mut v, mut want) = ([0.0f64; 2], [0.0f64; 2], [1.0f64, -2.0]);
    for (t, g) in grads.iter().enumerate() {
        let gt = tensor_from_f64(g, [1, 2], &device).unwrap();
        p = adam.step(vec![p], vec![Some(gt)]).unwrap().pop().unwrap();
        for i in 0..2 {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            let mh = m[i] / (1.0 - 0.9f64.powi(t as i32 + 1));
            let vh = v[i] / (1.0 - 0.999f64.powi(t as i32 + 1));
            want[i] -= cfg.lr * mh / (vh.sqrt() + cfg.eps);
        }
    }
    let got = to_f64_vec(p).unwrap();
    for i in 0..2 {
        assert!((got[i] - want[i]).abs() < 1e-6, "{got:?} vs {want:?}");
    }
    // A parameter without a gradient is left as it is.
    let q = tensor_from_f64(&[3.0], [1, 1], &device).unwrap();
    let mut a2 = Adam::new(cfg, 1).unwrap();
    let q2 = a2.step(vec![q], vec![None]).unwrap().pop().unwrap();
    assert_eq!(to_f64_vec(q2).unwrap(), vec![3.0]);
}

#[test]
fn clipping_scales_to_the_max_norm_and_rejects_nan() {
    let device = Device::flex().autodiff();
    let mut g = vec![
        Some(tensor_from_f64(&[3.0], [1, 1], &device).unwrap()),
        None,
        Some(tensor_from_f64(&[4.0], [1, 1], &device).unwrap()),
    ];
    let norm = clip_grad_norm(&mut g, 1.0).unwrap();
    assert!((norm - 5.0).abs() < 1e-9);
    let a = to_f64_vec(g[0].clone().unwrap()).unwrap()[0];
    let b = to_f64_vec(g[2].clone().unwrap()).unwrap()[0];
    assert!(((a * a + b * b).sqrt() - 1.0).abs() < 1e-5);
    let mut bad = vec![Some(tensor_from_f64(&[f64::NAN], [1, 1], &device).unwrap())];
    assert!(clip_grad_norm(&mut bad, 1.0).is_err());
}

#[test]
fn plateau_halves_after_patience_checks_without_improvement() {
    let mut s = ReduceLrOnPlateau::new(PlateauConfig {
        factor: 0.5,
        patience: 2,
        ..PlateauConfig::default()
    })
    .unwrap();
    let mut lr = 1.0;
    for m in [3.0, 2.0, 2.0, 2.0] {
        lr = s.step(m, lr);
    }
    assert_eq!(lr, 1.0, "two bad checks are within patience");
    lr = s.step(2.0, lr);
    assert_eq!(lr, 0.5);
    lr = s.step(1.0, lr);
    assert_eq!(lr, 0.5);
    assert!(
        ReduceLrOnPlateau::new(PlateauConfig {
            factor: 1.5,
            ..PlateauConfig::default()
        })
        .is_err()
    );
}

#[test]
fn checkpoint_round_trips_tensors_metadata_and_rng() {
    use rand::RngExt;
    let device = Device::flex().autodiff();
    let dir = tmp("ck");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = Mlp::new(&[2, 8, 1], Activation::Tanh, &device, &mut rng).unwrap();
    let _: f64 = rng.random();
    let mut ck = Checkpoint::new();
    for (n, p) in net.param_names().iter().zip(net.params()) {
        ck.put_tensor(n, &p).unwrap();
    }
    ck.put_meta("step", &42usize).unwrap();
    ck.put_rng("rng", &rng).unwrap();
    let path = dir.join("a.safetensors");
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    for (n, p) in net.param_names().iter().zip(net.params()) {
        let q: Tensor<2> = back.tensor(n, &device).unwrap();
        assert_eq!(to_f64_vec(q).unwrap(), to_f64_vec(p).unwrap());
    }
    assert_eq!(back.meta::<usize>("step").unwrap(), 42);
    let mut r2 = back.rng("rng").unwrap();
    assert_eq!(rng.random::<u64>(), r2.random::<u64>());
    assert!(back.tensor::<2>("missing", &device).is_err());
    // Garbage is refused with the path named.
    std::fs::write(dir.join("bad.safetensors"), b"not a checkpoint").unwrap();
    let err = Checkpoint::load(&dir.join("bad.safetensors")).unwrap_err();
    assert!(err.to_string().contains("bad.safetensors"));
    // A missing file says how to start over.
    let err = Checkpoint::load(&dir.join("none.safetensors")).unwrap_err();
    assert!(err.to_string().contains("--overwrite"), "{err}");
    // A flipped bit anywhere after the header's length, in the header or the data, is an error
    // (the checksum, or the header no longer parsing), never a silently different checkpoint.
    let good = std::fs::read(&path).unwrap();
    let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let bad = dir.join("flipped.safetensors");
    for at in (8..good.len()).step_by(7) {
        let mut bytes = good.clone();
        bytes[at] ^= 0x04;
        std::fs::write(&bad, &bytes).unwrap();
        let Ok(ck) = Checkpoint::load(&bad) else {
            continue;
        };
        // JSON may still parse when whitespace padding or a key's letter changed: the
        // contents must then be unchanged.
        assert!(at < header, "a flipped data byte {at} loaded");
        for (n, p) in net.param_names().iter().zip(net.params()) {
            let q: Tensor<2> = ck.tensor(n, &device).unwrap();
            assert_eq!(to_f64_vec(q).unwrap(), to_f64_vec(p).unwrap(), "byte {at}");
        }
        assert_eq!(ck.meta::<usize>("step").unwrap(), 42, "byte {at}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_dir_refuses_existing_and_metrics_resume_drops_later_rows() {
    let dir = tmp("rd");
    let run = RunDir::create(&dir, Existing::Refuse).unwrap();
    let mut m = MetricsCsv::create(run.file("metrics.csv"), &["step", "loss"]).unwrap();
    for s in 0..5 {
        m.append(&[s as f64 * 10.0, 1.0 / (s as f64 + 1.0)])
            .unwrap();
    }
    assert!(m.append(&[1.0]).is_err());
    drop(m);
    assert!(RunDir::create(&dir, Existing::Refuse).is_err());
    // Temporary files of a killed writer are removed when the run is opened again; a failed
    // atomic write leaves none behind and the target untouched.
    let stale = [
        run.file(".tmp-99-latest.bin"),
        run.checkpoints().join(".tmp-98-latest.safetensors"),
    ];
    for f in &stale {
        std::fs::write(f, b"partial").unwrap();
    }
    RunDir::create(&dir, Existing::Resume).unwrap();
    assert!(stale.iter().all(|f| !f.exists()));
    let target = run.file("a_folder");
    std::fs::create_dir_all(&target).unwrap();
    assert!(dcem::run::atomic_write(&target, b"bytes").is_err());
    let left: Vec<_> = std::fs::read_dir(run.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(target.is_dir());
    let mut m = MetricsCsv::resume(run.file("metrics.csv"), &["step", "loss"], 20.0).unwrap();
    m.append(&[30.0, 9.0]).unwrap();
    let (h, rows) = MetricsCsv::read(&run.file("metrics.csv")).unwrap();
    assert_eq!(h, vec!["step", "loss"]);
    let steps: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(steps, vec![0.0, 10.0, 20.0, 30.0]);
    assert!(MetricsCsv::resume(run.file("metrics.csv"), &["other"], 0.0).is_err());
    RunDir::create(&dir, Existing::Overwrite).unwrap();
    assert!(!run.file("metrics.csv").exists());
    assert!(RunDir::create(dir.join("nothing"), Existing::Resume).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn plots_write_png_files() {
    use dcem::run::plot::{Heatmap, LineChart, Series, heatmaps, line_chart};
    let dir = tmp("plot");
    std::fs::create_dir_all(&dir).unwrap();
    let chart = LineChart {
        title: "t".into(),
        log_y: true,
        series: vec![Series::new("a", vec![(0.0, 1.0), (1.0, 0.1), (2.0, -1.0)])],
        vlines: vec![(1.0, "m".into())],
        ..LineChart::default()
    };
    line_chart(&dir.join("l.png"), &chart).unwrap();
    let hm = Heatmap {
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        values: vec![vec![0.0, 1.0], vec![2.0, 3.0]],
        points: vec![Series::new("p", vec![(0.5, 0.5)])],
        ..Heatmap::default()
    };
    heatmaps(&dir.join("h.png"), &[hm.clone(), hm], (200, 200)).unwrap();
    for f in ["l.png", "h.png"] {
        let bytes = std::fs::read(dir.join(f)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{f}");
    }
    let ragged = Heatmap {
        values: vec![vec![0.0, 1.0], vec![2.0]],
        ..Heatmap::default()
    };
    assert!(heatmaps(&dir.join("r.png"), &[ragged], (100, 100)).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tick_labels_are_short() {
    use dcem::run::plot::tick_label;
    assert_eq!(tick_label(2000.0), "2000");
    assert_eq!(tick_label(0.0), "0");
    assert_eq!(tick_label(3.981_071_7), "3.98");
    assert_eq!(tick_label(0.251_188_6), "0.251");
    assert_eq!(tick_label(-2.5), "-2.5");
    assert_eq!(tick_label(1.5e-5), "1.5e-5");
    assert_eq!(tick_label(-2.2e-16), "0");
    assert_eq!(tick_label(2.0e7), "2.0e7");
}

#[test]
fn step_weighted_mean_weights_rows_by_their_steps() {
    use dcem::run::step_weighted_mean;
    // Row 0 (step 0) covers nothing; then 100 steps at 2 ms and 300 steps at 4 ms.
    let rows = vec![
        vec![0.0, 9.0, 0.0],
        vec![100.0, 1.0, 2.0],
        vec![400.0, 1.0, 4.0],
    ];
    assert_eq!(
        step_weighted_mean(&rows, 2),
        (100.0 * 2.0 + 300.0 * 4.0) / 400.0
    );
    assert_eq!(step_weighted_mean(&rows[..1], 2), 0.0);
}

#[test]
fn metrics_by_name_fill_their_columns_and_refuse_unknown_names() {
    let dir = std::env::temp_dir().join(format!("dcem_named_metrics_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics.csv");
    let mut m = MetricsCsv::create(&path, &["step", "loss/model", "eval/return"]).unwrap();
    // Any order; a column not named is NaN.
    m.append_named(&[("loss/model", 0.5), ("step", 1.0)])
        .unwrap();
    let err = m
        .append_named(&[("step", 2.0), ("loss/typo", 1.0)])
        .unwrap_err();
    assert!(err.to_string().contains("`loss/typo`"), "{err}");
    let err = m.append_named(&[("step", 2.0), ("step", 3.0)]).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    let (header, rows) = MetricsCsv::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(header, ["step", "loss/model", "eval/return"]);
    assert_eq!(rows.len(), 1, "refused rows are not written");
    assert_eq!(&rows[0][..2], &[1.0, 0.5]);
    assert!(rows[0][2].is_nan());
}

#[test]
fn seed_lists_must_be_non_empty_and_distinct() {
    assert!(check_seeds(&[0, 1, 2]).is_ok());
    let err = check_seeds(&[]).unwrap_err().to_string();
    assert!(err.contains("`seeds`") && err.contains("empty"), "{err}");
    let err = check_seeds(&[3, 1, 3]).unwrap_err().to_string();
    assert!(err.contains("seed 3 is given twice"), "{err}");
}
