use std::time::Duration;

use serde_json::{Map, Value};

use super::{Flowable, Role, TaskKind, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{Flow, FlowError, Input, Task, TaskProps, task_duration as parse_duration};
use crate::model::{Execution, Level, StateType};

/// `io.kestra.plugin.core.flow.Pause`: puts its task run, and the execution, in PAUSED until
/// it is resumed (`POST /api/v1/executions/{id}/resume`), or until `delay` has passed
/// (then it goes on), or `timeout` (then it fails). Follows Kestra 58c1ca2d0's `Pause`
/// (`resolveState` pauses a running task run that was never paused) and
/// `ExecutorService#handlePausedDelay` (the delay or timeout counts from the pause).
///
/// The deprecated `tasks` run after the resume, in sequence; without them the resumed task
/// run ends SUCCESS at once (`ExecutionService#markAs`).
#[derive(Debug, Clone)]
pub struct Pause {
    /// An ISO-8601 duration, or an expression that renders to one.
    pub delay: Option<String>,
    pub timeout: Option<String>,
    /// Inputs the resume takes; the task run's `onResume` output holds them.
    pub on_resume: Vec<Input>,
    pub tasks: Vec<Task>,
    pub errors: Vec<Task>,
}

impl TaskType for Pause {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.Pause"];
    const ALIASES: &'static [(&'static str, &'static str)] =
        &[("io.kestra.core.tasks.flows.Pause", Self::TYPES[0])];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let delay = props.take::<Option<String>>("delay")?;
        let delay = props.duration("delay", delay)?;
        // Every task has a `timeout`; the Pause's is when it fails unless resumed.
        let timeout = props.timeout();
        let on_resume: Option<Vec<Input>> = props.take("onResume")?;
        let on_resume = on_resume.unwrap_or_default();
        for input in &on_resume {
            input
                .check_type()
                .map_err(|e| props.error(format!("`onResume`: {e}")))?;
        }
        let tasks = props.tasks("tasks", false)?;
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(Pause {
            delay,
            timeout,
            on_resume,
            tasks,
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

impl Flowable for Pause {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let state = walker.state(run);
        let paused_before = state.histories.iter().any(|h| h.state == StateType::Paused);
        match state.current {
            StateType::Paused => return Progress::Running,
            StateType::Running if !paused_before => {
                // Kestra renders the delay, else the timeout, against the execution; the
                // delay resumes the task run, the timeout fails it.
                let after = match (
                    self.rendered(walker, run, self.delay.as_deref(), "delay"),
                    self.rendered(walker, run, self.timeout.as_deref(), "timeout"),
                ) {
                    (Err(()), _) | (_, Err(())) => return Progress::Done(StateType::Failed),
                    (Ok(Some(d)), _) => Some((d, StateType::Running)),
                    (Ok(None), Ok(Some(t))) => Some((t, StateType::Failed)),
                    (Ok(None), Ok(None)) => None,
                };
                walker.pause(run, after);
                return Progress::Running;
            }
            _ => {}
        }
        if self.tasks.is_empty() {
            return Progress::Done(StateType::Success);
        }
        let progress = walker.sequential(&self.tasks, Some(run.id), None);
        walker.or_errors(progress, &self.errors, run)
    }
}

impl Pause {
    /// A duration property rendered; an empty rendering is no duration, as in Kestra.
    fn rendered(
        &self,
        walker: &mut Walker<'_>,
        run: &FlowableRun<'_>,
        text: Option<&str>,
        key: &str,
    ) -> Result<Option<Duration>, ()> {
        let Some(text) = text else {
            return Ok(None);
        };
        let rendered = walker.eval(run, |r, vars| r.render(text, vars))?;
        if rendered.trim().is_empty() {
            return Ok(None);
        }
        parse_duration(&rendered).map(Some).map_err(|e| {
            walker.log(run, Level::Error, format!("property `{key}`: {e}"));
        })
    }
}

/// Why a paused execution could not be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("execution `{0}` is not paused")]
    NotPaused(String),
    #[error("execution `{execution}`: task run `{task_run}` not found")]
    NoTaskRun { execution: String, task_run: String },
}

/// The `onResume` inputs of the execution's first paused task run, when it is a Pause
/// (Kestra's `ExecutionService#getFirstPausedTaskOr`).
pub fn on_resume_inputs<'f>(exec: &Execution, flow: &'f Flow) -> &'f [Input] {
    exec.task_run_list
        .iter()
        .find(|t| t.state.current == StateType::Paused)
        .and_then(|t| flow.find_task(&t.task_id))
        .map(|task| match &task.kind {
            TaskKind::Pause(p) => p.on_resume.as_slice(),
            _ => &[],
        })
        .unwrap_or_default()
}

/// Resumes a paused execution, as Kestra's `ExecutionService#resume`: its first paused task
/// run is marked RUNNING with the `onResume` inputs given (see [`mark_as`]). An execution
/// paused with no paused task run moves to RUNNING.
pub fn resume(
    exec: &mut Execution,
    flow: &Flow,
    inputs: Option<Map<String, Value>>,
) -> Result<(), ResumeError> {
    if exec.state.current != StateType::Paused {
        return Err(ResumeError::NotPaused(exec.id.clone()));
    }
    let paused = exec
        .task_run_list
        .iter()
        .find(|t| t.state.current == StateType::Paused)
        .map(|t| t.id.clone());
    match paused {
        Some(id) => mark_as(exec, flow, &id, StateType::Running, inputs),
        None => {
            exec.state
                .transition(StateType::Running, crate::model::now());
            Ok(())
        }
    }
}

/// Kestra's `ExecutionService#markAs` (58c1ca2d0): the task run moves to `state`, its
/// flowable ancestors to RUNNING. A Pause keeps the `onResume` inputs as its `onResume`
/// output, and one without `tasks` marked RUNNING ends SUCCESS at once. Once no task run is
/// paused any more, the execution is RESTARTED, which the executor turns RUNNING.
pub fn mark_as(
    exec: &mut Execution,
    flow: &Flow,
    task_run_id: &str,
    state: StateType,
    on_resume: Option<Map<String, Value>>,
) -> Result<(), ResumeError> {
    let now = crate::model::now();
    let execution_id = exec.id.clone();
    let missing = || ResumeError::NoTaskRun {
        execution: execution_id.clone(),
        task_run: task_run_id.to_string(),
    };
    let target = exec.task_run(task_run_id).ok_or_else(missing)?;
    let mut ancestors = Vec::new();
    let mut parent = target.parent_task_run_id.clone();
    while let Some(id) = parent {
        parent = exec
            .task_run(&id)
            .and_then(|t| t.parent_task_run_id.clone());
        ancestors.push(id);
    }
    for id in ancestors {
        if let Some(tr) = exec.task_run_mut(&id) {
            tr.state.transition(StateType::Running, now);
        }
    }
    let task = flow.find_task(&exec.task_run(task_run_id).ok_or_else(missing)?.task_id);
    let pause = task.and_then(|t| match &t.kind {
        TaskKind::Pause(p) => Some(p),
        _ => None,
    });
    let tr = exec.task_run_mut(task_run_id).ok_or_else(missing)?;
    tr.state.transition(state, now);
    if let Some(p) = pause {
        if !p.on_resume.is_empty() {
            // Kestra's `Pause#generateOutputs`; a null `onResume` is left out (NON_NULL).
            let mut outputs = Map::new();
            if let Some(inputs) = on_resume {
                outputs.insert("onResume".into(), Value::Object(inputs));
            }
            tr.outputs = Some(outputs);
        }
        if p.tasks.is_empty() && state == StateType::Running {
            tr.state.transition(StateType::Success, now);
        }
    }
    if let Some(attempt) = tr.attempts.as_mut().and_then(|a| a.last_mut()) {
        attempt.state.transition(state, now);
    }
    if exec
        .task_run_list
        .iter()
        .all(|t| t.state.current != StateType::Paused)
    {
        exec.state.transition(StateType::Restarted, now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::flow::parse_flow;
    use crate::model::{Execution, State, StateType, TaskRun};

    fn flow(pause: &str) -> Result<crate::flow::Flow, crate::flow::FlowError> {
        parse_flow(
            &format!(
                "id: f\nnamespace: n\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n{pause}"
            ),
            "f.yaml",
        )
    }

    #[test]
    fn bad_durations_and_inputs_fail_the_flow_at_load() {
        let e = flow("    delay: -PT1S\n").unwrap_err().to_string();
        assert!(e.contains("f.yaml") && e.contains("`pause`"), "{e}");
        assert!(e.contains("`delay`") && e.contains("negative"), "{e}");
        let e = flow("    timeout: soon\n").unwrap_err().to_string();
        assert!(e.contains("`timeout`") && e.contains("soon"), "{e}");
        let e = flow("    onResume:\n      - id: x\n        type: NUMBER\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("onResume") && e.contains("NUMBER"), "{e}");
        // An expression is rendered at the pause, not at load.
        flow("    delay: \"{{ inputs.delay }}\"\n").unwrap();
    }

    fn paused(flow: &crate::flow::Flow) -> Execution {
        let now = crate::model::now();
        let mut state = State::new(now);
        state.transition(StateType::Running, now);
        state.transition(StateType::Paused, now);
        let mut tr_state = State::new(now);
        tr_state.transition(StateType::Running, now);
        tr_state.transition(StateType::Paused, now);
        Execution {
            id: "e".into(),
            tenant_id: None,
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            flow_revision: 1,
            inputs: Default::default(),
            labels: Vec::new(),
            state,
            task_run_list: vec![TaskRun {
                id: "t".into(),
                execution_id: "e".into(),
                namespace: flow.namespace.clone(),
                flow_id: flow.id.clone(),
                task_id: "pause".into(),
                parent_task_run_id: None,
                value: None,
                attempts: None,
                outputs: None,
                state: tr_state,
                iteration: None,
            }],
            trigger: None,
            original_id: "e".into(),
            metadata: None,
            outputs: None,
        }
    }

    /// Kestra's `ExecutionServiceTest.resumePausedToRunning`: the execution is RESTARTED with
    /// four histories, and a second resume is refused.
    #[test]
    fn a_resume_restarts_the_execution_once() {
        let f = flow("    onResume:\n      - id: asked\n        type: STRING\n").unwrap();
        let mut exec = paused(&f);
        let inputs: serde_json::Map<_, _> = [("asked".to_string(), serde_json::json!("yes"))]
            .into_iter()
            .collect();
        super::resume(&mut exec, &f, Some(inputs)).unwrap();
        assert_eq!(exec.state.current, StateType::Restarted);
        assert_eq!(exec.state.histories.len(), 4);
        let tr = &exec.task_run_list[0];
        // No `tasks`: the resumed Pause ends at once, RUNNING then SUCCESS.
        assert_eq!(tr.state.current, StateType::Success);
        let running = tr
            .state
            .histories
            .iter()
            .filter(|h| h.state == StateType::Running);
        assert_eq!(running.count(), 2);
        assert_eq!(
            tr.outputs.as_ref().unwrap()["onResume"]["asked"],
            serde_json::json!("yes")
        );
        let again = super::resume(&mut exec, &f, None).unwrap_err();
        assert!(matches!(again, super::ResumeError::NotPaused(_)), "{again}");
    }

    /// A timeout marks the Pause FAILED, with no `onResume` output.
    #[test]
    fn a_timeout_fails_the_pause() {
        let f = flow("    timeout: PT1S\n").unwrap();
        let mut exec = paused(&f);
        super::mark_as(&mut exec, &f, "t", StateType::Failed, None).unwrap();
        let tr = &exec.task_run_list[0];
        assert_eq!(tr.state.current, StateType::Failed);
        assert_eq!(tr.outputs, None);
        assert_eq!(exec.state.current, StateType::Restarted);
    }
}
