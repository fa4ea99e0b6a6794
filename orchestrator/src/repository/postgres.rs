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
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::types::Json;
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, QueryBuilder, Row, Transaction};
use tokio_util::task::AbortOnDropHandle;

use super::dialect::{Bound, Dialect, Poll, Sql, q, queued_pop};
use super::search::SearchSyntax;
use super::store::SqlxStore;
use super::{Error, Notifier, QueueType, Result};
use crate::knobs::{JsonMapping, Knobs, QueuedIndex};
use crate::model::Execution;

/// The URL parameter that names the schema to keep the tables in.
pub const SCHEMA_PARAM: &str = "flowbench_schema";

/// PostgreSQL's SQL, its channels, and the task relaying other processes' NOTIFYs.
pub(crate) struct PostgresDialect {
    sql: Sql,
    /// NOTIFY channel prefix: channels are database-wide, so it carries the schema.
    channels: Arc<Channels>,
    /// This store's own id, sent as each NOTIFY's payload. Its listener skips the
    /// notifications that carry it: the committing [`crate::queue::Transaction`] has
    /// already woken this store's consumers, and a second wake-up would only make them poll
    /// an empty queue.
    origin: Arc<str>,
    /// Relays NOTIFYs from other processes to the store's notifier; stops with the store.
    _listener: AbortOnDropHandle<()>,
}

/// The NOTIFY channel of each queue type, e.g. `flowbench.public.worker_task`.
struct Channels([String; 5]);

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

/// Connects to a `postgres://` URL, creates the `flowbench_schema` schema if one is named,
/// migrates, and starts relaying notifications.
pub(crate) async fn connect(url: &str, knobs: &Knobs) -> Result<SqlxStore<PostgresDialect>> {
    let target = super::redact(url);
    let (url, schema) = split_schema(url).map_err(|reason| Error::Unreachable {
        backend: PostgresDialect::BACKEND,
        target: target.clone(),
        reason,
    })?;
    let mut options = PgConnectOptions::from_str(&url)
        .map_err(|e| super::unreachable(PostgresDialect::BACKEND, &target, &e))?;
    if let Some(s) = &schema {
        options = options.options([("search_path", s.as_str())]);
    }
    let first = super::first_connection(
        PostgresDialect::BACKEND,
        &target,
        PgConnection::connect_with(&options),
    )
    .await?;
    let _ = first.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
        .map_err(|e| super::unreachable(PostgresDialect::BACKEND, &target, &e))?;
    let q = q::<PostgresDialect>;
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
            backend: PostgresDialect::BACKEND,
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
    let origin: Arc<str> = crate::model::new_id().into();
    let listener = tokio::spawn(relay_notifications(
        listen_pool,
        channels.clone(),
        origin.clone(),
        notifier.clone(),
    ));
    let dialect = PostgresDialect {
        sql: sql(knobs.queued_index, knobs.json_mapping),
        channels,
        origin,
        _listener: AbortOnDropHandle::new(listener),
    };
    Ok(SqlxStore::new(
        pool.clone(),
        pool,
        knobs.json_mapping,
        notifier,
        dialect,
    ))
}

/// The `queued.index` knob picks the index `execution_queued` pops with.
async fn set_queued_index(pool: &PgPool, index: QueuedIndex) -> Result<()> {
    let q = q::<PostgresDialect>;
    let (create, drop) = queued_pop(index).ddl();
    // DDL is transactional here; the lock stops processes starting together from racing.
    let mut tx = pool.begin().await.map_err(q("begin"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('flowbench.queued_index'))")
        .execute(&mut *tx)
        .await
        .map_err(q("lock queued index"))?;
    sqlx::query(&drop)
        .execute(&mut *tx)
        .await
        .map_err(q("drop queued index"))?;
    sqlx::query(&create)
        .execute(&mut *tx)
        .await
        .map_err(q("create queued index"))?;
    tx.commit().await.map_err(q("commit"))
}

/// PostgreSQL's statements for these knobs.
///
/// Documents are read with `value` under `jdbc.json-mapping=direct`, JSONB bytes taken
/// straight into the type, and with `value::text` under `normalize`, text the server
/// renders, which [`super::decode`] then re-normalizes.
///
/// The pop is the select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop`, as jOOQ
/// renders it: the flow's oldest row in the tenant, locked ([`queued_pop`]), its `value`
/// read (and its key, which Kestra recomputes from the document instead). Then the row is
/// deleted by key in the same transaction. Under `FOR UPDATE`, a second popper of the flow
/// waits until the first commits, then finds that row deleted and locks the next one
/// (`LockRows` sits under `Limit`). The tenant condition is Kestra's `buildTenantCondition`:
/// `tenant_id IS NULL` without a tenant (OSS), `tenant_id = $1` with one.
fn sql(index: QueuedIndex, mapping: JsonMapping) -> Sql {
    let value = match mapping {
        JsonMapping::Direct => "value",
        JsonMapping::Normalize => "value::text",
    };
    let lock = queued_pop(index).lock();
    Sql {
        executions_of_flow: format!(
            r#"SELECT "key", {value} FROM executions WHERE namespace = $1 AND flow_id = $2"#
        ),
        execution: format!(r#"SELECT {value} FROM executions WHERE "key" = $1"#),
        logs: format!(
            r#"SELECT "key", {value} FROM logs WHERE execution_id = $1 ORDER BY "timestamp", "key""#
        ),
        flow: "SELECT revision, source FROM flows WHERE namespace = $1 AND id = $2",
        flows: r#"SELECT source FROM flows ORDER BY "key""#,
        counts: r#"SELECT
                (SELECT COUNT(*) FROM executions),
                (SELECT COUNT(*) FROM executions WHERE end_date IS NOT NULL),
                (SELECT COUNT(*) FROM logs),
                -- One count per type, each read off that type's partial index (0005).
                (SELECT COUNT(*) FROM queues WHERE NOT consumed AND type = 'execution')
                + (SELECT COUNT(*) FROM queues WHERE NOT consumed AND type = 'worker_task')
                + (SELECT COUNT(*) FROM queues WHERE NOT consumed AND type = 'worker_task_result')
                + (SELECT COUNT(*) FROM queues WHERE NOT consumed AND type = 'log')
                + (SELECT COUNT(*) FROM queues WHERE NOT consumed AND type = 'execution_killed'),
                (SELECT COUNT(*) FROM worker_job_running)"#,
        clean_queue: "DELETE FROM queues WHERE consumed AND (type <> 'execution_killed' OR updated < now() - interval '60 seconds')",
        // Read off the partial index of migration 0009.
        kills_after: r#"SELECT "offset", type, "key", value::text FROM queues WHERE type = 'execution_killed' AND "offset" > $1 ORDER BY "offset" LIMIT $2"#,
        version: "SHOW server_version",
        analyze_queued: "ANALYZE execution_queued",
        // The plan for the bound values (a custom plan; PostgreSQL 15 has no GENERIC_PLAN).
        explain: "EXPLAIN ",
        poll: Poll::EachKind(poll_each_kind),
        mark_polled: None,
        push: r#"INSERT INTO queues (type, "key", value) "#,
        push_consumed: r#"INSERT INTO queues (type, "key", value, consumed) "#,
        json_cast: "::jsonb",
        true_literal: "TRUE",
        // FOR UPDATE: two executors never process one execution at once.
        search: SearchSyntax {
            select: format!(r#"SELECT "key", {value} FROM executions"#),
            key: r#""key""#,
            count: "COUNT(*)",
            placeholder: |n| format!("${n}"),
            date: |p| format!("CAST({p} AS timestamptz)"),
            date_value: |t| t.to_string(),
            label: |k, v| {
                format!(
                    "value -> 'labels' @> jsonb_build_array(jsonb_build_object('key', CAST({k} AS text), 'value', CAST({v} AS text)))"
                )
            },
            page: |limit, offset| format!("LIMIT {limit} OFFSET {offset}"),
        },
        delete_execution: r#"DELETE FROM executions WHERE "key" = $1"#,
        delete_logs: "DELETE FROM logs WHERE execution_id = $1",
        load_execution: format!(r#"SELECT {value} FROM executions WHERE "key" = $1 FOR UPDATE"#),
        save_execution: r#"INSERT INTO executions ("key", value) VALUES ($1, $2::jsonb)
               ON CONFLICT ("key") DO UPDATE SET value = EXCLUDED.value"#,
        count_running: "SELECT COUNT(*) FROM executions WHERE namespace = $1 AND flow_id = $2 AND state_current IN ($3, $4, $5, $6, $7)",
        queued_push: r#"INSERT INTO execution_queued ("key", value, tenant_id, namespace, flow_id, date)
               VALUES ($1, $2::jsonb, $3, $4, $5, $6::timestamptz)
               ON CONFLICT ("key") DO NOTHING"#,
        queued_pop: [
            format!(
                r#"SELECT "key", {value} FROM execution_queued WHERE tenant_id = $1 AND namespace = $2 AND flow_id = $3 ORDER BY date ASC LIMIT $4 {lock}"#
            ),
            format!(
                r#"SELECT "key", {value} FROM execution_queued WHERE tenant_id IS NULL AND namespace = $1 AND flow_id = $2 ORDER BY date ASC LIMIT $3 {lock}"#
            ),
        ],
        queued_delete: r#"DELETE FROM execution_queued WHERE "key" = $1"#,
        delay_push: r#"INSERT INTO executordelayed ("key", value, date_ms) VALUES ($1, $2, $3)
               ON CONFLICT ("key") DO UPDATE SET value = EXCLUDED.value, date_ms = EXCLUDED.date_ms"#,
        delays_due: r#"SELECT "key", value FROM executordelayed WHERE date_ms <= $1 ORDER BY date_ms LIMIT $2 FOR UPDATE SKIP LOCKED"#,
        delay_delete: r#"DELETE FROM executordelayed WHERE "key" = $1"#,
        trigger_insert: r#"INSERT INTO triggers ("key", value, next_ms) VALUES ($1, $2, $3) ON CONFLICT ("key") DO NOTHING"#,
        trigger_lock: r#"SELECT value FROM triggers WHERE "key" = $1 FOR UPDATE"#,
        trigger_put: r#"UPDATE triggers SET value = $1, next_ms = $2 WHERE "key" = $3"#,
        multiple_condition_insert: r#"INSERT INTO multipleconditions ("key", value, end_ms) VALUES ($1, $2, $3) ON CONFLICT ("key") DO NOTHING"#,
        multiple_condition_lock: r#"SELECT value FROM multipleconditions WHERE "key" = $1 FOR UPDATE"#,
        multiple_condition_put: r#"UPDATE multipleconditions SET value = $1, end_ms = $2 WHERE "key" = $3"#,
        multiple_condition_delete: r#"DELETE FROM multipleconditions WHERE "key" = $1"#,
        multiple_conditions_purge: "DELETE FROM multipleconditions WHERE end_ms < $1",
        insert_logs: r#"INSERT INTO logs ("key", value) "#,
        insert_logs_end: r#" ON CONFLICT ("key") DO UPDATE SET value = EXCLUDED.value"#,
        lock_flow: r#"SELECT revision, source FROM flows WHERE "key" = $1 FOR UPDATE"#,
        put_flow: r#"INSERT INTO flows ("key", namespace, id, revision, source) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT ("key") DO UPDATE SET revision = EXCLUDED.revision, source = EXCLUDED.source"#,
        heartbeat: "INSERT INTO service_instance (id, kind, heartbeat_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms",
        remove_instance: "DELETE FROM service_instance WHERE id = $1",
        dead_instances: "SELECT id FROM service_instance WHERE kind = $1 AND heartbeat_ms < $2",
        jobs_started: r#"INSERT INTO worker_job_running ("key", worker_id, value) "#,
        jobs_started_end: r#" ON CONFLICT ("key") DO UPDATE SET worker_id = EXCLUDED.worker_id"#,
        jobs_finished: r#"DELETE FROM worker_job_running WHERE "key" IN ("#,
        take_jobs: r#"DELETE FROM worker_job_running WHERE worker_id = $1 RETURNING "key", value::text"#,
        take_jobs_delete: None,
    }
}

#[async_trait]
impl Dialect for PostgresDialect {
    type DB = Postgres;
    const BACKEND: &'static str = "postgres";
    const KEEPS_DOCUMENT_TEXT: bool = false;
    /// PostgreSQL allows 65535 bound parameters per statement; stay well below.
    const ROWS_PER_INSERT: usize = 1000;

    fn sql(&self) -> &Sql {
        &self.sql
    }

    fn text(row: &PgRow, index: usize) -> Result<String, sqlx::Error> {
        row.try_get(index)
    }

    fn document<T: DeserializeOwned>(
        mapping: JsonMapping,
        row: &PgRow,
        index: usize,
        what: &'static str,
        key: &str,
    ) -> Result<T> {
        let decode_err = |source| Error::Decode {
            backend: Self::BACKEND,
            what,
            key: key.to_string(),
            source,
        };
        let q = q::<Self>;
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
                super::decode(mapping, &text).map_err(decode_err)
            }
        }
    }

    fn bind_execution<'q>(
        query: Bound<'q, Postgres>,
        execution: &'q Execution,
        document: String,
    ) -> Bound<'q, Postgres> {
        query.bind(execution.id.as_str()).bind(document)
    }

    async fn execute_built(
        tx: &mut Transaction<'static, Postgres>,
        mut query: QueryBuilder<'_, Postgres>,
    ) -> Result<(), sqlx::Error> {
        query.build().execute(&mut **tx).await.map(drop)
    }

    async fn fetch_built(
        tx: &mut Transaction<'static, Postgres>,
        mut query: QueryBuilder<'_, Postgres>,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        query.build().fetch_all(&mut **tx).await
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn queued_date(date: jiff::Timestamp) -> String {
        date.to_string()
    }

    /// NOTIFY on each pushed kind's channel, with this store's id as the payload.
    /// Delivered when (and only if) the transaction commits; PostgreSQL folds repeats.
    async fn pushed(&self, tx: &mut PgConnection, kinds: &[QueueType]) -> Result<()> {
        let channels: Vec<&str> = kinds.iter().map(|k| self.channels.of(*k)).collect();
        sqlx::query("SELECT pg_notify(c, $2) FROM unnest($1::text[]) AS c")
            .bind(&channels)
            .bind(&*self.origin)
            .execute(tx)
            .await
            .map_err(q::<Self>("notify"))?;
        Ok(())
    }

    /// The rows of `queues` this transaction has read so far, by PostgreSQL's own
    /// per-transaction counters (`pg_stat_xact_user_tables`).
    async fn queue_rows_read(tx: &mut PgConnection) -> Result<Option<u64>> {
        let read: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(seq_tup_read + idx_tup_fetch), 0)::bigint
             FROM pg_stat_xact_user_tables WHERE relname = 'queues'",
        )
        .fetch_one(tx)
        .await
        .map_err(q::<Self>("read pg_stat_xact_user_tables"))?;
        Ok(Some(read.max(0) as u64))
    }

    /// One plan line per row of `EXPLAIN`'s output.
    fn plan_text(rows: &[PgRow]) -> Result<String> {
        let mut lines = Vec::with_capacity(rows.len());
        for r in rows {
            let line: String = r.try_get(0).map_err(q::<Self>("read plan"))?;
            lines.push(line);
        }
        Ok(lines.join("\n"))
    }

    fn version_label(version: String) -> String {
        format!("PostgreSQL {version}")
    }
}

/// The poll, in one statement: for each kind, lock its oldest free rows, skipping rows
/// another consumer holds (Kestra's `JdbcQueue#receive` on PostgreSQL, which polls one type
/// per statement), then mark them all consumed.
///
/// Each kind's select reads its own partial index (migration 0005), which holds that kind's
/// unconsumed rows in offset order: the planner can read no row of another kind and no
/// consumed row. The kind is written into the statement, not bound: a generic plan cannot
/// prove a bound value matches a partial index's predicate. One select over `type IN (…)`
/// could use no index's order; the planner then walked the primary key through every
/// consumed row its statistics took for unconsumed.
///
/// The update finds the rows by `"offset" = ANY(ARRAY(…))`, primary-key lookups: with
/// `"offset" IN (…)` the planner joined the locked rows to a sequential scan of the whole
/// queue whenever the table looked small.
fn poll_each_kind(kinds: &[QueueType]) -> Vec<String> {
    let select = |i: usize, kind: QueueType| {
        format!(
            r#"p{i} AS (SELECT "offset" FROM queues WHERE NOT consumed AND type = '{}' ORDER BY "offset" LIMIT "#,
            kind.as_str()
        )
    };
    let mut pieces = Vec::with_capacity(kinds.len() + 1);
    for (i, kind) in kinds.iter().enumerate() {
        let before = if i == 0 {
            "WITH "
        } else {
            " FOR UPDATE SKIP LOCKED), "
        };
        pieces.push(format!("{before}{}", select(i, *kind)));
    }
    let union = (0..kinds.len())
        .map(|i| format!(r#"SELECT "offset" FROM p{i}"#))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    pieces.push(format!(
        r#" FOR UPDATE SKIP LOCKED) UPDATE queues SET consumed = TRUE, updated = now() WHERE "offset" = ANY(ARRAY({union})) RETURNING "offset", type, "key", value::text"#
    ));
    pieces
}

/// LISTENs on every queue channel and wakes the in-process pollers for what other stores
/// (other processes) committed; notifications carrying this store's own `origin` are
/// skipped. When the connection drops (a server restart), it reconnects with backoff and
/// wakes everyone, since notifications sent meanwhile are lost.
async fn relay_notifications(
    pool: PgPool,
    channels: Arc<Channels>,
    origin: Arc<str>,
    notifier: Arc<Notifier>,
) {
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
                    if n.payload() == &*origin {
                        continue;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind a poll can ask for has its partial index, with the predicate the poll
    /// writes, so no poll falls back to a walk of the primary key.
    #[test]
    fn every_kind_has_the_partial_index_its_poll_and_counts_read() {
        let migration = [
            include_str!("../../migrations/postgres/0005_queues_unconsumed_per_type.sql"),
            include_str!("../../migrations/postgres/0009_queues_unconsumed_execution_killed.sql"),
        ]
        .concat();
        for kind in QueueType::ALL {
            let index = format!(
                "ix_queues_unconsumed_{0} ON queues (\"offset\")\n    WHERE NOT consumed AND type = '{0}'",
                kind.as_str()
            );
            assert!(migration.contains(&index), "no partial index for {kind:?}");
            // `counts()` sums one count per type, written out by hand.
            let counts = sql(QueuedIndex::default(), JsonMapping::default()).counts;
            assert!(
                counts.contains(&format!(
                    "FROM queues WHERE NOT consumed AND type = '{}')",
                    kind.as_str()
                )),
                "counts() leaves out {kind:?}"
            );
            let poll = poll_each_kind(&[kind]).concat();
            assert!(
                poll.contains(&format!(
                    "WHERE NOT consumed AND type = '{}'",
                    kind.as_str()
                )),
                "{poll}"
            );
        }
        let pieces = poll_each_kind(&[QueueType::Execution, QueueType::WorkerTaskResult]);
        assert_eq!(pieces.len(), 3, "one limit per kind");
        let statement = pieces.concat();
        assert_eq!(statement.matches("FOR UPDATE SKIP LOCKED").count(), 2);
        assert!(
            statement.contains(
                r#"ANY(ARRAY(SELECT "offset" FROM p0 UNION ALL SELECT "offset" FROM p1))"#
            )
        );
    }

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
