//! GymEnv drives Python Gymnasium environments from Rust: Pendulum-v1 step for step against our
//! native Pendulum, CartPole-v1's discrete actions, errors from Python.

use dcem::env::{Env, Space, VecEnv};
use dcem_envs::{GymEnv, Pendulum};

#[test]
fn pendulum_through_python_equals_the_native_one() {
    let mut gym = GymEnv::new("Pendulum-v1").unwrap();
    assert!(matches!(gym.action_space(), Space::Box(b) if b.low() == [-2.0] && b.high() == [2.0]));
    assert_eq!(gym.observation_space().flat_dim(), 3);
    assert_eq!(
        gym.max_episode_steps(),
        Some(200),
        "Gymnasium's spec.max_episode_steps"
    );
    let obs = gym.reset(Some(3)).unwrap();
    // Start the native pendulum where Gymnasium's is. The observation is rounded to float32, so
    // the start state agrees to about 1e-7 and the two runs stay within 1e-4 for a while.
    let mut ours = Pendulum::new().unwrap();
    ours.reset_to([obs[1].atan2(obs[0]), obs[2]]).unwrap();
    let mut total = 0.0;
    for t in 0..200 {
        let a = [((t as f64) * 0.37).sin() * 2.0];
        let s = gym.step(&a).unwrap();
        total += s.reward;
        assert_eq!(s.truncated, t == 199, "TimeLimit from gymnasium.make");
        if t < 20 {
            let n = ours.step(&a).unwrap();
            for (x, y) in s.obs.iter().zip(&n.obs) {
                assert!(
                    (x - y).abs() < 1e-4,
                    "step {t}: obs {:?} vs native {:?}",
                    s.obs,
                    n.obs
                );
            }
            assert!((s.reward - n.reward).abs() < 1e-4, "step {t}: reward");
        }
    }
    assert!(total < 0.0);
}

#[test]
fn discrete_cartpole_and_vec_env() {
    let mut env = GymEnv::new("CartPole-v1").unwrap();
    assert!(matches!(env.action_space(), Space::Discrete(2)));
    assert_eq!(env.max_episode_steps(), Some(500));
    let a = env.reset(Some(0)).unwrap();
    let b = GymEnv::new("CartPole-v1").unwrap().reset(Some(0)).unwrap();
    assert_eq!(a, b, "same seed, same start");
    let s = env.step(&[1.0]).unwrap();
    assert_eq!(s.reward, 1.0);
    for bad in [0.5, 2.0, -1.0] {
        let e = env.step(&[bad]).unwrap_err().to_string();
        assert!(e.contains("integer in 0..2"), "{e}");
    }
    let mut venv = VecEnv::new(vec![env, GymEnv::new("CartPole-v1").unwrap()]).unwrap();
    venv.reset(Some(0)).unwrap();
    for _ in 0..50 {
        venv.step(&[0.0, 1.0]).unwrap();
    }
}

#[test]
fn errors_name_the_problem() {
    let unknown = GymEnv::new("NoSuchEnv-v0").unwrap_err().to_string();
    assert!(unknown.contains("NoSuchEnv"), "{unknown}");
    let mut env = GymEnv::new("Pendulum-v1").unwrap();
    env.reset(Some(0)).unwrap();
    assert!(
        env.step(&[f64::NAN])
            .unwrap_err()
            .to_string()
            .contains("NaN")
    );
    assert!(env.step(&[0.0, 0.0]).is_err());
    let bad_kw = GymEnv::with_kwargs("Pendulum-v1", &[("g", "not valid python")]).unwrap_err();
    assert!(bad_kw.to_string().contains("keyword `g`"), "{bad_kw}");
    let g = GymEnv::with_kwargs("Pendulum-v1", &[("g", "9.81")]).unwrap();
    assert_eq!(g.id(), "Pendulum-v1");
}
