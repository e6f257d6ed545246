//! `planet_dcem seeds`: the runs of every seed, and a summary whose numbers are the runs' own.

use std::process::Command;

use dcem::run::EvalSummary;

const CONFIG: &str = r#"
name = "tiny"
seed = 0
phase = "cem"
[env]
kind = "swingup"
episode_steps = 20
[train]
seed_episodes = 2
episodes = 3
seed_action_scale = 0.3
action_repeat = 2
update_every = 5
updates = 1
batch = 2
chunk = 5
eval_every = 1
eval_episodes = 1
final_eval_episodes = 2
checkpoint_every = 5
[model]
deter = 8
stoch = 2
hidden = 8
[cem]
horizon = 3
[cem.cem]
n_sample = 8
n_elite = 2
n_iter = 1
tau = 0.0
iter_eps = 0.0
"#;

#[test]
fn seeds_run_and_their_summary_holds_their_own_numbers() {
    let dir = std::env::temp_dir().join(format!("planet-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("tiny.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let runs = dir.join("runs");
    let seeds = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_planet_dcem"))
            .args(["seeds", "--config", config.to_str().unwrap()])
            .args(["--runs-dir", runs.to_str().unwrap(), "--seeds", "4,7"])
            .args(["--at", "3,5,500", "--jobs", "2"])
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
    let summary_dir = runs.join("tiny_seeds");
    let text = std::fs::read_to_string(summary_dir.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let finals: Vec<f64> = summary["final_eval"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let own: Vec<f64> = [4, 7]
        .iter()
        .map(|s| {
            EvalSummary::load(&runs.join(format!("tiny_s{s}")).join("eval.json"))
                .unwrap()
                .mean
        })
        .collect();
    assert_eq!(finals, own);
    assert_ne!(own[0], own[1], "different seeds, different runs");
    // Two seeds: the 95% half-width is t(1) = 12.706 times the standard error.
    let mean = (own[0] + own[1]) / 2.0;
    let se = ((own[0] - mean).powi(2) + (own[1] - mean).powi(2)).sqrt() / 2f64.sqrt();
    let ci = summary["final_eval"]["ci95"].as_f64().unwrap();
    assert!((ci - 12.706 * se).abs() < 1e-9 * (1.0 + ci.abs()), "{ci}");
    assert_eq!(summary["at"][0]["episode"], 3);
    // Episode 500 is beyond every run: left out.
    assert_eq!(summary["at"].as_array().unwrap().len(), 2);
    assert!(summary_dir.join("learning_curves.png").is_file());
    assert!(summary_dir.join("logs/seed4.log").is_file());
    let table = std::fs::read_to_string(summary_dir.join("summary.md")).unwrap();
    assert!(table.contains("| 4 |") && table.contains("| 7 |") && table.contains("mean"));
    // Existing runs are refused without --resume/--overwrite; --summarise-only rereads them.
    assert!(!seeds(&[]).status.success());
    assert!(seeds(&["--summarise-only"]).status.success());
    // --resume continues the seeds that have a run and starts those that have none.
    let out = Command::new(env!("CARGO_BIN_EXE_planet_dcem"))
        .args(["seeds", "--config", config.to_str().unwrap()])
        .args(["--runs-dir", runs.to_str().unwrap(), "--seeds", "4,9"])
        .args(["--at", "3", "--jobs", "2", "--resume"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(runs.join("tiny_s9").join("eval.json").is_file());
    let again = EvalSummary::load(&runs.join("tiny_s4").join("eval.json")).unwrap();
    assert_eq!(
        again.mean, own[0],
        "a finished run resumed evaluates the same"
    );
    // One seed is not a result.
    let one = Command::new(env!("CARGO_BIN_EXE_planet_dcem"))
        .args([
            "seeds",
            "--config",
            config.to_str().unwrap(),
            "--seeds",
            "3",
        ])
        .args(["--runs-dir", runs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&one.stderr).contains("at least two seeds"));
    // The samples study on the true dynamics and on the two runs' learned models.
    let study_file = dir.join("study.toml");
    let study_text = |runs_list: &str, extra: &str| {
        format!(
            "name = \"study\"\nepisodes = 1\ntrue_model = {:?}\nseeds = [0, 1]\nruns = [{runs_list}]\n\
             [[variants]]\nfamily = \"CEM\"\ncem = {{ n_sample = 8, n_elite = 2, n_iter = 1, tau = 0.0 }}\n\
             [[variants]]\nfamily = \"iCEM\"\ncem = {{ n_sample = 8, n_elite = 2, n_iter = 2, tau = 0.0, \
             noise_beta = 1.0, keep_elites = 0.5, shift_elites = true, population_decay = 2.0, \
             add_mean_last = true, return_best = true{extra} }}\n",
            config.display().to_string()
        )
    };
    let two = format!(
        "{:?}, {:?}",
        runs.join("tiny_s4").display().to_string(),
        runs.join("tiny_s7").display().to_string()
    );
    let study = |text: String| {
        std::fs::write(&study_file, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_planet_dcem"))
            .args(["study", "--study", study_file.to_str().unwrap()])
            .args(["--runs-dir", runs.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = study(study_text(&two, ""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(runs.join("study/study.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 2);
    for r in results.as_array().unwrap() {
        assert_eq!(r["true_model"]["values"].as_array().unwrap().len(), 2);
        assert_eq!(r["learned"]["values"].as_array().unwrap().len(), 2);
    }
    // iCEM: 8 + 4 fresh, 1 kept in each of the 2 iterations (carried into the first), the mean.
    assert_eq!(results[0]["samples_per_plan"], 8);
    assert_eq!(results[1]["samples_per_plan"], 8 + 4 + 2 + 1);
    assert!(runs.join("study/study.png").is_file());
    // Bad studies name the problem.
    let out = study(study_text(&two, ", lb = -1.0"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("variants[1]"));
    let one_run = format!("{:?}", runs.join("tiny_s4").display().to_string());
    let out = study(study_text(&one_run, ""));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least two learned models"));
    std::fs::remove_dir_all(&dir).unwrap();
}
