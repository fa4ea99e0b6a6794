use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};
use crate::model::Level;

/// `io.kestra.plugin.core.log.Log`: logs one message, or each of a list, at `level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Log {
    pub message: Value,
    #[serde(default = "info")]
    pub level: Level,
}

fn info() -> Level {
    Level::Info
}

impl TaskType for Log {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.log.Log"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.log.Log", Self::TYPES[0])];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        props.rest()
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for Log {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let messages: Vec<&str> = match &self.message {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => {
                return Err(TaskError::Failed(format!(
                    "`message` must be a string or a list of strings, got {other}"
                )));
            }
        };
        for m in messages {
            let rendered = ctx.render(m)?;
            ctx.logger.log(self.level, rendered);
        }
        Ok(Map::new())
    }
}
