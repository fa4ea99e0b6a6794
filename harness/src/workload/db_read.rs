//! What `e2e-webhook` reads from the database itself rather than through the server:
//!
//! * the executions of a flow, as Kestra's benchmark reads them: `state_current` and
//!   `state_duration` (milliseconds) from the executions table, and each execution's
//!   number of log lines;
//! * the database's own activity counters, so a run records what the server cost the
//!   database: commits, rollbacks and tuples read on PostgreSQL (`pg_stat_database`, for
//!   the run's own database), and `Com_commit`, `Com_rollback` and `Handler_read_*` on
//!   MySQL/MariaDB (`SHOW GLOBAL STATUS`: the server's totals, since MySQL keeps no
//!   counters per database; on a server nothing else uses, they are the run's).

use sqlx::{Connection, Row};

use super::{Result, WorkloadError};
use crate::scenario::Backend;

/// One execution of the flow, as the executions table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRow {
    pub id: String,
    pub state: String,
    /// Milliseconds from start to end; `None` while the execution runs.
    pub duration_ms: Option<f64>,
}

fn fail(what: &str, url: &str) -> impl Fn(sqlx::Error) -> WorkloadError {
    let url = orchestrator::repository::redact(url);
    let what = what.to_string();
    move |e| WorkloadError::Failed(format!("{what} on {url}: {e}"))
}

enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    Mysql(sqlx::MySqlConnection),
}

/// Evaluates `$body` with `$c` bound to whichever connection `$conn` holds.
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
            Conn::Mysql($c) => $body,
        }
    };
}

/// The statement for `backend`: PostgreSQL numbers its placeholders and MySQL needs its
/// binary-collated columns cast to text, so each has its own text.
fn dialect<'a>(backend: Backend, sqlite: &'a str, postgres: &'a str, mysql: &'a str) -> &'a str {
    match backend {
        Backend::Postgres => postgres,
        Backend::Mysql => mysql,
        _ => sqlite,
    }
}

async fn connect(backend: Backend, url: &str) -> Result<Conn> {
    let f = fail("connecting", url);
    Ok(match backend {
        Backend::Sqlite => Conn::Sqlite(sqlx::SqliteConnection::connect(url).await.map_err(f)?),
        Backend::Postgres => Conn::Postgres(sqlx::PgConnection::connect(url).await.map_err(f)?),
        Backend::Mysql => Conn::Mysql(sqlx::MySqlConnection::connect(url).await.map_err(f)?),
        Backend::Mssql => {
            return Err(WorkloadError::Skipped(
                "reading the executions table directly is not built for SQL Server".into(),
            ));
        }
    })
}

impl Conn {
    async fn close(self) {
        let _ = match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres(c) => c.close().await,
            Conn::Mysql(c) => c.close().await,
        };
    }
}

/// Kestra's states that are not terminal, as an SQL list.
const NOT_ENDED: &str =
    "('CREATED', 'SUBMITTED', 'RUNNING', 'PAUSED', 'RESTARTED', 'KILLING', 'QUEUED', 'RETRYING')";

/// How many executions of the flow have not ended. The server writes an execution's row
/// before it answers the request that created it, so once every request has answered,
/// zero means every accepted execution ended. The query reads only the unfinished rows'
/// index entries (`ix_executions_flow`), so waiting adds little to the run's counters.
pub async fn unfinished(
    backend: Backend,
    url: &str,
    namespace: &str,
    flow_id: &str,
) -> Result<u64> {
    let f = fail("counting unfinished executions", url);
    let mut conn = connect(backend, url).await?;
    let where_ = |p1: &str, p2: &str| {
        format!(
            "SELECT count(*) FROM executions WHERE namespace = {p1} AND flow_id = {p2} \
             AND state_current IN {NOT_ENDED}"
        )
    };
    let (plain, numbered) = (where_("?", "?"), where_("$1", "$2"));
    let sql = dialect(backend, &plain, &numbered, &plain);
    let n: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(sql)
        .bind(namespace)
        .bind(flow_id)
        .fetch_one(c)
        .await
        .map_err(&f)?);
    conn.close().await;
    Ok(n.max(0) as u64)
}

/// Every execution of the flow with its state and duration.
pub async fn executions(
    backend: Backend,
    url: &str,
    namespace: &str,
    flow_id: &str,
) -> Result<Vec<ExecutionRow>> {
    let f = fail("reading the executions table", url);
    let mut conn = connect(backend, url).await?;
    let sql = dialect(
        backend,
        r#"SELECT "key", state_current, state_duration FROM executions
           WHERE namespace = ? AND flow_id = ?"#,
        r#"SELECT "key"::text, state_current::text, state_duration FROM executions
           WHERE namespace = $1 AND flow_id = $2"#,
        "SELECT CAST(`key` AS CHAR), CAST(state_current AS CHAR), state_duration \
         FROM executions WHERE namespace = ? AND flow_id = ?",
    );
    let rows = with_conn!(&mut conn, c => sqlx::query(sql)
        .bind(namespace)
        .bind(flow_id)
        .fetch_all(c)
        .await
        .map_err(&f)?
        .iter()
        .map(row_of)
        .collect::<std::result::Result<Vec<_>, _>>());
    conn.close().await;
    rows.map_err(f)
}

fn row_of<R: Row>(row: &R) -> std::result::Result<ExecutionRow, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ExecutionRow {
        id: row.try_get(0)?,
        state: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
        duration_ms: row.try_get(2)?,
    })
}

/// The number of log lines of each execution of the flow that has any.
pub async fn log_lines(
    backend: Backend,
    url: &str,
    namespace: &str,
    flow_id: &str,
) -> Result<std::collections::HashMap<String, i64>> {
    let f = fail("counting log lines", url);
    let mut conn = connect(backend, url).await?;
    let sql = dialect(
        backend,
        "SELECT execution_id, count(*) FROM logs \
         WHERE namespace = ? AND flow_id = ? GROUP BY execution_id",
        "SELECT execution_id::text, count(*) FROM logs \
         WHERE namespace = $1 AND flow_id = $2 GROUP BY execution_id",
        "SELECT CAST(execution_id AS CHAR), count(*) FROM logs \
         WHERE namespace = ? AND flow_id = ? GROUP BY execution_id",
    );
    let counts: Vec<(String, i64)> = with_conn!(&mut conn, c => sqlx::query_as(sql)
        .bind(namespace)
        .bind(flow_id)
        .fetch_all(c)
        .await
        .map_err(&f)?);
    conn.close().await;
    Ok(counts.into_iter().collect())
}

/// A database's activity counters at one moment; subtract two to get a run's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DbCounters {
    pub commits: u64,
    pub rollbacks: u64,
    /// PostgreSQL `tup_fetched`: rows fetched by index scans (live rows only).
    pub tuples_fetched: Option<u64>,
    /// PostgreSQL `tup_returned`: rows read by sequential scans and index entries read.
    pub tuples_returned: Option<u64>,
    /// MySQL `Handler_read_*` summed: rows and index entries the storage engine read.
    pub rows_read: Option<u64>,
}

impl DbCounters {
    /// `self - earlier`, saturating at zero.
    pub fn since(&self, earlier: &DbCounters) -> DbCounters {
        let sub = |a: Option<u64>, b: Option<u64>| a.map(|a| a.saturating_sub(b.unwrap_or(0)));
        DbCounters {
            commits: self.commits.saturating_sub(earlier.commits),
            rollbacks: self.rollbacks.saturating_sub(earlier.rollbacks),
            tuples_fetched: sub(self.tuples_fetched, earlier.tuples_fetched),
            tuples_returned: sub(self.tuples_returned, earlier.tuples_returned),
            rows_read: sub(self.rows_read, earlier.rows_read),
        }
    }

    /// Each counter divided by `executions`, under the metric names the scenario declares.
    pub fn per_execution(&self, executions: u64) -> Vec<(&'static str, f64)> {
        if executions == 0 {
            return Vec::new();
        }
        let n = executions as f64;
        let mut out = vec![
            ("db_commits_per_execution", self.commits as f64 / n),
            ("db_rollbacks_per_execution", self.rollbacks as f64 / n),
        ];
        let optional = [
            ("db_tuples_fetched_per_execution", self.tuples_fetched),
            ("db_tuples_returned_per_execution", self.tuples_returned),
            ("db_rows_read_per_execution", self.rows_read),
        ];
        out.extend(
            optional
                .into_iter()
                .filter_map(|(name, v)| v.map(|v| (name, v as f64 / n))),
        );
        out
    }
}

/// The counters of the database `database` on the server `admin_url` reaches, once no
/// session is connected to it any more: PostgreSQL adds a session's counts to the shared
/// statistics when the session ends, so they are complete only then. `None` on SQLite.
pub async fn counters(
    backend: Backend,
    admin_url: &str,
    database: &str,
) -> Result<Option<DbCounters>> {
    let f = fail("reading the database's statistics", admin_url);
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(admin_url).await.map_err(&f)?;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let sessions: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                        .bind(database)
                        .fetch_one(&mut c)
                        .await
                        .map_err(&f)?;
                if sessions == 0 {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(WorkloadError::Failed(format!(
                        "{sessions} sessions still connected to {database} 30 s after its \
                         server stopped; its statistics would be incomplete"
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            sqlx::query("SELECT pg_stat_clear_snapshot()")
                .execute(&mut c)
                .await
                .map_err(&f)?;
            let row = sqlx::query(
                "SELECT xact_commit, xact_rollback, tup_fetched, tup_returned \
                 FROM pg_stat_database WHERE datname = $1",
            )
            .bind(database)
            .fetch_optional(&mut c)
            .await
            .map_err(&f)?;
            let _ = c.close().await;
            let Some(row) = row else {
                return Ok(Some(DbCounters::default()));
            };
            let get = |i: usize| -> Result<u64> {
                Ok(row.try_get::<i64, _>(i).map_err(&f)?.max(0) as u64)
            };
            Ok(Some(DbCounters {
                commits: get(0)?,
                rollbacks: get(1)?,
                tuples_fetched: Some(get(2)?),
                tuples_returned: Some(get(3)?),
                rows_read: None,
            }))
        }
        Backend::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(admin_url)
                .await
                .map_err(&f)?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT CAST(VARIABLE_NAME AS CHAR), CAST(VARIABLE_VALUE AS CHAR) \
                 FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME IN ('COM_COMMIT', 'COM_ROLLBACK') \
                    OR VARIABLE_NAME LIKE 'HANDLER\\_READ\\_%'",
            )
            .fetch_all(&mut c)
            .await
            .map_err(&f)?;
            let _ = c.close().await;
            let mut out = DbCounters {
                rows_read: Some(0),
                ..DbCounters::default()
            };
            for (name, value) in rows {
                let v: u64 = value.trim().parse().unwrap_or(0);
                match name.to_ascii_uppercase().as_str() {
                    "COM_COMMIT" => out.commits = v,
                    "COM_ROLLBACK" => out.rollbacks = v,
                    _ => *out.rows_read.get_or_insert(0) += v,
                }
            }
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

/// The database name at the end of a server URL (`…/name?options`).
pub fn database_name(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let name = path.split(['?', '#']).next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_come_from_the_url_path() {
        assert_eq!(
            database_name("postgres://u@h:5432/flowbench_1_2?sslmode=disable"),
            Some("flowbench_1_2")
        );
        assert_eq!(
            database_name("mysql://root@127.0.0.1:3306/test"),
            Some("test")
        );
        assert_eq!(database_name("postgres://u@h:5432"), None);
        assert_eq!(database_name("postgres://u@h:5432/"), None);
    }

    #[test]
    fn counters_per_execution_leave_out_what_the_backend_lacks() {
        let before = DbCounters {
            commits: 10,
            rollbacks: 1,
            tuples_fetched: Some(100),
            tuples_returned: Some(1000),
            rows_read: None,
        };
        let after = DbCounters {
            commits: 30,
            rollbacks: 1,
            tuples_fetched: Some(300),
            tuples_returned: Some(1400),
            rows_read: None,
        };
        let per = after.since(&before).per_execution(10);
        assert_eq!(
            per,
            vec![
                ("db_commits_per_execution", 2.0),
                ("db_rollbacks_per_execution", 0.0),
                ("db_tuples_fetched_per_execution", 20.0),
                ("db_tuples_returned_per_execution", 40.0),
            ]
        );
        assert!(after.per_execution(0).is_empty());
    }

    #[test]
    fn the_unfinished_list_is_every_state_that_is_not_terminal() {
        use orchestrator::model::StateType;
        let all = [
            "CREATED",
            "SUBMITTED",
            "RUNNING",
            "PAUSED",
            "RESTARTED",
            "KILLING",
            "SUCCESS",
            "WARNING",
            "FAILED",
            "KILLED",
            "CANCELLED",
            "QUEUED",
            "RETRYING",
            "RETRIED",
            "SKIPPED",
        ];
        for name in all {
            let state: StateType =
                serde_json::from_value(serde_json::Value::String(name.into())).unwrap();
            assert_eq!(
                NOT_ENDED.contains(&format!("'{name}'")),
                !state.is_terminal(),
                "{name}"
            );
        }
    }
}
