use serde_json::{Map, Value};

use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::flow::{FlowError, TaskProps};

/// `io.kestra.plugin.core.kv.Delete`: deletes `key` from a namespace's KV store and outputs
/// `deleted`, whether there was a value (Kestra's `plugin/core/kv/Delete.java`, commit
/// 58c1ca2d).
///
/// `namespace` defaults to the flow's; `errorOnMissing: true` fails the task when there was
/// nothing to delete.
#[derive(Debug, Clone)]
pub struct KvDelete {
    pub key: String,
    pub namespace: Option<String>,
    pub error_on_missing: bool,
}

impl TaskType for KvDelete {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.kv.Delete"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let key = props.required_string("key")?;
        let namespace = props.take::<Option<String>>("namespace")?;
        let error_on_missing = props
            .take::<Option<bool>>("errorOnMissing")?
            .unwrap_or(false);
        props.finish()?;
        Ok(KvDelete {
            key,
            namespace,
            error_on_missing,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for KvDelete {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let namespace = match &self.namespace {
            Some(ns) => ctx.render(ns)?,
            None => ctx.task_run.namespace.clone(),
        };
        let key = ctx.render(&self.key)?;
        let deleted = ctx.namespace_kv(&namespace)?.delete(&key)?;
        if self.error_on_missing && !deleted {
            return Err(TaskError::Failed(format!(
                "No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true"
            )));
        }
        let mut out = Map::new();
        out.insert("deleted".into(), Value::Bool(deleted));
        Ok(out)
    }
}
