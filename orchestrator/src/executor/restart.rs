//! Restarting an ended execution in place, as Kestra's `ExecutionService#restart` does
//! with no revision: the same execution id, its failed (or paused) task runs and their
//! parents reset, the error branches' task runs removed, the execution RESTARTED and one
//! attempt up. The executor then runs it again from there ([`super::Executor`] moves a
//! RESTARTED execution to RUNNING, and [`super::resolve`] sends a RESTARTED task run to a
//! worker as it sends a CREATED one); a restarted task run keeps its attempts, and the
//! worker adds the next.

use std::collections::HashSet;

use crate::flow::{Flow, Task};
use crate::model::{Execution, ExecutionMetadata, StateType, now};

/// Why an execution cannot be restarted.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// Kestra answers 409: only an ended or paused execution restarts.
    #[error(
        "Execution must be terminated to be restarted, current state is '{state}' ! (execution `{id}`)"
    )]
    NotEnded { id: String, state: StateType },
    /// Kestra answers 422: no task run failed (or paused), so nothing would run again.
    #[error(
        "No task found to restart execution from! (execution `{0}` has no failed or paused task run)"
    )]
    NothingToRestart(String),
}

/// Restarts `exec`, an execution of `flow`, in place.
pub fn restart(flow: &Flow, exec: &mut Execution) -> Result<(), RestartError> {
    let state = exec.state.current;
    if !(state.is_terminal() || state == StateType::Paused) {
        return Err(RestartError::NotEnded {
            id: exec.id.clone(),
            state,
        });
    }
    // Kestra's `State#isFailed` is FAILED alone: a KILLED task run is not restarted.
    let mut reset: HashSet<String> = HashSet::new();
    for tr in &exec.task_run_list {
        if matches!(tr.state.current, StateType::Failed | StateType::Paused) {
            let mut next = Some(tr.id.as_str());
            while let Some(id) = next {
                if !reset.insert(id.to_string()) {
                    break;
                }
                next = exec
                    .task_run(id)
                    .and_then(|t| t.parent_task_run_id.as_deref());
            }
        }
    }
    if reset.is_empty() {
        return Err(RestartError::NothingToRestart(exec.id.clone()));
    }
    let at = now();
    for tr in &mut exec.task_run_list {
        if !reset.contains(&tr.id) {
            continue;
        }
        // A flowable runs again around its reset children; the others run again.
        let flowable = flow.find_task(&tr.task_id).is_some_and(Task::is_flowable);
        let next = if flowable {
            StateType::Running
        } else {
            StateType::Restarted
        };
        tr.state.transition(next, at);
    }
    // The flow's `errors`, and every flowable's, run again if the run fails again.
    let errors = error_task_ids(flow);
    exec.task_run_list
        .retain(|tr| !errors.contains(tr.task_id.as_str()));
    exec.metadata = Some(ExecutionMetadata {
        attempt_number: exec.attempt_number() + 1,
        original_created_date: exec.original_created_date(),
    });
    exec.state.transition(StateType::Restarted, at);
    Ok(())
}

/// The ids of every task under the flow's `errors` and under any flowable's `errors`, at
/// any depth (Kestra's `Flow#allErrorsWithChilds`).
fn error_task_ids(flow: &Flow) -> HashSet<&str> {
    fn all<'a>(tasks: &'a [Task], into: &mut HashSet<&'a str>) {
        for t in tasks {
            into.insert(&t.id);
            for children in t.children() {
                all(children, into);
            }
        }
    }
    fn flowable_errors<'a>(tasks: &'a [Task], into: &mut HashSet<&'a str>) {
        for t in tasks {
            if let Some(f) = t.flowable() {
                all(f.errors(), into);
            }
            for children in t.children() {
                flowable_errors(children, into);
            }
        }
    }
    let mut ids = HashSet::new();
    all(&flow.errors, &mut ids);
    flowable_errors(&flow.tasks, &mut ids);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::parse_flow;
    use crate::model::{State, TaskRun, TaskRunAttempt};

    /// Kestra's `restart_local_errors.yaml`, with a flow `errors` branch too.
    const FLOW: &str = "id: f\nnamespace: n\ntasks:\n  - id: before\n    type: io.kestra.plugin.core.log.Log\n    message: x\n  - id: sequential\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: close\n        type: io.kestra.plugin.core.log.Log\n        message: x\n      - id: failStep\n        type: io.kestra.plugin.core.execution.Fail\n    errors:\n      - id: localHandler\n        type: io.kestra.plugin.core.log.Log\n        message: x\nerrors:\n  - id: globalHandler\n    type: io.kestra.plugin.core.log.Log\n    message: x\n";

    fn ended(
        exec: &Execution,
        id: &str,
        task: &str,
        parent: Option<&str>,
        end: StateType,
    ) -> TaskRun {
        let at = now();
        let mut state = State::new(at);
        state.transition(StateType::Running, at);
        state.transition(end, at);
        TaskRun {
            id: id.into(),
            execution_id: exec.id.clone(),
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
            task_id: task.into(),
            parent_task_run_id: parent.map(str::to_string),
            value: None,
            attempts: Some(vec![TaskRunAttempt {
                state: state.clone(),
                log_file: None,
            }]),
            outputs: None,
            state,
            iteration: None,
        }
    }

    fn failed_run(flow: &Flow) -> Execution {
        let mut exec = crate::service::new_execution(flow, Default::default(), vec![], None);
        let runs = [
            ("1", "before", None, StateType::Success),
            ("2", "sequential", None, StateType::Failed),
            ("3", "close", Some("2"), StateType::Success),
            ("4", "failStep", Some("2"), StateType::Failed),
            ("5", "localHandler", Some("2"), StateType::Success),
            ("6", "globalHandler", None, StateType::Success),
        ];
        for (id, task, parent, end) in runs {
            let tr = ended(&exec, id, task, parent, end);
            exec.task_run_list.push(tr);
        }
        exec.state.transition(StateType::Running, now());
        exec.state.transition(StateType::Failed, now());
        exec
    }

    #[test]
    fn a_failed_task_run_and_its_parents_restart_and_the_error_branches_go() {
        let flow = parse_flow(FLOW, "f.yaml").unwrap();
        let mut exec = failed_run(&flow);
        restart(&flow, &mut exec).unwrap();
        assert_eq!(exec.state.current, StateType::Restarted);
        assert_eq!(exec.attempt_number(), 2);
        let runs: Vec<(&str, StateType, usize)> = exec
            .task_run_list
            .iter()
            .map(|t| (t.task_id.as_str(), t.state.current, t.attempt_count()))
            .collect();
        assert_eq!(
            runs,
            [
                ("before", StateType::Success, 1),
                ("sequential", StateType::Running, 1),
                ("close", StateType::Success, 1),
                ("failStep", StateType::Restarted, 1),
            ]
        );
        // Restarted again after a second failure: one attempt more.
        exec.state.transition(StateType::Failed, now());
        exec.task_run_list[3]
            .state
            .transition(StateType::Failed, now());
        restart(&flow, &mut exec).unwrap();
        assert_eq!(exec.attempt_number(), 3);
    }

    #[test]
    fn only_an_ended_execution_with_a_failed_task_run_restarts() {
        let flow = parse_flow(FLOW, "f.yaml").unwrap();
        let mut exec = failed_run(&flow);
        exec.state.transition(StateType::Running, now());
        let e = restart(&flow, &mut exec).unwrap_err();
        assert!(
            matches!(
                e,
                RestartError::NotEnded {
                    state: StateType::Running,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("current state is 'RUNNING'"), "{e}");
        let mut exec = crate::service::new_execution(&flow, Default::default(), vec![], None);
        let done = ended(&exec, "1", "before", None, StateType::Success);
        exec.task_run_list.push(done);
        exec.state.transition(StateType::Success, now());
        let e = restart(&flow, &mut exec).unwrap_err();
        assert!(matches!(e, RestartError::NothingToRestart(_)), "{e}");
        assert!(e.to_string().contains("No task found to restart"), "{e}");
        assert_eq!(exec.state.current, StateType::Success, "left as it was");
    }
}
