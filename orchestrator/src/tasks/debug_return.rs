use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.debug.Return`: renders `format` into the output `value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DebugReturn {
    #[serde(default)]
    pub format: Option<String>,
}

impl TaskType for DebugReturn {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.debug.Return"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.debugs.Return", Self::TYPES[0])];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        props.rest()
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for DebugReturn {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let mut out = Map::new();
        let value = match &self.format {
            Some(f) => Value::String(ctx.render(f)?),
            None => Value::Null,
        };
        out.insert("value".into(), value);
        Ok(out)
    }
}
