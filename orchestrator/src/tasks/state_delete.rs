use serde_json::{Map, Value};

use super::state_set::StateRef;
use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.state.Delete`: deletes the state `name` and outputs `deleted`,
/// whether there was one; `errorOnMissing: true` fails the task when there was none
/// (Kestra's `plugin/core/state/Delete.java`, commit 58c1ca2d). Scoped as
/// [`super::StateSet`] is.
#[derive(Debug, Clone)]
pub struct StateDelete {
    pub state: StateRef,
    pub error_on_missing: bool,
}

impl TaskType for StateDelete {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.state.Delete"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.states.Delete", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let state = StateRef::parse(&mut props)?;
        let error_on_missing = props
            .take::<Option<bool>>("errorOnMissing")?
            .unwrap_or(false);
        props.finish()?;
        Ok(StateDelete {
            state,
            error_on_missing,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for StateDelete {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        self.state.with(ctx, |states, name, state| {
            let deleted = states.delete(state)?;
            if self.error_on_missing && !deleted {
                return Err(TaskError::Failed(format!(
                    "Unable to find the state file '{name}'"
                )));
            }
            let mut out = Map::new();
            out.insert("deleted".into(), Value::Bool(deleted));
            Ok(out)
        })
    }
}
