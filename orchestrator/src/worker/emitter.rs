//! `logs.indexing=sync`: Kestra 0.19's log path, one transaction per line, off the task
//! thread.
//!
//! What Kestra 0.19.0 did (tag v0.19.0; the async pool came with kestra-io/kestra
//! 6af505a41, and 5228ccf0f, the batched JDBC indexer of 0.20, replaced this path):
//! - `RunContextLogger.ContextAppender` called `logQueue.emitAsync(log)` for each line
//!   (`core/src/main/java/io/kestra/core/runners/RunContextLogger.java`); the task thread
//!   never waited for a commit.
//! - `JdbcQueue.emitAsync` submitted `emit` to `asyncPoolExecutor`, a
//!   `maxCachedThreadPool(MAX_ASYNC_THREADS)` with `MAX_ASYNC_THREADS = 2 × available
//!   processors` threads and an unbounded `LinkedBlockingQueue`
//!   (`jdbc/src/main/java/io/kestra/jdbc/runner/JdbcQueue.java`, `ExecutorsUtils`).
//! - `emit` → `produce` ran one transaction per line: `JdbcQueueIndexer.accept`, which for a
//!   `LogEntry` is `AbstractJdbcLogRepository.save` (one upsert of the log row), then the
//!   insert into `queues`. Nothing in 0.19's OSS indexer consumed the log queue again; its
//!   rows waited for `JdbcCleaner`. The batched indexer came later (0.20).
//!
//! Here: a pool of 2 × available cores tasks on the worker's runtime, fed by an unbounded
//! channel; each line is one transaction doing the log upsert and the queue insert (the row
//! is inserted already consumed, as no flowbench consumer reads it, and `clean_queue`
//! removes it). Where Kestra lost a line whose emit failed (the exception stayed in an
//! unread `Future`), flowbench retries it and reports the failure; the worker drains the
//! pool before it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::model::LogEntry;
use crate::queue::QueueMessage;
use crate::repository::Store;

/// Hands lines to the pool; cloned into every attempt's logger.
#[derive(Clone)]
pub(crate) struct LogEmitter {
    lines: flume::Sender<LogEntry>,
    in_flight: Arc<AtomicUsize>,
}

/// The pool's tasks; [`EmitPool::drain`] waits until every accepted line is committed.
pub(crate) struct EmitPool {
    tasks: JoinSet<()>,
}

/// Kestra's `MAX_ASYNC_THREADS`.
pub(crate) fn pool_size() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl LogEmitter {
    /// Starts the pool on the current runtime. `in_flight` counts lines accepted and not
    /// yet committed, so that callers can wait until every line is indexed.
    pub fn start(
        store: Arc<dyn Store>,
        in_flight: Arc<AtomicUsize>,
        shutdown: CancellationToken,
    ) -> (LogEmitter, EmitPool) {
        let (tx, rx) = flume::unbounded::<LogEntry>();
        let mut tasks = JoinSet::new();
        for _ in 0..pool_size() {
            let (rx, store, in_flight, shutdown) = (
                rx.clone(),
                store.clone(),
                in_flight.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move {
                while let Ok(line) = rx.recv_async().await {
                    emit(&*store, &line, &shutdown).await;
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            });
        }
        (
            LogEmitter {
                lines: tx,
                in_flight,
            },
            EmitPool { tasks },
        )
    }

    /// `emitAsync`: queues the line and returns at once.
    pub fn emit_async(&self, line: LogEntry) -> Result<(), String> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.lines.send(line).map_err(|_| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            "the log pool has stopped".to_string()
        })
    }
}

impl EmitPool {
    /// Waits for the pool to commit every line: call once every [`LogEmitter`] is dropped.
    pub async fn drain(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One line, one transaction: the log upsert, then the queue insert (Kestra's `produce`).
/// Retries while the database is away; gives up only when stopping, and says so.
async fn emit(store: &dyn Store, line: &LogEntry, shutdown: &CancellationToken) {
    let message = [line.to_message()];
    let mut failures = 0u32;
    loop {
        let attempt = async {
            let mut tx = store.begin().await?;
            tx.insert_logs(std::slice::from_ref(line)).await?;
            tx.push_consumed(&message).await?;
            tx.commit().await
        };
        match attempt.await {
            Ok(()) => {
                store.notifier().logs_indexed();
                return;
            }
            Err(e) => {
                failures += 1;
                if shutdown.is_cancelled() && failures > 20 {
                    tracing::error!("log line {} lost: {e}", line.id);
                    return;
                }
                tracing::warn!("writing log line {} failed: {e}; retrying", line.id);
                tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))).await;
            }
        }
    }
}
