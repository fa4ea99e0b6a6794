//! One panel of lines on linear or logarithmic axes: the drawing the scaling,
//! sweep and rate charts share.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{CAPTION_SIZE, DrawError, LABEL_SIZE, TICK_SIZE, bounds, format_number};

/// How a line is stroked; charts use it to tell percentiles apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Dash {
    Solid,
    Dashed,
    Dotted,
}

/// The mark drawn at each data point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// A line as drawn: data plus style.
pub(crate) struct StyledLine<'a> {
    pub name: String,
    pub points: &'a [(f64, f64)],
    pub color: RGBColor,
    pub dash: Dash,
    pub marker: Marker,
}

/// A labelled vertical line, such as a saturation point or a change point.
pub(crate) struct VerticalMark {
    pub x: f64,
    pub label: String,
    pub color: RGBColor,
}

pub(crate) struct Axis<'a> {
    pub label: &'a str,
    pub log: bool,
    /// Base of a log axis: 2 puts ticks on doubling sweeps (1, 2, 4 … 128 threads).
    pub log_base: f64,
    /// Start a linear axis at zero, so that bar-like quantities are not exaggerated.
    pub from_zero: bool,
}

pub(crate) struct Panel<'a> {
    pub caption: &'a str,
    pub x: Axis<'a>,
    pub y: Axis<'a>,
    pub lines: Vec<StyledLine<'a>>,
    pub marks: Vec<VerticalMark>,
    /// Labels for integer x positions (run index → git sha), instead of numbers.
    pub x_names: Option<&'a [String]>,
}

/// An axis range: padded so that points do not sit on the frame.
enum AxisRange {
    Linear(std::ops::Range<f64>),
    Log(std::ops::Range<f64>),
}

fn axis_range(axis: &Axis, values: impl Iterator<Item = f64>) -> AxisRange {
    if axis.log {
        let (lo, hi) = bounds(values.filter(|v| *v > 0.0)).unwrap_or((1.0, 10.0));
        AxisRange::Log(lo / 1.3..hi * 1.3)
    } else {
        let (mut lo, hi) = bounds(values).unwrap_or((0.0, 1.0));
        if axis.from_zero && lo > 0.0 {
            lo = 0.0;
        }
        let pad = (hi - lo) * 0.05;
        let lo = if axis.from_zero && lo == 0.0 {
            0.0
        } else {
            lo - pad
        };
        AxisRange::Linear(lo..hi + pad)
    }
}

pub(crate) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), DrawError> {
    let xs = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(panel.marks.iter().map(|m| m.x));
    let ys = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1));
    // Each combination of scales is its own coordinate type in plotters.
    match (axis_range(&panel.x, xs), axis_range(&panel.y, ys)) {
        (AxisRange::Linear(x), AxisRange::Linear(y)) => draw_in(area, panel, x, y),
        (AxisRange::Linear(x), AxisRange::Log(y)) => {
            draw_in(area, panel, x, y.log_scale().base(panel.y.log_base))
        }
        (AxisRange::Log(x), AxisRange::Linear(y)) => {
            draw_in(area, panel, x.log_scale().base(panel.x.log_base), y)
        }
        (AxisRange::Log(x), AxisRange::Log(y)) => draw_in(
            area,
            panel,
            x.log_scale().base(panel.x.log_base),
            y.log_scale().base(panel.y.log_base),
        ),
    }
}

fn draw_in<DB, XR, YR>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    x_range: XR,
    y_range: YR,
) -> Result<(), DrawError>
where
    DB: DrawingBackend,
    XR: AsRangedCoord<Value = f64>,
    YR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", CAPTION_SIZE))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, y_range)?;

    let x_names = panel.x_names;
    let x_formatter = |x: &f64| match x_names {
        Some(names) if x.fract() == 0.0 && *x >= 0.0 => {
            names.get(*x as usize).cloned().unwrap_or_default()
        }
        Some(_) => String::new(),
        None => format_number(*x),
    };
    let y_formatter = |y: &f64| format_number(*y);
    chart
        .configure_mesh()
        .x_desc(panel.x.label)
        .y_desc(panel.y.label)
        .axis_desc_style(("sans-serif", LABEL_SIZE))
        .label_style(("sans-serif", TICK_SIZE))
        .x_labels(x_names.map_or(8, |n| n.len().min(12)))
        // Log axes label only the powers of the base; ask for more so that a
        // one-decade axis still gets a few labels.
        .y_labels(if panel.y.log { 10 } else { 6 })
        .x_label_formatter(&x_formatter)
        .y_label_formatter(&y_formatter)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .max_light_lines(4)
        .draw()?;

    let (_, y_top) = (chart.y_range().start, chart.y_range().end);
    let y_bottom = chart.y_range().start;
    for (index, mark) in panel.marks.iter().enumerate() {
        let style = mark.color.stroke_width(2);
        chart.draw_series(std::iter::once(DashedPathElement::new(
            vec![(mark.x, y_bottom), (mark.x, y_top)],
            6,
            4,
            style,
        )))?;
        // Stacked, so that marks at nearby x keep readable labels, and on white,
        // so that a label crossing another mark's line stays legible.
        let font = ("sans-serif", TICK_SIZE).into_font().color(&mark.color);
        let (w, h) = area.estimate_text_size(&mark.label, &font)?;
        let dy = 4 + 18 * index as i32;
        chart.draw_series(std::iter::once(
            EmptyElement::at((mark.x, y_top))
                + Rectangle::new(
                    [(3, dy - 1), (7 + w as i32, dy + h as i32 + 1)],
                    WHITE.mix(0.9).filled(),
                )
                + Text::new(mark.label.clone(), (5, dy), font),
        ))?;
    }

    for line in &panel.lines {
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            // A log axis has no place for zero or negative values.
            .filter(|(x, y)| {
                x.is_finite()
                    && y.is_finite()
                    && (!panel.x.log || *x > 0.0)
                    && (!panel.y.log || *y > 0.0)
            })
            .collect();
        let style = line.color.stroke_width(2);
        let (size, gap) = line.dash.pattern();
        if gap == 0 {
            chart.draw_series(LineSeries::new(points.clone(), style))?;
        } else {
            chart.draw_series(DashedLineSeries::new(points.clone(), size, gap, style))?;
        }
        let filled = line.color.filled();
        let shape = line.marker.outline();
        let anno = chart.draw_series(
            points
                .iter()
                .map(|&p| EmptyElement::at(p) + Polygon::new(shape.clone(), filled)),
        )?;
        let legend_shape: Vec<(i32, i32)> = shape
            .iter()
            .map(|&(x, y)| (x + LEGEND_GLYPH / 2, y))
            .collect();
        anno.label(line.name.clone()).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + DashedPathElement::new(vec![(0, 0), (LEGEND_GLYPH, 0)], size, gap, style)
                + Polygon::new(legend_shape.clone(), filled)
        });
    }

    if !panel.lines.is_empty() {
        let position = quietest_corner(&panel.lines, |p| chart.backend_coord(p), area);
        chart
            .configure_series_labels()
            .position(position)
            .legend_area_size(LEGEND_GLYPH + 12)
            .label_font(("sans-serif", TICK_SIZE))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    Ok(())
}

/// Width in pixels of the line sample drawn before each legend label.
const LEGEND_GLYPH: i32 = 28;

/// The legend corner that covers the fewest data points.
///
/// The legend is assumed to take up to 45% of the width and a row per line;
/// ties go to the upper left, where readers look first.
fn quietest_corner<DB: DrawingBackend>(
    lines: &[StyledLine],
    to_pixel: impl Fn(&(f64, f64)) -> (i32, i32),
    area: &DrawingArea<DB, Shift>,
) -> SeriesLabelPosition {
    let (x0, y0) = area.get_base_pixel();
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let box_w = w * 45 / 100;
    let box_h = (lines.len() as i32 * 19 + 40).min(h);
    let corners = [
        (SeriesLabelPosition::UpperLeft, x0, y0),
        (SeriesLabelPosition::UpperRight, x0 + w - box_w, y0),
        (SeriesLabelPosition::LowerLeft, x0, y0 + h - box_h),
        (
            SeriesLabelPosition::LowerRight,
            x0 + w - box_w,
            y0 + h - box_h,
        ),
    ];
    let covered = |left: i32, top: i32| {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .map(&to_pixel)
            .filter(|&(x, y)| x >= left && x <= left + box_w && y >= top && y <= top + box_h)
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, left, top)| covered(*left, *top))
        .map(|(position, _, _)| position)
        .unwrap_or(SeriesLabelPosition::UpperLeft)
}

impl Dash {
    /// Dash and gap lengths in pixels; a zero gap is a solid line.
    fn pattern(self) -> (i32, i32) {
        match self {
            Dash::Solid => (30, 0),
            Dash::Dashed => (8, 5),
            Dash::Dotted => (2, 4),
        }
    }
}

impl Marker {
    /// The marker as a polygon around (0, 0), so that every marker is one element
    /// type for plotters and can be reused in the legend.
    fn outline(self) -> Vec<(i32, i32)> {
        match self {
            Marker::Circle => (0..12)
                .map(|i| {
                    let a = i as f64 * std::f64::consts::TAU / 12.0;
                    (
                        (4.5 * a.cos()).round() as i32,
                        (4.5 * a.sin()).round() as i32,
                    )
                })
                .collect(),
            Marker::Triangle => vec![(0, -6), (5, 4), (-5, 4)],
            Marker::Square => vec![(-4, -4), (4, -4), (4, 4), (-4, 4)],
            Marker::Cross => vec![
                (-2, -5),
                (2, -5),
                (2, -2),
                (5, -2),
                (5, 2),
                (2, 2),
                (2, 5),
                (-2, 5),
                (-2, 2),
                (-5, 2),
                (-5, -2),
                (-2, -2),
            ],
        }
    }
}
