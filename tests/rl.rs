//! GAE against its definition, and PPO learning a contextual bandit.

use burn::tensor::Device;
use dcem::rl::{MlpPolicy, Ppo, PpoConfig, RolloutBatch, gae};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

/// `A_t = sum_l (gamma lambda)^l delta_{t+l}` over the rest of the episode, written as a double
/// loop straight from the definition.
fn gae_by_definition(
    r: &[f64],
    v: &[f64],
    v_next: &[f64],
    term: &[bool],
    end: &[bool],
    gamma: f64,
    lambda: f64,
) -> Vec<f64> {
    let n = r.len();
    let delta: Vec<f64> = (0..n)
        .map(|t| r[t] + if term[t] { 0.0 } else { gamma * v_next[t] } - v[t])
        .collect();
    (0..n)
        .map(|t| {
            let mut a = 0.0;
            let mut w = 1.0;
            for (l, d) in delta.iter().enumerate().skip(t) {
                a += w * d;
                if end[l] {
                    break;
                }
                w *= gamma * lambda;
            }
            a
        })
        .collect()
}

/// Rewards, values, next values, terminated and episode-end flags.
type Stream = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<bool>, Vec<bool>);

fn random_stream(n: usize, rng: &mut ChaCha8Rng) -> Stream {
    let r: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..2.0)).collect();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
    let mut term = vec![false; n];
    let mut end = vec![false; n];
    for t in 0..n {
        let u: f64 = rng.random();
        if u < 0.1 {
            term[t] = true;
            end[t] = true;
        } else if u < 0.15 {
            end[t] = true; // truncated
        }
    }
    // The next observation's value: the following step's value inside an episode, a fresh one
    // after an end (the final observation of a truncated episode).
    let v_next: Vec<f64> = (0..n)
        .map(|t| {
            if end[t] || t + 1 == n {
                rng.random_range(-3.0..3.0)
            } else {
                v[t + 1]
            }
        })
        .collect();
    (r, v, v_next, term, end)
}

#[test]
fn gae_matches_its_definition() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (gamma, lambda) in [(0.99, 0.95), (0.9, 0.0), (1.0, 0.5), (0.8, 1.0)] {
        let (r, v, vn, term, end) = random_stream(200, &mut rng);
        let (adv, ret) = gae(&r, &v, &vn, &term, &end, gamma, lambda).unwrap();
        let want = gae_by_definition(&r, &v, &vn, &term, &end, gamma, lambda);
        for t in 0..r.len() {
            assert!(
                (adv[t] - want[t]).abs() < 1e-9,
                "t={t}: {} vs {}",
                adv[t],
                want[t]
            );
            assert!((ret[t] - adv[t] - v[t]).abs() < 1e-12);
        }
    }
}

#[test]
fn gae_with_lambda_one_is_the_discounted_return_minus_the_value() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let gamma = 0.97;
    let n = 50;
    let r: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-5.0..5.0)).collect();
    let mut vn: Vec<f64> = v[1..].to_vec();
    vn.push(123.0); // ignored: the episode terminates at its last step
    let mut term = vec![false; n];
    term[n - 1] = true;
    let (adv, ret) = gae(&r, &v, &vn, &term, &term, gamma, 1.0).unwrap();
    let mut g = 0.0;
    for t in (0..n).rev() {
        g = r[t] + gamma * g;
        assert!((ret[t] - g).abs() < 1e-9, "t={t}: {} vs {g}", ret[t]);
        assert!((adv[t] - (g - v[t])).abs() < 1e-9);
    }
}

#[test]
fn truncation_is_bootstrapped_and_termination_is_not() {
    let (r, v) = ([1.0], [0.5]);
    let (a, _) = gae(&r, &v, &[10.0], &[false], &[true], 0.9, 0.95).unwrap();
    assert!((a[0] - (1.0 + 9.0 - 0.5)).abs() < 1e-12);
    let (a, _) = gae(&r, &v, &[10.0], &[true], &[true], 0.9, 0.95).unwrap();
    assert!((a[0] - 0.5).abs() < 1e-12);
}

/// One-step episodes: context `x ~ U(-1, 1)`, reward `-(a - x)^2`. PPO with an MLP mean must
/// move the mean onto the context.
#[test]
fn ppo_learns_a_contextual_bandit() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut ppo = bandit_ppo(&mut rng);
    let before = bandit_error(&ppo);
    for _ in 0..40 {
        let n = 256;
        let xs: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let seeds = vec![0u64; n];
        let acted = ppo.act(&xs, &seeds, false, &mut rng).unwrap();
        let rewards: Vec<f64> = xs
            .iter()
            .zip(&acted.actions)
            .map(|(x, a)| -(a - x).powi(2))
            .collect();
        let values = ppo.values(&xs).unwrap();
        let ones = vec![true; n];
        let (adv, ret) = gae(&rewards, &values, &vec![0.0; n], &ones, &ones, 0.99, 0.95).unwrap();
        let mut batch = RolloutBatch {
            inputs: xs.clone(),
            value_inputs: xs,
            seeds,
            actions: acted.actions,
            logp: acted.logp,
            values,
            ..RolloutBatch::default()
        };
        batch.set_advantages(adv, ret).unwrap();
        let stats = ppo.update(&batch, &mut rng).unwrap();
        assert!(stats.approx_kl.is_finite() && stats.steps == 16);
    }
    let after = bandit_error(&ppo);
    eprintln!("mean |mu(x) - x|: {before:.3} -> {after:.3}");
    assert!(after < 0.1 && after < 0.3 * before, "{before} -> {after}");
}

#[test]
fn bad_batches_and_options_are_refused() {
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let policy = MlpPolicy::new(2, 1, 8, 1, &device, &mut rng).unwrap();
    let bad = PpoConfig {
        gae_lambda: 1.5,
        ..PpoConfig::default()
    };
    let e = Ppo::new(bad, policy.clone(), 2, &device, &mut rng).unwrap_err();
    assert!(e.to_string().contains("gae_lambda"), "{e}");
    let mut ppo = Ppo::new(PpoConfig::default(), policy, 2, &device, &mut rng).unwrap();
    let e = ppo
        .act(&[0.0, f64::NAN], &[0], false, &mut rng)
        .unwrap_err();
    assert!(e.to_string().contains("finite"), "{e}");
    let batch = RolloutBatch {
        inputs: vec![0.0; 2],
        value_inputs: vec![0.0; 2],
        seeds: vec![0],
        actions: vec![0.0],
        logp: vec![0.0],
        values: vec![0.0],
        ..RolloutBatch::default()
    };
    let e = ppo.update(&batch, &mut rng).unwrap_err();
    assert!(e.to_string().contains("advantage"), "{e}");
}

/// The contextual bandit as an environment: one step per episode, `x ~ U(-1, 1)` drawn from the
/// env's own generator (reseeded by `reset(Some(seed))`), reward `-(a - x)^2`, terminated.
struct Bandit {
    x: f64,
    rng: ChaCha8Rng,
    obs: dcem::env::Space,
    act: dcem::env::Space,
}

impl Bandit {
    fn new() -> Self {
        use dcem::env::{BoxSpace, Space};
        Self {
            x: 0.0,
            rng: ChaCha8Rng::seed_from_u64(0),
            obs: Space::Box(BoxSpace::uniform(1, -1.0, 1.0).unwrap()),
            act: Space::Box(BoxSpace::uniform(1, -2.0, 2.0).unwrap()),
        }
    }

    /// The context of an episode reset with `seed`.
    fn context(seed: u64) -> f64 {
        ChaCha8Rng::seed_from_u64(seed).random_range(-1.0..1.0)
    }
}

impl dcem::env::Env for Bandit {
    fn observation_space(&self) -> &dcem::env::Space {
        &self.obs
    }
    fn action_space(&self) -> &dcem::env::Space {
        &self.act
    }
    fn reset(&mut self, seed: Option<u64>) -> dcem::Result<Vec<f64>> {
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
        self.x = self.rng.random_range(-1.0..1.0);
        Ok(vec![self.x])
    }
    fn step(&mut self, a: &[f64]) -> dcem::Result<dcem::env::Step> {
        Ok(dcem::env::Step {
            obs: vec![self.x],
            reward: -(a[0] - self.x).powi(2),
            terminated: true,
            truncated: false,
        })
    }
}

/// The bandit's learner (policy 1-32-32-1, lr 3e-3, 4 epochs of 4 minibatches, std e^-1),
/// initialised from `rng`.
fn bandit_ppo(rng: &mut ChaCha8Rng) -> Ppo<MlpPolicy> {
    let device = Device::flex();
    let policy = MlpPolicy::new(1, 1, 32, 2, &device, rng).unwrap();
    let cfg = PpoConfig {
        lr: 3e-3,
        epochs: 4,
        minibatches: 4,
        init_log_std: -1.0,
        ..PpoConfig::default()
    };
    Ppo::new(cfg, policy, 1, &device, rng).unwrap()
}

/// Mean |mu(x) - x| of the policy's mean action over a grid of contexts.
fn bandit_error(ppo: &Ppo<MlpPolicy>) -> f64 {
    let xs: Vec<f64> = (0..21).map(|i| -1.0 + 0.1 * i as f64).collect();
    let mut r = ChaCha8Rng::seed_from_u64(0);
    let acted = ppo.act(&xs, &[0; 21], true, &mut r).unwrap();
    xs.iter()
        .zip(&acted.means)
        .map(|(x, m)| (x - m).abs())
        .sum::<f64>()
        / 21.0
}

/// `PpoAgent` learns the bandit through the episode runner alone (observe, update every 256
/// steps); its evaluation returns the mean action.
#[test]
fn ppo_agent_learns_the_bandit_through_the_runner() {
    use dcem::agent::Mode;
    use dcem::rl::{ObsInput, PlanSeeds, PpoAgent};
    use dcem::runner::{eval_seeds, evaluate, run_episode};
    let mut env = Bandit::new();
    let space = dcem::env::Env::action_space(&env).clone();
    let ppo = bandit_ppo(&mut ChaCha8Rng::seed_from_u64(3));
    let before = bandit_error(&ppo);
    let rng = ChaCha8Rng::seed_from_u64(5);
    let mut agent =
        PpoAgent::new(ppo, Box::new(ObsInput), PlanSeeds::Zero, &space, 256, rng).unwrap();
    let mut updates = 0;
    for episode in 0..40 * 256 {
        let ep = run_episode(&mut agent, &mut env, episode, Mode::Train).unwrap();
        assert_eq!((ep.steps, ep.env_steps), (1, 1));
        for m in &ep.updates {
            assert_eq!(m[0].0, "loss/policy");
            updates += 1;
        }
    }
    assert_eq!(updates, 40);
    let after = bandit_error(&agent.ppo);
    eprintln!("mean |mu(x) - x|: {before:.3} -> {after:.3}");
    assert!(after < 0.1 && after < 0.3 * before, "{before} -> {after}");
    // Evaluation acts with the mean: the return is -(mu(x) - x)^2, close to 0 once learned.
    let returns = evaluate(&mut agent, &mut env, &eval_seeds(20)).unwrap();
    let mean = returns.iter().sum::<f64>() / 20.0;
    assert!(mean > -0.05, "{returns:?}");
}

/// The collector steps a same-step-autoreset `VecEnv` whose every episode has its own seed in
/// order, keeps each environment's stream together, and sets advantages (here, one-step
/// episodes: the reward minus the value).
#[test]
fn the_collector_seeds_every_episode_and_keeps_streams_per_env() {
    use dcem::env::VecEnv;
    use dcem::rl::{Budget, Collector, InputFilter, ObsInput, PlanSeeds};
    let ppo = bandit_ppo(&mut ChaCha8Rng::seed_from_u64(1));
    let envs = VecEnv::new((0..3).map(|_| Bandit::new()).collect()).unwrap();
    let mut collector = Collector::new(envs).unwrap();
    let mut filters: Vec<Box<dyn InputFilter>> = (0..3)
        .map(|_| Box::new(ObsInput) as Box<dyn InputFilter>)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    assert!(
        collector
            .collect(
                &ppo,
                &mut filters,
                PlanSeeds::Zero,
                Budget::Steps(4),
                &mut rng
            )
            .is_err(),
        "collecting before a reset is refused"
    );
    collector.reset(100).unwrap();
    let out = collector
        .collect(
            &ppo,
            &mut filters,
            PlanSeeds::Zero,
            Budget::Steps(4),
            &mut rng,
        )
        .unwrap();
    assert_eq!(out.batch.len(), 12);
    assert_eq!(out.episode_returns.len(), 12);
    assert_eq!((out.decisions, out.env_steps), (12, 12));
    // Env e's episode t was reset with 100 + e (t = 0) or 100 + 3 t + e (autoresets in order).
    for e in 0..3 {
        for t in 0..4 {
            let seed = if t == 0 { 100 + e } else { 100 + 3 * t + e };
            assert_eq!(
                out.batch.value_inputs[e as usize * 4 + t as usize],
                Bandit::context(seed),
                "env {e}, step {t}"
            );
        }
    }
    for i in 0..12 {
        let r = out.batch.returns[i];
        assert!((out.batch.advantages[i] - (r - out.batch.values[i])).abs() < 1e-9);
    }
    // Episodes budget: stops once 5 episodes have ended (two steps of three envs).
    let out = collector
        .collect(
            &ppo,
            &mut filters,
            PlanSeeds::Zero,
            Budget::Episodes(5),
            &mut rng,
        )
        .unwrap();
    assert_eq!((out.batch.len(), out.episode_returns.len()), (6, 6));
}
