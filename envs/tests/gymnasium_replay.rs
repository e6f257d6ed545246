//! Replays trajectories recorded from Gymnasium 1.4.0 (scripts/record_gym.py) through the Rust
//! environments, from the same initial state with the same actions.

use dcem::env::Env;
use dcem_envs::{CartPole, CartPoleAction, Pendulum};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run scripts/record_gym.py"));
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn as_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|x| *x as f32).collect()
}

#[test]
fn cartpole_matches_gymnasium_exactly_in_f32() {
    let data = load("cartpole_v1");
    let mut steps = 0;
    for ep in data["episodes"].as_array().expect("episodes") {
        let mut env = CartPole::new(CartPoleAction::Discrete).unwrap();
        let init = floats(&ep["initial_state"]);
        let obs = env.reset_to([init[0], init[1], init[2], init[3]]).unwrap();
        assert_eq!(as_f32(&obs), as_f32(&floats(&ep["initial_obs"])));
        let actions = ep["actions"].as_array().unwrap();
        for (t, a) in actions.iter().enumerate() {
            let s = env.step(&floats(a)).unwrap();
            assert_eq!(
                as_f32(&s.obs),
                as_f32(&floats(&ep["obs"][t])),
                "seed {} step {t}",
                ep["seed"]
            );
            assert_eq!(
                s.reward as f32,
                ep["rewards"][t].as_f64().unwrap() as f32,
                "reward at step {t}"
            );
            assert_eq!(
                s.terminated,
                ep["terminated"][t].as_bool().unwrap(),
                "terminated at step {t}"
            );
            assert_eq!(
                s.truncated,
                ep["truncated"][t].as_bool().unwrap(),
                "truncated at step {t}"
            );
            steps += 1;
        }
    }
    assert!(steps > 500, "the recording covers a full 500-step episode");
}

#[test]
fn pendulum_matches_gymnasium() {
    let data = load("pendulum_v1");
    let mut worst_reward = 0.0f64;
    for ep in data["episodes"].as_array().expect("episodes") {
        let mut env = Pendulum::new().unwrap();
        let init = floats(&ep["initial_state"]);
        let obs = env.reset_to([init[0], init[1]]).unwrap();
        assert_eq!(as_f32(&obs), as_f32(&floats(&ep["initial_obs"])));
        for (t, a) in ep["actions"].as_array().unwrap().iter().enumerate() {
            let s = env.step(&floats(a)).unwrap();
            assert_eq!(
                as_f32(&s.obs),
                as_f32(&floats(&ep["obs"][t])),
                "seed {} step {t}",
                ep["seed"]
            );
            let want = ep["rewards"][t].as_f64().unwrap();
            worst_reward = worst_reward.max((s.reward - want).abs());
            assert_eq!(s.terminated, ep["terminated"][t].as_bool().unwrap());
            assert_eq!(
                s.truncated,
                ep["truncated"][t].as_bool().unwrap(),
                "truncated at step {t}"
            );
        }
    }
    assert!(
        worst_reward <= 1e-12,
        "largest reward difference {worst_reward:e}"
    );
}
