//! The repository layer: every table, behind one interface, with one dialect module per
//! database (as sqlx organises its drivers).
//!
//! Components never see SQL. They open a [`Tx`], do their reads and writes, and commit, so
//! that consuming a queue message and producing its effects are one atomic step: a process
//! killed mid-way loses nothing, because the transaction never committed and the message is
//! polled again.

mod dialect;
#[cfg(feature = "mssql")]
mod mssql;
mod mysql;
pub mod plan;
mod postgres;
pub mod search;
mod sqlite;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

#[cfg(feature = "mssql")]
pub use mssql::MssqlStore;

pub use plan::{PlanFacts, PopPlan};

use crate::knobs::{JsonMapping, Knobs};
use crate::model::{Execution, LogEntry};
use search::{ExecutionSearch, Page};

/// A repository error, naming the backend and the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or opened.
    #[error("cannot connect to {backend} at {target}: {source}")]
    Connect {
        backend: &'static str,
        /// Host (or file) with credentials removed.
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// A database server could not be reached, refused the login, or has no such database.
    /// One line: the backend, the URL without its password, and the server's own reason.
    #[error("cannot connect to {backend} at {target}: {reason}")]
    Unreachable {
        backend: &'static str,
        /// The URL with its password removed.
        target: String,
        reason: String,
    },
    /// Schema migration failed.
    #[error("{backend}: migrating the schema failed: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed.
    #[error("{backend}: {op} failed: {source}")]
    Query {
        backend: &'static str,
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed in a driver other than sqlx (SQL Server's tiberius).
    #[error("{backend}: {op} failed: {source}")]
    Driver {
        backend: &'static str,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored JSON document does not decode.
    #[error("{backend}: stored {what} `{key}` does not decode: {source}")]
    Decode {
        backend: &'static str,
        what: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The URL names a backend this build leaves out (a cargo feature that is off).
    #[error(
        "`{backend}` databases need the orchestrator's `{feature}` cargo feature, which this build lacks: rebuild with `cargo build -p orchestrator --features {feature}` (for the harness, `--features orchestrator/{feature}`)"
    )]
    FeatureDisabled {
        backend: &'static str,
        feature: &'static str,
    },
    /// `--db postgres`, `--db mysql` or `--db mssql` was given but its URL variable is not set.
    #[error("`--db {backend}` reads the database URL from {var}, which is not set")]
    MissingUrl {
        backend: &'static str,
        var: &'static str,
    },
    /// The URL names no supported database.
    #[error(
        "unsupported database `{0}`: use `sqlite` (the default), `sqlite://PATH`, a postgres://, mysql:// or mssql:// URL, or `postgres` / `mysql` / `mssql`"
    )]
    UnsupportedUrl(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The queue types of Kestra's JDBC queue that flowbench uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueType {
    /// An execution was created or must be looked at again (executor).
    Execution,
    /// A task run for a worker.
    WorkerTask,
    /// A worker's result for a task run (executor).
    WorkerTaskResult,
    /// A log line for the indexer.
    Log,
    /// Kestra's kill queue: a kill requested (executor), or carried out (every worker, which
    /// reads these rows without consuming them: [`Store::kills_after`]).
    ExecutionKilled,
}

impl QueueType {
    pub const ALL: [QueueType; 5] = [
        QueueType::Execution,
        QueueType::WorkerTask,
        QueueType::WorkerTaskResult,
        QueueType::Log,
        QueueType::ExecutionKilled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Execution => "execution",
            QueueType::WorkerTask => "worker_task",
            QueueType::WorkerTaskResult => "worker_task_result",
            QueueType::Log => "log",
            QueueType::ExecutionKilled => "execution_killed",
        }
    }

    pub fn parse(s: &str) -> Option<QueueType> {
        QueueType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A message to produce.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: QueueType,
    pub key: String,
    pub value: String,
}

/// A consumed message.
#[derive(Debug, Clone)]
pub struct Polled {
    pub offset: i64,
    pub kind: QueueType,
    pub key: String,
    pub value: String,
}

impl Polled {
    /// The rows a dialect's poll returned, `(offset, type, key, value)`, as messages in
    /// offset order (`RETURNING` and `OUTPUT` return rows in no set order). Polls ask only
    /// for known types, so every row parses.
    pub(crate) fn in_offset_order<K: AsRef<str>>(
        rows: impl IntoIterator<Item = (i64, K, String, String)>,
    ) -> Vec<Polled> {
        let mut out: Vec<Polled> = rows
            .into_iter()
            .filter_map(|(offset, kind, key, value)| {
                Some(Polled {
                    offset,
                    kind: QueueType::parse(kind.as_ref())?,
                    key,
                    value,
                })
            })
            .collect();
        out.sort_by_key(|p| p.offset);
        out
    }
}

/// An execution as this process last saved it, with the document it wrote.
#[derive(Debug)]
pub struct SavedExecution {
    pub document: String,
    pub execution: Execution,
}

/// Wakes in-process consumers as soon as a producer commits, so that an idle poll loop does
/// not add latency (the in-process twin of PostgreSQL's LISTEN/NOTIFY).
#[derive(Debug, Default)]
pub struct Notifier {
    queues: [Notify; 5],
    /// Signalled whenever an execution reaches a terminal state.
    pub terminated: Notify,
    /// When log rows were last committed through this store (indexer or
    /// `logs.indexing=sync`), in nanoseconds after [`epoch`] plus one; 0 for never. An
    /// atomic, as the sync path records every line.
    logs_indexed_at: AtomicU64,
    /// Signalled whenever log rows are committed, for the HTTP API's log followers.
    logs: Notify,
}

impl Notifier {
    /// Wakes every consumer of `kind` that registered interest ([`Notifier::notified`]).
    /// Nothing is stored for a consumer that registers later: it polls before it waits, and
    /// that poll sees what was committed before this call.
    pub fn notify(&self, kind: QueueType) {
        self.queues[kind.index()].notify_waiters();
    }

    /// A wake-up for the next push of `kind`. A consumer takes it, and
    /// [`enable`](tokio::sync::futures::Notified::enable)s it, *before* it polls: a push
    /// committed while the poll runs then completes it, and a poll that found the queue empty
    /// can wait on it without missing that push. (A permit stored for later, as
    /// `Notify::notify_one` leaves, would instead wake every consumer once more after each
    /// batch, for an empty poll.)
    pub fn notified(&self, kind: QueueType) -> tokio::sync::futures::Notified<'_> {
        self.queues[kind.index()].notified()
    }

    /// Records that log rows were just committed.
    pub fn logs_indexed(&self) {
        let since = epoch().elapsed().as_nanos() as u64 + 1;
        self.logs_indexed_at.fetch_max(since, Ordering::Relaxed);
        self.logs.notify_waiters();
    }

    /// A wake-up for the next commit of log rows ([`Notifier::logs_indexed`]); taken and
    /// enabled before a read, as [`Notifier::notified`].
    pub fn logs_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.logs.notified()
    }

    /// When log rows were last committed, if ever: the harness's "every line indexed" time.
    pub fn last_logs_indexed(&self) -> Option<std::time::Instant> {
        match self.logs_indexed_at.load(Ordering::Relaxed) {
            0 => None,
            n => Some(epoch() + std::time::Duration::from_nanos(n - 1)),
        }
    }
}

/// The instant [`Notifier`] times are counted from.
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// Kestra's `ExecutionQueued`: an execution waiting for a slot under its flow's concurrency
/// limit, stored whole as the `value` of its `execution_queued` row (Kestra derives the
/// `tenant_id`, `namespace`, `flow_id` and `date` columns from that document). The pop reads
/// the execution back from this document, as Kestra's `AbstractJdbcExecutionQueuedStorage#pop`
/// does, rather than from the `executions` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionQueued {
    /// `None` in Kestra OSS, which has no tenant: the column is NULL and the pop filters
    /// `tenant_id IS NULL`. Left out of the JSON when `None`, as Kestra's mapper
    /// (`Include.NON_NULL`) leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub namespace: String,
    pub flow_id: String,
    pub execution: Execution,
    /// When it was queued (Kestra: `Instant.now()` in `fromExecutionRunning`); pops take the
    /// oldest first.
    pub date: jiff::Timestamp,
}

impl ExecutionQueued {
    /// Queues `execution` under its own tenant, dated `date`.
    pub fn new(execution: Execution, date: jiff::Timestamp) -> Self {
        ExecutionQueued {
            tenant_id: execution.tenant_id.clone(),
            namespace: execution.namespace.clone(),
            flow_id: execution.flow_id.clone(),
            execution,
            date,
        }
    }

    /// The row key: Kestra's `ExecutionQueued#uid`, the non-null parts of (tenant,
    /// namespace, flow, execution id) joined by `_` (`IdUtils.fromParts`).
    pub fn uid(&self) -> String {
        let mut parts: Vec<&str> = Vec::with_capacity(4);
        if let Some(t) = &self.tenant_id {
            parts.push(t);
        }
        parts.extend([
            self.namespace.as_str(),
            self.flow_id.as_str(),
            self.execution.id.as_str(),
        ]);
        parts.join("_")
    }

    /// The document stored in `value`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a queued execution always serializes")
    }
}

/// Kestra's `ExecutionDelay`: something the executor does to an execution at a date, stored
/// in `executordelayed`; the executor takes the due ones every second, as Kestra's
/// `JdbcExecutor#executionDelaySend` does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDelay {
    pub execution_id: String,
    pub task_run_id: String,
    pub date: jiff::Timestamp,
    /// The state the task run moves to.
    pub state: crate::model::StateType,
    pub delay_type: DelayType,
    /// The flow SLA a `SLA_MONITOR` row watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_id: Option<String>,
}

/// Kestra's `ExecutionDelay.DelayType`, for the kinds flowbench builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DelayType {
    /// A paused task run moves on: to RUNNING after a Pause's `delay`, to FAILED after its
    /// `timeout`.
    ResumeFlow,
    /// A `WaitFor`'s next round, after its `interval`.
    ContinueFlowable,
    /// A RETRIED execution is replayed as a new execution (a `CREATE_NEW_EXECUTION` retry).
    RestartFailedFlow,
    /// A RETRYING Subflow task run starts again, with a new execution (its
    /// `RETRY_FAILED_TASK` retry; a runnable task's retries are its worker's).
    RestartFailedTask,
    /// A `MAX_DURATION` SLA's deadline. Kestra keeps these monitors in a table of their
    /// own, `sla_monitor`, which its executor reads every second as it reads
    /// `executordelayed`; here they are rows of `executordelayed`, one per execution and
    /// SLA, and a row of an execution that ended meanwhile is dropped when due where Kestra
    /// purges it at the end.
    SlaMonitor,
}

impl ExecutionDelay {
    pub fn resume(
        execution_id: &str,
        task_run_id: &str,
        date: jiff::Timestamp,
        state: crate::model::StateType,
    ) -> Self {
        ExecutionDelay {
            execution_id: execution_id.into(),
            task_run_id: task_run_id.into(),
            date,
            state,
            delay_type: DelayType::ResumeFlow,
            sla_id: None,
        }
    }

    /// A `WaitFor`'s next round at `date`.
    pub fn continue_flowable(execution_id: &str, task_run_id: &str, date: jiff::Timestamp) -> Self {
        ExecutionDelay {
            delay_type: DelayType::ContinueFlowable,
            ..Self::resume(
                execution_id,
                task_run_id,
                date,
                crate::model::StateType::Running,
            )
        }
    }

    /// Replays the RETRIED execution `execution_id`, whose task run `task_run_id` failed,
    /// as a new execution at `date`.
    pub fn restart_failed_flow(
        execution_id: &str,
        task_run_id: &str,
        date: jiff::Timestamp,
    ) -> Self {
        ExecutionDelay {
            execution_id: execution_id.into(),
            task_run_id: task_run_id.into(),
            date,
            state: crate::model::StateType::Running,
            delay_type: DelayType::RestartFailedFlow,
            sla_id: None,
        }
    }

    /// Starts the RETRYING task run `task_run_id` of `execution_id` again at `date`.
    pub fn restart_failed_task(
        execution_id: &str,
        task_run_id: &str,
        date: jiff::Timestamp,
    ) -> Self {
        ExecutionDelay {
            delay_type: DelayType::RestartFailedTask,
            ..Self::restart_failed_flow(execution_id, task_run_id, date)
        }
    }

    /// Checks the `MAX_DURATION` SLA `sla_id` of `execution_id` at its deadline.
    pub fn sla_monitor(execution_id: &str, sla_id: &str, date: jiff::Timestamp) -> Self {
        ExecutionDelay {
            execution_id: execution_id.into(),
            task_run_id: String::new(),
            date,
            state: crate::model::StateType::Running,
            delay_type: DelayType::SlaMonitor,
            sla_id: Some(sla_id.into()),
        }
    }

    /// The row key: one delay per task run, one monitor per SLA.
    pub fn uid(&self) -> String {
        match &self.sla_id {
            Some(sla) => format!("{}_sla_{sla}", self.execution_id),
            None => format!("{}_{}", self.execution_id, self.task_run_id),
        }
    }

    /// The document stored in `value`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a delay always serializes")
    }
}

/// Kestra's `Trigger` row of a `Schedule`: when it fired last and when it fires next. The
/// scheduler locks the row to fire, so that two schedulers never fire one tick twice and a
/// restarted one takes up where the row says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerState {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    /// The tick it fired last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<jiff::Timestamp>,
    pub next_execution_date: jiff::Timestamp,
    /// The execution it started last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

impl TriggerState {
    /// The row key: Kestra's `Trigger#uid`, `namespace_flowId_triggerId`.
    pub fn uid(&self) -> String {
        Self::key(&self.namespace, &self.flow_id, &self.trigger_id)
    }

    /// The row key of a flow's trigger.
    pub fn key(namespace: &str, flow_id: &str, trigger_id: &str) -> String {
        format!("{namespace}_{flow_id}_{trigger_id}")
    }

    /// The document stored in `value`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a trigger state always serializes")
    }
}

/// Kestra's `MultipleConditionWindow`: which named conditions of a Flow trigger's multiple
/// condition (its `preconditions`, or a legacy `MultipleCondition`) executions have met
/// within one time window. A row of `multipleconditions`, keyed by [`Self::uid`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultipleConditionWindow {
    pub namespace: String,
    pub flow_id: String,
    pub condition_id: String,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    /// The conditions met so far; only met ones are kept (Kestra's `with`).
    #[serde(default)]
    pub results: std::collections::BTreeMap<String, bool>,
}

impl MultipleConditionWindow {
    /// The row key: Kestra's `MultipleConditionWindow#uid`, `namespace_flowId_conditionId`.
    pub fn uid(&self) -> String {
        Self::key(&self.namespace, &self.flow_id, &self.condition_id)
    }

    /// The row key of a flow's multiple condition.
    pub fn key(namespace: &str, flow_id: &str, condition_id: &str) -> String {
        format!("{namespace}_{flow_id}_{condition_id}")
    }

    /// Kestra's `isValid(now)`: `now` lies strictly inside the window.
    pub fn is_valid(&self, now: jiff::Timestamp) -> bool {
        now > self.start && now < self.end
    }

    /// The document stored in `value`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a window always serializes")
    }
}

/// Counts for tests, health checks and the harness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub executions: i64,
    pub terminal_executions: i64,
    pub logs: i64,
    pub pending_messages: i64,
    pub running_jobs: i64,
}

/// A database holding flowbench's tables.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite`, `postgres`, `mysql` or `mssql`.
    fn backend(&self) -> &'static str;
    fn notifier(&self) -> &Notifier;
    /// The dialect's transaction. Components open theirs with `store.begin()`
    /// ([`crate::queue::Transaction`]), which also wakes consumers on commit.
    async fn begin_tx(&self) -> Result<Box<dyn Tx>>;

    async fn execution(&self, id: &str) -> Result<Option<Execution>>;
    /// A page of the executions that match, and how many match in all: Kestra's
    /// `ExecutionRepositoryInterface#find` ([`search`]).
    async fn search_executions(&self, search: &ExecutionSearch) -> Result<Page<Execution>>;
    /// Deletes the execution's row, and its log lines when `logs` is set, as Kestra's
    /// `ExecutionService#delete` purges them, whatever its state; false when there was no
    /// such execution.
    async fn delete_execution(&self, id: &str, logs: bool) -> Result<bool>;
    /// Every execution of a flow, in no order.
    async fn executions_of_flow(&self, namespace: &str, flow_id: &str) -> Result<Vec<Execution>>;
    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>>;
    /// `(revision, source)` of the flow's latest revision.
    async fn flow(&self, namespace: &str, id: &str) -> Result<Option<(i32, String)>>;
    async fn flows(&self) -> Result<Vec<String>>;
    async fn counts(&self) -> Result<Counts>;
    /// Deletes consumed queue rows (Kestra's `JdbcCleaner`), but the kill queue's rows of
    /// the last [`KILLS_KEPT_SECS`] seconds, which workers read after they are consumed.
    async fn clean_queue(&self) -> Result<u64>;
    /// Up to `limit` rows of the kill queue ([`QueueType::ExecutionKilled`]) after offset
    /// `after`, in offset order, consumed or not, and left as they are: how every worker
    /// reads it (Kestra's `JdbcQueue` receiving with no consumer group, by offset).
    async fn kills_after(&self, after: i64, limit: usize) -> Result<Vec<Polled>>;
    /// Server version, for results metadata.
    async fn version(&self) -> Result<String>;

    /// Refreshes the planner's statistics of `execution_queued` (PostgreSQL `ANALYZE`,
    /// MariaDB/MySQL `ANALYZE TABLE`, SQLite `ANALYZE`, SQL Server `UPDATE STATISTICS`), so
    /// that a plan read after filling the table reflects its contents.
    async fn analyze_queued(&self) -> Result<()>;
    /// The plan the database chooses for the select of [`Tx::queued_pop`] under this store's
    /// `queued.index` setting, with these values bound: the statement and the database's
    /// own `EXPLAIN` output as text. Nothing is popped.
    async fn explain_queued_pop(
        &self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<PopPlan>;

    /// How many rows of `queues` the database itself counts as read by one [`Tx::poll`] of
    /// these kinds, which is then rolled back: PostgreSQL's per-transaction
    /// `pg_stat_xact_user_tables` (`seq_tup_read + idx_tup_fetch`), MySQL/MariaDB's session
    /// `Handler_read_*` counters. `None` where the database keeps no such counter (SQLite,
    /// SQL Server). A poll must cost O(unconsumed rows), whatever the queue's history.
    async fn poll_rows_read(&self, _kinds: &[QueueType], _limit: usize) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// One transaction. Dropping it without `commit` rolls back.
#[async_trait]
pub trait Tx: Send {
    /// Takes up to `limit` unconsumed messages of these types (on PostgreSQL, up to `limit`
    /// of each type), oldest first, and marks them consumed. Another consumer never
    /// receives the same row.
    async fn poll(&mut self, kinds: &[QueueType], limit: usize) -> Result<Vec<Polled>>;
    async fn push(&mut self, messages: &[Message]) -> Result<()>;
    /// Inserts messages that no consumer will take: Kestra 0.19's log lines, which the
    /// emitting transaction already indexed. `clean_queue` removes them, as Kestra's
    /// `JdbcCleaner` removed its old queue rows.
    async fn push_consumed(&mut self, messages: &[Message]) -> Result<()>;

    /// Reads an execution for update (rows are locked where the database can).
    async fn load_execution(&mut self, id: &str) -> Result<Option<Execution>>;
    async fn save_execution(&mut self, execution: &Execution) -> Result<()>;

    /// [`Tx::load_execution`], given what this caller last saved of the execution
    /// ([`Tx::save_execution_keeping`]): when the stored document is still that one, byte for
    /// byte, `saved`'s execution is returned rather than the document decoded again.
    /// Databases that do not keep a document's text as written (PostgreSQL's JSONB, MySQL's
    /// JSON) always decode.
    async fn load_execution_saved(
        &mut self,
        id: &str,
        saved: Option<SavedExecution>,
    ) -> Result<Option<Execution>> {
        let _ = saved;
        self.load_execution(id).await
    }

    /// [`Tx::save_execution`], handing back the document written where the database keeps it
    /// verbatim, for a later [`Tx::load_execution_saved`].
    async fn save_execution_keeping(
        &mut self,
        execution: Execution,
    ) -> Result<Option<SavedExecution>> {
        self.save_execution(&execution).await?;
        Ok(None)
    }
    /// Executions of the flow that hold a concurrency slot.
    async fn count_running(&mut self, namespace: &str, flow_id: &str) -> Result<i64>;
    /// Stores a queued execution (a second push of the same key changes nothing).
    async fn queued_push(&mut self, queued: &ExecutionQueued) -> Result<()>;
    /// Removes and returns the oldest queued execution of the flow in this tenant (`None`:
    /// Kestra OSS, `tenant_id IS NULL`), read from the queued row's document.
    async fn queued_pop(
        &mut self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Option<Execution>>;

    /// Stores a delay; a second one for the same task run replaces it.
    async fn delay_push(&mut self, delay: &ExecutionDelay) -> Result<()>;
    /// Removes and returns up to `limit` delays due at `now_ms`, earliest first, skipping
    /// those another transaction holds where the database can.
    async fn delays_take(&mut self, now_ms: i64, limit: usize) -> Result<Vec<ExecutionDelay>>;

    /// Stores a trigger's first row; does nothing when it has one. Best committed on its
    /// own before [`Tx::trigger_lock`]: on MySQL an insert that finds the row takes a shared
    /// lock, and two such transactions then deadlock on the lock for update.
    async fn trigger_insert(&mut self, initial: &TriggerState) -> Result<()>;
    /// The trigger's row (by [`TriggerState::uid`]), locked until the transaction ends.
    async fn trigger_lock(&mut self, key: &str) -> Result<Option<TriggerState>>;
    /// Writes the trigger's row (locked by [`Tx::trigger_lock`]).
    async fn trigger_put(&mut self, state: &TriggerState) -> Result<()>;

    /// Stores a multiple condition's window unless its key has one; then returns the stored
    /// window, locked until the transaction ends where the database can (Kestra's
    /// `MultipleConditionStorageInterface#getOrCreate`, under a lock, so that two executors
    /// adding results to one window do not lose either).
    async fn multiple_condition_lock(
        &mut self,
        initial: &MultipleConditionWindow,
    ) -> Result<MultipleConditionWindow>;
    /// Writes a window (locked by [`Tx::multiple_condition_lock`]).
    async fn multiple_condition_put(&mut self, window: &MultipleConditionWindow) -> Result<()>;
    /// Deletes a window: fulfilled, or expired.
    async fn multiple_condition_delete(&mut self, key: &str) -> Result<()>;
    /// Deletes the windows that ended before `now_ms` (Kestra's `expired` then `delete`);
    /// returns how many.
    async fn multiple_conditions_purge(&mut self, now_ms: i64) -> Result<u64>;

    /// One multi-row upsert keyed by the log id.
    async fn insert_logs(&mut self, logs: &[LogEntry]) -> Result<()>;
    /// Stores a flow; returns its revision: 1 for a new flow, the same when the source is
    /// unchanged, one more otherwise (Kestra's `FlowRepository#create`/`update`). Written
    /// once over the dialects' [`Tx::lock_flow`] and [`Tx::put_flow`].
    async fn save_flow(&mut self, namespace: &str, id: &str, source: &str) -> Result<i32> {
        let key = crate::flow::flow_key(namespace, id);
        let revision = match self.lock_flow(&key).await? {
            Some((rev, old)) if old == source => return Ok(rev),
            Some((rev, _)) => rev + 1,
            None => 1,
        };
        self.put_flow(&key, namespace, id, revision, source).await?;
        Ok(revision)
    }
    /// The `(revision, source)` of a stored flow, locked until the transaction ends, so
    /// that two deployers of one flow take turns.
    async fn lock_flow(&mut self, key: &str) -> Result<Option<(i32, String)>>;
    /// Inserts or replaces a flow's row.
    async fn put_flow(
        &mut self,
        key: &str,
        namespace: &str,
        id: &str,
        revision: i32,
        source: &str,
    ) -> Result<()>;

    async fn heartbeat(&mut self, instance: &str, kind: &str, now_ms: i64) -> Result<()>;
    async fn remove_instance(&mut self, instance: &str) -> Result<()>;
    async fn dead_instances(&mut self, kind: &str, older_than_ms: i64) -> Result<Vec<String>>;
    /// Records the `(key, value)` of jobs a worker took, in one statement where the dialect
    /// can (a key given twice keeps its last value).
    async fn jobs_started(&mut self, worker: &str, jobs: &[(&str, &str)]) -> Result<()>;
    async fn jobs_finished(&mut self, keys: &[String]) -> Result<()>;
    /// Removes and returns the `(key, value)` of every job a worker held.
    async fn take_jobs(&mut self, worker: &str) -> Result<Vec<(String, String)>>;

    /// Commits; a successful commit counts in [`commits`].
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// `jobs` with each key once, its last value kept: one multi-row upsert may not touch a
/// row twice.
pub(crate) fn distinct_jobs<'a>(jobs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(&str, &str)> = jobs
        .iter()
        .rev()
        .filter(|(k, _)| seen.insert(*k))
        .copied()
        .collect();
    out.reverse();
    out
}

/// How long consumed rows of the kill queue are kept for the workers reading them
/// ([`Store::clean_queue`]): a worker reads them within a poll interval, this is the margin for
/// one that lags (its database connection lost a while).
pub const KILLS_KEPT_SECS: u32 = 60;

/// Transactions committed by this process, on every backend and store.
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// How many transactions this process has committed so far: the harness reads it before
/// and after a run to count commits per log line.
pub fn commits() -> u64 {
    COMMITS.load(Ordering::Relaxed)
}

/// Called by each dialect's `commit` once the database accepted it.
pub(crate) fn committed<T>(r: Result<T>) -> Result<T> {
    if r.is_ok() {
        COMMITS.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// The environment variables that `--db postgres`, `--db mysql` and `--db mssql` read the URL
/// from.
pub const POSTGRES_URL_ENV: &str = "FLOWBENCH_POSTGRES_URL";
pub const MYSQL_URL_ENV: &str = "FLOWBENCH_MYSQL_URL";
pub const MSSQL_URL_ENV: &str = "FLOWBENCH_MSSQL_URL";

/// The state names of executions that hold a concurrency slot, as `count_running` binds them.
pub(crate) fn running_state_names() -> [&'static str; 5] {
    crate::model::StateType::RUNNING.map(crate::model::StateType::as_str)
}

/// Opens the database a URL names and migrates it.
///
/// `url` is `sqlite`, `sqlite://PATH`, a `postgres://` / `postgresql://`, `mysql://` /
/// `mariadb://` or `mssql://` / `sqlserver://` URL, or the shorthand `postgres` / `mysql` /
/// `mssql`, which reads the URL from `FLOWBENCH_POSTGRES_URL` / `FLOWBENCH_MYSQL_URL` /
/// `FLOWBENCH_MSSQL_URL`. SQL Server needs the `mssql` cargo feature; without it its URLs
/// are refused with [`Error::FeatureDisabled`].
pub async fn connect(url: &str, knobs: &Knobs) -> Result<Arc<dyn Store>> {
    let url = resolve_shorthand(url)?;
    let url = url.as_str();
    if url == "sqlite" || url.starts_with("sqlite:") {
        return Ok(Arc::new(sqlite::connect(url, knobs).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::connect(url, knobs).await?));
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        return Ok(Arc::new(mysql::connect(url, knobs).await?));
    }
    if url.starts_with("mssql://") || url.starts_with("sqlserver://") {
        #[cfg(feature = "mssql")]
        return Ok(Arc::new(MssqlStore::connect(url, knobs).await?));
        #[cfg(not(feature = "mssql"))]
        return Err(Error::FeatureDisabled {
            backend: "mssql",
            feature: "mssql",
        });
    }
    Err(Error::UnsupportedUrl(redact(url)))
}

/// Turns `postgres` / `mysql` / `mssql` into the URL their environment variable holds; any
/// other URL is returned as it is.
pub fn resolve_shorthand(url: &str) -> Result<String> {
    let (backend, var) = match url {
        "postgres" | "postgresql" => ("postgres", POSTGRES_URL_ENV),
        "mysql" | "mariadb" => ("mysql", MYSQL_URL_ENV),
        "mssql" | "sqlserver" => ("mssql", MSSQL_URL_ENV),
        _ => return Ok(url.to_string()),
    };
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(Error::MissingUrl { backend, var }),
    }
}

/// How long a server gets to accept the first connection before the store gives up.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Makes the first connection to a server, within [`CONNECT_TIMEOUT`], so that a wrong host,
/// password or database name is reported at once with the server's reason (a pool would
/// retry until its acquire timeout and then report only that it timed out).
pub(crate) async fn first_connection<C, E, F>(
    backend: &'static str,
    url: &str,
    connect: F,
) -> Result<C>
where
    E: ConnectError,
    F: std::future::Future<Output = std::result::Result<C, E>>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(unreachable(backend, url, &e)),
        Err(_) => Err(Error::Unreachable {
            backend,
            target: redact(url),
            reason: format!("no answer within {CONNECT_TIMEOUT:?}"),
        }),
    }
}

/// An [`Error::Unreachable`] for a failed connection.
pub(crate) fn unreachable(backend: &'static str, url: &str, e: &impl ConnectError) -> Error {
    Error::Unreachable {
        backend,
        target: redact(url),
        reason: e.reason(),
    }
}

/// A driver's connection error.
pub(crate) trait ConnectError {
    /// The part of the error a user acts on, without the driver's wrapping.
    fn reason(&self) -> String;
}

impl ConnectError for sqlx::Error {
    fn reason(&self) -> String {
        match self {
            sqlx::Error::Database(db) => db.message().to_string(),
            sqlx::Error::Io(io) => io.to_string(),
            sqlx::Error::Tls(t) => format!("TLS: {t}"),
            sqlx::Error::Configuration(c) => c.to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(feature = "mssql")]
impl ConnectError for tiberius::error::Error {
    fn reason(&self) -> String {
        match self {
            // The server's own words: "Login failed for user 'sa'.", "Cannot open database…".
            tiberius::error::Error::Server(token) => token.message().to_string(),
            tiberius::error::Error::Io { message, .. } => message.clone(),
            tiberius::error::Error::Tls(t) => format!("TLS: {t}"),
            other => other.to_string(),
        }
    }
}

/// Removes the password from a database URL (`postgres://u:***@host/db`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The last `@` before the query ends the user info, so a password holding an unescaped
    // `@` is still hidden whole.
    let authority_end = rest.find('?').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => format!("{scheme}://{userinfo}@{host}"),
            }
        }
        None => url.to_string(),
    }
}

/// Decodes a stored JSON document with the `jdbc.json-mapping` knob's path.
pub(crate) fn decode<T: DeserializeOwned>(
    mapping: JsonMapping,
    text: &str,
) -> std::result::Result<T, serde_json::Error> {
    match mapping {
        JsonMapping::Direct => serde_json::from_str(text),
        JsonMapping::Normalize => {
            // Kestra before 1d7982406 (0.19.0, PostgreSQL only): jOOQ's `JSONB.toString()`
            // parsed the column into a generic tree and rendered it back to a normalized
            // string, which Jackson then mapped into the type. One parse and one render
            // more than the direct path; MySQL and H2 read plain text before and after.
            let tree: serde_json::Value = serde_json::from_str(text)?;
            let normalized = serde_json::to_string(&tree)?;
            serde_json::from_str(&normalized)
        }
    }
}

/// [`decode`], for `harness/benches/json_mapping.rs`, so that the benchmark times the
/// path the repositories take rather than a copy of it. Not part of the API.
#[doc(hidden)]
pub fn bench_decode<T: DeserializeOwned>(
    mapping: JsonMapping,
    text: &str,
) -> std::result::Result<T, serde_json::Error> {
    decode(mapping, text)
}

/// [`decode`]s a stored document, naming the backend, the kind of document and its key when
/// it does not decode.
pub(crate) fn decode_doc<T: DeserializeOwned>(
    backend: &'static str,
    mapping: JsonMapping,
    what: &'static str,
    key: &str,
    text: &str,
) -> Result<T> {
    decode(mapping, text).map_err(|source| Error::Decode {
        backend,
        what,
        key: key.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://bob:s3cret@db:5432/test"),
            "postgres://bob:***@db:5432/test"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(
            redact("postgres://bob:p@ss/w@db/test?x=y@z"),
            "postgres://bob:***@db/test?x=y@z"
        );
    }

    #[test]
    fn distinct_jobs_keep_each_keys_last_value_in_order() {
        assert_eq!(
            distinct_jobs(&[("a", "1"), ("b", "2"), ("a", "3")]),
            [("b", "2"), ("a", "3")]
        );
        assert!(distinct_jobs(&[]).is_empty());
    }

    #[test]
    fn both_mappings_decode_the_same_value() {
        let text = r#"{"a": [1, 2, {"b": "c"}], "d": null}"#;
        let a: serde_json::Value = decode(JsonMapping::Direct, text).unwrap();
        let b: serde_json::Value = decode(JsonMapping::Normalize, text).unwrap();
        assert_eq!(a, b);
    }
}
