//! From a workload's samples to a `results.json` scenario entry, and the run's metadata.
//!
//! This is where measurement meets statistics and the gate: every series gets
//! [`stats::summarize`]; every pair of a non-base variant with the base (first) variant
//! at the same sweep point gets [`gate::judge`]; the comparison the claim is judged on
//! gets `reproduced`, decided from the measured ratio ([`claim_reproduced`]).

use reports::results::{
    self, Better, Claim, Comparison, Host, MetricKind, MetricResult, Params, ScenarioResult,
    Status, Summary,
};

use crate::gate::{self, Direction, GatePolicy, Verdict};
use crate::scenario::{ExpectedChange, ParamValue, Scenario};
use crate::stats::{self, BootstrapConfig};
use crate::workload::{Recorder, WorkloadError};

/// The scenario's claim as results files write it, for a result on `backend`.
pub fn claim(s: &Scenario, backend: &str) -> Claim {
    Claim {
        text: s.claim.text.clone(),
        kestra_figure: s.claim.kestra_figure.clone(),
        expected_direction: match s.claim.direction {
            ExpectedChange::Lower => "lower".into(),
            ExpectedChange::Higher => "higher".into(),
        },
        expected_ratio: Some(s.claim.expected_ratio),
        kestra_commits: s.claim.kestra_commits.clone(),
        before: s.claim.before.clone(),
        kestra_backends: s
            .claim
            .kestra_backends
            .iter()
            .map(|b| b.name().to_string())
            .collect(),
        kestra_counterpart: s.claim.has_kestra_counterpart(backend),
        published: s.claim.published.clone(),
    }
}

/// A result with no numbers: skipped, failed or interrupted.
pub fn without_numbers(s: &Scenario, backend: &str, status: Status) -> ScenarioResult {
    ScenarioResult {
        id: s.id.clone(),
        title: s.title.clone(),
        claim: claim(s, backend),
        status,
        backend: backend.to_string(),
        variants: Vec::new(),
        metrics: Vec::new(),
        comparisons: Vec::new(),
        plans: Vec::new(),
    }
}

/// The status a workload error is recorded with.
pub fn status_of(e: &WorkloadError) -> Status {
    match e {
        WorkloadError::Skipped(reason) => Status::Skipped {
            reason: reason.clone(),
        },
        WorkloadError::Failed(error) => Status::Failed {
            error: error.clone(),
        },
        WorkloadError::Interrupted => Status::Failed {
            error: "interrupted (Ctrl-C) before it finished".into(),
        },
    }
}

/// Converts a scenario parameter to the results type.
pub fn param_value(v: &ParamValue) -> results::ParamValue {
    match v {
        ParamValue::Integer(i) => results::ParamValue::Int(*i),
        ParamValue::Float(f) => results::ParamValue::Float(*f),
        ParamValue::Bool(b) => results::ParamValue::Bool(*b),
        ParamValue::Text(t) => results::ParamValue::Text(t.clone()),
    }
}

fn better(d: Direction) -> Better {
    match d {
        Direction::LowerIsBetter => Better::Lower,
        Direction::HigherIsBetter => Better::Higher,
    }
}

fn kind(k: gate::MetricKind) -> MetricKind {
    match k {
        gate::MetricKind::Timing => MetricKind::Timing,
        gate::MetricKind::Counter => MetricKind::Counter,
    }
}

/// The verdict as results files spell it.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Improved => "improved",
        Verdict::Regressed => "regressed",
        Verdict::Unchanged => "unchanged",
        Verdict::Erratic => "erratic",
        Verdict::InsufficientSamples => "insufficient samples",
    }
}

/// The verdict as tables show it: its name, with " (noisy)" when it was reached with a
/// tolerance widened for noise ([`gate::Judgement::noisy`]). Erratic says so already, and
/// too few samples reach no verdict, so those two stay bare.
pub fn verdict_label(v: Verdict, noisy: bool) -> String {
    match v {
        Verdict::Improved | Verdict::Regressed | Verdict::Unchanged if noisy => {
            format!("{} (noisy)", verdict_name(v))
        }
        _ => verdict_name(v).to_string(),
    }
}

/// Whether a measured comparison reproduces the claim.
///
/// The claim holds when the change goes the claimed way with confidence (the ratio's
/// CI lies wholly on that side of 1; with no CI, the ratio alone) and reaches at least
/// half the claimed effect: for "lower" with expected ratio `r`, a measured ratio at or
/// below `1 − (1 − r)/2`; for "higher", at or above `1 + (r − 1)/2`. Half, because
/// Kestra's figures come from its machines and databases, not ours: the direction and
/// order of magnitude are what can be reproduced.
pub fn claim_reproduced(
    direction: ExpectedChange,
    expected: f64,
    ratio: f64,
    ci: Option<(f64, f64)>,
) -> bool {
    match direction {
        ExpectedChange::Lower => {
            let threshold = 1.0 - (1.0 - expected).max(0.0) / 2.0;
            ci.is_none_or(|(_, hi)| hi < 1.0) && ratio < 1.0 && ratio <= threshold
        }
        ExpectedChange::Higher => {
            let threshold = 1.0 + (expected - 1.0).max(0.0) / 2.0;
            ci.is_none_or(|(lo, _)| lo > 1.0) && ratio > 1.0 && ratio >= threshold
        }
    }
}

/// Builds the scenario's results from what its workload recorded.
pub fn analyse(s: &Scenario, backend: &str, rec: &Recorder, policy: &GatePolicy) -> ScenarioResult {
    let boot = BootstrapConfig::default();
    let mut metrics = Vec::new();
    for series in rec.series.iter().filter(|x| !x.samples.is_empty()) {
        let Some(m) = s.metric(&series.metric) else {
            continue;
        };
        let p = m.policy(policy);
        let Ok(sum) = stats::summarize(&series.samples, &boot, p.cov_threshold) else {
            continue;
        };
        metrics.push(MetricResult {
            variant: series.variant.clone(),
            metric: series.metric.clone(),
            unit: m.unit.clone(),
            better: better(m.better),
            kind: kind(m.kind),
            params: series.params.clone(),
            samples: series.samples.clone(),
            summary: Summary {
                median: sum.median,
                mean: sum.mean,
                ci_low: sum.median_ci.lower,
                ci_high: sum.median_ci.upper,
                cov: sum.cov,
                erratic: sum.erratic && m.kind == gate::MetricKind::Timing,
                n: sum.n,
            },
            latency: series.latency,
        });
    }

    let base = s.variants.first().map(|v| v.name.as_str()).unwrap_or("");
    let mut comparisons = Vec::new();
    for head in s.variants.iter().skip(1) {
        for m in &s.metrics {
            for b in rec
                .series
                .iter()
                .filter(|x| x.variant == base && x.metric == m.name && !x.samples.is_empty())
            {
                let Some(h) = rec.series.iter().find(|x| {
                    x.variant == head.name
                        && x.metric == m.name
                        && x.params == b.params
                        && !x.samples.is_empty()
                }) else {
                    continue;
                };
                let Ok(j) = gate::judge(
                    &b.samples,
                    &h.samples,
                    m.better,
                    m.kind,
                    &m.policy(policy),
                    &boot,
                ) else {
                    continue;
                };
                comparisons.push(Comparison {
                    metric: m.name.clone(),
                    base_variant: base.to_string(),
                    head_variant: head.name.clone(),
                    params: b.params.clone(),
                    ratio: j.ratio,
                    ci_low: j.ratio_ci.map_or(j.ratio, |c| c.lower),
                    ci_high: j.ratio_ci.map_or(j.ratio, |c| c.upper),
                    p_value: j.p_value,
                    verdict: verdict_name(j.verdict).into(),
                    reproduced: None,
                    tolerance: Some(match m.kind {
                        gate::MetricKind::Timing => m.policy(policy).tolerance,
                        gate::MetricKind::Counter => m.policy(policy).counter_tolerance,
                    }),
                });
            }
        }
    }
    mark_claim(s, &mut comparisons);

    ScenarioResult {
        id: s.id.clone(),
        title: s.title.clone(),
        claim: claim(s, backend),
        status: Status::Ok,
        backend: backend.to_string(),
        variants: rec.variants.clone(),
        metrics,
        comparisons,
        plans: rec.plans.clone(),
    }
}

/// Marks the comparison the claim is judged on: the claim's metric (or the first
/// declared), last variant against the first, at the largest sweep point (the one
/// furthest along every numeric parameter; the last one recorded on a tie).
fn mark_claim(s: &Scenario, comparisons: &mut [Comparison]) {
    let metric = s
        .claim
        .metric
        .clone()
        .or_else(|| s.metrics.first().map(|m| m.name.clone()));
    let (Some(metric), Some(last)) = (metric, s.variants.last()) else {
        return;
    };
    let size = |p: &Params| -> f64 { p.values().filter_map(|v| v.as_f64()).sum() };
    let chosen = comparisons
        .iter()
        .enumerate()
        .filter(|(_, c)| c.metric == metric && c.head_variant == last.name)
        .max_by(|(ia, a), (ib, b)| size(&a.params).total_cmp(&size(&b.params)).then(ia.cmp(ib)))
        .map(|(i, _)| i);
    if let Some(i) = chosen {
        let c = &mut comparisons[i];
        let ci = (c.ci_low != c.ratio || c.ci_high != c.ratio).then_some((c.ci_low, c.ci_high));
        c.reproduced = Some(claim_reproduced(
            s.claim.direction,
            s.claim.expected_ratio,
            c.ratio,
            ci,
        ));
    }
}

/// The host the run is made on.
pub fn host() -> Host {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    Host {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes,
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        rustc: command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
    }
}

/// `git rev-parse HEAD`, when run inside a checkout.
pub fn git_sha() -> Option<String> {
    command_line("git", &["rev-parse", "HEAD"])
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_need_direction_confidence_and_half_the_effect() {
        use ExpectedChange::*;
        // Kestra: −50%. Measured −40% with a CI below 1: reproduced.
        assert!(claim_reproduced(Lower, 0.5, 0.6, Some((0.55, 0.65))));
        // −10%: the right way, but not half the claimed effect.
        assert!(!claim_reproduced(Lower, 0.5, 0.9, Some((0.85, 0.95))));
        // A CI that straddles 1 is no evidence.
        assert!(!claim_reproduced(Lower, 0.5, 0.6, Some((0.4, 1.1))));
        // The wrong way.
        assert!(!claim_reproduced(Lower, 0.8, 1.3, None));
        // Higher: +30% claimed, +20% measured.
        assert!(claim_reproduced(Higher, 1.3, 1.2, Some((1.1, 1.3))));
        assert!(!claim_reproduced(Higher, 1.3, 1.1, Some((1.05, 1.2))));
    }
}
