//! The SQLite dialect: the embedded default, playing H2's role in Kestra.
//!
//! SQLite has one writer at a time and no `SKIP LOCKED`, so every write transaction goes
//! through a pool of exactly one connection (the single-writer transaction DESIGN.md names),
//! while reads use a separate pool in WAL mode and never block on writers.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use super::{
    Counts, Error, ExecutionQueued, Message, Notifier, Polled, PopPlan, QueueType, Result, Store,
    Tx, decode,
};
use crate::knobs::{JsonMapping, Knobs, QueuedIndex};
use crate::model::{Execution, LogEntry};

const BACKEND: &str = "sqlite";
/// SQLite's default limit on bound parameters per statement is 32766; stay well below.
const ROWS_PER_INSERT: usize = 500;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    mapping: JsonMapping,
    notifier: Notifier,
}

fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query {
        backend: BACKEND,
        op,
        source,
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `sqlite://PATH`, or a fresh temporary file for plain
    /// `sqlite`, and migrates it.
    pub async fn connect(url: &str, knobs: &Knobs) -> Result<Self> {
        let url = if url == "sqlite" {
            // An in-memory database is per connection; two pools need a real file.
            let dir = std::env::temp_dir().join(format!("flowbench-{}", crate::model::new_id()));
            std::fs::create_dir_all(&dir).ok();
            format!("sqlite://{}", dir.join("flowbench.db").display())
        } else {
            url.to_string()
        };
        let connect_err = |source| Error::Connect {
            backend: BACKEND,
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
                backend: BACKEND,
                source,
            })?;
        // The `queued.index` knob picks the index execution_queued pops with.
        let (keep, drop) = match knobs.queued_index {
            QueuedIndex::Flow => (
                "CREATE INDEX IF NOT EXISTS ix_execution_queued_flow ON execution_queued (tenant_id, namespace, flow_id)",
                "DROP INDEX IF EXISTS ix_execution_queued_flow_date",
            ),
            QueuedIndex::FlowDate => (
                "CREATE INDEX IF NOT EXISTS ix_execution_queued_flow_date ON execution_queued (tenant_id, namespace, flow_id, date)",
                "DROP INDEX IF EXISTS ix_execution_queued_flow",
            ),
        };
        sqlx::query(drop)
            .execute(&write)
            .await
            .map_err(q("drop queued index"))?;
        sqlx::query(keep)
            .execute(&write)
            .await
            .map_err(q("create queued index"))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(120))
            .connect_with(options.read_only(true))
            .await
            .map_err(connect_err)?;
        Ok(SqliteStore {
            write,
            read,
            mapping: knobs.json_mapping,
            notifier: Notifier::default(),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn begin_tx(&self) -> Result<Box<dyn Tx>> {
        let tx = self.write.begin().await.map_err(q("begin"))?;
        Ok(Box::new(SqliteTx {
            tx,
            mapping: self.mapping,
        }))
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>> {
        let row: Option<(String,)> =
            sqlx::query_as(r#"SELECT value FROM executions WHERE "key" = ?"#)
                .bind(id)
                .fetch_optional(&self.read)
                .await
                .map_err(q("read execution"))?;
        row.map(|(v,)| decode_execution(self.mapping, id, &v))
            .transpose()
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            r#"SELECT "key", value FROM logs WHERE execution_id = ? ORDER BY timestamp, "key""#,
        )
        .bind(execution_id)
        .fetch_all(&self.read)
        .await
        .map_err(q("read logs"))?;
        rows.into_iter()
            .map(|(k, v)| {
                serde_json::from_str(&v).map_err(|source| Error::Decode {
                    backend: BACKEND,
                    what: "log",
                    key: k,
                    source,
                })
            })
            .collect()
    }

    async fn flow(&self, namespace: &str, id: &str) -> Result<Option<(i32, String)>> {
        sqlx::query_as("SELECT revision, source FROM flows WHERE namespace = ? AND id = ?")
            .bind(namespace)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(q("read flow"))
    }

    async fn flows(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT source FROM flows ORDER BY \"key\"")
            .fetch_all(&self.read)
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
                (SELECT COUNT(*) FROM queues WHERE consumed = 0),
                (SELECT COUNT(*) FROM worker_job_running)"#,
        )
        .fetch_one(&self.read)
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
        let r = sqlx::query("DELETE FROM queues WHERE consumed = 1")
            .execute(&self.write)
            .await
            .map_err(q("clean queue"))?;
        Ok(r.rows_affected())
    }

    async fn version(&self) -> Result<String> {
        let (v,): (String,) = sqlx::query_as("SELECT sqlite_version()")
            .fetch_one(&self.read)
            .await
            .map_err(q("read version"))?;
        Ok(format!("SQLite {v}"))
    }

    async fn analyze_queued(&self) -> Result<()> {
        sqlx::query("ANALYZE execution_queued")
            .execute(&self.write)
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
        let statement = pop_select(tenant.is_none());
        let explain = format!("EXPLAIN QUERY PLAN {statement}");
        // (id, parent, notused, detail): the detail lines are the plan. On the writer
        // connection, which pops and which ran ANALYZE, so it plans with the same statistics.
        let rows: Vec<(i64, i64, i64, String)> =
            bind_pop(sqlx::query_as(&explain), tenant, namespace, flow_id)
                .fetch_all(&self.write)
                .await
                .map_err(q("explain the queued pop"))?;
        Ok(PopPlan {
            statement: statement.to_string(),
            plan: rows
                .into_iter()
                .map(|(.., detail)| detail)
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }
}

fn decode_execution(mapping: JsonMapping, key: &str, text: &str) -> Result<Execution> {
    decode(mapping, text).map_err(|source| Error::Decode {
        backend: BACKEND,
        what: "execution",
        key: key.to_string(),
        source,
    })
}

/// The select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop` (commit c74540b3a, #2371),
/// then a delete by key in the same transaction. Kestra's embedded H2 locks the row
/// `FOR UPDATE` (and, after 34fa6ce91, `SKIP LOCKED`); SQLite has no row locks: every write
/// transaction here runs on the one writer connection, so pops never overlap and both
/// `queued.index` settings pop the same way; only the index differs. The tenant condition is
/// Kestra's `buildTenantCondition`: `tenant_id IS NULL` without a tenant (OSS), `tenant_id =
/// ?` with one. The limit is bound, as jOOQ binds it.
fn pop_select(null_tenant: bool) -> &'static str {
    if null_tenant {
        r#"SELECT "key", value FROM execution_queued WHERE tenant_id IS NULL AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ?"#
    } else {
        r#"SELECT "key", value FROM execution_queued WHERE tenant_id = ? AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ?"#
    }
}

/// Binds the pop's values in [`pop_select`]'s order.
fn bind_pop<'q, O>(
    query: sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>,
    tenant: Option<&'q str>,
    namespace: &'q str,
    flow_id: &'q str,
) -> sqlx::query::QueryAs<'q, Sqlite, O, sqlx::sqlite::SqliteArguments<'q>> {
    let query = match tenant {
        Some(t) => query.bind(t),
        None => query,
    };
    query.bind(namespace).bind(flow_id).bind(1_i64)
}

/// Dates as fixed-width text (`2024-01-02T03:04:05.123456Z`), so that text order is time
/// order: SQLite has no timestamp type, and RFC 3339 with a varying number of fractional
/// digits does not sort.
fn sortable_date(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    mapping: JsonMapping,
}

#[async_trait]
impl Tx for SqliteTx {
    async fn poll(&mut self, kinds: &[QueueType], limit: usize) -> Result<Vec<Polled>> {
        // INDEXED BY: once ANALYZE has seen a queue of mostly consumed rows, the planner
        // prefers scanning the whole table; (type, consumed, offset) reads the unconsumed
        // rows of these types alone, whatever the queue's history. (SQLite fails the
        // statement rather than ignore the index.)
        let mut qb = QueryBuilder::<Sqlite>::new(
            r#"UPDATE queues SET consumed = 1 WHERE "offset" IN (SELECT "offset" FROM queues INDEXED BY ix_queues_poll WHERE consumed = 0 AND type IN ("#,
        );
        let mut sep = qb.separated(", ");
        for k in kinds {
            sep.push_bind(k.as_str());
        }
        qb.push(r#") ORDER BY "offset" LIMIT "#);
        qb.push_bind(limit as i64);
        qb.push(r#") RETURNING "offset", type, "key", value"#);
        let rows = qb
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(q("poll queue"))?;
        Ok(Polled::in_offset_order(rows.iter().map(|r| {
            (r.get(0), r.get::<&str, _>(1), r.get(2), r.get(3))
        })))
    }

    async fn push(&mut self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new(r#"INSERT INTO queues (type, "key", value) "#);
            qb.push_values(chunk, |mut b, m| {
                b.push_bind(m.kind.as_str())
                    .push_bind(&m.key)
                    .push_bind(&m.value);
            });
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("push to queue"))?;
        }
        Ok(())
    }

    async fn push_consumed(&mut self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                r#"INSERT INTO queues (type, "key", value, consumed) "#,
            );
            qb.push_values(chunk, |mut b, m| {
                b.push_bind(m.kind.as_str())
                    .push_bind(&m.key)
                    .push_bind(&m.value)
                    .push("1");
            });
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("push to queue"))?;
        }
        Ok(())
    }

    async fn load_execution(&mut self, id: &str) -> Result<Option<Execution>> {
        let row: Option<(String,)> =
            sqlx::query_as(r#"SELECT value FROM executions WHERE "key" = ?"#)
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(q("load execution"))?;
        row.map(|(v,)| decode_execution(self.mapping, id, &v))
            .transpose()
    }

    async fn save_execution(&mut self, execution: &Execution) -> Result<()> {
        let value = serde_json::to_string(execution).expect("an execution always serializes");
        // The indexed columns are written beside the document (migration 0003), in the
        // document's own spelling, rather than extracted from it by SQLite on every save.
        let state = &execution.state;
        let end = state.end_date();
        sqlx::query(
            r#"INSERT INTO executions ("key", value, namespace, flow_id, state_current,
                                       start_date, end_date, state_duration)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT ("key") DO UPDATE SET value = excluded.value,
                   namespace = excluded.namespace, flow_id = excluded.flow_id,
                   state_current = excluded.state_current, start_date = excluded.start_date,
                   end_date = excluded.end_date, state_duration = excluded.state_duration"#,
        )
        .bind(&execution.id)
        .bind(value)
        .bind(&execution.namespace)
        .bind(&execution.flow_id)
        .bind(state.current.as_str())
        .bind(state.start_date().to_string())
        .bind(end.map(|e| e.to_string()))
        .bind(end.map(|e| e.duration_since(state.start_date()).as_secs_f64() * 1000.0))
        .execute(&mut *self.tx)
        .await
        .map_err(q("save execution"))?;
        Ok(())
    }

    async fn count_running(&mut self, namespace: &str, flow_id: &str) -> Result<i64> {
        let s = super::running_state_names();
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM executions WHERE namespace = ? AND flow_id = ? AND state_current IN (?, ?, ?, ?, ?)",
        )
        .bind(namespace)
        .bind(flow_id)
        .bind(s[0])
        .bind(s[1])
        .bind(s[2])
        .bind(s[3])
        .bind(s[4])
        .fetch_one(&mut *self.tx)
        .await
        .map_err(q("count running executions"))?;
        Ok(n)
    }

    async fn queued_push(&mut self, queued: &ExecutionQueued) -> Result<()> {
        sqlx::query(
            r#"INSERT INTO execution_queued ("key", value, tenant_id, namespace, flow_id, date)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT ("key") DO NOTHING"#,
        )
        .bind(queued.uid())
        .bind(queued.to_json())
        .bind(queued.tenant_id.as_deref())
        .bind(&queued.namespace)
        .bind(&queued.flow_id)
        .bind(sortable_date(queued.date))
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
        let row: Option<(String, String)> = bind_pop(
            sqlx::query_as(pop_select(tenant.is_none())),
            tenant,
            namespace,
            flow_id,
        )
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(q("pop queued execution"))?;
        let Some((key, value)) = row else {
            return Ok(None);
        };
        let queued: ExecutionQueued =
            super::decode_doc(BACKEND, self.mapping, "queued execution", &key, &value)?;
        sqlx::query(r#"DELETE FROM execution_queued WHERE "key" = ?"#)
            .bind(&key)
            .execute(&mut *self.tx)
            .await
            .map_err(q("pop queued execution"))?;
        Ok(Some(queued.execution))
    }

    async fn insert_logs(&mut self, logs: &[LogEntry]) -> Result<()> {
        for chunk in logs.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new(r#"INSERT INTO logs ("key", value) "#);
            qb.push_values(chunk, |mut b, l| {
                b.push_bind(&l.id)
                    .push_bind(serde_json::to_string(l).expect("a log entry always serializes"));
            });
            qb.push(r#" ON CONFLICT ("key") DO UPDATE SET value = excluded.value"#);
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("insert logs"))?;
        }
        Ok(())
    }

    async fn lock_flow(&mut self, key: &str) -> Result<Option<(i32, String)>> {
        let current: Option<(i32, String)> =
            sqlx::query_as(r#"SELECT revision, source FROM flows WHERE "key" = ?"#)
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
            r#"INSERT INTO flows ("key", namespace, id, revision, source) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT ("key") DO UPDATE SET revision = excluded.revision, source = excluded.source"#,
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
            "INSERT INTO service_instance (id, kind, heartbeat_ms) VALUES (?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
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
        sqlx::query("DELETE FROM service_instance WHERE id = ?")
            .bind(instance)
            .execute(&mut *self.tx)
            .await
            .map_err(q("remove instance"))?;
        Ok(())
    }

    async fn dead_instances(&mut self, kind: &str, older_than_ms: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM service_instance WHERE kind = ? AND heartbeat_ms < ?")
                .bind(kind)
                .bind(older_than_ms)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(q("find dead instances"))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn jobs_started(&mut self, worker: &str, jobs: &[(&str, &str)]) -> Result<()> {
        for chunk in super::distinct_jobs(jobs).chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                r#"INSERT INTO worker_job_running ("key", worker_id, value) "#,
            );
            qb.push_values(chunk, |mut b, (key, value)| {
                b.push_bind(*key).push_bind(worker).push_bind(*value);
            });
            qb.push(r#" ON CONFLICT ("key") DO UPDATE SET worker_id = excluded.worker_id"#);
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("record running jobs"))?;
        }
        Ok(())
    }

    async fn jobs_finished(&mut self, keys: &[String]) -> Result<()> {
        for chunk in keys.chunks(ROWS_PER_INSERT) {
            let mut qb =
                QueryBuilder::<Sqlite>::new(r#"DELETE FROM worker_job_running WHERE "key" IN ("#);
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind(k);
            }
            qb.push(")");
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("clear finished jobs"))?;
        }
        Ok(())
    }

    async fn take_jobs(&mut self, worker: &str) -> Result<Vec<(String, String)>> {
        sqlx::query_as(
            r#"DELETE FROM worker_job_running WHERE worker_id = ? RETURNING "key", value"#,
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
