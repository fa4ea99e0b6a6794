//! Running one task run on a worker thread, and building its result per the
//! `worker.task-handling` knob.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::emitter::LogEmitter;
use super::logger::{AttemptLogger, LineStamp, Sink};
use super::mutate::{self, Ran};
use super::{Event, WorkerTask};
use crate::expression::{Renderer, WorkerScope};
use crate::flow::{RetryBehavior, Task, task_duration};
use crate::knobs::{Knobs, TaskHandling};
use crate::model::{Level, State, StateType, TaskRun, TaskRunAttempt, WorkerTaskResult};
use crate::storage::Storage;
use crate::tasks::{ExecutionLogs, KillSwitch, Role, Runnable, TaskContext};

/// Runs one task run on a worker thread.
pub(crate) struct TaskRunner {
    pub renderer: Arc<Renderer>,
    pub storage: Storage,
    pub knobs: Knobs,
    /// The pool each line is handed to: present exactly when `logs.indexing=sync`.
    pub emitter: Option<LogEmitter>,
    /// The logs table, for `log.Fetch`.
    pub logs: Option<Arc<dyn ExecutionLogs>>,
}

/// The logs table read from a worker thread, which blocks on the worker's runtime.
pub(crate) struct StoreLogs {
    pub store: Arc<dyn crate::repository::Store>,
    pub runtime: tokio::runtime::Handle,
}

impl ExecutionLogs for StoreLogs {
    fn logs(&self, execution_id: &str) -> Result<Vec<crate::model::LogEntry>, String> {
        self.runtime
            .block_on(self.store.logs(execution_id))
            .map_err(|e| format!("reading the logs of execution {execution_id}: {e}"))
    }
}

fn runnable(task: &Task) -> Option<&dyn Runnable> {
    match task.kind.role() {
        Role::Runnable(r) => Some(r),
        Role::Flowable(_)
        | Role::Updating(_)
        | Role::Executable(_)
        | Role::Iterative(_)
        | Role::Resuming(_) => None,
    }
}

impl TaskRunner {
    /// Runs the task run's attempts; `kill` is turned off when its execution is killed.
    pub fn execute(
        &self,
        job: WorkerTask,
        events: &flume::Sender<Event>,
        kill: Option<&KillSwitch>,
    ) -> WorkerTaskResult {
        match self.knobs.task_handling {
            TaskHandling::Immutable => {
                let prior = job.task_run.attempts.as_deref().unwrap_or_default();
                let o = self.attempts(
                    &job.task,
                    &job.task_run,
                    prior,
                    &job.run_context.variables,
                    events,
                    kill,
                );
                let mut state = job.task_run.state.clone();
                state.transition(o.state, crate::model::now());
                WorkerTaskResult {
                    task_run: TaskRun {
                        attempts: Some(o.attempts),
                        outputs: o.outputs,
                        state,
                        ..job.task_run
                    },
                    iteration: false,
                }
            }
            // Kestra before 84d845cde: see `mutate` for the copies it makes, and why.
            TaskHandling::Mutate => mutate::handle(job, |held| {
                self.attempts(
                    &held.task,
                    held.task_run.received(),
                    held.task_run.attempts(),
                    &held.run_context.variables,
                    events,
                    kill,
                )
            }),
        }
    }

    /// Runs the attempts Kestra's `retry` allows after the `prior` ones (a restarted task
    /// run's, kept); each attempt logs its own lines. A killed one ends KILLED, and no
    /// attempt starts once the task run is killed.
    fn attempts(
        &self,
        task: &Task,
        task_run: &TaskRun,
        prior: &[TaskRunAttempt],
        vars: &Value,
        events: &flume::Sender<Event>,
        kill: Option<&KillSwitch>,
    ) -> Ran {
        let mut attempts = prior.to_vec();
        let Some(runnable) = runnable(task) else {
            return Ran {
                attempts,
                outputs: None,
                state: StateType::Failed,
            };
        };
        let killed = || kill.is_some_and(KillSwitch::is_killed);
        // A `CREATE_NEW_EXECUTION` retry is the executor's: the worker makes one attempt.
        let retry = task
            .retry
            .as_ref()
            .filter(|r| r.behavior() == RetryBehavior::RetryFailedTask);
        let max = retry.map_or(1, |r| r.max_attempts());
        let started = Instant::now();
        let threshold = task.log_level.unwrap_or(Level::Trace);
        let thread = std::thread::current()
            .name()
            .unwrap_or("worker")
            .to_string();
        let first = u32::try_from(prior.len()).unwrap_or(u32::MAX - 1) + 1;
        for n in first.. {
            if killed() {
                // Kestra's worker ends a task run of a killed execution KILLED, unrun.
                return Ran {
                    attempts,
                    outputs: None,
                    state: StateType::Killed,
                };
            }
            let stamp = LineStamp {
                task_run: task_run.clone(),
                attempt: n,
                thread: thread.clone(),
            };
            let sink = if task.log_to_file {
                AttemptLogger::for_file(&self.storage, &stamp)
            } else {
                Ok(match &self.emitter {
                    Some(emitter) => Sink::EmitAsync(emitter.clone()),
                    None => Sink::Queue(events.clone()),
                })
            };
            // `taskrun.attemptsCount` counts the attempts before this one, as on the retried
            // task run Kestra's executor sends back to a worker.
            let retried;
            let vars = if n == first {
                vars
            } else {
                let mut v = vars.clone();
                if let Some(tr) = v.get_mut("taskrun").and_then(Value::as_object_mut) {
                    tr.insert("attemptsCount".into(), Value::from(n - 1));
                }
                retried = v;
                &retried
            };
            let mut state = State::of(StateType::Running, crate::model::now());
            let (result, log_file) = match sink {
                Err(e) => (Err(format!("opening the task's log file: {e}")), None),
                Ok(sink) => {
                    let mut logger = AttemptLogger::new(stamp, threshold, sink);
                    let result = match self.timeout(task, vars) {
                        Err(e) => Err(e),
                        Ok(timeout) => {
                            let deadline = timeout.map(|t| Instant::now() + t);
                            let mut ctx = TaskContext {
                                renderer: &self.renderer,
                                vars,
                                logger: &mut logger,
                                storage: &self.storage,
                                task_run,
                                serde_mode: self.knobs.serde_mode,
                                deadline,
                                logs: self.logs.as_deref(),
                                kill,
                            };
                            let result = {
                                let _scope = WorkerScope::open(self.logs.clone());
                                runnable.run(&mut ctx).map_err(|e| e.to_string())
                            };
                            // Kestra's Failsafe `Timeout`: an attempt that outlived its
                            // timeout fails with `TimeoutExceededException`'s message.
                            match (timeout, deadline) {
                                (Some(t), Some(d)) if Instant::now() >= d => {
                                    Err(timeout_message(t))
                                }
                                _ => result,
                            }
                        }
                    };
                    let result = match (result, logger.error.take()) {
                        (Ok(o), None) => Ok(o),
                        (Ok(_), Some(e)) => Err(e),
                        (Err(e), _) => Err(e),
                    };
                    if let Err(msg) = &result {
                        use crate::tasks::TaskLogger;
                        logger.log(Level::Error, msg.clone());
                    }
                    (result, logger.finish())
                }
            };
            if killed() {
                state.transition(StateType::Killed, crate::model::now());
                attempts.push(TaskRunAttempt { state, log_file });
                return Ran {
                    attempts,
                    outputs: None,
                    state: StateType::Killed,
                };
            }
            match result {
                Ok(outputs) => {
                    state.transition(StateType::Success, crate::model::now());
                    attempts.push(TaskRunAttempt { state, log_file });
                    let warn = n > first && retry.is_some_and(|r| r.warning_on_retry());
                    return Ran {
                        attempts,
                        outputs: (!outputs.is_empty()).then_some(outputs),
                        state: if warn {
                            StateType::Warning
                        } else {
                            StateType::Success
                        },
                    };
                }
                Err(_) => {
                    state.transition(StateType::Failed, crate::model::now());
                    attempts.push(TaskRunAttempt { state, log_file });
                    // The attempts this run made, the retry's count.
                    let made = n + 1 - first;
                    let retry = retry.filter(|r| {
                        made < max
                            && r.max_duration()
                                .is_none_or(|d| started.elapsed() + r.delay_before(made + 1) <= d)
                    });
                    match retry {
                        Some(r) => match kill {
                            Some(switch) => switch.sleep(r.delay_before(made + 1)),
                            None => std::thread::sleep(r.delay_before(made + 1)),
                        },
                        None => {
                            return Ran {
                                attempts,
                                outputs: None,
                                state: StateType::Failed,
                            };
                        }
                    }
                }
            }
        }
        unreachable!("the attempt loop returns")
    }

    /// The task's `timeout`, rendered for this attempt (Kestra renders it in
    /// `WorkerTaskCallable#doCall`, so a bad one fails the attempt).
    fn timeout(&self, task: &Task, vars: &Value) -> Result<Option<Duration>, String> {
        let Some(text) = &task.timeout else {
            return Ok(None);
        };
        let rendered = self
            .renderer
            .render(text, vars)
            .map_err(|e| format!("property `timeout`: {e}"))?;
        task_duration(&rendered)
            .map(Some)
            .map_err(|e| format!("property `timeout`: {e}"))
    }
}

/// Kestra's `TimeoutExceededException` message: `Timeout after ` and the timeout as
/// `HH:mm:ss.SSS` (commons-lang's `DurationFormatUtils.formatDurationHMS`; hours go past 24).
fn timeout_message(timeout: Duration) -> String {
    let ms = timeout.as_millis();
    format!(
        "Timeout after {:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_is_kestras_hms() {
        assert_eq!(
            timeout_message(Duration::from_nanos(100_000)),
            "Timeout after 00:00:00.000"
        );
        assert_eq!(
            timeout_message(Duration::from_millis(90 * 60_000 + 1_250)),
            "Timeout after 01:30:01.250"
        );
        assert_eq!(
            timeout_message(Duration::from_secs(25 * 3600)),
            "Timeout after 25:00:00.000"
        );
    }
}
