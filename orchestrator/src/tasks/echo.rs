use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};
use crate::model::Level;

/// `io.kestra.plugin.core.debug.Echo` (deprecated in favour of `Log`, still run): logs the
/// rendered `format` at `level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Echo {
    pub format: String,
    #[serde(default = "info")]
    pub level: Level,
}

fn info() -> Level {
    Level::Info
}

impl TaskType for Echo {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.debug.Echo"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.debugs.Echo", Self::TYPES[0])];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        props.rest()
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for Echo {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let message = ctx.render(&self.format)?;
        ctx.logger.log(self.level, message);
        Ok(Map::new())
    }
}
