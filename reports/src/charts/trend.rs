//! One metric across runs, with the change points the harness found.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::lines::{Axis, Dash, Marker, Panel, StyledLine, VerticalMark, draw_panel};
use super::{Chart, DrawError, color, titled};

/// A history trend. Change-point detection is the harness's job; this only draws
/// the indices it is given.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendChart {
    pub title: String,
    pub caption: String,
    pub y_label: String,
    /// One per run, oldest first.
    pub points: Vec<TrendPoint>,
    /// Indices into `points`: the first run after each shift.
    pub change_points: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The x tick label, e.g. a short git sha.
    pub label: String,
    pub value: f64,
}

impl Chart for TrendChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let area = titled(root, &self.title)?;
        let points: Vec<(f64, f64)> = self
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i as f64, p.value))
            .collect();
        let names: Vec<String> = self.points.iter().map(|p| p.label.clone()).collect();
        let marks = self
            .change_points
            .iter()
            .filter_map(|&i| self.points.get(i).map(|p| (i, p)))
            // Halfway between the last run before the shift and the first after it.
            .map(|(i, p)| VerticalMark {
                x: i as f64 - 0.5,
                label: format!("change at {}", p.label),
                color: RGBColor(200, 30, 30),
            })
            .collect();
        draw_panel(
            &area,
            &Panel {
                caption: &self.caption,
                x: Axis {
                    label: "run",
                    log: false,
                    log_base: 10.0,
                    from_zero: false,
                },
                y: Axis {
                    label: &self.y_label,
                    log: false,
                    log_base: 10.0,
                    from_zero: true,
                },
                lines: vec![StyledLine {
                    name: "median".to_string(),
                    points: &points,
                    color: color(0),
                    dash: Dash::Solid,
                    marker: Marker::Circle,
                }],
                marks,
                x_names: Some(&names),
            },
        )
    }
}
