//! Behaviour fixtures: short seeded runs of the three phases (full CEM, latent DCEM from it, PPO
//! fine-tuning from that) must give the same metrics as the runs recorded in `tests/fixtures/`
//! before the agents were rebuilt on the framework's traits, episode runner and training kit
//! (wall-clock columns aside), up to the float drift allowed between CPU models. See `dcem::run::FixtureCheck`.

use std::path::{Path, PathBuf};
use std::process::Command;

use dcem::run::{FixtureCheck, Tolerance};

const COMMON: &str = r#"
[env]
kind = "swingup"
episode_steps = 30
[train]
seed_episodes = 2
episodes = 3
seed_action_scale = 0.3
action_repeat = 2
update_every = 3
updates = 2
batch = 4
chunk = 5
exploration_noise = 0.1
eval_every = 2
eval_episodes = 1
final_eval_episodes = 2
checkpoint_every = 2
[model]
deter = 8
stoch = 2
hidden = 8
symlog = true
[cem]
horizon = 4
[cem.cem]
n_sample = 16
n_elite = 4
n_iter = 2
tau = 0.0
iter_eps = 0.0
init_sigma = 0.5
[latent.cem]
n_sample = 8
n_elite = 2
n_iter = 2
tau = 1.0
init_sigma = 0.5
iter_eps = 0.0
[decoder]
batch = 2
every = 1
[decoder.net]
latent_dim = 2
hidden = 8
hidden_layers = 1
[finetune]
steps = 2
episodes_per_step = 2
eval_episodes = 2
eval_every = 1
periodic_eval_episodes = 1
[finetune.ppo]
epochs = 1
minibatches = 2
"#;

/// Wall-clock columns of the episode rows and of the PPO rows, under the metric scheme's names
/// and under those of fixtures recorded before it.
const TIMES: &[&str] = &[
    "perf/plan_ms",
    "perf/update_ms",
    "perf/env_steps_per_s",
    "perf/wall_s",
    "perf/rollout_s",
    "perf/env_s",
    "perf/update_s",
    "perf/forward_s",
    "perf/backward_s",
    "perf/optim_s",
    "plan_ms",
    "update_ms",
    "steps_per_s",
    "wall_s",
    "rollout_s",
    "env_s",
    "update_s",
    "forward_s",
    "backward_s",
    "optim_s",
    "charts/SPS",
];

/// Columns renamed to the framework's metric scheme since the fixtures were recorded (same
/// values, new names).
const RENAMED: &[(&str, &str)] = &[
    ("return", "train/return"),
    ("eval_return", "eval/return"),
    ("loss", "loss/model"),
    ("loss_obs", "loss/obs"),
    ("loss_reward", "loss/reward"),
    ("kl", "loss/kl"),
    ("decoder_cost", "loss/decoder_cost"),
    ("updates", "train/updates"),
    ("seed_episode", "train/seed_episode"),
    ("losses/policy_loss", "loss/policy"),
    ("losses/value_loss", "loss/value"),
    ("losses/entropy", "loss/entropy"),
    ("losses/approx_kl", "loss/approx_kl"),
    ("losses/clipfrac", "loss/clipfrac"),
    ("losses/explained_variance", "loss/explained_variance"),
    ("grad_norm", "loss/grad_norm"),
    ("std", "train/std"),
];

/// `planet_dcem train --config <config> --runs-dir <runs> --quiet`.
fn train(config: &std::path::Path, runs: &std::path::Path) {
    planet(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--quiet",
    ]);
}

fn planet(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_planet_dcem"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "planet_dcem {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(format!("{name}.csv"))
}

/// The diagnostics of a phase-1/2 run: horizon 4 over the 2 final-evaluation episodes of 15
/// decisions (30 steps, action repeat 2), so 12 windows of 4 decisions per episode.
fn check_diagnostics(run: &Path) {
    let text = std::fs::read_to_string(run.join("diagnostics.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["horizon"], 4);
    assert_eq!(d["episodes"], 2);
    assert_eq!(d["starts"], 24);
    for key in ["obs_rmse", "reward_rmse", "reward_bias"] {
        let v = d[key].as_array().unwrap();
        assert_eq!(v.len(), 4, "{key}");
        assert!(v.iter().all(|x| x.as_f64().unwrap().is_finite()), "{key}");
    }
    // Per coordinate (the swing-up's 5): their mean square is the observation error's square.
    let by_coord = d["obs_rmse_by_coord"].as_array().unwrap();
    assert_eq!(by_coord.len(), 5);
    for k in 0..4 {
        let ms = by_coord
            .iter()
            .map(|c| c[k].as_f64().unwrap().powi(2))
            .sum::<f64>()
            / 5.0;
        let all = d["obs_rmse"][k].as_f64().unwrap();
        assert!((ms.sqrt() - all).abs() <= 1e-9 * (1.0 + all), "k {k}");
    }
    assert_eq!(d["predicted"].as_array().unwrap().len(), 24);
    assert_eq!(d["realised"].as_array().unwrap().len(), 24);
    assert!(run.join("diagnostics.png").is_file());
    // The first evaluation episode of the swing-up as an animated GIF.
    let gif = std::fs::read(run.join("eval_episode.gif")).unwrap();
    assert!(
        gif.starts_with(b"GIF89a") && gif.len() > 1000,
        "{} bytes",
        gif.len()
    );
}

#[test]
fn three_phases_reproduce_their_fixtures() {
    let dir = std::env::temp_dir().join(format!("planet-behaviour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    let phases = [
        ("cem", "phase = \"cem\"".to_string()),
        (
            "latent",
            format!(
                "phase = \"latent_dcem\"\ninit_from = {:?}",
                runs.join("cem").to_str().unwrap()
            ),
        ),
        (
            "ppo",
            format!(
                "phase = \"ppo\"\ninit_from = {:?}",
                runs.join("latent").to_str().unwrap()
            ),
        ),
    ];
    for (name, head) in phases {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!("name = {name:?}\nseed = 5\n{head}\n{COMMON}"),
        )
        .unwrap();
        train(&config, &runs);
        let check = FixtureCheck {
            ignore: TIMES,
            renamed: RENAMED,
            tolerance: Tolerance::ACROSS_CPUS,
        };
        check
            .check(
                &fixture(&format!("planet_{name}")),
                &runs.join(name).join("metrics.csv"),
            )
            .unwrap_or_else(|e| panic!("phase {name}: {e}"));
        let run = runs.join(name);
        if name != "ppo" {
            check_diagnostics(&run);
        }
        let returns = FixtureCheck::default();
        returns
            .check_returns(
                &fixture(&format!("planet_{name}_eval")),
                &run.join("eval.json"),
            )
            .unwrap_or_else(|e| panic!("phase {name}, final evaluation: {e}"));
        if name == "ppo" {
            returns
                .check_returns(
                    &fixture("planet_ppo_eval_before"),
                    &run.join("eval_before.json"),
                )
                .unwrap_or_else(|e| panic!("phase 3, evaluation before: {e}"));
        }
    }
    // The true-dynamics bound: the config's CEM planner on `SwingupModel`.
    let bound = dir.join("true_model.json");
    planet(&[
        "true-model",
        "--config",
        dir.join("cem.toml").to_str().unwrap(),
        "--episodes",
        "2",
        "--out",
        bound.to_str().unwrap(),
    ]);
    FixtureCheck::default()
        .check_returns(&fixture("planet_true_model"), &bound)
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `train.seed_updates`: the model takes that many gradient steps on the seed episodes' data
/// after the last of them (logged on its row), none during them, before it is planned on.
#[test]
fn seed_updates_fit_the_model_after_the_last_seed_episode() {
    let dir = std::env::temp_dir().join(format!("planet-seed-updates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let common = COMMON.replace("update_every = 3", "update_every = 3\nseed_updates = 7");
    let config = dir.join("su.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"su\"\nseed = 1\nphase = \"cem\"\ndynamics = \"ensemble\"\n{common}\n\
             [ensemble]\nmembers = 2\nhidden = 8\nlayers = 1\nbatch = 8\n"
        ),
    )
    .unwrap();
    let runs = dir.join("runs");
    train(&config, &runs);
    let (cols, rows) = dcem::run::MetricsCsv::read(&runs.join("su/metrics.csv")).unwrap();
    let updates = cols.iter().position(|c| c == "train/updates").unwrap();
    let per_row: Vec<f64> = rows.iter().map(|r| r[updates]).collect();
    // Two seed episodes (none, then the 7 seed updates), then planning episodes of 15 agent
    // steps with 2 updates every 3 steps.
    assert_eq!(&per_row[..2], &[0.0, 7.0], "{per_row:?}");
    assert!(per_row[2..].iter().all(|u| *u == 10.0), "{per_row:?}");
    std::fs::remove_dir_all(&dir).ok();
}
