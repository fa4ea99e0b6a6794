use serde_json::{Map, Value};

use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps};
use crate::model::{Level, StateType};

/// `io.kestra.plugin.core.flow.Switch`: runs the case whose key equals the rendered
/// `value`, else `defaults`. Cases keep their YAML order.
#[derive(Debug, Clone)]
pub struct Switch {
    pub value: String,
    pub cases: Vec<(String, Vec<Task>)>,
    pub defaults: Vec<Task>,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

impl TaskType for Switch {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Switch"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.Switch", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let value = props.required_string("value")?;
        let cases = props.task_lists("cases")?;
        let defaults = props.tasks("defaults", false)?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(Switch {
            value,
            cases,
            defaults,
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for Switch {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        let mut lists: Vec<&[Task]> = self.cases.iter().map(|(_, c)| c.as_slice()).collect();
        lists.push(&self.defaults);
        lists.push(&self.errors);
        lists
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let rendered = match walker.eval(run, |r, vars| r.render(&self.value, vars)) {
            Ok(rendered) => rendered,
            Err(()) => return Progress::Done(StateType::Failed),
        };
        let case = self.cases.iter().find(|(k, _)| *k == rendered);
        let mut outputs = Map::new();
        outputs.insert("value".into(), Value::String(rendered.clone()));
        outputs.insert("defaults".into(), Value::Bool(case.is_none()));
        walker.set_outputs(run, outputs);
        let branch = case.map_or(&self.defaults, |(_, tasks)| tasks);
        if branch.is_empty() {
            // Kestra's `FlowableUtils.resolveState` with no case and no defaults.
            let (flow, execution) = walker.execution_names();
            let task = &run.task.id;
            walker.log(
                run,
                Level::Warn,
                format!("No task found on flow '{flow}', task '{task}', execution '{execution}'"),
            );
            return Progress::Done(StateType::Failed);
        }
        let progress = walker.sequential(branch, Some(run.id), None);
        walker.or_errors(progress, &self.errors, run)
    }
}
