//! Env trait, spaces, wrappers and VecEnv, on a small test environment.

use dcem::env::{ActionRepeat, BoxSpace, Env, Space, Step, TimeLimit, VecEnv};
use dcem::{Error, Result};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

/// A 1-D random walk: x_{t+1} = x_t + a, reward -|x|, terminated when |x| > 2.
struct Walk {
    x: f64,
    rng: ChaCha8Rng,
    obs_space: Space,
    act_space: Space,
    ready: bool,
}

impl Walk {
    fn new() -> Self {
        Self {
            x: 0.0,
            rng: ChaCha8Rng::seed_from_u64(0),
            obs_space: Space::Box(BoxSpace::uniform(1, f64::NEG_INFINITY, f64::INFINITY).unwrap()),
            act_space: Space::Box(BoxSpace::uniform(1, -1.0, 1.0).unwrap()),
            ready: false,
        }
    }
}

impl Env for Walk {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f64>> {
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
        self.x = self.rng.random_range(-1.0..1.0);
        self.ready = true;
        Ok(vec![self.x])
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        if !self.ready {
            return Err(Error::NeedsReset("Walk".into()));
        }
        match &self.act_space {
            Space::Box(b) => b.check(action, "Walk")?,
            Space::Discrete(_) => unreachable!(),
        }
        self.x += action[0];
        let terminated = self.x.abs() > 2.0;
        self.ready = !terminated;
        Ok(Step {
            obs: vec![self.x],
            reward: -self.x.abs(),
            terminated,
            truncated: false,
        })
    }
}

#[test]
fn box_space_validates_and_checks() {
    assert!(BoxSpace::new(vec![0.0], vec![1.0, 2.0], vec![1]).is_err());
    assert!(BoxSpace::new(vec![1.0], vec![0.0], vec![1]).is_err());
    assert!(BoxSpace::new(vec![f64::NAN], vec![0.0], vec![1]).is_err());
    let b = BoxSpace::new(vec![-1.0, 0.0], vec![1.0, 2.0], vec![2]).unwrap();
    assert!(b.contains(&[0.5, 1.5]));
    assert!(!b.contains(&[0.5, 2.5]));
    assert!(!b.contains(&[f64::NAN, 1.0]));
    assert!(
        b.check(&[0.0], "t")
            .unwrap_err()
            .to_string()
            .contains("expected 2 values")
    );
    assert!(
        b.check(&[f64::NAN, 0.0], "t")
            .unwrap_err()
            .to_string()
            .contains("NaN")
    );
    assert_eq!(b.clip(&[3.0, -1.0]), vec![1.0, 0.0]);
    assert!(Space::Discrete(2).contains(&[1.0]));
    assert!(!Space::Discrete(2).contains(&[2.0]));
    assert!(!Space::Discrete(2).contains(&[0.5]));
}

#[test]
fn seeding_is_reproducible_and_none_continues_the_stream() {
    let mut a = Walk::new();
    let mut b = Walk::new();
    assert_eq!(a.reset(Some(3)).unwrap(), b.reset(Some(3)).unwrap());
    let second = a.reset(None).unwrap();
    assert_ne!(second, b.reset(Some(3)).unwrap());
    assert!(a.step(&[f64::NAN]).is_err());
    assert!(a.step(&[1.5]).is_err());
}

#[test]
fn time_limit_truncates() {
    let mut env = TimeLimit::new(Walk::new(), 3).unwrap();
    assert!(TimeLimit::new(Walk::new(), 0).is_err());
    env.reset(Some(1)).unwrap();
    let flags: Vec<bool> = (0..3)
        .map(|_| env.step(&[0.0]).unwrap().truncated)
        .collect();
    assert_eq!(flags, vec![false, false, true]);
    env.reset(None).unwrap();
    assert_eq!(env.elapsed(), 0);
}

#[test]
fn action_repeat_sums_rewards_and_stops_at_termination() {
    let mut plain = Walk::new();
    let mut rep = ActionRepeat::new(Walk::new(), 3).unwrap();
    assert!(ActionRepeat::new(Walk::new(), 0).is_err());
    plain.reset(Some(2)).unwrap();
    rep.reset(Some(2)).unwrap();
    let want: f64 = (0..3).map(|_| plain.step(&[0.1]).unwrap().reward).sum();
    let got = rep.step(&[0.1]).unwrap();
    assert!((got.reward - want).abs() < 1e-12);
    // Pushing hard terminates inside the repeat: the wrapper stops there.
    let s = rep.step(&[1.0]).unwrap();
    assert!(s.terminated);
}

#[test]
fn vec_env_steps_in_parallel_with_next_step_autoreset() {
    let mut venv = VecEnv::new((0..8).map(|_| Walk::new()).collect()).unwrap();
    assert!(
        venv.step(&[0.0; 8]).is_err(),
        "step before reset is an error"
    );
    let obs = venv.reset(Some(10)).unwrap();
    // Env i was seeded with 10 + i.
    for (i, o) in obs.iter().enumerate() {
        let mut single = Walk::new();
        assert_eq!(single.reset(Some(10 + i as u64)).unwrap()[0], *o);
    }
    assert!(
        venv.step(&[0.0; 3])
            .unwrap_err()
            .to_string()
            .contains("8 x 1")
    );
    // Push every env out: all terminate, then the next step resets them with reward 0.
    let mut ended = [false; 8];
    for _ in 0..5 {
        let s = venv.step(&[1.0; 8]).unwrap();
        for (i, ended) in ended.iter_mut().enumerate() {
            if *ended {
                assert_eq!(s.reward[i], 0.0);
                assert!(!s.terminated[i]);
                assert!(s.obs[i].abs() < 1.0, "a reset observation");
                *ended = false;
            } else if s.terminated[i] {
                *ended = true;
            }
        }
    }
    assert!(VecEnv::<Walk>::new(vec![]).is_err());
    // One seed per environment.
    let obs = venv.reset_each(&[Some(3); 8]).unwrap();
    assert!(
        obs.iter()
            .all(|o| *o == Walk::new().reset(Some(3)).unwrap()[0])
    );
    assert!(venv.reset_each(&[Some(3)]).is_err());
}

/// A VecEnv's state (episode seeds and actions) rebuilds it mid-episode: after `restore`, a
/// fresh VecEnv steps exactly as the saved one does, through autoresets, in both modes.
#[test]
fn vec_env_state_restores_by_replay() {
    use dcem::env::Autoreset;
    for mode in [Autoreset::NextStep, Autoreset::SameStep] {
        let make = || {
            VecEnv::new((0..4).map(|_| Walk::new()).collect())
                .unwrap()
                .with_autoreset(mode)
                .with_seeded_autoresets()
                .with_replay_log()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let actions = |rng: &mut ChaCha8Rng| -> Vec<f64> {
            (0..4).map(|_| rng.random_range(-0.6..0.6)).collect()
        };
        let mut a = make();
        let mut obs = a.reset(Some(7)).unwrap();
        for _ in 0..25 {
            obs = a.step(&actions(&mut rng)).unwrap().obs;
        }
        let state = a.state().unwrap();
        let mut b = make();
        assert_eq!(b.restore(&state).unwrap(), obs, "{mode:?}");
        for _ in 0..25 {
            let act = actions(&mut rng);
            assert_eq!(a.step(&act).unwrap(), b.step(&act).unwrap(), "{mode:?}");
        }
        assert_eq!(a.state().unwrap(), b.state().unwrap());
    }
    // Without a log, or with an unseeded episode, there is no state to save.
    let mut plain = VecEnv::new(vec![Walk::new()]).unwrap();
    plain.reset(Some(1)).unwrap();
    assert!(plain.state().is_err());
    let mut unseeded = VecEnv::new(vec![Walk::new()]).unwrap().with_replay_log();
    unseeded.reset(None).unwrap();
    assert!(unseeded.state().unwrap_err().to_string().contains("seed"));
}

/// A bounded box action space on [-2, 2] x [0, 10] that records the actions it gets.
struct Recorder {
    obs: Space,
    act: Space,
    got: Vec<Vec<f64>>,
}

impl Env for Recorder {
    fn observation_space(&self) -> &Space {
        &self.obs
    }
    fn action_space(&self) -> &Space {
        &self.act
    }
    fn reset(&mut self, _seed: Option<u64>) -> Result<Vec<f64>> {
        Ok(vec![0.0])
    }
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        self.got.push(action.to_vec());
        Ok(Step {
            obs: vec![0.0],
            reward: 1.0,
            terminated: false,
            truncated: false,
        })
    }
}

#[test]
fn rescale_action_maps_the_unit_box_onto_the_env_bounds() {
    let rec = Recorder {
        obs: Space::Box(BoxSpace::uniform(1, -1.0, 1.0).unwrap()),
        act: Space::Box(BoxSpace::new(vec![-2.0, 0.0], vec![2.0, 10.0], vec![2]).unwrap()),
        got: Vec::new(),
    };
    let mut env = dcem::env::RescaleAction::new(rec).unwrap();
    match env.action_space() {
        Space::Box(b) => assert_eq!((b.low(), b.high()), (&[-1.0, -1.0][..], &[1.0, 1.0][..])),
        Space::Discrete(_) => panic!("a box"),
    }
    env.step(&[0.5, -1.0]).unwrap();
    env.step(&[1.0, 0.0]).unwrap();
    env.step(&[7.0, -3.0]).unwrap(); // clipped to the box first
    assert_eq!(
        env.inner().got,
        vec![vec![1.0, 0.0], vec![2.0, 5.0], vec![2.0, 0.0]]
    );
    assert!(env.step(&[0.0]).is_err(), "wrong width");
    assert!(env.step(&[f64::NAN, 0.0]).is_err(), "NaN");
    let unbounded = Recorder {
        obs: Space::Box(BoxSpace::uniform(1, -1.0, 1.0).unwrap()),
        act: Space::Box(BoxSpace::uniform(1, f64::NEG_INFINITY, 1.0).unwrap()),
        got: Vec::new(),
    };
    assert!(dcem::env::RescaleAction::new(unbounded).is_err());
}

#[test]
fn action_repeat_reports_the_steps_it_took() {
    let mut env = ActionRepeat::new(Walk::new(), 5).unwrap();
    env.reset(Some(1)).unwrap();
    let step = env.step(&[0.9]).unwrap();
    // x passes 2 within 4 steps of 0.9 from |x0| < 1: inside the first repeat of 5.
    assert!(step.terminated);
    assert!((2..5).contains(&env.substeps()), "{}", env.substeps());
}

mod runner {
    use super::*;
    use dcem::agent::{Agent, Metrics, Mode, Transition};
    use dcem::runner::{eval_seeds, evaluate, run_episode};

    /// Pushes right with 0.5 and counts every call.
    #[derive(Default)]
    struct Counter {
        acts: usize,
        observed: Vec<Transition>,
        updates: usize,
        ends: usize,
        modes: Vec<Mode>,
    }

    impl Agent for Counter {
        fn act(&mut self, _obs: &[f64]) -> Result<Vec<f64>> {
            self.acts += 1;
            Ok(vec![0.5])
        }
        fn observe(&mut self, t: &Transition) -> Result<()> {
            self.observed.push(t.clone());
            Ok(())
        }
        fn update(&mut self) -> Result<Metrics> {
            self.updates += 1;
            Ok(vec![("loss/model", self.updates as f64)])
        }
        fn reset(&mut self, mode: Mode) {
            self.modes.push(mode);
        }
        fn end_episode(&mut self) -> Result<()> {
            self.ends += 1;
            Ok(())
        }
    }

    #[test]
    fn a_training_episode_observes_updates_and_ends_once() {
        let mut env = TimeLimit::new(ActionRepeat::new(Walk::new(), 2).unwrap(), 50).unwrap();
        let mut agent = Counter::default();
        let ep = run_episode(&mut agent, &mut env, 3, Mode::Train).unwrap();
        assert_eq!(agent.acts, ep.steps);
        assert_eq!(agent.observed.len(), ep.steps);
        assert_eq!(agent.updates, ep.steps);
        assert_eq!(ep.updates.len(), ep.steps);
        assert_eq!(agent.ends, 1);
        assert_eq!(agent.modes, vec![Mode::Train]);
        // Walk terminates once |x| > 2: at 1 per decision (2 x 0.5) from |x0| < 1, within 4
        // decisions, and the last decision may end inside its repeat.
        assert!(ep.steps <= 4 && ep.env_steps <= 2 * ep.steps && ep.env_steps > 2 * ep.steps - 2);
        let last = agent.observed.last().unwrap();
        assert!(last.terminated && !last.truncated);
        let ret: f64 = agent.observed.iter().map(|t| t.reward).sum();
        assert_eq!(ret, ep.ret);
        for w in agent.observed.windows(2) {
            assert_eq!(w[0].next_obs, w[1].obs);
        }
    }

    #[test]
    fn evaluation_only_acts_on_the_fixed_seeds() {
        let mut env = TimeLimit::new(Walk::new(), 50).unwrap();
        let mut agent = Counter::default();
        let a = evaluate(&mut agent, &mut env, &eval_seeds(3)).unwrap();
        assert!(agent.observed.is_empty() && agent.updates == 0 && agent.ends == 0);
        assert_eq!(agent.modes, vec![Mode::Eval; 3]);
        let b = evaluate(&mut agent, &mut env, &eval_seeds(3)).unwrap();
        assert_eq!(a, b, "the same seeds give the same episodes");
        assert_eq!(eval_seeds(2), vec![1_000_000, 1_000_001]);
    }
}

#[test]
fn outliers_are_told_from_a_clean_curve() {
    use dcem::run::plot::has_outliers;
    let clean: Vec<f64> = (0..50).map(|i| i as f64).collect();
    assert!(!has_outliers(clean.iter().copied()));
    let mut spiky = clean.clone();
    spiky[3] = -674_000.0;
    assert!(has_outliers(spiky));
    assert!(!has_outliers([1.0, 1e9]), "too few points to tell");
}

#[test]
fn record_episodes_keeps_whole_trajectories() {
    use dcem::env::RecordEpisodes;
    let mut env = RecordEpisodes::new(TimeLimit::new(Walk::new(), 3).unwrap());
    for seed in [1, 2] {
        let first = env.reset(Some(seed)).unwrap();
        let mut rewards = Vec::new();
        loop {
            let step = env.step(&[0.1]).unwrap();
            rewards.push(step.reward);
            if step.done() {
                break;
            }
        }
        let ep = env.episodes().last().unwrap();
        assert_eq!(ep.obs[0], first);
        assert_eq!(ep.obs.len(), ep.actions.len() + 1);
        assert_eq!(ep.rewards, rewards);
        assert!(ep.actions.iter().all(|a| a == &vec![0.1]));
    }
    assert_eq!(env.take().len(), 2);
    assert!(env.episodes().is_empty());
}
