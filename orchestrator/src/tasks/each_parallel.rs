use serde_json::Value;

use super::for_each::each_values;
use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};

/// `io.kestra.plugin.core.flow.EachParallel` (deprecated since Kestra 0.19, still run):
/// every task of every distinct value of `value` started together, at most `concurrent`
/// unfinished at once (0, the default: no limit), each task run carrying its value.
#[derive(Debug, Clone)]
pub struct EachParallel {
    /// A list, a JSON-array string, or an expression that renders to one.
    pub value: Value,
    pub concurrent: u32,
    pub tasks: Vec<Task>,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for EachParallel {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.EachParallel"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.EachParallel", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let tasks = props.tasks("tasks", true)?;
        let value = props.required("value")?;
        let concurrent = props.take::<Option<u32>>("concurrent")?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(EachParallel {
            value,
            concurrent: concurrent.unwrap_or(0),
            tasks,
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for EachParallel {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let values = match each_values(walker, run, &self.value) {
            Ok(values) => values,
            Err(done) => return done,
        };
        let items = values
            .iter()
            .flat_map(|v| self.tasks.iter().map(move |t| (t, Some(v.as_str()))));
        let progress = walker.parallel_of(items, Some(run.id), self.concurrent);
        walker.or_errors(progress, &self.errors, run)
    }
}
