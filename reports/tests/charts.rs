//! Each chart renders to SVG holding its series names and to a real PNG with text.

use reports::charts::{
    self, ForestChart, ForestRow, Line, PublishedLine, RateChart, RatePoint, RateSeries,
    Saturation, ScalingChart, ScalingPoint, ScalingSeries, SweepChart, SweepPanel, TrendChart,
    TrendPoint,
};

fn forest(title: &str) -> ForestChart {
    let row = |label: &str, ratio: f64, verdict: &str| ForestRow {
        label: label.into(),
        ratio,
        ci_low: ratio * 0.9,
        ci_high: ratio * 1.1,
        tolerance: Some(0.05),
        expected: None,
        verdict: verdict.into(),
    };
    ForestChart {
        title: title.into(),
        caption: "Kestra: up to 10× · measured 0.02×".into(),
        x_label: "head / base median (log scale)".into(),
        rows: vec![
            ForestRow {
                expected: Some(0.1),
                ..row("task_duration_ms [lines=10000]", 0.02, "improved")
            },
            row("wall_ms [lines=10000]", 0.04, "improved"),
            row("alloc_count [lines=10000]", 1.01, "unchanged"),
            row("cpu_ms [lines=10000]", 1.6, "regressed"),
        ],
    }
}

fn scaling() -> ScalingChart {
    let series = |variant: &str, slope: f64| ScalingSeries {
        variant: variant.into(),
        points: [1e3, 1e4, 1e5, 1e6]
            .iter()
            .map(|&x| ScalingPoint {
                x,
                p50: 0.4 * (x / 1e3).powf(slope),
                p99: 1.1 * (x / 1e3).powf(slope),
            })
            .collect(),
    };
    ScalingChart {
        title: "Queued pop latency".into(),
        caption: "p50 solid, p99 dashed".into(),
        x_label: "queued rows".into(),
        y_label: "pop latency (ms)".into(),
        series: vec![series("flow", 0.55), series("flow-date", 0.08)],
    }
}

fn sweep() -> SweepChart {
    let threads: [f64; 5] = [1.0, 2.0, 8.0, 32.0, 128.0];
    SweepChart {
        title: "Worker threads".into(),
        x_label: "threads".into(),
        x_log: true,
        panels: vec![
            SweepPanel {
                y_label: "throughput (task runs/s)".into(),
                lines: vec![Line {
                    name: "workload=cpu".into(),
                    points: threads.iter().map(|&t| (t, 900.0 * t.min(2.0))).collect(),
                }],
            },
            SweepPanel {
                y_label: "peak rss (MiB)".into(),
                lines: vec![Line {
                    name: "workload=sleep".into(),
                    points: threads.iter().map(|&t| (t, 38.0 + 2.1 * t)).collect(),
                }],
            },
        ],
    }
}

fn rate() -> RateChart {
    let points = [250.0, 500.0, 1000.0, 1500.0, 2000.0]
        .iter()
        .map(|&rate| {
            let p50 = if rate > 1500.0 { 2.0 } else { 0.2 };
            RatePoint {
                rate,
                p50,
                p90: p50 * 1.4,
                p99: p50 * 2.0,
                p999: p50 * 3.0,
            }
        })
        .collect();
    RateChart {
        title: "Webhook latency".into(),
        caption: String::new(),
        x_label: "offered rate (executions/min)".into(),
        y_label: "latency (s)".into(),
        series: vec![RateSeries {
            name: "B1".into(),
            points,
        }],
        saturation: vec![Saturation {
            rate: 1500.0,
            label: "B1".into(),
        }],
        published: vec![PublishedLine {
            label: "Kestra OSS 0.23.4, average (published)".into(),
            points: vec![(250.0, 0.31), (500.0, 0.35), (1000.0, 0.47)],
            ceiling: Some(4000.0),
        }],
    }
}

fn trend() -> TrendChart {
    TrendChart {
        title: "History of total_time".into(),
        caption: String::new(),
        y_label: "median (s)".into(),
        points: (0..10)
            .map(|i| TrendPoint {
                label: format!("sha{i:04}"),
                value: if i < 6 { 20.0 } else { 24.0 },
            })
            .collect(),
        change_points: vec![6],
    }
}

/// The contents of every `<text>` element, trimmed.
fn texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let start = t.find('>')? + 1;
            let end = t.find("</text>")?;
            Some(t[start..end].trim())
        })
        .collect()
}

fn assert_svg(svg: &str, expected: &[&str]) {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in expected {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
}

#[test]
fn forest_plot_names_every_metric_in_full_on_a_log_axis() {
    let svg = charts::render_svg(&forest("Log-heavy")).unwrap();
    assert_svg(
        &svg,
        &[
            "Log-heavy",
            "task_duration_ms [lines=10000]",
            "wall_ms [lines=10000]",
            "alloc_count [lines=10000]",
            "cpu_ms [lines=10000]",
            "gate tolerance (no change)",
            "Kestra&apos;s figure (0.1×)",
            "head / base median (log scale)",
        ],
    );
    // Ticks a factor apart, not a fixed step, down to the smallest ratio.
    let texts = texts(&svg);
    for tick in ["0.02×", "0.05×", "0.1×", "0.5×", "1×", "2×"] {
        assert!(texts.contains(&tick), "no {tick} tick in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t.contains('…')), "{texts:?}");
    // A log axis: 0.02× → 0.04× spans as many pixels as the factor 2 it is, against
    // 0.04× → 1.01× (on a linear axis the first gap would be 2% of the second, not 21%).
    let cx: Vec<f64> = svg
        .split("<circle")
        .skip(1)
        .filter_map(|c| {
            let v = c.split("cx=\"").nth(1)?.split('"').next()?;
            v.parse().ok()
        })
        .collect();
    assert_eq!(cx.len(), 4, "one point per row: {cx:?}");
    let measured = (cx[1] - cx[0]) / (cx[2] - cx[1]);
    let expected = 2f64.ln() / (1.01f64 / 0.04).ln();
    assert!(
        (measured - expected).abs() < 0.02,
        "{measured} vs {expected}: not a log axis"
    );
}

#[test]
fn forest_plot_grows_to_hold_long_names_and_many_rows() {
    let mut chart = forest("Many rows");
    let long = "records_per_s [format=csv, operation=convert, records=100000, threads=4x-cores]";
    chart.rows = (0..30)
        .map(|i| ForestRow {
            label: format!("{long} #{i}"),
            ratio: 0.5 + i as f64 / 20.0,
            ci_low: 0.45,
            ci_high: 2.0,
            tolerance: Some(0.1),
            expected: None,
            verdict: "unchanged".into(),
        })
        .collect();
    let svg = charts::render_svg(&chart).unwrap();
    assert!(svg.contains(&format!("{long} #29")), "label cut");
    let (width, height, rgb) = decode(&charts::render_png(&chart).unwrap());
    assert!(width > charts::CHART_SIZE.0 && height > charts::CHART_SIZE.1);
    assert!(dark_pixels(&rgb, width, 0..height) > 1_000);
}

#[test]
fn forest_plot_leaves_off_rows_with_no_finite_ratio() {
    let mut chart = forest("Counters");
    chart.rows[2].ratio = f64::INFINITY;
    chart.rows[3].ratio = 0.0;
    let svg = charts::render_svg(&chart).unwrap();
    assert!(
        svg.contains("2 row(s) with no finite ratio left off"),
        "{svg}"
    );
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

#[test]
fn scaling_chart_svg_names_each_percentile_line() {
    let svg = charts::render_svg(&scaling()).unwrap();
    assert_svg(
        &svg,
        &[
            "flow p50",
            "flow p99",
            "flow-date p50",
            "flow-date p99",
            "queued rows",
        ],
    );
    // The log x axis gets a label per decade.
    let texts = texts(&svg);
    for tick in ["1k", "10k", "100k", "1M"] {
        assert!(texts.contains(&tick), "no {tick} tick in {texts:?}");
    }
}

#[test]
fn sweep_chart_svg_has_both_panels() {
    let svg = charts::render_svg(&sweep()).unwrap();
    assert_svg(
        &svg,
        &[
            "throughput (task runs/s)",
            "peak rss (MiB)",
            "workload=cpu",
            "workload=sleep",
        ],
    );
    // Base-2 log axis: ticks on the doubling thread counts.
    let texts = texts(&svg);
    for tick in ["1", "2", "8", "32", "128"] {
        assert!(texts.contains(&tick), "no {tick} tick in {texts:?}");
    }
}

#[test]
fn rate_chart_svg_marks_saturation() {
    let svg = charts::render_svg(&rate()).unwrap();
    assert_svg(
        &svg,
        &["B1 p50", "B1 p99", "B1 p99.9", "B1: saturates at 1.5k"],
    );
}

#[test]
fn trend_chart_svg_marks_change_points() {
    let svg = charts::render_svg(&trend()).unwrap();
    assert_svg(&svg, &["change at sha0006", "sha0000", "median"]);
    let mut no_change = trend();
    no_change.change_points.clear();
    let svg = charts::render_svg(&no_change).unwrap();
    assert!(!svg.contains("change at"));
}

#[test]
fn a_change_point_out_of_range_is_ignored() {
    let mut chart = trend();
    chart.change_points = vec![99];
    let svg = charts::render_svg(&chart).unwrap();
    assert!(!svg.contains("change at"));
}

#[test]
fn zero_and_nan_points_are_left_off_log_axes() {
    let mut chart = scaling();
    chart.series[0].points[0].p50 = 0.0;
    chart.series[0].points[1].p99 = f64::NAN;
    chart.series[1].points[0].x = -1.0;
    let svg = charts::render_svg(&chart).unwrap();
    assert!(
        !svg.contains("NaN") && !svg.contains("inf"),
        "bad coordinates"
    );
    assert!(charts::render_png(&chart).is_ok());
}

#[test]
fn empty_charts_still_render() {
    let mut a = forest("empty");
    a.rows.clear();
    assert!(charts::render_svg(&a).is_ok());
    let mut s = scaling();
    s.series.clear();
    assert!(charts::render_png(&s).is_ok());
}

/// Decodes a PNG, checking its signature, and returns (width, height, RGB bytes).
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Pixels in rows `rows` that are clearly darker than the white background.
fn dark_pixels(rgb: &[u8], width: u32, rows: std::ops::Range<u32>) -> usize {
    rows.flat_map(|y| (0..width).map(move |x| ((y * width + x) * 3) as usize))
        .filter(|&i| rgb[i..i + 3].iter().map(|&c| c as u32).sum::<u32>() < 3 * 160)
        .count()
}

#[test]
fn every_chart_renders_a_valid_png() {
    let pngs = [
        charts::render_png(&forest("A/B")).unwrap(),
        charts::render_png(&scaling()).unwrap(),
        charts::render_png(&sweep()).unwrap(),
        charts::render_png(&rate()).unwrap(),
        charts::render_png(&trend()).unwrap(),
    ];
    for png in pngs {
        assert!(
            png.len() > 5_000,
            "suspiciously small PNG: {} bytes",
            png.len()
        );
        let (width, height, rgb) = decode(&png);
        assert_eq!((width, height), charts::CHART_SIZE);
        // Something was drawn: not a blank canvas.
        assert!(dark_pixels(&rgb, width, 0..height) > 1_000);
    }
}

#[test]
fn png_titles_are_drawn_with_the_shipped_font() {
    // The title is the only thing in the top band, so text there proves the
    // embedded font drew glyphs; with no font, plotters would draw none.
    let (width, _, titled) = decode(&charts::render_png(&forest("Flowbench title text")).unwrap());
    let (_, _, untitled) = decode(&charts::render_png(&forest("")).unwrap());
    let band = 0..20;
    let with_title = dark_pixels(&titled, width, band.clone());
    let without_title = dark_pixels(&untitled, width, band);
    assert!(with_title > 150, "title drew only {with_title} dark pixels");
    assert_eq!(without_title, 0);
}
