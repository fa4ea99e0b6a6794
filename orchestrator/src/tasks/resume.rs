use serde_json::{Map, Value};

use super::execution_target::{ExecutionTarget, TargetIds};
use super::{Role, TaskType};
use crate::expression::Renderer;
use crate::flow::{FlowError, TaskProps};
use crate::model::Execution;

/// `io.kestra.plugin.core.execution.Resume`: resumes a paused execution, the one
/// `executionId` names, by default the task's own, as the API's resume does
/// ([`crate::tasks::resume`], Kestra's `ExecutionService#resume`), with `inputs` rendered
/// as the Pause's `onResume` output. The task run fails when that execution does not exist
/// or is not paused.
///
/// Kestra 58c1ca2d0 runs it on a worker, which reads the execution from its repository
/// and emits the resumed one; here the executor runs it in the transaction of the pass
/// that starts the task run (`Executor::resume_executions`), so the resumed execution and
/// the task run's end commit together. `namespace` and `flowId` go together and only with
/// `executionId` (`PluginUtilsService#executionFromTaskParameters`); flowbench refuses
/// them otherwise at load, where Kestra fails the task run. As in Kestra's open-source
/// edition, they do not restrict which execution is resumed.
#[derive(Debug, Clone)]
pub struct Resume {
    pub target: ExecutionTarget,
    pub inputs: Option<Map<String, Value>>,
}

impl TaskType for Resume {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.execution.Resume"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let target = ExecutionTarget::parse(&mut props)?;
        let inputs = props.take::<Option<Map<String, Value>>>("inputs")?;
        props.finish()?;
        Ok(Resume { target, inputs })
    }

    fn role(&self) -> Role<'_> {
        Role::Resuming(self)
    }
}

impl Resume {
    /// The id of the execution to resume (`exec`, the task's own, unless `executionId` says
    /// otherwise) and the rendered `inputs`. `namespace` and `flowId` are rendered, as
    /// Kestra renders them, and select nothing.
    pub(crate) fn target(
        &self,
        renderer: &Renderer,
        vars: &Value,
        exec: &Execution,
    ) -> Result<(String, Option<Map<String, Value>>), String> {
        let render = |t: &str| renderer.render(t, vars).map_err(|e| e.to_string());
        let ids = self.target.render(
            render,
            TargetIds {
                execution_id: exec.id.clone(),
                namespace: exec.namespace.clone(),
                flow_id: exec.flow_id.clone(),
            },
        )?;
        let inputs = match &self.inputs {
            None => None,
            Some(map) => match renderer
                .render_value(&Value::Object(map.clone()), vars)
                .map_err(|e| e.to_string())?
            {
                Value::Object(m) => Some(m),
                _ => unreachable!("a rendered map stays a map"),
            },
        };
        Ok((ids.execution_id, inputs))
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::parse_flow;

    fn resume(props: &str) -> Result<crate::flow::Flow, crate::flow::FlowError> {
        parse_flow(
            &format!(
                "id: f\nnamespace: n\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.execution.Resume\n{props}"
            ),
            "f.yaml",
        )
    }

    #[test]
    fn namespace_and_flow_id_go_together_and_with_an_execution_id() {
        resume("").unwrap();
        resume("    executionId: e\n    namespace: n\n    flowId: f\n").unwrap();
        let e = resume("    executionId: e\n    namespace: n\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.yaml") && e.contains("flow `n.f`") && e.contains("task `r`"),
            "{e}"
        );
        assert!(
            e.contains("Both `namespace` and `flowId` must be set"),
            "{e}"
        );
        let e = resume("    flowId: f\n").unwrap_err().to_string();
        assert!(
            e.contains("should only be set when `executionId` is set"),
            "{e}"
        );
        let e = resume("    inputs: [a]\n").unwrap_err().to_string();
        assert!(e.contains("`inputs`"), "{e}");
        let e = resume("    executionId: \"{{ inputs.x \"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`executionId`") && e.contains("malformed expression"),
            "{e}"
        );
    }
}
