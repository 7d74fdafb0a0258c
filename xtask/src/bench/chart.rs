//! An SVG bar chart of a suite's ratios, with a reference line at 1.0.

use super::report::SuiteReport;
use super::stats::Stat;
use anyhow::{Result, anyhow};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// One horizontal bar: a label and a ratio stat.
struct Bar {
    label: String,
    series: usize,
    stat: Stat,
}

const SERIES: [(&str, RGBColor); 2] = [
    ("ratio of the metric", RGBColor(0x3b, 0x6e, 0xc4)),
    ("ratio per server CPU-second", RGBColor(0x3a, 0xa6, 0x5b)),
];

fn bars(r: &SuiteReport) -> Vec<Bar> {
    let mut out = Vec::new();
    // Name the metric only when there are two bars per case to tell apart.
    let two = r.cases.iter().any(|c| c.ratio_per_cpu.median.is_some());
    for c in &r.cases {
        let name = format!("{} vs {}", c.info.name, c.peer.name);
        if c.ratio.median.is_some() {
            out.push(Bar {
                label: if two {
                    format!("{name}: {}", c.info.metric)
                } else {
                    name.clone()
                },
                series: 0,
                stat: c.ratio.clone(),
            });
        }
        if c.ratio_per_cpu.median.is_some() {
            out.push(Bar {
                label: format!("{name}: per CPU-s"),
                series: 1,
                stat: c.ratio_per_cpu.clone(),
            });
        }
    }
    out
}

/// The x axis: linear from 0, or log10 when the ratios span more than 20x.
struct Axis {
    log: bool,
    /// Low end, in axis units (log10 of the ratio when `log`).
    lo: f64,
    /// High end, in axis units.
    hi: f64,
}

impl Axis {
    fn fit(bars: &[Bar]) -> Self {
        let values = bars
            .iter()
            .flat_map(|b| [b.stat.min, b.stat.median, b.stat.max])
            .flatten();
        let (min, max) = values
            .filter(|v| *v > 0.0)
            .fold((1.0_f64, 1.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if max / min > 20.0 {
            let (lo, hi) = ((min / 1.5).min(0.5), (max * 10.0).max(2.0));
            Axis {
                log: true,
                lo: lo.log10(),
                hi: hi.log10(),
            }
        } else {
            Axis {
                log: false,
                lo: 0.0,
                hi: max.max(1.25) * 1.15,
            }
        }
    }

    /// A ratio in axis units.
    fn t(&self, ratio: f64) -> f64 {
        if !self.log {
            ratio
        } else if ratio > 0.0 {
            ratio.log10().max(self.lo)
        } else {
            self.lo
        }
    }

    /// The tick label at axis position `x`.
    fn label(&self, x: f64) -> String {
        let ratio = if self.log { 10f64.powf(x) } else { x };
        format!("{}×", short(ratio))
    }
}

/// A ratio with about three significant digits: 0.0123, 0.98, 12.3, 17247.
fn short(x: f64) -> String {
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else if x >= 0.1 {
        2
    } else {
        4
    };
    format!("{x:.digits$}")
}

/// Renders the ratios as a horizontal bar chart (median bar, min–max whisker).
pub fn svg(r: &SuiteReport) -> Result<String> {
    let bars = bars(r);
    let n = bars.len().max(1);
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(10);
    let label_width = (longest as u32 * 7 + 16).clamp(120, 480);
    let (width, height) = (label_width + 640, 110 + 34 * n as u32);
    let axis = Axis::fit(&bars);
    let mut out = String::new();
    {
        let whole = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        whole.fill(&WHITE).map_err(err)?;
        let (root, legend) = whole.split_vertically(height - 30);
        let kind = if r.quick { " (quick smoke run)" } else { "" };
        let title = format!("{}{kind}: ours vs peer, > 1 means ours is better", r.suite);
        let n = n as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_width)
            // Integer ranges are inclusive in plotters: 0..n-1 gives n rows.
            .build_cartesian_2d(axis.lo..axis.hi, (0..n - 1).into_segmented())
            .map_err(err)?;
        // Bar i is drawn at row n-1-i so the first case is on top.
        let row = |i: usize| n - 1 - i as i32;
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        let formatter = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(y) | SegmentValue::Exact(y) => usize::try_from(n - 1 - y)
                .ok()
                .and_then(|i| labels.get(i).cloned())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&formatter)
            .x_label_formatter(&|x| axis.label(*x))
            .x_desc(if axis.log {
                "ratio, log scale (median bar, min–max whisker)"
            } else {
                "ratio (median bar, min–max whisker)"
            })
            .draw()
            .map_err(err)?;
        if bars.is_empty() {
            root.draw(&Text::new(
                "no ratios measured",
                (label_width as i32 + 40, 60),
                ("sans-serif", 16),
            ))
            .map_err(err)?;
        }
        for (s, (_, color)) in SERIES.iter().enumerate() {
            let mine: Vec<(usize, &Bar)> = bars
                .iter()
                .enumerate()
                .filter(|(_, b)| b.series == s)
                .collect();
            if mine.is_empty() {
                continue;
            }
            chart
                .draw_series(mine.iter().map(|(i, b)| {
                    let y = row(*i);
                    let median = axis.t(b.stat.median.unwrap_or(0.0));
                    let mut rect = Rectangle::new(
                        [
                            (axis.lo, SegmentValue::Exact(y)),
                            (median, SegmentValue::Exact(y + 1)),
                        ],
                        color.filled(),
                    );
                    rect.set_margin(5, 5, 0, 0);
                    rect
                }))
                .map_err(err)?;
            chart
                .draw_series(mine.iter().map(|(i, b)| {
                    let y = SegmentValue::CenterOf(row(*i));
                    let (lo, hi) = (b.stat.min.unwrap_or(0.0), b.stat.max.unwrap_or(0.0));
                    PathElement::new(
                        [(axis.t(lo), y.clone()), (axis.t(hi), y)],
                        BLACK.stroke_width(2),
                    )
                }))
                .map_err(err)?;
            chart
                .draw_series(mine.iter().map(|(i, b)| {
                    let median = b.stat.median.unwrap_or(0.0);
                    let right = axis.t(b.stat.max.unwrap_or(median).max(median));
                    EmptyElement::at((right, SegmentValue::CenterOf(row(*i))))
                        + Text::new(format!("{}×", short(median)), (6, -7), ("sans-serif", 13))
                }))
                .map_err(err)?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                [
                    (axis.t(1.0), SegmentValue::Exact(0)),
                    (axis.t(1.0), SegmentValue::Last),
                ],
                RED.stroke_width(2),
            )))
            .map_err(err)?;
        draw_legend(&legend, label_width as i32, &bars)?;
        whole.present().map_err(err)?;
    }
    Ok(out)
}

/// The legend, in a strip under the chart so it never hides a bar.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x0: i32,
    bars: &[Bar],
) -> Result<()> {
    let font = ("sans-serif", 13);
    let mut x = x0;
    for (s, (name, color)) in SERIES.iter().enumerate() {
        if !bars.iter().any(|b| b.series == s) {
            continue;
        }
        area.draw(&Rectangle::new([(x, 8), (x + 14, 20)], color.filled()))
            .map_err(err)?;
        area.draw(&Text::new(*name, (x + 20, 8), font))
            .map_err(err)?;
        x += 40 + 7 * name.len() as i32;
    }
    area.draw(&PathElement::new(
        [(x, 14), (x + 14, 14)],
        RED.stroke_width(2),
    ))
    .map_err(err)?;
    area.draw(&Text::new("1.0 = same as the peer", (x + 20, 8), font))
        .map_err(err)?;
    Ok(())
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::sample;

    #[test]
    fn svg_has_bars_labels_and_reference_line() {
        let svg = svg(&sample()).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("echo 64 B, 1 conn vs tokio: throughput"));
        assert!(svg.contains("1.50×") && svg.contains("2.00×"));
        assert!(!svg.contains("log scale"));
        assert!(svg.contains("same as the peer"));
    }

    #[test]
    fn wide_spread_uses_log_scale() {
        let mut r = sample();
        r.cases[0].ratio = Stat::new(vec![17_000.0]);
        r.cases[0].ratio_per_cpu = Stat::new(vec![0.02]);
        let svg = svg(&r).unwrap();
        assert!(svg.contains("log scale") && svg.contains("17000×") && svg.contains("0.0200×"));
        assert_eq!(short(0.98), "0.98");
    }

    #[test]
    fn svg_without_ratios() {
        let mut r = sample();
        r.cases.clear();
        assert!(svg(&r).unwrap().contains("no ratios measured"));
    }
}
