//! The conformance test every environment passes. To add an environment, add a line to
//! `every_env_conforms`.

use dcem::env::{Env, Space};
use dcem_envs::{CartPole, CartPoleAction, CartpoleSwingup, Pendulum};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

/// What an environment does with an action outside its space.
enum OutOfSpace {
    /// Clips it into the space (the step equals the step with the clipped action).
    Clip,
    /// Rejects it with an error.
    Reject,
}

fn random_action(space: &Space, rng: &mut ChaCha8Rng) -> Vec<f64> {
    match space {
        Space::Box(b) => b
            .low()
            .iter()
            .zip(b.high())
            .map(|(l, h)| rng.random_range(*l..=*h))
            .collect(),
        Space::Discrete(n) => vec![rng.random_range(0..*n) as f64],
    }
}

/// An action outside the space and, for clipping envs, its clipped version.
fn outside(space: &Space) -> (Vec<f64>, Vec<f64>) {
    match space {
        Space::Box(b) => (
            b.high().iter().map(|h| h + 3.0).collect(),
            b.high().to_vec(),
        ),
        Space::Discrete(n) => (vec![*n as f64], vec![]),
    }
}

fn episode<E: Env>(env: &mut E, seed: Option<u64>, steps: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut out = vec![env.reset(seed).unwrap()];
    for _ in 0..steps {
        let a = random_action(env.action_space(), &mut rng);
        let s = env.step(&a).unwrap();
        out.push(s.obs);
        if s.terminated || s.truncated {
            break;
        }
    }
    out
}

fn conforms<E: Env>(name: &str, make: impl Fn() -> E, out_of_space: OutOfSpace) {
    // Stepping before reset is an error.
    let mut env = make();
    let a = random_action(env.action_space(), &mut ChaCha8Rng::seed_from_u64(0));
    assert!(
        env.step(&a).is_err(),
        "{name}: step before reset must be an error"
    );

    // Same seed, same episode; reset(None) continues the stream.
    let (mut a, mut b) = (make(), make());
    assert_eq!(
        episode(&mut a, Some(7), 50),
        episode(&mut b, Some(7), 50),
        "{name}: same seed"
    );
    let next_a = episode(&mut a, None, 5);
    let next_b = episode(&mut b, None, 5);
    assert_eq!(
        next_a, next_b,
        "{name}: reset(None) continues the same stream"
    );
    assert_ne!(
        next_a[0],
        episode(&mut make(), Some(7), 0)[0],
        "{name}: reset(None) must not replay the seed"
    );

    // Randomised initial state.
    let firsts: Vec<Vec<f64>> = (0..5).map(|s| make().reset(Some(s)).unwrap()).collect();
    for i in 1..firsts.len() {
        assert_ne!(
            firsts[0], firsts[i],
            "{name}: seeds 0 and {i} start in the same state"
        );
    }

    // Observations lie in the observation space and change from step to step.
    let mut env = make();
    let obs = episode(&mut env, Some(3), 200);
    for (t, o) in obs.iter().enumerate() {
        assert!(
            env.observation_space().contains(o),
            "{name}: obs {t} {o:?} outside the observation space"
        );
    }
    for w in obs.windows(2) {
        assert_ne!(
            w[0], w[1],
            "{name}: a step returned the previous observation"
        );
    }

    // Bad actions: NaN and wrong length are errors that leave the state intact.
    let mut env = make();
    env.reset(Some(1)).unwrap();
    let width = env.action_space().flat_dim();
    assert!(
        env.step(&vec![f64::NAN; width])
            .unwrap_err()
            .to_string()
            .contains("NaN"),
        "{name}: NaN action"
    );
    assert!(
        env.step(&vec![0.0; width + 1]).is_err(),
        "{name}: wrong length"
    );
    let ok = random_action(env.action_space(), &mut ChaCha8Rng::seed_from_u64(5));
    let s = env.step(&ok).unwrap();
    assert!(
        s.obs.iter().all(|v| v.is_finite()),
        "{name}: state after a rejected NaN action"
    );

    // Actions outside the space: clipped or rejected, as documented.
    let (bad, clipped) = outside(env.action_space());
    match out_of_space {
        OutOfSpace::Clip => {
            let (mut x, mut y) = (make(), make());
            x.reset(Some(2)).unwrap();
            y.reset(Some(2)).unwrap();
            assert_eq!(
                x.step(&bad).unwrap(),
                y.step(&clipped).unwrap(),
                "{name}: out-of-space actions are clipped"
            );
        }
        OutOfSpace::Reject => {
            let mut x = make();
            x.reset(Some(2)).unwrap();
            assert!(
                x.step(&bad).is_err(),
                "{name}: out-of-space actions are rejected"
            );
        }
    }
}

#[test]
fn every_env_conforms() {
    conforms(
        "CartPole (discrete)",
        || CartPole::new(CartPoleAction::Discrete).unwrap(),
        OutOfSpace::Reject,
    );
    conforms(
        "CartPole (continuous)",
        || CartPole::new(CartPoleAction::Continuous).unwrap(),
        OutOfSpace::Clip,
    );
    conforms(
        "CartpoleSwingup",
        || CartpoleSwingup::new(Default::default()).unwrap(),
        OutOfSpace::Clip,
    );
    conforms("Pendulum", || Pendulum::new().unwrap(), OutOfSpace::Clip);
    #[cfg(feature = "mujoco")]
    {
        use dcem_envs::dmc::{CheetahRun, WalkerWalk};
        // MuJoCo clamps each control to its actuator's ctrlrange of [-1, 1].
        let cheetah = CheetahRun::load_model().unwrap();
        conforms(
            "dmc cheetah.run",
            || CheetahRun::with_model(cheetah.clone()).unwrap(),
            OutOfSpace::Clip,
        );
        let walker = WalkerWalk::load_model().unwrap();
        conforms(
            "dmc walker.walk",
            || WalkerWalk::with_model(walker.clone()).unwrap(),
            OutOfSpace::Clip,
        );
    }
}

#[test]
fn episodes_end_as_documented() {
    let mut env = CartpoleSwingup::new(dcem_envs::SwingupConfig { episode_steps: 3 }).unwrap();
    env.reset(Some(0)).unwrap();
    let flags: Vec<bool> = (0..3)
        .map(|_| env.step(&[0.0]).unwrap().truncated)
        .collect();
    assert_eq!(flags, vec![false, false, true]);
    assert!(
        env.step(&[0.0]).is_err(),
        "stepping after the end needs a reset"
    );
    assert!(CartpoleSwingup::new(dcem_envs::SwingupConfig { episode_steps: 0 }).is_err());
    let mut p = Pendulum::new().unwrap();
    p.reset(Some(0)).unwrap();
    let n = (0..)
        .take_while(|_| !p.step(&[0.0]).unwrap().truncated)
        .count()
        + 1;
    assert_eq!(n, 200);
}

#[test]
fn vec_env_autoresets_these_envs() {
    let mut venv = dcem::env::VecEnv::new(
        (0..8)
            .map(|_| CartPole::new(CartPoleAction::Discrete).unwrap())
            .collect(),
    )
    .unwrap();
    venv.reset(Some(0)).unwrap();
    // Always pushing right ends every episode within a few dozen steps; the following step
    // starts a new episode with reward 0.
    let mut ended = [false; 8];
    let mut restarted = 0;
    for _ in 0..100 {
        let s = venv.step(&[1.0; 8]).unwrap();
        for (i, ended) in ended.iter_mut().enumerate() {
            if *ended {
                assert_eq!(s.reward[i], 0.0);
                assert!(s.obs[i * 4..i * 4 + 4].iter().all(|v| v.abs() <= 0.05));
                restarted += 1;
            }
            *ended = s.terminated[i] || s.truncated[i];
        }
    }
    assert!(restarted >= 8, "{restarted} restarts");
}
