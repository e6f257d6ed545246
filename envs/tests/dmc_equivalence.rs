//! cheetah.run and walker.walk against dm_control itself: `scripts/dmc_reference.py` runs
//! dm_control 1.0.50 in the project's venv and records an episode (reset, 1000 random actions);
//! the Rust environment replays it from the same state and must give the same rewards and
//! observations, to 1e-12 (they are in fact bit-for-bit equal, which the test also reports).

use std::path::{Path, PathBuf};
use std::process::Command;

use dcem::env::Env;
use dcem_envs::dmc::{CheetahRun, ControlEnv, Task, WalkerWalk};
use serde_json::Value;

const TOL: f64 = 1e-12;

fn python() -> PathBuf {
    std::env::var_os("DCEM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

/// Runs dm_control for one episode and returns its record.
fn reference(task: &str, seed: u64) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!(
        "dcem-dmc-{task}-{seed}-{}.json",
        std::process::id()
    ));
    let status = Command::new(python())
        .arg(root.join("scripts/dmc_reference.py"))
        .args(["--task", task, "--seed", &seed.to_string()])
        .arg("--out")
        .arg(&out)
        .status()
        .expect("cannot start the venv's python: run scripts/setup_venv.sh");
    assert!(
        status.success(),
        "scripts/dmc_reference.py failed for {task}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).ok();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("record has no `{key}`"))
        .iter()
        .map(|b| f64::from_bits(b.as_u64().unwrap()))
        .collect()
}

/// Largest absolute difference, and whether every value has the same bits.
fn compare(ours: &[f64], theirs: &[f64]) -> (f64, bool) {
    assert_eq!(ours.len(), theirs.len());
    let diff = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let bitwise = ours
        .iter()
        .zip(theirs)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    (diff, bitwise)
}

fn check<T: Task>(name: &str, seed: u64) {
    let rec = reference(name, seed);
    assert_eq!(rec["mujoco"], "3.17.0", "the venv must have mujoco 3.17.0");
    let (obs_dim, act_dim) = (
        rec["obs_dim"].as_u64().unwrap() as usize,
        rec["action_dim"].as_u64().unwrap() as usize,
    );
    assert_eq!(obs_dim, T::OBS_DIM);
    let mut env = ControlEnv::<T>::new().unwrap();

    // 1. The reset: from dm_control's random pose, our settling and forward pass give its state.
    let obs0 = env
        .reset_from_qpos(&floats(&rec, "randomized_qpos"))
        .unwrap();
    let mut report = Vec::new();
    for (what, ours, theirs) in [
        ("reset obs", obs0.clone(), floats(&rec, "obs0")),
        (
            "reset qpos",
            env.physics().qpos().to_vec(),
            floats(&rec, "qpos"),
        ),
        (
            "reset qvel",
            env.physics().qvel().to_vec(),
            floats(&rec, "qvel"),
        ),
        (
            "reset qacc_warmstart",
            env.physics().qacc_warmstart().to_vec(),
            floats(&rec, "qacc_warmstart"),
        ),
    ] {
        let (diff, bitwise) = compare(&ours, &theirs);
        assert!(
            diff <= TOL,
            "{name} seed {seed}: {what} differs by {diff:e}"
        );
        report.push(format!("{what}: bitwise {bitwise}"));
    }

    // 2. The episode, twice: continuing from that reset, and from the recorded state.
    let actions = floats(&rec, "actions");
    let rewards = floats(&rec, "rewards");
    let observations = floats(&rec, "observations");
    let steps = rewards.len();
    assert_eq!(steps, 1000);
    let mut second = ControlEnv::<T>::new().unwrap();
    let obs_b = second
        .reset_to_state(
            &floats(&rec, "qpos"),
            &floats(&rec, "qvel"),
            &floats(&rec, "qacc_warmstart"),
        )
        .unwrap();
    assert_eq!(compare(&obs_b, &obs0).0, 0.0);
    for (label, env) in [
        ("after reset_from_qpos", &mut env),
        ("after reset_to_state", &mut second),
    ] {
        let (mut max_r, mut max_o, mut bitwise) = (0.0f64, 0.0f64, true);
        for t in 0..steps {
            let step = env.step(&actions[t * act_dim..(t + 1) * act_dim]).unwrap();
            let (dr, br) = compare(&[step.reward], &rewards[t..t + 1]);
            let (dobs, bo) = compare(&step.obs, &observations[t * obs_dim..(t + 1) * obs_dim]);
            assert!(
                dr <= TOL && dobs <= TOL,
                "{name} seed {seed} {label}: step {t} differs (reward {dr:e}, obs {dobs:e})"
            );
            (max_r, max_o, bitwise) = (max_r.max(dr), max_o.max(dobs), bitwise && br && bo);
            assert_eq!(
                step.truncated,
                rec["last"][t].as_bool().unwrap(),
                "{name}: episode end at step {t}"
            );
        }
        report.push(format!(
            "{label}: {steps} steps, max |reward diff| {max_r:e}, max |obs diff| {max_o:e}, bitwise {bitwise}"
        ));
    }
    eprintln!("{name} seed {seed}:\n  {}", report.join("\n  "));
}

#[test]
fn cheetah_run_equals_dm_control() {
    for seed in [0, 1] {
        check::<dcem_envs::dmc::Run>("cheetah-run", seed);
    }
}

#[test]
fn walker_walk_equals_dm_control() {
    for seed in [0, 1] {
        check::<dcem_envs::dmc::Walk>("walker-walk", seed);
    }
}

#[test]
fn aliases_are_the_tasks() {
    let c = CheetahRun::new().unwrap();
    let w = WalkerWalk::new().unwrap();
    assert_eq!(c.observation_space().flat_dim(), 17);
    assert_eq!(w.observation_space().flat_dim(), 24);
    assert_eq!(c.action_space().flat_dim(), 6);
    assert_eq!(w.action_space().flat_dim(), 6);
}

/// The reset distributions: walker joints uniform in their ranges and `rooty` in [-pi, pi);
/// cheetah after its 200 settling steps at time 0, with different poses per seed.
#[test]
fn reset_distributions() {
    let mut walker = WalkerWalk::new().unwrap();
    let joints = ["rootz", "rootx", "rooty"];
    let mut rooty = Vec::new();
    for seed in 0..300 {
        walker.reset(Some(seed)).unwrap();
        let q = walker.physics().qpos();
        assert_eq!(
            (q[0], q[1]),
            (0.0, 0.0),
            "the {} and {} slides stay put",
            joints[0],
            joints[1]
        );
        assert!((-std::f64::consts::PI..std::f64::consts::PI).contains(&q[2]));
        rooty.push(q[2]);
        // Limited hinges (thighs, legs, feet): within the ranges of walker.xml.
        let model = walker.physics().model();
        for (j, (qj, [lo, hi])) in q.iter().zip(model.jnt_range()).enumerate().skip(3) {
            assert!(lo <= qj && qj < hi, "joint {j}: {qj} not in [{lo}, {hi})");
        }
        assert_eq!(walker.physics().time(), 0.0);
    }
    let mean = rooty.iter().sum::<f64>() / rooty.len() as f64;
    let var = rooty.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rooty.len() as f64;
    // U(-pi, pi): mean 0 (sd of the mean 0.10 here), variance pi^2 / 3 = 3.29.
    assert!(mean.abs() < 0.4, "rooty mean {mean}");
    assert!((var - 3.29).abs() < 0.6, "rooty variance {var}");

    let mut cheetah = CheetahRun::new().unwrap();
    let a = cheetah.reset(Some(0)).unwrap();
    assert_eq!(cheetah.physics().time(), 0.0);
    let b = cheetah.reset(Some(1)).unwrap();
    assert_ne!(a, b);
    // After settling the cheetah is nearly at rest on the ground.
    let speed: f64 = cheetah
        .physics()
        .qvel()
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt();
    assert!(speed < 1.0, "settled velocity norm {speed}");
}

/// Bad input: missing and broken model files, a non-finite state, a diverging simulation.
#[test]
fn errors_are_clear() {
    use dcem::Error;
    use dcem_envs::dmc::{check_library_version, load_model};

    check_library_version().expect("the linked libmujoco is 3.17.0");

    let missing = load_model(Path::new("/nonexistent/cheetah.xml")).unwrap_err();
    let text = missing.to_string();
    assert!(matches!(missing, Error::Io { .. }), "{text}");
    assert!(text.contains("setup_venv.sh"), "{text}");

    let dir = std::env::temp_dir().join(format!("dcem-dmc-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.xml");
    std::fs::write(
        &bad,
        "<mujoco><worldbody><body><geom type='nonsense'/></body></worldbody></mujoco>",
    )
    .unwrap();
    let broken = load_model(&bad).unwrap_err().to_string();
    assert!(broken.contains("bad.xml"), "{broken}");
    std::fs::remove_dir_all(&dir).ok();

    let mut env = CheetahRun::new().unwrap();
    let nan_state = env.reset_to_state(&[f64::NAN; 9], &[0.0; 9], &[0.0; 9]);
    assert!(
        matches!(nan_state, Err(Error::InvalidOption { .. })),
        "{nan_state:?}"
    );
    assert!(
        env.step(&[0.0; 6]).is_err(),
        "no episode after a rejected state"
    );

    // Velocities beyond MuJoCo's limit (1e10): MuJoCo flags the state and resets it.
    env.reset_to_state(&[0.0; 9], &[1e11; 9], &[0.0; 9])
        .unwrap();
    let diverged = env.step(&[0.0; 6]).unwrap_err();
    assert!(matches!(diverged, Error::NonFinite { .. }), "{diverged}");
    assert!(
        diverged.to_string().contains("diverged (mjWARN_BADQ"),
        "{diverged}"
    );
    assert!(matches!(env.step(&[0.0; 6]), Err(Error::NeedsReset(_))));
    env.reset(Some(0)).unwrap();
    env.step(&[0.0; 6]).unwrap();
}
