use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::model::Level;
use crate::tasks::{
    DebugReturn, Fail, ForEach, IfTask, Log, OutputValues, Parallel, Sequential, Sleep, Switch,
};

/// One task of a flow: the properties every Kestra task has, and its kind.
///
/// The task serializes as the Kestra map it was parsed from (after `taskDefaults`), which is
/// what a `WorkerTask` carries through the queue; deserializing parses and validates it again.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    /// The full Kestra type, e.g. `io.kestra.plugin.core.log.Log`.
    pub type_name: String,
    pub disabled: bool,
    pub allow_failure: bool,
    pub retry: Option<Retry>,
    pub log_level: Option<Level>,
    pub log_to_file: bool,
    pub kind: TaskKind,
    pub(crate) raw: Value,
}

/// The task types flowbench runs. Flowable kinds are resolved by the executor; the others
/// run on a worker thread.
#[derive(Debug, Clone)]
pub enum TaskKind {
    Log(Log),
    Return(DebugReturn),
    OutputValues(OutputValues),
    Sleep(Sleep),
    Fail(Fail),
    Sequential(Sequential),
    Parallel(Parallel),
    If(IfTask),
    Switch(Switch),
    ForEach(ForEach),
}

impl Task {
    pub fn is_flowable(&self) -> bool {
        matches!(
            self.kind,
            TaskKind::Sequential(_)
                | TaskKind::Parallel(_)
                | TaskKind::If(_)
                | TaskKind::Switch(_)
                | TaskKind::ForEach(_)
        )
    }

    /// Every child list of a flowable task (both branches of an If, every Switch case).
    pub fn children(&self) -> impl Iterator<Item = &[Task]> {
        let lists: Vec<&[Task]> = match &self.kind {
            TaskKind::Sequential(t) => vec![&t.tasks],
            TaskKind::Parallel(t) => vec![&t.tasks],
            TaskKind::ForEach(t) => vec![&t.tasks],
            TaskKind::If(t) => vec![&t.then, &t.else_],
            TaskKind::Switch(t) => {
                let mut v: Vec<&[Task]> = t.cases.iter().map(|(_, c)| c.as_slice()).collect();
                v.push(&t.defaults);
                v
            }
            _ => vec![],
        };
        lists.into_iter()
    }

    /// The Kestra map this task was parsed from.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

impl serde::Serialize for Task {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        super::parse::parse_task_value(raw).map_err(serde::de::Error::custom)
    }
}

/// Kestra's `retry` property: `constant`, `exponential` or `random` delays, bounded by
/// `maxAttempt` (total attempts, the first included) and `maxDuration`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum Retry {
    Constant {
        #[serde(deserialize_with = "de_duration")]
        interval: Duration,
        #[serde(alias = "maxAttempts")]
        max_attempt: Option<u32>,
        #[serde(default, deserialize_with = "de_opt_duration")]
        max_duration: Option<Duration>,
        #[serde(default)]
        warning_on_retry: bool,
    },
    Exponential {
        #[serde(deserialize_with = "de_duration")]
        interval: Duration,
        #[serde(deserialize_with = "de_duration")]
        max_interval: Duration,
        #[serde(default)]
        delay_factor: Option<f64>,
        #[serde(alias = "maxAttempts")]
        max_attempt: Option<u32>,
        #[serde(default, deserialize_with = "de_opt_duration")]
        max_duration: Option<Duration>,
        #[serde(default)]
        warning_on_retry: bool,
    },
    Random {
        #[serde(deserialize_with = "de_duration")]
        min_interval: Duration,
        #[serde(deserialize_with = "de_duration")]
        max_interval: Duration,
        #[serde(alias = "maxAttempts")]
        max_attempt: Option<u32>,
        #[serde(default, deserialize_with = "de_opt_duration")]
        max_duration: Option<Duration>,
        #[serde(default)]
        warning_on_retry: bool,
    },
}

impl Retry {
    /// Total attempts allowed, the first included (Failsafe's `withMaxAttempts`).
    pub fn max_attempts(&self) -> u32 {
        let (Retry::Constant { max_attempt, .. }
        | Retry::Exponential { max_attempt, .. }
        | Retry::Random { max_attempt, .. }) = self;
        max_attempt.unwrap_or(u32::MAX).max(1)
    }

    pub fn max_duration(&self) -> Option<Duration> {
        let (Retry::Constant { max_duration, .. }
        | Retry::Exponential { max_duration, .. }
        | Retry::Random { max_duration, .. }) = self;
        *max_duration
    }

    pub fn warning_on_retry(&self) -> bool {
        let (Retry::Constant {
            warning_on_retry, ..
        }
        | Retry::Exponential {
            warning_on_retry, ..
        }
        | Retry::Random {
            warning_on_retry, ..
        }) = self;
        *warning_on_retry
    }

    /// The delay before attempt `next` (2 for the first retry).
    pub fn delay_before(&self, next: u32) -> Duration {
        match self {
            Retry::Constant { interval, .. } => *interval,
            Retry::Exponential {
                interval,
                max_interval,
                delay_factor,
                ..
            } => {
                let factor = delay_factor.unwrap_or(2.0);
                let d = interval.as_secs_f64() * factor.powi(next.saturating_sub(2) as i32);
                Duration::from_secs_f64(d.min(max_interval.as_secs_f64()))
            }
            Retry::Random {
                min_interval,
                max_interval,
                ..
            } => {
                // Deterministic midpoint: flowbench measures, so retries must not add noise.
                (*min_interval + *max_interval) / 2
            }
        }
    }
}

/// Parses Kestra's ISO-8601 durations (`PT1S`, `PT0.5S`, `PT10M`, `P1D`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .trim()
        .parse()
        .map_err(|e| format!("invalid ISO-8601 duration `{text}`: {e}"))?;
    let d = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("invalid duration `{text}`: {e}"))?;
    Duration::try_from(d).map_err(|_| format!("negative duration `{text}`"))
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kestra() {
        assert_eq!(parse_duration("PT1S").unwrap(), Duration::from_secs(1));
        assert_eq!(
            parse_duration("PT0.25S").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("P1D").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn exponential_retry_grows_and_caps() {
        let r: Retry = serde_json::from_value(serde_json::json!({
            "type": "exponential", "interval": "PT1S", "maxInterval": "PT5S", "maxAttempt": 5
        }))
        .unwrap();
        assert_eq!(r.delay_before(2), Duration::from_secs(1));
        assert_eq!(r.delay_before(3), Duration::from_secs(2));
        assert_eq!(r.delay_before(4), Duration::from_secs(4));
        assert_eq!(r.delay_before(5), Duration::from_secs(5));
        assert_eq!(r.max_attempts(), 5);
    }
}
