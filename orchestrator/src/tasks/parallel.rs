use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};

/// `io.kestra.plugin.core.flow.Parallel`: starts its children together, at most
/// `concurrent` at once (0: no limit).
#[derive(Debug, Clone)]
pub struct Parallel {
    pub tasks: Vec<Task>,
    pub concurrent: u32,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for Parallel {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Parallel"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.Parallel", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let tasks = props.tasks("tasks", true)?;
        let concurrent = props.take::<Option<u32>>("concurrent")?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(Parallel {
            tasks,
            concurrent: concurrent.unwrap_or(0),
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for Parallel {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let progress = walker.parallel(&self.tasks, Some(run.id), None, self.concurrent);
        walker.or_errors(progress, &self.errors, run)
    }
}
