use std::collections::HashSet;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::task::{Retry, Task, TaskKind};
use super::{Concurrency, Flow, Input, Trigger};
use crate::expression::Renderer;
use crate::model::{Label, Level};
use crate::tasks;

/// Why a flow could not be loaded. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The text is not valid YAML.
    #[error("{origin}: invalid YAML{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Yaml {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    /// A flow-level property is missing or wrong.
    #[error("{origin}: flow `{flow}`: {message}")]
    Flow {
        origin: String,
        flow: String,
        message: String,
    },
    /// A task is wrong: unknown type, missing or unknown property, bad expression…
    #[error("{origin}: flow `{flow}`, task `{task}` ({kind}): {message}")]
    Task {
        origin: String,
        flow: String,
        task: String,
        kind: String,
        message: String,
    },
}

const TOP_LEVEL: &[&str] = &[
    "id",
    "namespace",
    "revision",
    "description",
    "labels",
    "inputs",
    "variables",
    "tasks",
    "errors",
    "disabled",
    "concurrency",
    "triggers",
    "taskDefaults",
    "pluginDefaults",
    "tenantId",
    "deleted",
];

const COMMON: &[&str] = &[
    "id",
    "type",
    "description",
    "disabled",
    "allowFailure",
    "retry",
    "logLevel",
    "logToFile",
    "timeout",
    "workerGroup",
];

/// Old (pre-0.17) Kestra type names that still appear in real flows.
const ALIASES: &[(&str, &str)] = &[
    ("io.kestra.core.tasks.log.Log", tasks::LOG),
    ("io.kestra.core.tasks.debugs.Return", tasks::RETURN),
    ("io.kestra.core.tasks.executions.Fail", tasks::FAIL),
    ("io.kestra.core.tasks.flows.Sequential", tasks::SEQUENTIAL),
    ("io.kestra.core.tasks.flows.Parallel", tasks::PARALLEL),
    ("io.kestra.core.tasks.flows.If", tasks::IF),
    ("io.kestra.core.tasks.flows.Switch", tasks::SWITCH),
    ("io.kestra.core.tasks.flows.Pause", tasks::SLEEP),
];

const KNOWN_TYPES: &[&str] = &[
    tasks::LOG,
    tasks::RETURN,
    tasks::OUTPUT_VALUES,
    tasks::SLEEP,
    tasks::FAIL,
    tasks::SEQUENTIAL,
    tasks::PARALLEL,
    tasks::IF,
    tasks::SWITCH,
    tasks::FOR_EACH,
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskDefault {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    values: Map<String, Value>,
}

struct Ctx<'a> {
    origin: &'a str,
    flow: String,
    defaults: Vec<TaskDefault>,
    ids: HashSet<String>,
    /// Set while loading a flow; a task re-read from the queue was validated already.
    renderer: Option<&'a Renderer>,
}

impl Ctx<'_> {
    fn flow_err(&self, message: impl Into<String>) -> FlowError {
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
}

/// Parses and validates a flow. `origin` names the source in errors (a path, or `api`).
pub fn parse_flow(source: &str, origin: &str) -> Result<Flow, FlowError> {
    let doc: Value = serde_yaml_ng::from_str(source).map_err(|e| FlowError::Yaml {
        origin: origin.to_string(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    let Value::Object(mut doc) = doc else {
        return Err(FlowError::Yaml {
            origin: origin.to_string(),
            line: None,
            message: "a flow must be a YAML map".into(),
        });
    };
    let id = match doc.remove("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        _ => {
            return Err(FlowError::Flow {
                origin: origin.into(),
                flow: "?".into(),
                message: "missing required property `id`".into(),
            });
        }
    };
    let renderer = Renderer::new();
    let mut ctx = Ctx {
        origin,
        flow: id.clone(),
        defaults: Vec::new(),
        ids: HashSet::new(),
        renderer: Some(&renderer),
    };
    if let Some(bad) = doc.keys().find(|k| !TOP_LEVEL.contains(&k.as_str())) {
        return Err(ctx.flow_err(format!("unknown property `{bad}`")));
    }
    let namespace = match doc.remove("namespace") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        _ => return Err(ctx.flow_err("missing required property `namespace`")),
    };
    ctx.flow = format!("{namespace}.{id}");
    for key in ["taskDefaults", "pluginDefaults"] {
        if let Some(v) = doc.remove(key) {
            let defaults: Vec<TaskDefault> =
                serde_json::from_value(v).map_err(|e| ctx.flow_err(format!("`{key}`: {e}")))?;
            ctx.defaults.extend(defaults);
        }
    }
    let revision = prop::<Option<i32>>(&ctx, &mut doc, "revision")?.unwrap_or(1);
    let disabled = prop::<Option<bool>>(&ctx, &mut doc, "disabled")?.unwrap_or(false);
    let labels = parse_labels(doc.remove("labels")).map_err(|m| ctx.flow_err(m))?;
    let inputs = prop::<Option<Vec<Input>>>(&ctx, &mut doc, "inputs")?.unwrap_or_default();
    let mut seen_inputs = HashSet::new();
    for input in &inputs {
        input.check_type().map_err(|m| ctx.flow_err(m))?;
        if !seen_inputs.insert(input.id.as_str()) {
            return Err(ctx.flow_err(format!("duplicate input id `{}`", input.id)));
        }
    }
    let variables =
        prop::<Option<Map<String, Value>>>(&ctx, &mut doc, "variables")?.unwrap_or_default();
    let concurrency = prop::<Option<Concurrency>>(&ctx, &mut doc, "concurrency")?;
    if concurrency.as_ref().is_some_and(|c| c.limit == 0) {
        return Err(ctx.flow_err("`concurrency.limit` must be at least 1"));
    }
    let triggers = parse_triggers(&ctx, doc.remove("triggers"))?;
    let tasks = match doc.remove("tasks") {
        Some(v) => parse_tasks(&mut ctx, v, "tasks")?,
        None => return Err(ctx.flow_err("missing required property `tasks`")),
    };
    if tasks.is_empty() {
        return Err(ctx.flow_err("`tasks` must hold at least one task"));
    }
    let errors = match doc.remove("errors") {
        Some(v) => parse_tasks(&mut ctx, v, "errors")?,
        None => Vec::new(),
    };
    Ok(Flow {
        id,
        namespace,
        revision,
        disabled,
        labels,
        inputs,
        variables,
        tasks,
        errors,
        concurrency,
        triggers,
        source: source.to_string(),
    })
}

/// Re-reads a task carried by a `WorkerTask` (already validated when its flow was loaded).
pub(crate) fn parse_task_value(raw: Value) -> Result<Task, FlowError> {
    let mut ctx = Ctx {
        origin: "worker task",
        flow: "?".into(),
        defaults: Vec::new(),
        ids: HashSet::new(),
        renderer: None,
    };
    parse_task(&mut ctx, raw)
}

fn prop<T: DeserializeOwned>(
    ctx: &Ctx,
    doc: &mut Map<String, Value>,
    key: &str,
) -> Result<T, FlowError> {
    serde_json::from_value(doc.remove(key).unwrap_or(Value::Null))
        .map_err(|e| ctx.flow_err(format!("`{key}`: {e}")))
}

/// Kestra accepts labels as a map or as a list of `{key, value}`.
pub(crate) fn parse_labels(v: Option<Value>) -> Result<Vec<Label>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(m
            .into_iter()
            .map(|(key, v)| Label {
                key,
                value: match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            })
            .collect()),
        Some(v @ Value::Array(_)) => {
            serde_json::from_value(v).map_err(|e| format!("`labels`: {e}"))
        }
        Some(_) => Err("`labels` must be a map or a list of {key, value}".into()),
    }
}

fn parse_triggers(ctx: &Ctx, v: Option<Value>) -> Result<Vec<Trigger>, FlowError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Array(list) = v else {
        return Err(ctx.flow_err("`triggers` must be a list"));
    };
    list.into_iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap_or("?").to_string();
            let kind = t["type"].as_str().unwrap_or("?").to_string();
            let err = |m: &str| ctx.flow_err(format!("trigger `{id}` ({kind}): {m}"));
            match kind.as_str() {
                "io.kestra.plugin.core.trigger.Webhook"
                | "io.kestra.core.models.triggers.types.Webhook" => {
                    let key = t["key"]
                        .as_str()
                        .ok_or_else(|| err("missing required property `key`"))?;
                    Ok(Trigger::Webhook {
                        id,
                        key: key.to_string(),
                    })
                }
                "io.kestra.plugin.core.trigger.Schedule"
                | "io.kestra.core.models.triggers.types.Schedule" => Ok(Trigger::Schedule {
                    cron: t["cron"].as_str().unwrap_or_default().to_string(),
                    id,
                }),
                _ => Err(err(
                    "unknown trigger type (known: io.kestra.plugin.core.trigger.Webhook, io.kestra.plugin.core.trigger.Schedule)",
                )),
            }
        })
        .collect()
}

fn parse_tasks(ctx: &mut Ctx, v: Value, field: &str) -> Result<Vec<Task>, FlowError> {
    match v {
        Value::Array(list) => list.into_iter().map(|t| parse_task(ctx, t)).collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(ctx.flow_err(format!("`{field}` must be a list of tasks"))),
    }
}

fn parse_task(ctx: &mut Ctx, v: Value) -> Result<Task, FlowError> {
    let Value::Object(mut map) = v else {
        return Err(ctx.flow_err("a task must be a map with `id` and `type`"));
    };
    let id = match map.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ctx.flow_err("a task is missing required property `id`")),
    };
    let mut kind_name = match map.get("type") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ctx.task_err(&id, "?", "missing required property `type`")),
    };
    if let Some((_, new)) = ALIASES.iter().find(|(old, _)| *old == kind_name) {
        kind_name = new.to_string();
    }
    if !KNOWN_TYPES.contains(&kind_name.as_str()) {
        return Err(ctx.task_err(
            &id,
            &kind_name,
            format!("unknown task type (known: {})", KNOWN_TYPES.join(", ")),
        ));
    }
    if ctx.renderer.is_some() && !ctx.ids.insert(id.clone()) {
        return Err(ctx.task_err(&id, &kind_name, "duplicate task id"));
    }
    // taskDefaults: fill what the task leaves unset; `forced` values win over the task's.
    for d in ctx.defaults.iter().filter(|d| d.kind == kind_name) {
        for (k, v) in &d.values {
            if d.forced || !map.contains_key(k) {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    let raw = Value::Object(map.clone());
    let err = |ctx: &Ctx, m: String| ctx.task_err(&id, &kind_name, m);

    let disabled = take::<Option<bool>>(&mut map, "disabled").map_err(|m| err(ctx, m))?;
    let allow_failure = take::<Option<bool>>(&mut map, "allowFailure").map_err(|m| err(ctx, m))?;
    let retry = take::<Option<Retry>>(&mut map, "retry").map_err(|m| err(ctx, m))?;
    let log_level = take::<Option<Level>>(&mut map, "logLevel").map_err(|m| err(ctx, m))?;
    let log_to_file = take::<Option<bool>>(&mut map, "logToFile").map_err(|m| err(ctx, m))?;
    for k in COMMON {
        map.remove(*k);
    }

    if let Some(renderer) = ctx.renderer {
        check_expressions(renderer, &kind_name, &map).map_err(|m| err(ctx, m))?;
    }

    let kind = match kind_name.as_str() {
        tasks::LOG => TaskKind::Log(props(map).map_err(|m| err(ctx, m))?),
        tasks::RETURN => TaskKind::Return(props(map).map_err(|m| err(ctx, m))?),
        tasks::OUTPUT_VALUES => TaskKind::OutputValues(props(map).map_err(|m| err(ctx, m))?),
        tasks::SLEEP => TaskKind::Sleep(props(map).map_err(|m| err(ctx, m))?),
        tasks::FAIL => TaskKind::Fail(props(map).map_err(|m| err(ctx, m))?),
        tasks::SEQUENTIAL => {
            let children = children(ctx, &mut map, "tasks", true, &id, &kind_name)?;
            no_more(map).map_err(|m| err(ctx, m))?;
            TaskKind::Sequential(tasks::Sequential { tasks: children })
        }
        tasks::PARALLEL => {
            let children = children(ctx, &mut map, "tasks", true, &id, &kind_name)?;
            let concurrent =
                take::<Option<u32>>(&mut map, "concurrent").map_err(|m| err(ctx, m))?;
            no_more(map).map_err(|m| err(ctx, m))?;
            TaskKind::Parallel(tasks::Parallel {
                tasks: children,
                concurrent: concurrent.unwrap_or(0),
            })
        }
        tasks::IF => {
            let then = children(ctx, &mut map, "then", true, &id, &kind_name)?;
            let else_ = children(ctx, &mut map, "else", false, &id, &kind_name)?;
            let condition = required_string(&mut map, "condition").map_err(|m| err(ctx, m))?;
            no_more(map).map_err(|m| err(ctx, m))?;
            TaskKind::If(tasks::IfTask {
                condition,
                then,
                else_,
            })
        }
        tasks::SWITCH => {
            let value = required_string(&mut map, "value").map_err(|m| err(ctx, m))?;
            let mut cases = Vec::new();
            match map.remove("cases") {
                Some(Value::Object(c)) => {
                    for (case, list) in c {
                        cases.push((case, parse_tasks(ctx, list, "cases")?));
                    }
                }
                None | Some(Value::Null) => {}
                Some(_) => return Err(err(ctx, "`cases` must be a map of lists of tasks".into())),
            }
            let defaults = children(ctx, &mut map, "defaults", false, &id, &kind_name)?;
            no_more(map).map_err(|m| err(ctx, m))?;
            TaskKind::Switch(tasks::Switch {
                value,
                cases,
                defaults,
            })
        }
        tasks::FOR_EACH => {
            let children = children(ctx, &mut map, "tasks", true, &id, &kind_name)?;
            let values = map
                .remove("values")
                .ok_or_else(|| err(ctx, "missing required property `values`".into()))?;
            let limit =
                take::<Option<u32>>(&mut map, "concurrencyLimit").map_err(|m| err(ctx, m))?;
            no_more(map).map_err(|m| err(ctx, m))?;
            TaskKind::ForEach(tasks::ForEach {
                values,
                concurrency_limit: limit.unwrap_or(1),
                tasks: children,
            })
        }
        other => unreachable!("type `{other}` passed KNOWN_TYPES but has no parser"),
    };
    Ok(Task {
        id,
        type_name: kind_name,
        disabled: disabled.unwrap_or(false),
        allow_failure: allow_failure.unwrap_or(false),
        retry,
        log_level,
        log_to_file: log_to_file.unwrap_or(false),
        kind,
        raw,
    })
}

fn children(
    ctx: &mut Ctx,
    map: &mut Map<String, Value>,
    key: &str,
    required: bool,
    id: &str,
    kind: &str,
) -> Result<Vec<Task>, FlowError> {
    match map.remove(key) {
        Some(v @ Value::Array(_)) => parse_tasks(ctx, v, key),
        None | Some(Value::Null) if !required => Ok(Vec::new()),
        None | Some(Value::Null) => {
            Err(ctx.task_err(id, kind, format!("missing required property `{key}`")))
        }
        Some(_) => Err(ctx.task_err(id, kind, format!("`{key}` must be a list of tasks"))),
    }
}

fn take<T: DeserializeOwned>(map: &mut Map<String, Value>, key: &str) -> Result<T, String> {
    serde_json::from_value(map.remove(key).unwrap_or(Value::Null))
        .map_err(|e| format!("property `{key}`: {e}"))
}

fn required_string(map: &mut Map<String, Value>, key: &str) -> Result<String, String> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) => Err(format!("missing required property `{key}`")),
        Some(_) => Err(format!("property `{key}` must be a string")),
    }
}

fn no_more(map: Map<String, Value>) -> Result<(), String> {
    match map.keys().next() {
        Some(k) => Err(format!("unknown property `{k}`")),
        None => Ok(()),
    }
}

fn props<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, String> {
    serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())
}

/// Checks the syntax of every expression in a task's own properties, so that a malformed
/// `{{ … }}` is reported when the flow is loaded, before anything runs.
fn check_expressions(
    renderer: &Renderer,
    kind: &str,
    map: &Map<String, Value>,
) -> Result<(), String> {
    fn walk(renderer: &Renderer, path: &str, v: &Value) -> Result<(), String> {
        match v {
            Value::String(s) => renderer
                .check_syntax(s)
                .map_err(|e| format!("property `{path}`: malformed expression: {e}")),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .try_for_each(|(i, v)| walk(renderer, &format!("{path}[{i}]"), v)),
            Value::Object(m) => m
                .iter()
                .try_for_each(|(k, v)| walk(renderer, &format!("{path}.{k}"), v)),
            _ => Ok(()),
        }
    }
    for (k, v) in map {
        // Child task lists were removed before this check; they are checked on their own.
        if matches!(kind, tasks::SWITCH) && k == "cases" {
            continue;
        }
        walk(renderer, k, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(yaml: &str) -> String {
        parse_flow(yaml, "bad.yaml").unwrap_err().to_string()
    }

    #[test]
    fn parses_benchmark_02_with_nested_branches() {
        let flow = parse_flow(
            r#"
id: benchmark02
namespace: benchmarks
inputs:
  - id: condition
    type: BOOL
    defaults: true
tasks:
  - id: if1
    type: io.kestra.plugin.core.flow.If
    condition: "{{inputs.condition}}"
    then:
      - id: hello-true-1
        type: io.kestra.plugin.core.log.Log
        message: Hello True 1
    else:
      - id: hello-false-1
        type: io.kestra.plugin.core.log.Log
        message: Hello False 1
"#,
            "b2.yaml",
        )
        .unwrap();
        assert_eq!(flow.key(), "benchmarks/benchmark02");
        assert!(flow.tasks[0].is_flowable());
        assert_eq!(
            flow.find_task("hello-false-1").unwrap().type_name,
            tasks::LOG
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let e = err("id: x\nnamespace: y\ntasks:\n  - id: a\n   type: [\n");
        assert!(e.starts_with("bad.yaml: invalid YAML at line"), "{e}");
    }

    #[test]
    fn unknown_task_type_names_flow_and_task() {
        let e = err("id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.Nope\n");
        assert!(
            e.contains("bad.yaml: flow `n.f`, task `t1` (io.kestra.Nope): unknown task type"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_property_names_the_task() {
        let e = err(
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n",
        );
        assert!(e.contains("task `t1`") && e.contains("message"), "{e}");
    }

    #[test]
    fn unknown_property_is_rejected() {
        let e = err(
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    colour: red\n",
        );
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn duplicate_task_ids_are_rejected_even_when_nested() {
        let e = err(
            "id: f\nnamespace: n\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: a\n        type: io.kestra.plugin.core.log.Log\n        message: x\n",
        );
        assert!(
            e.contains("task `a`") && e.contains("duplicate task id"),
            "{e}"
        );
    }

    #[test]
    fn malformed_expression_is_rejected_at_load() {
        let e = err(
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ foo( }}\"\n",
        );
        assert!(
            e.contains("task `t1`") && e.contains("malformed expression"),
            "{e}"
        );
    }

    #[test]
    fn task_defaults_fill_unset_properties_and_forced_ones_win() {
        let flow = parse_flow(
            r#"
id: f
namespace: n
taskDefaults:
  - type: io.kestra.plugin.core.log.Log
    values:
      level: WARN
      message: from defaults
  - type: io.kestra.plugin.core.log.Log
    forced: true
    values:
      logLevel: ERROR
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: mine
  - id: b
    type: io.kestra.plugin.core.log.Log
    logLevel: TRACE
"#,
            "d.yaml",
        )
        .unwrap();
        let TaskKind::Log(a) = &flow.tasks[0].kind else {
            panic!()
        };
        assert_eq!(a.message, serde_json::json!("mine"));
        assert_eq!(a.level, Level::Warn);
        let TaskKind::Log(b) = &flow.tasks[1].kind else {
            panic!()
        };
        assert_eq!(b.message, serde_json::json!("from defaults"));
        assert_eq!(flow.tasks[1].log_level, Some(Level::Error));
    }

    #[test]
    fn task_round_trips_through_json_like_a_worker_task() {
        let flow = parse_flow(
            "id: f\nnamespace: n\ntasks:\n  - id: s\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.1S\n    retry:\n      type: constant\n      interval: PT1S\n      maxAttempt: 3\n",
            "r.yaml",
        )
        .unwrap();
        let json = serde_json::to_string(&flow.tasks[0]).unwrap();
        let back: Task = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, "s");
        assert_eq!(back.retry.unwrap().max_attempts(), 3);
    }
}
