use serde_json::{Map, Value};

use super::state_set::StateRef;
use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.state.Get`: the state `name` as the outputs `data` and `count`;
/// an absent state is empty, or fails the task with `errorOnMissing: true` (Kestra's
/// `plugin/core/state/Get.java`, commit 58c1ca2d). Scoped as [`super::StateSet`] is.
#[derive(Debug, Clone)]
pub struct StateGet {
    pub state: StateRef,
    pub error_on_missing: bool,
}

impl TaskType for StateGet {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.state.Get"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.states.Get", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let state = StateRef::parse(&mut props)?;
        let error_on_missing = props
            .take::<Option<bool>>("errorOnMissing")?
            .unwrap_or(false);
        props.finish()?;
        Ok(StateGet {
            state,
            error_on_missing,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for StateGet {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        self.state.with(ctx, |states, _, state| {
            let data = match states.get(state)? {
                Some(data) => data,
                None if self.error_on_missing => {
                    return Err(TaskError::Failed(format!(
                        "State {} not found",
                        states.key(state)
                    )));
                }
                None => Map::new(),
            };
            let mut out = Map::new();
            out.insert("count".into(), Value::from(data.len()));
            out.insert("data".into(), Value::Object(data));
            Ok(out)
        })
    }
}
