//! The training loop: one Adam step per solve through the inner solver, the plateau schedule,
//! checkpoints and resume.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor};
use dcem::nn::tensor_from_f64;
use dcem::optim::{Adam, ReduceLrOnPlateau};
use dcem::run::{Existing, Run};
use dcem::train::gradient_step;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::agent::*;
use crate::config::*;
use crate::report::*;

/// Options of [`train`] that are not part of the experiment.
pub use dcem::run::RunOptions as TrainOptions;

/// MSE of the model's predictions on the training set with `steps` inner steps (no gradient).
pub fn train_mse(model: &EnergyModel, steps: usize, rng: &mut ChaCha8Rng) -> Result<f64> {
    let device = model.net.layers[0].weight.device();
    let (x, y, _, _) = full_batch(&device, model.config.n_points)?;
    let m = EnergyModel {
        net: model.net.detached(),
        config: model.config.clone(),
    };
    let pred = m.predict(x, steps, rng)?;
    Ok((pred - y).square().mean().into_scalar::<f64>())
}

/// One update: a solve on `x: [1, 1]`, the squared error to `y`, backward, clipping, Adam.
/// Returns the loss.
pub fn update_step(
    model: &mut EnergyModel,
    adam: &mut Adam,
    x: Tensor<2>,
    y: Tensor<2>,
    rng: &mut ChaCha8Rng,
) -> Result<f64> {
    let params = model.net.params();
    let train_net = model.net.clone().require_grad();
    let m = EnergyModel {
        net: train_net,
        config: model.config.clone(),
    };
    let pred = m.predict(x, model.config.train_steps(), rng)?;
    let loss = (pred - y).square().mean();
    let value = loss.clone().into_scalar::<f64>();
    ensure!(
        value.is_finite(),
        "the training loss is {value}: the energy network diverged (lower adam.lr or clip_norm)"
    );
    let new = gradient_step(loss, &m.net.params(), params, adam, model.config.clip_norm)?;
    model.net.set_params(new)?;
    Ok(value)
}

/// Trains one model per its config, writing `runs/<name>/`.
pub fn train(
    config: &RegressionConfig,
    opts: &TrainOptions,
    device: &Device,
) -> Result<RunSummary> {
    config.validate()?;
    let dir = Run::open(opts, &config.name)?;
    let ck_path = Run::latest_checkpoint(&dir);
    let resuming = opts.existing == Existing::Resume;
    let (mut model, mut state) = if resuming {
        let (mut model, state) = EnergyModel::load(&ck_path, device)
            .with_context(|| format!("resuming from {}", ck_path.display()))?;
        model.config.updates = config.updates;
        Run::check_same_config(&dir, &model.config, config, "updates")?;
        (model, state)
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let model = EnergyModel::new(config, device, &mut rng)?;
        let adam = Adam::new(config.adam.clone(), model.net.params().len())?;
        let state = TrainState {
            update: 0,
            point: 0,
            in_point: 0,
            adam,
            plateau: ReduceLrOnPlateau::new(config.plateau.clone())?,
            rng,
            eval_rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15),
        };
        (model, state)
    };
    let mut run = Run::start(
        dir,
        &model.config,
        &METRICS,
        resuming.then_some(state.update),
        (config.updates, "updates", opts.progress),
    )?;
    if !resuming {
        // Update 0: the untrained model, the baseline every curve starts from.
        let mse = train_mse(&model, config.train_steps(), &mut state.eval_rng)?;
        run.log_named(&[
            ("update", 0.0),
            ("eval/train_mse", mse),
            ("train/lr", config.adam.lr),
            ("perf/update_ms", 0.0),
        ])?;
    }
    let (xs, ys) = dataset(config.n_points);
    let mut window_time = 0.0f64;
    let mut window_updates = 0usize;
    while state.update < config.updates {
        if state.in_point == 0 || state.in_point >= config.inner_updates {
            state.point = state.rng.random_range(0..config.n_points);
            state.in_point = 0;
        }
        let j = state.point;
        let x = tensor_from_f64(&[xs[j]], [1, 1], device)?;
        let y = tensor_from_f64(&[ys[j]], [1, 1], device)?;
        let t0 = Instant::now();
        update_step(&mut model, &mut state.adam, x, y, &mut state.rng)
            .with_context(|| format!("update {}", state.update + 1))?;
        let dt = t0.elapsed().as_secs_f64();
        window_time += dt;
        window_updates += 1;
        state.update += 1;
        state.in_point += 1;
        run.bar().inc(1);
        if state.update % config.eval_every == 0 || state.update == config.updates {
            let mse = train_mse(&model, config.train_steps(), &mut state.eval_rng)?;
            let lr = state.plateau.step(mse, state.adam.lr());
            state.adam.set_lr(lr);
            let ms = 1e3 * window_time / window_updates.max(1) as f64;
            run.log_named(&[
                ("update", state.update as f64),
                ("eval/train_mse", mse),
                ("train/lr", lr),
                ("perf/update_ms", ms),
            ])?;
            run.bar().set_message(format!(
                "train MSE {mse:.4}  lr {lr:.1e}  {ms:.2} ms/update"
            ));
            window_time = 0.0;
            window_updates = 0;
        }
        if (config.checkpoint_every > 0 && state.update % config.checkpoint_every == 0)
            || state.update == config.updates
        {
            model.save(&ck_path, &state)?;
        }
    }
    let dir = run.finish();
    let (curve, ms_per_update) = read_curve(dir.path())?;
    let summary = RunSummary {
        dir: dir.path().to_path_buf(),
        curve,
        ms_per_update,
        model,
    };
    if opts.report {
        let analysis = analyse(&summary.model)?;
        write_run_report(&summary, &analysis)?;
    }
    Ok(summary)
}
