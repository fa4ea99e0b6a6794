use serde::Deserialize;
use serde_json::{Map, Value};

use super::execution_target::{ExecutionTarget, TargetIds};
use super::{Role, Runnable, TaskContext, TaskError, TaskType};
use crate::fileserde::{self, Format, Value as Ion};
use crate::flow::{FlowError, TaskProps};
use crate::model::{Level, LogEntry};

/// `io.kestra.plugin.core.log.Fetch`: writes the log lines of an execution (by default its
/// own), at `level` or more severe, and only those of `tasksId` when given, to an Ion file
/// in internal storage, one line per record; its outputs are the file's `uri` and the
/// number of lines, `size`. Follows Kestra 58c1ca2d0's `Fetch`: the lines are the indexed
/// ones of the execution's flow (`namespace` and `flowId`, by default the task's own,
/// `PluginUtilsService#executionFromTaskParameters`), oldest first; with `tasksId`, task
/// by task in the order given. Lines still on their way to the logs table are not read, as
/// in Kestra, whose test flows sleep before they fetch.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub target: ExecutionTarget,
    pub tasks_id: Option<Vec<String>>,
    pub level: Level,
}

impl TaskType for Fetch {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.log.Fetch"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.log.Fetch", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let target = ExecutionTarget::parse(&mut props)?;
        let tasks_id = props.take::<Option<Vec<String>>>("tasksId")?;
        let level = props.take::<Option<Level>>("level")?;
        props.finish()?;
        Ok(Fetch {
            target,
            tasks_id,
            level: level.unwrap_or(Level::Info),
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Runnable(self)
    }
}

impl Runnable for Fetch {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError> {
        let tr = ctx.task_run;
        let TargetIds {
            execution_id,
            namespace,
            flow_id,
        } = self.target.render(
            |t| ctx.render(t),
            TargetIds {
                execution_id: tr.execution_id.clone(),
                namespace: tr.namespace.clone(),
                flow_id: tr.flow_id.clone(),
            },
        )?;
        let logs = ctx
            .logs
            .ok_or_else(|| TaskError::Failed("no logs repository on this worker".into()))?;
        let lines = logs.logs(&execution_id).map_err(TaskError::Failed)?;
        let lines: Vec<&LogEntry> = lines
            .iter()
            .filter(|l| {
                l.namespace == namespace && l.flow_id == flow_id && l.level.passes(self.level)
            })
            .collect();
        let selected: Vec<&LogEntry> = match &self.tasks_id {
            None => lines,
            Some(ids) => ids
                .iter()
                .flat_map(|id| {
                    lines
                        .iter()
                        .copied()
                        .filter(move |l| l.task_id.as_deref() == Some(id))
                })
                .collect(),
        };
        let records: Vec<Ion> = selected.iter().map(|l| record(l)).collect();
        let (uri, path) = ctx.output_file(&format!("{}.ion", tr.task_id))?;
        fileserde::write_all(
            &path,
            Format::Ion,
            &records,
            &Default::default(),
            ctx.serde_mode,
        )
        .map_err(|e| TaskError::Failed(e.to_string()))?;
        let mut outputs = Map::new();
        outputs.insert("uri".into(), uri.into());
        outputs.insert("size".into(), records.len().into());
        Ok(outputs)
    }
}

/// A log line as Kestra's `FileSerde.write` writes a `LogEntry`: its fields, the
/// timestamp an Ion timestamp. The row key flowbench gives each line is left out: Kestra's
/// `LogEntry` has none.
fn record(line: &LogEntry) -> Ion {
    let json = serde_json::to_value(line).expect("a log line always serializes");
    let Ok(Ion::Struct(fields)) = Ion::deserialize(&json) else {
        unreachable!("a log line is a JSON object")
    };
    Ion::Struct(
        fields
            .into_iter()
            .filter(|(k, _)| k != "id")
            .map(|(k, v)| match (k.as_str(), &v) {
                ("timestamp", Ion::String(text)) => {
                    let ts = crate::kv::value::instant(text).map_or(v, Ion::Timestamp);
                    (k, ts)
                }
                _ => (k, v),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use crate::flow::parse_flow;

    fn fetch(props: &str) -> Result<crate::flow::Flow, crate::flow::FlowError> {
        parse_flow(
            &format!(
                "id: f\nnamespace: n\ntasks:\n  - id: get\n    type: io.kestra.plugin.core.log.Fetch\n{props}"
            ),
            "f.yaml",
        )
    }

    #[test]
    fn bad_properties_fail_the_flow_at_load() {
        fetch("").unwrap();
        fetch("    executionId: e\n    namespace: n\n    flowId: f\n    level: DEBUG\n").unwrap();
        let e = fetch("    level: LOUD\n").unwrap_err().to_string();
        assert!(
            e.contains("f.yaml") && e.contains("flow `n.f`") && e.contains("task `get`"),
            "{e}"
        );
        assert!(e.contains("`level`") && e.contains("LOUD"), "{e}");
        let e = fetch("    tasksId: a\n").unwrap_err().to_string();
        assert!(e.contains("`tasksId`"), "{e}");
        let e = fetch("    executionId: e\n    flowId: f\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Both `namespace` and `flowId` must be set"),
            "{e}"
        );
        let e = fetch("    namespace: n\n").unwrap_err().to_string();
        assert!(
            e.contains("should only be set when `executionId` is set"),
            "{e}"
        );
    }
}
