use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::task::{Loader, TaskDefault};
use super::{Concurrency, Flow, FlowError, FlowOutput, Input, Retry, Sla, Trigger};
use crate::expression::Renderer;
use crate::model::Label;

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
    "outputs",
    "disabled",
    "concurrency",
    "retry",
    "sla",
    "triggers",
    "taskDefaults",
    "pluginDefaults",
    "tenantId",
    "deleted",
];

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
    let mut ctx = Loader::new(origin, Some(&renderer));
    ctx.flow = id.clone();
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
    let retry = prop::<Option<Retry>>(&ctx, &mut doc, "retry")?;
    let sla = match doc.remove("sla") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|v| Sla::parse(v, &renderer).map_err(|m| ctx.flow_err(m)))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ctx.flow_err("`sla` must be a list")),
    };
    let triggers = parse_triggers(&ctx, &renderer, doc.remove("triggers"))?;
    let tasks = match doc.remove("tasks") {
        Some(v) => ctx.tasks(v, "tasks")?,
        None => return Err(ctx.flow_err("missing required property `tasks`")),
    };
    if tasks.is_empty() {
        return Err(ctx.flow_err("`tasks` must hold at least one task"));
    }
    let errors = match doc.remove("errors") {
        Some(v) => ctx.tasks(v, "errors")?,
        None => Vec::new(),
    };
    let outputs = prop::<Option<Vec<FlowOutput>>>(&ctx, &mut doc, "outputs")?.unwrap_or_default();
    let mut seen_outputs = HashSet::new();
    for output in &outputs {
        output
            .as_input()
            .check_type()
            .map_err(|m| ctx.flow_err(format!("output: {m}")))?;
        if !seen_outputs.insert(output.id.as_str()) {
            return Err(ctx.flow_err(format!("duplicate output id `{}`", output.id)));
        }
        check_syntax(&renderer, &output.value).map_err(|e| {
            ctx.flow_err(format!("output `{}`: malformed expression: {e}", output.id))
        })?;
    }
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
        outputs,
        concurrency,
        retry,
        sla,
        triggers,
        source: source.to_string(),
    })
}

fn prop<T: DeserializeOwned>(
    ctx: &Loader,
    doc: &mut Map<String, Value>,
    key: &str,
) -> Result<T, FlowError> {
    serde_json::from_value(doc.remove(key).unwrap_or(Value::Null))
        .map_err(|e| ctx.flow_err(format!("`{key}`: {e}")))
}

/// Checks the syntax of every expression in a value.
pub(crate) fn check_syntax(
    renderer: &Renderer,
    v: &Value,
) -> Result<(), crate::expression::ExpressionError> {
    match v {
        Value::String(s) => renderer.check_syntax(s),
        Value::Array(a) => a.iter().try_for_each(|v| check_syntax(renderer, v)),
        Value::Object(m) => m.values().try_for_each(|v| check_syntax(renderer, v)),
        _ => Ok(()),
    }
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

fn parse_triggers(
    ctx: &Loader,
    renderer: &Renderer,
    v: Option<Value>,
) -> Result<Vec<Trigger>, FlowError> {
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
                super::WEBHOOK_TYPE | "io.kestra.core.models.triggers.types.Webhook" => {
                    only_properties(&t, "a Webhook trigger", WEBHOOK_PROPERTIES)
                        .map_err(|m| err(&m))?;
                    let key = t["key"]
                        .as_str()
                        .ok_or_else(|| err("missing required property `key`"))?;
                    renderer
                        .check_syntax(key)
                        .map_err(|e| err(&format!("property `key`: {e}")))?;
                    Ok(Trigger::Webhook {
                        id,
                        key: key.to_string(),
                    })
                }
                "io.kestra.plugin.core.trigger.Schedule"
                | "io.kestra.core.models.triggers.types.Schedule" => {
                    crate::scheduler::Schedule::parse(id.clone(), &t)
                        .map(Trigger::Schedule)
                        .map_err(|m| err(&m))
                }
                k if crate::flow_trigger::FLOW_TRIGGER_TYPES.contains(&k) => {
                    crate::flow_trigger::FlowTrigger::parse(id.clone(), &t, renderer)
                        .map(Trigger::Flow)
                        .map_err(|m| err(&m))
                }
                _ => Err(err(
                    "unknown trigger type (known: io.kestra.plugin.core.trigger.Webhook, io.kestra.plugin.core.trigger.Schedule, io.kestra.plugin.core.trigger.Flow)",
                )),
            }
        })
        .collect()
}

/// The Webhook properties read here, as Kestra 58c1ca2d0's `ExecutionController#webhook`
/// reads them: it neither checks `disabled` nor adds the trigger's `labels`, so those two
/// are taken and have no effect there either. Its `conditions` are checked there and are not
/// built here, and `stopAfter`, `logLevel`, `logToFile` and `workerGroup` are not built.
const WEBHOOK_PROPERTIES: &[&str] = &["id", "type", "description", "disabled", "labels", "key"];

/// Refuses a trigger property that is not in `supported`, naming it: a Kestra property that
/// is not built here fails the flow at load rather than being run as if it were absent.
pub(crate) fn only_properties(t: &Value, what: &str, supported: &[&str]) -> Result<(), String> {
    match t
        .as_object()
        .and_then(|map| map.keys().find(|k| !supported.contains(&k.as_str())))
    {
        Some(key) => Err(format!(
            "property `{key}` is not supported on {what} (supported: {})",
            supported.join(", ")
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Task;
    use crate::model::{Level, StateType};
    use crate::tasks::TaskKind;

    fn err(yaml: &str) -> String {
        parse_flow(yaml, "bad.yaml").unwrap_err().to_string()
    }

    #[test]
    fn a_schedule_that_cannot_be_read_fails_the_flow_naming_the_trigger() {
        let e = err(
            "id: f\nnamespace: n\ntriggers:\n  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 25 * * *\"\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n",
        );
        assert!(
            e.contains("bad.yaml") && e.contains("trigger `nightly`") && e.contains("`0 25 * * *`"),
            "{e}"
        );
    }

    #[test]
    fn a_trigger_property_not_built_fails_the_flow_naming_it() {
        for (trigger, property, message) in [
            (
                "  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 2 * * *\"\n    lateMaximumDelay: PT1H\n",
                "nightly",
                "property `lateMaximumDelay` is not supported on a Schedule trigger",
            ),
            (
                "  - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionNamespace\n        namespace: n\n",
                "hook",
                "property `conditions` is not supported on a Webhook trigger",
            ),
        ] {
            let e = err(&format!(
                "id: f\nnamespace: n\ntriggers:\n{trigger}tasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
            ));
            assert!(
                e.contains("bad.yaml")
                    && e.contains(&format!("trigger `{property}`"))
                    && e.contains(message),
                "{e}"
            );
        }
    }

    #[test]
    fn a_webhook_key_is_rendered_and_trimmed_before_it_is_compared() {
        let hook = |id: &str, key: &str| {
            format!(
                "  - id: {id}\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: \"{key}\"\n"
            )
        };
        let yaml = format!(
            "id: f\nnamespace: n\nvariables:\n  suffix: k\ntriggers:\n{}{}{}tasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n",
            hook("plain", " s3cr3t "),
            hook(
                "rendered",
                "{{ flow.namespace }}-{{ trigger.id }}-{{ vars.suffix }}"
            ),
            hook("undefined", "{{ inputs.nope }}"),
        );
        let flow = parse_flow(&yaml, "f.yaml").unwrap();
        let r = Renderer::new();
        assert_eq!(flow.webhook_key_matches("s3cr3t", &r), Some("plain"));
        assert_eq!(
            flow.webhook_key_matches("n-rendered-k", &r),
            Some("rendered")
        );
        assert_eq!(
            flow.webhook_key_matches(
                "{{ flow.namespace }}-{{ trigger.id }}-{{ vars.suffix }}",
                &r
            ),
            None
        );
        // A key that cannot be rendered matches nothing, not even its own text.
        assert_eq!(flow.webhook_key_matches("{{ inputs.nope }}", &r), None);
        assert_eq!(flow.webhook_key_matches("", &r), None);
        // One that cannot be read fails the flow at load.
        let e = err(&yaml.replace("{{ inputs.nope }}", "{{ unclosed"));
        assert!(
            e.contains("trigger `undefined`") && e.contains("property `key`"),
            "{e}"
        );
    }

    fn flow_trigger(trigger: &str) -> String {
        format!(
            "id: f\nnamespace: n\ntriggers:\n  - id: after\n    type: io.kestra.plugin.core.trigger.Flow\n{trigger}tasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n"
        )
    }

    #[test]
    fn a_flow_trigger_with_an_unknown_condition_type_fails_the_flow_naming_the_trigger() {
        let e = err(&flow_trigger(
            "    conditions:\n      - type: io.kestra.plugin.core.condition.Nope\n",
        ));
        assert!(
            e.contains("bad.yaml")
                && e.contains("flow `n.f`")
                && e.contains("trigger `after`")
                && e.contains("unknown variant `io.kestra.plugin.core.condition.Nope`"),
            "{e}"
        );
    }

    #[test]
    fn a_flow_trigger_with_an_unreadable_expression_fails_the_flow_naming_the_trigger() {
        for (trigger, names) in [
            (
                "    conditions:\n      - type: io.kestra.plugin.core.condition.Expression\n        expression: \"{{ a | }}\"\n",
                "`conditions[0]`: malformed expression",
            ),
            (
                "    inputs:\n      x: \"{{ outputs.a | }}\"\n",
                "`inputs`: malformed expression",
            ),
            (
                "    preconditions:\n      id: p\n      where:\n        - id: w\n          filters:\n            - field: EXPRESSION\n              type: IS_TRUE\n              value: \"{{ x | }}\"\n",
                "malformed expression",
            ),
        ] {
            let e = err(&flow_trigger(trigger));
            assert!(
                e.contains("bad.yaml") && e.contains("trigger `after`") && e.contains(names),
                "{e}"
            );
        }
    }

    #[test]
    fn a_flow_trigger_with_bad_properties_fails_the_flow_saying_which() {
        for (trigger, names) in [
            ("    states: [DONE]\n", "unknown variant `DONE`"),
            ("    stopAfter: [FAILED]\n", "unknown field `stopAfter`"),
            (
                "    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: n\n",
                "missing field `flowId`",
            ),
            (
                "    preconditions:\n      id: \"-p\"\n      flows:\n        - namespace: n\n",
                "id `-p`",
            ),
            (
                "    preconditions:\n      id: p\n      timeWindow:\n        type: DAILY_TIME_WINDOW\n        startTime: \"06:00:00\"\n",
                "`timeWindow.endTime` is required",
            ),
            (
                "    preconditions:\n      id: p\n      where:\n        - id: w\n          filters:\n            - field: FLOW_ID\n              type: IN\n",
                "needs `values`",
            ),
        ] {
            let e = err(&flow_trigger(trigger));
            assert!(
                e.contains("bad.yaml") && e.contains("trigger `after`") && e.contains(names),
                "{names}: {e}"
            );
        }
    }

    #[test]
    fn a_flow_trigger_reads_kestras_properties_and_defaults() {
        let flow = parse_flow(
            &flow_trigger(
                "    inputs:\n      x: \"{{ trigger.outputs.a }}\"\n    conditions:\n      - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition\n        in: [SUCCESS]\n      - id: m\n        type: io.kestra.plugin.core.condition.MultipleCondition\n        window: PT10M\n        conditions:\n          a:\n            type: io.kestra.plugin.core.condition.ExecutionNamespace\n            namespace: n\n            comparison: PREFIX\n",
            ),
            "ok.yaml",
        )
        .unwrap();
        let trigger = flow.flow_triggers().next().unwrap();
        assert_eq!(trigger.states, StateType::TERMINATED.to_vec());
        assert_eq!(trigger.conditions.len(), 2);
        let crate::flow_trigger::Condition::Multiple(m) = &trigger.conditions[1] else {
            panic!("{:?}", trigger.conditions[1]);
        };
        assert_eq!(
            m.window,
            crate::flow_trigger::TimeWindow::Duration {
                window: std::time::Duration::from_secs(600),
                advance: None
            }
        );
        assert!(m.reset_on_success);
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
            "io.kestra.plugin.core.log.Log"
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
    fn a_timeout_that_is_no_duration_names_the_task() {
        let e = err(
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1S\n    timeout: soon\n",
        );
        assert!(
            e.contains("flow `n.f`, task `t1`") && e.contains("property `timeout`"),
            "{e}"
        );
        let e = err(
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1S\n    timeout: 5\n",
        );
        assert!(e.contains("property `timeout` must be a duration"), "{e}");
    }

    #[test]
    fn a_bad_sla_names_the_flow_and_the_sla() {
        let e = err(
            "id: f\nnamespace: n\nsla:\n  - id: quick\n    type: MAX_DURATION\n    behavior: FAIL\n    duration: soon\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
        );
        assert!(
            e.contains("bad.yaml: flow `n.f`") && e.contains("sla `quick`: `duration`"),
            "{e}"
        );
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
