//! Two results files, metric by metric: the engine of `flowbench compare`.
//!
//! Every metric result of the base (scenario, backend, variant, metric, sweep point) is
//! matched with the head's and judged by [`gate::judge`] on the raw samples, so a
//! verdict is re-derived from the data, never copied from either file. The two files must
//! hold the same scenarios on the same backends; anything else is a
//! [`DiffError::Mismatch`], because a silently missing scenario would pass the gate.
//!
//! ```
//! # use harness::diff::RowVerdict;
//! # use harness::gate::Verdict;
//! assert!(RowVerdict::Judged(Verdict::Regressed).is_regression(false));
//! assert!(!RowVerdict::HeadFailed("boom".into()).is_regression(false));
//! assert!(RowVerdict::HeadFailed("boom".into()).is_regression(true));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use reports::results::history::MetricKey;
use reports::results::{Better, MetricKind, Results, ScenarioResult, Status, format_params};

use crate::drift::Drift;
use crate::gate::{self, Direction, GatePolicy, Verdict};
use crate::scenario::Scenario;
use crate::stats::BootstrapConfig;

/// The gate policy of every metric: the defaults, each scenario file's per-metric
/// overrides, and, for timing metrics, a tolerance widened to the drift the history
/// shows between runs ([`Drift`]).
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

    /// The policy for one metric. A timing metric's tolerance is the larger of the
    /// policy's and the drift measured for `key`.
    pub fn policy(&self, scenario: &str, metric: &str, key: &str, kind: MetricKind) -> GatePolicy {
        let mut policy = self
            .per_metric
            .get(&(scenario.to_string(), metric.to_string()))
            .copied()
            .unwrap_or(self.default);
        if kind == MetricKind::Timing
            && let Some(drift) = self.drift.tolerance(key)
        {
            policy.tolerance = policy.tolerance.max(drift);
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
    /// The head's scenario ran but did not measure this metric.
    Missing,
}

impl RowVerdict {
    /// Whether this row fails the gate. With `strict` (`--fail-on-regression`), a
    /// scenario that stopped working or a metric that disappeared counts too.
    pub fn is_regression(&self, strict: bool) -> bool {
        match self {
            RowVerdict::Judged(v) => *v == Verdict::Regressed,
            RowVerdict::HeadFailed(_) | RowVerdict::Missing => strict,
        }
    }

    /// A short word for tables.
    pub fn label(&self) -> &str {
        match self {
            RowVerdict::Judged(v) => crate::suite::verdict_name(*v),
            RowVerdict::HeadFailed(_) => "head failed",
            RowVerdict::Missing => "missing",
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
    /// The tolerance this row was judged with (timing or counter, as its kind is).
    pub tolerance: f64,
    pub verdict: RowVerdict,
}

/// The whole comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub rows: Vec<Row>,
    /// Things the reader should know: quick vs full runs, scenarios not compared.
    pub notes: Vec<String>,
}

impl Diff {
    /// The rows that fail the gate.
    pub fn regressions(&self, strict: bool) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(move |r| r.verdict.is_regression(strict))
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
        if b.status != Status::Ok {
            out.notes.push(format!("{}: not measured in base", key(b)));
            continue;
        }
        let head_problem = match &h.status {
            Status::Ok => None,
            Status::Failed { error } => Some(format!("failed: {error}")),
            Status::Skipped { reason } => Some(format!("skipped: {reason}")),
        };
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
                verdict: RowVerdict::Missing,
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
    }
    Ok(out)
}
