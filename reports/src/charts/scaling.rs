//! Latency against a size, on log-log axes: queued-pop latency against queued rows.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::lines::{Axis, Dash, Marker, Panel, StyledLine, draw_panel};
use super::{Chart, DrawError, color, titled};

/// p50 and p99 against a size, one colour per variant.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingChart {
    pub title: String,
    pub caption: String,
    /// e.g. "queued rows".
    pub x_label: String,
    /// e.g. "pop latency (ms)".
    pub y_label: String,
    pub series: Vec<ScalingSeries>,
}

/// One variant's latency at each size.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingSeries {
    pub variant: String,
    pub points: Vec<ScalingPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingPoint {
    pub x: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Chart for ScalingChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let area = titled(root, &self.title)?;
        let p50: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().map(|p| (p.x, p.p50)).collect())
            .collect();
        let p99: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().map(|p| (p.x, p.p99)).collect())
            .collect();
        let mut lines = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            lines.push(StyledLine {
                name: format!("{} p50", s.variant),
                points: &p50[i],
                color: color(i),
                dash: Dash::Solid,
                marker: Marker::Circle,
            });
            lines.push(StyledLine {
                name: format!("{} p99", s.variant),
                points: &p99[i],
                color: color(i),
                dash: Dash::Dashed,
                marker: Marker::Triangle,
            });
        }
        draw_panel(
            &area,
            &Panel {
                caption: &self.caption,
                x: Axis {
                    label: &self.x_label,
                    log: true,
                    log_base: 10.0,
                    from_zero: false,
                },
                y: Axis {
                    label: &self.y_label,
                    log: true,
                    log_base: 10.0,
                    from_zero: false,
                },
                lines,
                marks: Vec::new(),
                x_names: None,
            },
        )
    }
}
