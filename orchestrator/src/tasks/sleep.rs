use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps, task_duration};
use crate::model::Level;

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
        // Kestra's `Sleep#run` says how long it waits, as `Duration#toString` prints it.
        let java = jiff::SignedDuration::try_from(d)
            .map_or_else(|_| text.clone(), crate::kv::value::java_duration_string);
        ctx.logger.log(Level::Info, format!("Waiting for {java}"));
        ctx.sleep(d);
        Ok(Map::new())
    }
}
