use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Log levels, ordered from the most to the least severe as in Kestra (`ERROR` < `TRACE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    /// `logLevel: WARN` keeps ERROR and WARN: a line passes when it is at least as severe.
    pub fn passes(self, threshold: Level) -> bool {
        self <= threshold
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ERROR" => Ok(Level::Error),
            "WARN" | "WARNING" => Ok(Level::Warn),
            "INFO" => Ok(Level::Info),
            "DEBUG" => Ok(Level::Debug),
            "TRACE" => Ok(Level::Trace),
            other => Err(format!("unknown log level `{other}`")),
        }
    }
}

/// One log line, as Kestra's `LogEntry`.
///
/// `id` is deterministic for task logs (`{taskRunId}:{attempt}:{seq}`): a task that is run
/// again after its worker died re-emits the same ids, and the indexer's upsert keeps one row
/// per line, so no line is lost and none is doubled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub id: String,
    pub namespace: String,
    pub flow_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub execution_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_number: Option<u32>,
    pub timestamp: Timestamp,
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    pub message: String,
}

impl LogEntry {
    /// A line the executor writes in a task run's logs (a flowable's error, a subflow it
    /// started), under the id `id`.
    pub fn from_executor(
        tr: &super::TaskRun,
        id: String,
        level: Level,
        timestamp: Timestamp,
        message: String,
    ) -> Self {
        LogEntry {
            id,
            namespace: tr.namespace.clone(),
            flow_id: tr.flow_id.clone(),
            task_id: Some(tr.task_id.clone()),
            execution_id: tr.execution_id.clone(),
            task_run_id: Some(tr.id.clone()),
            attempt_number: None,
            timestamp,
            level,
            thread: Some("executor".into()),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_threshold_keeps_more_severe_lines() {
        assert!(Level::Error.passes(Level::Warn));
        assert!(Level::Warn.passes(Level::Warn));
        assert!(!Level::Info.passes(Level::Warn));
        assert_eq!("warning".parse::<Level>().unwrap(), Level::Warn);
        assert!("loud".parse::<Level>().is_err());
    }
}
