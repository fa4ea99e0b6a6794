//! Which rows a comparison holds when a side failed, was skipped, or lacks a metric.

use reports::results::{Claim, Host, MetricResult, Params, RunMetadata, SCHEMA_VERSION, Summary};

use super::*;

fn metric(name: &str, samples: &[f64]) -> MetricResult {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    MetricResult {
        variant: "after".into(),
        metric: name.into(),
        unit: "ms".into(),
        better: Better::Lower,
        kind: MetricKind::Timing,
        params: Params::new(),
        samples: samples.to_vec(),
        summary: Summary {
            median: sorted[sorted.len() / 2],
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
            ci_low: sorted[0],
            ci_high: sorted[sorted.len() - 1],
            cov: 0.01,
            erratic: false,
            n: samples.len(),
        },
        latency: None,
    }
}

fn scenario(status: Status, metrics: Vec<MetricResult>) -> ScenarioResult {
    ScenarioResult {
        id: "log-heavy".into(),
        title: "t".into(),
        claim: Claim {
            text: "c".into(),
            kestra_figure: "k".into(),
            expected_direction: "lower".into(),
            expected_ratio: Some(0.5),
            kestra_commits: vec![],
            before: None,
            kestra_backends: vec![],
            kestra_counterpart: true,
            published: Vec::new(),
        },
        status,
        backend: "sqlite".into(),
        variants: vec![],
        metrics,
        comparisons: vec![],
        plans: vec![],
    }
}

fn results(s: ScenarioResult) -> Results {
    Results {
        schema_version: SCHEMA_VERSION,
        run: RunMetadata {
            run_id: "r".into(),
            git_sha: None,
            started_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            finished_at: "2026-01-01T00:01:00Z".parse().unwrap(),
            host: Host {
                cores: 2,
                memory_bytes: 1 << 30,
                os: "test".into(),
                kernel: "test".into(),
                rustc: "rustc".into(),
            },
            backend_versions: Default::default(),
            knobs: Default::default(),
            quick: false,
            database_urls: vec![],
        },
        scenarios: vec![s],
    }
}

const FIVE: [f64; 5] = [100.0, 101.0, 99.0, 100.5, 99.5];

fn failed() -> Status {
    Status::Failed {
        error: "no flow file".into(),
    }
}

fn skipped() -> Status {
    Status::Skipped {
        reason: "postgres is not available".into(),
    }
}

fn ok(metrics: &[(&str, &[f64])]) -> ScenarioResult {
    scenario(
        Status::Ok,
        metrics.iter().map(|(n, xs)| metric(n, xs)).collect(),
    )
}

fn run(base: ScenarioResult, head: ScenarioResult) -> Diff {
    diff(&results(base), &results(head), &Policies::default()).unwrap()
}

/// Regression test for issue 10's "a failed run must not pass": a results file whose
/// scenario failed, compared with itself, said "0 compared" and passed.
#[test]
fn a_failed_scenario_compared_with_itself_is_incomplete() {
    let d = run(scenario(failed(), vec![]), scenario(failed(), vec![]));
    assert_eq!(d.judged(), 0);
    assert_eq!(d.rows.len(), 1);
    assert!(matches!(&d.rows[0].verdict, RowVerdict::BaseFailed(e) if e.contains("no flow file")));
    assert_eq!(d.incomplete().count(), 1);
}

#[test]
fn a_head_that_failed_or_was_skipped_leaves_every_base_metric_unjudged() {
    let base = || ok(&[("wall_ms", &FIVE), ("cpu_ms", &FIVE)]);
    for status in [failed(), skipped()] {
        let d = run(base(), scenario(status, vec![]));
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.incomplete().count(), 2);
        assert!(d.rows.iter().all(|r| r.label() == "head failed"));
    }
}

#[test]
fn a_database_skipped_in_the_base_only_is_a_note() {
    let d = run(scenario(skipped(), vec![]), ok(&[("wall_ms", &FIVE)]));
    assert!(d.rows.is_empty());
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    assert!(d.notes[0].contains("skipped in base"), "{:?}", d.notes);
    // Skipped on both sides: nothing to say, nothing missing.
    let d = run(scenario(skipped(), vec![]), scenario(skipped(), vec![]));
    assert!(d.rows.is_empty() && d.notes.is_empty());
    // Skipped in the base, failed in the head: the head broke.
    let d = run(scenario(skipped(), vec![]), scenario(failed(), vec![]));
    assert_eq!(d.incomplete().count(), 1);
}

#[test]
fn a_metric_on_one_side_only_is_missing() {
    let d = run(
        ok(&[("wall_ms", &FIVE), ("cpu_ms", &FIVE)]),
        ok(&[("wall_ms", &FIVE), ("task_duration_ms", &FIVE)]),
    );
    let label = |m: &str| {
        d.rows
            .iter()
            .find(|r| r.metric == m)
            .map(Row::label)
            .unwrap()
    };
    assert_eq!(label("wall_ms"), "unchanged");
    assert_eq!(label("cpu_ms"), "missing in head");
    assert_eq!(label("task_duration_ms"), "missing in base");
    assert_eq!((d.judged(), d.incomplete().count()), (1, 2));
}

#[test]
fn three_against_three_is_counted_as_insufficient() {
    let three = [100.0, 101.0, 99.0];
    let slower = [300.0, 301.0, 299.0];
    let d = run(ok(&[("wall_ms", &three)]), ok(&[("wall_ms", &slower)]));
    assert_eq!(d.rows[0].label(), "insufficient samples");
    assert_eq!(d.insufficient().count(), 1);
    assert_eq!(d.regressions().count(), 0);
    assert_eq!(d.incomplete().count(), 0);
}

#[test]
fn a_noisy_clear_regression_is_labelled_noisy() {
    let base = [11.2, 12.0, 14.6, 12.4, 10.3];
    let head = [268.0, 281.5, 255.3, 290.1, 262.7];
    let d = run(ok(&[("wall_ms", &base)]), ok(&[("wall_ms", &head)]));
    assert_eq!(d.rows[0].label(), "regressed (noisy)");
    assert_eq!(d.regressions().count(), 1);
    assert!(d.rows[0].tolerance > 0.05, "the widened tolerance is shown");
}
