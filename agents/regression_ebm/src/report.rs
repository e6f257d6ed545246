//! What a trained model does at test time (the step ablation, minima of the energy), its plots
//! and the comparison table.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::Device;
use dcem::nn::{tensor_from_f64, to_f64_vec};
use dcem::run::plot::{Heatmap, LineChart, Series};
use dcem::run::{MetricsCsv, plot};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::agent::*;
use crate::config::*;

/// Columns of `metrics.csv` (`eval/train_mse`: the MSE on the training points with the
/// trained number of inner steps).
pub const METRICS: [&str; 4] = ["update", "eval/train_mse", "train/lr", "perf/update_ms"];

/// Test-time behaviour of a trained model.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Solver name.
    pub solver: SolverKind,
    /// Inner steps used in training.
    pub train_steps: usize,
    /// `(steps, train MSE)` for 1..=`ablation_max_steps` test-time steps.
    pub ablation: Vec<(usize, f64)>,
    /// Predictions at the trained step count, one per training point.
    pub predictions: Vec<f64>,
    /// Median `|dE/dy|` at the predictions.
    pub median_abs_grad: f64,
    /// Median `|dE/dy|` over the whole plotted grid, the scale to read the above against.
    pub median_abs_grad_grid: f64,
    /// Fraction of predictions where `d2E/dy2 > 0`.
    pub frac_convex: f64,
    /// Median distance from a prediction to the nearest local minimum of `E(x, .)`.
    pub median_dist_to_min: f64,
    /// Fraction of predictions within 0.1 of a local minimum of `E(x, .)`.
    pub frac_near_min: f64,
    /// The energy surface, normalised per x column.
    pub surface: Surface,
}

/// The scalars of an [`Analysis`], as a run folder keeps them (`analysis.json`, written with the
/// run's plots), so that tables over runs are made from files without loading a model. A
/// value that is not finite (no local minimum in the window, a diverged ablation step) is
/// written as `null` and read back as NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSummary {
    /// Solver.
    pub solver: SolverKind,
    /// Inner steps used in training.
    pub train_steps: usize,
    /// `(steps, train MSE)` for 1..=`ablation_max_steps` test-time steps.
    #[serde(deserialize_with = "nullable_pairs")]
    pub ablation: Vec<(usize, f64)>,
    /// Median `|dE/dy|` at the predictions.
    #[serde(deserialize_with = "nullable")]
    pub median_abs_grad: f64,
    /// Median `|dE/dy|` over the plotted grid.
    #[serde(deserialize_with = "nullable")]
    pub median_abs_grad_grid: f64,
    /// Fraction of predictions where `d2E/dy2 > 0`.
    #[serde(deserialize_with = "nullable")]
    pub frac_convex: f64,
    /// Median distance from a prediction to the nearest local minimum of `E(x, .)`.
    #[serde(deserialize_with = "nullable")]
    pub median_dist_to_min: f64,
    /// Fraction of predictions within 0.1 of a local minimum of `E(x, .)`.
    #[serde(deserialize_with = "nullable")]
    pub frac_near_min: f64,
}

/// An f64 that JSON may hold as `null` (serde_json writes a non-finite f64 so): NaN.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `(steps, value)` pairs whose values may be `null`, as [`nullable`].
fn nullable_pairs<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<(usize, f64)>, D::Error> {
    let pairs = Vec::<(usize, Option<f64>)>::deserialize(d)?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect())
}

impl From<&Analysis> for AnalysisSummary {
    fn from(a: &Analysis) -> Self {
        Self {
            solver: a.solver,
            train_steps: a.train_steps,
            ablation: a.ablation.clone(),
            median_abs_grad: a.median_abs_grad,
            median_abs_grad_grid: a.median_abs_grad_grid,
            frac_convex: a.frac_convex,
            median_dist_to_min: a.median_dist_to_min,
            frac_near_min: a.frac_near_min,
        }
    }
}

impl AnalysisSummary {
    /// Reads a run folder's `analysis.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("analysis.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (runs made before it existed: `regression_ebm report {}` writes it)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// `E(x, y)` on a grid, log-scaled and normalised to [0, 1] per x column (0 at the column's
/// minimum), as in the paper's fig. 2.
#[derive(Clone, Debug)]
pub struct Surface {
    /// x range of the grid.
    pub x_range: (f64, f64),
    /// y range of the grid.
    pub y_range: (f64, f64),
    /// `values[j][i]` at the j-th y and the i-th x.
    pub values: Vec<Vec<f64>>,
}

/// The y window of the energy surfaces and the local-minimum scan.
pub const Y_RANGE: (f64, f64) = (-7.0, 5.0);

/// Runs the test-time ablation, the local-minimum checks and the energy surface.
pub fn analyse(model: &EnergyModel) -> Result<Analysis> {
    let cfg = &model.config;
    let device = model.net.layers[0].weight.device();
    let m = EnergyModel {
        net: model.net.detached(),
        config: cfg.clone(),
    };
    let n = cfg.n_points;
    let (x, _, xs, ys) = full_batch(&device, n)?;

    // Test-time ablation: 1..=max inner steps, each from the same solver seed.
    let mut ablation = Vec::with_capacity(cfg.ablation_max_steps);
    for steps in 1..=cfg.ablation_max_steps {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1000 + steps as u64));
        let pred = to_f64_vec(m.predict(x.clone(), steps, &mut rng)?)?;
        let mse = pred
            .iter()
            .zip(&ys)
            .map(|(p, y)| (p - y).powi(2))
            .sum::<f64>()
            / n as f64;
        ablation.push((steps, mse));
    }

    // Predictions at the trained step count, and the energy's slope and curvature there.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1000 + cfg.train_steps() as u64));
    let pred_t = m.predict(x.clone(), cfg.train_steps(), &mut rng)?;
    let predictions = to_f64_vec(pred_t.clone())?;
    let grad = to_f64_vec(m.energy_grad_y(x.clone(), pred_t.clone())?)?;
    let h = 1e-2;
    let gp = to_f64_vec(m.energy_grad_y(x.clone(), pred_t.clone().add_scalar(h))?)?;
    let gm = to_f64_vec(m.energy_grad_y(x.clone(), pred_t.add_scalar(-h))?)?;
    let curvature: Vec<f64> = gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();

    // Dense scan of E(x_i, .) over Y_RANGE for the nearest local minimum.
    let ny_scan = 1201;
    let dy = (Y_RANGE.1 - Y_RANGE.0) / (ny_scan - 1) as f64;
    let grid_y: Vec<f64> = (0..ny_scan).map(|k| Y_RANGE.0 + k as f64 * dy).collect();
    let scan = energy_grid(&m, &xs, &grid_y, &device)?;
    let mut dists = Vec::with_capacity(n);
    for i in 0..n {
        let col: Vec<f64> = (0..ny_scan).map(|k| scan[k][i]).collect();
        let minima: Vec<f64> = (1..ny_scan - 1)
            .filter(|&k| col[k] < col[k - 1] && col[k] <= col[k + 1])
            .map(|k| grid_y[k])
            .collect();
        let d = minima
            .iter()
            .map(|ym| (ym - predictions[i]).abs())
            .fold(f64::INFINITY, f64::min);
        dists.push(d);
    }
    // The slope's typical size over the surface, for scale.
    let gx: Vec<f64> = xs
        .iter()
        .flat_map(|x| std::iter::repeat_n(*x, 41))
        .collect();
    let gy: Vec<f64> = (0..n)
        .flat_map(|_| (0..41).map(|k| Y_RANGE.0 + k as f64 * (Y_RANGE.1 - Y_RANGE.0) / 40.0))
        .collect();
    let ggrid = to_f64_vec(m.energy_grad_y(
        tensor_from_f64(&gx, [gx.len(), 1], &device)?,
        tensor_from_f64(&gy, [gy.len(), 1], &device)?,
    )?)?;

    // The plotted surface: per-column normalised log energy.
    let (nxs, nys) = (120, 120);
    let sx: Vec<f64> = (0..nxs)
        .map(|i| 2.0 * PI * (i as f64 + 0.5) / nxs as f64)
        .collect();
    let sy: Vec<f64> = (0..nys)
        .map(|j| Y_RANGE.0 + (Y_RANGE.1 - Y_RANGE.0) * (j as f64 + 0.5) / nys as f64)
        .collect();
    let mut surf = energy_grid(&m, &sx, &sy, &device)?;
    for i in 0..nxs {
        let lo = surf.iter().map(|row| row[i]).fold(f64::INFINITY, f64::min);
        let hi = surf
            .iter()
            .map(|row| (1.0 + row[i] - lo).ln())
            .fold(0.0f64, f64::max)
            .max(1e-12);
        for row in surf.iter_mut() {
            row[i] = (1.0 + row[i] - lo).ln() / hi;
        }
    }

    let abs_grad: Vec<f64> = grad.iter().map(|g| g.abs()).collect();
    let abs_grid: Vec<f64> = ggrid.iter().map(|g| g.abs()).collect();
    Ok(Analysis {
        solver: cfg.solver,
        train_steps: cfg.train_steps(),
        ablation,
        median_abs_grad: median(&abs_grad),
        median_abs_grad_grid: median(&abs_grid),
        frac_convex: curvature.iter().filter(|c| **c > 0.0).count() as f64 / n as f64,
        median_dist_to_min: median(&dists),
        frac_near_min: dists.iter().filter(|d| **d <= 0.1).count() as f64 / n as f64,
        predictions,
        surface: Surface {
            x_range: (0.0, 2.0 * PI),
            y_range: Y_RANGE,
            values: surf,
        },
    })
}

/// `E(x_i, y_k)` as `values[k][i]`.
fn energy_grid(m: &EnergyModel, xs: &[f64], ys: &[f64], device: &Device) -> Result<Vec<Vec<f64>>> {
    let (nx, ny) = (xs.len(), ys.len());
    let gx: Vec<f64> = (0..ny).flat_map(|_| xs.iter().copied()).collect();
    let gy: Vec<f64> = ys
        .iter()
        .flat_map(|y| std::iter::repeat_n(*y, nx))
        .collect();
    let e = to_f64_vec(m.energy(
        tensor_from_f64(&gx, [nx * ny, 1], device)?,
        tensor_from_f64(&gy, [nx * ny, 1], device)?,
    ))?;
    Ok(e.chunks(nx).map(<[f64]>::to_vec).collect())
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let k = s.len() / 2;
    if s.len() % 2 == 1 {
        s[k]
    } else {
        0.5 * (s[k - 1] + s[k])
    }
}

/// The energy-surface panel of one model (paper fig. 2).
pub fn surface_panel(a: &Analysis, n_points: usize) -> Heatmap {
    let (xs, _) = dataset(n_points);
    let fine: Vec<(f64, f64)> = (0..=400)
        .map(|i| 2.0 * PI * i as f64 / 400.0)
        .map(|x| (x, x * x.sin()))
        .collect();
    Heatmap {
        title: format!(
            "{} energy (trained with {} steps)",
            a.solver.label(),
            a.train_steps
        ),
        x_label: "x".into(),
        y_label: "y".into(),
        x_range: a.surface.x_range,
        y_range: a.surface.y_range,
        values: a.surface.values.clone(),
        lines: vec![Series::new("target x sin x", fine).with_color(5)],
        points: vec![
            Series::new(
                "prediction",
                xs.iter()
                    .copied()
                    .zip(a.predictions.iter().copied())
                    .collect(),
            )
            .with_color(1),
        ],
    }
}

/// The test-time ablation chart (paper fig. 6, right) of one or more models.
pub fn ablation_chart(analyses: &[&Analysis]) -> LineChart {
    LineChart {
        title: "Test-time inner steps (trained with 10)".into(),
        x_label: "inner steps at test time".into(),
        y_label: "train MSE".into(),
        log_y: true,
        symlog_y: false,
        series: analyses
            .iter()
            .map(|a| {
                Series::new(
                    a.solver.label(),
                    a.ablation.iter().map(|(k, m)| (*k as f64, *m)).collect(),
                )
                .with_color(solver_color(a.solver))
            })
            .collect(),
        vlines: vec![(
            analyses.first().map_or(10, |a| a.train_steps) as f64,
            "trained steps".into(),
        )],
        ..Default::default()
    }
}

/// The training-curve chart of one or more runs.
pub fn curve_chart(runs: &[(SolverKind, &[(usize, f64)])]) -> LineChart {
    LineChart {
        title: "Training MSE".into(),
        x_label: "update".into(),
        y_label: "train MSE".into(),
        log_y: true,
        symlog_y: false,
        series: runs
            .iter()
            .map(|(s, c)| {
                Series::new(s.label(), c.iter().map(|(u, m)| (*u as f64, *m)).collect())
                    .with_color(solver_color(*s))
            })
            .collect(),
        ..Default::default()
    }
}

fn solver_color(s: SolverKind) -> usize {
    match s {
        SolverKind::Dcem => 0,
        SolverKind::Gd => 3,
    }
}

pub(crate) fn write_run_report(run: &RunSummary, a: &Analysis) -> Result<()> {
    let n = run.model.config.n_points;
    plot::heatmaps(
        &run.dir.join("energy_surface.png"),
        &[surface_panel(a, n)],
        (640, 520),
    )?;
    plot::line_chart(&run.dir.join("ablation.png"), &ablation_chart(&[a]))?;
    plot::line_chart(
        &run.dir.join("train_mse.png"),
        &curve_chart(&[(run.model.config.solver, &run.curve)]),
    )?;
    let mut csv = String::from("steps,train_mse\n");
    for (k, m) in &a.ablation {
        csv.push_str(&format!("{k},{m}\n"));
    }
    dcem::run::atomic_write(&run.dir.join("ablation.csv"), csv.as_bytes())?;
    dcem::run::atomic_write(
        &run.dir.join("analysis.json"),
        serde_json::to_string_pretty(&AnalysisSummary::from(a))?.as_bytes(),
    )?;
    Ok(())
}

/// The comparison table (markdown) of a GD and a DCEM run.
pub fn comparison_table(runs: &[(&RunSummary, &Analysis)], probe_steps: &[usize]) -> String {
    let mut s = String::new();
    let header: Vec<String> = runs
        .iter()
        .map(|(_, a)| a.solver.label().to_string())
        .collect();
    s.push_str(&format!("| | {} |\n", header.join(" | ")));
    s.push_str(&format!("|---|{}\n", "---|".repeat(runs.len())));
    let row = |name: &str, f: &dyn Fn(&RunSummary, &Analysis) -> String| {
        let cells: Vec<String> = runs.iter().map(|(r, a)| f(r, a)).collect();
        format!("| {name} | {} |\n", cells.join(" | "))
    };
    s.push_str(&row("updates", &|r, _| {
        r.curve.last().map_or("0".into(), |c| c.0.to_string())
    }));
    s.push_str(&row("final train MSE", &|r, _| {
        r.curve.last().map_or("-".into(), |c| format!("{:.4}", c.1))
    }));
    s.push_str(&row("best train MSE", &|r, _| {
        format!(
            "{:.4}",
            r.curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min)
        )
    }));
    for &k in probe_steps {
        s.push_str(&row(
            &format!("train MSE, {k} inner steps at test time"),
            &|_, a| {
                a.ablation
                    .iter()
                    .find(|(kk, _)| *kk == k)
                    .map_or("-".into(), |(_, m)| format!("{m:.4}"))
            },
        ));
    }
    s.push_str(&row("median abs dE/dy at the prediction", &|_, a| {
        format!("{:.3}", a.median_abs_grad)
    }));
    s.push_str(&row(
        "median abs dE/dy over the surface (scale)",
        &|_, a| format!("{:.3}", a.median_abs_grad_grid),
    ));
    s.push_str(&row("predictions with d2E/dy2 > 0", &|_, a| {
        format!("{:.0}%", 100.0 * a.frac_convex)
    }));
    s.push_str(&row(
        "median distance to the nearest local min of E(x, .)",
        &|_, a| format!("{:.3}", a.median_dist_to_min),
    ));
    s.push_str(&row("predictions within 0.1 of a local min", &|_, a| {
        format!("{:.0}%", 100.0 * a.frac_near_min)
    }));
    s.push_str(&row("ms per update (this run, wall clock)", &|r, _| {
        format!("{:.2}", r.ms_per_update)
    }));
    s
}

/// A finished run read back from its folder (`checkpoints/latest.safetensors` and
/// `metrics.csv`).
pub fn load_run(dir: &Path, device: &Device) -> Result<RunSummary> {
    let ck = dir.join("checkpoints").join("latest.safetensors");
    let (model, _) =
        EnergyModel::load(&ck, device).with_context(|| format!("loading {}", ck.display()))?;
    let (curve, ms) = read_curve(dir)?;
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        curve,
        ms_per_update: ms,
        model,
    })
}

/// A run folder's `(update, train MSE)` curve and its mean ms per update, from `metrics.csv`.
pub fn read_curve(dir: &Path) -> Result<(Vec<(usize, f64)>, f64)> {
    let (header, rows) = MetricsCsv::read(&dir.join("metrics.csv"))?;
    ensure!(
        header == METRICS,
        "{} is not a regression_ebm metrics file",
        dir.join("metrics.csv").display()
    );
    let curve = rows.iter().map(|r| (r[0] as usize, r[1])).collect();
    Ok((curve, dcem::run::step_weighted_mean(&rows, 3)))
}

/// Recomputes a run's plots and ablation from its folder.
pub fn report_run(run: &RunSummary) -> Result<Analysis> {
    let a = analyse(&run.model)?;
    write_run_report(run, &a)?;
    Ok(a)
}

/// Writes the joint plots and the table of a comparison into `dir`.
pub fn write_comparison(dir: &Path, runs: &[(&RunSummary, &Analysis)]) -> Result<String> {
    if runs.is_empty() {
        bail!("nothing to compare");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let panels: Vec<Heatmap> = runs
        .iter()
        .map(|(r, a)| surface_panel(a, r.model.config.n_points))
        .collect();
    plot::heatmaps(&dir.join("energy_surfaces.png"), &panels, (560, 460))?;
    let analyses: Vec<&Analysis> = runs.iter().map(|(_, a)| *a).collect();
    plot::line_chart(&dir.join("ablation.png"), &ablation_chart(&analyses))?;
    let curves: Vec<(SolverKind, &[(usize, f64)])> = runs
        .iter()
        .map(|(r, _)| (r.model.config.solver, r.curve.as_slice()))
        .collect();
    plot::line_chart(&dir.join("train_mse.png"), &curve_chart(&curves))?;
    let table = comparison_table(runs, &[1, 5, 10, 20, 50]);
    dcem::run::atomic_write(&dir.join("comparison.md"), table.as_bytes())?;
    Ok(table)
}

/// What a finished run measured.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run folder.
    pub dir: PathBuf,
    /// `(update, train MSE)` at every log point.
    pub curve: Vec<(usize, f64)>,
    /// Mean wall time of one update (solve, backward, clipping, Adam), in ms, over the run.
    pub ms_per_update: f64,
    /// The trained model.
    pub model: EnergyModel,
}
