use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Runnable, TaskContext, TaskError};

/// `io.kestra.plugin.core.debug.Return`: renders `format` into the output `value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DebugReturn {
    #[serde(default)]
    pub format: Option<String>,
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
