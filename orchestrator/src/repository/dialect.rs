//! What differs between the sqlx dialects, and nothing else: each dialect's SQL text, the
//! capabilities it has or lacks (`UPDATE … RETURNING`, `DELETE … RETURNING`, NOTIFY), and
//! how it reads a document column. [`super::store::SqlxStore`] runs the queues and
//! repositories once above it, as Kestra's `JdbcQueue` runs above its `MysqlQueue` and
//! `PostgresQueue`, which override only what really differs.
//!
//! SQL Server is not a sqlx driver (tiberius), so `mssql` implements [`super::Store`] itself.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::query::Query;
use sqlx::{Database, QueryBuilder, Transaction};

use super::search::SearchSyntax;
use super::{Error, QueueType, Result};
use crate::knobs::{JsonMapping, QueuedIndex};
use crate::model::Execution;

/// A sqlx query with its bound values.
pub(crate) type Bound<'q, DB> = Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// One sqlx database's SQL and capabilities. A value of it is made by the dialect's
/// `connect` and shared by the store and its transactions.
#[async_trait]
pub(crate) trait Dialect: Send + Sync + Sized + 'static {
    type DB: Database;
    /// `sqlite`, `postgres` or `mysql`.
    const BACKEND: &'static str;
    /// Whether a document column can read back exactly the text that was written: not
    /// PostgreSQL's JSONB, which normalizes it. SQLite and MariaDB keep it. MySQL's own JSON
    /// type normalizes it too, but shares MariaDB's dialect; there the comparison in
    /// `Tx::load_execution_saved` never matches, and every load decodes.
    const KEEPS_DOCUMENT_TEXT: bool = true;
    /// Rows per multi-row `INSERT`: each database caps the bound values of a statement.
    const ROWS_PER_INSERT: usize;

    /// The statements, made once for this store's knobs.
    fn sql(&self) -> &Sql;

    /// Column `index` as text. (MySQL reports columns with a binary collation as BLOB, which
    /// sqlx will not read as a `String`.)
    fn text(row: &<Self::DB as Database>::Row, index: usize) -> Result<String, sqlx::Error>;

    /// Column `index` as a stored document, read with the `jdbc.json-mapping` knob's path.
    /// Text columns are decoded by [`super::decode`]; PostgreSQL overrides this to take JSONB
    /// bytes straight into the type.
    fn document<T: DeserializeOwned>(
        mapping: JsonMapping,
        row: &<Self::DB as Database>::Row,
        index: usize,
        what: &'static str,
        key: &str,
    ) -> Result<T> {
        let text = Self::text(row, index).map_err(q::<Self>("decode a document"))?;
        super::decode_doc(Self::BACKEND, mapping, what, key, &text)
    }

    /// Binds `INSERT` of an execution ([`Sql::save_execution`]): its id and its document by
    /// default. SQLite also writes the indexed columns beside the document.
    fn bind_execution<'q>(
        query: Bound<'q, Self::DB>,
        execution: &'q Execution,
        document: String,
    ) -> Bound<'q, Self::DB>;

    /// Runs a statement built with `sqlx::QueryBuilder`. (Written per dialect: sqlx's
    /// `Arguments` lifetimes only line up where the driver's type is named.)
    async fn execute_built(
        tx: &mut Transaction<'static, Self::DB>,
        query: QueryBuilder<'_, Self::DB>,
    ) -> Result<(), sqlx::Error>;

    /// Runs a query built with `sqlx::QueryBuilder` and returns its rows.
    async fn fetch_built(
        tx: &mut Transaction<'static, Self::DB>,
        query: QueryBuilder<'_, Self::DB>,
    ) -> Result<Vec<<Self::DB as Database>::Row>, sqlx::Error>;

    /// The rows a statement changed.
    fn rows_affected(result: &<Self::DB as Database>::QueryResult) -> u64;

    /// A date as the `execution_queued.date` column takes it.
    fn queued_date(date: jiff::Timestamp) -> String;

    /// Runs in the pushing transaction after messages of these kinds were inserted:
    /// PostgreSQL's NOTIFY, delivered when (and only if) the transaction commits.
    async fn pushed(
        &self,
        _tx: &mut <Self::DB as Database>::Connection,
        _kinds: &[QueueType],
    ) -> Result<()> {
        Ok(())
    }

    /// How many rows of `queues` this session has read so far, by the database's own
    /// counters; `None` where it keeps none (SQLite).
    async fn queue_rows_read(_tx: &mut <Self::DB as Database>::Connection) -> Result<Option<u64>> {
        Ok(None)
    }

    /// `EXPLAIN`'s rows as plan text, one line per plan row.
    fn plan_text(rows: &[<Self::DB as Database>::Row]) -> Result<String>;

    /// The server's version as results metadata shows it, from [`Sql::version`]'s text.
    fn version_label(version: String) -> String;
}

/// A dialect's statements. Those that insert many rows or take a list are given as the
/// text around their bound values, which the store fills in with `sqlx::QueryBuilder` (so
/// placeholders are numbered as the dialect wants).
pub(crate) struct Sql {
    // Reads outside a transaction.
    /// `(id)` → the execution's document.
    pub execution: String,
    /// `(namespace, flow id)` → `(key, document)` of the flow's executions.
    pub executions_of_flow: String,
    /// `(execution id)` → `(key, document)` of its log lines, in time order.
    pub logs: String,
    /// `(namespace, id)` → `(revision, source)`.
    pub flow: &'static str,
    /// `()` → every flow's source, by key.
    pub flows: &'static str,
    /// `()` → executions, terminal executions, log lines, unconsumed messages, running jobs.
    pub counts: &'static str,
    /// `()`: deletes the consumed rows, but the kill queue's of the last
    /// [`super::KILLS_KEPT_SECS`] seconds.
    pub clean_queue: &'static str,
    /// `(after offset, limit)` → `(offset, type, key, value)` of the kill queue's rows after
    /// the offset, consumed or not, in offset order. The type is written in, not bound, so
    /// that PostgreSQL plans it on its partial index.
    pub kills_after: &'static str,
    pub version: &'static str,
    pub analyze_queued: &'static str,
    /// Put before the pop's select to have it explained.
    pub explain: &'static str,

    // The queue.
    /// The poll. Returns `(offset, type, key, value)`, and marks the rows consumed unless
    /// [`Sql::mark_polled`] is set.
    pub poll: Poll,
    /// Where a dialect has no `UPDATE … RETURNING` (MySQL, MariaDB): the poll only selects
    /// the rows for update, and this (then the offsets, then `)`) marks them consumed.
    pub mark_polled: Option<&'static str>,
    /// `INSERT INTO queues (type, key, value) ` before the rows.
    pub push: &'static str,
    /// `INSERT INTO queues (type, key, value, consumed) ` before the rows.
    pub push_consumed: &'static str,
    /// Put after each bound document, to cast it (PostgreSQL: `::jsonb`).
    pub json_cast: &'static str,
    /// The boolean true as a literal.
    pub true_literal: &'static str,

    // Executions.
    /// How the execution search is written ([`super::search`]).
    pub search: SearchSyntax,
    /// `(id)`: deletes the execution's row.
    pub delete_execution: &'static str,
    /// `(execution id)`: deletes its log lines.
    pub delete_logs: &'static str,
    /// `(id)` → the execution's document, locked for update where the database can.
    pub load_execution: String,
    /// Bound by [`Dialect::bind_execution`]; inserts or replaces.
    pub save_execution: &'static str,
    /// `(namespace, flow id, the five running state names)` → count.
    pub count_running: &'static str,
    /// `(key, document, tenant, namespace, flow id, date)`; a second push of a key does nothing.
    pub queued_push: &'static str,
    /// The pop's select, `[with a tenant, without]`: see [`queued_pop`].
    pub queued_pop: [String; 2],
    /// `(key)`.
    pub queued_delete: &'static str,

    /// `(key, document, date ms)`; inserts or replaces.
    pub delay_push: &'static str,
    /// `(now ms, limit)` → `(key, document)` of due delays, earliest first, locked where the
    /// database can, skipping locked rows.
    pub delays_due: &'static str,
    /// `(key)`.
    pub delay_delete: &'static str,

    /// `(key, document, next ms)`; does nothing when the key is there.
    pub trigger_insert: &'static str,
    /// `(key)` → the document, locked until the transaction ends where it can be.
    pub trigger_lock: &'static str,
    /// `(document, next ms, key)`.
    pub trigger_put: &'static str,

    /// `(key, document, end ms)`; does nothing when the key is there.
    pub multiple_condition_insert: &'static str,
    /// `(key)` → the document, locked until the transaction ends where it can be.
    pub multiple_condition_lock: &'static str,
    /// `(document, end ms, key)`.
    pub multiple_condition_put: &'static str,
    /// `(key)`.
    pub multiple_condition_delete: &'static str,
    /// `(now ms)`: deletes the windows that ended before it.
    pub multiple_conditions_purge: &'static str,

    // Logs, flows, instances, jobs.
    /// `INSERT INTO logs (key, value) ` before the rows, and the upsert after them.
    pub insert_logs: &'static str,
    pub insert_logs_end: &'static str,
    /// `(key)` → `(revision, source)`, locked until the transaction ends where it can be.
    pub lock_flow: &'static str,
    /// `(key, namespace, id, revision, source)`; inserts or replaces.
    pub put_flow: &'static str,
    /// `(id, kind, heartbeat ms)`; inserts or replaces.
    pub heartbeat: &'static str,
    /// `(id)`.
    pub remove_instance: &'static str,
    /// `(kind, older than ms)` → ids.
    pub dead_instances: &'static str,
    /// `INSERT INTO worker_job_running (key, worker_id, value) ` before the rows, and the
    /// upsert after them.
    pub jobs_started: &'static str,
    pub jobs_started_end: &'static str,
    /// `DELETE FROM worker_job_running WHERE key IN (` before the keys.
    pub jobs_finished: &'static str,
    /// `(worker)` → `(key, value)` of its jobs, deleted, unless [`Sql::take_jobs_delete`]
    /// is set: then they are selected for update and this `(worker)` deletes them.
    pub take_jobs: &'static str,
    pub take_jobs_delete: Option<&'static str>,
}

/// How a dialect's poll statement is written.
pub(crate) enum Poll {
    /// One select over every kind: `head`, the kinds, `limit`, the limit, `end`. Up to
    /// `limit` rows in all.
    InList {
        head: &'static str,
        limit: &'static str,
        end: &'static str,
    },
    /// One locked select per kind, each ordered by its own index: the text around the
    /// kinds' limits, one limit per kind (`fn(kinds)` gives `kinds.len() + 1` pieces). Up
    /// to `limit` rows of each kind.
    EachKind(fn(&[QueueType]) -> Vec<String>),
}

/// What each `queued.index` setting means, for every dialect: the index `execution_queued`
/// pops with (Kestra's old (namespace, flow_id) one, or the (namespace, flow_id, date) one
/// its commit 34fa6ce91 added), the other one, which is dropped, and whether the pop skips
/// rows another popper holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueuedPop {
    pub index: &'static str,
    pub columns: &'static [&'static str],
    pub dropped: &'static str,
    /// `queued.index=flow` follows Kestra before 34fa6ce91 ("feat(jdbc): Improve execution
    /// queued performance", 2024-11-22; the pop dates from c74540b3a, #2371): `FOR UPDATE`,
    /// so a second popper of the flow waits until the first one commits. `flow-date`
    /// follows 34fa6ce91: `FOR UPDATE SKIP LOCKED`.
    pub skip_locked: bool,
}

pub(crate) fn queued_pop(index: QueuedIndex) -> QueuedPop {
    let flow = "ix_execution_queued_flow";
    let flow_date = "ix_execution_queued_flow_date";
    match index {
        QueuedIndex::Flow => QueuedPop {
            index: flow,
            columns: &["tenant_id", "namespace", "flow_id"],
            dropped: flow_date,
            skip_locked: false,
        },
        QueuedIndex::FlowDate => QueuedPop {
            index: flow_date,
            columns: &["tenant_id", "namespace", "flow_id", "date"],
            dropped: flow,
            skip_locked: true,
        },
    }
}

impl QueuedPop {
    /// `CREATE INDEX IF NOT EXISTS` of the setting's index, and `DROP INDEX IF EXISTS` of
    /// the other (PostgreSQL and SQLite spell them alike).
    pub fn ddl(&self) -> (String, String) {
        (
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON execution_queued ({})",
                self.index,
                self.columns.join(", ")
            ),
            format!("DROP INDEX IF EXISTS {}", self.dropped),
        )
    }

    /// The pop's row lock where rows can be locked (PostgreSQL, MySQL, MariaDB).
    pub fn lock(&self) -> &'static str {
        if self.skip_locked {
            "FOR UPDATE SKIP LOCKED"
        } else {
            "FOR UPDATE"
        }
    }
}

/// A failed statement of dialect `D`, named by what it was doing.
pub(crate) fn q<D: Dialect>(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query {
        backend: D::BACKEND,
        op,
        source,
    }
}
