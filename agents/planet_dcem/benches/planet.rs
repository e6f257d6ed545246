//! The RSSM's costs at the paper's settings (cheetah.run's widths: 17 observations, 6 actions):
//! one model update on a [50 x 50] chunk batch, and one planning call from one state with full
//! CEM (1000 samples / 100 elites / 10 iterations, horizon 12) and with latent DCEM
//! (100 / 10 / 10, tau 1, 16-D latent, decoder 16-200-200-72); and the model loss with its
//! gradient alone, on the host (the CPU path of `Rssm::loss`) and op by op on the tape; and
//! ten of the largest product of a full-CEM step (the GRU's on 1000 samples, `[1000, 400] x
//! [400, 600]`) through `gemm`, the library the host paths multiply with: this machine's
//! matrix-product rate, the ceiling of the planning figures.
//!
//! ```text
//! cargo bench -p planet-dcem --bench planet
//! ```
//! `scripts/bench_rssm_torch.py` times the same three in PyTorch.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Duration;

use burn::tensor::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use dcem::nn::{SequenceBatch, normal_noise};
use dcem::planner::Planner;
use dcem::planning::CemPlanner;
use planet_dcem::world::World;
use planet_dcem::{PlanetConfig, rssm_flops};
use rand::{SeedableRng, rngs::ChaCha8Rng};

mod common;
use common::{ACT, OBS};

fn bench(c: &mut Criterion) {
    let cfg = PlanetConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/planet_cheetah_run.toml"
    )))
    .expect("configs/planet_cheetah_run.toml");
    let device = Device::flex();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut agent =
        common::agent_with_random_buffer(&cfg, (common::OBS, common::ACT), 250, &device, &mut rng);
    let f = rssm_flops(&cfg.model, OBS, ACT);
    let (b, l) = (cfg.train.batch as f64, cfg.train.chunk as f64);
    let cem = &cfg.cem.cem;
    let plan_flops =
        cem.n_sample as f64 * cem.n_iter as f64 * cfg.cem.horizon as f64 * f.imagine_step;
    let lat = &cfg.latent.cem;
    let dec = &cfg.decoder.net;
    let dec_flops = 2.0
        * (dec.latent_dim * dec.hidden
            + (dec.hidden_layers - 1) * dec.hidden * dec.hidden
            + dec.hidden * cfg.cem.horizon * ACT) as f64;
    let latent_flops = lat.n_sample as f64
        * lat.n_iter as f64
        * (cfg.cem.horizon as f64 * f.imagine_step + dec_flops);
    eprintln!(
        "FLOPs: model update (forward + backward ~ 3x forward) {:.2} GFLOP, full-CEM plan {:.2} \
         GFLOP, latent-DCEM plan {:.3} GFLOP",
        3.0 * b * l * f.loss_step / 1e9,
        plan_flops / 1e9,
        latent_flops / 1e9
    );

    let mut g = c.benchmark_group("planet");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let (ga, gb) = (vec![0.5f32; 1000 * 400], vec![0.25f32; 400 * 600]);
    let mut gc = vec![0f32; 1000 * 600];
    g.bench_function("gemm_1000x600x400_x10", |bch| {
        bch.iter(|| {
            for _ in 0..10 {
                #[allow(unsafe_code)]
                // SAFETY: row-major `[1000, 400] x [400, 600] -> [1000, 600]` with these strides
                // stays inside the three buffers.
                unsafe {
                    gemm::gemm(
                        1000,
                        600,
                        400,
                        gc.as_mut_ptr(),
                        1,
                        600,
                        false,
                        ga.as_ptr(),
                        1,
                        400,
                        gb.as_ptr(),
                        1,
                        600,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(0),
                    );
                }
            }
        })
    });
    g.bench_function("model_update_50x50", |bch| {
        bch.iter(|| agent.train_step().expect("update"))
    });
    let model = match &agent.world {
        World::Rssm(w) => w.filter.model().clone(),
        World::Ensemble(_) => unreachable!("the bench's agent is an RSSM agent"),
    };
    // The loss and its gradient alone, on the host (what `Rssm::loss` does on the CPU) and op by
    // op on the tape (`Rssm::loss_tensor_ops`), on the same batch.
    let ad = device.clone().autodiff();
    let mut tracked = model.clone();
    tracked
        .set_params(
            model
                .params()
                .into_iter()
                .map(|p| Tensor::from_data(p.into_data(), &ad))
                .collect(),
        )
        .expect("params");
    let tracked = tracked.require_grad();
    let (bs, ls) = (cfg.train.batch, cfg.train.chunk);
    let rows = bs * ls;
    let random = |cols: usize, rng: &mut ChaCha8Rng| normal_noise(rows, cols, &ad, rng);
    let batch = SequenceBatch {
        obs: random(OBS, &mut rng).expect("obs"),
        actions: random(ACT, &mut rng).expect("actions").tanh(),
        rewards: random(1, &mut rng).expect("rewards"),
        noise: random(cfg.model.stoch, &mut rng).expect("noise"),
        length: ls,
        batch: bs,
    };
    g.bench_function("model_loss_grad_host_50x50", |bch| {
        bch.iter(|| tracked.loss(&batch).expect("loss").total.backward())
    });
    g.bench_function("model_loss_grad_tape_50x50", |bch| {
        bch.iter(|| {
            tracked
                .loss_tensor_ops(&batch)
                .expect("loss")
                .total
                .backward()
        })
    });
    let state = Tensor::<2>::zeros([1, cfg.model.state_dim()], &device);
    let mut full = CemPlanner::new(cfg.cem.clone()).expect("planner");
    g.bench_function("plan_full_cem_1000x10_h12", |bch| {
        bch.iter(|| {
            full.reset();
            full.plan(&model, state.clone()).expect("plan")
        })
    });
    let mut latent = common::latent_planner(&cfg, &device, &mut rng);
    g.bench_function("plan_latent_dcem_100x10_h12", |bch| {
        bch.iter(|| latent.plan(&model, state.clone()).expect("plan"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
