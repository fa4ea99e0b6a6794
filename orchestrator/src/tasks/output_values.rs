use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.output.OutputValues`: renders `values` into the output `values`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputValues {
    #[serde(default)]
    pub values: Map<String, Value>,
}

impl TaskType for OutputValues {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.output.OutputValues"];

    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        props.rest()
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for OutputValues {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let mut rendered = Map::with_capacity(self.values.len());
        for (k, v) in &self.values {
            rendered.insert(k.clone(), ctx.renderer.render_value(v, ctx.vars)?);
        }
        let mut out = Map::new();
        out.insert("values".into(), Value::Object(rendered));
        Ok(out)
    }
}
