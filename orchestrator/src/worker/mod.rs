//! The worker: a pool of N threads that run task runs and report results.
//!
//! One async poller takes worker tasks from the queue, only as many as there are free
//! threads, recording each in `worker_job_running` in the same transaction. Threads run tasks
//! synchronously (a `Sleep` holds its thread, as in Kestra's worker), and send log lines and
//! results to one async writer that queues them in batches. A worker killed mid-task leaves
//! its jobs in `worker_job_running`; the executor resubmits them once its heartbeat stops.

mod logger;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::executor::{Timing, log_message};
use crate::expression::Renderer;
use crate::flow::{Task, TaskKind};
use crate::knobs::{Knobs, LogIndexing, TaskHandling};
use crate::model::{Level, LogEntry, State, StateType, TaskRun, TaskRunAttempt, WorkerTaskResult};
use crate::repository::{Message, QueueType, Store};
use crate::storage::Storage;
use crate::tasks::{Runnable, TaskContext};

use logger::{AttemptLogger, LineStamp, Sink};

/// What the executor sends a worker: Kestra's `WorkerTask`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerTask {
    pub task_run: TaskRun,
    pub task: Task,
    pub run_context: RunContext,
}

/// The rendered variables the task sees, computed by the executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunContext {
    pub variables: Value,
}

/// What task threads tell the writer.
pub(crate) enum Event {
    Log(LogEntry),
    Done(WorkerTaskResult),
}

/// Largest number of events the writer commits in one transaction.
const WRITE_BATCH: usize = 1000;

pub struct Worker {
    store: Arc<dyn Store>,
    renderer: Arc<Renderer>,
    storage: Storage,
    knobs: Knobs,
    timing: Timing,
    id: String,
}

/// Runs one task run on a worker thread.
struct TaskRunner {
    store: Arc<dyn Store>,
    renderer: Arc<Renderer>,
    storage: Storage,
    knobs: Knobs,
    runtime: tokio::runtime::Handle,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        renderer: Arc<Renderer>,
        storage: Storage,
        knobs: Knobs,
        timing: Timing,
    ) -> Self {
        Worker {
            store,
            renderer,
            storage,
            knobs,
            timing,
            id: format!("worker-{}", crate::model::new_id()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown`; then stops polling, lets the running task runs finish and
    /// writes their results before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let threads = self.knobs.worker_threads;
        let store = self.store.clone();
        let id = self.id.clone();
        while let Err(e) = heartbeat(&*store, &id).await {
            tracing::warn!("worker {id}: cannot register: {e}; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.timing.max_poll) => {}
            }
        }
        let beat = {
            let (store, id, every, stop) = (
                store.clone(),
                id.clone(),
                self.timing.heartbeat,
                shutdown.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    if let Err(e) = heartbeat(&*store, &id).await {
                        tracing::warn!("worker {id}: heartbeat failed: {e}");
                    }
                }
            })
        };

        let (job_tx, job_rx) = flume::bounded::<WorkerTask>(threads);
        let (event_tx, event_rx) = flume::unbounded::<Event>();
        let free = Arc::new(Semaphore::new(threads));
        let runner = Arc::new(TaskRunner {
            store: store.clone(),
            renderer: self.renderer.clone(),
            storage: self.storage.clone(),
            knobs: self.knobs.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let (jobs, events, runner) = (job_rx.clone(), event_tx.clone(), runner.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("worker-thread-{n}"))
                .spawn(move || {
                    while let Ok(job) = jobs.recv() {
                        let result = runner.execute(job, &events);
                        let _ = events.send(Event::Done(result));
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => tracing::error!("worker {id}: cannot start thread {n}: {e}"),
            }
        }
        drop(job_rx);
        drop(event_tx);
        let writer = tokio::spawn(write_events(
            store.clone(),
            event_rx,
            free.clone(),
            shutdown.clone(),
        ));

        self.poll_loop(&job_tx, &free, &shutdown).await;

        // Graceful stop: no new jobs; threads finish what they hold; the writer drains.
        drop(job_tx);
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
        let _ = writer.await;
        beat.abort();
        if let Ok(mut tx) = store.begin().await
            && tx.remove_instance(&id).await.is_ok()
        {
            let _ = tx.commit().await;
        }
    }

    async fn poll_loop(
        &self,
        jobs: &flume::Sender<WorkerTask>,
        free: &Arc<Semaphore>,
        shutdown: &CancellationToken,
    ) {
        let mut idle = self.timing.min_poll;
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = free.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else { return };
            permit.forget();
            let mut taken = 1;
            while let Ok(p) = free.try_acquire() {
                p.forget();
                taken += 1;
            }
            match self.poll(taken).await {
                Ok(batch) => {
                    free.add_permits(taken - batch.len());
                    let got = !batch.is_empty();
                    for job in batch {
                        if jobs.send_async(job).await.is_err() {
                            return;
                        }
                    }
                    if got {
                        idle = self.timing.min_poll;
                        continue;
                    }
                }
                Err(e) => {
                    free.add_permits(taken);
                    tracing::warn!("worker {}: polling failed: {e:#}", self.id);
                    idle = self.timing.max_poll;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.store.notifier().notified(QueueType::WorkerTask) => {}
                _ = tokio::time::sleep(idle) => {}
            }
            idle = (idle * 2).min(self.timing.max_poll);
        }
    }

    async fn poll(&self, limit: usize) -> anyhow::Result<Vec<WorkerTask>> {
        let mut tx = self.store.begin().await?;
        let polled = tx.poll(&[QueueType::WorkerTask], limit).await?;
        for p in &polled {
            tx.job_started(&self.id, &p.key, &p.value).await?;
        }
        tx.commit().await?;
        let mut jobs = Vec::with_capacity(polled.len());
        for p in polled {
            match serde_json::from_str::<WorkerTask>(&p.value) {
                Ok(job) => jobs.push(job),
                // Stays in worker_job_running, so it is visible and resubmitted, not lost.
                Err(e) => {
                    tracing::error!("worker {}: undecodable worker task {}: {e}", self.id, p.key)
                }
            }
        }
        Ok(jobs)
    }
}

async fn heartbeat(store: &dyn Store, id: &str) -> crate::repository::Result<()> {
    let mut tx = store.begin().await?;
    tx.heartbeat(id, "worker", jiff::Timestamp::now().as_millisecond())
        .await?;
    tx.commit().await
}

/// Queues log lines and results in batches; retries while the database is away, so a
/// result is never dropped while the process lives.
async fn write_events(
    store: Arc<dyn Store>,
    events: flume::Receiver<Event>,
    free: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    while let Ok(first) = events.recv_async().await {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match events.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let mut messages = Vec::with_capacity(batch.len());
        let mut finished = Vec::new();
        for e in &batch {
            match e {
                Event::Log(l) => messages.push(log_message(l)),
                Event::Done(r) => {
                    finished.push(r.task_run.id.clone());
                    messages.push(Message {
                        kind: QueueType::WorkerTaskResult,
                        key: r.task_run.id.clone(),
                        value: serde_json::to_string(r).expect("a result serializes"),
                    });
                }
            }
        }
        let mut failures = 0;
        loop {
            let attempt = async {
                let mut tx = store.begin().await?;
                tx.push(&messages).await?;
                tx.jobs_finished(&finished).await?;
                tx.commit().await
            };
            match attempt.await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(
                        "worker: writing {} events failed: {e}; retrying",
                        messages.len()
                    );
                    if shutdown.is_cancelled() && failures > 20 {
                        // The jobs stay in worker_job_running and are resubmitted.
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250 * failures.min(8)))
                        .await;
                }
            }
        }
        let n = store.notifier();
        n.notify(QueueType::Log);
        if !finished.is_empty() {
            n.notify(QueueType::WorkerTaskResult);
            free.add_permits(finished.len());
        }
    }
}

fn runnable(task: &Task) -> Option<&dyn Runnable> {
    Some(match &task.kind {
        TaskKind::Log(t) => t,
        TaskKind::Return(t) => t,
        TaskKind::OutputValues(t) => t,
        TaskKind::Sleep(t) => t,
        TaskKind::Fail(t) => t,
        _ => return None,
    })
}

/// The outcome of every attempt of one task run.
struct Outcome {
    attempts: Vec<TaskRunAttempt>,
    outputs: Option<Map<String, Value>>,
    state: StateType,
}

impl TaskRunner {
    fn execute(&self, job: WorkerTask, events: &flume::Sender<Event>) -> WorkerTaskResult {
        match self.knobs.task_handling {
            TaskHandling::Immutable => {
                let o = self.attempts(&job.task, &job.task_run, &job.run_context.variables, events);
                let mut state = job.task_run.state.clone();
                state.transition(o.state, crate::model::now());
                WorkerTaskResult {
                    task_run: TaskRun {
                        attempts: Some(o.attempts),
                        outputs: o.outputs,
                        state,
                        ..job.task_run
                    },
                }
            }
            TaskHandling::Mutate => {
                // Kestra before 0.20: copy the WorkerTask through a JSON round trip to strip
                // transient state, update it with Lombok-style `with…` copies, and build the
                // result from the whole copied WorkerTask.
                let text = serde_json::to_string(&job).expect("a worker task serializes");
                let mut copy: WorkerTask = match serde_json::from_str(&text) {
                    Ok(c) => c,
                    Err(e) => return self.failed(job, &format!("copying the task: {e}")),
                };
                let o = self.attempts(
                    &copy.task,
                    &copy.task_run,
                    &copy.run_context.variables,
                    events,
                );
                let mut task_run = copy.task_run.clone();
                task_run.attempts = Some(o.attempts);
                copy = WorkerTask {
                    task_run,
                    ..copy.clone()
                };
                let mut task_run = copy.task_run.clone();
                task_run.outputs = o.outputs;
                copy = WorkerTask {
                    task_run,
                    ..copy.clone()
                };
                let mut task_run = copy.task_run.clone();
                task_run.state.transition(o.state, crate::model::now());
                copy = WorkerTask {
                    task_run,
                    ..copy.clone()
                };
                let whole = copy.clone();
                WorkerTaskResult {
                    task_run: whole.task_run,
                }
            }
        }
    }

    fn failed(&self, job: WorkerTask, message: &str) -> WorkerTaskResult {
        tracing::error!("task run {}: {message}", job.task_run.id);
        let mut task_run = job.task_run;
        task_run
            .state
            .transition(StateType::Failed, crate::model::now());
        WorkerTaskResult { task_run }
    }

    /// Runs the attempts Kestra's `retry` allows; each attempt logs its own lines.
    fn attempts(
        &self,
        task: &Task,
        task_run: &TaskRun,
        vars: &Value,
        events: &flume::Sender<Event>,
    ) -> Outcome {
        let Some(runnable) = runnable(task) else {
            return Outcome {
                attempts: Vec::new(),
                outputs: None,
                state: StateType::Failed,
            };
        };
        let max = task.retry.as_ref().map_or(1, |r| r.max_attempts());
        let started = Instant::now();
        let threshold = task.log_level.unwrap_or(Level::Trace);
        let thread = std::thread::current()
            .name()
            .unwrap_or("worker")
            .to_string();
        let mut attempts = Vec::new();
        for n in 1.. {
            let stamp = LineStamp {
                task_run: task_run.clone(),
                attempt: n,
                thread: thread.clone(),
            };
            let sink = if task.log_to_file {
                AttemptLogger::for_file(&self.storage, &stamp)
            } else {
                Ok(match self.knobs.logs_indexing {
                    LogIndexing::Batched => Sink::Queue(events.clone()),
                    LogIndexing::Sync => Sink::Direct {
                        store: self.store.clone(),
                        runtime: self.runtime.clone(),
                    },
                })
            };
            let mut state = State::of(StateType::Running, crate::model::now());
            let (result, log_file) = match sink {
                Err(e) => (Err(format!("opening the task's log file: {e}")), None),
                Ok(sink) => {
                    let mut logger = AttemptLogger::new(stamp, threshold, sink);
                    let result = {
                        let mut ctx = TaskContext {
                            renderer: &self.renderer,
                            vars,
                            logger: &mut logger,
                        };
                        runnable.run(&mut ctx)
                    };
                    let result = match (result, logger.error.take()) {
                        (Ok(o), None) => Ok(o),
                        (Ok(_), Some(e)) => Err(e),
                        (Err(e), _) => Err(e.to_string()),
                    };
                    if let Err(msg) = &result {
                        use crate::tasks::TaskLogger;
                        logger.log(Level::Error, msg.clone());
                    }
                    (result, logger.finish())
                }
            };
            match result {
                Ok(outputs) => {
                    state.transition(StateType::Success, crate::model::now());
                    attempts.push(TaskRunAttempt { state, log_file });
                    let warn = n > 1 && task.retry.as_ref().is_some_and(|r| r.warning_on_retry());
                    return Outcome {
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
                    let retry = task.retry.as_ref().filter(|r| {
                        n < max
                            && r.max_duration()
                                .is_none_or(|d| started.elapsed() + r.delay_before(n + 1) <= d)
                    });
                    match retry {
                        Some(r) => std::thread::sleep(r.delay_before(n + 1)),
                        None => {
                            return Outcome {
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
}
