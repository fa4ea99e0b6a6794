//! The log indexer: consumes log lines from the queue in batches (up to `POLL_SIZE`) and
//! writes each batch with one multi-row upsert in one transaction, as Kestra 0.20's batched
//! `JdbcIndexer` does.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::model::LogEntry;
use crate::queue::Timing;
use crate::repository::{QueueType, Store};

const POLL_SIZE: usize = 500;

pub struct Indexer {
    store: Arc<dyn Store>,
    timing: Timing,
}

impl Indexer {
    pub fn new(store: Arc<dyn Store>, timing: Timing) -> Self {
        Indexer { store, timing }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let mut idle = self.timing.min_poll;
        let notifier = self.store.notifier();
        loop {
            // Registered before the poll (see `Notifier::notified`).
            let pushed = notifier.notified(QueueType::Log);
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            match self.step().await {
                // Only a full batch polls again at once; after a partial one the next push
                // wakes this loop (as in the executor).
                Ok(POLL_SIZE..) => {
                    idle = self.timing.min_poll;
                    continue;
                }
                Ok(1..) => idle = self.timing.min_poll,
                Ok(0) => {}
                Err(e) => {
                    tracing::warn!("indexer: {e:#}; retrying");
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

    /// Indexes one batch; returns how many queue rows it consumed (a line that does not
    /// decode is consumed and not written).
    pub async fn step(&self) -> anyhow::Result<usize> {
        let mut tx = self.store.begin().await?;
        let logs: Vec<LogEntry> = tx
            .receive::<LogEntry>(POLL_SIZE)
            .await?
            .into_iter()
            .map(|r| r.message)
            .collect();
        let taken = tx.taken();
        if taken == 0 {
            // Ended, not rolled back, as the executor's empty poll.
            tx.commit().await?;
            return Ok(0);
        }
        tx.insert_logs(&logs).await?;
        tx.commit().await?;
        self.store.notifier().logs_indexed();
        Ok(taken)
    }
}
