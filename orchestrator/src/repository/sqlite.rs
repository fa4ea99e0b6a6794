//! The SQLite dialect: the embedded default, playing H2's role in Kestra.
//!
//! SQLite has one writer at a time and no `SKIP LOCKED`, so every write transaction goes
//! through a pool of exactly one connection (the single-writer transaction DESIGN.md names),
//! while reads use a separate pool in WAL mode and never block on writers.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::dialect::{Bound, Dialect, Poll, Sql, q, queued_pop};
use super::search::SearchSyntax;
use super::store::SqlxStore;
use super::{Error, Notifier, Result};
use crate::knobs::Knobs;
use crate::model::Execution;

/// SQLite's SQL.
pub(crate) struct SqliteDialect {
    sql: Sql,
}

/// Opens (creating if needed) `sqlite://PATH`, or a fresh temporary file for plain
/// `sqlite`, and migrates it.
pub(crate) async fn connect(url: &str, knobs: &Knobs) -> Result<SqlxStore<SqliteDialect>> {
    let url = if url == "sqlite" {
        // An in-memory database is per connection; two pools need a real file.
        let dir = std::env::temp_dir().join(format!("flowbench-{}", crate::model::new_id()));
        std::fs::create_dir_all(&dir).ok();
        format!("sqlite://{}", dir.join("flowbench.db").display())
    } else {
        url.to_string()
    };
    let connect_err = |source| Error::Connect {
        backend: SqliteDialect::BACKEND,
        target: url.clone(),
        source,
    };
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(connect_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30));
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(120))
        .connect_with(options.clone())
        .await
        .map_err(connect_err)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&write)
        .await
        .map_err(|source| Error::Migrate {
            backend: SqliteDialect::BACKEND,
            source,
        })?;
    // The `queued.index` knob picks the index execution_queued pops with.
    let (create, drop) = queued_pop(knobs.queued_index).ddl();
    let q = q::<SqliteDialect>;
    sqlx::query(&drop)
        .execute(&write)
        .await
        .map_err(q("drop queued index"))?;
    sqlx::query(&create)
        .execute(&write)
        .await
        .map_err(q("create queued index"))?;
    let read = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(120))
        .connect_with(options.read_only(true))
        .await
        .map_err(connect_err)?;
    Ok(SqlxStore::new(
        write,
        read,
        knobs.json_mapping,
        Arc::new(Notifier::default()),
        SqliteDialect { sql: sql() },
    ))
}

/// SQLite's statements. Documents are text columns, decoded by the `jdbc.json-mapping`
/// knob's path.
///
/// The pop is the select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop` (commit
/// c74540b3a, #2371), then a delete by key in the same transaction. Kestra's embedded H2
/// locks the row `FOR UPDATE` (and, after 34fa6ce91, `SKIP LOCKED`); SQLite has no row
/// locks: every write transaction here runs on the one writer connection, so pops never
/// overlap and both `queued.index` settings pop the same way; only the index differs. The
/// tenant condition is Kestra's `buildTenantCondition`: `tenant_id IS NULL` without a
/// tenant (OSS), `tenant_id = ?` with one. The limit is bound, as jOOQ binds it.
fn sql() -> Sql {
    Sql {
        executions_of_flow: r#"SELECT "key", value FROM executions WHERE namespace = ? AND flow_id = ?"#.into(),
        execution: r#"SELECT value FROM executions WHERE "key" = ?"#.into(),
        logs: r#"SELECT "key", value FROM logs WHERE execution_id = ? ORDER BY timestamp, "key""#
            .into(),
        flow: "SELECT revision, source FROM flows WHERE namespace = ? AND id = ?",
        flows: r#"SELECT source FROM flows ORDER BY "key""#,
        counts: r#"SELECT
                (SELECT COUNT(*) FROM executions),
                (SELECT COUNT(*) FROM executions WHERE end_date IS NOT NULL),
                (SELECT COUNT(*) FROM logs),
                (SELECT COUNT(*) FROM queues WHERE consumed = 0),
                (SELECT COUNT(*) FROM worker_job_running)"#,
        clean_queue: "DELETE FROM queues WHERE consumed = 1 AND (type <> 'execution_killed' OR updated < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds'))",
        kills_after: r#"SELECT "offset", type, "key", value FROM queues WHERE type = 'execution_killed' AND "offset" > ? ORDER BY "offset" LIMIT ?"#,
        version: "SELECT sqlite_version()",
        analyze_queued: "ANALYZE execution_queued",
        explain: "EXPLAIN QUERY PLAN ",
        // INDEXED BY: once ANALYZE has seen a queue of mostly consumed rows, the planner
        // prefers scanning the whole table; (type, consumed, offset) reads the unconsumed
        // rows of these types alone, whatever the queue's history. (SQLite fails the
        // statement rather than ignore the index.)
        poll: Poll::InList {
            head: r#"UPDATE queues SET consumed = 1 WHERE "offset" IN (SELECT "offset" FROM queues INDEXED BY ix_queues_poll WHERE consumed = 0 AND type IN ("#,
            limit: r#") ORDER BY "offset" LIMIT "#,
            end: r#") RETURNING "offset", type, "key", value"#,
        },
        mark_polled: None,
        push: r#"INSERT INTO queues (type, "key", value) "#,
        push_consumed: r#"INSERT INTO queues (type, "key", value, consumed) "#,
        json_cast: "",
        true_literal: "1",
        search: SearchSyntax {
            select: r#"SELECT "key", value FROM executions"#.into(),
            key: r#""key""#,
            count: "COUNT(*)",
            placeholder: |_| "?".into(),
            // The date columns hold `sortable_date` text, so text order is time order.
            date: |p| p.to_string(),
            date_value: sortable_date,
            label: |k, v| {
                format!(
                    "EXISTS (SELECT 1 FROM json_each(executions.value, '$.labels') AS l \
                     WHERE json_extract(l.value, '$.key') = {k} AND json_extract(l.value, '$.value') = {v})"
                )
            },
            page: |limit, offset| format!("LIMIT {limit} OFFSET {offset}"),
        },
        delete_execution: r#"DELETE FROM executions WHERE "key" = ?"#,
        delete_logs: "DELETE FROM logs WHERE execution_id = ?",
        // No FOR UPDATE: the single writer already excludes every other transaction.
        load_execution: r#"SELECT value FROM executions WHERE "key" = ?"#.into(),
        // The indexed columns are written beside the document (migration 0003) rather than
        // extracted from it by SQLite on every save; the dates fixed-width (migration 0007),
        // so that they sort as text.
        save_execution: r#"INSERT INTO executions ("key", value, namespace, flow_id, state_current,
                                       start_date, end_date, state_duration)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT ("key") DO UPDATE SET value = excluded.value,
                   namespace = excluded.namespace, flow_id = excluded.flow_id,
                   state_current = excluded.state_current, start_date = excluded.start_date,
                   end_date = excluded.end_date, state_duration = excluded.state_duration"#,
        count_running: "SELECT COUNT(*) FROM executions WHERE namespace = ? AND flow_id = ? AND state_current IN (?, ?, ?, ?, ?)",
        queued_push: r#"INSERT INTO execution_queued ("key", value, tenant_id, namespace, flow_id, date)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT ("key") DO NOTHING"#,
        queued_pop: [
            r#"SELECT "key", value FROM execution_queued WHERE tenant_id = ? AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ?"#.into(),
            r#"SELECT "key", value FROM execution_queued WHERE tenant_id IS NULL AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ?"#.into(),
        ],
        queued_delete: r#"DELETE FROM execution_queued WHERE "key" = ?"#,
        delay_push: r#"INSERT INTO executordelayed ("key", value, date_ms) VALUES (?, ?, ?)
               ON CONFLICT ("key") DO UPDATE SET value = excluded.value, date_ms = excluded.date_ms"#,
        delays_due: r#"SELECT "key", value FROM executordelayed WHERE date_ms <= ? ORDER BY date_ms LIMIT ?"#,
        delay_delete: r#"DELETE FROM executordelayed WHERE "key" = ?"#,
        trigger_insert: r#"INSERT INTO triggers ("key", value, next_ms) VALUES (?, ?, ?) ON CONFLICT ("key") DO NOTHING"#,
        trigger_lock: r#"SELECT value FROM triggers WHERE "key" = ?"#,
        trigger_put: r#"UPDATE triggers SET value = ?, next_ms = ? WHERE "key" = ?"#,
        multiple_condition_insert: r#"INSERT INTO multipleconditions ("key", value, end_ms) VALUES (?, ?, ?) ON CONFLICT ("key") DO NOTHING"#,
        multiple_condition_lock: r#"SELECT value FROM multipleconditions WHERE "key" = ?"#,
        multiple_condition_put: r#"UPDATE multipleconditions SET value = ?, end_ms = ? WHERE "key" = ?"#,
        multiple_condition_delete: r#"DELETE FROM multipleconditions WHERE "key" = ?"#,
        multiple_conditions_purge: "DELETE FROM multipleconditions WHERE end_ms < ?",
        insert_logs: r#"INSERT INTO logs ("key", value) "#,
        insert_logs_end: r#" ON CONFLICT ("key") DO UPDATE SET value = excluded.value"#,
        lock_flow: r#"SELECT revision, source FROM flows WHERE "key" = ?"#,
        put_flow: r#"INSERT INTO flows ("key", namespace, id, revision, source) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT ("key") DO UPDATE SET revision = excluded.revision, source = excluded.source"#,
        heartbeat: "INSERT INTO service_instance (id, kind, heartbeat_ms) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
        remove_instance: "DELETE FROM service_instance WHERE id = ?",
        dead_instances: "SELECT id FROM service_instance WHERE kind = ? AND heartbeat_ms < ?",
        jobs_started: r#"INSERT INTO worker_job_running ("key", worker_id, value) "#,
        jobs_started_end: r#" ON CONFLICT ("key") DO UPDATE SET worker_id = excluded.worker_id"#,
        jobs_finished: r#"DELETE FROM worker_job_running WHERE "key" IN ("#,
        take_jobs: r#"DELETE FROM worker_job_running WHERE worker_id = ? RETURNING "key", value"#,
        take_jobs_delete: None,
    }
}

#[async_trait]
impl Dialect for SqliteDialect {
    type DB = Sqlite;
    const BACKEND: &'static str = "sqlite";
    /// SQLite's default limit on bound parameters per statement is 32766; stay well below.
    const ROWS_PER_INSERT: usize = 500;

    fn sql(&self) -> &Sql {
        &self.sql
    }

    fn text(row: &SqliteRow, index: usize) -> Result<String, sqlx::Error> {
        row.try_get(index)
    }

    fn bind_execution<'q>(
        query: Bound<'q, Sqlite>,
        execution: &'q Execution,
        document: String,
    ) -> Bound<'q, Sqlite> {
        let state = &execution.state;
        let end = state.end_date();
        query
            .bind(execution.id.as_str())
            .bind(document)
            .bind(execution.namespace.as_str())
            .bind(execution.flow_id.as_str())
            .bind(state.current.as_str())
            .bind(sortable_date(state.start_date()))
            .bind(end.map(sortable_date))
            .bind(end.map(|e| e.duration_since(state.start_date()).as_secs_f64() * 1000.0))
    }

    async fn execute_built(
        tx: &mut Transaction<'static, Sqlite>,
        mut query: QueryBuilder<'_, Sqlite>,
    ) -> Result<(), sqlx::Error> {
        query.build().execute(&mut **tx).await.map(drop)
    }

    async fn fetch_built(
        tx: &mut Transaction<'static, Sqlite>,
        mut query: QueryBuilder<'_, Sqlite>,
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
        query.build().fetch_all(&mut **tx).await
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn queued_date(date: jiff::Timestamp) -> String {
        sortable_date(date)
    }

    /// `EXPLAIN QUERY PLAN`'s rows are `(id, parent, notused, detail)`: the details are
    /// the plan.
    fn plan_text(rows: &[SqliteRow]) -> Result<String> {
        let details = rows
            .iter()
            .map(|r| r.try_get::<String, _>(3))
            .collect::<Result<Vec<_>, _>>()
            .map_err(q::<Self>("read plan"))?;
        Ok(details.join("\n"))
    }

    fn version_label(version: String) -> String {
        format!("SQLite {version}")
    }
}

/// Dates as fixed-width text (`2024-01-02T03:04:05.123456Z`), so that text order is time
/// order: SQLite has no timestamp type, and RFC 3339 with a varying number of fractional
/// digits does not sort.
fn sortable_date(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
