//! Two results files, metric by metric: the engine of `flowbench compare`.
//!
//! Every metric result of the base (scenario, backend, variant, metric, sweep point) is
//! matched with the head's and judged by [`gate::judge`] on the raw samples, so a
//! verdict is re-derived from the data, never copied from either file. The two files must
//! hold the same scenarios on the same backends; anything else is a
//! [`DiffError::Mismatch`], because a silently missing scenario would pass the gate.
//!
//! What one side measured and the other did not is a row of its own, never a note: a
//! comparison with holes cannot say "nothing regressed" ([`Diff::incomplete`]).
//!
//! | base | head | rows |
//! |---|---|---|
//! | ok | ok | one per metric: judged, or [`RowVerdict::MissingInHead`] / [`RowVerdict::MissingInBase`] |
//! | ok | failed or skipped | [`RowVerdict::HeadFailed`] for each base metric |
//! | failed | any | one [`RowVerdict::BaseFailed`] for the scenario |
//! | skipped | ok | none, a note: the head's numbers have no baseline yet |
//! | skipped | failed | one [`RowVerdict::HeadFailed`] |
//! | skipped | skipped | none |
//!
//! A database that is not reachable tonight is skipped by `flowbench run`; a baseline
//! that measured it makes the comparison incomplete, while a baseline that did not
//! (a database added since) is only noted, so the next baseline can pick it up.
//!
//! ```
//! # use harness::diff::RowVerdict;
//! # use harness::gate::Verdict;
//! assert!(RowVerdict::Judged(Verdict::Regressed).is_regression());
//! assert!(!RowVerdict::HeadFailed("boom".into()).is_regression());
//! assert!(RowVerdict::HeadFailed("boom".into()).is_incomplete());
//! assert!(!RowVerdict::Judged(Verdict::InsufficientSamples).is_incomplete());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use reports::results::history::MetricKey;
use reports::results::{Better, MetricKind, Results, ScenarioResult, Status, format_params};

use crate::drift::Drift;
use crate::gate::{self, Direction, GatePolicy, Verdict};
use crate::scenario::Scenario;
use crate::stats::BootstrapConfig;

/// The gate policy of every metric: the defaults, each scenario file's per-metric
/// overrides, and a tolerance widened to the drift the history shows between runs
/// ([`Drift`]).
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// The policy of a metric no scenario file overrides.
    pub default: GatePolicy,
    /// By (scenario id, metric name), from `gate = { … }` in `scenario.toml`.
    pub per_metric: BTreeMap<(String, String), GatePolicy>,
    /// Between-run drift by metric key.
    pub drift: Drift,
}

impl Policies {
    /// `default`, with the overrides the scenario files declare.
    pub fn from_scenarios(default: GatePolicy, scenarios: &[Scenario]) -> Policies {
        let per_metric = scenarios
            .iter()
            .flat_map(|s| {
                s.metrics
                    .iter()
                    .filter(|m| m.gate.is_some())
                    .map(|m| ((s.id.clone(), m.name.clone()), m.policy(&default)))
            })
            .collect();
        Policies {
            default,
            per_metric,
            drift: Drift::default(),
        }
    }

    /// The policy for one metric. Its tolerance (timing or counter, as `kind` is) is the
    /// larger of the policy's and the drift measured for `key`. A counter that is truly
    /// deterministic shows no drift, so only counters that move between runs widen.
    pub fn policy(&self, scenario: &str, metric: &str, key: &str, kind: MetricKind) -> GatePolicy {
        let mut policy = self
            .per_metric
            .get(&(scenario.to_string(), metric.to_string()))
            .copied()
            .unwrap_or(self.default);
        if let Some(drift) = self.drift.tolerance(key) {
            match kind {
                MetricKind::Timing => policy.tolerance = policy.tolerance.max(drift),
                MetricKind::Counter => {
                    policy.counter_tolerance = policy.counter_tolerance.max(drift);
                }
            }
        }
        policy
    }
}

impl From<GatePolicy> for Policies {
    fn from(default: GatePolicy) -> Policies {
        Policies {
            default,
            ..Policies::default()
        }
    }
}

/// Why two results files cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The files do not hold the same scenarios on the same backends.
    #[error(
        "the results do not hold the same scenarios: only in base: [{}]; only in head: [{}]",
        only_base.join(", "),
        only_head.join(", ")
    )]
    Mismatch {
        /// `scenario/backend` keys found only in the base.
        only_base: Vec<String>,
        /// `scenario/backend` keys found only in the head.
        only_head: Vec<String>,
    },
}

/// The outcome for one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowVerdict {
    /// Both sides measured it; the gate's verdict.
    Judged(Verdict),
    /// The base measured it; the head's scenario failed or was skipped (its message).
    HeadFailed(String),
    /// The base's scenario failed (its message): nothing to judge the head against.
    BaseFailed(String),
    /// The head's scenario ran but did not measure this metric.
    MissingInHead,
    /// The head measured this metric; the base's scenario ran without it.
    MissingInBase,
}

impl RowVerdict {
    /// Whether this row is a regression: the gate fails with exit 3.
    pub fn is_regression(&self) -> bool {
        *self == RowVerdict::Judged(Verdict::Regressed)
    }

    /// Whether one side failed or lacks what the other measured: the comparison is
    /// incomplete, and a regression could hide in the hole.
    pub fn is_incomplete(&self) -> bool {
        !matches!(self, RowVerdict::Judged(_))
    }

    /// Whether the samples were too few for the U test to reach α.
    pub fn is_insufficient(&self) -> bool {
        *self == RowVerdict::Judged(Verdict::InsufficientSamples)
    }

    /// A short word for tables.
    pub fn label(&self) -> &str {
        match self {
            RowVerdict::Judged(v) => crate::suite::verdict_name(*v),
            RowVerdict::HeadFailed(_) => "head failed",
            RowVerdict::BaseFailed(_) => "base failed",
            RowVerdict::MissingInHead => "missing in head",
            RowVerdict::MissingInBase => "missing in base",
        }
    }
}

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub backend: String,
    pub variant: String,
    pub metric: String,
    /// `rows=1000,threads=8`, or empty.
    pub params: String,
    pub unit: String,
    pub base_median: f64,
    /// `NaN` when the head has no value.
    pub head_median: f64,
    /// Head over base, with its 95% CI; `NaN` when not judged.
    pub ratio: f64,
    pub ci: (f64, f64),
    pub p_value: Option<f64>,
    /// The tolerance this row was judged with (timing or counter, as its kind is),
    /// widened for noise when [`Row::noisy`].
    pub tolerance: f64,
    pub verdict: RowVerdict,
    /// A timing metric judged with a tolerance widened for noise ([`gate::Judgement`]).
    pub noisy: bool,
}

impl Row {
    /// The verdict as tables show it, e.g. "regressed (noisy)".
    pub fn label(&self) -> String {
        match &self.verdict {
            RowVerdict::Judged(v) => crate::suite::verdict_label(*v, self.noisy),
            other => other.label().to_string(),
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub rows: Vec<Row>,
    /// Things the reader should know: quick vs full runs, scenarios not compared.
    pub notes: Vec<String>,
}

impl Diff {
    /// The rows that regressed: the gate fails (exit 3).
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict.is_regression())
    }

    /// The rows one side failed or lacks: the comparison is incomplete (exit 1).
    pub fn incomplete(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict.is_incomplete())
    }

    /// The rows with too few samples to reach α.
    pub fn insufficient(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict.is_insufficient())
    }

    /// How many rows both sides measured and the gate judged.
    pub fn judged(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !r.verdict.is_incomplete())
            .count()
    }
}

fn key(s: &ScenarioResult) -> String {
    format!("{}/{}", s.id, s.backend)
}

/// Compares `head` against `base`, each metric under its policy in `policies`.
pub fn diff(base: &Results, head: &Results, policies: &Policies) -> Result<Diff, DiffError> {
    let base_keys: BTreeSet<String> = base.scenarios.iter().map(key).collect();
    let head_keys: BTreeSet<String> = head.scenarios.iter().map(key).collect();
    if base_keys != head_keys {
        return Err(DiffError::Mismatch {
            only_base: base_keys.difference(&head_keys).cloned().collect(),
            only_head: head_keys.difference(&base_keys).cloned().collect(),
        });
    }
    let mut out = Diff::default();
    if base.run.quick != head.run.quick {
        out.notes.push(format!(
            "base is a {} run and head a {} run: their numbers are not comparable",
            if base.run.quick { "--quick" } else { "full" },
            if head.run.quick { "--quick" } else { "full" },
        ));
    }
    let boot = BootstrapConfig::default();
    for b in &base.scenarios {
        let Some(h) = head.scenarios.iter().find(|h| key(h) == key(b)) else {
            continue;
        };
        let problem = |status: &Status| match status {
            Status::Ok => None,
            Status::Failed { error } => Some(format!("failed: {error}")),
            Status::Skipped { reason } => Some(format!("skipped: {reason}")),
        };
        let scenario_row = |verdict| Row {
            scenario: b.id.clone(),
            backend: b.backend.clone(),
            variant: "-".into(),
            metric: "-".into(),
            params: String::new(),
            unit: String::new(),
            base_median: f64::NAN,
            head_median: f64::NAN,
            ratio: f64::NAN,
            ci: (f64::NAN, f64::NAN),
            p_value: None,
            tolerance: f64::NAN,
            verdict,
            noisy: false,
        };
        match (&b.status, &h.status) {
            (Status::Failed { error }, head_status) => {
                let also = match problem(head_status) {
                    Some(p) => format!("; head {p}"),
                    None => String::new(),
                };
                out.rows.push(scenario_row(RowVerdict::BaseFailed(format!(
                    "{error}{also}"
                ))));
                continue;
            }
            (Status::Skipped { reason }, Status::Ok) => {
                out.notes.push(format!(
                    "{}: skipped in base ({reason}), measured in head: no baseline to judge it against yet",
                    key(b)
                ));
                continue;
            }
            (Status::Skipped { .. }, Status::Failed { error }) => {
                out.rows.push(scenario_row(RowVerdict::HeadFailed(format!(
                    "failed: {error}"
                ))));
                continue;
            }
            (Status::Skipped { .. }, Status::Skipped { .. }) => continue,
            (Status::Ok, _) => {}
        }
        let head_problem = problem(&h.status);
        for m in &b.metrics {
            let metric_key = MetricKey::new(&b.id, &b.backend, &m.variant, &m.metric, &m.params);
            let policy = policies.policy(&b.id, &m.metric, &metric_key.to_string(), m.kind);
            let mut row = Row {
                scenario: b.id.clone(),
                backend: b.backend.clone(),
                variant: m.variant.clone(),
                metric: m.metric.clone(),
                params: format_params(&m.params),
                unit: m.unit.clone(),
                base_median: m.summary.median,
                head_median: f64::NAN,
                ratio: f64::NAN,
                ci: (f64::NAN, f64::NAN),
                p_value: None,
                tolerance: match m.kind {
                    MetricKind::Timing => policy.tolerance,
                    MetricKind::Counter => policy.counter_tolerance,
                },
                verdict: RowVerdict::MissingInHead,
                noisy: false,
            };
            if let Some(problem) = &head_problem {
                row.verdict = RowVerdict::HeadFailed(problem.clone());
                out.rows.push(row);
                continue;
            }
            let Some(hm) = h.metric(&m.variant, &m.metric, &m.params) else {
                out.rows.push(row);
                continue;
            };
            row.head_median = hm.summary.median;
            let direction = match m.better {
                Better::Lower => Direction::LowerIsBetter,
                Better::Higher => Direction::HigherIsBetter,
            };
            let kind = match m.kind {
                MetricKind::Timing => gate::MetricKind::Timing,
                MetricKind::Counter => gate::MetricKind::Counter,
            };
            match gate::judge(&m.samples, &hm.samples, direction, kind, &policy, &boot) {
                Ok(j) => {
                    row.ratio = j.ratio;
                    row.ci = j
                        .ratio_ci
                        .map_or((j.ratio, j.ratio), |c| (c.lower, c.upper));
                    row.p_value = j.p_value;
                    row.tolerance = j.tolerance;
                    row.noisy = j.noisy;
                    row.verdict = RowVerdict::Judged(j.verdict);
                }
                Err(e) => {
                    out.notes.push(format!(
                        "{}/{}/{}: cannot be judged: {e}",
                        key(b),
                        m.variant,
                        m.metric
                    ));
                    continue;
                }
            }
            out.rows.push(row);
        }
        if head_problem.is_none() {
            // What the head measured and the base did not: a new metric or variant.
            for hm in &h.metrics {
                if b.metric(&hm.variant, &hm.metric, &hm.params).is_none() {
                    out.rows.push(Row {
                        variant: hm.variant.clone(),
                        metric: hm.metric.clone(),
                        params: format_params(&hm.params),
                        unit: hm.unit.clone(),
                        head_median: hm.summary.median,
                        ..scenario_row(RowVerdict::MissingInBase)
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
