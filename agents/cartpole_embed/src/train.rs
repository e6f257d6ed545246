//! The training loop (checkpoints, resume, validation schedule) and the ablation sweep.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Device;
use dcem::nn::tensor_from_f64;
use dcem::optim::{Adam, ReduceLrOnPlateau};
use dcem::planning::{LatentDcemPlanner, MlpDecoder};
use dcem::run::{Checkpoint, Existing, Run, plot};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use crate::agent::*;
use crate::config::*;
use crate::report::*;

/// Options of [`train`] that are not part of the experiment.
pub use dcem::run::RunOptions as TrainOptions;

struct TrainState {
    iteration: usize,
    adam: Adam,
    plateau: ReduceLrOnPlateau,
    rng: ChaCha8Rng,
    best: (usize, f64),
}

fn save(
    path: &Path,
    config: &EmbedConfig,
    planner: &LatentDcemPlanner<MlpDecoder>,
    st: &TrainState,
) -> Result<()> {
    let mut ck = Checkpoint::new();
    ck.put_mlp("decoder", &planner.decoder().net)?;
    ck.put_adam("adam", &st.adam)?;
    ck.put_meta("config", config)?;
    ck.put_meta("iteration", &st.iteration)?;
    ck.put_meta("plateau", &st.plateau)?;
    ck.put_meta("best", &st.best)?;
    ck.put_rng("rng.train", &st.rng)?;
    ck.put_rng("rng.planner", planner.rng())?;
    ck.save(path)?;
    Ok(())
}

fn load_state(
    path: &Path,
    device: &Device,
) -> Result<(EmbedConfig, LatentDcemPlanner<MlpDecoder>, TrainState)> {
    let (config, planner) = load_planner(path, device)?;
    let ck = Checkpoint::load(path)?;
    let n = planner.decoder().net.params().len();
    let iteration: usize = ck.meta("iteration")?;
    anyhow::ensure!(
        iteration <= config.iterations,
        "checkpoint {} holds iteration {iteration} of a run of {}: the file is damaged; start \
         the run again with --overwrite",
        path.display(),
        config.iterations
    );
    let st = TrainState {
        iteration,
        adam: ck.adam("adam", config.adam.clone(), n, device)?,
        plateau: ck.meta("plateau")?,
        rng: ck.rng("rng.train")?,
        best: ck.meta("best")?,
    };
    Ok((config, planner, st))
}

/// Trains one decoder per `config`, writing `runs/<name>/` (config, metrics.csv,
/// `checkpoints/{latest,best}.safetensors`, `baselines.csv`, plots). `baselines` are computed
/// when not given.
pub fn train(
    config: &EmbedConfig,
    opts: &TrainOptions,
    baselines: Option<&[BaselineResult]>,
    device: &Device,
) -> Result<RunSummary> {
    config.validate()?;
    let dir = Run::open(opts, &config.name)?;
    let latest = Run::latest_checkpoint(&dir);
    let best_path = dir.checkpoints().join("best.safetensors");
    let val_states = validation_states(config, device)?;
    let baselines = match baselines {
        Some(b) => b.to_vec(),
        None => run_baselines(config, device)?,
    };
    write_baselines(&dir.file("baselines.csv"), &baselines)?;

    let resuming = opts.existing == Existing::Resume;
    let (mut planner, mut st, mut run) = if resuming {
        let (mut saved, planner, st) = load_state(&latest, device)
            .with_context(|| format!("resuming {}", dir.path().display()))?;
        saved.iterations = config.iterations;
        Run::check_same_config(&dir, &saved, config, "iterations")?;
        let at = st.iteration;
        let run = Run::start(
            dir,
            config,
            &METRICS,
            Some(at),
            (config.iterations, "iterations", opts.progress),
        )?;
        (planner, st, run)
    } else {
        let mut planner = new_planner(config, device)?;
        let n = planner.decoder().net.params().len();
        let mut st = TrainState {
            iteration: 0,
            adam: Adam::new(config.adam.clone(), n)?,
            plateau: ReduceLrOnPlateau::new(config.plateau.clone())?,
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x2545_f491_4f6c_dd1d),
            best: (0, f64::INFINITY),
        };
        let mut run = Run::start(
            dir,
            config,
            &METRICS,
            None,
            (config.iterations, "iterations", opts.progress),
        )?;
        let (val, _) = validate_planner(&mut planner, val_states.clone())?;
        st.best = (0, val);
        run.log_named(&[
            ("iteration", 0.0),
            ("eval/cost", val),
            ("eval/best_cost", val),
            ("train/lr", config.adam.lr),
            ("perf/iteration_ms", 0.0),
        ])?;
        save(&best_path, config, &planner, &st)?;
        (planner, st, run)
    };
    let (mut window_time, mut window_cost, mut window_n) = (0.0f64, 0.0f64, 0usize);
    while st.iteration < config.iterations {
        let n = config.batch_states;
        let x0 = tensor_from_f64(&start_states(n, &mut st.rng), [n, 5], device)?;
        let t0 = Instant::now();
        let cost = train_step(&mut planner, &mut st.adam, x0, config.clip_norm)
            .with_context(|| format!("iteration {}", st.iteration + 1))?;
        window_time += t0.elapsed().as_secs_f64();
        window_cost += cost;
        window_n += 1;
        st.iteration += 1;
        run.bar().inc(1);
        let at_val = st.iteration % config.val_every == 0 || st.iteration == config.iterations;
        if at_val {
            let (val, _) = validate_planner(&mut planner, val_states.clone())?;
            let lr = st.plateau.step(val, st.adam.lr());
            st.adam.set_lr(lr);
            let improved = val < st.best.1;
            if improved {
                st.best = (st.iteration, val);
                save(&best_path, config, &planner, &st)?;
            }
            let ms = 1e3 * window_time / window_n.max(1) as f64;
            run.log_named(&[
                ("iteration", st.iteration as f64),
                ("train/cost", window_cost / window_n.max(1) as f64),
                ("eval/cost", val),
                ("eval/best_cost", st.best.1),
                ("train/lr", lr),
                ("perf/iteration_ms", ms),
            ])?;
            run.bar().set_message(format!(
                "val {val:.2} (best {:.2})  lr {lr:.1e}  {ms:.1} ms/it",
                st.best.1
            ));
            (window_time, window_cost, window_n) = (0.0, 0.0, 0);
        }
        if (config.checkpoint_every > 0 && st.iteration % config.checkpoint_every == 0)
            || st.iteration == config.iterations
        {
            save(&latest, config, &planner, &st)?;
        }
    }
    let dir = run.finish();
    let summary = summarise(dir.path(), config.clone(), baselines)?;
    if opts.report {
        write_run_plots(&summary, device)?;
    }
    Ok(summary)
}

fn write_baselines(path: &Path, baselines: &[BaselineResult]) -> Result<()> {
    let mut text = String::from("baseline,mean_cost,ms_per_state\n");
    for b in baselines {
        text.push_str(&format!("{},{},{}\n", b.label, b.mean_cost, b.ms_per_state));
    }
    dcem::run::atomic_write(path, text.as_bytes())?;
    Ok(())
}

/// Trains every variant of `config.sweep` under `runs/<name>/`, then writes the joint
/// `val_cost.png`, `results.md` and the base variant's `samples.png` there. Returns the table.
pub fn sweep(config: &EmbedConfig, opts: &TrainOptions, device: &Device) -> Result<String> {
    config.validate()?;
    let root = opts.runs_dir.join(&config.name);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let baselines = run_baselines(config, device)?;
    for b in &baselines {
        eprintln!("{}: mean validation cost {:.2}", b.label, b.mean_cost);
    }
    let mut runs = Vec::new();
    for variant in config.sweep_variants() {
        let cfg = EmbedConfig {
            name: variant.variant_label(),
            ..variant
        };
        let sub = TrainOptions {
            runs_dir: root.clone(),
            ..opts.clone()
        };
        eprintln!("training {}", cfg.variant_label());
        runs.push(train(&cfg, &sub, Some(&baselines), device)?);
    }
    let refs: Vec<&RunSummary> = runs.iter().collect();
    plot::line_chart(&root.join("val_cost.png"), &val_chart(&refs))?;
    let table = results_table(&refs);
    dcem::run::atomic_write(&root.join("results.md"), table.as_bytes())?;
    let best = runs[0].dir.join("checkpoints").join("best.safetensors");
    let (cfg, mut planner) = load_planner(&best, device)?;
    samples_figure(&root.join("samples.png"), &cfg, &mut planner, 0, device)?;
    Ok(table)
}
