use std::collections::HashSet;

use serde_json::Value;

use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};
use crate::model::{Level, StateType};

/// `io.kestra.plugin.core.flow.ForEach`: runs `tasks` once per value, with `taskrun.value`
/// set to it. `concurrencyLimit` values run at once (1, the default, is sequential; 0 is
/// unlimited).
#[derive(Debug, Clone)]
pub struct ForEach {
    /// A list, a JSON-array string, or an expression that renders to one.
    pub values: Value,
    pub concurrency_limit: u32,
    pub tasks: Vec<Task>,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for ForEach {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.ForEach"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let tasks = props.tasks("tasks", true)?;
        let values = props.required("values")?;
        let limit = props.take::<Option<u32>>("concurrencyLimit")?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(ForEach {
            values,
            concurrency_limit: limit.unwrap_or(1),
            tasks,
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for ForEach {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let values = match each_values(walker, run, &self.values) {
            Ok(values) => values,
            Err(done) => return done,
        };
        let progress = walker.for_each(&self.tasks, run.id, &values, self.concurrency_limit);
        walker.or_errors(progress, &self.errors, run)
    }
}

/// The values a ForEach (or an older `EachSequential` / `EachParallel`) runs over, as
/// Kestra's `FlowableUtils.resolveEachTasks` reads them: rendered, each distinct value once
/// in first-seen order, and none null.
pub(crate) fn each_values(
    walker: &mut Walker<'_>,
    run: &FlowableRun<'_>,
    values: &Value,
) -> Result<Vec<String>, Progress> {
    let values = walker
        .eval(run, |r, vars| r.render_list(values, vars))
        .map_err(|()| Progress::Done(StateType::Failed))?;
    if values.iter().any(Value::is_null) {
        // Distinct values are counted, so there is one null at most.
        let listed: Vec<String> = values.iter().map(java_string).collect();
        walker.log(
            run,
            Level::Error,
            format!(
                "Found '1' null values on Each, with values=[{}]",
                listed.join(", ")
            ),
        );
        return Err(Progress::Done(StateType::Failed));
    }
    let mut seen = HashSet::new();
    Ok(values
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .filter(|v| seen.insert(v.clone()))
        .collect())
}

/// A value as Java's `toString` prints it, for messages that quote Kestra's.
fn java_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(java_string).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", java_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}
