//! A/B bars with 95% confidence-interval whiskers.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{CAPTION_SIZE, Chart, DrawError, LABEL_SIZE, TICK_SIZE, color, format_number, titled};

/// Bars for one claim: a group per compared metric, a bar per variant.
#[derive(Debug, Clone, PartialEq)]
pub struct AbChart {
    pub title: String,
    /// Shown under the title, e.g. Kestra's figure and the verdict.
    pub caption: String,
    pub y_label: String,
    pub groups: Vec<AbGroup>,
    /// A dashed horizontal line, e.g. at 1.0 when values are normalised to the base.
    pub reference: Option<f64>,
}

/// The bars of one metric at one sweep point.
#[derive(Debug, Clone, PartialEq)]
pub struct AbGroup {
    pub label: String,
    pub bars: Vec<AbBar>,
}

/// One variant's median with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct AbBar {
    pub variant: String,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Share of a group's width taken by its bars; the rest separates groups.
const GROUP_FILL: f64 = 0.7;

impl Chart for AbChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawError> {
        let area = titled(root, &self.title)?;
        // Variants in order of first appearance, so each keeps one colour throughout.
        let mut variants: Vec<&str> = Vec::new();
        for bar in self.groups.iter().flat_map(|g| &g.bars) {
            if !variants.contains(&bar.variant.as_str()) {
                variants.push(&bar.variant);
            }
        }
        let top = self
            .groups
            .iter()
            .flat_map(|g| &g.bars)
            .map(|b| b.ci_high.max(b.value))
            .chain(self.reference)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        // Headroom for the legend in the upper right.
        let top = if top > 0.0 { top * 1.3 } else { 1.0 };
        let groups = self.groups.len().max(1) as f64;

        let mut chart = ChartBuilder::on(&area)
            .caption(&self.caption, ("sans-serif", CAPTION_SIZE))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..groups, 0.0..top)?;
        let y_formatter = |y: &f64| format_number(*y);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(&self.y_label)
            .axis_desc_style(("sans-serif", LABEL_SIZE))
            .label_style(("sans-serif", TICK_SIZE))
            .y_labels(6)
            .y_label_formatter(&y_formatter)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .max_light_lines(4)
            .draw()?;

        let slot = GROUP_FILL / variants.len().max(1) as f64;
        for (vi, variant) in variants.iter().enumerate() {
            let fill = color(vi);
            let bars: Vec<(f64, &AbBar)> = self
                .groups
                .iter()
                .enumerate()
                .filter_map(|(gi, g)| {
                    g.bars.iter().find(|b| b.variant == *variant).map(|b| {
                        let left = gi as f64 + (1.0 - GROUP_FILL) / 2.0 + vi as f64 * slot;
                        (left, b)
                    })
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|(left, b)| {
                    Rectangle::new(
                        [(*left + slot * 0.08, 0.0), (*left + slot * 0.92, b.value)],
                        fill.mix(0.85).filled(),
                    )
                }))?
                .label(variant.to_string())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill.filled()));
            // Whiskers: a vertical line over the interval with caps at both ends.
            let whisker = BLACK.stroke_width(2);
            for (left, b) in &bars {
                let mid = left + slot / 2.0;
                let cap = slot * 0.15;
                chart.draw_series([
                    PathElement::new(vec![(mid, b.ci_low), (mid, b.ci_high)], whisker),
                    PathElement::new(vec![(mid - cap, b.ci_low), (mid + cap, b.ci_low)], whisker),
                    PathElement::new(
                        vec![(mid - cap, b.ci_high), (mid + cap, b.ci_high)],
                        whisker,
                    ),
                ])?;
            }
        }

        if let Some(reference) = self.reference {
            chart.draw_series(std::iter::once(plotters::element::DashedPathElement::new(
                vec![(0.0, reference), (groups, reference)],
                6,
                4,
                RGBColor(90, 90, 90).stroke_width(1),
            )))?;
        }

        // Group labels under each group, centred; plotters' own x labels would
        // fall at round numbers rather than at group centres.
        let label_font = ("sans-serif", TICK_SIZE).into_font().color(&BLACK);
        let group_width = chart.backend_coord(&(1.0, 0.0)).0 - chart.backend_coord(&(0.0, 0.0)).0;
        for (gi, group) in self.groups.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(gi as f64 + 0.5, 0.0));
            let text = fit(&group.label, group_width - 8, &label_font, &area);
            let (w, _) = area.estimate_text_size(&text, &label_font)?;
            let (ox, oy) = area.get_base_pixel();
            area.draw_text(&text, &label_font, (x - ox - w as i32 / 2, y - oy + 10))?;
        }

        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .legend_area_size(22)
            .label_font(("sans-serif", TICK_SIZE))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
        Ok(())
    }
}

/// Shortens `text` with an ellipsis until it fits in `width` pixels.
fn fit<DB: DrawingBackend>(
    text: &str,
    width: i32,
    font: &TextStyle,
    area: &DrawingArea<DB, Shift>,
) -> String {
    let fits = |t: &str| {
        area.estimate_text_size(t, font)
            .map(|(w, _)| (w as i32) <= width)
            .unwrap_or(true)
    };
    if fits(text) {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().collect::<String>() + "…";
        if fits(&candidate) {
            return candidate;
        }
    }
    String::new()
}
