//! The learning curves every PPO run draws: its return panel, the trust-region panel (approximate
//! KL and clip fraction) and the agent's own panels, side by side in one PNG.

use std::path::Path;

use crate::error::Result;
use crate::run::plot::{LineChart, Series, line_charts};

/// Size of one panel in pixels.
const PANEL: (u32, u32) = (640, 380);

/// Writes `path`: `returns`, then the trust-region panel against `x_label` (from the
/// `loss/approx_kl` and `loss/clipfrac` columns that `column` reads as `(x, y)` points), then
/// `more`.
pub fn write_ppo_curves(
    path: &Path,
    returns: LineChart,
    x_label: &str,
    column: &dyn Fn(&str) -> Vec<(f64, f64)>,
    more: Vec<LineChart>,
) -> Result<()> {
    let trust_region = LineChart {
        title: "approx KL and clip fraction".into(),
        x_label: x_label.into(),
        series: vec![
            Series::new("approx KL", column("loss/approx_kl")),
            Series::new("clip fraction", column("loss/clipfrac")),
        ],
        ..Default::default()
    };
    let mut charts = vec![returns, trust_region];
    charts.extend(more);
    line_charts(path, &charts, PANEL)
}
