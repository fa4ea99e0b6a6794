//! The PostgreSQL dialect: JSONB documents with generated columns, `FOR UPDATE SKIP LOCKED`
//! queue polls, and LISTEN/NOTIFY so that pollers in other processes wake as soon as a
//! producer commits (Kestra's `PostgresQueue`).
//!
//! A URL may carry `flowbench_schema=NAME`: the store then creates that schema and keeps all
//! its tables there (every connection's `search_path` is set to it), so that many test runs
//! and deployments can share one database without seeing each other.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, QueryBuilder, Row, Transaction};
use tokio_util::task::AbortOnDropHandle;

use super::{
    Counts, Error, ExecutionQueued, Message, Notifier, Polled, PopPlan, QueueType, Result, Store,
    Tx, decode,
};
use crate::knobs::{JsonMapping, Knobs, QueuedIndex};
use crate::model::{Execution, LogEntry};

const BACKEND: &str = "postgres";
/// PostgreSQL allows 65535 bound parameters per statement; stay well below.
const ROWS_PER_INSERT: usize = 1000;
/// The URL parameter that names the schema to keep the tables in.
pub const SCHEMA_PARAM: &str = "flowbench_schema";

pub struct PostgresStore {
    pool: PgPool,
    mapping: JsonMapping,
    queued_index: QueuedIndex,
    notifier: Arc<Notifier>,
    /// NOTIFY channel prefix: channels are database-wide, so it carries the schema.
    channels: Arc<Channels>,
    /// Relays NOTIFYs from other processes to `notifier`; stops with the store.
    _listener: AbortOnDropHandle<()>,
}

fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query {
        backend: BACKEND,
        op,
        source,
    }
}

/// The NOTIFY channel of each queue type, e.g. `flowbench.public.worker_task`.
struct Channels([String; 4]);

impl Channels {
    fn new(schema: &str) -> Self {
        Channels(QueueType::ALL.map(|k| format!("flowbench.{schema}.{}", k.as_str())))
    }

    fn of(&self, kind: QueueType) -> &str {
        &self.0[kind.index()]
    }

    fn kind(&self, channel: &str) -> Option<QueueType> {
        QueueType::ALL.into_iter().find(|k| self.of(*k) == channel)
    }
}

/// Splits `flowbench_schema=NAME` off a URL; the rest goes to sqlx unchanged.
pub(crate) fn split_schema(url: &str) -> Result<(String, Option<String>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((SCHEMA_PARAM, v)) => schema = Some(v.to_string()),
            _ => kept.push(pair),
        }
    }
    if let Some(s) = &schema {
        valid_identifier(s)?;
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

/// Schema and database names are the one thing formatted into SQL text (DDL cannot bind
/// identifiers), so only plain lower-case identifiers are accepted.
pub(crate) fn valid_identifier(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid schema name (use 1 to 40 of a-z, 0-9 and _, not starting with a digit)"
        ))
    }
}

impl PostgresStore {
    /// A transaction with this store's settings: what [`Store::begin`] boxes.
    async fn transaction(&self) -> Result<PostgresTx> {
        Ok(PostgresTx {
            tx: self.pool.begin().await.map_err(q("begin"))?,
            mapping: self.mapping,
            queued_index: self.queued_index,
            channels: self.channels.clone(),
        })
    }

    /// Connects to a `postgres://` URL, creates the `flowbench_schema` schema if one is named,
    /// migrates, and starts relaying notifications.
    pub async fn connect(url: &str, knobs: &Knobs) -> Result<Self> {
        let target = super::redact(url);
        let (url, schema) = split_schema(url).map_err(|reason| Error::Unreachable {
            backend: BACKEND,
            target: target.clone(),
            reason,
        })?;
        let mut options = PgConnectOptions::from_str(&url)
            .map_err(|e| super::unreachable(BACKEND, &target, &e))?;
        if let Some(s) = &schema {
            options = options.options([("search_path", s.as_str())]);
        }
        let first =
            super::first_connection(BACKEND, &target, PgConnection::connect_with(&options)).await?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(|e| super::unreachable(BACKEND, &target, &e))?;
        if let Some(s) = &schema {
            // Several processes of one deployment start at once; the lock keeps their
            // CREATE SCHEMA from racing. `s` is a validated identifier.
            let mut tx = pool.begin().await.map_err(q("begin"))?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('flowbench.schema'))")
                .execute(&mut *tx)
                .await
                .map_err(q("lock schema creation"))?;
            sqlx::query(&format!(r#"CREATE SCHEMA IF NOT EXISTS "{s}""#))
                .execute(&mut *tx)
                .await
                .map_err(q("create schema"))?;
            tx.commit().await.map_err(q("commit"))?;
        }
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| Error::Migrate {
                backend: BACKEND,
                source,
            })?;
        set_queued_index(&pool, knobs.queued_index).await?;

        let notifier = Arc::new(Notifier::default());
        let channels = Arc::new(Channels::new(schema.as_deref().unwrap_or("public")));
        // A pool of its own: the listener holds its connection for good.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        let listener = tokio::spawn(relay_notifications(
            listen_pool,
            channels.clone(),
            notifier.clone(),
        ));
        Ok(PostgresStore {
            pool,
            mapping: knobs.json_mapping,
            queued_index: knobs.queued_index,
            notifier,
            channels,
            _listener: AbortOnDropHandle::new(listener),
        })
    }
}

/// The `queued.index` knob picks the index `execution_queued` pops with: Kestra's old
/// (namespace, flow_id) or the (namespace, flow_id, date) one its PR added.
async fn set_queued_index(pool: &PgPool, index: QueuedIndex) -> Result<()> {
    let (keep, drop) = match index {
        QueuedIndex::Flow => (
            "CREATE INDEX IF NOT EXISTS ix_execution_queued_flow ON execution_queued (tenant_id, namespace, flow_id)",
            "DROP INDEX IF EXISTS ix_execution_queued_flow_date",
        ),
        QueuedIndex::FlowDate => (
            "CREATE INDEX IF NOT EXISTS ix_execution_queued_flow_date ON execution_queued (tenant_id, namespace, flow_id, date)",
            "DROP INDEX IF EXISTS ix_execution_queued_flow",
        ),
    };
    // DDL is transactional here; the lock stops processes starting together from racing.
    let mut tx = pool.begin().await.map_err(q("begin"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('flowbench.queued_index'))")
        .execute(&mut *tx)
        .await
        .map_err(q("lock queued index"))?;
    sqlx::query(drop)
        .execute(&mut *tx)
        .await
        .map_err(q("drop queued index"))?;
    sqlx::query(keep)
        .execute(&mut *tx)
        .await
        .map_err(q("create queued index"))?;
    tx.commit().await.map_err(q("commit"))
}

/// The select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop`, as jOOQ renders it:
/// the oldest row of the flow in the tenant, locked, its `value` read (and its key, which
/// Kestra recomputes from the document instead). Then the row is deleted by key in the same
/// transaction.
///
/// * `queued.index=flow` follows Kestra before commit 34fa6ce91 ("feat(jdbc): Improve
///   execution queued performance", 2024-11-22; the pop dates from c74540b3a, #2371):
///   `FOR UPDATE`, so a second popper of the flow waits until the first one commits; it
///   then finds that row deleted and locks the next one (`LockRows` sits under `Limit`).
/// * `queued.index=flow-date` follows 34fa6ce91: `FOR UPDATE SKIP LOCKED`.
///
/// The tenant condition is Kestra's `buildTenantCondition`: `tenant_id IS NULL` without a
/// tenant (OSS), `tenant_id = ?` with one. The limit is bound, as jOOQ binds it.
fn pop_select(index: QueuedIndex, null_tenant: bool, mapping: JsonMapping) -> String {
    let (tenant, rest) = if null_tenant {
        (
            "tenant_id IS NULL",
            "namespace = $1 AND flow_id = $2 ORDER BY date ASC LIMIT $3",
        )
    } else {
        (
            "tenant_id = $1",
            "namespace = $2 AND flow_id = $3 ORDER BY date ASC LIMIT $4",
        )
    };
    let lock = match index {
        QueuedIndex::Flow => "FOR UPDATE",
        QueuedIndex::FlowDate => "FOR UPDATE SKIP LOCKED",
    };
    format!(
        r#"SELECT "key", {} FROM execution_queued WHERE {tenant} AND {rest} {lock}"#,
        value_expr(mapping)
    )
}

/// Binds the pop's values in [`pop_select`]'s order.
fn bind_pop<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    tenant: Option<&'q str>,
    namespace: &'q str,
    flow_id: &'q str,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let query = match tenant {
        Some(t) => query.bind(t),
        None => query,
    };
    query.bind(namespace).bind(flow_id).bind(1_i64)
}

/// LISTENs on every queue channel and wakes the in-process pollers. When the connection
/// drops (a server restart), it reconnects with backoff and wakes everyone, since
/// notifications sent meanwhile are lost.
async fn relay_notifications(pool: PgPool, channels: Arc<Channels>, notifier: Arc<Notifier>) {
    let wake_all = || {
        for k in QueueType::ALL {
            notifier.notify(k);
        }
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("postgres: LISTEN connection failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener
            .listen_all(channels.0.iter().map(String::as_str))
            .await
        {
            tracing::warn!("postgres: LISTEN failed: {e}; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(100);
        wake_all();
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(kind) = channels.kind(n.channel()) {
                        notifier.notify(kind);
                    }
                }
                // The connection dropped and sqlx has reconnected and listens again.
                Ok(None) => wake_all(),
                Err(e) => {
                    tracing::warn!("postgres: LISTEN connection lost: {e}; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    break;
                }
            }
        }
    }
}

/// The column expression a document is read with: `direct` takes the JSONB bytes straight
/// into the type; `normalize` has the server render text, which `decode` then re-normalizes.
fn value_expr(mapping: JsonMapping) -> &'static str {
    match mapping {
        JsonMapping::Direct => "value",
        JsonMapping::Normalize => "value::text",
    }
}

fn decode_column<T: DeserializeOwned>(
    mapping: JsonMapping,
    row: &PgRow,
    index: usize,
    what: &'static str,
    key: &str,
) -> Result<T> {
    let decode_err = |source| Error::Decode {
        backend: BACKEND,
        what,
        key: key.to_string(),
        source,
    };
    match mapping {
        JsonMapping::Direct => match row.try_get::<Json<T>, _>(index) {
            Ok(Json(v)) => Ok(v),
            Err(sqlx::Error::ColumnDecode { source, index: col }) => {
                match source.downcast::<serde_json::Error>() {
                    Ok(e) => Err(decode_err(*e)),
                    Err(source) => Err(q("decode a document")(sqlx::Error::ColumnDecode {
                        index: col,
                        source,
                    })),
                }
            }
            Err(e) => Err(q("decode a document")(e)),
        },
        JsonMapping::Normalize => {
            let text: String = row.try_get(index).map_err(q("decode a document"))?;
            decode(mapping, &text).map_err(decode_err)
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn begin_tx(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(self.transaction().await?))
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>> {
        let sql = format!(
            r#"SELECT {} FROM executions WHERE "key" = $1"#,
            value_expr(self.mapping)
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read execution"))?;
        row.map(|r| decode_column(self.mapping, &r, 0, "execution", id))
            .transpose()
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>> {
        let sql = format!(
            r#"SELECT "key", {} FROM logs WHERE execution_id = $1 ORDER BY "timestamp", "key""#,
            value_expr(self.mapping)
        );
        let rows = sqlx::query(&sql)
            .bind(execution_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read logs"))?;
        rows.iter()
            .map(|r| {
                let key: String = r.get(0);
                decode_column(self.mapping, r, 1, "log", &key)
            })
            .collect()
    }

    async fn flow(&self, namespace: &str, id: &str) -> Result<Option<(i32, String)>> {
        sqlx::query_as("SELECT revision, source FROM flows WHERE namespace = $1 AND id = $2")
            .bind(namespace)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read flow"))
    }

    async fn flows(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(r#"SELECT source FROM flows ORDER BY "key""#)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list flows"))?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(
            r#"SELECT
                (SELECT COUNT(*) FROM executions),
                (SELECT COUNT(*) FROM executions WHERE end_date IS NOT NULL),
                (SELECT COUNT(*) FROM logs),
                (SELECT COUNT(*) FROM queues WHERE NOT consumed),
                (SELECT COUNT(*) FROM worker_job_running)"#,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(q("count rows"))?;
        Ok(Counts {
            executions: row.get(0),
            terminal_executions: row.get(1),
            logs: row.get(2),
            pending_messages: row.get(3),
            running_jobs: row.get(4),
        })
    }

    async fn clean_queue(&self) -> Result<u64> {
        let r = sqlx::query("DELETE FROM queues WHERE consumed")
            .execute(&self.pool)
            .await
            .map_err(q("clean queue"))?;
        Ok(r.rows_affected())
    }

    async fn version(&self) -> Result<String> {
        let (v,): (String,) = sqlx::query_as("SHOW server_version")
            .fetch_one(&self.pool)
            .await
            .map_err(q("read version"))?;
        Ok(format!("PostgreSQL {v}"))
    }

    async fn analyze_queued(&self) -> Result<()> {
        sqlx::query("ANALYZE execution_queued")
            .execute(&self.pool)
            .await
            .map_err(q("analyze execution_queued"))?;
        Ok(())
    }

    async fn explain_queued_pop(
        &self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<PopPlan> {
        let statement = pop_select(self.queued_index, tenant.is_none(), self.mapping);
        // The plan for these values (a custom plan; PostgreSQL 15 has no GENERIC_PLAN option).
        // In a transaction that is rolled back: EXPLAIN without ANALYZE runs nothing, but
        // the rollback makes sure of it.
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        let explain = format!("EXPLAIN {statement}");
        let rows = bind_pop(sqlx::query(&explain), tenant, namespace, flow_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("explain the queued pop"))?;
        tx.rollback().await.map_err(q("rollback"))?;
        Ok(PopPlan {
            statement,
            plan: plan_text(&rows)?,
        })
    }

    async fn poll_rows_read(&self, kinds: &[QueueType], limit: usize) -> Result<Option<u64>> {
        let mut ptx = self.transaction().await?;
        let before = queue_rows_read(&mut ptx.tx).await?;
        ptx.poll(kinds, limit).await?;
        let after = queue_rows_read(&mut ptx.tx).await?;
        ptx.tx.rollback().await.map_err(q("rollback"))?;
        Ok(Some(after.saturating_sub(before)))
    }
}

/// The rows of `queues` this transaction has read so far, by PostgreSQL's own
/// per-transaction counters.
async fn queue_rows_read(tx: &mut Transaction<'static, Postgres>) -> Result<u64> {
    let read: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(seq_tup_read + idx_tup_fetch), 0)::bigint
         FROM pg_stat_xact_user_tables WHERE relname = 'queues'",
    )
    .fetch_one(&mut **tx)
    .await
    .map_err(q("read pg_stat_xact_user_tables"))?;
    Ok(read.max(0) as u64)
}

/// One plan line per row of `EXPLAIN`'s output.
fn plan_text(rows: &[PgRow]) -> Result<String> {
    let mut lines = Vec::with_capacity(rows.len());
    for r in rows {
        let line: String = r.try_get(0).map_err(q("read plan"))?;
        lines.push(line);
    }
    Ok(lines.join("\n"))
}

struct PostgresTx {
    tx: Transaction<'static, Postgres>,
    mapping: JsonMapping,
    queued_index: QueuedIndex,
    channels: Arc<Channels>,
}

#[async_trait]
impl Tx for PostgresTx {
    async fn poll(&mut self, kinds: &[QueueType], limit: usize) -> Result<Vec<Polled>> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        // One statement: lock the oldest free rows, skipping rows another consumer holds,
        // and mark them consumed (Kestra's JdbcQueue#receive on PostgreSQL).
        let rows = sqlx::query(
            r#"UPDATE queues SET consumed = TRUE, updated = now() WHERE "offset" IN (
                 SELECT "offset" FROM queues WHERE NOT consumed AND type = ANY($1)
                 ORDER BY "offset" LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING "offset", type, "key", value::text"#,
        )
        .bind(&kinds)
        .bind(limit as i64)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(q("poll queue"))?;
        Ok(Polled::in_offset_order(rows.iter().map(|r| {
            (r.get(0), r.get::<&str, _>(1), r.get(2), r.get(3))
        })))
    }

    async fn push(&mut self, messages: &[Message]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut qb =
                QueryBuilder::<Postgres>::new(r#"INSERT INTO queues (type, "key", value) "#);
            qb.push_values(chunk, |mut b, m| {
                b.push_bind(m.kind.as_str())
                    .push_bind(&m.key)
                    .push_bind(&m.value)
                    .push_unseparated("::jsonb");
            });
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("push to queue"))?;
        }
        // Delivered when (and only if) the transaction commits; PostgreSQL folds repeats.
        let channels: Vec<&str> = QueueType::ALL
            .into_iter()
            .filter(|k| messages.iter().any(|m| m.kind == *k))
            .map(|k| self.channels.of(k))
            .collect();
        sqlx::query("SELECT pg_notify(c, '') FROM unnest($1::text[]) AS c")
            .bind(&channels)
            .execute(&mut *self.tx)
            .await
            .map_err(q("notify"))?;
        Ok(())
    }

    async fn push_consumed(&mut self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Postgres>::new(
                r#"INSERT INTO queues (type, "key", value, consumed) "#,
            );
            qb.push_values(chunk, |mut b, m| {
                b.push_bind(m.kind.as_str())
                    .push_bind(&m.key)
                    .push_bind(&m.value)
                    .push_unseparated("::jsonb")
                    .push("TRUE");
            });
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("push to queue"))?;
        }
        Ok(())
    }

    async fn load_execution(&mut self, id: &str) -> Result<Option<Execution>> {
        // FOR UPDATE: two executors never process one execution at once.
        let sql = format!(
            r#"SELECT {} FROM executions WHERE "key" = $1 FOR UPDATE"#,
            value_expr(self.mapping)
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q("load execution"))?;
        row.map(|r| decode_column(self.mapping, &r, 0, "execution", id))
            .transpose()
    }

    async fn save_execution(&mut self, execution: &Execution) -> Result<()> {
        sqlx::query(
            r#"INSERT INTO executions ("key", value) VALUES ($1, $2)
               ON CONFLICT ("key") DO UPDATE SET value = EXCLUDED.value"#,
        )
        .bind(&execution.id)
        .bind(Json(execution))
        .execute(&mut *self.tx)
        .await
        .map_err(q("save execution"))?;
        Ok(())
    }

    async fn count_running(&mut self, namespace: &str, flow_id: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM executions WHERE namespace = $1 AND flow_id = $2 AND state_current = ANY($3)",
        )
        .bind(namespace)
        .bind(flow_id)
        .bind(super::running_state_names().to_vec())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(q("count running executions"))?;
        Ok(n)
    }

    async fn queued_push(&mut self, queued: &ExecutionQueued) -> Result<()> {
        sqlx::query(
            r#"INSERT INTO execution_queued ("key", value, tenant_id, namespace, flow_id, date)
               VALUES ($1, $2::jsonb, $3, $4, $5, $6::timestamptz)
               ON CONFLICT ("key") DO NOTHING"#,
        )
        .bind(queued.uid())
        .bind(queued.to_json())
        .bind(queued.tenant_id.as_deref())
        .bind(&queued.namespace)
        .bind(&queued.flow_id)
        .bind(queued.date.to_string())
        .execute(&mut *self.tx)
        .await
        .map_err(q("queue execution"))?;
        Ok(())
    }

    async fn queued_pop(
        &mut self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Option<Execution>> {
        let sql = pop_select(self.queued_index, tenant.is_none(), self.mapping);
        let row = bind_pop(sqlx::query(&sql), tenant, namespace, flow_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q("pop queued execution"))?;
        let Some(row) = row else { return Ok(None) };
        let key: String = row.try_get(0).map_err(q("pop queued execution"))?;
        let queued: ExecutionQueued =
            decode_column(self.mapping, &row, 1, "queued execution", &key)?;
        sqlx::query(r#"DELETE FROM execution_queued WHERE "key" = $1"#)
            .bind(&key)
            .execute(&mut *self.tx)
            .await
            .map_err(q("pop queued execution"))?;
        Ok(Some(queued.execution))
    }

    async fn insert_logs(&mut self, logs: &[LogEntry]) -> Result<()> {
        for chunk in logs.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Postgres>::new(r#"INSERT INTO logs ("key", value) "#);
            qb.push_values(chunk, |mut b, l| {
                b.push_bind(&l.id).push_bind(Json(l));
            });
            qb.push(r#" ON CONFLICT ("key") DO UPDATE SET value = EXCLUDED.value"#);
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("insert logs"))?;
        }
        Ok(())
    }

    async fn lock_flow(&mut self, key: &str) -> Result<Option<(i32, String)>> {
        let current: Option<(i32, String)> =
            sqlx::query_as(r#"SELECT revision, source FROM flows WHERE "key" = $1 FOR UPDATE"#)
                .bind(key)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(q("read flow"))?;
        Ok(current)
    }

    async fn put_flow(
        &mut self,
        key: &str,
        namespace: &str,
        id: &str,
        revision: i32,
        source: &str,
    ) -> Result<()> {
        sqlx::query(
            r#"INSERT INTO flows ("key", namespace, id, revision, source) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT ("key") DO UPDATE SET revision = EXCLUDED.revision, source = EXCLUDED.source"#,
        )
        .bind(key)
        .bind(namespace)
        .bind(id)
        .bind(revision)
        .bind(source)
        .execute(&mut *self.tx)
        .await
        .map_err(q("save flow"))?;
        Ok(())
    }

    async fn heartbeat(&mut self, instance: &str, kind: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO service_instance (id, kind, heartbeat_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms",
        )
        .bind(instance)
        .bind(kind)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await
        .map_err(q("heartbeat"))?;
        Ok(())
    }

    async fn remove_instance(&mut self, instance: &str) -> Result<()> {
        sqlx::query("DELETE FROM service_instance WHERE id = $1")
            .bind(instance)
            .execute(&mut *self.tx)
            .await
            .map_err(q("remove instance"))?;
        Ok(())
    }

    async fn dead_instances(&mut self, kind: &str, older_than_ms: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM service_instance WHERE kind = $1 AND heartbeat_ms < $2")
                .bind(kind)
                .bind(older_than_ms)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(q("find dead instances"))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn jobs_started(&mut self, worker: &str, jobs: &[(&str, &str)]) -> Result<()> {
        for chunk in super::distinct_jobs(jobs).chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Postgres>::new(
                r#"INSERT INTO worker_job_running ("key", worker_id, value) "#,
            );
            qb.push_values(chunk, |mut b, (key, value)| {
                b.push_bind(*key)
                    .push_bind(worker)
                    .push_bind(*value)
                    .push_unseparated("::jsonb");
            });
            qb.push(r#" ON CONFLICT ("key") DO UPDATE SET worker_id = EXCLUDED.worker_id"#);
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("record running jobs"))?;
        }
        Ok(())
    }

    async fn jobs_finished(&mut self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query(r#"DELETE FROM worker_job_running WHERE "key" = ANY($1)"#)
            .bind(keys)
            .execute(&mut *self.tx)
            .await
            .map_err(q("clear finished jobs"))?;
        Ok(())
    }

    async fn take_jobs(&mut self, worker: &str) -> Result<Vec<(String, String)>> {
        sqlx::query_as(
            r#"DELETE FROM worker_job_running WHERE worker_id = $1 RETURNING "key", value::text"#,
        )
        .bind(worker)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(q("take jobs of a dead worker"))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        super::committed(self.tx.commit().await.map_err(q("commit")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_split_off_and_validated() {
        let (url, schema) =
            split_schema("postgres://u@h/db?flowbench_schema=t_1&sslmode=disable").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=disable");
        assert_eq!(schema.as_deref(), Some("t_1"));
        let (url, schema) = split_schema("postgres://u@h/db?flowbench_schema=t_1").unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(schema.as_deref(), Some("t_1"));
        assert_eq!(split_schema("postgres://u@h/db").unwrap().1, None);
        for bad in ["x%22;drop", "Upper", "1abc", "", "a-b"] {
            assert!(
                split_schema(&format!("postgres://h/db?flowbench_schema={bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn channels_map_back_to_queue_types() {
        let c = Channels::new("t_x");
        assert_eq!(c.of(QueueType::WorkerTask), "flowbench.t_x.worker_task");
        for k in QueueType::ALL {
            assert_eq!(c.kind(c.of(k)), Some(k));
        }
        assert_eq!(c.kind("flowbench.other.log"), None);
    }
}
