use std::time::Duration;

use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps, task_duration};
use crate::kv::{KvType, StoredValue};

/// `io.kestra.plugin.core.kv.Set`: stores `value` under `key` in a namespace's KV store
/// (Kestra's `plugin/core/kv/Set.java`, commit 58c1ca2d).
///
/// `value` is rendered typed: a lone `{{ … }}` keeps its map, list, number or boolean; a
/// rendered string is converted by `kvType` when one is given. `namespace` defaults to the
/// flow's; `overwrite: false` refuses a key that holds a live value; `ttl` (ISO-8601) makes
/// the entry expire. No outputs.
#[derive(Debug, Clone)]
pub struct KvSet {
    pub key: String,
    pub value: String,
    pub namespace: Option<String>,
    pub overwrite: bool,
    pub ttl: Option<Duration>,
    pub kv_type: Option<KvType>,
}

impl TaskType for KvSet {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.kv.Set"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let key = props.required_string("key")?;
        let value = props.required_string("value")?;
        let namespace = props.take::<Option<String>>("namespace")?;
        let overwrite = props.take::<Option<bool>>("overwrite")?.unwrap_or(true);
        let ttl = match props.take::<Option<String>>("ttl")? {
            None => None,
            Some(text) => Some(
                task_duration(&text).map_err(|e| props.error(format!("property `ttl`: {e}")))?,
            ),
        };
        let kv_type = props.take::<Option<KvType>>("kvType")?;
        props.finish()?;
        Ok(KvSet {
            key,
            value,
            namespace,
            overwrite,
            ttl,
            kv_type,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for KvSet {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let namespace = match &self.namespace {
            Some(ns) => ctx.render(ns)?,
            None => ctx.task_run.namespace.clone(),
        };
        let key = ctx.render(&self.key)?;
        let rendered = ctx.render_typed(&self.value)?;
        let kv = ctx.namespace_kv(&namespace)?;
        let value = match (self.kv_type, rendered) {
            (Some(kv_type), Value::String(text)) => StoredValue(
                kv_type
                    .convert(&text)
                    .map_err(|e| TaskError::Failed(format!("`kvType: {kv_type:?}`: {e}")))?,
            ),
            (_, rendered) => StoredValue::from(rendered),
        };
        kv.put(&key, &value, self.ttl, self.overwrite)?;
        Ok(Map::new())
    }
}
