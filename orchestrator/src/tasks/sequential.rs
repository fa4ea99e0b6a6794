use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};

/// `io.kestra.plugin.core.flow.Sequential`: runs its children one after the other.
#[derive(Debug, Clone)]
pub struct Sequential {
    pub tasks: Vec<Task>,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for Sequential {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Sequential"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.Sequential", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let tasks = props.tasks("tasks", true)?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(Sequential { tasks, errors })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for Sequential {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        // Only a ForEach gives its children a value (Kestra's `FlowableUtils.resolveTasks`).
        let progress = walker.sequential(&self.tasks, Some(run.id), None);
        walker.or_errors(progress, &self.errors, run)
    }
}
