//! Phase 2 on the RSSM world model.

use super::*;

/// Phase 2 on the RSSM: the offline stage validates on replayed posterior states and keeps the
/// best decoder (`offline_val.json`); with `decoder.every = 0` only the model learns online; the
/// run's model evaluated with full CEM (`eval --full-cem --out`).
#[test]
fn rssm_phase2_validates_its_offline_decoder() {
    let dir = scratch("rssm-offline-val");
    let runs = dir.join("runs");
    let common = "[env]\nkind = \"swingup\"\nepisode_steps = 20\n\
        [train]\naction_repeat = 2\nupdate_every = 5\nupdates = 1\nbatch = 2\nchunk = 4\n\
        episodes = 1\nseed_episodes = 2\neval_every = 0\nfinal_eval_episodes = 1\n\
        checkpoint_every = 1\n[model]\ndeter = 8\nstoch = 2\nhidden = 8\n[cem]\nhorizon = 3\n\
        [cem.cem]\nn_sample = 8\nn_elite = 2\nn_iter = 2\ntau = 0.0\niter_eps = 0.0\n\
        [latent.cem]\nn_sample = 8\nn_elite = 2\nn_iter = 2\ntau = 1.0\niter_eps = 0.0\n\
        [decoder.net]\nlatent_dim = 2\nhidden = 8\nhidden_layers = 1\n";
    let base = dir.join("base.toml");
    std::fs::write(&base, format!("name = \"base\"\nphase = \"cem\"\n{common}")).unwrap();
    train_ok(&base, &runs);
    let lat = dir.join("lat.toml");
    std::fs::write(
        &lat,
        format!(
            "name = \"lat\"\nphase = \"latent_dcem\"\ninit_from = {:?}\nkeep_buffer = true\n\
             {common}[decoder]\nbatch = 2\nevery = 0\noffline_steps = 4\n\
             offline_val_states = 10\noffline_val_every = 2\n",
            runs.join("base").display().to_string()
        ),
    )
    .unwrap();
    train_ok(&lat, &runs);
    let offline = std::fs::read_to_string(runs.join("lat").join("offline.csv")).unwrap();
    // Validated at steps 0, 2 and 4.
    let checked: Vec<&str> = offline
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(','))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(checked, ["0", "2", "4"], "{offline}");
    let text = std::fs::read_to_string(runs.join("lat").join("offline_val.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["states"], 10);
    assert!(v["best_cost"].as_f64().unwrap() <= v["last_cost"].as_f64().unwrap());
    assert!(v["full_cem_cost"].as_f64().unwrap().is_finite());
    let metrics = std::fs::read_to_string(runs.join("lat").join("metrics.csv")).unwrap();
    let row: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    assert_eq!(row[8], "NaN", "no online decoder steps: {metrics}");
    assert_ne!(row[9], "0", "the model learns online: {metrics}");
    let run = runs.join("lat");
    let out_file = dir.join("full.json");
    let args = [
        "eval",
        run.to_str().unwrap(),
        "--episodes",
        "1",
        "--full-cem",
    ];
    let out = planet(&args)
        .args(["--out", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_to_string(&out_file).unwrap();
    assert!(summary.contains("full CEM on its model"), "{summary}");
    // An existing summary is never overwritten.
    let out = planet(&args)
        .args(["--out", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), summary);
    let out = planet(&args).args(["--act-tau", "0"]).output().unwrap();
    assert!(
        !out.status.success(),
        "--full-cem with --act-tau is refused"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
