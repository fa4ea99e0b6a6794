//! The MySQL / MariaDB dialect (MySQL 8, MariaDB 10.6+ for `SKIP LOCKED`): JSON documents
//! with STORED generated columns, `FOR UPDATE SKIP LOCKED` queue polls, and
//! `ON DUPLICATE KEY UPDATE` upserts (Kestra's `MysqlQueue`).
//!
//! Neither server has `UPDATE … RETURNING` (MariaDB has it for DELETE and INSERT only), so a
//! poll selects the rows for update and then marks them. Sessions run at READ COMMITTED, as
//! a queue wants: InnoDB's default REPEATABLE READ would take gap locks on the scanned index
//! ranges and make producers' inserts wait on consumers.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlTypeInfo, MySqlValueRef};
use sqlx::{
    Connection as _, Executor as _, MySql, MySqlConnection, MySqlPool, QueryBuilder, Row,
    Transaction,
};

use super::{
    Counts, Error, ExecutionQueued, Message, Notifier, Polled, PopPlan, QueueType, Result, Store,
    Tx,
};
use crate::knobs::{JsonMapping, Knobs, QueuedIndex};
use crate::model::{Execution, LogEntry};

const BACKEND: &str = "mysql";
/// MySQL allows 65535 bound parameters per statement; stay well below.
const ROWS_PER_INSERT: usize = 1000;

pub struct MysqlStore {
    pool: MySqlPool,
    mapping: JsonMapping,
    queued_index: QueuedIndex,
    notifier: Notifier,
}

fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Query {
        backend: BACKEND,
        op,
        source,
    }
}

impl MysqlStore {
    /// A transaction with this store's settings: what [`Store::begin`] boxes.
    async fn transaction(&self) -> Result<MysqlTx> {
        Ok(MysqlTx {
            tx: self.pool.begin().await.map_err(q("begin"))?,
            mapping: self.mapping,
            queued_index: self.queued_index,
        })
    }

    /// Connects to a `mysql://` (or `mariadb://`) URL and migrates the database it names.
    pub async fn connect(url: &str, knobs: &Knobs) -> Result<Self> {
        let target = super::redact(url);
        let url = match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => url.to_string(),
        };
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|e| super::unreachable(BACKEND, &target, &e))?
            .charset("utf8mb4");
        let first =
            super::first_connection(BACKEND, &target, MySqlConnection::connect_with(&options))
                .await?;
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
        Ok(MysqlStore {
            pool,
            mapping: knobs.json_mapping,
            queued_index: knobs.queued_index,
            notifier: Notifier::default(),
        })
    }
}

/// The `queued.index` knob picks the index `execution_queued` pops with. MySQL 8 has no
/// `CREATE INDEX IF NOT EXISTS`, so the catalogue is read first; a named lock keeps processes
/// that start together from racing (DDL commits implicitly here, so a transaction cannot).
async fn set_queued_index(pool: &MySqlPool, index: QueuedIndex) -> Result<()> {
    let (keep, keep_ddl, drop) = match index {
        QueuedIndex::Flow => (
            "ix_execution_queued_flow",
            "CREATE INDEX ix_execution_queued_flow ON execution_queued (tenant_id, namespace, flow_id)",
            "ix_execution_queued_flow_date",
        ),
        QueuedIndex::FlowDate => (
            "ix_execution_queued_flow_date",
            "CREATE INDEX ix_execution_queued_flow_date ON execution_queued (tenant_id, namespace, flow_id, date)",
            "ix_execution_queued_flow",
        ),
    };
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
        if has(drop) {
            // `drop` is one of the two constant names above.
            sqlx::query(&format!("DROP INDEX {drop} ON execution_queued"))
                .execute(&mut *conn)
                .await
                .map_err(q("drop queued index"))?;
        }
        if !has(keep) {
            sqlx::query(keep_ddl)
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

/// The select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop` on MySQL, as jOOQ renders
/// it: the flow's oldest row in the tenant, locked, its `value` read (and its key, which Kestra
/// recomputes from the document). Then the row is deleted by key in the same transaction.
///
/// * `queued.index=flow` follows Kestra before commit 34fa6ce91 ("feat(jdbc): Improve
///   execution queued performance"; the pop dates from c74540b3a, #2371): `FOR UPDATE`, so
///   a second popper waits on the first one's row.
/// * `queued.index=flow-date` follows 34fa6ce91: `FOR UPDATE SKIP LOCKED`.
///
/// The tenant condition is Kestra's `buildTenantCondition`: `tenant_id IS NULL` without a
/// tenant (OSS), `tenant_id = ?` with one. The limit is bound, as jOOQ binds it.
fn pop_select(index: QueuedIndex, null_tenant: bool) -> &'static str {
    match (index, null_tenant) {
        (QueuedIndex::Flow, true) => {
            "SELECT `key`, `value` FROM execution_queued WHERE tenant_id IS NULL AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ? FOR UPDATE"
        }
        (QueuedIndex::Flow, false) => {
            "SELECT `key`, `value` FROM execution_queued WHERE tenant_id = ? AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ? FOR UPDATE"
        }
        (QueuedIndex::FlowDate, true) => {
            "SELECT `key`, `value` FROM execution_queued WHERE tenant_id IS NULL AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ? FOR UPDATE SKIP LOCKED"
        }
        (QueuedIndex::FlowDate, false) => {
            "SELECT `key`, `value` FROM execution_queued WHERE tenant_id = ? AND namespace = ? AND flow_id = ? ORDER BY date ASC LIMIT ? FOR UPDATE SKIP LOCKED"
        }
    }
}

/// Binds the pop's values in [`pop_select`]'s order.
fn bind_pop<'q, Q: PopBind<'q>>(
    query: Q,
    tenant: Option<&'q str>,
    namespace: &'q str,
    flow_id: &'q str,
) -> Q {
    let query = match tenant {
        Some(t) => query.bind_str(t),
        None => query,
    };
    query.bind_str(namespace).bind_str(flow_id).bind_limit(1)
}

/// The two query shapes the pop is bound into: rows as tuples, and `EXPLAIN`'s raw rows.
trait PopBind<'q> {
    fn bind_str(self, v: &'q str) -> Self;
    fn bind_limit(self, v: i64) -> Self;
}

impl<'q, O> PopBind<'q> for sqlx::query::QueryAs<'q, MySql, O, sqlx::mysql::MySqlArguments> {
    fn bind_str(self, v: &'q str) -> Self {
        self.bind(v)
    }
    fn bind_limit(self, v: i64) -> Self {
        self.bind(v)
    }
}

impl<'q> PopBind<'q> for sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments> {
    fn bind_str(self, v: &'q str) -> Self {
        self.bind(v)
    }
    fn bind_limit(self, v: i64) -> Self {
        self.bind(v)
    }
}

/// `EXPLAIN`'s rows as `column=value | …` lines (its columns differ between MySQL and
/// MariaDB, so they are read by name; NULL cells are left out).
fn plan_text(rows: &[sqlx::mysql::MySqlRow]) -> String {
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

#[async_trait]
impl Store for MysqlStore {
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
        let row: Option<(Text,)> = sqlx::query_as("SELECT `value` FROM executions WHERE `key` = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read execution"))?;
        row.map(|(v,)| super::decode_doc(BACKEND, self.mapping, "execution", id, &v))
            .transpose()
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>> {
        let rows: Vec<(Text, Text)> = sqlx::query_as(
            "SELECT `key`, `value` FROM logs WHERE execution_id = ? ORDER BY `timestamp`, `key`",
        )
        .bind(execution_id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read logs"))?;
        rows.into_iter()
            .map(|(k, v)| super::decode_doc(BACKEND, self.mapping, "log", &k, &v))
            .collect()
    }

    async fn flow(&self, namespace: &str, id: &str) -> Result<Option<(i32, String)>> {
        let row: Option<(i32, Text)> =
            sqlx::query_as("SELECT revision, source FROM flows WHERE namespace = ? AND id = ?")
                .bind(namespace)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("read flow"))?;
        Ok(row.map(|(rev, source)| (rev, source.0)))
    }

    async fn flows(&self) -> Result<Vec<String>> {
        let rows: Vec<(Text,)> = sqlx::query_as("SELECT source FROM flows ORDER BY `key`")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list flows"))?;
        Ok(rows.into_iter().map(|(s,)| s.0).collect())
    }

    async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(
            "SELECT
                (SELECT COUNT(*) FROM executions),
                (SELECT COUNT(*) FROM executions WHERE end_date IS NOT NULL),
                (SELECT COUNT(*) FROM logs),
                (SELECT COUNT(*) FROM queues WHERE consumed = FALSE),
                (SELECT COUNT(*) FROM worker_job_running)",
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
        let r = sqlx::query("DELETE FROM queues WHERE consumed = TRUE")
            .execute(&self.pool)
            .await
            .map_err(q("clean queue"))?;
        Ok(r.rows_affected())
    }

    async fn version(&self) -> Result<String> {
        let (v,): (Text,) = sqlx::query_as("SELECT VERSION()")
            .fetch_one(&self.pool)
            .await
            .map_err(q("read version"))?;
        Ok(if v.contains("MariaDB") {
            format!("MariaDB {}", v.0)
        } else {
            format!("MySQL {}", v.0)
        })
    }

    async fn analyze_queued(&self) -> Result<()> {
        sqlx::query("ANALYZE TABLE execution_queued")
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
        let statement = pop_select(self.queued_index, tenant.is_none());
        let explain = format!("EXPLAIN {statement}");
        // EXPLAIN runs nothing; the transaction, rolled back, makes sure of it.
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        let rows = bind_pop(sqlx::query(&explain), tenant, namespace, flow_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("explain the queued pop"))?;
        tx.rollback().await.map_err(q("rollback"))?;
        Ok(PopPlan {
            statement: statement.to_string(),
            plan: plan_text(&rows),
        })
    }

    async fn poll_rows_read(&self, kinds: &[QueueType], limit: usize) -> Result<Option<u64>> {
        let mut mtx = self.transaction().await?;
        // Reading the counters reads rows too (the status table); a read between two
        // readings measures that, and is taken off.
        let first = handler_reads(&mut mtx.tx).await?;
        let second = handler_reads(&mut mtx.tx).await?;
        mtx.poll(kinds, limit).await?;
        let after = handler_reads(&mut mtx.tx).await?;
        mtx.tx.rollback().await.map_err(q("rollback"))?;
        let reading = second.saturating_sub(first);
        Ok(Some(after.saturating_sub(second).saturating_sub(reading)))
    }
}

/// The session's `Handler_read_*` counters summed: every row read by a handler call
/// (first, key, last, next, prev, rnd, rnd_next) in this connection so far.
async fn handler_reads(tx: &mut Transaction<'static, MySql>) -> Result<u64> {
    let rows: Vec<(Text, Text)> = sqlx::query_as("SHOW SESSION STATUS LIKE 'Handler_read%'")
        .fetch_all(&mut **tx)
        .await
        .map_err(q("read the session's Handler_read counters"))?;
    Ok(rows
        .iter()
        .filter(|(name, _)| !name.0.eq_ignore_ascii_case("Handler_read_retry"))
        .filter_map(|(_, value)| value.0.parse::<u64>().ok())
        .sum())
}

struct MysqlTx {
    tx: Transaction<'static, MySql>,
    mapping: JsonMapping,
    queued_index: QueuedIndex,
}

#[async_trait]
impl Tx for MysqlTx {
    async fn poll(&mut self, kinds: &[QueueType], limit: usize) -> Result<Vec<Polled>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // FORCE INDEX: for `ORDER BY offset LIMIT n` the optimizer otherwise walks the
        // primary key through every consumed row not yet cleaned, whatever the statistics;
        // (type, consumed, offset) reads the unconsumed rows of these types alone, in one
        // range per type, and sorts them. MySQL and MariaDB have no partial index.
        let mut qb = QueryBuilder::<MySql>::new(
            "SELECT `offset`, `type`, `key`, `value` FROM queues FORCE INDEX (ix_queues_poll) WHERE consumed = FALSE AND `type` IN (",
        );
        let mut sep = qb.separated(", ");
        for k in kinds {
            sep.push_bind(k.as_str());
        }
        qb.push(") ORDER BY `offset` LIMIT ");
        qb.push_bind(limit as i64);
        qb.push(" FOR UPDATE SKIP LOCKED");
        let rows = qb
            .build()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(q("poll queue"))?;
        let polled = Polled::in_offset_order(rows.iter().map(|r| {
            (
                r.get(0),
                r.get::<Text, _>(1).0,
                r.get::<Text, _>(2).0,
                r.get::<Text, _>(3).0,
            )
        }));
        if polled.is_empty() {
            return Ok(polled);
        }
        let mut qb =
            QueryBuilder::<MySql>::new("UPDATE queues SET consumed = TRUE WHERE `offset` IN (");
        let mut sep = qb.separated(", ");
        for p in &polled {
            sep.push_bind(p.offset);
        }
        qb.push(")");
        qb.build()
            .execute(&mut *self.tx)
            .await
            .map_err(q("mark polled messages consumed"))?;
        Ok(polled)
    }

    async fn push(&mut self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<MySql>::new("INSERT INTO queues (`type`, `key`, `value`) ");
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
            let mut qb = QueryBuilder::<MySql>::new(
                "INSERT INTO queues (`type`, `key`, `value`, consumed) ",
            );
            qb.push_values(chunk, |mut b, m| {
                b.push_bind(m.kind.as_str())
                    .push_bind(&m.key)
                    .push_bind(&m.value)
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
        let row: Option<(Text,)> =
            sqlx::query_as("SELECT `value` FROM executions WHERE `key` = ? FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(q("load execution"))?;
        row.map(|(v,)| super::decode_doc(BACKEND, self.mapping, "execution", id, &v))
            .transpose()
    }

    async fn save_execution(&mut self, execution: &Execution) -> Result<()> {
        let value = serde_json::to_string(execution).expect("an execution always serializes");
        sqlx::query(
            "INSERT INTO executions (`key`, `value`) VALUES (?, ?)
             ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)",
        )
        .bind(&execution.id)
        .bind(value)
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
            "INSERT IGNORE INTO execution_queued (`key`, `value`, tenant_id, namespace, flow_id, date)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(queued.uid())
        .bind(queued.to_json())
        .bind(queued.tenant_id.as_deref())
        .bind(&queued.namespace)
        .bind(&queued.flow_id)
        .bind(datetime(queued.date))
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
        let sql = pop_select(self.queued_index, tenant.is_none());
        let row: Option<(Text, Text)> = bind_pop(sqlx::query_as(sql), tenant, namespace, flow_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q("pop queued execution"))?;
        let Some((key, value)) = row else {
            return Ok(None);
        };
        let queued: ExecutionQueued =
            super::decode_doc(BACKEND, self.mapping, "queued execution", &key, &value)?;
        sqlx::query("DELETE FROM execution_queued WHERE `key` = ?")
            .bind(&*key)
            .execute(&mut *self.tx)
            .await
            .map_err(q("pop queued execution"))?;
        Ok(Some(queued.execution))
    }

    async fn insert_logs(&mut self, logs: &[LogEntry]) -> Result<()> {
        for chunk in logs.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<MySql>::new("INSERT INTO logs (`key`, `value`) ");
            qb.push_values(chunk, |mut b, l| {
                b.push_bind(&l.id)
                    .push_bind(serde_json::to_string(l).expect("a log entry always serializes"));
            });
            qb.push(" ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)");
            qb.build()
                .execute(&mut *self.tx)
                .await
                .map_err(q("insert logs"))?;
        }
        Ok(())
    }

    async fn lock_flow(&mut self, key: &str) -> Result<Option<(i32, String)>> {
        let current: Option<(i32, Text)> =
            sqlx::query_as("SELECT revision, source FROM flows WHERE `key` = ? FOR UPDATE")
                .bind(key)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(q("read flow"))?;
        Ok(current.map(|(rev, source)| (rev, source.0)))
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
            "INSERT INTO flows (`key`, namespace, id, revision, source) VALUES (?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE revision = VALUES(revision), source = VALUES(source)",
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
             ON DUPLICATE KEY UPDATE heartbeat_ms = VALUES(heartbeat_ms)",
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
        let rows: Vec<(Text,)> =
            sqlx::query_as("SELECT id FROM service_instance WHERE kind = ? AND heartbeat_ms < ?")
                .bind(kind)
                .bind(older_than_ms)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(q("find dead instances"))?;
        Ok(rows.into_iter().map(|(id,)| id.0).collect())
    }

    async fn jobs_started(&mut self, worker: &str, jobs: &[(&str, &str)]) -> Result<()> {
        for chunk in super::distinct_jobs(jobs).chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<MySql>::new(
                "INSERT INTO worker_job_running (`key`, worker_id, `value`) ",
            );
            qb.push_values(chunk, |mut b, (key, value)| {
                b.push_bind(*key).push_bind(worker).push_bind(*value);
            });
            qb.push(" ON DUPLICATE KEY UPDATE worker_id = VALUES(worker_id)");
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
                QueryBuilder::<MySql>::new("DELETE FROM worker_job_running WHERE `key` IN (");
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
        let jobs: Vec<(Text, Text)> = sqlx::query_as(
            "SELECT `key`, `value` FROM worker_job_running WHERE worker_id = ? FOR UPDATE",
        )
        .bind(worker)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(q("take jobs of a dead worker"))?;
        sqlx::query("DELETE FROM worker_job_running WHERE worker_id = ?")
            .bind(worker)
            .execute(&mut *self.tx)
            .await
            .map_err(q("take jobs of a dead worker"))?;
        Ok(jobs.into_iter().map(|(k, v)| (k.0, v.0)).collect())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        super::committed(self.tx.commit().await.map_err(q("commit")))
    }
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
