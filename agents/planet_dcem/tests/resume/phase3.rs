//! Phase 3 resumes where it stopped, over an RSSM and over an ensemble.

use super::*;

/// Phase 3: a run stopped after 2 PPO steps and resumed to 4 matches a run of 4 straight
/// (returns, losses, KL), starting from a tiny phase-2 run.
#[test]
fn phase3_resumes_where_it_stopped() {
    phase3_resumes("phase3", "");
}

/// The same with the ensemble as the controller's model (its layers and the decoder trained).
#[test]
fn phase3_over_an_ensemble_resumes_where_it_stopped() {
    phase3_resumes(
        "phase3-ensemble",
        "dynamics = \"ensemble\"\n[ensemble]\nmembers = 2\nhidden = 8\nlayers = 2\nbatch = 8\n",
    );
}

/// Runs phases 1, 2 and 3 with `extra` in every config (a leading `dynamics = ...` line goes
/// before the sections, the rest after them) and checks the resumed phase-3 run against a
/// straight one.
fn phase3_resumes(tag: &str, extra: &str) {
    let dir = scratch(tag);
    let runs = dir.join("runs");
    let runs_s = runs.to_str().unwrap();
    let common = r#"
[env]
kind = "swingup"
episode_steps = 20
[train]
action_repeat = 2
update_every = 5
updates = 1
batch = 2
chunk = 4
eval_every = 0
final_eval_episodes = 0
checkpoint_every = 1
[model]
deter = 8
stoch = 2
hidden = 8
[cem]
horizon = 3
[cem.cem]
n_sample = 8
n_elite = 2
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
normalize = true
iter_eps = 0.0
[decoder]
batch = 2
every = 1
[decoder.net]
latent_dim = 2
hidden = 8
hidden_layers = 1
"#;
    // `dynamics` belongs before the sections, `[ensemble]` anywhere after them.
    let (top, sections) = match extra.split_once('\n') {
        Some((first, rest)) if first.starts_with("dynamics") => (format!("{first}\n"), rest),
        _ => (String::new(), extra),
    };
    let write = |name: &str, head: &str, more: &str| {
        let more = format!("{sections}{more}");
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, format!("{head}\n{top}{common}\n{more}")).unwrap();
        p
    };
    let base_runs = runs.join("base");
    let c1 = write("base", "name = \"base\"\nphase = \"cem\"", "");
    let c2 = write(
        "latent",
        &format!(
            "name = \"latent\"\nphase = \"latent_dcem\"\ninit_from = {:?}",
            base_runs.to_str().unwrap()
        ),
        "",
    );
    let ppo_extra = "[finetune]\nsteps = 4\nepisodes_per_step = 2\neval_episodes = 2\n\
                     [finetune.ppo]\nepochs = 2\nminibatches = 2\nlr = 1e-3\n";
    let c3 = write(
        "ppo",
        &format!(
            "name = \"ppo\"\nphase = \"ppo\"\ninit_from = {:?}",
            runs.join("latent").to_str().unwrap()
        ),
        ppo_extra,
    );
    let ok = |args: &[&str]| {
        let out = planet(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let base = ["--runs-dir", runs_s, "--quiet"];
    let with = |c: &Path, more: &[&str]| -> Vec<String> {
        let mut v = vec![
            "train".to_string(),
            "--config".into(),
            c.to_str().unwrap().into(),
        ];
        v.extend(base.iter().map(|s| s.to_string()));
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    let run = |v: Vec<String>| ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    run(with(&c1, &["--episodes", "1"]));
    run(with(&c2, &["--episodes", "1"]));
    run(with(&c3, &["--ppo-steps", "2"]));
    assert_eq!(rows(&runs.join("ppo")).len(), 2);
    run(with(&c3, &["--resume"]));
    run(with(&c3, &["--name", "straight"]));
    let cols = |r: &[Vec<f64>]| -> Vec<Vec<String>> {
        r.iter()
            .map(|r| (0..10).map(|i| format!("{}", r[i])).collect())
            .collect()
    };
    let resumed = rows(&runs.join("ppo"));
    let straight = rows(&runs.join("straight"));
    assert_eq!(resumed.len(), 4);
    assert_eq!(cols(&resumed), cols(&straight));
    assert!(runs.join("ppo").join("eval.json").exists());
    assert!(runs.join("ppo").join("eval_before.json").exists());
    // Phase 3 from a run without a decoder is refused with the reason.
    let c4 = write(
        "bad",
        &format!(
            "name = \"bad\"\nphase = \"ppo\"\ninit_from = {:?}",
            base_runs.to_str().unwrap()
        ),
        ppo_extra,
    );
    let out = planet(
        &with(&c4, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("phase-2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
