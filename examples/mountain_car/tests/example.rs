//! The example crate's environment works with the framework's pieces: its own model planned on
//! by `MpcAgent` + `CemPlanner` reaches the goal, and the planet agent trains on it through the
//! registry and the public entry point, writing an ordinary run folder; the config's planner on
//! the example's model of the true dynamics gives the bound (`true_model_eval_with`).

use mountain_car_example::{KIND, mountain_car, mpc_returns, planet_config, train_planet};

#[test]
fn mpc_on_the_own_model_reaches_the_goal() {
    // Gymnasium counts MountainCarContinuous-v0 as solved at 90.
    let returns = mpc_returns(1).unwrap();
    assert!(returns[0] > 90.0, "{returns:?}");
}

#[test]
fn the_planet_agent_trains_on_the_registered_environment() {
    use dcem::env::Env;
    assert_eq!(mountain_car().unwrap().max_episode_steps(), Some(999));
    let mut config = planet_config().unwrap();
    assert_eq!(config.env.name(), KIND);
    config.train.seed_episodes = 1;
    config.train.episodes = 1;
    config.train.seed_updates = 5;
    config.train.eval_every = 0;
    config.train.final_eval_episodes = 1;
    let dir = std::env::temp_dir().join(format!("mountain-car-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let summary = train_planet(&config, &dir, dcem::run::Existing::Refuse).unwrap();
    assert_eq!(summary.rows.len(), 2, "one seed and one planning episode");
    assert!(summary.eval.is_some_and(|e| e.mean.is_finite()));
    let saved = std::fs::read_to_string(summary.dir.join("config.toml")).unwrap();
    assert!(saved.contains(KIND), "{saved}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_bound_is_the_planet_config_planner_on_the_true_model() {
    // The planet config's own planner (iCEM, action repeat 4) on the example's model of the
    // true dynamics: the bound a learned model is compared with, for an environment the
    // library does not ship.
    let config = planet_config().unwrap();
    let bound = planet_dcem::true_model_eval_with(
        &config,
        mountain_car_example::MountainCarModel,
        &dcem::runner::eval_seeds(1),
    )
    .unwrap();
    assert_eq!(bound.returns.len(), 1);
    assert!(bound.mean.is_finite(), "{:?}", bound.returns);
}
