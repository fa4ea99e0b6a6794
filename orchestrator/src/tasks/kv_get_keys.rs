use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.kv.GetKeys`: the live keys of a namespace's KV store that start
/// with `prefix` (all of them without one), as the output `keys` (Kestra's
/// `plugin/core/kv/GetKeys.java`, commit 58c1ca2d). `namespace` defaults to the flow's.
#[derive(Debug, Clone)]
pub struct KvGetKeys {
    pub prefix: Option<String>,
    pub namespace: Option<String>,
}

impl TaskType for KvGetKeys {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.kv.GetKeys"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let prefix = props.take::<Option<String>>("prefix")?;
        let namespace = props.take::<Option<String>>("namespace")?;
        props.finish()?;
        Ok(KvGetKeys { prefix, namespace })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for KvGetKeys {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let namespace = match &self.namespace {
            Some(ns) => ctx.render(ns)?,
            None => ctx.task_run.namespace.clone(),
        };
        let prefix = self.prefix.as_deref().map(|p| ctx.render(p)).transpose()?;
        let keys: Vec<Value> = ctx
            .namespace_kv(&namespace)?
            .list()?
            .into_iter()
            .map(|entry| entry.key)
            .filter(|key| prefix.as_deref().is_none_or(|p| key.starts_with(p)))
            .map(Value::String)
            .collect();
        let mut out = Map::new();
        out.insert("keys".into(), Value::Array(keys));
        Ok(out)
    }
}
