//! What the planet benches share: an agent with a replay buffer of random episodes to update
//! from (cheetah.run's widths for the RSSM benches), and the config's latent DCEM planner.

use burn::tensor::Device;
use dcem::planning::{LatentDcemPlanner, MlpDecoder};
use dcem::replay::EpisodeRecord;
use planet_dcem::{PlanetAgent, PlanetConfig};
use rand::{RngExt, rngs::ChaCha8Rng};

/// cheetah.run's observation width.
#[allow(dead_code)] // not every bench is at cheetah.run's widths
pub const OBS: usize = 17;
/// cheetah.run's action width.
#[allow(dead_code)] // not every bench is at cheetah.run's widths
pub const ACT: usize = 6;

/// A fresh agent of `cfg` on `device` for observations `obs` wide and actions `act` wide, whose
/// buffer holds 4 random episodes of `steps` steps.
pub fn agent_with_random_buffer(
    cfg: &PlanetConfig,
    (obs, act): (usize, usize),
    steps: usize,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> PlanetAgent {
    let mut agent = PlanetAgent::new(cfg, obs, act, device).expect("agent");
    for _ in 0..4 {
        let mut ep = EpisodeRecord::default();
        for _ in 0..steps {
            let o: Vec<f64> = (0..obs).map(|_| rng.random_range(-1.0..1.0)).collect();
            let a: Vec<f64> = (0..act).map(|_| rng.random_range(-1.0..1.0)).collect();
            ep.push(&o, &a, rng.random_range(0.0..1.0)).expect("finite");
        }
        agent.buffer.push(ep).expect("episode");
    }
    agent
}

/// The config's latent DCEM planner with a fresh decoder on `device`.
#[allow(dead_code)] // not every bench plans in latent space
pub fn latent_planner(
    cfg: &PlanetConfig,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> LatentDcemPlanner<MlpDecoder> {
    let decoder = MlpDecoder::new(
        &cfg.decoder.net,
        cfg.cem.horizon,
        ACT,
        (-1.0, 1.0),
        device,
        rng,
    )
    .expect("decoder");
    LatentDcemPlanner::new(cfg.latent.clone(), decoder).expect("planner")
}
