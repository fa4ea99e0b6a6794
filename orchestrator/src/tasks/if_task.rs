use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};
use crate::model::StateType;

/// `io.kestra.plugin.core.flow.If`: runs `then` when `condition` renders true, else `else`.
#[derive(Debug, Clone)]
pub struct IfTask {
    pub condition: String,
    pub then: Vec<Task>,
    pub else_: Vec<Task>,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for IfTask {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.If"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.If", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let then = props.tasks("then", true)?;
        let else_ = props.tasks("else", false)?;
        let condition = props.required_string("condition")?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(IfTask {
            condition,
            then,
            else_,
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for IfTask {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.then, &self.else_, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let branch = match walker.eval(run, |r, vars| r.render_condition(&self.condition, vars)) {
            Ok(true) => &self.then,
            Ok(false) => &self.else_,
            Err(()) => return Progress::Done(StateType::Failed),
        };
        let progress = walker.sequential(branch, Some(run.id), None);
        walker.or_errors(progress, &self.errors, run)
    }
}
