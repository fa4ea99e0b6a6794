use serde_json::{Map, Value};

use super::{Role, TaskType};
use crate::flow::{FlowError, TaskProps};
use crate::model::{Label, StateType};

/// `io.kestra.plugin.core.flow.Subflow` (and the older `io.kestra.core.tasks.flows.Flow`,
/// an alias of it in Kestra 58c1ca2d0): starts an execution of another flow. With `wait`
/// (the default) the task run ends when that execution ends, in its state when
/// `transmitFailed` (the default) and it failed, was killed or warned, and SUCCESS
/// otherwise; its outputs are the execution's id, its state and its flow's `outputs`.
/// Without `wait` it ends SUCCESS as soon as the execution is created.
///
/// The executor starts the execution (`Executor::start_subflows`, after Kestra's
/// `ExecutorService#handleExecutableTask` and `ExecutableUtils#subflowExecution`) and ends
/// the task run when the execution ends (`Executor::subflow_ended`, after
/// `Subflow#createSubflowExecutionResult`).
#[derive(Debug, Clone)]
pub struct Subflow {
    pub namespace: String,
    pub flow_id: String,
    pub revision: Option<i32>,
    /// Rendered, then typed by the subflow's input declarations.
    pub inputs: Map<String, Value>,
    /// Rendered keys and values.
    pub labels: Vec<(String, String)>,
    pub wait: bool,
    pub transmit_failed: bool,
    pub inherit_labels: bool,
    /// Deprecated since Kestra 0.15: values rendered against the ended subflow execution,
    /// used when the subflow declares no `outputs` of its own.
    pub outputs: Option<Map<String, Value>>,
}

/// The type names a subflow execution's trigger carries.
pub const TRIGGER_TYPES: &[&str] = &[Subflow::TYPES[0]];

impl TaskType for Subflow {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Subflow"];
    const ALIASES: &'static [(&'static str, &'static str)] = &[
        ("io.kestra.core.tasks.flows.Subflow", Self::TYPES[0]),
        ("io.kestra.core.tasks.flows.Flow", Self::TYPES[0]),
    ];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let namespace = props.required_string("namespace")?;
        let flow_id = props.required_string("flowId")?;
        let revision = props.take::<Option<i32>>("revision")?;
        if revision.is_some_and(|r| r < 1) {
            return Err(props.error("property `revision` must be 1 or more"));
        }
        let inputs = props
            .take::<Option<Map<String, Value>>>("inputs")?
            .unwrap_or_default();
        let labels = match props.take::<Option<Value>>("labels")? {
            None => Vec::new(),
            Some(Value::Object(m)) => m.into_iter().map(|(k, v)| (k, label_text(v))).collect(),
            Some(Value::Array(items)) => {
                let mut labels = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match (item.get("key"), item.get("value")) {
                        (Some(Value::String(k)), Some(v)) => {
                            labels.push((k.clone(), label_text(v.clone())));
                        }
                        _ => {
                            return Err(props.error(format!(
                                "property `labels[{i}]` must be a map with `key` and `value`"
                            )));
                        }
                    }
                }
                labels
            }
            Some(_) => {
                return Err(props.error("property `labels` must be a map or a list"));
            }
        };
        if let Some((k, _)) = labels
            .iter()
            .find(|(k, _)| k.starts_with(super::SYSTEM_PREFIX))
        {
            // Kestra's `@NoSystemLabelValidation`.
            return Err(props.error(format!(
                "label `{k}`: system labels can only be set by Kestra itself"
            )));
        }
        let wait = props.take::<Option<bool>>("wait")?.unwrap_or(true);
        let transmit_failed = props
            .take::<Option<bool>>("transmitFailed")?
            .unwrap_or(true);
        let inherit_labels = props
            .take::<Option<bool>>("inheritLabels")?
            .unwrap_or(false);
        let outputs = props.take::<Option<Map<String, Value>>>("outputs")?;
        props.finish()?;
        Ok(Subflow {
            namespace,
            flow_id,
            revision,
            inputs,
            labels,
            wait,
            transmit_failed,
            inherit_labels,
            outputs,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Executable(self)
    }
}

fn label_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

impl Subflow {
    /// The labels of the execution it starts, before the subflow's own and the correlation
    /// id are added: all the parent's with `inheritLabels`, else only its system ones
    /// (`ExecutableUtils#subflowExecution`), then this task's, rendered.
    pub fn child_labels(
        &self,
        parent: &[Label],
        render: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Vec<Label>, String> {
        let mut labels: Vec<Label> = parent
            .iter()
            .filter(|l| self.inherit_labels || l.key.starts_with(super::SYSTEM_PREFIX))
            .cloned()
            .collect();
        for (k, v) in &self.labels {
            let key = render(k)?;
            let value = render(v)?;
            labels.retain(|l| l.key != key);
            labels.push(Label { key, value });
        }
        Ok(labels)
    }
}

/// Kestra's `ExecutableUtils#guessState`: the state a waiting Subflow task run ends in, from
/// the state its execution ended in.
pub fn guess_state(
    ended: StateType,
    transmit_failed: bool,
    allow_failure: bool,
    allow_warning: bool,
) -> StateType {
    let transmitted = matches!(
        ended,
        StateType::Failed | StateType::Killed | StateType::Paused | StateType::Warning
    );
    if !(transmit_failed && transmitted) {
        return StateType::Success;
    }
    let state = if allow_failure && ended.is_failed() {
        StateType::Warning
    } else {
        ended
    };
    if state == StateType::Warning && allow_warning {
        StateType::Success
    } else {
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subflow_state_is_transmitted_as_kestra_guesses_it() {
        use StateType::*;
        assert_eq!(guess_state(Failed, true, false, false), Failed);
        assert_eq!(guess_state(Failed, false, false, false), Success);
        assert_eq!(guess_state(Failed, true, true, false), Warning);
        assert_eq!(guess_state(Failed, true, true, true), Success);
        assert_eq!(guess_state(Warning, true, false, false), Warning);
        assert_eq!(guess_state(Warning, true, false, true), Success);
        assert_eq!(guess_state(Killed, true, false, false), Killed);
        assert_eq!(guess_state(Success, true, false, false), Success);
    }

    #[test]
    fn bad_subflow_tasks_fail_at_load() {
        let flow = |extra: &str| {
            crate::flow::parse_flow(
                &format!(
                    "id: f\nnamespace: n\ntasks:\n  - id: s\n    type: io.kestra.plugin.core.flow.Subflow\n{extra}"
                ),
                "f.yaml",
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        let e = flow("    namespace: n\n").unwrap_err();
        assert!(e.contains("`s`") && e.contains("`flowId`"), "{e}");
        let e =
            flow("    namespace: n\n    flowId: c\n    labels:\n      system.x: y\n").unwrap_err();
        assert!(e.contains("system labels"), "{e}");
        let e = flow("    namespace: n\n    flowId: c\n    revision: 0\n").unwrap_err();
        assert!(e.contains("`revision`"), "{e}");
        flow("    namespace: n\n    flowId: c\n    labels:\n      - key: a\n        value: b\n")
            .unwrap();
    }
}
