use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.execution.Fail`: fails with `errorMessage`, or only when
/// `condition` renders true.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fail {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default = "default_message")]
    pub error_message: String,
}

fn default_message() -> String {
    "Task failure".into()
}

impl TaskType for Fail {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.execution.Fail"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.executions.Fail", Self::TYPES[0])];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        props.rest()
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for Fail {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        if let Some(c) = &self.condition
            && !ctx.renderer.render_condition(c, ctx.vars)?
        {
            return Ok(Map::new());
        }
        Err(TaskError::Failed(ctx.render(&self.error_message)?))
    }
}
