//! The MySQL / MariaDB dialect (MySQL 8, MariaDB 10.6+ for `SKIP LOCKED`): JSON documents
//! with STORED generated columns, `FOR UPDATE SKIP LOCKED` queue polls, and
//! `ON DUPLICATE KEY UPDATE` upserts (Kestra's `MysqlQueue`).
//!
//! Neither server has `UPDATE … RETURNING` (MariaDB has it for DELETE and INSERT only), so a
//! poll selects the rows for update and then marks them. Sessions run at READ COMMITTED, as
//! a queue wants: InnoDB's default REPEATABLE READ would take gap locks on the scanned index
//! ranges and make producers' inserts wait on consumers.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{
    MySqlConnectOptions, MySqlPoolOptions, MySqlQueryResult, MySqlRow, MySqlTypeInfo, MySqlValueRef,
};
use sqlx::{
    Connection as _, Executor as _, MySql, MySqlConnection, MySqlPool, QueryBuilder, Row,
    Transaction,
};

use super::dialect::{Bound, Dialect, Poll, Sql, q, queued_pop};
use super::search::SearchSyntax;
use super::store::SqlxStore;
use super::{Error, Notifier, Result};
use crate::knobs::{Knobs, QueuedIndex};
use crate::model::Execution;

/// MySQL's and MariaDB's SQL.
pub(crate) struct MysqlDialect {
    sql: Sql,
}

/// Connects to a `mysql://` (or `mariadb://`) URL and migrates the database it names.
pub(crate) async fn connect(url: &str, knobs: &Knobs) -> Result<SqlxStore<MysqlDialect>> {
    const BACKEND: &str = MysqlDialect::BACKEND;
    let target = super::redact(url);
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let options = MySqlConnectOptions::from_str(&url)
        .map_err(|e| super::unreachable(BACKEND, &target, &e))?
        .charset("utf8mb4");
    let first =
        super::first_connection(BACKEND, &target, MySqlConnection::connect_with(&options)).await?;
    let _ = first.close().await;
    let pool = MySqlPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| super::unreachable(BACKEND, &target, &e))?;
    sqlx::migrate!("./migrations/mysql")
        .run(&pool)
        .await
        .map_err(|source| Error::Migrate {
            backend: BACKEND,
            source,
        })?;
    set_queued_index(&pool, knobs.queued_index).await?;
    Ok(SqlxStore::new(
        pool.clone(),
        pool,
        knobs.json_mapping,
        Arc::new(Notifier::default()),
        MysqlDialect {
            sql: sql(knobs.queued_index),
        },
    ))
}

/// The `queued.index` knob picks the index `execution_queued` pops with. MySQL 8 has no
/// `CREATE INDEX IF NOT EXISTS`, so the catalogue is read first; a named lock keeps processes
/// that start together from racing (DDL commits implicitly here, so a transaction cannot).
async fn set_queued_index(pool: &MySqlPool, index: QueuedIndex) -> Result<()> {
    let pop = queued_pop(index);
    let q = q::<MysqlDialect>;
    let mut conn = pool.acquire().await.map_err(q("connect"))?;
    sqlx::query("SELECT GET_LOCK('flowbench.queued_index', 60)")
        .execute(&mut *conn)
        .await
        .map_err(q("lock queued index"))?;
    let result = async {
        let existing: Vec<(Text,)> = sqlx::query_as(
            "SELECT DISTINCT CAST(index_name AS CHAR) FROM information_schema.statistics
             WHERE table_schema = DATABASE() AND table_name = 'execution_queued'",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(q("read queued indexes"))?;
        let has = |name: &str| existing.iter().any(|(n,)| &**n == name);
        // The names are the constants of `queued_pop`.
        if has(pop.dropped) {
            sqlx::query(&format!("DROP INDEX {} ON execution_queued", pop.dropped))
                .execute(&mut *conn)
                .await
                .map_err(q("drop queued index"))?;
        }
        if !has(pop.index) {
            sqlx::query(&format!(
                "CREATE INDEX {} ON execution_queued ({})",
                pop.index,
                pop.columns.join(", ")
            ))
            .execute(&mut *conn)
            .await
            .map_err(q("create queued index"))?;
        }
        Ok(())
    }
    .await;
    let _ = sqlx::query("SELECT RELEASE_LOCK('flowbench.queued_index')")
        .execute(&mut *conn)
        .await;
    result
}

/// MySQL's statements for this `queued.index` setting. Documents are JSON columns read as
/// text, decoded by the `jdbc.json-mapping` knob's path.
///
/// The pop is the select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop` on MySQL, as
/// jOOQ renders it: the flow's oldest row in the tenant, locked ([`queued_pop`]), its `value`
/// read (and its key, which Kestra recomputes from the document). Then the row is deleted by
/// key in the same transaction. The tenant condition is Kestra's `buildTenantCondition`:
/// `tenant_id IS NULL` without a tenant (OSS), `tenant_id = ?` with one. The limit is bound,
/// as jOOQ binds it.
fn sql(index: QueuedIndex) -> Sql {
    let lock = queued_pop(index).lock();
    Sql {
        executions_of_flow: "SELECT `key`, `value` FROM executions WHERE namespace = ? AND flow_id = ?".into(),
        execution: "SELECT `value` FROM executions WHERE `key` = ?".into(),
        logs: "SELECT `key`, `value` FROM logs WHERE execution_id = ? ORDER BY `timestamp`, `key`"
            .into(),
        flow: "SELECT revision, source FROM flows WHERE namespace = ? AND id = ?",
        flows: "SELECT source FROM flows ORDER BY `key`",
        counts: "SELECT
                (SELECT COUNT(*) FROM executions),
                (SELECT COUNT(*) FROM executions WHERE end_date IS NOT NULL),
                (SELECT COUNT(*) FROM logs),
                (SELECT COUNT(*) FROM queues WHERE consumed = FALSE),
                (SELECT COUNT(*) FROM worker_job_running)",
        clean_queue: "DELETE FROM queues WHERE consumed = TRUE AND (`type` <> 'execution_killed' OR updated < CURRENT_TIMESTAMP(6) - INTERVAL 60 SECOND)",
        kills_after: "SELECT `offset`, `type`, `key`, `value` FROM queues WHERE `type` = 'execution_killed' AND `offset` > ? ORDER BY `offset` LIMIT ?",
        version: "SELECT VERSION()",
        analyze_queued: "ANALYZE TABLE execution_queued",
        explain: "EXPLAIN ",
        // Neither server has `UPDATE … RETURNING`: the poll locks the rows, then
        // `mark_polled` marks them. FORCE INDEX: for `ORDER BY offset LIMIT n` the optimizer
        // otherwise walks the primary key through every consumed row not yet cleaned,
        // whatever the statistics; (type, consumed, offset) reads the unconsumed rows of
        // these types alone, in one range per type, and sorts them. MySQL and MariaDB have
        // no partial index.
        poll: Poll::InList {
            head: "SELECT `offset`, `type`, `key`, `value` FROM queues FORCE INDEX (ix_queues_poll) WHERE consumed = FALSE AND `type` IN (",
            limit: ") ORDER BY `offset` LIMIT ",
            end: " FOR UPDATE SKIP LOCKED",
        },
        mark_polled: Some("UPDATE queues SET consumed = TRUE WHERE `offset` IN ("),
        push: "INSERT INTO queues (`type`, `key`, `value`) ",
        push_consumed: "INSERT INTO queues (`type`, `key`, `value`, consumed) ",
        json_cast: "",
        true_literal: "TRUE",
        // FOR UPDATE: two executors never process one execution at once.
        search: SearchSyntax {
            select: "SELECT `key`, `value` FROM executions".into(),
            key: "`key`",
            count: "COUNT(*)",
            placeholder: |_| "?".into(),
            // The date columns are UTC `DATETIME(6)`s.
            date: |p| p.to_string(),
            date_value: datetime,
            label: |k, v| format!("JSON_CONTAINS(`value`, JSON_OBJECT('key', {k}, 'value', {v}), '$.labels')"),
            page: |limit, offset| format!("LIMIT {limit} OFFSET {offset}"),
        },
        delete_execution: "DELETE FROM executions WHERE `key` = ?",
        delete_logs: "DELETE FROM logs WHERE execution_id = ?",
        load_execution: "SELECT `value` FROM executions WHERE `key` = ? FOR UPDATE".into(),
        save_execution: "INSERT INTO executions (`key`, `value`) VALUES (?, ?)
             ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)",
        count_running: "SELECT COUNT(*) FROM executions WHERE namespace = ? AND flow_id = ? AND state_current IN (?, ?, ?, ?, ?)",
        queued_push: "INSERT IGNORE INTO execution_queued (`key`, `value`, tenant_id, namespace, flow_id, date)
             VALUES (?, ?, ?, ?, ?, ?)",
        queued_pop: [
            format!(
                "SELECT `key`, `value` FROM execution_queued WHERE tenant_id = ? AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ? {lock}"
            ),
            format!(
                "SELECT `key`, `value` FROM execution_queued WHERE tenant_id IS NULL AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ? {lock}"
            ),
        ],
        queued_delete: "DELETE FROM execution_queued WHERE `key` = ?",
        delay_push: "INSERT INTO executordelayed (`key`, `value`, date_ms) VALUES (?, ?, ?)
             ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), date_ms = VALUES(date_ms)",
        delays_due: "SELECT `key`, `value` FROM executordelayed WHERE date_ms <= ? ORDER BY date_ms LIMIT ? FOR UPDATE SKIP LOCKED",
        delay_delete: "DELETE FROM executordelayed WHERE `key` = ?",
        trigger_insert: "INSERT IGNORE INTO triggers (`key`, `value`, next_ms) VALUES (?, ?, ?)",
        trigger_lock: "SELECT `value` FROM triggers WHERE `key` = ? FOR UPDATE",
        trigger_put: "UPDATE triggers SET `value` = ?, next_ms = ? WHERE `key` = ?",
        multiple_condition_insert: "INSERT IGNORE INTO multipleconditions (`key`, `value`, end_ms) VALUES (?, ?, ?)",
        multiple_condition_lock: "SELECT `value` FROM multipleconditions WHERE `key` = ? FOR UPDATE",
        multiple_condition_put: "UPDATE multipleconditions SET `value` = ?, end_ms = ? WHERE `key` = ?",
        multiple_condition_delete: "DELETE FROM multipleconditions WHERE `key` = ?",
        multiple_conditions_purge: "DELETE FROM multipleconditions WHERE end_ms < ?",
        insert_logs: "INSERT INTO logs (`key`, `value`) ",
        insert_logs_end: " ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)",
        lock_flow: "SELECT revision, source FROM flows WHERE `key` = ? FOR UPDATE",
        put_flow: "INSERT INTO flows (`key`, namespace, id, revision, source) VALUES (?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE revision = VALUES(revision), source = VALUES(source)",
        heartbeat: "INSERT INTO service_instance (id, kind, heartbeat_ms) VALUES (?, ?, ?)
             ON DUPLICATE KEY UPDATE heartbeat_ms = VALUES(heartbeat_ms)",
        remove_instance: "DELETE FROM service_instance WHERE id = ?",
        dead_instances: "SELECT id FROM service_instance WHERE kind = ? AND heartbeat_ms < ?",
        jobs_started: "INSERT INTO worker_job_running (`key`, worker_id, `value`) ",
        jobs_started_end: " ON DUPLICATE KEY UPDATE worker_id = VALUES(worker_id)",
        jobs_finished: "DELETE FROM worker_job_running WHERE `key` IN (",
        // MySQL has no `DELETE … RETURNING` (MariaDB has).
        take_jobs: "SELECT `key`, `value` FROM worker_job_running WHERE worker_id = ? FOR UPDATE",
        take_jobs_delete: Some("DELETE FROM worker_job_running WHERE worker_id = ?"),
    }
}

#[async_trait]
impl Dialect for MysqlDialect {
    type DB = MySql;
    const BACKEND: &'static str = "mysql";
    /// MySQL allows 65535 bound parameters per statement; stay well below.
    const ROWS_PER_INSERT: usize = 1000;

    fn sql(&self) -> &Sql {
        &self.sql
    }

    fn text(row: &MySqlRow, index: usize) -> Result<String, sqlx::Error> {
        row.try_get::<Text, _>(index).map(|t| t.0)
    }

    fn bind_execution<'q>(
        query: Bound<'q, MySql>,
        execution: &'q Execution,
        document: String,
    ) -> Bound<'q, MySql> {
        query.bind(execution.id.as_str()).bind(document)
    }

    async fn execute_built(
        tx: &mut Transaction<'static, MySql>,
        mut query: QueryBuilder<'_, MySql>,
    ) -> Result<(), sqlx::Error> {
        query.build().execute(&mut **tx).await.map(drop)
    }

    async fn fetch_built(
        tx: &mut Transaction<'static, MySql>,
        mut query: QueryBuilder<'_, MySql>,
    ) -> Result<Vec<MySqlRow>, sqlx::Error> {
        query.build().fetch_all(&mut **tx).await
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn queued_date(date: jiff::Timestamp) -> String {
        datetime(date)
    }

    async fn queue_rows_read(conn: &mut MySqlConnection) -> Result<Option<u64>> {
        handler_reads(conn).await.map(Some)
    }

    fn plan_text(rows: &[MySqlRow]) -> Result<String> {
        Ok(plan_lines(rows))
    }

    fn version_label(version: String) -> String {
        if version.contains("MariaDB") {
            format!("MariaDB {version}")
        } else {
            format!("MySQL {version}")
        }
    }
}

/// The session's `Handler_read_*` counters summed: every row read by a handler call
/// (first, key, last, next, prev, rnd, rnd_next) in this connection so far.
async fn handler_reads(conn: &mut MySqlConnection) -> Result<u64> {
    let rows: Vec<(Text, Text)> = sqlx::query_as("SHOW SESSION STATUS LIKE 'Handler_read%'")
        .fetch_all(conn)
        .await
        .map_err(q::<MysqlDialect>(
            "read the session's Handler_read counters",
        ))?;
    Ok(rows
        .iter()
        .filter(|(name, _)| !name.0.eq_ignore_ascii_case("Handler_read_retry"))
        .filter_map(|(_, value)| value.0.parse::<u64>().ok())
        .sum())
}

/// `EXPLAIN`'s rows as `column=value | …` lines (its columns differ between MySQL and
/// MariaDB, so they are read by name; NULL cells are left out).
fn plan_lines(rows: &[MySqlRow]) -> String {
    use sqlx::Column as _;
    rows.iter()
        .map(|r| {
            r.columns()
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let cell = match r.try_get::<Option<Text>, _>(i) {
                        Ok(v) => v.map(|t| t.0),
                        Err(_) => match r.try_get::<Option<i64>, _>(i) {
                            Ok(v) => v.map(|n| n.to_string()),
                            Err(_) => match r.try_get::<Option<u64>, _>(i) {
                                Ok(v) => v.map(|n| n.to_string()),
                                Err(_) => r
                                    .try_get::<Option<f64>, _>(i)
                                    .ok()
                                    .flatten()
                                    .map(|f| f.to_string()),
                            },
                        },
                    };
                    cell.map(|v| format!("{}={v}", c.name()))
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text from a column with a binary collation. sqlx reports `utf8mb4_bin` columns as BLOB and
/// refuses them as `String`; the bytes are UTF-8 all the same.
struct Text(String);

impl sqlx::Type<MySql> for Text {
    fn type_info() -> MySqlTypeInfo {
        <String as sqlx::Type<MySql>>::type_info()
    }

    fn compatible(ty: &MySqlTypeInfo) -> bool {
        <String as sqlx::Type<MySql>>::compatible(ty)
            || <Vec<u8> as sqlx::Type<MySql>>::compatible(ty)
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'r> sqlx::Decode<'r, MySql> for Text {
    fn decode(value: MySqlValueRef<'r>) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        let bytes = <&[u8] as sqlx::Decode<MySql>>::decode(value)?;
        Ok(Text(std::str::from_utf8(bytes)?.to_string()))
    }
}

/// DATETIME(6) text for a bound date.
fn datetime(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_dates_have_six_fractional_digits() {
        let t: jiff::Timestamp = "2024-01-02T03:04:05.123456789Z".parse().unwrap();
        assert_eq!(datetime(t), "2024-01-02 03:04:05.123456");
        let t: jiff::Timestamp = "2024-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(datetime(t), "2024-01-02 03:04:05.000000");
    }
}
