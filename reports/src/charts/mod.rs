//! Charts, drawn with plotters from plain data structs.
//!
//! Each chart is a struct of plain numbers and labels that knows nothing of
//! `results.json`; the report module builds them from the results. Every chart
//! implements [`Chart`] and renders to SVG with [`render_svg`] or to PNG with
//! [`render_png`].
//!
//! | chart | shows |
//! |---|---|
//! | [`ForestChart`] | A/B ratios with 95% CIs on a log axis, one row per compared metric, tolerance shaded, Kestra's figure marked |
//! | [`ScalingChart`] | latency p50/p99 against a size such as queued rows, log-log |
//! | [`SweepChart`] | one panel per metric against a swept parameter such as threads |
//! | [`RateChart`] | latency percentiles against offered rate, saturation marked |
//! | [`TrendChart`] | one metric across runs, change points marked |
//!
//! PNG text is drawn with the DejaVu Sans font shipped in `reports/assets/` and
//! compiled into the crate, so PNGs render the same on a machine with no font
//! packages at all. SVG text names the `sans-serif` family and is drawn by the
//! viewer.

mod forest;
mod lines;
mod rate;
mod scaling;
mod sweep;
mod trend;

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

pub use forest::{ForestChart, ForestRow};
pub use rate::{PublishedLine, RateChart, RatePoint, RateSeries, Saturation};
pub use scaling::{ScalingChart, ScalingPoint, ScalingSeries};
pub use sweep::{SweepChart, SweepPanel};
pub use trend::{TrendChart, TrendPoint};

/// A line of (x, y) points with a legend name, as several charts use.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Pixel size of a chart: 16:9, large enough for a PR comment to read. A chart may ask
/// for more ([`Chart::size`]).
pub const CHART_SIZE: (u32, u32) = (960, 540);

/// DejaVu Sans 2.37 (Debian `fonts-dejavu-core`); licence in `assets/`.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// A chart that can be drawn on any plotters backend.
pub trait Chart {
    /// The chart's title, also used to name it in errors.
    fn title(&self) -> &str;

    /// Its size in pixels; [`CHART_SIZE`] unless its content needs more room.
    fn size(&self) -> (u32, u32) {
        CHART_SIZE
    }

    /// Draws the chart over the whole of `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError>;
}

/// A failure inside plotters, reduced to its message so that the chart code
/// can stay generic over the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawError(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

impl DrawError {
    fn into_error(self, chart: &str) -> Error {
        Error::Chart {
            chart: chart.to_string(),
            message: self.0,
        }
    }
}

/// Makes the shipped font the `sans-serif` family, once per process.
///
/// Both backends need it: plotters measures text with it to lay out labels,
/// even when the SVG then leaves drawing the glyphs to the viewer.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS).is_err() {
            // The bytes are compiled in and checked by a test, so this is a build
            // defect rather than something a user can cause.
            panic!("the font compiled into the reports crate is not a valid font");
        }
    });
}

/// Renders a chart to an SVG document.
pub fn render_svg(chart: &impl Chart) -> Result<String> {
    register_fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present().map_err(DrawError::from))
            .map_err(|e| e.into_error(chart.title()))?;
    }
    Ok(svg)
}

/// Renders a chart to PNG bytes.
pub fn render_png(chart: &impl Chart) -> Result<Vec<u8>> {
    register_fonts();
    let (width, height) = chart.size();
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present().map_err(DrawError::from))
            .map_err(|e| e.into_error(chart.title()))?;
    }
    encode_png(&rgb, width, height).map_err(|e| Error::Chart {
        chart: chart.title().to_string(),
        message: format!("PNG encoding failed: {e}"),
    })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(bytes)
}

/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(0, 0, 0),
];

fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Font sizes, in pixels, shared by every chart so they read as one set.
const TITLE_SIZE: u32 = 22;
const CAPTION_SIZE: u32 = 17;
const LABEL_SIZE: u32 = 15;
const TICK_SIZE: u32 = 13;

/// Fills the background and draws the title, returning the area below it.
fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, DrawError> {
    root.fill(&WHITE)?;
    if title.is_empty() {
        return Ok(root.margin(10, 0, 0, 0));
    }
    Ok(root.titled(title, ("sans-serif", TITLE_SIZE).into_font().color(&BLACK))?)
}

/// A tick label with at most three significant digits and k/M/G for large values.
pub fn format_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{}G", trim(value / 1e9))
    } else if magnitude >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if magnitude >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

/// Three significant digits, trailing zeros dropped.
fn trim(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let digits = value.abs().log10().floor() as i32;
    let decimals = (2 - digits).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The smallest and largest finite value, widened when they are equal so that
/// an axis always has a span.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_short() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(1.25), "1.25");
        assert_eq!(format_number(0.00123), "0.00123");
        assert_eq!(format_number(123.4), "123");
        assert_eq!(format_number(1500.0), "1.5k");
        assert_eq!(format_number(15000.0), "15k");
        assert_eq!(format_number(1_000_000.0), "1M");
        assert_eq!(format_number(2.5e9), "2.5G");
        assert_eq!(format_number(-0.5), "-0.5");
    }

    #[test]
    fn bounds_always_have_a_span() {
        assert_eq!(bounds([3.0, 1.0, 2.0].into_iter()), Some((1.0, 3.0)));
        assert_eq!(bounds([2.0].into_iter()), Some((1.8, 2.2)));
        assert_eq!(bounds([0.0].into_iter()), Some((-1.0, 1.0)));
        assert_eq!(bounds([f64::NAN].into_iter()), None);
    }

    #[test]
    fn the_shipped_font_is_valid() {
        // register_fonts panics on invalid bytes.
        register_fonts();
        let size = ("sans-serif", 20)
            .into_font()
            .box_size("flowbench")
            .unwrap();
        assert!(size.0 > 50 && size.1 > 10, "{size:?}");
    }
}
