//! The `results.json` schema, shared by the harness (which writes it) and the
//! report writers (which read it).
//!
//! # Layout
//!
//! A results file is one JSON object. Version 1 looks like this (values shortened):
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "run": {
//!     "run_id": "2025-06-01T02-00-00Z-3f2a1c9",
//!     "git_sha": "3f2a1c9…",
//!     "started_at": "2025-06-01T02:00:00Z",
//!     "finished_at": "2025-06-01T02:41:13Z",
//!     "host": { "cores": 8, "memory_bytes": 34359738368, "os": "Debian 12",
//!               "kernel": "6.1.0-21-amd64", "rustc": "rustc 1.85.0" },
//!     "backend_versions": { "postgres": "16.3", "sqlite": "3.45.1" },
//!     "knobs": { "serde.mode": "batched", "worker.threads": "32" },
//!     "quick": false,
//!     "database_urls": [ "postgres://bench:***@localhost/bench" ]
//!   },
//!   "scenarios": [ {
//!     "id": "queued-index", "title": "Queued executions index",
//!     "claim": { "text": "…", "kestra_figure": "about 50% less total time",
//!                "expected_direction": "less", "expected_ratio": 0.5,
//!                "kestra_commits": ["34fa6ce91"], "before": "index (tenant, namespace, flow_id)…",
//!                "kestra_counterpart": true },
//!     "status": { "state": "ok" },
//!     "backend": "postgres",
//!     "variants": [ { "name": "flow", "knobs": { "queued.index": "flow" }, "params": {} } ],
//!     "metrics": [ {
//!       "variant": "flow", "metric": "pop_latency", "unit": "s",
//!       "better": "lower", "kind": "timing", "params": { "rows": 1000 },
//!       "samples": [ 0.0012, 0.0011 ],
//!       "summary": { "median": 0.00115, "mean": 0.00115, "ci_low": 0.0011,
//!                    "ci_high": 0.0012, "cov": 0.06, "erratic": false, "n": 2 },
//!       "latency": { "p50": 0.0011, "p90": 0.0013, "p99": 0.002, "p999": 0.004 }
//!     } ],
//!     "comparisons": [ {
//!       "metric": "total_time", "base_variant": "flow", "head_variant": "flow-date",
//!       "params": {}, "ratio": 0.52, "ci_low": 0.48, "ci_high": 0.56,
//!       "p_value": 0.0002, "verdict": "improved", "reproduced": true,
//!       "tolerance": 0.05
//!     } ]
//!   } ]
//! }
//! ```
//!
//! Nothing in the schema names a particular scenario: a scenario is a list of
//! variants, a list of metric results, each at a sweep point given by its `params`
//! (`{"rows": 1000}`, `{"threads": 8}`, `{"rate_per_min": 500}`), and a list of
//! comparisons. A new scenario therefore needs no schema change.
//!
//! A comparison's `ratio` is head over base, of the metric's median, so a ratio
//! below 1 means the head variant measured less. Its `verdict` and `reproduced`
//! are decided by the harness's statistics; the reports only show them.
//!
//! A claim's `kestra_backends` lists where Kestra made the change (absent: on every
//! backend), and `kestra_counterpart` says whether this result's backend is one of
//! them. Where it is not (`jdbc.json-mapping` on SQLite or MySQL: Kestra changed
//! PostgreSQL only), the result is "no Kestra counterpart" and never counts as a
//! reproduction; [`ScenarioResult::claim_outcome`] gives the outcome to show.
//!
//! [`Results::load`] checks `schema_version` before anything else, so a file
//! written by a newer flowbench is refused with a message that names the file and
//! both versions, rather than with a confusing missing-field error.
//!
//! Run history lives beside this in a JSON Lines file; see [`history`].

pub mod history;
mod redact;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use history::{History, HistoryPoint, HistoryRecord, HistoryView, MetricKey, Trend};
pub use redact::redact_url;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A sweep point or variant parameters: `{"rows": 1000}`, `{"threads": 8}`.
///
/// A `BTreeMap` so that keys print and compare in one stable order.
pub type Params = BTreeMap<String, ParamValue>;

/// One whole `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    pub run: RunMetadata,
    pub scenarios: Vec<ScenarioResult>,
}

/// Where, when and how a run was made, so that two runs can be judged comparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetadata {
    pub run_id: String,
    /// `None` when the harness ran outside a git checkout.
    #[serde(default)]
    pub git_sha: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub host: Host,
    /// Database server versions by backend name (`"postgres": "16.3"`).
    #[serde(default)]
    pub backend_versions: BTreeMap<String, String>,
    /// The knob values in force for the run, by knob name as in DESIGN.md.
    #[serde(default)]
    pub knobs: BTreeMap<String, String>,
    /// Whether the run used `--quick`; quick numbers are not comparable to full ones.
    #[serde(default)]
    pub quick: bool,
    /// The databases the run used, passed through [`redact_url`] before writing,
    /// because results files are published as CI artefacts.
    #[serde(default)]
    pub database_urls: Vec<String>,
}

/// The machine a run was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub cores: u32,
    pub memory_bytes: u64,
    pub os: String,
    pub kernel: String,
    /// `rustc --version` of the toolchain that built the harness.
    pub rustc: String,
}

/// One scenario on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario folder name, e.g. `queued-index`.
    pub id: String,
    pub title: String,
    pub claim: Claim,
    pub status: Status,
    /// `sqlite`, `postgres`, `mysql`, `sqlserver`, or `none` for scenarios that use
    /// no database (such as `serde`).
    pub backend: String,
    pub variants: Vec<VariantResult>,
    pub metrics: Vec<MetricResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
    /// The plans the database chose for the statement a knob changes, per variant and
    /// sweep point, where the scenario records them (the `execution_queued` pop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<QueryPlan>,
}

/// A database's plan for one statement of one variant at one sweep point: the
/// statement, the database's own `EXPLAIN` text, and what the harness read from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPlan {
    pub variant: String,
    /// The sweep point, e.g. `{"rows": 100000, "tenant": "none"}`.
    #[serde(default)]
    pub params: Params,
    /// The index the variant builds for this statement.
    pub index: String,
    /// The statement, with placeholders where values were bound.
    pub statement: String,
    /// The `EXPLAIN` output, as the database printed it.
    pub plan: String,
    /// Whether the plan reads through `index`; `None` when the text does not say.
    #[serde(default)]
    pub uses_index: Option<bool>,
    /// Whether the plan sorts the rows itself; `None` when the text does not say.
    #[serde(default)]
    pub sorts: Option<bool>,
}

/// Kestra's published claim that a scenario checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim in words.
    pub text: String,
    /// Kestra's figure as published, e.g. "20–40% faster".
    pub kestra_figure: String,
    /// "faster", "less", "more", "same" … as the scenario declares it.
    pub expected_direction: String,
    /// The head/base ratio Kestra's figure implies, when it implies one.
    #[serde(default)]
    pub expected_ratio: Option<f64>,
    /// The Kestra commits the base ("before") variant's code path follows, e.g.
    /// `["84d845cde"]` or `["9b8a1c482", "plugin-serdes 7c4a3a3"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kestra_commits: Vec<String>,
    /// What the "before" path does, in a phrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The backends on which Kestra made the claimed change; empty when it made it on
    /// every backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kestra_backends: Vec<String>,
    /// Whether Kestra made the change on this result's backend. When `false` the knob
    /// was measured all the same, but there is no Kestra claim to reproduce here: the
    /// result is "no Kestra counterpart", never a reproduction, whatever the claim
    /// comparison's `reproduced` says. [`ScenarioResult::claim_outcome`] applies this.
    #[serde(default = "counterpart_by_default")]
    pub kestra_counterpart: bool,
    /// Kestra's published results for the same measurement, drawn beside the run's own
    /// on the charts whose x axis is the same sweep parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<PublishedSeries>,
}

/// One series of published figures, e.g. Kestra OSS 0.23.4's B1 latency at each rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedSeries {
    /// Who published it and what it is: "Kestra OSS 0.23.4, average latency".
    pub label: String,
    /// The sweep parameter its x values are in, e.g. `rate_per_min`.
    pub x: String,
    /// The unit of its y values, e.g. `ms`; it is drawn only on charts in that unit.
    pub unit: String,
    /// `[x, y]` pairs as published.
    #[serde(default)]
    pub points: Vec<[f64; 2]>,
    /// A published ceiling on x with no y (a highest sustained rate), drawn as a
    /// vertical line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<f64>,
}

/// Files written before `kestra_counterpart` existed judged every backend.
fn counterpart_by_default() -> bool {
    true
}

/// What a scenario result says about Kestra's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claim comparison went the claimed way, far enough.
    Reproduced,
    /// It did not.
    NotReproduced,
    /// Kestra made no such change on this backend, so nothing is reproduced or refuted.
    NoKestraCounterpart,
    /// Measured, but no comparison was marked as the claim's.
    NotJudged,
}

impl ClaimOutcome {
    /// The words reports show.
    pub fn text(self) -> &'static str {
        match self {
            ClaimOutcome::Reproduced => "reproduced",
            ClaimOutcome::NotReproduced => "not reproduced",
            ClaimOutcome::NoKestraCounterpart => "no Kestra counterpart",
            ClaimOutcome::NotJudged => "not judged",
        }
    }
}

/// Whether a scenario produced numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed { error: String },
    Skipped { reason: String },
}

/// One variant: a named set of knob values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    #[serde(default)]
    pub knobs: BTreeMap<String, String>,
    /// Fixed parameters of the variant (threads, rows, rate) that are not swept.
    #[serde(default)]
    pub params: Params,
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

/// What kind of quantity a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Noisy: wall time, CPU time, RSS, throughput.
    Timing,
    /// Deterministic: allocations, bytes allocated, rows written.
    Counter,
}

/// One metric of one variant at one sweep point, with its raw samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub variant: String,
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub kind: MetricKind,
    /// The sweep point, e.g. `{"rows": 1000}`; empty when the metric is not swept.
    #[serde(default)]
    pub params: Params,
    pub samples: Vec<f64>,
    pub summary: Summary,
    /// Latency percentiles at this point, for metrics measured as HDR histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Percentiles>,
}

/// Statistics over a metric's samples, computed by the harness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub median: f64,
    pub mean: f64,
    /// Bootstrap 95% confidence interval of the median.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Coefficient of variation.
    pub cov: f64,
    /// Set when `cov` exceeds the harness's limit: the numbers should not be trusted.
    pub erratic: bool,
    pub n: usize,
}

/// Latency percentiles, in the metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

/// Head against base for one metric at one sweep point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: String,
    pub base_variant: String,
    pub head_variant: String,
    #[serde(default)]
    pub params: Params,
    /// Head median over base median.
    pub ratio: f64,
    /// 95% confidence interval of `ratio`.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Mann–Whitney U p-value; `None` for deterministic counters, which are
    /// compared exactly.
    #[serde(default)]
    pub p_value: Option<f64>,
    /// "improved", "regressed", "unchanged", "erratic" or "insufficient samples", as the
    /// harness decided.
    pub verdict: String,
    /// Whether this comparison reproduces the scenario's claim; `None` when this
    /// comparison is not the one the claim is judged on. On a backend where
    /// `claim.kestra_counterpart` is false this only says whether the ratio would
    /// pass; see [`ScenarioResult::claim_outcome`].
    #[serde(default)]
    pub reproduced: Option<bool>,
    /// The gate's tolerance for this metric: a ratio between `1 / (1 + t)` and
    /// `1 + t` is no change worth reporting. `None` in files that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// A parameter value: sweep points are mostly integers, but a variant may be
/// parameterised by a format name or a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl ParamValue {
    /// The value as a number, for use as a chart axis.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            ParamValue::Bool(_) | ParamValue::Text(_) => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

impl From<i64> for ParamValue {
    fn from(v: i64) -> Self {
        ParamValue::Int(v)
    }
}

impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Float(v)
    }
}

impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Text(v.to_string())
    }
}

/// `rows=1000,threads=8`, or the empty string for no parameters.
pub fn format_params(params: &Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `rows=1000, threads=8`: [`format_params`] spaced for reading in charts and tables.
pub fn display_params(params: &Params) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Results {
    /// Reads and checks a results file.
    ///
    /// The version is checked before the rest of the schema, so a newer file is
    /// refused with [`Error::UnsupportedVersion`] rather than a field error.
    pub fn load(path: &Path) -> Result<Results> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Results::from_json(&text, path)
    }

    /// Parses results from JSON text; `origin` is the file named in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Results> {
        /// Only the version, so that it can be checked on any JSON object.
        #[derive(Deserialize)]
        struct Probe {
            schema_version: Option<u32>,
        }
        let malformed = |source| Error::Malformed {
            path: origin.to_path_buf(),
            source,
        };
        let probe: Probe = serde_json::from_str(text).map_err(malformed)?;
        match probe.schema_version {
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(Error::UnsupportedVersion {
                    path: origin.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            None => {
                return Err(malformed(serde::de::Error::missing_field("schema_version")));
            }
        }
        serde_json::from_str(text).map_err(malformed)
    }

    /// Writes the results as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("results serialize to JSON");
        std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
    }
}

impl ScenarioResult {
    /// The metric result for a variant, metric and sweep point, if measured.
    pub fn metric(&self, variant: &str, metric: &str, params: &Params) -> Option<&MetricResult> {
        self.metrics
            .iter()
            .find(|m| m.variant == variant && m.metric == metric && &m.params == params)
    }

    /// The comparison the claim is judged on: the first with `reproduced` set.
    pub fn claim_comparison(&self) -> Option<&Comparison> {
        self.comparisons.iter().find(|c| c.reproduced.is_some())
    }

    /// The claim's outcome on this backend; `None` when the scenario did not run to
    /// the end (its [`Status`] says why).
    ///
    /// A backend without a Kestra counterpart is never a reproduction, even when the
    /// measured ratio would pass: count reproductions with this, not with
    /// [`Comparison::reproduced`].
    pub fn claim_outcome(&self) -> Option<ClaimOutcome> {
        if self.status != Status::Ok {
            return None;
        }
        if !self.claim.kestra_counterpart {
            return Some(ClaimOutcome::NoKestraCounterpart);
        }
        Some(match self.claim_comparison().and_then(|c| c.reproduced) {
            Some(true) => ClaimOutcome::Reproduced,
            Some(false) => ClaimOutcome::NotReproduced,
            None => ClaimOutcome::NotJudged,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small but complete results value: two scenarios, one skipped.
    pub(crate) fn sample() -> Results {
        let summary = |median: f64| Summary {
            median,
            mean: median * 1.01,
            ci_low: median * 0.95,
            ci_high: median * 1.05,
            cov: 0.03,
            erratic: false,
            n: 3,
        };
        Results {
            schema_version: SCHEMA_VERSION,
            run: RunMetadata {
                run_id: "r1".into(),
                git_sha: Some("abc123".into()),
                started_at: "2025-06-01T02:00:00Z".parse().unwrap(),
                finished_at: "2025-06-01T02:30:00Z".parse().unwrap(),
                host: Host {
                    cores: 2,
                    memory_bytes: 4 << 30,
                    os: "Debian 12".into(),
                    kernel: "6.1".into(),
                    rustc: "rustc 1.85.0".into(),
                },
                backend_versions: [("sqlite".to_string(), "3.45".to_string())].into(),
                knobs: [("serde.mode".to_string(), "batched".to_string())].into(),
                quick: true,
                database_urls: vec![redact_url("postgres://u:secret@h/db")],
            },
            scenarios: vec![
                ScenarioResult {
                    id: "serde".into(),
                    title: "FileSerde".into(),
                    claim: Claim {
                        text: "Batched serde is faster".into(),
                        kestra_figure: "20–40% faster".into(),
                        expected_direction: "faster".into(),
                        expected_ratio: Some(0.7),
                        kestra_commits: vec!["9b8a1c482".into()],
                        before: Some("a fresh serializer per record".into()),
                        kestra_backends: vec![],
                        kestra_counterpart: true,
                        published: Vec::new(),
                    },
                    status: Status::Ok,
                    backend: "none".into(),
                    variants: vec![VariantResult {
                        name: "naive".into(),
                        knobs: [("serde.mode".to_string(), "naive".to_string())].into(),
                        params: Params::new(),
                    }],
                    metrics: vec![MetricResult {
                        variant: "naive".into(),
                        metric: "write_time".into(),
                        unit: "s".into(),
                        better: Better::Lower,
                        kind: MetricKind::Timing,
                        params: [("rows".to_string(), ParamValue::Int(1000))].into(),
                        samples: vec![1.0, 1.1, 0.9],
                        summary: summary(1.0),
                        latency: Some(Percentiles {
                            p50: 1.0,
                            p90: 1.2,
                            p99: 1.5,
                            p999: 2.0,
                        }),
                    }],
                    comparisons: vec![Comparison {
                        metric: "write_time".into(),
                        base_variant: "naive".into(),
                        head_variant: "batched".into(),
                        params: Params::new(),
                        ratio: 0.7,
                        ci_low: 0.65,
                        ci_high: 0.75,
                        p_value: Some(0.01),
                        verdict: "improved".into(),
                        reproduced: Some(true),
                        tolerance: Some(0.05),
                    }],
                    plans: vec![QueryPlan {
                        variant: "naive".into(),
                        params: [("rows".to_string(), ParamValue::Int(1000))].into(),
                        index: "ix_example".into(),
                        statement: "SELECT 1 WHERE x = ?".into(),
                        plan: "SEARCH t USING INDEX ix_example (x=?)".into(),
                        uses_index: Some(true),
                        sorts: Some(false),
                    }],
                },
                ScenarioResult {
                    id: "log-heavy".into(),
                    title: "Log-heavy task".into(),
                    claim: Claim {
                        text: "Batched log indexing".into(),
                        kestra_figure: "up to 10×".into(),
                        expected_direction: "faster".into(),
                        expected_ratio: None,
                        kestra_commits: vec![],
                        before: None,
                        kestra_backends: vec![],
                        kestra_counterpart: true,
                        published: Vec::new(),
                    },
                    status: Status::Skipped {
                        reason: "no postgres".into(),
                    },
                    backend: "postgres".into(),
                    variants: vec![],
                    metrics: vec![],
                    comparisons: vec![],
                    plans: vec![],
                },
            ],
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        let results = sample();
        results.save(&path).unwrap();
        let loaded = Results::load(&path).unwrap();
        assert_eq!(loaded, results);
        // Timestamps are written as RFC 3339 and the status is tagged.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"2025-06-01T02:00:00Z\""), "{text}");
        assert!(text.contains("\"state\": \"skipped\""), "{text}");
        assert!(!text.contains("secret"));
    }

    #[test]
    fn rejects_a_newer_schema_version_naming_the_file() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["schema_version"] = 2.into();
        let err = Results::from_json(&value.to_string(), Path::new("x/results.json")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedVersion {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("x/results.json"), "{message}");
        assert!(message.contains("version 2"), "{message}");
    }

    #[test]
    fn rejects_a_missing_version_and_bad_json() {
        let err = Results::from_json(r#"{"run": {}}"#, Path::new("a.json")).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("schema_version"), "{err}");

        let err = Results::from_json("{not json", Path::new("b.json")).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert_eq!(err.path(), Some(Path::new("b.json")));
    }

    #[test]
    fn rejects_a_version_1_file_missing_fields() {
        let err = Results::from_json(r#"{"schema_version": 1, "run": {}}"#, Path::new("c.json"))
            .unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
        assert!(err.to_string().starts_with("c.json: "), "{err}");
    }

    #[test]
    fn files_without_the_claim_metadata_judge_every_backend() {
        let mut value = serde_json::to_value(sample()).unwrap();
        let claim = value["scenarios"][0]["claim"].as_object_mut().unwrap();
        for key in [
            "kestra_commits",
            "before",
            "kestra_backends",
            "kestra_counterpart",
        ] {
            claim.remove(key);
        }
        let loaded = Results::from_json(&value.to_string(), Path::new("old.json")).unwrap();
        let serde = &loaded.scenarios[0];
        assert!(serde.claim.kestra_counterpart);
        assert!(serde.claim.kestra_commits.is_empty() && serde.claim.before.is_none());
        assert_eq!(serde.claim_outcome(), Some(ClaimOutcome::Reproduced));
    }

    #[test]
    fn no_kestra_counterpart_overrides_a_passing_ratio() {
        let mut results = sample();
        let serde = &mut results.scenarios[0];
        serde.claim.kestra_backends = vec!["postgres".into()];
        serde.claim.kestra_counterpart = false;
        assert_eq!(serde.claim_comparison().unwrap().reproduced, Some(true));
        assert_eq!(
            serde.claim_outcome(),
            Some(ClaimOutcome::NoKestraCounterpart)
        );
        assert_eq!(
            ClaimOutcome::NoKestraCounterpart.text(),
            "no Kestra counterpart"
        );
        // A result that did not run says nothing about the claim.
        assert_eq!(results.scenarios[1].claim_outcome(), None);
    }

    #[test]
    fn param_values_keep_their_json_type() {
        let params: Params =
            serde_json::from_str(r#"{"rows": 1000, "ratio": 0.5, "format": "ion", "warm": true}"#)
                .unwrap();
        assert_eq!(params["rows"], ParamValue::Int(1000));
        assert_eq!(params["ratio"], ParamValue::Float(0.5));
        assert_eq!(params["format"], ParamValue::Text("ion".into()));
        assert_eq!(params["warm"], ParamValue::Bool(true));
        assert_eq!(
            format_params(&params),
            "format=ion,ratio=0.5,rows=1000,warm=true"
        );
    }
}
