use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.kv.Get`: the value of `key` in a namespace's KV store, as the
/// output `value` (Kestra's `plugin/core/kv/Get.java`, commit 58c1ca2d).
///
/// `namespace` defaults to the flow's. A missing key gives no `value` (Kestra's outputs leave
/// out nulls), or fails the task with `errorOnMissing: true`.
#[derive(Debug, Clone)]
pub struct KvGet {
    pub key: String,
    pub namespace: Option<String>,
    pub error_on_missing: bool,
}

impl TaskType for KvGet {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.kv.Get"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let key = props.required_string("key")?;
        let namespace = props.take::<Option<String>>("namespace")?;
        let error_on_missing = props
            .take::<Option<bool>>("errorOnMissing")?
            .unwrap_or(false);
        props.finish()?;
        Ok(KvGet {
            key,
            namespace,
            error_on_missing,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for KvGet {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let namespace = match &self.namespace {
            Some(ns) => ctx.render(ns)?,
            None => ctx.task_run.namespace.clone(),
        };
        let key = ctx.render(&self.key)?;
        let value = ctx.namespace_kv(&namespace)?.get_value(&key)?;
        let mut out = Map::new();
        match value.map(|v| v.to_output()) {
            Some(Value::Null) => {}
            Some(v) => {
                out.insert("value".into(), v);
            }
            None if self.error_on_missing => {
                return Err(TaskError::Failed(format!(
                    "No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true"
                )));
            }
            None => {}
        }
        Ok(out)
    }
}
