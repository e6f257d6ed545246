//! Phase 3's costs at the swing-up's sizes (`configs/planet_swingup_ppo.toml`: RSSM 64/8/64,
//! latent DCEM 50 samples / 5 elites / 5 iterations / horizon 12, 2-D latent, decoder
//! 2-64-64-12; reward head, transition and decoder all trained), on freshly initialised
//! parameters of those sizes rather than a trained run's:
//!
//! - `act_1`: one decision while collecting: a seeded latent DCEM plan from one belief, off the
//!   tape, and a sampled action;
//! - `update_minibatch_125`: one PPO minibatch of 125 decisions (a quarter of a PPO step's 500,
//!   one pass): their means recomputed through DCEM on the tape, the backward pass into the
//!   model and decoder, and Adam.
//!
//! A PPO step of that config is 500 `act_1`s plus `epochs x 4` minibatch updates.
//!
//! ```text
//! cargo bench -p planet-dcem --bench phase3
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Duration;

use burn::tensor::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use dcem::nn::Rssm;
use dcem::planning::{LatentDcemPlanner, MlpDecoder};
use dcem::rl::{ControllerModel, DcemPolicy, Ppo, RolloutBatch};
use planet_dcem::PlanetConfig;
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

const DECISIONS: usize = 125;

fn bench(c: &mut Criterion) {
    let cfg = PlanetConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/planet_swingup_ppo.toml"
    )))
    .expect("configs/planet_swingup_ppo.toml");
    let device = Device::flex();
    let env = dcem_envs::make_env(&cfg.env).expect("env");
    let obs_dim = env.observation_space().flat_dim();
    let act_dim = env.action_space().flat_dim();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let model = Rssm::new(cfg.model.clone(), obs_dim, act_dim, &device, &mut rng).expect("model");
    let decoder = MlpDecoder::new(
        &cfg.decoder.net,
        cfg.cem.horizon,
        act_dim,
        (-1.0, 1.0),
        &device,
        &mut rng,
    )
    .expect("decoder");
    let policy = DcemPolicy {
        model: ControllerModel::Rssm(Box::new(model)),
        planner: LatentDcemPlanner::new(cfg.latent.clone(), decoder).expect("planner"),
        parts: cfg.finetune.parts,
    };
    // One pass of one minibatch, so that one `update` is one minibatch step.
    let mut ppo_cfg = cfg.finetune.ppo.clone();
    ppo_cfg.epochs = 1;
    ppo_cfg.minibatches = 1;
    let mut ppo = Ppo::new(ppo_cfg, policy, obs_dim, &device, &mut rng).expect("ppo");

    // A batch of decisions from random beliefs, acted on by the controller.
    let state_dim = cfg.model.state_dim();
    let mut batch = RolloutBatch::default();
    for i in 0..DECISIONS {
        let belief: Vec<f64> = (0..state_dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let seed = i as u64;
        let acted = ppo.act(&belief, &[seed], false, &mut rng).expect("act");
        batch.inputs.extend(belief);
        batch
            .value_inputs
            .extend((0..obs_dim).map(|_| rng.random_range(-1.0..1.0)));
        batch.seeds.push(seed);
        batch.actions.extend(acted.actions);
        batch.logp.extend(acted.logp);
    }
    batch.values = ppo.values(&batch.value_inputs).expect("values");
    let adv: Vec<f64> = (0..DECISIONS)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let ret: Vec<f64> = (0..DECISIONS)
        .map(|_| rng.random_range(-5.0..5.0))
        .collect();
    batch.set_advantages(adv, ret).expect("advantages");

    let mut g = c.benchmark_group("phase3");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    let belief: Vec<f64> = batch.inputs[..state_dim].to_vec();
    g.bench_function("act_1", |b| {
        b.iter(|| ppo.act(&belief, &[7], false, &mut rng).expect("act"))
    });
    g.bench_function("update_minibatch_125", |b| {
        b.iter(|| ppo.update(&batch, &mut rng).expect("update"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
