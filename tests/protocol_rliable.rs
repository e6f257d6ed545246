//! `dcem::run::protocol` against rliable 1.2.0 itself on the same score arrays:
//! `scripts/rliable_reference.py` runs rliable in the project's venv (scripts/setup_venv.sh
//! installs it). The IQM, mean and median must equal rliable's to 1e-9; the ends of the 95%
//! stratified-bootstrap intervals and the performance profile's band (different generators,
//! so Monte Carlo apart) within 2% of rliable's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dcem::run::protocol::{Aggregate, BootstrapOptions, interval, performance_profile};
use serde_json::{Value, json};

const REPS: usize = 20_000;

fn python() -> PathBuf {
    std::env::var_os("DCEM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

fn rliable(cases: &[(Vec<Vec<f64>>, Vec<f64>)]) -> Value {
    let req = json!({
        "reps": REPS,
        "cases": cases.iter().map(|(t, taus)| json!({"tasks": t, "taus": taus})).collect::<Vec<_>>(),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rliable_reference.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot start the venv's python: run scripts/setup_venv.sh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "scripts/rliable_reference.py failed (is rliable installed? run scripts/setup_venv.sh)"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= 0.02 * theirs.abs() + 1e-9,
        "{what}: ours {ours}, rliable {theirs}"
    );
}

#[test]
fn aggregates_and_intervals_match_rliable() {
    let ramp: Vec<f64> = (0..20)
        .map(|i| 50.0 + 1.5 * i as f64 + (i % 3) as f64)
        .collect();
    let cases = vec![
        // Final returns over ten training seeds, one of them failed.
        (
            vec![vec![
                76.1, 72.3, 69.5, 69.2, -16.1, 56.7, 71.7, 41.6, 53.4, 60.4,
            ]],
            vec![0.0, 40.0, 60.0, 70.0, 75.0],
        ),
        // Five seeds of a 100k-step run.
        (
            vec![vec![283.2, 475.2, 301.0, 427.0, 350.0]],
            vec![250.0, 300.0, 400.0, 500.0],
        ),
        // Two tasks of normalised scores, eight runs each.
        (
            vec![
                vec![0.91, 0.85, 0.97, 0.40, 0.88, 0.93, 0.79, 0.95],
                vec![0.55, 0.61, 0.70, 0.48, 0.66, 0.52, 0.75, 0.59],
            ],
            vec![0.5, 0.6, 0.8, 0.9],
        ),
        (vec![ramp], vec![55.0, 65.0, 75.0]),
    ];
    let theirs = rliable(&cases);
    let opts = BootstrapOptions {
        resamples: REPS,
        ..BootstrapOptions::default()
    };
    for (i, (tasks, taus)) in cases.iter().enumerate() {
        let r = &theirs["cases"][i];
        for (name, agg) in [
            ("iqm", Aggregate::Iqm),
            ("mean", Aggregate::Mean),
            ("median", Aggregate::Median),
        ] {
            let ours = interval(agg, tasks, &opts).unwrap();
            let want = |k: &str| r[name][k].as_f64().unwrap();
            assert!(
                (ours.point - want("point")).abs() < 1e-9,
                "case {i} {name}: ours {}, rliable {}",
                ours.point,
                want("point")
            );
            close(&format!("case {i} {name} lower end"), ours.lo, want("lo"));
            close(&format!("case {i} {name} upper end"), ours.hi, want("hi"));
        }
        let profile = performance_profile(tasks, taus, &opts).unwrap();
        for (j, p) in profile.iter().enumerate() {
            let at = |k: &str| r[k][j].as_f64().unwrap();
            assert!(
                (p.share.point - at("profile")).abs() < 1e-12,
                "case {i} profile at {}",
                p.tau
            );
            // Shares move in steps of 1/runs: the band's ends are compared to a 2% share.
            for (ours, k) in [(p.share.lo, "profile_lo"), (p.share.hi, "profile_hi")] {
                assert!(
                    (ours - at(k)).abs() <= 0.02 + 1e-9,
                    "case {i} {k} at {}: ours {ours}, rliable {}",
                    p.tau,
                    at(k)
                );
            }
        }
    }
}
