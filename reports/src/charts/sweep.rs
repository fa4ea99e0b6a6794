//! Metrics against a swept parameter: throughput and peak RSS against worker threads.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::lines::{Axis, Dash, Marker, Panel, StyledLine, draw_panel};
use super::{Chart, DrawError, Line, color, titled};

/// One panel per metric, stacked, sharing the x parameter; one line per variant.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepChart {
    pub title: String,
    /// e.g. "worker threads".
    pub x_label: String,
    /// Draw x on a log scale, for doubling sweeps such as 1, 2, 8, 32, 128 threads.
    pub x_log: bool,
    pub panels: Vec<SweepPanel>,
}

/// One metric's lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPanel {
    /// e.g. "throughput (task runs/s)".
    pub y_label: String,
    pub lines: Vec<Line>,
}

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

impl Chart for SweepChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let area = titled(root, &self.title)?;
        let cells = area.split_evenly((self.panels.len().max(1), 1));
        for (panel, cell) in self.panels.iter().zip(&cells) {
            let lines = panel
                .lines
                .iter()
                .enumerate()
                .map(|(i, line)| StyledLine {
                    name: line.name.clone(),
                    points: &line.points,
                    color: color(i),
                    dash: Dash::Solid,
                    marker: MARKERS[i % MARKERS.len()],
                })
                .collect();
            draw_panel(
                cell,
                &Panel {
                    caption: "",
                    x: Axis {
                        label: &self.x_label,
                        log: self.x_log,
                        log_base: 2.0,
                        from_zero: true,
                    },
                    y: Axis {
                        label: &panel.y_label,
                        log: false,
                        log_base: 10.0,
                        from_zero: true,
                    },
                    lines,
                    marks: Vec::new(),
                    x_names: None,
                },
            )?;
        }
        Ok(())
    }
}
