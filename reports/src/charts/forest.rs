//! A forest plot of A/B ratios: one row per compared metric, its ratio and 95% CI on a
//! log axis, the gate's tolerance band shaded, and Kestra's figure marked where the row
//! is the one its claim is about.
//!
//! A log axis, because ratios multiply: 0.02× and 0.04× differ by as much as 0.5× and
//! 1×, and a halving sits as far from 1 as a doubling. Rows are named in full, so the
//! label column grows, and the chart with it, to fit the longest name.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    CAPTION_SIZE, CHART_SIZE, Chart, DrawError, LABEL_SIZE, TICK_SIZE, format_number, titled,
};

/// Ratios of one scenario's comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestChart {
    pub title: String,
    /// Shown under the title, e.g. Kestra's figure and the outcome.
    pub caption: String,
    pub x_label: String,
    pub rows: Vec<ForestRow>,
}

/// One comparison: head over base for one metric at one sweep point.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    /// The metric named in full, with its sweep point and variants when they vary.
    pub label: String,
    pub ratio: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The gate's tolerance `t`: ratios within `1/(1+t) ..= 1+t` are no change. The
    /// band is shaded on the row.
    pub tolerance: Option<f64>,
    /// Kestra's figure as a ratio, marked on the row the claim is judged on.
    pub expected: Option<f64>,
    /// The gate's verdict; it picks the point's colour.
    pub verdict: String,
}

/// Height of one row, in pixels.
const ROW_HEIGHT: u32 = 28;
/// Room above and below the rows: title, caption, axis and legend.
const FRAME_HEIGHT: u32 = 170;
/// Width the plot keeps beside the labels.
const PLOT_WIDTH: u32 = 600;

const IMPROVED: RGBColor = RGBColor(0, 158, 115);
const REGRESSED: RGBColor = RGBColor(213, 94, 0);
const NEUTRAL: RGBColor = RGBColor(0, 114, 178);
const KESTRA: RGBColor = RGBColor(204, 121, 167);
const BAND: RGBColor = RGBColor(228, 228, 228);

impl ForestChart {
    /// Rows that can be drawn on a log axis; others (a zero or infinite ratio from a
    /// counter with a zero base) are left off and counted in the caption.
    fn drawable(&self) -> Vec<&ForestRow> {
        self.rows
            .iter()
            .filter(|r| r.ratio.is_finite() && r.ratio > 0.0)
            .collect()
    }

    /// The widest row label in pixels at the tick font size.
    fn label_width(&self) -> u32 {
        super::register_fonts();
        let font = ("sans-serif", TICK_SIZE).into_font();
        self.rows
            .iter()
            .filter_map(|r| font.box_size(&r.label).ok())
            .map(|(w, _)| w)
            .max()
            .unwrap_or(0)
    }

    /// The x range: every ratio, CI, band and mark, and 1, spanning at least 4×, with a
    /// margin either side.
    fn x_range(&self) -> (f64, f64) {
        let positive = |v: &f64| v.is_finite() && *v > 0.0;
        let mut values = vec![1.0];
        for r in self.drawable() {
            values.extend([r.ratio, r.ci_low, r.ci_high].into_iter().filter(positive));
            if let Some(t) = r.tolerance.filter(|t| t.is_finite() && *t >= 0.0) {
                values.extend([1.0 / (1.0 + t), 1.0 + t]);
            }
            values.extend(r.expected.filter(positive));
        }
        let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if hi / lo < 4.0 {
            let mid = (hi * lo).sqrt();
            (lo, hi) = (mid / 2.0, mid * 2.0);
        }
        let pad = (hi / lo).powf(0.08);
        (lo / pad, hi * pad)
    }
}

impl Chart for ForestChart {
    fn title(&self) -> &str {
        &self.title
    }

    /// Wide enough for every label in full beside the plot, tall enough for every row.
    fn size(&self) -> (u32, u32) {
        let rows = self.drawable().len() as u32;
        (
            CHART_SIZE.0.max(self.label_width() + 40 + PLOT_WIDTH),
            CHART_SIZE.1.max(FRAME_HEIGHT + rows * ROW_HEIGHT),
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let area = titled(root, &self.title)?;
        let rows = self.drawable();
        let n = rows.len().max(1) as f64;
        let (lo, hi) = self.x_range();
        let left_off = self.rows.len() - rows.len();
        let caption = if left_off > 0 {
            format!(
                "{} ({left_off} row(s) with no finite ratio left off)",
                self.caption
            )
        } else {
            self.caption.clone()
        };

        let mut chart = ChartBuilder::on(&area)
            .caption(&caption, ("sans-serif", CAPTION_SIZE))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(self.label_width() + 16)
            .build_cartesian_2d((lo..hi).log_scale().with_key_points(ticks(lo, hi)), 0.0..n)?;
        let x_formatter = |x: &f64| format!("{}×", format_number(*x));
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(&self.x_label)
            .axis_desc_style(("sans-serif", LABEL_SIZE))
            .label_style(("sans-serif", TICK_SIZE))
            .x_label_formatter(&x_formatter)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;

        // The first row at the top.
        let y = |i: usize| n - i as f64 - 0.5;
        // Marks keep their pixel size however tall a row is: `px(p)` is p pixels in rows.
        let row_px =
            (chart.backend_coord(&(lo, 0.0)).1 - chart.backend_coord(&(lo, 1.0)).1).max(1) as f64;
        let px = |p: f64| (p / row_px).min(0.45);

        let mut band_labelled = false;
        for (i, r) in rows.iter().enumerate() {
            let Some(t) = r.tolerance.filter(|t| t.is_finite() && *t >= 0.0) else {
                continue;
            };
            let rect = Rectangle::new(
                [
                    (1.0 / (1.0 + t), y(i) - px(14.0)),
                    (1.0 + t, y(i) + px(14.0)),
                ],
                BAND.filled(),
            );
            let series = chart.draw_series(std::iter::once(rect))?;
            if !band_labelled {
                band_labelled = true;
                series
                    .label("gate tolerance (no change)")
                    .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], BAND.filled()));
            }
        }

        chart.draw_series(std::iter::once(plotters::element::DashedPathElement::new(
            vec![(1.0, 0.0), (1.0, n)],
            6,
            4,
            RGBColor(90, 90, 90).stroke_width(1),
        )))?;

        let mut ratio_labelled = false;
        for (i, r) in rows.iter().enumerate() {
            let color = match r.verdict.as_str() {
                "improved" => IMPROVED,
                "regressed" => REGRESSED,
                _ => NEUTRAL,
            };
            let (cl, ch) = (r.ci_low.min(r.ratio), r.ci_high.max(r.ratio));
            let cl = if cl.is_finite() && cl > 0.0 {
                cl
            } else {
                r.ratio
            };
            let ch = if ch.is_finite() { ch } else { r.ratio };
            let line = color.stroke_width(2);
            let cap = px(7.0);
            chart.draw_series([
                PathElement::new(vec![(cl, y(i)), (ch, y(i))], line),
                PathElement::new(vec![(cl, y(i) - cap), (cl, y(i) + cap)], line),
                PathElement::new(vec![(ch, y(i) - cap), (ch, y(i) + cap)], line),
            ])?;
            let point = chart.draw_series(std::iter::once(Circle::new(
                (r.ratio, y(i)),
                5,
                color.filled(),
            )))?;
            if !ratio_labelled {
                ratio_labelled = true;
                point.label("ratio head/base, 95% CI").legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], NEUTRAL.stroke_width(2))
                });
            }
        }

        let mut kestra_labelled = false;
        for (i, r) in rows.iter().enumerate() {
            let Some(e) = r.expected.filter(|e| e.is_finite() && *e > 0.0) else {
                continue;
            };
            let series = chart.draw_series(std::iter::once(TriangleMarker::new(
                (e, y(i) + px(13.0)),
                7,
                KESTRA.filled(),
            )))?;
            if !kestra_labelled {
                kestra_labelled = true;
                series
                    .label(format!("Kestra's figure ({})", ratio_text(e)))
                    .legend(|(x, y)| TriangleMarker::new((x + 7, y), 7, KESTRA.filled()));
            }
        }

        // Row labels, right-aligned against the plot and centred on their row;
        // plotters' own y labels would fall at round numbers, not at row centres.
        let font = ("sans-serif", TICK_SIZE).into_font().color(&BLACK);
        let (ox, oy) = area.get_base_pixel();
        for (i, r) in rows.iter().enumerate() {
            let (x, row_y) = chart.backend_coord(&(lo, y(i)));
            let (w, h) = area.estimate_text_size(&r.label, &font)?;
            area.draw_text(
                &r.label,
                &font,
                (x - ox - w as i32 - 10, row_y - oy - h as i32 / 2),
            )?;
        }

        if band_labelled || ratio_labelled || kestra_labelled {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .legend_area_size(22)
                .label_font(("sans-serif", TICK_SIZE))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(180, 180, 180))
                .draw()?;
        }
        Ok(())
    }
}

/// Ticks at 1, 2 and 5 times each power of ten within `lo..=hi`; finer steps on a short
/// span, and the powers of ten alone when 1-2-5 would crowd the axis: plotters' own log ticks fall only on
/// powers of ten, which leaves a span such as 0.03× to 1.5× with two labels.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
    let within = |v: &f64| *v >= lo && *v <= hi;
    let at = |steps: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|d| steps.iter().map(move |m| m * 10f64.powi(d)))
            .filter(within)
            .collect()
    };
    let fine = at(&[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]);
    let dense = at(&[1.0, 2.0, 5.0]);
    if dense.len() < 5 {
        fine
    } else if dense.len() <= 12 {
        dense
    } else {
        at(&[1.0])
    }
}

/// `0.85×`, with two significant decimals for ratios near 1.
fn ratio_text(ratio: f64) -> String {
    format!("{}×", format_number(ratio))
}
