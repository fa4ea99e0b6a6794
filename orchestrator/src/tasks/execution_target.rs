use crate::flow::{FlowError, TaskProps};

/// Which execution a task acts on (`Resume`, `log.Fetch`): `executionId`, with `namespace`
/// and `flowId`, each by default the task's own. Kestra 58c1ca2d0's
/// `PluginUtilsService#executionFromTaskParameters`: `namespace` and `flowId` go together,
/// and only with `executionId`. Kestra fails the task run otherwise; flowbench refuses the
/// flow at load, since the rule is about which properties are written.
#[derive(Debug, Clone, Default)]
pub struct ExecutionTarget {
    pub execution_id: Option<String>,
    pub namespace: Option<String>,
    pub flow_id: Option<String>,
}

/// An execution, as a target renders: id, namespace and flow id.
pub(crate) struct TargetIds {
    pub execution_id: String,
    pub namespace: String,
    pub flow_id: String,
}

impl ExecutionTarget {
    pub(crate) fn parse(props: &mut TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let execution_id = props.take::<Option<String>>("executionId")?;
        let namespace = props.take::<Option<String>>("namespace")?;
        let flow_id = props.take::<Option<String>>("flowId")?;
        match (&execution_id, &namespace, &flow_id) {
            (Some(_), Some(_), None) | (Some(_), None, Some(_)) => {
                Err(props
                    .error("Both `namespace` and `flowId` must be set when `executionId` is set."))
            }
            (None, Some(_), _) | (None, _, Some(_)) => Err(props
                .error("`namespace` and `flowId` should only be set when `executionId` is set.")),
            _ => Ok(ExecutionTarget {
                execution_id,
                namespace,
                flow_id,
            }),
        }
    }

    /// The target rendered with `render`; what is not written is `own`'s.
    pub(crate) fn render<E>(
        &self,
        render: impl Fn(&str) -> Result<String, E>,
        own: TargetIds,
    ) -> Result<TargetIds, E> {
        let pick = |written: &Option<String>, own: String| match written {
            Some(t) => render(t),
            None => Ok(own),
        };
        Ok(TargetIds {
            execution_id: pick(&self.execution_id, own.execution_id)?,
            namespace: pick(&self.namespace, own.namespace)?,
            flow_id: pick(&self.flow_id, own.flow_id)?,
        })
    }
}
