//! SVG charts drawn with plotters' SVG backend.
//!
//! Text stays SVG `<text>` (plotters' SVG backend without the `ttf` feature),
//! so no font files are read and the browser renders labels with its own
//! sans-serif font; sizes are estimated, which is good enough for axis
//! labels. Legends and category labels are drawn beside the plot area, so
//! they never hide data.

use plotters::chart::LabelAreaPosition;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Okabe-Ito colours (readable for colour-blind people) and a few extra.
const PALETTE: &[RGBColor] = &[
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
    RGBColor(153, 51, 0),
];

/// How the `i`-th series looks beyond its colour: a marker shape and a
/// dash pattern, so every series stays identifiable in print and for
/// readers who cannot tell the colours apart. Markers cycle fastest; the
/// first [`MARKERS`] x [`DASHES`] series are all distinct without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Look {
    pub colour: RGBColor,
    pub marker: usize,
    pub dash: Dash,
}

/// Line patterns, in pixels of dash and gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dash {
    Solid,
    Dashed(i32, i32),
}

const DASHES: &[Dash] = &[
    Dash::Solid,
    Dash::Dashed(9, 5),
    Dash::Dashed(2, 4),
    Dash::Dashed(16, 6),
];

/// Marker outlines as unit polygons (x right, y down), drawn filled.
const MARKERS: usize = 7;

pub(crate) fn look(i: usize) -> Look {
    Look {
        colour: PALETTE[i % PALETTE.len()],
        marker: i % MARKERS,
        dash: DASHES[(i / MARKERS) % DASHES.len()],
    }
}

/// The outline of marker `m`, `r` pixels in radius, around (0, 0).
fn marker_outline(m: usize, r: f64) -> Vec<(i32, i32)> {
    let poly = |n: usize, turn: f64, radii: &[f64]| -> Vec<(i32, i32)> {
        (0..n)
            .map(|k| {
                let a = turn + std::f64::consts::TAU * k as f64 / n as f64;
                let rr = r * radii[k % radii.len()];
                ((rr * a.cos()).round() as i32, (rr * a.sin()).round() as i32)
            })
            .collect()
    };
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
    match m % MARKERS {
        0 => poly(12, 0.0, &[1.0]),              // circle
        1 => poly(4, FRAC_PI_4, &[1.25]),        // square
        2 => poly(3, -FRAC_PI_2, &[1.3]),        // triangle up
        3 => poly(4, 0.0, &[1.3]),               // diamond
        4 => poly(3, FRAC_PI_2, &[1.3]),         // triangle down
        5 => poly(10, -FRAC_PI_2, &[1.45, 0.6]), // star
        _ => {
            // plus
            let (a, b) = ((r * 0.4).round() as i32, (r * 1.3).round() as i32);
            vec![
                (-a, -b),
                (a, -b),
                (a, -a),
                (b, -a),
                (b, a),
                (a, a),
                (a, b),
                (-a, b),
                (-a, a),
                (-b, a),
                (-b, -a),
                (-a, -a),
            ]
        }
    }
}

const PLOT_W: u32 = 620;
const LEGEND_W: u32 = 240;
const BASE_H: u32 = 380;

/// One point: the median over repeats with the min-max range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Parameter value (numeric axis) or category index (categorical axis).
    pub x: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The parameter's "off" value (a declared sentinel such as
    /// `throttle_pps = 0`, unthrottled): drawn in its own labelled slot at
    /// the axis end, never on the scale.
    pub off: bool,
}

/// One line (or one bar colour) of a chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// The x axis of a comparison chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum XAxis {
    /// A numeric parameter; logarithmic when its values span a factor of 16
    /// or more (heap and block sizes in powers of two). Ticks are the swept
    /// values themselves, so an integer parameter gets integer ticks.
    Numeric {
        /// Logarithmic scale.
        log: bool,
        /// The label of the slot for points marked [`Point::off`]
        /// (`0 = unthrottled`).
        off: Option<String>,
    },
    /// A categorical parameter: grouped bars, one group per category.
    Categories(Vec<String>),
}

type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Formats a number compactly with an SI suffix: 1.25M, 512, 3.2k, 0.25;
/// beyond the largest suffix (1e15 would read `1000T`, 1e300 a run of 289
/// digits) and below 0.01 in scientific form, `2.50e15`, `1.50e-3`.
pub(crate) fn si(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // -0.0 (a difference of equal values) reads as 0.
    let v = if v == 0.0 { 0.0 } else { v };
    let a = v.abs();
    if a >= 1e15 {
        return format!("{v:.2e}");
    }
    let (unit, suffix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let scaled = v / unit;
    let m = scaled.abs();
    if scaled == scaled.trunc() && m < 1e4 {
        return format!("{scaled:.0}{suffix}");
    }
    if m < 0.01 {
        let s = format!("{scaled:.2e}");
        match s.parse::<f64>() {
            // Rounded up to 0.01 (0.0099996): printed as 0.01.
            Ok(r) if r.abs() >= 0.01 => return si(r),
            // At most 9 characters: `-1.5e-100`, not `-1.50e-100`.
            _ if s.len() > 9 => return format!("{scaled:.1e}"),
            _ => return s,
        }
    }
    // Two decimals below 10, one below 100, none from 100 up, counted on
    // the value *after* rounding, so 9.996 reads 10.0, not 10.00.
    let mut decimals = if m >= 100.0 {
        0
    } else if m >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{scaled:.decimals$}");
    let rounded: f64 = s.parse().unwrap_or(scaled);
    if decimals > 0 && rounded.abs() >= [100.0, 10.0][decimals - 1] {
        decimals -= 1;
        s = format!("{scaled:.decimals$}");
    }
    // Rounded up into the next unit's range (999,999.6 would read `1000k`,
    // 9,999.6 `10000`): printed in that unit.
    let next = if unit == 1.0 { 1e4 } else { 1e3 };
    if rounded.abs() >= next {
        return si(rounded * unit);
    }
    format!("{s}{suffix}")
}

fn y_range(series: &[Series]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in series.iter().flat_map(|s| &s.points) {
        lo = lo.min(p.min.min(p.median));
        hi = hi.max(p.max.max(p.median));
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    // Rates and times start at zero so bar lengths and slopes read honestly.
    let lo = if lo >= 0.0 { 0.0 } else { lo * 1.08 };
    let hi = if hi <= 0.0 { 1.0 } else { hi * 1.08 };
    if hi - lo <= f64::EPSILON {
        (lo, lo + 1.0)
    } else {
        (lo, hi)
    }
}

/// The legend column: per series its line pattern and marker (`bars`:
/// a colour swatch with the marker) and its name.
fn legend(area: &Area<'_>, series: &[Series], bars: bool) -> DrawResult<()> {
    let style = TextStyle::from(("sans-serif", 13).into_font()).color(&BLACK);
    for (i, s) in series.iter().enumerate() {
        let y = 40 + 18 * i as i32;
        let lk = look(i);
        if bars {
            area.draw(&Rectangle::new(
                [(4, y - 7), (26, y + 7)],
                lk.colour.filled(),
            ))
            .map_err(err)?;
            area.draw(
                &(EmptyElement::at((15, y))
                    + Polygon::new(marker_outline(lk.marker, 4.0), BLACK.filled())),
            )
            .map_err(err)?;
        } else {
            line_sample(area, (2, y), (30, y), lk)?;
            area.draw(
                &(EmptyElement::at((16, y))
                    + Polygon::new(marker_outline(lk.marker, 4.0), lk.colour.filled())),
            )
            .map_err(err)?;
        }
        area.draw(&Text::new(
            s.name.clone(),
            (36, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A straight line in pixels with the look's dash pattern.
fn line_sample(area: &Area<'_>, from: (i32, i32), to: (i32, i32), lk: Look) -> DrawResult<()> {
    match lk.dash {
        Dash::Solid => area.draw(&PathElement::new(vec![from, to], lk.colour.stroke_width(2))),
        Dash::Dashed(on, gap) => area.draw(&DashedPathElement::new(
            vec![from, to],
            on,
            gap,
            lk.colour.stroke_width(2),
        )),
    }
    .map_err(err)
}

fn chart_height(n_series: usize) -> u32 {
    BASE_H.max(60 + 18 * n_series as u32)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A white canvas for a chart with `n_series` legend rows: the whole, the
/// plot on the left and the legend column on the right.
fn canvas(svg: &mut String, n_series: usize) -> DrawResult<(Area<'_>, Area<'_>, Area<'_>)> {
    let root = SVGBackend::with_string(svg, (PLOT_W + LEGEND_W, chart_height(n_series)))
        .into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (plot, side) = root.split_horizontally(PLOT_W);
    Ok((root, plot, side))
}

/// A comparison chart of one metric against one parameter.
pub(crate) fn metric_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x: &XAxis,
    series: &[Series],
) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let (root, plot, side) = canvas(&mut svg, series.len())?;
        legend(&side, series, matches!(x, XAxis::Categories(_)))?;
        let frame = Frame {
            title,
            x_desc,
            y_desc,
            y: y_range(series),
            label: TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK),
        };
        match x {
            XAxis::Numeric { log, off } => numeric(&plot, &frame, *log, off.as_deref(), series)?,
            XAxis::Categories(cats) => categories(&plot, &frame, cats, series)?,
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// What every comparison chart's plot area shares.
struct Frame<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    y: (f64, f64),
    label: TextStyle<'a>,
}

/// Lines over a numeric parameter, labelled at the swept values; points
/// marked `off` sit in a slot right of a dashed break, labelled `off`.
fn numeric(
    plot: &Area<'_>,
    f: &Frame<'_>,
    log: bool,
    off: Option<&str>,
    series: &[Series],
) -> DrawResult<()> {
    let tx = |v: f64| if log { v.log10() } else { v };
    let mut values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter(|p| !p.off).map(|p| p.x))
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let (mut xlo, mut xhi) = match (values.first(), values.last()) {
        (Some(a), Some(b)) => (tx(*a), tx(*b)),
        _ => (0.0, 1.0),
    };
    if xhi <= xlo {
        (xlo, xhi) = (xlo - 0.5, xhi + 0.5);
    }
    let span = xhi - xlo;
    let pad = span * 0.05;
    let off = off.filter(|_| series.iter().any(|s| s.points.iter().any(|p| p.off)));
    let slot = xhi + span * 0.25;
    let right = if off.is_some() { slot } else { xhi };
    let (ylo, yhi) = f.y;
    let mut chart = ChartBuilder::on(plot)
        .caption(f.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(if off.is_some() { 58 } else { 44 })
        .y_label_area_size(64)
        .build_cartesian_2d((xlo - pad)..(right + pad), ylo..yhi)
        .map_err(err)?;
    let x_desc = if log {
        format!("{} (log scale)", f.x_desc)
    } else {
        f.x_desc.to_string()
    };
    mesh(&mut chart, f, &x_desc)?;
    let mut last_px: Option<i32> = None;
    for v in &values {
        let (px, py) = chart.backend_coord(&(tx(*v), ylo));
        // Skip a label that would overlap the previous one.
        if last_px.is_some_and(|l| px - l < 40) {
            continue;
        }
        last_px = Some(px);
        plot.draw(&PathElement::new(
            vec![(px, py), (px, py + 4)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        plot.draw(&Text::new(
            si(*v),
            (px, py + 6),
            f.label.pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
    }
    if let Some(label) = off {
        let grey = RGBColor(120, 120, 120);
        let brk = xhi + span * 0.125;
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(brk, ylo), (brk, yhi)],
                4,
                4,
                grey.stroke_width(1),
            )))
            .map_err(err)?;
        let (px, py) = chart.backend_coord(&(slot, ylo));
        plot.draw(&PathElement::new(
            vec![(px, py), (px, py + 4)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        // `0 = unthrottled` as two lines: the value, then what it means.
        for (k, line) in label.splitn(2, " = ").enumerate() {
            plot.draw(&Text::new(
                line.to_string(),
                (px, py + 6 + 14 * k as i32),
                f.label.pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
        }
    }
    let at = |p: &Point| if p.off { slot } else { tx(p.x) };
    for (i, s) in series.iter().enumerate() {
        let lk = look(i);
        let c = lk.colour;
        let mut line: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| !p.off)
            .map(|p| (tx(p.x), p.median))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        draw_line(&mut chart, line, lk)?;
        let ends: Vec<_> = s
            .points
            .iter()
            .filter(|p| p.max > p.min)
            .map(|p| (at(p), p.min, p.max))
            .collect();
        chart
            .draw_series(ends.iter().map(|&(x, lo, hi)| range_bar(x, lo, hi, c)))
            .map_err(err)?;
        caps(&mut chart, &ends, c)?;
        let marks: Vec<_> = s.points.iter().map(|p| (at(p), p.median)).collect();
        draw_markers(&mut chart, &marks, lk, 4.0)?;
    }
    Ok(())
}

/// Axes, descriptions and horizontal grid lines of a comparison chart. The
/// x axis gets no labels of plotters' choosing: the caller writes the swept
/// values or categories there (nice numbers would put 2.5 on an integer
/// axis and 63.1 on a log one).
fn mesh(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    f: &Frame<'_>,
    x_desc: &str,
) -> DrawResult<()> {
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(f.y_desc)
        .x_labels(0)
        .y_label_formatter(&|v| si(*v))
        .label_style(f.label.clone())
        .light_line_style(RGBColor(235, 235, 235))
        .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
        .draw()
        .map_err(err)
}

/// A polyline in the look's colour and dash pattern.
fn draw_line<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    line: Vec<(f64, f64)>,
    lk: Look,
) -> DrawResult<()>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let style = lk.colour.stroke_width(2);
    match lk.dash {
        Dash::Solid => chart.draw_series(LineSeries::new(line, style)).map(|_| ()),
        Dash::Dashed(on, gap) => chart
            .draw_series(DashedLineSeries::new(line, on, gap, style))
            .map(|_| ()),
    }
    .map_err(err)
}

/// The look's marker, `r` pixels in radius, at each point.
fn draw_markers<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    at: &[(f64, f64)],
    lk: Look,
    r: f64,
) -> DrawResult<()>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    chart
        .draw_series(at.iter().map(|&p| {
            EmptyElement::at(p) + Polygon::new(marker_outline(lk.marker, r), lk.colour.filled())
        }))
        .map_err(err)?;
    Ok(())
}

/// Grouped bars over a categorical parameter, each bar topped with its
/// series' marker so the bars stay identifiable without colour.
fn categories(
    plot: &Area<'_>,
    f: &Frame<'_>,
    cats: &[String],
    series: &[Series],
) -> DrawResult<()> {
    let k = cats.len().max(1) as f64;
    let (ylo, yhi) = f.y;
    let mut chart = ChartBuilder::on(plot)
        .caption(f.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..(k - 0.5), ylo..yhi)
        .map_err(err)?;
    mesh(&mut chart, f, f.x_desc)?;
    let n = series.len().max(1) as f64;
    let w = 0.8 / n;
    for (i, s) in series.iter().enumerate() {
        let lk = look(i);
        let off = -0.4 + w * i as f64;
        let base = ylo.max(0.0).min(yhi);
        chart
            .draw_series(s.points.iter().map(|p| {
                Rectangle::new(
                    [
                        (p.x + off + w * 0.08, base),
                        (p.x + off + w * 0.92, p.median),
                    ],
                    lk.colour.filled(),
                )
            }))
            .map_err(err)?;
        let ends: Vec<_> = s
            .points
            .iter()
            .filter(|p| p.max > p.min)
            .map(|p| (p.x + off + w / 2.0, p.min, p.max))
            .collect();
        chart
            .draw_series(ends.iter().map(|&(x, lo, hi)| range_bar(x, lo, hi, BLACK)))
            .map_err(err)?;
        caps(&mut chart, &ends, BLACK)?;
        let r = (4.0f64).min(300.0 / (n * k)).max(2.0);
        chart
            .draw_series(s.points.iter().map(|p| {
                EmptyElement::at((p.x + off + w / 2.0, p.median))
                    + Polygon::new(marker_outline(lk.marker, r), BLACK.filled())
            }))
            .map_err(err)?;
    }
    for (i, name) in cats.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64, ylo));
        plot.draw(&Text::new(
            name.clone(),
            (px, py + 6),
            f.label.pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// A vertical min-max bar with caps, 8 px wide whatever the scale.
fn range_bar(x: f64, lo: f64, hi: f64, c: RGBColor) -> PathElement<(f64, f64)> {
    PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(1))
}

/// Draws the 8 px caps of a min-max bar at both ends.
fn caps<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: &[(f64, f64, f64)],
    c: RGBColor,
) -> DrawResult<()>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let ends = pts.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
    chart
        .draw_series(ends.map(|at| {
            EmptyElement::at(at) + PathElement::new(vec![(-4, 0), (4, 0)], c.stroke_width(1))
        }))
        .map_err(err)?;
    Ok(())
}

/// A horizontal bar chart of each stage's share of the measured total.
pub(crate) fn share_chart(title: &str, stages: &[(String, f64)]) -> DrawResult<String> {
    let n = stages.len().max(1);
    let h = (70 + 22 * n as u32).max(140);
    let left = 200u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PLOT_W + LEGEND_W, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (labels, plot) = root.split_horizontally(left);
        let xmax = stages
            .iter()
            .map(|(_, s)| *s)
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(4)
            .build_cartesian_2d(0.0..xmax, -0.5..(n as f64 - 0.5))
            .map_err(err)?;
        let label_style = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("share of measured total (%)")
            .y_label_formatter(&|_| String::new())
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style(label_style.clone())
            .light_line_style(RGBColor(235, 235, 235))
            .set_tick_mark_size(LabelAreaPosition::Left, 0)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(stages.iter().enumerate().map(|(i, (_, share))| {
                let y = (n - 1 - i) as f64;
                Rectangle::new([(0.0, y - 0.35), (*share, y + 0.35)], PALETTE[0].filled())
            }))
            .map_err(err)?;
        for (i, (name, share)) in stages.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let (px, py) = chart.backend_coord(&(0.0, y));
            // `plot` starts `left` pixels into the root area.
            labels
                .draw(&Text::new(
                    name.clone(),
                    (left as i32 - 6, py),
                    label_style.pos(Pos::new(HPos::Right, VPos::Center)),
                ))
                .map_err(err)?;
            let (ex, _) = chart.backend_coord(&(*share, y));
            root.draw(&Text::new(
                format!("{share:.1} %"),
                (ex + 4, py),
                label_style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
            let _ = px;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A metric across commits: x is commit order, labelled with `labels`
/// (short hash and date, thinned to about ten); one line per series; the
/// run being reported marked by a vertical line at `current`; where a
/// series' change began marked by a ring and a dashed line.
pub(crate) fn trend_chart(
    title: &str,
    y_desc: &str,
    labels: &[String],
    current: Option<usize>,
    series: &[crate::trend::TrendSeries],
) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let (root, plot, side) = canvas(&mut svg, series.len())?;
        let named: Vec<Series> = series
            .iter()
            .map(|s| Series {
                name: s.name.clone(),
                points: s
                    .values
                    .iter()
                    .enumerate()
                    .filter_map(|(x, v)| {
                        v.map(|v| Point {
                            x: x as f64,
                            median: v,
                            min: v,
                            max: v,
                            off: false,
                        })
                    })
                    .collect(),
            })
            .collect();
        legend(&side, &named, false)?;
        let (ylo, yhi) = y_range(&named);
        let n = labels.len().max(1) as f64;
        let label_style = TextStyle::from(("sans-serif", 11).into_font()).color(&BLACK);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..(n - 0.5), ylo..yhi)
            .map_err(err)?;
        let step = labels.len().div_ceil(10).max(1);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("commit (oldest first)")
            .y_desc(y_desc)
            .x_labels(0)
            .y_label_formatter(&|v| si(*v))
            .label_style(label_style.clone())
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (i, l) in labels.iter().enumerate().step_by(step) {
            let (px, py) = chart.backend_coord(&(i as f64, ylo));
            for (k, line) in l.split(' ').enumerate() {
                plot.draw(&Text::new(
                    line.to_string(),
                    (px, py + 6 + 13 * k as i32),
                    label_style.pos(Pos::new(HPos::Center, VPos::Top)),
                ))
                .map_err(err)?;
            }
        }
        if let Some(c) = current {
            let red = RGBColor(200, 30, 30);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(c as f64, ylo), (c as f64, yhi)],
                    red.stroke_width(2),
                )))
                .map_err(err)?;
            let (px, py) = chart.backend_coord(&(c as f64, yhi));
            plot.draw(&Text::new(
                "this run",
                (px - 4, py + 2),
                label_style
                    .color(&red)
                    .pos(Pos::new(HPos::Right, VPos::Top)),
            ))
            .map_err(err)?;
        }
        for (i, s) in named.iter().enumerate() {
            let lk = look(i);
            let c = lk.colour;
            let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.x, p.median)).collect();
            draw_line(&mut chart, pts.clone(), lk)?;
            draw_markers(&mut chart, &pts, lk, 3.0)?;
            if let Some(at) = series[i].change_at {
                if let Some(p) = s.points.iter().find(|p| p.x == at as f64) {
                    chart
                        .draw_series(std::iter::once(Circle::new(
                            (p.x, p.median),
                            7,
                            c.stroke_width(2),
                        )))
                        .map_err(err)?;
                    let dash = (0..12).map(|k| {
                        let y0 = ylo + (yhi - ylo) * k as f64 / 12.0;
                        PathElement::new(
                            vec![(p.x, y0), (p.x, y0 + (yhi - ylo) / 24.0)],
                            c.stroke_width(1),
                        )
                    });
                    chart.draw_series(dash).map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_formatting() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(512.0), "512");
        assert_eq!(si(1_250_000.0), "1.25M");
        assert_eq!(si(0.25), "0.25");
        assert_eq!(si(38_600.0), "38.6k");
    }

    /// A value that rounds up to its unit's end prints in the next unit,
    /// and never with a digit more than three significant ones.
    #[test]
    fn values_rounding_up_print_in_the_next_unit() {
        for (x, want) in [
            (999_999.6, "1M"),
            (-999_999.6, "-1M"),
            (9_999.6, "10k"),
            (999.96e9, "1T"),
            (999.996e12, "1.00e15"),
            (99.996, "100"),
            (9.996, "10.0"),
            (0.0099996, "0.01"),
            (-0.0099996, "-0.01"),
            (0.0099, "9.90e-3"),
            (-1.5e-100, "-1.5e-100"),
            (-1e-320, "-1.0e-320"),
            (1.5e-100, "1.50e-100"),
            (99_960.0, "100k"),
            (99_940.0, "99.9k"),
            (1_234.4, "1234"),
        ] {
            assert_eq!(si(x), want, "{x}");
        }
    }

    fn numeric(log: bool, off: Option<&str>) -> XAxis {
        XAxis::Numeric {
            log,
            off: off.map(str::to_owned),
        }
    }

    /// A one-series chart on a numeric axis.
    fn one_series(name: &str, points: Vec<Point>, log: bool, off: Option<&str>) -> String {
        let s = vec![Series {
            name: name.into(),
            points,
        }];
        metric_chart("t", "param", "metric (bytes/s)", &numeric(log, off), &s).unwrap()
    }

    fn pt(x: f64, median: f64, off: bool) -> Point {
        Point {
            x,
            median,
            min: median * 0.9,
            max: median * 1.1,
            off,
        }
    }

    /// The x-axis labels of a chart (the `<text>` elements below the plot,
    /// left of the legend) as (x, text), in document order.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        let attr = |t: &str, a: &str| -> Option<f64> {
            t.split(&format!(" {a}=\""))
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()
        };
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (x, y) = (attr(t, "x")?, attr(t, "y")?);
                let body = t.split_once('>')?.1.split("</text>").next()?;
                // Right of the y labels (64 px and the margin), left of the legend.
                (y > 300.0 && x > 80.0 && x < PLOT_W as f64).then(|| (x, body.trim().to_string()))
            })
            .collect()
    }

    #[test]
    fn numeric_chart_has_text_labels_and_series() {
        let points = vec![pt(64.0, 10.0, false), pt(4096.0, 30.0, false)];
        let svg = one_series("framing=cobs", points, true, None);
        assert!(svg.contains("<text"));
        assert!(svg.contains("framing=cobs"));
        assert!(svg.contains("metric (bytes/s)") && svg.contains("param (log scale)"));
    }

    #[test]
    fn the_off_value_sits_in_a_labelled_slot_right_of_the_scale() {
        let points = vec![
            pt(0.0, 50.0, true),
            pt(40.0, 10.0, false),
            pt(100.0, 20.0, false),
            pt(200.0, 30.0, false),
        ];
        let t = texts(&one_series("b", points, false, Some("0 = unthrottled")));
        let x_of = |label: &str| {
            t.iter()
                .find(|(_, s)| s == label)
                .map(|(x, _)| *x)
                .unwrap_or_else(|| panic!("{label} in {t:?}"))
        };
        // The swept values label the axis in order, the off value after them.
        assert!(x_of("40") < x_of("100") && x_of("100") < x_of("200"));
        assert!(x_of("0") > x_of("200"), "{t:?}");
        assert_eq!(x_of("unthrottled"), x_of("0"));
        // Integer values, integer ticks: plotters' own ticks (2.5, 150, ...) are gone.
        assert!(
            !t.iter()
                .any(|(_, s)| s.contains('.') || s == "150" || s == "50"),
            "{t:?}"
        );
    }

    #[test]
    fn without_a_declared_off_value_zero_is_a_point_on_the_scale() {
        let points = vec![pt(0.0, 50.0, false), pt(40.0, 10.0, false)];
        let t = texts(&one_series("a", points, false, None));
        let x0 = t.iter().find(|(_, s)| s == "0").unwrap().0;
        let x40 = t.iter().find(|(_, s)| s == "40").unwrap().0;
        assert!(x0 < x40);
    }

    #[test]
    fn every_series_of_28_has_its_own_marker_and_dash() {
        let looks: Vec<(usize, Dash)> = (0..28).map(|i| (look(i).marker, look(i).dash)).collect();
        for (i, a) in looks.iter().enumerate() {
            for b in &looks[i + 1..] {
                assert_ne!(a, b, "series {i}");
            }
        }
        // Marker outlines differ in shape, not only in size.
        let shapes: Vec<Vec<(i32, i32)>> = (0..MARKERS).map(|m| marker_outline(m, 4.0)).collect();
        for (i, a) in shapes.iter().enumerate() {
            for b in &shapes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // A 12-series chart draws dashed lines and distinct legend entries.
        let series: Vec<Series> = (0..12)
            .map(|i| Series {
                name: format!("s{i}"),
                points: vec![pt(1.0, i as f64, false), pt(2.0, i as f64 + 1.0, false)],
            })
            .collect();
        let axis = numeric(false, None);
        let svg = metric_chart("t", "x", "y", &axis, &series).unwrap();
        assert!(
            svg.matches("<polygon").count() >= 12 * 3,
            "markers in plot and legend"
        );
        assert!(svg.contains("s11"));
    }
}
