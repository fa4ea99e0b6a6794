//! Latency percentiles against offered rate, for the open-loop end-to-end runs.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::lines::{Axis, Dash, Marker, Panel, StyledLine, VerticalMark, draw_panel};
use super::{Chart, DrawError, color, format_number, titled};

/// Percentile lines per series against offered rate, with the saturation point.
#[derive(Debug, Clone, PartialEq)]
pub struct RateChart {
    pub title: String,
    pub caption: String,
    /// e.g. "offered rate (executions/min)".
    pub x_label: String,
    /// e.g. "latency (ms)".
    pub y_label: String,
    pub series: Vec<RateSeries>,
    /// Saturation points found, at most one per series.
    pub saturation: Vec<Saturation>,
    /// Published figures drawn beside the run's (Kestra's own benchmark results), in the
    /// chart's units.
    pub published: Vec<PublishedLine>,
}

/// A published series: points, a ceiling, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedLine {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub ceiling: Option<f64>,
}

/// One variant or flow's percentiles at each offered rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSeries {
    pub name: String,
    pub points: Vec<RatePoint>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePoint {
    pub rate: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

/// The highest rate a series sustained; marked with a vertical line.
#[derive(Debug, Clone, PartialEq)]
pub struct Saturation {
    pub rate: f64,
    /// The series it belongs to.
    pub label: String,
}

/// Published figures are drawn in grey, apart from the run's colours.
const PUBLISHED: RGBColor = RGBColor(90, 90, 90);

impl Chart for RateChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let area = titled(root, &self.title)?;
        type Pick = fn(&RatePoint) -> f64;
        let percentiles: [(&str, Pick, Dash, Marker); 4] = [
            ("p50", |p| p.p50, Dash::Solid, Marker::Circle),
            ("p90", |p| p.p90, Dash::Dashed, Marker::Square),
            ("p99", |p| p.p99, Dash::Dashed, Marker::Triangle),
            ("p99.9", |p| p.p999, Dash::Dotted, Marker::Cross),
        ];
        let data: Vec<Vec<Vec<(f64, f64)>>> = self
            .series
            .iter()
            .map(|s| {
                percentiles
                    .iter()
                    .map(|(_, pick, _, _)| s.points.iter().map(|p| (p.rate, pick(p))).collect())
                    .collect()
            })
            .collect();
        let mut lines = Vec::new();
        for (si, s) in self.series.iter().enumerate() {
            for (pi, (name, _, dash, marker)) in percentiles.iter().enumerate() {
                lines.push(StyledLine {
                    name: format!("{} {name}", s.name),
                    points: &data[si][pi],
                    color: color(si),
                    dash: *dash,
                    marker: *marker,
                });
            }
        }
        for p in self.published.iter().filter(|p| !p.points.is_empty()) {
            lines.push(StyledLine {
                name: p.label.clone(),
                points: &p.points,
                color: PUBLISHED,
                dash: Dash::Dotted,
                marker: Marker::Cross,
            });
        }
        let marks = self
            .saturation
            .iter()
            .map(|s| VerticalMark {
                x: s.rate,
                label: format!("{}: saturates at {}", s.label, format_number(s.rate)),
                color: RGBColor(200, 30, 30),
            })
            .chain(self.published.iter().filter_map(|p| {
                p.ceiling.map(|x| VerticalMark {
                    x,
                    label: format!("{}: {}", p.label, format_number(x)),
                    color: PUBLISHED,
                })
            }))
            .collect();
        draw_panel(
            &area,
            &Panel {
                caption: &self.caption,
                x: Axis {
                    label: &self.x_label,
                    log: false,
                    log_base: 10.0,
                    from_zero: true,
                },
                y: Axis {
                    label: &self.y_label,
                    log: true,
                    log_base: 10.0,
                    from_zero: false,
                },
                lines,
                marks,
                x_names: None,
            },
        )
    }
}
