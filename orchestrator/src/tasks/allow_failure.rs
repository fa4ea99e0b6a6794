use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};
use crate::model::StateType;

/// `io.kestra.plugin.core.flow.AllowFailure` (deprecated in favour of `allowFailure`, still
/// run): a Sequential that ends WARNING when its children fail, after its `errors` ran.
#[derive(Debug, Clone)]
pub struct AllowFailure {
    pub tasks: Vec<Task>,
    /// Run once the children have failed.
    pub errors: Vec<Task>,
}

impl TaskType for AllowFailure {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.AllowFailure"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.AllowFailure", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let tasks = props.tasks("tasks", true)?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(AllowFailure { tasks, errors })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for AllowFailure {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let progress = walker.sequential(&self.tasks, Some(run.id), None);
        match walker.or_errors(progress, &self.errors, run) {
            Progress::Done(s) if s.is_failed() => Progress::Done(StateType::Warning),
            other => other,
        }
    }
}
