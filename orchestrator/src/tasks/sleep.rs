use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps, task_duration};

/// `io.kestra.plugin.core.flow.Sleep`: holds its worker thread for `duration`, as Kestra's
/// thread-per-task worker does (this is what makes sleep-bound thread sweeps meaningful).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sleep {
    pub duration: String,
}

impl TaskType for Sleep {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Sleep"];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        props.rest()
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for Sleep {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let text = ctx.render(&self.duration)?;
        let d = task_duration(&text).map_err(TaskError::Failed)?;
        ctx.sleep(d);
        Ok(Map::new())
    }
}
