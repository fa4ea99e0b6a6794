use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Runnable, TaskContext, TaskError};
use crate::flow::task_duration;

/// `io.kestra.plugin.core.flow.Sleep`: holds its worker thread for `duration`, as Kestra's
/// thread-per-task worker does (this is what makes sleep-bound thread sweeps meaningful).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sleep {
    pub duration: String,
}

impl Runnable for Sleep {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let text = ctx.render(&self.duration)?;
        let d = task_duration(&text).map_err(TaskError::Failed)?;
        std::thread::sleep(d);
        Ok(Map::new())
    }
}
