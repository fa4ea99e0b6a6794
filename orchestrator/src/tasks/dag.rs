use std::collections::HashMap;

use serde_json::Value;

use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};

/// `io.kestra.plugin.core.flow.Dag`: starts each of its tasks once every task it
/// `dependsOn` has ended, at most `concurrent` at once (0: no limit). Follows Kestra
/// 58c1ca2d0's `Dag` and `FlowableUtils.resolveDagNexts` (a dependency counts once its task
/// run has ended, in any state; after a failure no new task starts), and `DagTaskValidator`
/// (an unknown `dependsOn` id, then a cycle, fails the flow at load). A task that depends
/// on a disabled one never starts: Kestra's Dag then waits for ever, flowbench's ends
/// without it once nothing else runs.
#[derive(Debug, Clone)]
pub struct Dag {
    pub tasks: Vec<Task>,
    /// The ids each task of `tasks` (same index) waits for.
    pub depends_on: Vec<Vec<String>>,
    pub concurrent: u32,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

/// One entry of `tasks`, as written: Kestra's `Dag.DagTask`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DagTask {
    task: Option<Value>,
    #[serde(default)]
    depends_on: Option<Vec<String>>,
}

impl TaskType for Dag {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Dag"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.Dag", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let entries: Option<Vec<DagTask>> = props.take("tasks")?;
        let entries = match entries {
            Some(e) if !e.is_empty() => e,
            // Kestra's `DagTaskValidator`.
            _ => return Err(props.error("property `tasks`: No task defined")),
        };
        let mut tasks = Vec::with_capacity(entries.len());
        let mut depends_on = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let task = entry
                .task
                .ok_or_else(|| props.error(format!("property `tasks[{i}]`: missing `task`")))?;
            tasks.push(props.task(task)?);
            depends_on.push(entry.depends_on.unwrap_or_default());
        }
        let concurrent = props.take::<Option<u32>>("concurrent")?;
        let errors = props.tasks("errors", false)?;
        let dag = Dag {
            tasks,
            depends_on,
            concurrent: concurrent.unwrap_or(0),
            errors,
        };
        // Kestra's `DagTaskValidator`: unknown ids first, then cycles.
        let missing = dag.unknown_dependencies();
        if !missing.is_empty() {
            return Err(props.error(format!(
                "property `tasks`: Not existing task id in dependency: {}",
                missing.join(", ")
            )));
        }
        let cyclic = dag.cyclic();
        if !cyclic.is_empty() {
            return Err(props.error(format!(
                "property `tasks`: Cyclic dependency detected: {}",
                cyclic.join(", ")
            )));
        }
        props.finish()?;
        Ok(dag)
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Dag {
    /// Every `dependsOn` id that names none of the tasks, as often as it is written
    /// (`Dag#dagCheckNotExistTask`).
    fn unknown_dependencies(&self) -> Vec<&str> {
        self.depends_on
            .iter()
            .flatten()
            .filter(|id| !self.tasks.iter().any(|t| &t.id == *id))
            .map(String::as_str)
            .collect()
    }

    /// The tasks that depend on themselves through their dependencies, in order
    /// (`Dag#dagCheckCyclicDependencies`).
    fn cyclic(&self) -> Vec<&str> {
        let deps: HashMap<&str, &[String]> = self
            .tasks
            .iter()
            .zip(&self.depends_on)
            .map(|(t, d)| (t.id.as_str(), d.as_slice()))
            .collect();
        self.tasks
            .iter()
            .filter(|t| {
                let mut seen: Vec<&str> = Vec::new();
                let mut todo: Vec<&str> = deps[t.id.as_str()].iter().map(String::as_str).collect();
                while let Some(id) = todo.pop() {
                    if seen.contains(&id) {
                        continue;
                    }
                    seen.push(id);
                    todo.extend(
                        deps.get(id)
                            .into_iter()
                            .flat_map(|d| d.iter().map(String::as_str)),
                    );
                }
                seen.contains(&t.id.as_str())
            })
            .map(|t| t.id.as_str())
            .collect()
    }

    fn dependencies(&self, task: &Task) -> &[String] {
        self.tasks
            .iter()
            .position(|t| t.id == task.id)
            .map_or(&[], |i| &self.depends_on[i])
    }
}

impl Flowable for Dag {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let items = self.tasks.iter().map(|t| (t, None));
        let progress = walker.parallel_when(items, Some(run.id), self.concurrent, |w, task| {
            w.ended(self.dependencies(task), run.id)
        });
        walker.or_errors(progress, &self.errors, run)
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::parse_flow;

    fn dag(entries: &str) -> Result<crate::flow::Flow, crate::flow::FlowError> {
        parse_flow(
            &format!(
                "id: f\nnamespace: n\ntasks:\n  - id: dag\n    type: io.kestra.plugin.core.flow.Dag\n{entries}"
            ),
            "f.yaml",
        )
    }

    const LOG: &str = "type: io.kestra.plugin.core.log.Log\n          message: m";

    #[test]
    fn bad_tasks_fail_the_flow_at_load_naming_the_task() {
        let e = dag("    tasks: []\n").unwrap_err().to_string();
        assert!(
            e.contains("f.yaml") && e.contains("flow `n.f`") && e.contains("task `dag`"),
            "{e}"
        );
        assert!(e.contains("No task defined"), "{e}");
        let e = dag(&format!(
            "    tasks:\n      - dependsOn: [a]\n        task:\n          id: b\n          {LOG}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Not existing task id in dependency: a"), "{e}");
        let e = dag(&format!(
            "    tasks:\n      - depends: [a]\n        task:\n          id: b\n          {LOG}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("task `dag`") && e.contains("depends"), "{e}");
        let e = dag("    tasks:\n      - dependsOn: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`tasks[0]`: missing `task`"), "{e}");
        let e = dag(&format!(
            "    tasks:\n      - dependsOn: [a]\n        task:\n          id: a\n          {LOG}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("Cyclic dependency detected: a"), "{e}");
        // A child's own errors name the child.
        let e = dag("    tasks:\n      - task:\n          id: c\n          type: io.kestra.plugin.core.log.Log\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("task `c`") && e.contains("message"), "{e}");
    }
}
