use std::collections::HashSet;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FlowError;
use crate::expression::Renderer;
use crate::model::Level;
use crate::tasks::{Flowable, Role, TaskKind};

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
    /// Kestra's `allowWarning` (0.20): a WARNING, or a failure `allowFailure` turned into
    /// one, ends the task run SUCCESS instead.
    pub allow_warning: bool,
    /// Kestra's `runIf` (0.20): rendered when the task run would start; a false value ends it
    /// SKIPPED. `None` is Kestra's default, `"true"`.
    pub run_if: Option<String>,
    pub retry: Option<Retry>,
    /// Kestra's `timeout`: an ISO-8601 duration, or an expression that renders to one. A
    /// runnable task's attempt that runs longer fails (Kestra's `WorkerTaskCallable`); a
    /// `Pause` reads it as its own.
    pub timeout: Option<String>,
    pub log_level: Option<Level>,
    pub log_to_file: bool,
    pub kind: TaskKind,
    pub(crate) raw: Value,
}

impl Task {
    pub fn is_flowable(&self) -> bool {
        self.flowable().is_some()
    }

    pub(crate) fn flowable(&self) -> Option<&dyn Flowable> {
        match self.kind.role() {
            Role::Flowable(f) => Some(f),
            Role::Runnable(_)
            | Role::Updating(_)
            | Role::Executable(_)
            | Role::Iterative(_)
            | Role::Resuming(_) => None,
        }
    }

    /// Every child list of a flowable task (both branches of an If, every Switch case).
    pub fn children(&self) -> impl Iterator<Item = &[Task]> {
        self.flowable()
            .map(|f| f.children())
            .unwrap_or_default()
            .into_iter()
    }

    /// This task with the `retry` it inherits from a parent or its flow, in its Kestra map
    /// too, so that the worker task carrying it carries the retry.
    pub(crate) fn inheriting(&self, retry: &Retry) -> Task {
        let mut task = self.clone();
        if let Value::Object(m) = &mut task.raw
            && let Ok(v) = serde_json::to_value(retry)
        {
            m.insert("retry".into(), v);
        }
        task.retry = Some(retry.clone());
        task
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
    /// Re-reads a task carried by a `WorkerTask` (validated when its flow was loaded).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        Loader::new("worker task", None)
            .task(raw)
            .map_err(serde::de::Error::custom)
    }
}

/// The properties every task type takes, read before its own.
const COMMON: &[&str] = &[
    "id",
    "type",
    "description",
    "disabled",
    "allowFailure",
    "allowWarning",
    "runIf",
    "retry",
    "logLevel",
    "logToFile",
    "timeout",
    "workerGroup",
];

/// A flow's `taskDefaults` / `pluginDefaults` entry.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskDefault {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    values: Map<String, Value>,
}

/// Reads the tasks of one flow: applies its task defaults, keeps task ids unique, and names
/// the flow and the task in every error.
pub(crate) struct Loader<'a> {
    origin: &'a str,
    pub(crate) flow: String,
    pub(crate) defaults: Vec<TaskDefault>,
    ids: HashSet<String>,
    /// Set while loading a flow; a task re-read from the queue was validated already.
    renderer: Option<&'a Renderer>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(origin: &'a str, renderer: Option<&'a Renderer>) -> Self {
        Loader {
            origin,
            flow: "?".into(),
            defaults: Vec::new(),
            ids: HashSet::new(),
            renderer,
        }
    }

    pub(crate) fn flow_err(&self, message: impl Into<String>) -> FlowError {
        FlowError::Flow {
            origin: self.origin.to_string(),
            flow: self.flow.clone(),
            message: message.into(),
        }
    }

    fn task_err(&self, task: &str, kind: &str, message: impl Into<String>) -> FlowError {
        FlowError::Task {
            origin: self.origin.to_string(),
            flow: self.flow.clone(),
            task: task.to_string(),
            kind: kind.to_string(),
            message: message.into(),
        }
    }

    /// A list of tasks (`tasks`, `errors`, a flowable's children).
    pub(crate) fn tasks(&mut self, v: Value, field: &str) -> Result<Vec<Task>, FlowError> {
        match v {
            Value::Array(list) => list.into_iter().map(|t| self.task(t)).collect(),
            Value::Null => Ok(Vec::new()),
            _ => Err(self.flow_err(format!("`{field}` must be a list of tasks"))),
        }
    }

    /// One task: its common properties here, its own in its type's `parse`.
    pub(crate) fn task(&mut self, v: Value) -> Result<Task, FlowError> {
        let Value::Object(mut map) = v else {
            return Err(self.flow_err("a task must be a map with `id` and `type`"));
        };
        let id = match map.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(self.flow_err("a task is missing required property `id`")),
        };
        let written = match map.get("type") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(self.task_err(&id, "?", "missing required property `type`")),
        };
        let Some(type_name) = TaskKind::type_named(&written) else {
            let known: Vec<&str> = TaskKind::types().collect();
            return Err(self.task_err(
                &id,
                &written,
                format!("unknown task type (known: {})", known.join(", ")),
            ));
        };
        if self.renderer.is_some() && !self.ids.insert(id.clone()) {
            return Err(self.task_err(&id, type_name, "duplicate task id"));
        }
        // taskDefaults: fill what the task leaves unset; `forced` values win over the task's.
        for d in self.defaults.iter().filter(|d| d.kind == type_name) {
            for (k, v) in &d.values {
                if d.forced || !map.contains_key(k) {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
        let raw = Value::Object(map.clone());
        let mut props = TaskProps {
            loader: self,
            id: &id,
            type_name,
            map,
            timeout: None,
        };
        let timeout = match props.map.remove("timeout") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                props.check("timeout", &Value::String(s.clone()))?;
                props.duration("timeout", Some(s))?
            }
            Some(_) => return Err(props.error("property `timeout` must be a duration")),
        };
        props.timeout = timeout.clone();
        let disabled = props.take::<Option<bool>>("disabled")?;
        let allow_failure = props.take::<Option<bool>>("allowFailure")?;
        let allow_warning = props.take::<Option<bool>>("allowWarning")?;
        let run_if = match props.take::<Option<Value>>("runIf")? {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(v @ Value::Bool(_)) => Some(v.to_string()),
            Some(_) => return Err(props.error("property `runIf` must be a string or a boolean")),
        };
        let retry = props.take::<Option<Retry>>("retry")?;
        let log_level = props.take::<Option<Level>>("logLevel")?;
        let log_to_file = props.take::<Option<bool>>("logToFile")?;
        for k in COMMON {
            props.map.remove(*k);
        }
        let kind = TaskKind::parse(props)?;
        Ok(Task {
            id,
            type_name: type_name.to_string(),
            disabled: disabled.unwrap_or(false),
            allow_failure: allow_failure.unwrap_or(false),
            allow_warning: allow_warning.unwrap_or(false),
            run_if,
            retry,
            timeout,
            log_level,
            log_to_file: log_to_file.unwrap_or(false),
            kind,
            raw,
        })
    }
}

/// A task's own properties, as its type's `parse` reads them. Each property is taken once;
/// [`TaskProps::finish`] refuses whatever the type did not take. Every error names the flow
/// and the task, and every expression taken is checked for syntax while the flow loads.
pub struct TaskProps<'l, 'a> {
    loader: &'l mut Loader<'a>,
    id: &'l str,
    type_name: &'static str,
    map: Map<String, Value>,
    /// Every task's `timeout`, checked already, which a `Pause` reads as its own.
    timeout: Option<String>,
}

impl TaskProps<'_, '_> {
    /// The task's `timeout`, as written (Kestra's `Task#timeout`; a `Pause` redefines it).
    pub fn timeout(&self) -> Option<String> {
        self.timeout.clone()
    }

    /// A duration property: checked here when written as a duration, rendered when the task
    /// runs when written as an expression.
    pub fn duration(&self, key: &str, text: Option<String>) -> Result<Option<String>, FlowError> {
        if let Some(text) = &text
            && !text.contains("{{")
            && !text.contains("{%")
        {
            parse_duration(text).map_err(|e| self.error(format!("property `{key}`: {e}")))?;
        }
        Ok(text)
    }

    /// The task's id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// The task's Kestra type (an older alias already mapped to it).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// An error about this task.
    pub fn error(&self, message: impl Into<String>) -> FlowError {
        self.loader.task_err(self.id, self.type_name, message)
    }

    /// Checks the syntax of every expression in a property value.
    fn check(&self, path: &str, v: &Value) -> Result<(), FlowError> {
        let Some(renderer) = self.loader.renderer else {
            return Ok(());
        };
        match v {
            Value::String(s) => renderer
                .check_syntax(s)
                .map_err(|e| self.error(format!("property `{path}`: malformed expression: {e}"))),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| self.check(&format!("{path}[{i}]"), v)),
            Value::Object(m) => m
                .iter()
                .try_for_each(|(k, v)| self.check(&format!("{path}.{k}"), v)),
            _ => Ok(()),
        }
    }

    /// An optional property, deserialized (`Option<T>` for one that may be absent).
    pub fn take<T: DeserializeOwned>(&mut self, key: &str) -> Result<T, FlowError> {
        let v = self.map.remove(key).unwrap_or(Value::Null);
        self.check(key, &v)?;
        serde_json::from_value(v).map_err(|e| self.error(format!("property `{key}`: {e}")))
    }

    /// A required property, as written.
    pub fn required(&mut self, key: &str) -> Result<Value, FlowError> {
        match self.map.remove(key) {
            None | Some(Value::Null) => {
                Err(self.error(format!("missing required property `{key}`")))
            }
            Some(v) => {
                self.check(key, &v)?;
                Ok(v)
            }
        }
    }

    /// A required string; a number or boolean is read as its text, as Kestra's YAML does.
    pub fn required_string(&mut self, key: &str) -> Result<String, FlowError> {
        match self.required(key)? {
            Value::String(s) => Ok(s),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(self.error(format!("property `{key}` must be a string"))),
        }
    }

    /// A list of child tasks.
    pub fn tasks(&mut self, key: &str, required: bool) -> Result<Vec<Task>, FlowError> {
        match self.map.remove(key) {
            Some(v @ Value::Array(_)) => self.loader.tasks(v, key),
            None | Some(Value::Null) if !required => Ok(Vec::new()),
            None | Some(Value::Null) => {
                Err(self.error(format!("missing required property `{key}`")))
            }
            Some(_) => Err(self.error(format!("`{key}` must be a list of tasks"))),
        }
    }

    /// One child task, given as a value the type read itself (a Dag's `tasks[].task`).
    pub fn task(&mut self, v: Value) -> Result<Task, FlowError> {
        self.loader.task(v)
    }

    /// A map of named lists of child tasks (a Switch's `cases`), in YAML order.
    pub fn task_lists(&mut self, key: &str) -> Result<Vec<(String, Vec<Task>)>, FlowError> {
        match self.map.remove(key) {
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(name, list)| Ok((name, self.loader.tasks(list, key)?)))
                .collect(),
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(_) => Err(self.error(format!("`{key}` must be a map of lists of tasks"))),
        }
    }

    /// Every property not taken yet, deserialized at once (a type whose properties are all
    /// plain values; its `deny_unknown_fields` refuses the unknown ones).
    pub fn rest<T: DeserializeOwned>(mut self) -> Result<T, FlowError> {
        let v = Value::Object(self.remaining()?);
        serde_json::from_value(v).map_err(|e| self.error(e.to_string()))
    }

    /// Takes every property not taken yet, checked for expression syntax.
    pub fn remaining(&mut self) -> Result<Map<String, Value>, FlowError> {
        for (k, v) in &self.map {
            self.check(k, v)?;
        }
        Ok(std::mem::take(&mut self.map))
    }

    /// Refuses any property the type did not take.
    pub fn finish(self) -> Result<(), FlowError> {
        match self.map.keys().next() {
            Some(k) => Err(self.error(format!("unknown property `{k}`"))),
            None => Ok(()),
        }
    }
}

/// Kestra's `retry` property: `constant`, `exponential` or `random` delays, bounded by
/// `maxAttempt` (total attempts, the first included) and `maxDuration`. It serializes back
/// to the same map, so that a worker task can carry the retry a task inherits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum Retry {
    Constant {
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        interval: Duration,
        #[serde(alias = "maxAttempts", skip_serializing_if = "Option::is_none")]
        max_attempt: Option<u32>,
        #[serde(
            default,
            deserialize_with = "de_opt_duration",
            serialize_with = "ser_opt_duration",
            skip_serializing_if = "Option::is_none"
        )]
        max_duration: Option<Duration>,
        #[serde(default)]
        warning_on_retry: bool,
        #[serde(default)]
        behavior: RetryBehavior,
    },
    Exponential {
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        interval: Duration,
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        max_interval: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_factor: Option<f64>,
        #[serde(alias = "maxAttempts", skip_serializing_if = "Option::is_none")]
        max_attempt: Option<u32>,
        #[serde(
            default,
            deserialize_with = "de_opt_duration",
            serialize_with = "ser_opt_duration",
            skip_serializing_if = "Option::is_none"
        )]
        max_duration: Option<Duration>,
        #[serde(default)]
        warning_on_retry: bool,
        #[serde(default)]
        behavior: RetryBehavior,
    },
    Random {
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        min_interval: Duration,
        #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
        max_interval: Duration,
        #[serde(alias = "maxAttempts", skip_serializing_if = "Option::is_none")]
        max_attempt: Option<u32>,
        #[serde(
            default,
            deserialize_with = "de_opt_duration",
            serialize_with = "ser_opt_duration",
            skip_serializing_if = "Option::is_none"
        )]
        max_duration: Option<Duration>,
        #[serde(default)]
        warning_on_retry: bool,
        #[serde(default)]
        behavior: RetryBehavior,
    },
}

/// Kestra's `AbstractRetry.Behavior`: what a failure the retry covers leads to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetryBehavior {
    /// A new attempt of the failed task run, in the same execution.
    #[default]
    RetryFailedTask,
    /// The execution ends RETRIED and a new execution of the flow starts after the delay
    /// (Kestra's `ExecutionService#replay` from the start, one attempt number up).
    CreateNewExecution,
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

    pub fn behavior(&self) -> RetryBehavior {
        let (Retry::Constant { behavior, .. }
        | Retry::Exponential { behavior, .. }
        | Retry::Random { behavior, .. }) = self;
        *behavior
    }

    /// The `maxAttempt` as written (`None`: no bound).
    pub fn max_attempt(&self) -> Option<u32> {
        let (Retry::Constant { max_attempt, .. }
        | Retry::Exponential { max_attempt, .. }
        | Retry::Random { max_attempt, .. }) = self;
        *max_attempt
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

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    let d = jiff::SignedDuration::try_from(*d).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&d.to_string())
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
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
    fn a_retry_serializes_back_to_what_it_reads() {
        for yaml in [
            "type: constant\ninterval: PT1.5S\nmaxAttempt: 3\nbehavior: CREATE_NEW_EXECUTION\n",
            "type: exponential\ninterval: PT1S\nmaxInterval: PT1M\ndelayFactor: 3\nmaxDuration: PT1H\nwarningOnRetry: true\n",
            "type: random\nminInterval: PT0.1S\nmaxInterval: PT2S\n",
        ] {
            let retry: Retry = serde_yaml_ng::from_str(yaml).unwrap();
            let back: Retry =
                serde_json::from_value(serde_json::to_value(&retry).unwrap()).unwrap();
            assert_eq!(back, retry, "{yaml}");
        }
        let retry: Retry = serde_yaml_ng::from_str("type: constant\ninterval: PT1S\n").unwrap();
        assert_eq!(retry.behavior(), RetryBehavior::RetryFailedTask);
    }

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
