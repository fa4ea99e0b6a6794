//! What the HTML and Markdown templates see: the results flattened into rows of
//! display strings, so the templates hold layout only.

use serde::Serialize;

use super::RenderedFigure;
use super::figures::{format_ratio, slug};
use crate::charts::format_number;
use crate::results::{
    ClaimOutcome, Comparison, QueryPlan, Results, ScenarioResult, Status, display_params,
};

/// How many comparisons "largest changes" lists.
const LARGEST_CHANGES: usize = 3;

#[derive(Debug, Serialize)]
pub(crate) struct ReportView {
    pub run: RunView,
    pub claims: Vec<ClaimRow>,
    pub changes: Vec<ChangeRow>,
    pub scenarios: Vec<ScenarioView>,
    pub trends: Vec<FigureView>,
    pub erratic: Vec<String>,
    /// Every scenario's query plans, for the Markdown summary.
    pub plans: Vec<PlanRow>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RunView {
    pub run_id: String,
    pub git_sha: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration: String,
    pub host: String,
    pub rustc: String,
    pub quick: bool,
    pub backend_versions: Vec<(String, String)>,
    pub knobs: Vec<(String, String)>,
    pub database_urls: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ClaimRow {
    pub anchor: String,
    pub scenario: String,
    pub title: String,
    pub backend: String,
    pub claim: String,
    pub kestra_figure: String,
    /// Kestra's figure as a ratio (`0.85×`), or "—".
    pub kestra_ratio: String,
    /// The Kestra commits the before path follows, or "—".
    pub kestra_commit: String,
    /// What the before path does, or "".
    pub before: String,
    /// The claim's metric, or "—" when there is no comparison to show.
    pub metric: String,
    /// The headline ratio, or "—".
    pub measured: String,
    pub ci: String,
    pub p_value: String,
    pub verdict: String,
    /// "reproduced", "not reproduced", "no Kestra counterpart", "not judged", or the
    /// scenario's status.
    pub outcome: String,
    /// CSS class for the outcome.
    pub outcome_class: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeRow {
    pub scenario: String,
    pub backend: String,
    pub metric: String,
    pub base: String,
    pub head: String,
    pub ratio: String,
    pub verdict: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ScenarioView {
    pub anchor: String,
    pub id: String,
    pub title: String,
    pub backend: String,
    pub claim: String,
    /// What the before path does and the Kestra commits it follows, or "".
    pub before: String,
    /// Set when Kestra made no such change on this backend: says where it did.
    pub no_counterpart: String,
    /// Set when the scenario measured idle worker threads: what one costs, from the data.
    pub idle_threads: String,
    pub status: String,
    pub figures: Vec<FigureView>,
    pub comparisons: Vec<ComparisonRow>,
    pub metrics: Vec<MetricRow>,
    pub plans: Vec<PlanRow>,
}

/// One query plan, with what it says in words.
#[derive(Debug, Serialize)]
pub(crate) struct PlanRow {
    pub scenario: String,
    pub backend: String,
    pub variant: String,
    pub params: String,
    pub index: String,
    /// "yes", "no" or "unknown".
    pub uses_index: String,
    pub sorts: String,
    /// The plan in one plain sentence.
    pub reading: String,
    pub statement: String,
    pub plan: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct FigureView {
    pub id: String,
    pub title: String,
    /// Inline SVG markup, without the namespace attribute HTML does not need.
    pub svg: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ComparisonRow {
    pub metric: String,
    pub params: String,
    pub base: String,
    pub head: String,
    pub ratio: String,
    pub ci: String,
    pub p_value: String,
    pub verdict: String,
    pub reproduced: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct MetricRow {
    pub variant: String,
    pub metric: String,
    pub params: String,
    pub unit: String,
    pub median: String,
    pub ci: String,
    pub cov: String,
    pub n: usize,
    pub erratic: bool,
}

impl ReportView {
    pub fn new(results: &Results, rendered: &[RenderedFigure]) -> ReportView {
        let run = &results.run;
        let figure_view = |r: &RenderedFigure| FigureView {
            id: r.figure.id.clone(),
            title: r.figure.title().to_string(),
            svg: inline_svg(&r.svg),
        };
        let duration = run
            .finished_at
            .duration_since(run.started_at)
            .as_secs()
            .max(0);
        ReportView {
            run: RunView {
                run_id: run.run_id.clone(),
                git_sha: run.git_sha.clone().unwrap_or_else(|| "unknown".into()),
                started_at: run.started_at.to_string(),
                finished_at: run.finished_at.to_string(),
                duration: format!("{}m {:02}s", duration / 60, duration % 60),
                host: format!(
                    "{} cores, {:.1} GiB, {}, kernel {}",
                    run.host.cores,
                    run.host.memory_bytes as f64 / (1u64 << 30) as f64,
                    run.host.os,
                    run.host.kernel
                ),
                rustc: run.host.rustc.clone(),
                quick: run.quick,
                backend_versions: run.backend_versions.clone().into_iter().collect(),
                knobs: run.knobs.clone().into_iter().collect(),
                database_urls: run.database_urls.clone(),
            },
            claims: results.scenarios.iter().map(claim_row).collect(),
            changes: largest_changes(results),
            scenarios: results
                .scenarios
                .iter()
                .map(|s| ScenarioView {
                    anchor: anchor(s),
                    id: s.id.clone(),
                    title: s.title.clone(),
                    backend: s.backend.clone(),
                    claim: s.claim.text.clone(),
                    before: before_text(s),
                    no_counterpart: if s.claim.kestra_counterpart {
                        String::new()
                    } else {
                        format!(
                            "No Kestra counterpart on {}: Kestra made this change on {} only, so this backend's numbers measure the knob but neither reproduce nor refute Kestra's claim.",
                            s.backend,
                            s.claim.kestra_backends.join(", ")
                        )
                    },
                    idle_threads: idle_threads_text(s),
                    status: status_text(&s.status),
                    figures: rendered
                        .iter()
                        .filter(|r| {
                            r.figure.scenario.as_ref() == Some(&(s.id.clone(), s.backend.clone()))
                        })
                        .map(figure_view)
                        .collect(),
                    comparisons: s
                        .comparisons
                        .iter()
                        .map(|c| comparison_row(s, c))
                        .collect(),
                    plans: s.plans.iter().map(|p| plan_row(s, p)).collect(),
                    metrics: s
                        .metrics
                        .iter()
                        .map(|m| MetricRow {
                            variant: m.variant.clone(),
                            metric: m.metric.clone(),
                            params: display_params(&m.params),
                            unit: m.unit.clone(),
                            median: format_number(m.summary.median),
                            ci: format!(
                                "{}–{}",
                                format_number(m.summary.ci_low),
                                format_number(m.summary.ci_high)
                            ),
                            cov: format!("{:.1}%", m.summary.cov * 100.0),
                            n: m.summary.n,
                            erratic: m.summary.erratic,
                        })
                        .collect(),
                })
                .collect(),
            trends: rendered
                .iter()
                .filter(|r| r.figure.scenario.is_none())
                .map(figure_view)
                .collect(),
            erratic: results
                .scenarios
                .iter()
                .flat_map(|s| {
                    s.metrics
                        .iter()
                        .filter(|m| m.summary.erratic)
                        .map(move |m| {
                            let params = display_params(&m.params);
                            format!(
                                "{} ({}) {} {}{}",
                                s.id,
                                s.backend,
                                m.variant,
                                m.metric,
                                if params.is_empty() {
                                    String::new()
                                } else {
                                    format!(" [{params}]")
                                }
                            )
                        })
                })
                .collect(),
            plans: results
                .scenarios
                .iter()
                .flat_map(|s| s.plans.iter().map(move |p| plan_row(s, p)))
                .collect(),
        }
    }
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn plan_row(s: &ScenarioResult, p: &QueryPlan) -> PlanRow {
    let reading = match (p.uses_index, p.sorts) {
        (Some(true), Some(false)) => format!(
            "reads {} in index order and stops at the first row it needs",
            p.index
        ),
        (Some(true), Some(true)) => format!(
            "finds the rows through {}, then sorts them all: the index's order is not used",
            p.index
        ),
        (Some(false), Some(true)) => {
            format!("ignores {} and sorts every matching row", p.index)
        }
        (Some(false), _) => format!("ignores {}", p.index),
        _ => "the plan text does not say which index it uses".to_string(),
    };
    PlanRow {
        scenario: s.id.clone(),
        backend: s.backend.clone(),
        variant: p.variant.clone(),
        params: display_params(&p.params),
        index: p.index.clone(),
        uses_index: yes_no(p.uses_index).into(),
        sorts: yes_no(p.sorts).into(),
        reading,
        statement: p.statement.clone(),
        plan: p.plan.clone(),
    }
}

fn anchor(s: &ScenarioResult) -> String {
    format!("{}-{}", slug(&s.id), slug(&s.backend))
}

/// "Before: <what it does> (follows Kestra 84d845cde)".
fn before_text(s: &ScenarioResult) -> String {
    let commits = s.claim.kestra_commits.join(", ");
    match (&s.claim.before, commits.is_empty()) {
        (Some(before), false) => format!("Before: {before} (Kestra commit {commits})."),
        (Some(before), true) => format!("Before: {before}."),
        (None, false) => format!("Before: Kestra's code before commit {commits}."),
        (None, true) => String::new(),
    }
}

/// What an idle worker thread costs, from the `idle_thread_*` metrics, beside the peak
/// RSS the claim is judged on; "" when the scenario did not measure it.
///
/// The JVM figure is HotSpot's documented default, not a measurement: flowbench runs no
/// JVM.
fn idle_threads_text(s: &ScenarioResult) -> String {
    let median = |name: &str| {
        s.metrics
            .iter()
            .find(|m| m.metric == name)
            .map(|m| (m.summary.median, m.summary.n))
    };
    let (Some((rss, n)), Some((stack, _))) = (
        median("idle_thread_rss_kib"),
        median("idle_thread_stack_kib"),
    ) else {
        return String::new();
    };
    let vsz = median("idle_thread_vsz_kib")
        .map(|(v, _)| format!(", {} KiB of address space (VmSize)", format_number(v)))
        .unwrap_or_default();
    let mut text = format!(
        "An idle worker thread, measured here (median of {n}), adds {} KiB of resident memory (VmRSS){vsz}; its stack mapping is {} KiB, reserved address space that only becomes resident as the stack is used. 128 threads therefore hold about {} MiB resident while idle.",
        format_number(rss),
        format_number(stack),
        format_number(rss * 128.0 / 1024.0),
    );
    if let Some(c) = s.claim_comparison().filter(|c| c.metric == "peak_rss_kib")
        && let Some(base) = s.metric(&c.base_variant, &c.metric, &c.params)
    {
        text += &format!(
            " The {} runs peaked at {} MiB, so idle threads are a small share of it, which is why the ratio stays near 1 ({}).",
            c.base_variant,
            format_number(base.summary.median / 1024.0),
            format_ratio(c.ratio)
        );
    }
    text += " For comparison, a HotSpot JVM thread reserves a 1 MiB stack by default on Linux x86-64 (ThreadStackSize = 1024 KiB, openjdk src/hotspot/os_cpu/linux_x86/globals_linux_x86.hpp), also reserved rather than resident; flowbench runs no JVM, so its resident cost per thread is not measured here.";
    text
}

fn status_text(status: &Status) -> String {
    match status {
        Status::Ok => "ok".to_string(),
        Status::Failed { error } => format!("failed: {error}"),
        Status::Skipped { reason } => format!("skipped: {reason}"),
    }
}

fn ci_text(c: &Comparison) -> String {
    format!("{:.2}–{:.2}", c.ci_low, c.ci_high)
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "<0.001".to_string(),
        Some(p) => format!("{p:.3}"),
        None => "exact".to_string(),
    }
}

fn reproduced_text(r: Option<bool>) -> &'static str {
    match r {
        Some(true) => "reproduced",
        Some(false) => "not reproduced",
        None => "not judged",
    }
}

fn outcome_class(o: ClaimOutcome) -> &'static str {
    match o {
        ClaimOutcome::Reproduced => "reproduced",
        ClaimOutcome::NotReproduced => "not-reproduced",
        ClaimOutcome::NoKestraCounterpart => "no-counterpart",
        ClaimOutcome::NotJudged => "not-judged",
    }
}

fn claim_row(s: &ScenarioResult) -> ClaimRow {
    let mut row = ClaimRow {
        anchor: anchor(s),
        scenario: s.id.clone(),
        title: s.title.clone(),
        backend: s.backend.clone(),
        claim: s.claim.text.clone(),
        kestra_figure: s.claim.kestra_figure.clone(),
        kestra_ratio: s
            .claim
            .expected_ratio
            .map_or_else(|| "—".into(), |r| format!("{r:.2}×")),
        kestra_commit: if s.claim.kestra_commits.is_empty() {
            "—".into()
        } else {
            s.claim.kestra_commits.join(", ")
        },
        before: s.claim.before.clone().unwrap_or_default(),
        metric: "—".into(),
        measured: "—".into(),
        ci: "—".into(),
        p_value: "—".into(),
        verdict: "—".into(),
        outcome: status_text(&s.status),
        outcome_class: "status".into(),
    };
    let Some(outcome) = s.claim_outcome() else {
        return row;
    };
    // The claim is judged on the comparison the harness marked; without one,
    // the first comparison is still worth showing, but judged by no one.
    match s.claim_comparison().or(s.comparisons.first()) {
        Some(c) => {
            row.metric = c.metric.clone();
            row.measured = format_ratio(c.ratio);
            row.ci = ci_text(c);
            row.p_value = p_text(c.p_value);
            row.verdict = c.verdict.clone();
            row.outcome = outcome.text().to_string();
            row.outcome_class = outcome_class(outcome).into();
        }
        None if outcome == ClaimOutcome::NoKestraCounterpart => {
            row.outcome = outcome.text().to_string();
            row.outcome_class = outcome_class(outcome).into();
        }
        None => {
            row.outcome = "no comparison".into();
            row.outcome_class = "not-judged".into();
        }
    }
    row
}

fn comparison_row(s: &ScenarioResult, c: &Comparison) -> ComparisonRow {
    // The claim's comparison on a backend where Kestra made no such change reproduces
    // nothing, whatever its ratio.
    let reproduced = if c.reproduced.is_some() && !s.claim.kestra_counterpart {
        ClaimOutcome::NoKestraCounterpart.text()
    } else {
        reproduced_text(c.reproduced)
    };
    ComparisonRow {
        metric: c.metric.clone(),
        params: display_params(&c.params),
        base: c.base_variant.clone(),
        head: c.head_variant.clone(),
        ratio: format_ratio(c.ratio),
        ci: ci_text(c),
        p_value: p_text(c.p_value),
        verdict: c.verdict.clone(),
        reproduced: reproduced.to_string(),
    }
}

/// The comparisons furthest from a ratio of 1, either way: a halving and a
/// doubling count as the same size of change.
fn largest_changes(results: &Results) -> Vec<ChangeRow> {
    let mut all: Vec<(&ScenarioResult, &Comparison)> = results
        .scenarios
        .iter()
        .filter(|s| s.status == Status::Ok)
        .flat_map(|s| s.comparisons.iter().map(move |c| (s, c)))
        .filter(|(_, c)| c.ratio > 0.0 && c.ratio.is_finite())
        .collect();
    all.sort_by(|a, b| b.1.ratio.ln().abs().total_cmp(&a.1.ratio.ln().abs()));
    all.into_iter()
        .take(LARGEST_CHANGES)
        .map(|(s, c)| {
            let params = display_params(&c.params);
            ChangeRow {
                scenario: s.id.clone(),
                backend: s.backend.clone(),
                metric: if params.is_empty() {
                    c.metric.clone()
                } else {
                    format!("{} [{params}]", c.metric)
                },
                base: c.base_variant.clone(),
                head: c.head_variant.clone(),
                ratio: format_ratio(c.ratio),
                verdict: c.verdict.clone(),
            }
        })
        .collect()
}

/// Drops the `xmlns` attribute: inline SVG in HTML needs none, and the report
/// should hold no `http://` string that a reader could take for a link out.
fn inline_svg(svg: &str) -> String {
    svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
}
