//! SVG charts drawn with plotters' SVG backend.
//!
//! Text stays SVG `<text>` (plotters' SVG backend without the `ttf` feature),
//! so no font files are read and the browser renders labels with its own
//! sans-serif font; sizes are estimated, which is good enough for axis
//! labels. Legends and category labels are drawn beside the plot area, so
//! they never hide data.

use plotters::chart::LabelAreaPosition;
use plotters::coord::Shift;
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
    /// A numeric parameter; logarithmic when its values span a factor of 16 or more (heap and block sizes in powers of two).
    Numeric { log: bool },
    /// A categorical parameter: grouped bars, one group per category.
    Categories(Vec<String>),
}

type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Formats a number compactly with an SI suffix: 1.25M, 512, 3.2k, 0.25.
pub(crate) fn si(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if (scaled == scaled.trunc() && scaled.abs() < 1e4) || scaled.abs() >= 100.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else if scaled.abs() >= 0.01 || scaled == 0.0 {
        format!("{scaled:.2}")
    } else {
        format!("{scaled:.2e}")
    };
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

fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, series: &[Series]) -> DrawResult<()> {
    let style = TextStyle::from(("sans-serif", 13).into_font()).color(&BLACK);
    for (i, s) in series.iter().enumerate() {
        let y = 40 + 18 * i as i32;
        let c = PALETTE[i % PALETTE.len()];
        area.draw(&Rectangle::new([(6, y - 5), (22, y + 5)], c.filled()))
            .map_err(err)?;
        area.draw(&Text::new(
            s.name.clone(),
            (28, y),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
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
        legend(&side, series)?;
        let (ylo, yhi) = y_range(series);
        let label_style = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK);
        match x {
            XAxis::Numeric { log } => {
                let tx = |v: f64| if *log { v.log10() } else { v };
                let xs = series.iter().flat_map(|s| s.points.iter().map(|p| tx(p.x)));
                let (mut xlo, mut xhi) = xs
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(v), b.max(v))
                    });
                if !xlo.is_finite() {
                    (xlo, xhi) = (0.0, 1.0);
                }
                let pad = if xhi > xlo { (xhi - xlo) * 0.05 } else { 0.5 };
                let mut chart = ChartBuilder::on(&plot)
                    .caption(title, ("sans-serif", 16))
                    .margin(12)
                    .x_label_area_size(44)
                    .y_label_area_size(64)
                    .build_cartesian_2d((xlo - pad)..(xhi + pad), ylo..yhi)
                    .map_err(err)?;
                let log = *log;
                chart
                    .configure_mesh()
                    .x_desc(if log {
                        format!("{x_desc} (log scale)")
                    } else {
                        x_desc.to_string()
                    })
                    .y_desc(y_desc)
                    // On a log axis, nice numbers in log space (63.1, 158, ...)
                    // read badly: label the swept values themselves instead.
                    .x_label_formatter(&|v| if log { String::new() } else { si(*v) })
                    .y_label_formatter(&|v| si(*v))
                    .label_style(label_style.clone())
                    .light_line_style(RGBColor(235, 235, 235))
                    .set_tick_mark_size(LabelAreaPosition::Bottom, if log { 0 } else { 5 })
                    .draw()
                    .map_err(err)?;
                if log {
                    let mut xs: Vec<f64> = series
                        .iter()
                        .flat_map(|s| s.points.iter().map(|p| p.x))
                        .collect();
                    xs.sort_by(f64::total_cmp);
                    xs.dedup();
                    // At most about a dozen labels, evenly thinned.
                    let step = xs.len().div_ceil(12).max(1);
                    for x in xs.iter().step_by(step) {
                        let (px, py) = chart.backend_coord(&(tx(*x), ylo));
                        plot.draw(&Text::new(
                            si(*x),
                            (px, py + 6),
                            label_style.pos(Pos::new(HPos::Center, VPos::Top)),
                        ))
                        .map_err(err)?;
                    }
                }
                for (i, s) in series.iter().enumerate() {
                    let c = PALETTE[i % PALETTE.len()];
                    let mut pts: Vec<Point> = s.points.clone();
                    pts.sort_by(|a, b| a.x.total_cmp(&b.x));
                    chart
                        .draw_series(LineSeries::new(
                            pts.iter().map(|p| (tx(p.x), p.median)),
                            c.stroke_width(2),
                        ))
                        .map_err(err)?;
                    chart
                        .draw_series(
                            pts.iter()
                                .map(|p| Circle::new((tx(p.x), p.median), 3, c.filled())),
                        )
                        .map_err(err)?;
                    chart
                        .draw_series(
                            pts.iter()
                                .filter(|p| p.max > p.min)
                                .map(|p| range_bar(tx(p.x), p.min, p.max, c)),
                        )
                        .map_err(err)?;
                    let ends: Vec<_> = pts
                        .iter()
                        .filter(|p| p.max > p.min)
                        .map(|p| (tx(p.x), p.min, p.max))
                        .collect();
                    caps(&mut chart, &ends, c)?;
                }
            }
            XAxis::Categories(cats) => {
                let k = cats.len().max(1) as f64;
                let mut chart = ChartBuilder::on(&plot)
                    .caption(title, ("sans-serif", 16))
                    .margin(12)
                    .x_label_area_size(44)
                    .y_label_area_size(64)
                    .build_cartesian_2d(-0.5..(k - 0.5), ylo..yhi)
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .x_label_formatter(&|_| String::new())
                    .y_label_formatter(&|v| si(*v))
                    .label_style(label_style.clone())
                    .light_line_style(RGBColor(235, 235, 235))
                    .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
                    .draw()
                    .map_err(err)?;
                let n = series.len().max(1) as f64;
                let w = 0.8 / n;
                for (i, s) in series.iter().enumerate() {
                    let c = PALETTE[i % PALETTE.len()];
                    let off = -0.4 + w * i as f64;
                    chart
                        .draw_series(s.points.iter().map(|p| {
                            let base = ylo.max(0.0).min(yhi);
                            Rectangle::new(
                                [
                                    (p.x + off + w * 0.08, base),
                                    (p.x + off + w * 0.92, p.median),
                                ],
                                c.filled(),
                            )
                        }))
                        .map_err(err)?;
                    chart
                        .draw_series(
                            s.points
                                .iter()
                                .filter(|p| p.max > p.min)
                                .map(|p| range_bar(p.x + off + w / 2.0, p.min, p.max, BLACK)),
                        )
                        .map_err(err)?;
                    let ends: Vec<_> = s
                        .points
                        .iter()
                        .filter(|p| p.max > p.min)
                        .map(|p| (p.x + off + w / 2.0, p.min, p.max))
                        .collect();
                    caps(&mut chart, &ends, BLACK)?;
                }
                for (i, name) in cats.iter().enumerate() {
                    let (px, py) = chart.backend_coord(&(i as f64, ylo));
                    plot.draw(&Text::new(
                        name.clone(),
                        (px, py + 6),
                        label_style.pos(Pos::new(HPos::Center, VPos::Top)),
                    ))
                    .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
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
                        })
                    })
                    .collect(),
            })
            .collect();
        legend(&side, &named)?;
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
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|p| (p.x, p.median)),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new((p.x, p.median), 2, c.filled())),
                )
                .map_err(err)?;
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

    #[test]
    fn numeric_chart_has_text_labels_and_series() {
        let s = vec![Series {
            name: "framing=cobs".into(),
            points: vec![
                Point {
                    x: 64.0,
                    median: 10.0,
                    min: 9.0,
                    max: 11.0,
                },
                Point {
                    x: 4096.0,
                    median: 30.0,
                    min: 29.0,
                    max: 31.0,
                },
            ],
        }];
        let svg = metric_chart(
            "t",
            "block_size",
            "tx throughput (bytes/s)",
            &XAxis::Numeric { log: true },
            &s,
        )
        .unwrap();
        assert!(svg.contains("<text"));
        assert!(svg.contains("framing=cobs"));
        assert!(svg.contains("tx throughput (bytes/s)"));
    }
}
