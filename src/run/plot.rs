//! PNG plots for run folders (line charts and heatmap panels), drawn with `plotters` and an
//! embedded DejaVu Sans font, so no system font library is needed. Files are written
//! atomically.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{io_err, temp_path};
use crate::error::{Error, Result};

/// One named curve or point set.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend entry (empty: not in the legend).
    pub name: String,
    /// `(x, y)` points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
    /// Palette index; `None` picks by position.
    pub color: Option<usize>,
    /// Draw thin and light (for many overlapping curves, such as sampled sequences).
    pub faint: bool,
    /// A shaded band `(x, low, high)` around the curve (a confidence interval), in its colour.
    pub band: Vec<(f64, f64, f64)>,
    /// Draw the points as unconnected markers (e.g. published figures) instead of a line.
    pub markers: bool,
    /// Markers drawn as rings rather than discs (two point sets in one colour family apart).
    pub hollow: bool,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            color: None,
            faint: false,
            band: Vec::new(),
            markers: false,
            hollow: false,
        }
    }

    /// The same series with a shaded band `(x, low, high)`.
    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = band;
        self
    }

    /// The same series drawn thin and light.
    pub fn faint(mut self) -> Self {
        self.faint = true;
        self
    }

    /// The same series drawn as markers, unconnected: discs, or rings when `hollow`.
    pub fn markers(mut self, hollow: bool) -> Self {
        self.markers = true;
        self.hollow = hollow;
        self
    }

    /// The same series drawn with palette colour `i`.
    pub fn with_color(mut self, i: usize) -> Self {
        self.color = Some(i);
        self
    }
}

/// A line chart.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Plot y on a log10 axis (values <= 0 are skipped).
    pub log_y: bool,
    /// Plot y on a symmetric log axis, `sign(y) log10(1 + |y|)`: linear near 0, logarithmic
    /// beyond +-1, for curves whose outliers (one episode at -10^5) would flatten the rest.
    /// The axis label says so. Ignored when `log_y` is set.
    pub symlog_y: bool,
    /// The curves.
    pub series: Vec<Series>,
    /// Dashed vertical markers `(x, label)`.
    pub vlines: Vec<(f64, String)>,
    /// Dashed horizontal reference levels `(y, label)` (black, then grey), e.g. baselines.
    pub hlines: Vec<(f64, String)>,
    /// Put the legend in the upper left corner instead of the upper right (for rising curves
    /// with points marked at the right edge).
    pub legend_left: bool,
}

/// A heatmap over a regular grid, with curves and points drawn over it.
#[derive(Clone, Debug, Default)]
pub struct Heatmap {
    /// Title above the panel.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// x range covered by the grid.
    pub x_range: (f64, f64),
    /// y range covered by the grid.
    pub y_range: (f64, f64),
    /// `values[j][i]`: row `j` (y, bottom to top) and column `i` (x, left to right). Lower
    /// values are drawn lighter.
    pub values: Vec<Vec<f64>>,
    /// Curves drawn over the map.
    pub lines: Vec<Series>,
    /// Point sets drawn over the map.
    pub points: Vec<Series>,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(0, 0, 0),
];

/// The colour of palette index `i` (blue, red, green, orange, purple, black, then repeating).
pub fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The bytes are a known-good TTF shipped by the `dejavu` crate.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn plot_err<E: std::fmt::Debug>(path: &Path) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Data(format!("drawing {}: {e:?}", path.display()))
}

/// The legend of a chart's labelled series, at `position`, in the house style.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    path: &Path,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_err(path))
}

/// Draws onto a bitmap of `size` pixels and renames it to `path` when complete.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    let tmp = temp_path(path);
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(path))?;
        draw(&root)?;
        root.present().map_err(plot_err(path))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo { 0.04 * (hi - lo) } else { 0.5 };
    Some((lo - pad, hi + pad))
}

/// Writes `charts` side by side into one PNG at `path` (each panel `panel` pixels).
pub fn line_charts(path: &Path, charts: &[LineChart], panel: (u32, u32)) -> Result<()> {
    side_by_side(path, charts, panel, draw_line_chart)
}

/// Writes `items` side by side into one PNG at `path`, each in a panel of `panel` pixels drawn
/// by `draw`.
fn side_by_side<T>(
    path: &Path,
    items: &[T],
    panel: (u32, u32),
    draw: impl Fn(&Path, &DrawingArea<BitMapBackend<'_>, Shift>, &T) -> Result<()>,
) -> Result<()> {
    let n = items.len().max(1) as u32;
    draw_png(path, (panel.0 * n, panel.1), |root| {
        let areas = root.split_evenly((1, n as usize));
        for (item, area) in items.iter().zip(&areas) {
            draw(path, area, item)?;
        }
        Ok(())
    })
}

/// Writes one line chart to `path` (800 x 500 pixels).
pub fn line_chart(path: &Path, chart: &LineChart) -> Result<()> {
    line_charts(path, std::slice::from_ref(chart), (800, 500))
}

fn draw_line_chart(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    spec: &LineChart,
) -> Result<()> {
    let symlog = spec.symlog_y && !spec.log_y;
    let ty = |y: f64| {
        if spec.log_y {
            y.log10()
        } else if symlog {
            y.signum() * y.abs().ln_1p() / std::f64::consts::LN_10
        } else {
            y
        }
    };
    let keep = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!spec.log_y || y > 0.0);
    // (palette index, series, transformed finite points)
    type Drawn<'a> = (usize, &'a Series, Vec<(f64, f64)>);
    let series: Vec<Drawn<'_>> = spec
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let pts = s
                .points
                .iter()
                .copied()
                .filter(keep)
                .map(|(x, y)| (x, ty(y)));
            (s.color.unwrap_or(i), s, pts.collect())
        })
        .collect();
    let xr =
        finite_range(series.iter().flat_map(|s| s.2.iter().map(|p| p.0))).unwrap_or((0.0, 1.0));
    let hlines: Vec<(f64, &String)> = spec
        .hlines
        .iter()
        .filter(|(y, _)| y.is_finite() && (!spec.log_y || *y > 0.0))
        .map(|(y, l)| (ty(*y), l))
        .collect();
    // Bands: (palette index, transformed finite (x, low, high)).
    type Band = (usize, Vec<(f64, f64, f64)>);
    let bands: Vec<Band> = series
        .iter()
        .filter(|s| !s.1.band.is_empty())
        .map(|(c, s, _)| {
            let pts = s
                .band
                .iter()
                .copied()
                .filter(|&(x, lo, hi)| keep(&(x, lo)) && keep(&(x, hi)))
                .map(|(x, lo, hi)| (x, ty(lo), ty(hi)))
                .collect();
            (*c, pts)
        })
        .collect();
    let yr = finite_range(
        series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .chain(hlines.iter().map(|h| h.0))
            .chain(
                bands
                    .iter()
                    .flat_map(|b| b.1.iter().flat_map(|p| [p.1, p.2])),
            ),
    )
    .unwrap_or((0.0, 1.0));
    let mut chart = ChartBuilder::on(area)
        .caption(&spec.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(plot_err(path))?;
    let log_y = spec.log_y;
    let y_fmt = move |v: &f64| {
        if log_y {
            tick_label(10f64.powf(*v))
        } else if symlog {
            // Beyond +-10 the axis is logarithmic: one significant digit reads best there.
            let y = v.signum() * (10f64.powf(v.abs()) - 1.0);
            if y.abs() >= 50.0 {
                format!("{y:.0e}")
            } else {
                tick_label(y)
            }
        } else {
            tick_label(*v)
        }
    };
    let x_fmt = |v: &f64| tick_label(*v);
    chart
        .configure_mesh()
        .x_desc(&spec.x_label)
        .y_desc(if log_y {
            format!("{} (log scale)", spec.y_label)
        } else if symlog {
            format!("{} (symlog scale)", spec.y_label)
        } else {
            spec.y_label.clone()
        })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(plot_err(path))?;
    for (c, pts) in &bands {
        if pts.len() < 2 {
            continue;
        }
        let color = palette(*c);
        let light = |v: u8| (0.25 * v as f64 + 0.75 * 255.0).round() as u8;
        let fill = RGBColor(light(color.0), light(color.1), light(color.2)).filled();
        let outline: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.0, p.2))
            .chain(pts.iter().rev().map(|p| (p.0, p.1)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(outline, fill)))
            .map_err(plot_err(path))?;
    }
    for (x, label) in &spec.vlines {
        let style = ShapeStyle::from(&BLACK.mix(0.5)).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(*x, yr.0), (*x, yr.1)],
                6,
                4,
                style,
            ))
            .map_err(plot_err(path))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    for (j, (y, label)) in hlines.iter().enumerate() {
        let grey = if j == 0 { 0 } else { 130 };
        let style = ShapeStyle::from(&RGBColor(grey, grey, grey)).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(xr.0, *y), (xr.1, *y)],
                10,
                5,
                style,
            ))
            .map_err(plot_err(path))?
            .label((*label).clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    let mut any_label = !spec.vlines.is_empty() || !hlines.is_empty();
    for (c, s, pts) in &series {
        let color = palette(*c);
        let style = if s.faint {
            // A light solid shade rather than transparency: the PNG stays small.
            let light = |c: u8| (0.4 * c as f64 + 0.6 * 255.0).round() as u8;
            RGBColor(light(color.0), light(color.1), light(color.2)).stroke_width(1)
        } else {
            color.stroke_width(2)
        };
        if s.markers {
            let mark = if s.hollow {
                color.stroke_width(2)
            } else {
                color.filled()
            };
            let drawn = chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 6, mark)))
                .map_err(plot_err(path))?;
            if !s.name.is_empty() {
                any_label = true;
                drawn
                    .label(s.name.clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 6, mark));
            }
            continue;
        }
        let drawn = chart
            .draw_series(LineSeries::new(pts.iter().copied(), style))
            .map_err(plot_err(path))?;
        if !s.name.is_empty() {
            any_label = true;
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if any_label {
        let position = if spec.legend_left {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::UpperRight
        };
        draw_legend(&mut chart, position, path)?;
    }
    Ok(())
}

/// Writes heatmap `panels` side by side into one PNG at `path` (each `panel` pixels).
pub fn heatmaps(path: &Path, panels: &[Heatmap], panel: (u32, u32)) -> Result<()> {
    side_by_side(path, panels, panel, draw_heatmap)
}

/// One panel of a [`panel_grid`].
#[derive(Clone, Debug)]
pub enum Panel {
    /// A line chart.
    Line(LineChart),
    /// A heatmap.
    Heat(Heatmap),
}

/// Writes `panels` row by row into a grid of `cols` columns (each panel `panel` pixels).
pub fn panel_grid(path: &Path, panels: &[Panel], cols: usize, panel: (u32, u32)) -> Result<()> {
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    draw_png(
        path,
        (panel.0 * cols as u32, panel.1 * rows as u32),
        |root| {
            let areas = root.split_evenly((rows, cols));
            for (p, area) in panels.iter().zip(&areas) {
                match p {
                    Panel::Line(c) => draw_line_chart(path, area, c)?,
                    Panel::Heat(h) => draw_heatmap(path, area, h)?,
                }
            }
            Ok(())
        },
    )
}

/// Light (low) to dark (high): a perceptually ordered ramp from pale yellow through teal to
/// deep blue-purple.
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [253.0, 231.0, 37.0]),
        (0.25, [94.0, 201.0, 98.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [59.0, 82.0, 139.0]),
        (1.0, [68.0, 1.0, 84.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let k = STOPS
        .iter()
        .position(|s| s.0 >= t)
        .unwrap_or(STOPS.len() - 1)
        .max(1);
    let (t0, c0) = STOPS[k - 1];
    let (t1, c1) = STOPS[k];
    let w = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let mix = |a: f64, b: f64| (a + w * (b - a)).round() as u8;
    RGBColor(mix(c0[0], c1[0]), mix(c0[1], c1[1]), mix(c0[2], c1[2]))
}

fn draw_heatmap(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    spec: &Heatmap,
) -> Result<()> {
    let ny = spec.values.len();
    let nx = spec.values.first().map_or(0, Vec::len);
    if ny == 0 || nx == 0 || spec.values.iter().any(|r| r.len() != nx) {
        return Err(Error::shape(
            "heatmap values",
            "a non-empty rectangular grid",
            (ny, nx),
        ));
    }
    let (x0, x1) = spec.x_range;
    let (y0, y1) = spec.y_range;
    let (lo, hi) = finite_range(spec.values.iter().flatten().copied()).unwrap_or((0.0, 1.0));
    let mut chart = ChartBuilder::on(area)
        .caption(&spec.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_err(path))?;
    let dx = (x1 - x0) / nx as f64;
    let dy = (y1 - y0) / ny as f64;
    let cells = spec.values.iter().enumerate().flat_map(|(j, row)| {
        row.iter().enumerate().map(move |(i, v)| {
            let color = ramp((v - lo) / (hi - lo));
            Rectangle::new(
                [
                    (x0 + i as f64 * dx, y0 + j as f64 * dy),
                    (x0 + (i + 1) as f64 * dx, y0 + (j + 1) as f64 * dy),
                ],
                color.filled(),
            )
        })
    });
    chart.draw_series(cells).map_err(plot_err(path))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&spec.x_label)
        .y_desc(&spec.y_label)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .draw()
        .map_err(plot_err(path))?;
    let inside = |&(x, y): &(f64, f64)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    let mut any_label = false;
    for (i, s) in spec.lines.iter().enumerate() {
        let color = palette(s.color.unwrap_or(5 + i));
        let pts: Vec<_> = s.points.iter().copied().filter(inside).collect();
        let drawn = chart
            .draw_series(LineSeries::new(pts, color.stroke_width(3)))
            .map_err(plot_err(path))?;
        if !s.name.is_empty() {
            any_label = true;
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        }
    }
    for (i, s) in spec.points.iter().enumerate() {
        let color = palette(s.color.unwrap_or(1 + i));
        let pts: Vec<_> = s.points.iter().copied().filter(inside).collect();
        let drawn = chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(plot_err(path))?;
        if !s.name.is_empty() {
            any_label = true;
            drawn
                .label(s.name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
        }
    }
    if any_label {
        draw_legend(&mut chart, SeriesLabelPosition::LowerLeft, path)?;
    }
    Ok(())
}

/// A short axis label: integers without decimals, ordinary magnitudes with up to three significant
/// digits, very small or large ones in exponent form.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return format!("{v}");
    }
    // Below 1e-9 is rounding noise of a tick at zero (plotters places ticks in f64 steps).
    if a < 1e-9 {
        return "0".into();
    }
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    if (v - v.round()).abs() <= 1e-9 * a.max(1.0) {
        return format!("{}", v.round() as i64);
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 5) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

/// Whether a few values lie so far from the rest that a linear axis would flatten the rest:
/// the full range is over 20 times the range of the middle 80% (10th to 90th percentile).
/// Learning curves use it to switch their return axis to symlog ([`LineChart::symlog_y`]).
pub fn has_outliers(values: impl IntoIterator<Item = f64>) -> bool {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.len() < 5 {
        return false;
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let full = v[v.len() - 1] - v[0];
    let middle = at(0.9) - at(0.1);
    full > 20.0 * middle.max(1e-12)
}
