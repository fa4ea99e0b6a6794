use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};
use crate::kv::StateStore;
use crate::kv::state::StateName;

/// `io.kestra.plugin.core.state.Delete`: deletes the state `name` and outputs `deleted`,
/// whether there was one; `errorOnMissing: true` fails the task when there was none
/// (Kestra's `plugin/core/state/Delete.java`, commit 58c1ca2d). Scoped as
/// [`super::StateSet`] is.
#[derive(Debug, Clone)]
pub struct StateDelete {
    pub name: String,
    pub namespace: bool,
    pub taskrun_value: bool,
    pub error_on_missing: bool,
}

impl TaskType for StateDelete {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.state.Delete"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.states.Delete", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let name = props.take::<Option<String>>("name")?;
        let namespace = props.take::<Option<bool>>("namespace")?.unwrap_or(false);
        let taskrun_value = props.take::<Option<bool>>("taskrunValue")?.unwrap_or(true);
        let error_on_missing = props
            .take::<Option<bool>>("errorOnMissing")?
            .unwrap_or(false);
        props.finish()?;
        Ok(StateDelete {
            name: name.unwrap_or_else(|| "default".into()),
            namespace,
            taskrun_value,
            error_on_missing,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for StateDelete {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let name = ctx.render(&self.name)?;
        let tr = ctx.task_run;
        let state = StateName {
            name: &name,
            flow_scoped: !self.namespace,
            task_run_value: tr.value.as_deref().filter(|_| self.taskrun_value),
        };
        let states = StateStore::new(ctx.namespace_kv(&tr.namespace)?, &tr.flow_id);
        let deleted = states.delete(&state)?;
        if self.error_on_missing && !deleted {
            return Err(TaskError::Failed(format!(
                "Unable to find the state file '{name}'"
            )));
        }
        let mut out = Map::new();
        out.insert("deleted".into(), Value::Bool(deleted));
        Ok(out)
    }
}
