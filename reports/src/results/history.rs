//! Run history: one compact summary per run, for trend charts and change-point
//! detection.
//!
//! # Layout
//!
//! A history file is JSON Lines: one [`HistoryRecord`] per line, oldest first,
//! appended to after each run and never rewritten.
//!
//! ```json
//! {"v":1,"run_id":"r41","git_sha":"3f2a1c9","time":"2025-06-01T02:41:13Z","medians":{"queued-index/postgres/flow-date/pop_latency[rows=1000]":0.00112}}
//! ```
//!
//! Each key of `medians` is a [`MetricKey`] printed as
//! `scenario/backend/variant/metric[params]`, so a new scenario, metric or sweep
//! point simply adds keys. A key missing from a line means the run did not
//! measure it.
//!
//! The harness finds change points in a series ([`History::series`]); this crate
//! only draws them, from a [`HistoryView`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Params, Results, Status, format_params};
use crate::error::{Error, Result};

/// The version written in each history line's `v` field.
pub const HISTORY_VERSION: u32 = 1;

/// Names one measured series across runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricKey {
    pub scenario: String,
    pub backend: String,
    pub variant: String,
    pub metric: String,
    pub params: String,
}

impl MetricKey {
    pub fn new(
        scenario: &str,
        backend: &str,
        variant: &str,
        metric: &str,
        params: &Params,
    ) -> Self {
        MetricKey {
            scenario: scenario.to_string(),
            backend: backend.to_string(),
            variant: variant.to_string(),
            metric: metric.to_string(),
            params: format_params(params),
        }
    }
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.scenario, self.backend, self.variant, self.metric
        )?;
        if !self.params.is_empty() {
            write!(f, "[{}]", self.params)?;
        }
        Ok(())
    }
}

/// One line of a history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Always [`HISTORY_VERSION`] when written by this build.
    pub v: u32,
    pub run_id: String,
    #[serde(default)]
    pub git_sha: Option<String>,
    /// When the run finished.
    pub time: Timestamp,
    /// Median by [`MetricKey`] string.
    pub medians: BTreeMap<String, f64>,
}

impl HistoryRecord {
    /// The medians of every metric of every scenario that ran to completion.
    pub fn from_results(results: &Results) -> HistoryRecord {
        let mut medians = BTreeMap::new();
        for scenario in results.scenarios.iter().filter(|s| s.status == Status::Ok) {
            for m in &scenario.metrics {
                let key = MetricKey::new(
                    &scenario.id,
                    &scenario.backend,
                    &m.variant,
                    &m.metric,
                    &m.params,
                );
                medians.insert(key.to_string(), m.summary.median);
            }
        }
        HistoryRecord {
            v: HISTORY_VERSION,
            run_id: results.run.run_id.clone(),
            git_sha: results.run.git_sha.clone(),
            time: results.run.finished_at,
            medians,
        }
    }
}

/// A whole history file, oldest run first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub records: Vec<HistoryRecord>,
}

impl History {
    /// Reads a history file. Blank lines are skipped; any other bad line is an
    /// error naming the file and line, since a silently dropped run would shift
    /// every change point after it.
    pub fn load(path: &Path) -> Result<History> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut records = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: String| Error::History {
                path: path.to_path_buf(),
                line: index + 1,
                message,
            };
            let record: HistoryRecord =
                serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            if record.v != HISTORY_VERSION {
                return Err(bad(format!(
                    "history version {} is not supported (this build reads version {HISTORY_VERSION})",
                    record.v
                )));
            }
            records.push(record);
        }
        Ok(History { records })
    }

    /// Appends one record as a line, creating the file if needed.
    pub fn append(path: &Path, record: &HistoryRecord) -> Result<()> {
        let mut line = serde_json::to_string(record).expect("history record serializes");
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        // One write call per line, so concurrent appenders cannot interleave a line.
        file.write_all(line.as_bytes())
            .map_err(|e| Error::io(path, e))
    }

    /// Every key measured in at least one run.
    pub fn keys(&self) -> BTreeSet<&str> {
        self.records
            .iter()
            .flat_map(|r| r.medians.keys().map(String::as_str))
            .collect()
    }

    /// The runs that measured `key`, oldest first.
    pub fn series(&self, key: &str) -> Vec<HistoryPoint> {
        self.records
            .iter()
            .filter_map(|r| {
                r.medians.get(key).map(|&value| HistoryPoint {
                    run_id: r.run_id.clone(),
                    git_sha: r.git_sha.clone(),
                    time: r.time,
                    value,
                })
            })
            .collect()
    }
}

/// One run's value in a [`Trend`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub run_id: String,
    pub git_sha: Option<String>,
    pub time: Timestamp,
    pub value: f64,
}

/// One series to chart, with the change points the harness found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The [`MetricKey`] string of the series.
    pub key: String,
    pub unit: String,
    pub points: Vec<HistoryPoint>,
    /// Indices into `points` where the series shifted: the first point of each
    /// new regime.
    pub change_points: Vec<usize>,
}

/// What the report shows of the history: the trends the harness chose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryView {
    pub trends: Vec<Trend>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::sample;

    #[test]
    fn appends_and_loads_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut results = sample();
        let first = HistoryRecord::from_results(&results);
        History::append(&path, &first).unwrap();
        results.run.run_id = "r2".into();
        results.scenarios[0].metrics[0].summary.median = 2.0;
        let second = HistoryRecord::from_results(&results);
        History::append(&path, &second).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "one line per run: {text}");

        let history = History::load(&path).unwrap();
        assert_eq!(history.records, vec![first, second]);
        let key = "serde/none/naive/write_time[rows=1000]";
        assert_eq!(history.keys().into_iter().collect::<Vec<_>>(), vec![key]);
        let series = history.series(key);
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].value, 1.0);
        assert_eq!(series[1].value, 2.0);
        assert_eq!(series[1].run_id, "r2");
    }

    #[test]
    fn skipped_scenarios_add_no_keys() {
        let record = HistoryRecord::from_results(&sample());
        assert!(record.medians.keys().all(|k| !k.starts_with("log-heavy/")));
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        History::append(&path, &HistoryRecord::from_results(&sample())).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(file).unwrap();
        writeln!(file, "{{\"v\":1,\"run_id\":").unwrap();
        let err = History::load(&path).unwrap_err();
        assert!(matches!(err, Error::History { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("history.jsonl:3:"), "{err}");
    }

    #[test]
    fn a_newer_history_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut record = HistoryRecord::from_results(&sample());
        record.v = 9;
        History::append(&path, &record).unwrap();
        let err = History::load(&path).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }
}
