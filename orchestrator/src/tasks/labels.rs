use serde_json::Value;

use super::{ExecutionUpdatable, Role, TaskType};
use crate::expression::Renderer;
use crate::flow::{FlowError, TaskProps};
use crate::model::{Execution, Label};

/// Kestra's prefix of the labels only Kestra sets (`Label.SYSTEM_PREFIX`).
pub const SYSTEM_PREFIX: &str = "system.";

/// `io.kestra.plugin.core.execution.Labels`: adds labels to its execution, or replaces the
/// value of a label it has. Kestra 58c1ca2d0 runs it in the executor, as an
/// `ExecutionUpdatableTask` (`ExecutorService#handleExecutionUpdatingTask`), and so does
/// flowbench: the task run ends SUCCESS with one attempt, or FAILED with the error logged.
///
/// `labels` is a map, a list of `{key, value}`, or an expression that renders to a JSON
/// object; every key and value is rendered.
#[derive(Debug, Clone)]
pub struct Labels {
    pub labels: Value,
}

impl TaskType for Labels {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.execution.Labels"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let labels = props.required("labels")?;
        match &labels {
            Value::String(_) | Value::Object(_) => {}
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ok = item.as_object().is_some_and(|m| {
                        m.get("key").is_some_and(Value::is_string)
                            && m.get("value").is_some_and(Value::is_string)
                    });
                    if !ok {
                        return Err(props.error(format!(
                            "property `labels[{i}]` must be a map with a string `key` and `value`"
                        )));
                    }
                }
            }
            _ => {
                return Err(props.error(
                    "property `labels` must be a map, a list of `{key, value}`, or an expression",
                ));
            }
        }
        props.finish()?;
        Ok(Labels { labels })
    }

    fn role(&self) -> Role<'_> {
        Role::Updating(self)
    }
}

impl ExecutionUpdatable for Labels {
    fn update(
        &self,
        exec: &mut Execution,
        renderer: &Renderer,
        vars: &Value,
    ) -> Result<(), String> {
        let render = |s: &str| renderer.render(s, vars).map_err(|e| e.to_string());
        let text = |v: &Value| match v {
            Value::String(s) => render(s),
            other => Ok(other.to_string()),
        };
        let mut given: Vec<(String, String)> = Vec::new();
        match &self.labels {
            Value::String(s) => {
                let rendered = render(s)?;
                let map: serde_json::Map<String, Value> = serde_json::from_str(&rendered)
                    .map_err(|e| format!("`labels` is not a JSON object: {e}"))?;
                for (k, v) in &map {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    given.push((k.clone(), v));
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    given.push((render(k)?, text(v)?));
                }
            }
            Value::Array(items) => {
                for item in items {
                    given.push((text(&item["key"])?, text(&item["value"])?));
                }
            }
            _ => unreachable!("checked at load"),
        }
        if let Some((k, v)) = given.iter().find(|(k, _)| k.starts_with(SYSTEM_PREFIX)) {
            return Err(format!(
                "System labels can only be set by Kestra itself, offending label: {k}={v}"
            ));
        }
        for (key, value) in given {
            match exec.labels.iter_mut().find(|l| l.key == key) {
                Some(label) => label.value = value,
                None => exec.labels.push(Label { key, value }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{TaskKind, parse_flow};
    use serde_json::json;

    fn labels_task(labels: &str) -> Result<Labels, crate::flow::FlowError> {
        let flow = parse_flow(
            &format!(
                "id: f\nnamespace: n\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.execution.Labels\n    labels: {labels}\n"
            ),
            "f.yaml",
        )?;
        match &flow.tasks[0].kind {
            TaskKind::Labels(l) => Ok(l.clone()),
            other => panic!("{other:?}"),
        }
    }

    fn execution() -> Execution {
        Execution {
            id: "e".into(),
            tenant_id: None,
            namespace: "n".into(),
            flow_id: "f".into(),
            flow_revision: 1,
            inputs: Default::default(),
            labels: vec![Label {
                key: "a".into(),
                value: "old".into(),
            }],
            state: crate::model::State::new(crate::model::now()),
            task_run_list: Vec::new(),
            trigger: None,
            original_id: "e".into(),
            metadata: None,
            outputs: None,
        }
    }

    #[test]
    fn labels_are_replaced_in_place_or_added() {
        let t = labels_task("{a: \"{{ x }}\", b: two}").unwrap();
        let mut exec = execution();
        t.update(&mut exec, &Renderer::new(), &json!({"x": "new"}))
            .unwrap();
        let got: Vec<(&str, &str)> = exec
            .labels
            .iter()
            .map(|l| (l.key.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(got, [("a", "new"), ("b", "two")]);
    }

    #[test]
    fn bad_labels_are_refused_with_kestras_messages() {
        let e = labels_task("[{key: a}]").unwrap_err().to_string();
        assert!(e.contains("`l`") && e.contains("labels[0]"), "{e}");
        let e = labels_task("42").unwrap_err().to_string();
        assert!(e.contains("property `labels` must be"), "{e}");
        let t = labels_task("{system.x: y}").unwrap();
        let e = t
            .update(&mut execution(), &Renderer::new(), &json!({}))
            .unwrap_err();
        assert_eq!(
            e,
            "System labels can only be set by Kestra itself, offending label: system.x=y"
        );
        let t = labels_task("\"{{ x }}\"").unwrap();
        let e = t
            .update(&mut execution(), &Renderer::new(), &json!({"x": "[1]"}))
            .unwrap_err();
        assert!(e.contains("not a JSON object"), "{e}");
    }
}
