//! The worker: a pool of N threads that run task runs and report results.
//!
//! One async poller takes worker tasks from the queue, only as many as there are free
//! threads, recording each in `worker_job_running` in the same transaction. Threads run tasks
//! synchronously (a `Sleep` holds its thread, as in Kestra's worker), and send log lines and
//! results to one async writer that queues them in batches. A worker killed mid-task leaves
//! its jobs in `worker_job_running`; the executor resubmits them once its heartbeat stops.
//!
//! Every thread the worker owns is named `worker-…`, so that its CPU can be read apart from
//! the other components sharing the process: the task threads (`worker-thread-N`) and the
//! runtime (`worker-rt`) that runs the poller, the writer, the heartbeat and, for
//! `logs.indexing=sync`, the log pool.
//!
//! A killed execution's running task runs stop and end KILLED: `kill` reads the kill queue,
//! every worker all of it, and turns off their [`crate::tasks::KillSwitch`]es.
//!
//! Layout: `runner` runs one task run; `mutate` is `worker.task-handling=mutate`; `logger`
//! routes a task's log lines; `emitter` is `logs.indexing=sync`'s pool; `kill` the kill
//! queue's reader and the switches; `bench` exposes the real task handling to the
//! benchmarks.

#[doc(hidden)]
pub mod bench;
mod emitter;
mod kill;
mod logger;
mod mutate;
mod runner;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::expression::Renderer;
use crate::knobs::{Knobs, LogIndexing};
use crate::model::{LogEntry, WorkerTaskResult};
use crate::queue::{QueueMessage, RunContext, Timing, WorkerTask};
use crate::repository::{Message, QueueType, Store};
use crate::storage::Storage;

use emitter::LogEmitter;
use runner::TaskRunner;

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
    /// Log lines handed to the `logs.indexing=sync` pool and not yet committed.
    lines_in_flight: Arc<AtomicUsize>,
}

/// The name of the worker runtime's threads (Linux keeps 15 bytes of a thread name).
pub const RUNTIME_THREAD_NAME: &str = "worker-rt";

/// The runtime of every worker in the process: the poller, the writer, the heartbeat and
/// the log pool run here, on threads named [`RUNTIME_THREAD_NAME`].
///
/// One per process and never shut down: a database connection opened by a task on this
/// runtime stays bound to its I/O driver, and connection pools are shared with the other
/// components, which may use that connection after the worker stopped. `None` when the
/// runtime cannot be built; workers then run on the caller's runtime.
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(RUNTIME_THREAD_NAME)
                .enable_all()
                .build()
                .map_err(|e| {
                    tracing::error!("cannot start the worker runtime: {e}; using the caller's")
                })
                .ok()
        })
        .as_ref()
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
            lines_in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Counts log lines accepted and not yet committed (`logs.indexing=sync`), so that a
    /// caller can wait until every line is indexed.
    pub fn with_lines_in_flight(mut self, counter: Arc<AtomicUsize>) -> Self {
        self.lines_in_flight = counter;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown`; then stops polling, lets the running task runs finish and
    /// writes their results and log lines before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(rt) = runtime() else {
            return self.run_here(shutdown).await;
        };
        // If this future is dropped (its runtime ends), the worker stops too.
        let stop = shutdown.child_token();
        let _stop_when_dropped = stop.clone().drop_guard();
        if let Err(e) = rt.spawn(self.run_here(stop)).await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    async fn run_here(self, shutdown: CancellationToken) {
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
        let (emitter, pool) = match self.knobs.logs_indexing {
            LogIndexing::Sync => {
                let (e, p) = LogEmitter::start(
                    store.clone(),
                    self.lines_in_flight.clone(),
                    shutdown.clone(),
                );
                (Some(e), Some(p))
            }
            LogIndexing::Batched => (None, None),
        };
        let runner = Arc::new(TaskRunner {
            renderer: self.renderer.clone(),
            storage: self.storage.clone(),
            knobs: self.knobs.clone(),
            emitter,
            logs: Some(Arc::new(runner::StoreLogs {
                store: store.clone(),
                runtime: tokio::runtime::Handle::current(),
            })),
        });
        let kills = Arc::new(kill::Kills::default());
        let kill_reader = tokio::spawn(kill::watch(
            store.clone(),
            kills.clone(),
            self.timing.clone(),
            id.clone(),
            shutdown.clone(),
        ));
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let (jobs, events, runner) = (job_rx.clone(), event_tx.clone(), runner.clone());
            let kills = kills.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("worker-thread-{n}"))
                .spawn(move || {
                    while let Ok(job) = jobs.recv() {
                        let task_run_id = job.task_run.id.clone();
                        let switch = kills.start(&job.task_run);
                        let result = runner.execute(job, &events, Some(&switch));
                        kills.finish(&task_run_id);
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

        // Graceful stop: no new jobs; threads finish what they hold; the log pool and the
        // writer drain.
        drop(job_tx);
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
        drop(runner);
        if let Some(pool) = pool {
            pool.drain().await;
        }
        let _ = writer.await;
        let _ = kill_reader.await;
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
        let notifier = self.store.notifier();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = free.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else { return };
            permit.forget();
            // One thread is free; `poll` takes the others that are free once it has the
            // database.
            let mut taken = 1;
            // Registered before the poll (see `Notifier::notified`).
            let pushed = notifier.notified(QueueType::WorkerTask);
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            match self.poll(free, &mut taken).await {
                Ok(batch) => {
                    free.add_permits(taken - batch.len());
                    let (got, full) = (!batch.is_empty(), batch.len() == taken);
                    for job in batch {
                        if jobs.send_async(job).await.is_err() {
                            return;
                        }
                    }
                    if got {
                        idle = self.timing.min_poll;
                    }
                    // Every free thread got a task: more may be waiting. Otherwise the
                    // queue was drained, and the next push wakes this loop.
                    if full {
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
                _ = &mut pushed => {}
                _ = tokio::time::sleep(idle) => {}
            }
            idle = (idle * 2).min(self.timing.max_poll);
        }
    }

    /// Takes up to `taken` worker tasks, plus one for each thread freed while the
    /// transaction waited for the database (on SQLite, for the single writer): `taken` grows
    /// by the permits it took.
    async fn poll(&self, free: &Semaphore, taken: &mut usize) -> anyhow::Result<Vec<WorkerTask>> {
        let mut tx = self.store.begin().await?;
        while let Ok(p) = free.try_acquire() {
            p.forget();
            *taken += 1;
        }
        let received = tx.receive::<WorkerTask>(*taken).await?;
        let started: Vec<(&str, &str)> = received
            .iter()
            .map(|r| (r.row.key.as_str(), r.row.value.as_str()))
            .collect();
        tx.jobs_started(&self.id, &started).await?;
        tx.commit().await?;
        Ok(received.into_iter().map(|r| r.message).collect())
    }
}

async fn heartbeat(store: &dyn Store, id: &str) -> crate::repository::Result<()> {
    let mut tx = store.begin().await?;
    tx.heartbeat(id, "worker", jiff::Timestamp::now().as_millisecond())
        .await?;
    tx.commit().await
}

/// An event as the queue message it writes; a result also ends its job.
fn add_event(event: Event, messages: &mut Vec<Message>, finished: &mut Vec<String>) {
    match event {
        Event::Log(l) => messages.push(l.to_message()),
        Event::Done(r) => {
            finished.push(r.task_run.id.clone());
            messages.push(r.to_message());
        }
    }
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
        let mut messages = Vec::new();
        let mut finished = Vec::new();
        add_event(first, &mut messages, &mut finished);
        let mut failures = 0;
        loop {
            let attempt = async {
                let mut tx = store.begin().await?;
                // What finished while the transaction waited for the database (on SQLite, for
                // the single writer) joins this batch, so that the executor's next pass takes
                // it at once.
                while messages.len() < WRITE_BATCH {
                    match events.try_recv() {
                        Ok(e) => add_event(e, &mut messages, &mut finished),
                        Err(_) => break,
                    }
                }
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
        if !finished.is_empty() {
            free.add_permits(finished.len());
        }
    }
}
