//! The queue between components, typed: the messages the executor, the workers and the
//! indexer send each other, the polling settings they share, and [`Transaction`], the one
//! place that encodes, decodes and wakes consumers.
//!
//! The dialects in [`crate::repository`] store messages as `(type, key, value)` rows and
//! know only SQL. Everything above that is written once, here, as Kestra's `JdbcQueue` is
//! written once above its per-database `PostgresQueue` and `MysqlQueue`:
//!
//! * each message type names its queue and its key through [`QueueMessage`];
//! * a message that cannot be decoded is handled by one policy, [`Transaction::receive`]'s:
//!   it is logged with its queue, offset and key, and consumed, as Kestra's consumers log a
//!   `DeserializationException` and skip the message rather than receive it forever;
//! * [`Transaction::commit`] wakes the in-process consumers of every queue the transaction
//!   pushed to, once the rows are visible (PostgreSQL's NOTIFY does the same for other
//!   processes).
//!
//! [`WorkerTask`], [`RunContext`], [`ExecutionKilled`] and [`Timing`] live here because
//! both the executor and the worker use them.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::Task;
use crate::model::{LogEntry, TaskRun, WorkerTaskResult};
use crate::repository::{self, Message, Notifier, Polled, QueueType, Store, Tx};

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

/// "Look at this execution again": what the webserver sends when it creates an execution
/// and the executor when it releases a queued one. The execution itself is in the
/// `executions` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEvent {
    pub execution_id: String,
}

impl ExecutionEvent {
    pub fn new(execution_id: impl Into<String>) -> Self {
        ExecutionEvent {
            execution_id: execution_id.into(),
        }
    }
}

/// A message type: the queue it travels on and the key it is stored under.
pub trait QueueMessage: Serialize + DeserializeOwned {
    const KIND: QueueType;
    fn key(&self) -> &str;

    /// The row to push.
    fn to_message(&self) -> Message {
        Message {
            kind: Self::KIND,
            key: self.key().to_string(),
            value: serde_json::to_string(self).expect("a queue message always serializes"),
        }
    }
}

impl QueueMessage for ExecutionEvent {
    const KIND: QueueType = QueueType::Execution;
    fn key(&self) -> &str {
        &self.execution_id
    }
}

impl QueueMessage for WorkerTask {
    const KIND: QueueType = QueueType::WorkerTask;
    fn key(&self) -> &str {
        &self.task_run.id
    }
}

/// Keyed by execution, as the executor groups results by execution.
impl QueueMessage for WorkerTaskResult {
    const KIND: QueueType = QueueType::WorkerTaskResult;
    fn key(&self) -> &str {
        &self.task_run.execution_id
    }
}

impl QueueMessage for LogEntry {
    const KIND: QueueType = QueueType::Log;
    fn key(&self) -> &str {
        &self.id
    }
}

/// Kestra's `ExecutionKilledExecution`, on the kill queue. `REQUESTED`: kill this execution
/// (sent by `DELETE /api/v1/executions/{id}/kill`, and by the executor to the subflow
/// executions of a killed one); the executor consumes it. `EXECUTED`: the executor has
/// moved the execution to KILLING; every worker reads it without consuming it and stops
/// the execution's running task runs ([`crate::worker`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionKilled {
    pub state: KillState,
    pub execution_id: String,
    /// Whether the executions its Subflow task runs started are killed too.
    pub is_on_kill_cascade: bool,
    /// When the executor killed it (`EXECUTED` only): a worker kills the task runs it
    /// takes later whose state changed before this, the ones queued before the kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<jiff::Timestamp>,
}

/// Kestra's `ExecutionKilled.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillState {
    Requested,
    Executed,
}

impl ExecutionKilled {
    pub fn requested(execution_id: impl Into<String>, is_on_kill_cascade: bool) -> Self {
        ExecutionKilled {
            state: KillState::Requested,
            execution_id: execution_id.into(),
            is_on_kill_cascade,
            date: None,
        }
    }

    /// The executor's notice to the workers, dated now.
    pub fn executed(execution_id: impl Into<String>) -> Self {
        ExecutionKilled {
            state: KillState::Executed,
            execution_id: execution_id.into(),
            is_on_kill_cascade: false,
            date: Some(jiff::Timestamp::now()),
        }
    }
}

impl QueueMessage for ExecutionKilled {
    const KIND: QueueType = QueueType::ExecutionKilled;
    fn key(&self) -> &str {
        &self.execution_id
    }
}

/// Decodes a polled row as `M`, or logs why it cannot and returns `None`: the one policy
/// for undecodable messages. The row is consumed either way, so a message no code can read
/// never blocks the ones queued after it.
pub fn decode<M: QueueMessage>(p: &Polled) -> Option<M> {
    debug_assert_eq!(p.kind, M::KIND);
    match serde_json::from_str(&p.value) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(
                "{} message at offset {} (key {}) does not decode and is dropped: {e}",
                M::KIND.as_str(),
                p.offset,
                p.key
            );
            None
        }
    }
}

/// A message taken from its queue: the stored row, and what it decoded to.
#[derive(Debug)]
pub struct Received<M> {
    pub row: Polled,
    pub message: M,
}

/// Liveness and polling settings shared by the components.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How often a worker writes its heartbeat.
    pub heartbeat: Duration,
    /// A worker silent for this long is dead and its task runs are resubmitted.
    pub liveness_timeout: Duration,
    /// Poll interval bounds: idle pollers back off from `min_poll` to `max_poll`.
    pub min_poll: Duration,
    pub max_poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: Duration::from_secs(2),
            liveness_timeout: Duration::from_secs(10),
            min_poll: Duration::from_millis(25),
            max_poll: Duration::from_millis(1000),
        }
    }
}

/// A database transaction that knows which queues it pushed to. Everything a dialect's
/// [`Tx`] offers is reachable through it (it dereferences to one); `push` is its own, so
/// that [`Transaction::commit`] can wake those queues' consumers.
pub struct Transaction<'s> {
    tx: Box<dyn Tx>,
    notifier: &'s Notifier,
    /// Bit `k` set: a message of `QueueType::ALL[k]` was pushed.
    pushed: u8,
    /// Rows [`Transaction::receive`] took, decodable or not.
    taken: usize,
}

impl<'s> Transaction<'s> {
    pub async fn begin(store: &'s dyn Store) -> repository::Result<Self> {
        Ok(Transaction {
            tx: store.begin_tx().await?,
            notifier: store.notifier(),
            pushed: 0,
            taken: 0,
        })
    }

    /// Takes up to `limit` messages of `M`'s queue, oldest first, decoded; the undecodable
    /// ones are consumed and logged ([`decode`]).
    pub async fn receive<M: QueueMessage>(
        &mut self,
        limit: usize,
    ) -> repository::Result<Vec<Received<M>>> {
        let polled = self.tx.poll(&[M::KIND], limit).await?;
        self.taken += polled.len();
        Ok(polled
            .into_iter()
            .filter_map(|row| decode(&row).map(|message| Received { row, message }))
            .collect())
    }

    /// How many rows [`Transaction::receive`] took so far, including any that did not
    /// decode: a transaction that took some must commit, or they are received again.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// Pushes rows; their consumers are woken when the transaction commits.
    pub async fn push(&mut self, messages: &[Message]) -> repository::Result<()> {
        for m in messages {
            self.pushed |= 1 << m.kind as u8;
        }
        self.tx.push(messages).await
    }

    /// Pushes typed messages ([`Transaction::push`]).
    pub async fn send<M: QueueMessage>(&mut self, messages: &[M]) -> repository::Result<()> {
        let rows: Vec<Message> = messages.iter().map(QueueMessage::to_message).collect();
        self.push(&rows).await
    }

    /// Commits, then wakes the in-process consumers of every queue pushed to.
    pub async fn commit(self) -> repository::Result<()> {
        self.tx.commit().await?;
        for kind in QueueType::ALL {
            if self.pushed & (1 << kind as u8) != 0 {
                self.notifier.notify(kind);
            }
        }
        Ok(())
    }
}

impl dyn Store {
    /// Opens a [`Transaction`]: how every component starts one.
    pub async fn begin(&self) -> repository::Result<Transaction<'_>> {
        Transaction::begin(self).await
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = dyn Tx;
    fn deref(&self) -> &Self::Target {
        &*self.tx
    }
}

impl std::ops::DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polled<M: QueueMessage>(m: &M) -> Polled {
        let row = m.to_message();
        Polled {
            offset: 1,
            kind: row.kind,
            key: row.key,
            value: row.value,
        }
    }

    #[test]
    fn messages_round_trip_under_their_kind_and_key() {
        let e = ExecutionEvent::new("ex1");
        let row = e.to_message();
        assert_eq!(row.kind, QueueType::Execution);
        assert_eq!(row.key, "ex1");
        assert_eq!(row.value, r#"{"executionId":"ex1"}"#);
        assert_eq!(decode::<ExecutionEvent>(&polled(&e)), Some(e));
    }

    #[test]
    fn kills_keep_kestras_shape_on_their_queue() {
        let k = ExecutionKilled::requested("ex1", true);
        let row = k.to_message();
        assert_eq!(row.kind, QueueType::ExecutionKilled);
        assert_eq!(row.key, "ex1");
        assert_eq!(
            row.value,
            r#"{"state":"REQUESTED","executionId":"ex1","isOnKillCascade":true}"#
        );
        assert_eq!(decode::<ExecutionKilled>(&polled(&k)), Some(k));
        let executed = ExecutionKilled::executed("ex1");
        assert_eq!(executed.state, KillState::Executed);
        assert!(!executed.is_on_kill_cascade && executed.date.is_some());
    }

    #[test]
    fn an_undecodable_message_is_dropped_not_returned() {
        let p = Polled {
            offset: 7,
            kind: QueueType::Execution,
            key: "k".into(),
            value: "{not json".into(),
        };
        assert_eq!(decode::<ExecutionEvent>(&p), None);
    }
}
