//! Which charts a report shows, and the plain data each is drawn from.
//!
//! The choice is made from the shape of the results, never from scenario names,
//! so a new scenario gets charts without code here:
//!
//! * a scenario with comparisons gets one [`ForestChart`]: a row per comparison, its
//!   head/base ratio and CI on a log axis, the gate's tolerance shaded, and Kestra's
//!   figure marked on the row its claim is judged on;
//! * a numeric parameter that takes two or more values across a scenario's
//!   metrics is a sweep. Against it:
//!   * metrics with latency percentiles and a rate parameter (`rate_per_min`,
//!     any name containing `rate`) get a [`RateChart`] with the saturation point;
//!   * other metrics with latency percentiles get a log-log [`ScalingChart`];
//!   * metrics without percentiles share a [`SweepChart`], one panel each;
//! * each history trend gets a [`TrendChart`].

use std::collections::{BTreeMap, BTreeSet};

use crate::charts::{
    self, ForestChart, ForestRow, Line, PublishedLine, RateChart, RatePoint, RateSeries,
    Saturation, ScalingChart, ScalingPoint, ScalingSeries, SweepChart, SweepPanel, TrendChart,
    TrendPoint,
};
use crate::error::Result;
use crate::results::{
    Better, ClaimOutcome, HistoryView, MetricResult, Params, Results, ScenarioResult, Status,
    display_params,
};

/// One chart of a report, with the name its files are given.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem: lowercase letters, digits and dashes, unique within a report.
    pub id: String,
    /// The scenario (`id`, `backend`) the figure belongs to; `None` for trends.
    pub scenario: Option<(String, String)>,
    pub chart: FigureChart,
}

/// Any of the chart types.
#[derive(Debug, Clone, PartialEq)]
pub enum FigureChart {
    Forest(ForestChart),
    Scaling(ScalingChart),
    Sweep(SweepChart),
    Rate(RateChart),
    Trend(TrendChart),
}

impl Figure {
    pub fn title(&self) -> &str {
        match &self.chart {
            FigureChart::Forest(c) => &c.title,
            FigureChart::Scaling(c) => &c.title,
            FigureChart::Sweep(c) => &c.title,
            FigureChart::Rate(c) => &c.title,
            FigureChart::Trend(c) => &c.title,
        }
    }

    pub fn render_svg(&self) -> Result<String> {
        match &self.chart {
            FigureChart::Forest(c) => charts::render_svg(c),
            FigureChart::Scaling(c) => charts::render_svg(c),
            FigureChart::Sweep(c) => charts::render_svg(c),
            FigureChart::Rate(c) => charts::render_svg(c),
            FigureChart::Trend(c) => charts::render_svg(c),
        }
    }

    pub fn render_png(&self) -> Result<Vec<u8>> {
        match &self.chart {
            FigureChart::Forest(c) => charts::render_png(c),
            FigureChart::Scaling(c) => charts::render_png(c),
            FigureChart::Sweep(c) => charts::render_png(c),
            FigureChart::Rate(c) => charts::render_png(c),
            FigureChart::Trend(c) => charts::render_png(c),
        }
    }
}

/// Every figure for a run, scenarios in results order, then trends.
pub fn figures(results: &Results, history: Option<&HistoryView>) -> Vec<Figure> {
    let mut out = Vec::new();
    for scenario in results.scenarios.iter().filter(|s| s.status == Status::Ok) {
        out.extend(scenario_figures(scenario));
    }
    for trend in history.map(|h| h.trends.as_slice()).unwrap_or_default() {
        let scale = UnitScale::for_values(&trend.unit, trend.points.iter().map(|p| p.value));
        out.push(Figure {
            id: format!("trend-{}", slug(&trend.key)),
            scenario: None,
            chart: FigureChart::Trend(TrendChart {
                title: format!("History: {}", trend.key),
                caption: format!(
                    "{} runs, {} change point(s)",
                    trend.points.len(),
                    trend.change_points.len()
                ),
                y_label: format!("median ({})", scale.unit),
                points: trend
                    .points
                    .iter()
                    .map(|p| TrendPoint {
                        label: p
                            .git_sha
                            .as_deref()
                            .map(|sha| sha.chars().take(7).collect())
                            .unwrap_or_else(|| p.run_id.clone()),
                        value: p.value * scale.factor,
                    })
                    .collect(),
                change_points: trend.change_points.clone(),
            }),
        });
    }
    // Ids must name distinct files even if two keys slug alike.
    let mut seen = BTreeSet::new();
    for figure in &mut out {
        let base = figure.id.clone();
        let mut n = 2;
        while !seen.insert(figure.id.clone()) {
            figure.id = format!("{base}-{n}");
            n += 1;
        }
    }
    out
}

fn scenario_figures(scenario: &ScenarioResult) -> Vec<Figure> {
    let stem = format!("{}-{}", slug(&scenario.id), slug(&scenario.backend));
    let owner = Some((scenario.id.clone(), scenario.backend.clone()));
    let mut out = Vec::new();
    if let Some(chart) = forest_chart(scenario) {
        out.push(Figure {
            id: format!("{stem}-ab"),
            scenario: owner.clone(),
            chart: FigureChart::Forest(chart),
        });
    }
    for key in sweep_keys(&scenario.metrics) {
        let swept: Vec<&MetricResult> = scenario
            .metrics
            .iter()
            .filter(|m| m.params.get(&key).and_then(|v| v.as_f64()).is_some())
            .collect();
        let metric_names: BTreeSet<&str> = swept.iter().map(|m| m.metric.as_str()).collect();
        let mut plain = Vec::new();
        for name in metric_names {
            let of_metric: Vec<&MetricResult> =
                swept.iter().copied().filter(|m| m.metric == name).collect();
            if of_metric.iter().any(|m| m.latency.is_some()) {
                let id = format!("{stem}-{}-vs-{}", slug(name), slug(&key));
                let chart = if key.contains("rate") {
                    FigureChart::Rate(rate_chart(scenario, name, &key, &of_metric))
                } else {
                    FigureChart::Scaling(scaling_chart(scenario, name, &key, &of_metric))
                };
                out.push(Figure {
                    id,
                    scenario: owner.clone(),
                    chart,
                });
            } else {
                plain.push(of_metric);
            }
        }
        if !plain.is_empty() {
            out.push(Figure {
                id: format!("{stem}-sweep-{}", slug(&key)),
                scenario: owner.clone(),
                chart: FigureChart::Sweep(sweep_chart(scenario, &key, plain)),
            });
        }
    }
    out
}

fn forest_chart(scenario: &ScenarioResult) -> Option<ForestChart> {
    if scenario.comparisons.is_empty() {
        return None;
    }
    // Name the variants only where the scenario compares more than one head.
    let heads: BTreeSet<&str> = scenario
        .comparisons
        .iter()
        .map(|c| c.head_variant.as_str())
        .collect();
    let rows = scenario
        .comparisons
        .iter()
        .map(|c| {
            let params = display_params(&c.params);
            let mut label = c.metric.clone();
            if !params.is_empty() {
                label = format!("{label} [{params}]");
            }
            if heads.len() > 1 {
                label = format!("{label}: {} vs {}", c.head_variant, c.base_variant);
            }
            let is_claim = c.reproduced.is_some() && scenario.claim.kestra_counterpart;
            ForestRow {
                label,
                ratio: c.ratio,
                ci_low: c.ci_low,
                ci_high: c.ci_high,
                tolerance: c.tolerance,
                expected: scenario.claim.expected_ratio.filter(|_| is_claim),
                verdict: c.verdict.clone(),
            }
        })
        .collect();
    let outcome = scenario.claim_outcome().map_or("", ClaimOutcome::text);
    let caption = match (
        scenario.claim.kestra_counterpart,
        scenario.claim_comparison(),
    ) {
        (false, _) => format!(
            "no Kestra counterpart on {}: Kestra changed {} only",
            scenario.backend,
            scenario.claim.kestra_backends.join(", ")
        ),
        (true, Some(c)) => format!(
            "Kestra: {} · measured {} {} · {outcome}",
            scenario.claim.kestra_figure,
            c.metric,
            format_ratio(c.ratio),
        ),
        (true, None) => format!("Kestra: {}", scenario.claim.kestra_figure),
    };
    Some(ForestChart {
        title: scenario_title(scenario),
        caption,
        x_label: "head / base median (log scale)".to_string(),
        rows,
    })
}

/// `0.52× (−48%)`: the ratio, and the change it means, which is how Kestra states its figures.
pub fn format_ratio(ratio: f64) -> String {
    let change = (ratio - 1.0) * 100.0;
    let sign = if change < 0.0 { "−" } else { "+" };
    format!("{ratio:.2}× ({sign}{:.0}%)", change.abs())
}

/// Numeric parameters that take at least two values across the metrics.
fn sweep_keys(metrics: &[MetricResult]) -> Vec<String> {
    let mut values: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for m in metrics {
        for (k, v) in &m.params {
            if let Some(x) = v.as_f64() {
                values.entry(k).or_default().insert(x.to_bits());
            }
        }
    }
    values
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(k, _)| k.to_string())
        .collect()
}

/// Groups a metric's points into lines: one per variant and per value of the
/// parameters other than the swept one, sorted along the sweep. When every
/// point belongs to one variant its name is left out of the line names, which
/// would otherwise all begin with it.
fn lines_of<'m>(
    metrics: &[&'m MetricResult],
    key: &str,
) -> Vec<(String, Vec<(f64, &'m MetricResult)>)> {
    let one_variant = metrics.windows(2).all(|w| w[0].variant == w[1].variant);
    let mut lines: Vec<(String, Vec<(f64, &MetricResult)>)> = Vec::new();
    for m in metrics {
        let Some(x) = m.params.get(key).and_then(|v| v.as_f64()) else {
            continue;
        };
        let mut rest: Params = m.params.clone();
        rest.remove(key);
        let rest = display_params(&rest);
        let name = match (one_variant, rest.is_empty()) {
            (_, true) => m.variant.clone(),
            (true, false) => rest,
            (false, false) => format!("{} ({rest})", m.variant),
        };
        match lines.iter_mut().find(|(n, _)| *n == name) {
            Some((_, points)) => points.push((x, m)),
            None => lines.push((name, vec![(x, m)])),
        }
    }
    for (_, points) in &mut lines {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// "Queued executions index (postgres)"; scenarios that use no database show no backend.
fn scenario_title(scenario: &ScenarioResult) -> String {
    if scenario.backend == "none" {
        scenario.title.clone()
    } else {
        format!("{} ({})", scenario.title, scenario.backend)
    }
}

/// Metric and parameter names as words: `pop_latency` → `pop latency`.
fn words(name: &str) -> String {
    name.replace('_', " ")
}

fn scaling_chart(
    scenario: &ScenarioResult,
    metric: &str,
    key: &str,
    metrics: &[&MetricResult],
) -> ScalingChart {
    let unit = &metrics[0].unit;
    let scale = UnitScale::for_values(
        unit,
        metrics.iter().filter_map(|m| m.latency.map(|l| l.p99)),
    );
    ScalingChart {
        title: format!(
            "{}: {} against {}",
            scenario_title(scenario),
            words(metric),
            words(key)
        ),
        caption: "p50 solid, p99 dashed; log-log".to_string(),
        x_label: words(key),
        y_label: format!("{} ({})", words(metric), scale.unit),
        series: lines_of(metrics, key)
            .into_iter()
            .map(|(variant, points)| ScalingSeries {
                variant,
                points: points
                    .into_iter()
                    .filter_map(|(x, m)| {
                        m.latency.map(|l| ScalingPoint {
                            x,
                            p50: l.p50 * scale.factor,
                            p99: l.p99 * scale.factor,
                        })
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn rate_chart(
    scenario: &ScenarioResult,
    metric: &str,
    key: &str,
    metrics: &[&MetricResult],
) -> RateChart {
    let unit = &metrics[0].unit;
    let scale = UnitScale::for_values(
        unit,
        metrics.iter().filter_map(|m| m.latency.map(|l| l.p99)),
    );
    let series: Vec<RateSeries> = lines_of(metrics, key)
        .into_iter()
        .map(|(name, points)| RateSeries {
            name,
            points: points
                .into_iter()
                .filter_map(|(rate, m)| {
                    m.latency.map(|l| RatePoint {
                        rate,
                        p50: l.p50 * scale.factor,
                        p90: l.p90 * scale.factor,
                        p99: l.p99 * scale.factor,
                        p999: l.p999 * scale.factor,
                    })
                })
                .collect(),
        })
        .collect();
    // The run's own saturation points where it recorded them (e2e-webhook: the first
    // step past its p99 limit or below 90% of the offered rate); else the knee of p99.
    let recorded: Vec<Saturation> = scenario
        .metrics
        .iter()
        .filter(|m| m.metric == "saturation_rate_per_min")
        .map(|m| Saturation {
            rate: m.summary.median,
            label: m.variant.clone(),
        })
        .collect();
    let (saturation, caption) = if !recorded.is_empty() {
        (
            recorded,
            "saturation: the first offered rate the run recorded as saturated (median of its repetitions)"
                .to_string(),
        )
    } else {
        let knees: Vec<Saturation> = series
            .iter()
            .filter_map(|s| {
                saturation_rate(&s.points).map(|rate| Saturation {
                    rate,
                    label: s.name.clone(),
                })
            })
            .collect();
        let caption = if knees.is_empty() {
            "no saturation within the offered rates".to_string()
        } else {
            format!(
                "saturation: highest rate whose p99 stayed within {SATURATION_FACTOR}× the p99 at the lowest rate"
            )
        };
        (knees, caption)
    };
    let published = scenario
        .claim
        .published
        .iter()
        .filter(|p| p.x == key && &p.unit == unit)
        .map(|p| PublishedLine {
            label: p.label.clone(),
            points: p
                .points
                .iter()
                .map(|[x, y]| (*x, y * scale.factor))
                .collect(),
            ceiling: p.ceiling,
        })
        .collect();
    RateChart {
        title: format!(
            "{}: {} against {}",
            scenario_title(scenario),
            words(metric),
            words(key)
        ),
        caption,
        x_label: words(key),
        y_label: format!("{} ({})", words(metric), scale.unit),
        series,
        saturation,
        published,
    }
}

/// How far p99 may rise over its low-load value before the system counts as saturated.
pub const SATURATION_FACTOR: f64 = 2.0;

/// The highest offered rate whose p99 stayed within [`SATURATION_FACTOR`] times
/// the p99 at the lowest rate, provided some higher rate went past it; `None`
/// when latency never took off, since then the saturation point is beyond the
/// rates tried. Points must be sorted by rate.
///
/// This is the knee an open-loop test shows: below saturation latency stays
/// flat, past it the queue grows and latency climbs without bound.
pub fn saturation_rate(points: &[RatePoint]) -> Option<f64> {
    let baseline = points.first()?.p99;
    if baseline <= 0.0 || !baseline.is_finite() {
        return None;
    }
    let first_over = points
        .iter()
        .position(|p| p.p99 > baseline * SATURATION_FACTOR)?;
    // The lowest rate is never past its own baseline, so first_over >= 1.
    Some(points[first_over - 1].rate)
}

fn sweep_chart(
    scenario: &ScenarioResult,
    key: &str,
    mut metrics: Vec<Vec<&MetricResult>>,
) -> SweepChart {
    // Throughput-like metrics first: they are what a thread sweep is read for.
    metrics.sort_by_key(|ms| ms[0].better != Better::Higher);
    let xs: Vec<f64> = metrics
        .iter()
        .flatten()
        .filter_map(|m| m.params.get(key).and_then(|v| v.as_f64()))
        .collect();
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let panels = metrics
        .iter()
        .map(|ms| {
            let scale = UnitScale::for_values(&ms[0].unit, ms.iter().map(|m| m.summary.median));
            SweepPanel {
                y_label: format!("{} ({})", words(&ms[0].metric), scale.unit),
                lines: lines_of(ms, key)
                    .into_iter()
                    .map(|(name, points)| Line {
                        name,
                        points: points
                            .into_iter()
                            .map(|(x, m)| (x, m.summary.median * scale.factor))
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    SweepChart {
        title: format!("{}: against {}", scenario_title(scenario), words(key)),
        x_label: words(key),
        // Doubling sweeps (1, 2, 8, 32, 128 threads) crowd at the left on a linear axis.
        x_log: lo > 0.0 && hi / lo >= 16.0,
        panels,
    }
}

/// A display unit chosen so that the values read as plain numbers:
/// 0.0012 s becomes 1.2 ms, 3221225472 bytes becomes 3 GiB.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitScale {
    pub factor: f64,
    pub unit: String,
}

impl UnitScale {
    pub fn for_values(unit: &str, values: impl Iterator<Item = f64>) -> UnitScale {
        let max = values
            .filter(|v| v.is_finite())
            .fold(0.0_f64, |a, v| a.max(v.abs()));
        let pick = |factor: f64, unit: &str| UnitScale {
            factor,
            unit: unit.to_string(),
        };
        match unit {
            "s" if max > 0.0 && max < 1e-3 => pick(1e6, "µs"),
            "s" if max > 0.0 && max < 1.0 => pick(1e3, "ms"),
            "ms" if max > 0.0 && max < 1.0 => pick(1e3, "µs"),
            "bytes" | "B" if max >= (1u64 << 30) as f64 => pick(1.0 / (1u64 << 30) as f64, "GiB"),
            "bytes" | "B" if max >= (1u64 << 20) as f64 => pick(1.0 / (1u64 << 20) as f64, "MiB"),
            "bytes" | "B" if max >= (1u64 << 10) as f64 => pick(1.0 / (1u64 << 10) as f64, "KiB"),
            _ => pick(1.0, unit),
        }
    }
}

/// Lowercase letters, digits and single dashes, for file names and BMF slugs.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(rate: f64, p99: f64) -> RatePoint {
        RatePoint {
            rate,
            p50: p99 / 2.0,
            p90: p99 / 1.5,
            p99,
            p999: p99 * 1.5,
        }
    }

    #[test]
    fn saturation_is_the_last_rate_before_p99_takes_off() {
        let points = [
            point(250.0, 0.20),
            point(500.0, 0.22),
            point(1000.0, 0.26),
            point(1500.0, 0.35),
            point(2000.0, 3.0),
        ];
        assert_eq!(saturation_rate(&points), Some(1500.0));
    }

    #[test]
    fn no_saturation_when_latency_stays_flat() {
        let points = [point(250.0, 0.20), point(500.0, 0.21), point(1000.0, 0.39)];
        assert_eq!(saturation_rate(&points), None);
        assert_eq!(saturation_rate(&[]), None);
    }

    #[test]
    fn units_scale_to_readable_numbers() {
        let s = UnitScale::for_values("s", [0.0012, 0.0009].into_iter());
        assert_eq!(s.unit, "ms");
        assert_eq!(s.factor, 1e3);
        assert_eq!(UnitScale::for_values("s", [0.00002].into_iter()).unit, "µs");
        assert_eq!(UnitScale::for_values("s", [2.5].into_iter()).unit, "s");
        assert_eq!(
            UnitScale::for_values("bytes", [3.0 * (1u64 << 30) as f64].into_iter()).unit,
            "GiB"
        );
        assert_eq!(
            UnitScale::for_values("bytes", [5e6].into_iter()).unit,
            "MiB"
        );
        assert_eq!(
            UnitScale::for_values("tasks/s", [5e6].into_iter()).factor,
            1.0
        );
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(
            slug("queued-index/postgres/flow-date/pop_latency[rows=1000]"),
            "queued-index-postgres-flow-date-pop-latency-rows-1000"
        );
        assert_eq!(slug("  Peak RSS  "), "peak-rss");
    }

    #[test]
    fn ratios_read_as_changes() {
        assert_eq!(format_ratio(0.52), "0.52× (−48%)");
        assert_eq!(format_ratio(1.3), "1.30× (+30%)");
    }
}
