//! `worker.task-handling=mutate`: how Kestra's worker handled one task run before commit
//! 84d845cde ("refactor Worker with more immutability"), as read in
//! `core/src/main/java/io/kestra/core/runners/Worker.java` at 84d845cde^ (`run`,
//! `runAttempt`, `cleanUpTransient`).
//!
//! Java objects are references: Lombok's `WorkerTask.withTaskRun(…)` builds a new
//! `WorkerTask` that shares `task` and `runContext`, and `TaskRun.withState/withAttempts/
//! withOutputs` build a new `TaskRun` that shares every other field (its lists and maps
//! are not copied). [`HeldWorkerTask`] and [`HeldTaskRun`] hold the same things behind `Arc`,
//! so each `with_…` below costs what Java's does: a new value and a few shared references.
//!
//! Per task run (one attempt, not killed), Kestra before 84d845cde made:
//! - 4 `WorkerTask.withTaskRun` copies: `run` (state RUNNING), `runAttempt` (the attempt
//!   emitted before the task runs), `runAttempt` (the result), `run` (the final state);
//! - 5 `TaskRun` copies: `withState(RUNNING)`, `withAttempts` (emitted attempt),
//!   `withAttempts`, `withOutputs`, `withState(final)`;
//! - 1 JSON round trip of the whole `WorkerTask` (`cleanUpTransient`), after `runAttempt`.
//!
//! [`handle`] makes exactly these, no more. The two results Kestra emitted on the way
//! (RUNNING, and the running attempt) are not emitted here, on either path: flowbench's
//! executor marks the task run RUNNING when it dispatches it, so `withState(RUNNING)` finds
//! the state already RUNNING and, as Kestra's `State.withState` does, shares it. Retries run
//! inside one `WorkerTask` in flowbench, so the copies are made once per task run.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{RunContext, WorkerTask};
use crate::flow::Task;
use crate::model::{State, StateType, TaskRun, TaskRunAttempt, WorkerTaskResult};

/// A `TaskRun` as a Java reference holds it: a copy shares every field.
pub(super) struct HeldTaskRun {
    /// The task run's identity (ids, namespace, flow, task, value); its `attempts`,
    /// `outputs` and `state` are moved to the fields below, the ones Kestra's worker replaced.
    fields: Arc<TaskRun>,
    attempts: Option<Arc<Vec<TaskRunAttempt>>>,
    outputs: Option<Arc<Map<String, Value>>>,
    state: Arc<State>,
}

/// A `WorkerTask` as a Java reference holds it: `withTaskRun` shares task and run context.
pub(super) struct HeldWorkerTask {
    pub task_run: HeldTaskRun,
    pub task: Arc<Task>,
    pub run_context: Arc<RunContext>,
}

impl HeldTaskRun {
    fn new(mut task_run: TaskRun) -> Self {
        // Moved out, not copied: the fields Kestra's worker replaced live beside the rest.
        let empty = State {
            current: task_run.state.current,
            histories: Vec::new(),
        };
        let state = Arc::new(std::mem::replace(&mut task_run.state, empty));
        HeldTaskRun {
            attempts: task_run.attempts.take().map(Arc::new),
            outputs: task_run.outputs.take().map(Arc::new),
            state,
            fields: Arc::new(task_run),
        }
    }

    /// The task run's identity, which is what a task reads of it.
    pub fn received(&self) -> &TaskRun {
        &self.fields
    }

    /// Its attempts so far (a restarted task run's).
    pub fn attempts(&self) -> &[TaskRunAttempt] {
        self.attempts.as_deref().map_or(&[], Vec::as_slice)
    }

    fn copy(&self) -> Self {
        HeldTaskRun {
            fields: self.fields.clone(),
            attempts: self.attempts.clone(),
            outputs: self.outputs.clone(),
            state: self.state.clone(),
        }
    }

    /// Kestra's `TaskRun.withState` → `State.withState`: the same state when it is already
    /// current, else a new state with the histories list copied and one entry added.
    fn with_state(&self, next: StateType) -> Self {
        let state = if self.state.current == next {
            self.state.clone()
        } else {
            let mut s = State::clone(&self.state);
            s.transition(next, crate::model::now());
            Arc::new(s)
        };
        HeldTaskRun {
            state,
            ..self.copy()
        }
    }

    fn with_attempts(&self, attempts: Vec<TaskRunAttempt>) -> Self {
        HeldTaskRun {
            attempts: Some(Arc::new(attempts)),
            ..self.copy()
        }
    }

    fn with_outputs(&self, outputs: Option<Map<String, Value>>) -> Self {
        HeldTaskRun {
            outputs: outputs.map(Arc::new),
            ..self.copy()
        }
    }

    /// The `TaskRun` to report: moves the fields out when nothing else holds them.
    fn into_task_run(self) -> TaskRun {
        let mut tr = Arc::unwrap_or_clone(self.fields);
        tr.attempts = self.attempts.map(Arc::unwrap_or_clone);
        tr.outputs = self.outputs.map(Arc::unwrap_or_clone);
        tr.state = Arc::unwrap_or_clone(self.state);
        tr
    }
}

impl HeldWorkerTask {
    pub fn new(job: WorkerTask) -> Self {
        HeldWorkerTask {
            task_run: HeldTaskRun::new(job.task_run),
            task: Arc::new(job.task),
            run_context: Arc::new(job.run_context),
        }
    }

    /// Lombok's `@With`: a new `WorkerTask` with the same `task` and `runContext`.
    fn with_task_run(&self, task_run: HeldTaskRun) -> Self {
        HeldWorkerTask {
            task_run,
            task: self.task.clone(),
            run_context: self.run_context.clone(),
        }
    }

    /// `cleanUpTransient`: `MAPPER.readValue(MAPPER.writeValueAsString(workerTask))`.
    fn clean_up_transient(&self) -> Result<HeldWorkerTask, serde_json::Error> {
        let tr = &self.task_run;
        let json = serde_json::to_string(&WorkerTaskJson {
            task_run: TaskRunJson {
                id: &tr.fields.id,
                execution_id: &tr.fields.execution_id,
                namespace: &tr.fields.namespace,
                flow_id: &tr.fields.flow_id,
                task_id: &tr.fields.task_id,
                parent_task_run_id: tr.fields.parent_task_run_id.as_ref(),
                value: tr.fields.value.as_ref(),
                attempts: tr.attempts.as_deref(),
                outputs: tr.outputs.as_deref(),
                state: &tr.state,
            },
            task: &self.task,
            run_context: &self.run_context,
        })?;
        Ok(HeldWorkerTask::new(serde_json::from_str(&json)?))
    }
}

/// Serializes a held task exactly as `WorkerTask` serializes (a test checks it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkerTaskJson<'a> {
    task_run: TaskRunJson<'a>,
    task: &'a Task,
    run_context: &'a RunContext,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskRunJson<'a> {
    id: &'a str,
    execution_id: &'a str,
    namespace: &'a str,
    flow_id: &'a str,
    task_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_task_run_id: Option<&'a String>,
    value: Option<&'a String>,
    attempts: Option<&'a Vec<TaskRunAttempt>>,
    outputs: Option<&'a Map<String, Value>>,
    state: &'a State,
}

/// The outcome of every attempt of one task run (the same on both paths).
pub(super) struct Ran {
    pub attempts: Vec<TaskRunAttempt>,
    pub outputs: Option<Map<String, Value>>,
    pub state: StateType,
}

/// Kestra's `Worker.run` before 84d845cde, around `run_attempts`, which runs the task.
pub(super) fn handle(
    job: WorkerTask,
    run_attempts: impl FnOnce(&HeldWorkerTask) -> Ran,
) -> WorkerTaskResult {
    let received = HeldWorkerTask::new(job);
    // run(): workerTask = workerTask.withTaskRun(workerTask.getTaskRun().withState(RUNNING))
    let running = received.with_task_run(received.task_run.with_state(StateType::Running));
    drop(received);
    // runAttempt(): the attempt emitted before the task runs; the copy is emitted, then dropped.
    let mut emitted_attempts = running
        .task_run
        .attempts
        .as_deref()
        .cloned()
        .unwrap_or_default();
    emitted_attempts.push(TaskRunAttempt {
        state: State::of(StateType::Running, crate::model::now()),
        log_file: None,
    });
    drop(running.with_task_run(running.task_run.with_attempts(emitted_attempts)));

    let ran = run_attempts(&running);

    // runAttempt(): taskRun.withAttempts(attempts).withOutputs(…); workerTask.withTaskRun(taskRun)
    let task_run = running.task_run.with_attempts(ran.attempts);
    let task_run = task_run.with_outputs(ran.outputs);
    let attempted = running.with_task_run(task_run);
    drop(running);
    // run(): finalWorkerTask = this.cleanUpTransient(workerTaskAttempt)
    let cleaned = match attempted.clean_up_transient() {
        Ok(c) => c,
        Err(e) => {
            // Kestra logs and goes on with the task as it was.
            tracing::warn!("unable to clean up transient state: {e}");
            attempted
        }
    };
    // run(): finalWorkerTask.withTaskRun(finalWorkerTask.getTaskRun().withState(state))
    let finished = cleaned.with_task_run(cleaned.task_run.with_state(ran.state));
    drop(cleaned);
    // new WorkerTaskResult(finalWorkerTask): the result takes the task run's reference.
    WorkerTaskResult {
        task_run: finished.task_run.into_task_run(),
        iteration: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> WorkerTask {
        let flow = crate::flow::parse_flow(
            "id: f\nnamespace: n\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ flow.id }}\"\n",
            "f.yaml",
        )
        .unwrap();
        let mut state = State::of(StateType::Created, crate::model::now());
        state.transition(StateType::Running, crate::model::now());
        WorkerTask {
            task_run: TaskRun {
                id: "tr".into(),
                execution_id: "e".into(),
                namespace: "n".into(),
                flow_id: "f".into(),
                task_id: "r".into(),
                parent_task_run_id: Some("p".into()),
                value: Some("v".into()),
                attempts: None,
                outputs: None,
                state,
                iteration: None,
            },
            task: flow.tasks[0].clone(),
            run_context: RunContext {
                variables: serde_json::json!({"flow": {"id": "f"}, "big": vec!["x"; 10]}),
            },
        }
    }

    #[test]
    fn a_held_task_serializes_as_a_worker_task_does() {
        let job = sample();
        let expected = serde_json::to_string(&job).unwrap();
        let held = HeldWorkerTask::new(job);
        let cleaned = held.clean_up_transient().unwrap();
        let back = WorkerTask {
            task_run: cleaned.task_run.into_task_run(),
            task: Arc::unwrap_or_clone(cleaned.task),
            run_context: Arc::unwrap_or_clone(cleaned.run_context),
        };
        assert_eq!(serde_json::to_string(&back).unwrap(), expected);
    }

    #[test]
    fn copies_share_the_task_and_run_context() {
        let held = HeldWorkerTask::new(sample());
        let copy = held.with_task_run(held.task_run.with_state(StateType::Running));
        assert!(Arc::ptr_eq(&held.task, &copy.task));
        assert!(Arc::ptr_eq(&held.run_context, &copy.run_context));
        assert!(Arc::ptr_eq(&held.task_run.fields, &copy.task_run.fields));
        // Already RUNNING: Kestra's State.withState returns the same state.
        assert!(Arc::ptr_eq(&held.task_run.state, &copy.task_run.state));
        let done = copy.task_run.with_state(StateType::Success);
        assert_eq!(done.state.current, StateType::Success);
        assert_eq!(
            copy.task_run.state.current,
            StateType::Running,
            "the copy is new"
        );
    }

    #[test]
    fn the_result_carries_what_the_attempts_produced() {
        let job = sample();
        let mut attempt = State::of(StateType::Running, crate::model::now());
        attempt.transition(StateType::Success, crate::model::now());
        let mut outputs = Map::new();
        outputs.insert("value".into(), "f".into());
        let mut seen = None;
        let r = handle(job.clone(), |held| {
            seen = Some(held.task_run.received().clone());
            Ran {
                attempts: vec![TaskRunAttempt {
                    state: attempt.clone(),
                    log_file: None,
                }],
                outputs: Some(outputs.clone()),
                state: StateType::Success,
            }
        });
        let seen = seen.unwrap();
        assert_eq!(
            (seen.id, seen.execution_id, seen.task_id, seen.value),
            (
                job.task_run.id.clone(),
                job.task_run.execution_id.clone(),
                job.task_run.task_id.clone(),
                job.task_run.value.clone()
            ),
            "the task sees the task run it was sent"
        );
        assert_eq!(r.task_run.id, "tr");
        assert_eq!(r.task_run.parent_task_run_id.as_deref(), Some("p"));
        assert_eq!(r.task_run.outputs, Some(outputs));
        assert_eq!(r.task_run.attempt_count(), 1);
        let states: Vec<_> = r.task_run.state.histories.iter().map(|h| h.state).collect();
        assert_eq!(
            states,
            vec![StateType::Created, StateType::Running, StateType::Success]
        );
    }
}
