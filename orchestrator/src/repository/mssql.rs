//! The SQL Server dialect (SQL Server 2016+, for JSON_VALUE), on tiberius behind the `mssql`
//! cargo feature: NVARCHAR(MAX) JSON documents with PERSISTED computed columns, queue polls
//! under `WITH (UPDLOCK, READPAST, ROWLOCK)`, and `MERGE … WITH (HOLDLOCK)` upserts.
//!
//! sqlx has no SQL Server driver, so this module carries what sqlx gives the others: a
//! connection pool ([`pool`], bb8), URL parsing ([`options`]) and migrations applied by its
//! own code from `migrations/mssql`, recorded in `flowbench_migrations`.
//!
//! Every value is bound as an `@Pn` parameter (tiberius sends statements through
//! `sp_executesql`). Transactions are `BEGIN TRAN` / `COMMIT TRAN` batches on one checked-out
//! connection; one dropped without commit is rolled back before its connection is reused.
//!
//! Never run against a server on the project's machines (there is no SQL Server and no
//! Docker engine there): what is verified is that it compiles and its unit tests pass.

mod options;
mod pool;

use std::time::Duration;

use async_trait::async_trait;
use bb8::{Pool, PooledConnection};
use tiberius::{Row, ToSql};

use super::search::{ExecutionSearch, Page};
use super::{
    Counts, Error, ExecutionDelay, ExecutionQueued, Message, MultipleConditionWindow, Notifier,
    Polled, PopPlan, QueueType, Result, Store, TriggerState, Tx,
};
use crate::knobs::{JsonMapping, Knobs, QueuedIndex};
use crate::model::{Execution, LogEntry};
use options::Options;
use pool::{Manager, TdsClient, batch};

const BACKEND: &str = "mssql";
/// SQL Server takes at most 1000 rows in one VALUES list and 2100 parameters per statement;
/// 500 rows of up to 3 values stay below both.
const ROWS_PER_INSERT: usize = 500;
/// Parameters in one `IN (…)` list.
const IDS_PER_STATEMENT: usize = 1000;
const _: () = assert!(ROWS_PER_INSERT <= 1000 && ROWS_PER_INSERT * 3 < 2100);
const _: () = assert!(IDS_PER_STATEMENT < 2100);

pub struct MssqlStore {
    pool: Pool<Manager>,
    mapping: JsonMapping,
    queued_index: QueuedIndex,
    notifier: Notifier,
}

fn q(op: &'static str) -> impl FnOnce(tiberius::error::Error) -> Error {
    move |source| Error::Driver {
        backend: BACKEND,
        op,
        source: Box::new(source),
    }
}

fn checkout(op: &'static str) -> impl FnOnce(bb8::RunError<tiberius::error::Error>) -> Error {
    move |e| match e {
        bb8::RunError::User(source) => q(op)(source),
        timed_out => Error::Driver {
            backend: BACKEND,
            op,
            source: Box::new(timed_out),
        },
    }
}

impl MssqlStore {
    /// Connects to an `mssql://` (or `sqlserver://`) URL (format in [`options`]) and migrates
    /// the database it names.
    pub async fn connect(url: &str, knobs: &Knobs) -> Result<Self> {
        let target = super::redact(url);
        let options = Options::parse(url).map_err(|reason| Error::Unreachable {
            backend: BACKEND,
            target: target.clone(),
            reason,
        })?;
        let config = options.config();
        let mut first = super::first_connection(BACKEND, &target, pool::open(&config)).await?;
        pool::migrate(&mut first, knobs.queued_index)
            .await
            .map_err(|(op, e)| q(op)(e))?;
        let _ = first.client.close().await;
        let pool = Pool::builder()
            .max_size(10)
            .connection_timeout(Duration::from_secs(30))
            .build_unchecked(Manager { config });
        Ok(MssqlStore {
            pool,
            mapping: knobs.json_mapping,
            queued_index: knobs.queued_index,
            notifier: Notifier::default(),
        })
    }

    /// Creates database `name` on the server `url` names, unless it exists: a database per
    /// test, or one for a fresh container, whose only database is `master`. The connection
    /// goes to the URL's own database. `name` is 1–40 of `a-z`, `0-9` and `_`, since DDL
    /// cannot bind it.
    pub async fn create_database(url: &str, name: &str) -> Result<()> {
        let sql = format!("IF DB_ID(N'{name}') IS NULL CREATE DATABASE [{name}]");
        admin(url, name, &sql, "create database").await
    }

    /// Drops database `name` (see [`MssqlStore::create_database`]), closing its sessions.
    pub async fn drop_database(url: &str, name: &str) -> Result<()> {
        let sql = format!(
            "IF DB_ID(N'{name}') IS NOT NULL BEGIN \
                ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; \
                DROP DATABASE [{name}]; END"
        );
        admin(url, name, &sql, "drop database").await
    }
}

/// Runs one DDL batch about database `name` on a connection of its own.
async fn admin(url: &str, name: &str, sql: &str, op: &'static str) -> Result<()> {
    let target = super::redact(url);
    let invalid = |reason: String| Error::Unreachable {
        backend: BACKEND,
        target: target.clone(),
        reason,
    };
    super::postgres::valid_identifier(name).map_err(invalid)?;
    let config = Options::parse(url).map_err(invalid)?.config();
    let mut conn = super::first_connection(BACKEND, &target, pool::open(&config)).await?;
    batch(&mut conn.client, sql).await.map_err(q(op))?;
    let _ = conn.client.close().await;
    Ok(())
}

/// `@P{first}, …, @P{first + n - 1}`.
fn param_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("@P{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(@P1, @P2), (@P3, @P4), …`: `rows` rows of `cols` parameters each.
fn values_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", param_list(1 + r * cols, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes up to `@P1` unconsumed messages of the `kinds` types `@P2…`, oldest first, and marks
/// them consumed, in one statement: UPDLOCK keeps them from other consumers until commit and
/// READPAST skips the rows they hold (SQL Server's `FOR UPDATE SKIP LOCKED`).
fn poll_sql(kinds: usize) -> String {
    format!(
        "WITH q AS (
             SELECT TOP (@P1) [offset], [type], [key], [value], consumed, updated
             FROM queues WITH (UPDLOCK, READPAST, ROWLOCK)
             WHERE consumed = 0 AND [type] IN ({})
             ORDER BY [offset])
         UPDATE q SET consumed = 1, updated = SYSUTCDATETIME()
         OUTPUT inserted.[offset], inserted.[type], inserted.[key], inserted.[value];",
        param_list(2, kinds)
    )
}

/// The select of Kestra's `AbstractJdbcExecutionQueuedStorage#pop` in SQL Server's words
/// (Kestra has no SQL Server backend): the flow's oldest row in the tenant, update-locked, its
/// key and `value` read; then the row is deleted by key in the same transaction.
///
/// * `queued.index=flow` follows Kestra before commit 34fa6ce91 (the pop dates from
///   c74540b3a, #2371): `FOR UPDATE` is `UPDLOCK, ROWLOCK`, so a second popper waits on the
///   first one's row.
/// * `queued.index=flow-date` follows 34fa6ce91: `SKIP LOCKED` is `READPAST`.
///
/// The tenant condition is Kestra's `buildTenantCondition`: `tenant_id IS NULL` without a
/// tenant (OSS), `tenant_id = @P1` with one. The row count is bound, as jOOQ binds the limit.
fn queued_pop_sql(index: QueuedIndex, null_tenant: bool) -> String {
    let hints = if super::dialect::queued_pop(index).skip_locked {
        "UPDLOCK, READPAST, ROWLOCK"
    } else {
        "UPDLOCK, ROWLOCK"
    };
    if null_tenant {
        format!(
            "SELECT TOP (@P3) [key], [value] FROM execution_queued WITH ({hints})
             WHERE tenant_id IS NULL AND namespace = @P1 AND flow_id = @P2 ORDER BY [date] ASC"
        )
    } else {
        format!(
            "SELECT TOP (@P4) [key], [value] FROM execution_queued WITH ({hints})
             WHERE tenant_id = @P1 AND namespace = @P2 AND flow_id = @P3 ORDER BY [date] ASC"
        )
    }
}

/// The pop's values in [`queued_pop_sql`]'s order.
fn pop_params<'a>(
    tenant: &'a Option<&'a str>,
    namespace: &'a &'a str,
    flow_id: &'a &'a str,
    limit: &'a i64,
) -> Vec<&'a dyn ToSql> {
    let mut params: Vec<&dyn ToSql> = Vec::with_capacity(4);
    if let Some(t) = tenant {
        params.push(t);
    }
    params.extend([namespace as &dyn ToSql, flow_id, limit]);
    params
}

/// A multi-row log upsert keyed by the log id. HOLDLOCK makes MERGE's check-then-write
/// atomic against another writer of the same key.
fn insert_logs_sql(rows: usize) -> String {
    format!(
        "MERGE INTO logs WITH (HOLDLOCK) AS t
         USING (VALUES {}) AS s ([key], [value]) ON t.[key] = s.[key]
         WHEN MATCHED THEN UPDATE SET [value] = s.[value]
         WHEN NOT MATCHED THEN INSERT ([key], [value]) VALUES (s.[key], s.[value]);",
        values_rows(rows, 2)
    )
}

/// DATETIME2 text for a bound date: seven fractional digits at most.
fn datetime2(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.7f").to_string()
}

async fn fetch(
    client: &mut TdsClient,
    sql: &str,
    params: &[&dyn ToSql],
    op: &'static str,
) -> Result<Vec<Row>> {
    client
        .query(sql, params)
        .await
        .map_err(q(op))?
        .into_first_result()
        .await
        .map_err(q(op))
}

async fn execute(
    client: &mut TdsClient,
    sql: &str,
    params: &[&dyn ToSql],
    op: &'static str,
) -> Result<u64> {
    Ok(client.execute(sql, params).await.map_err(q(op))?.total())
}

/// Column `i` of a row; NULL where the schema allows none is an error.
fn column<'a, T: tiberius::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    match row.try_get::<T, _>(i) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(q("read a row")(tiberius::error::Error::Conversion(
            format!("column {i} is NULL").into(),
        ))),
        Err(e) => Err(q("read a row")(e)),
    }
}

fn text(row: &Row, i: usize) -> Result<String> {
    column::<&str>(row, i).map(str::to_string)
}

/// Queue rows `(offset, type, key, value)` as messages, in offset order.
fn queue_rows(rows: &[Row]) -> Result<Vec<Polled>> {
    let rows = rows
        .iter()
        .map(|r| Ok((column(r, 0)?, text(r, 1)?, text(r, 2)?, text(r, 3)?)))
        .collect::<Result<Vec<(i64, String, String, String)>>>()?;
    Ok(Polled::in_offset_order(rows))
}

/// SQL Server's spelling of an execution search (see [`super::search`]): `@Pn` parameters,
/// dates converted from ISO 8601 text to the columns' `DATETIME2`, labels read with
/// `OPENJSON`, and `OFFSET … FETCH` for the page.
fn search_syntax() -> super::search::SearchSyntax {
    super::search::SearchSyntax {
        select: "SELECT [key], [value] FROM executions".into(),
        key: "[key]",
        count: "COUNT_BIG(*)",
        placeholder: |n| format!("@P{n}"),
        date: |p| format!("CONVERT(DATETIME2(7), {p}, 126)"),
        date_value: |t| t.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        label: |k, v| {
            format!(
                "EXISTS (SELECT 1 FROM OPENJSON([value], '$.labels') WITH (label_key NVARCHAR(4000) '$.key', label_value NVARCHAR(4000) '$.value') AS l WHERE l.label_key = {k} AND l.label_value = {v})"
            )
        },
        page: |limit, offset| format!("OFFSET {offset} ROWS FETCH NEXT {limit} ROWS ONLY"),
    }
}

/// A search's values as tiberius parameters.
fn search_params(params: &[super::search::Param]) -> Vec<&dyn ToSql> {
    params
        .iter()
        .map(|p| match p {
            super::search::Param::Text(s) => s as &dyn ToSql,
            super::search::Param::Int(n) => n as &dyn ToSql,
        })
        .collect()
}

impl MssqlStore {
    /// Runs one query outside any transaction.
    async fn read(&self, sql: &str, params: &[&dyn ToSql], op: &'static str) -> Result<Vec<Row>> {
        let mut conn = self.pool.get().await.map_err(checkout(op))?;
        fetch(&mut conn.client, sql, params, op).await
    }
}

#[async_trait]
impl Store for MssqlStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn begin_tx(&self) -> Result<Box<dyn Tx>> {
        let mut conn = self.pool.get_owned().await.map_err(checkout("begin"))?;
        // Set first: if BEGIN fails half-way, the connection is discarded.
        conn.in_tx = true;
        batch(&mut conn.client, "BEGIN TRAN")
            .await
            .map_err(q("begin"))?;
        Ok(Box::new(MssqlTx {
            conn: Some(conn),
            mapping: self.mapping,
            queued_index: self.queued_index,
        }))
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>> {
        let rows = self
            .read(
                "SELECT [value] FROM executions WHERE [key] = @P1",
                &[&id],
                "read execution",
            )
            .await?;
        rows.first()
            .map(|r| super::decode_doc(BACKEND, self.mapping, "execution", id, &text(r, 0)?))
            .transpose()
    }

    async fn search_executions(&self, search: &ExecutionSearch) -> Result<Page<Execution>> {
        let statements = super::search::statements(search, &search_syntax());
        let op = "search executions";
        let count_params = search_params(&statements.count_params);
        let rows = self.read(&statements.count, &count_params, op).await?;
        let total = rows
            .first()
            .map(|r| column::<i64>(r, 0))
            .transpose()?
            .unwrap_or_default();
        let page_params = search_params(&statements.page_params);
        let rows = self.read(&statements.page, &page_params, op).await?;
        let results = rows
            .iter()
            .map(|r| {
                let key = text(r, 0)?;
                super::decode_doc(BACKEND, self.mapping, "execution", &key, &text(r, 1)?)
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            results,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }

    async fn delete_execution(&self, id: &str, logs: bool) -> Result<bool> {
        // Two statements outside a transaction: should the second fail, the execution is
        // gone and only its log lines are left, which a second delete cannot reach anyway.
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(checkout("delete execution"))?;
        let deleted = execute(
            &mut conn.client,
            "DELETE FROM executions WHERE [key] = @P1",
            &[&id],
            "delete execution",
        )
        .await?;
        if logs {
            execute(
                &mut conn.client,
                "DELETE FROM logs WHERE execution_id = @P1",
                &[&id],
                "delete an execution's logs",
            )
            .await?;
        }
        Ok(deleted > 0)
    }

    async fn executions_of_flow(&self, namespace: &str, flow_id: &str) -> Result<Vec<Execution>> {
        let rows = self
            .read(
                "SELECT [key], [value] FROM executions WHERE namespace = @P1 AND flow_id = @P2",
                &[&namespace, &flow_id],
                "read a flow's executions",
            )
            .await?;
        rows.iter()
            .map(|r| {
                let key = text(r, 0)?;
                super::decode_doc(BACKEND, self.mapping, "execution", &key, &text(r, 1)?)
            })
            .collect()
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>> {
        let sql =
            "SELECT [key], [value] FROM logs WHERE execution_id = @P1 ORDER BY [timestamp], [key]";
        let rows = self.read(sql, &[&execution_id], "read logs").await?;
        rows.iter()
            .map(|r| super::decode_doc(BACKEND, self.mapping, "log", &text(r, 0)?, &text(r, 1)?))
            .collect()
    }

    async fn flow(&self, namespace: &str, id: &str) -> Result<Option<(i32, String)>> {
        let rows = self
            .read(
                "SELECT revision, source FROM flows WHERE namespace = @P1 AND id = @P2",
                &[&namespace, &id],
                "read flow",
            )
            .await?;
        rows.first()
            .map(|r| Ok((column::<i32>(r, 0)?, text(r, 1)?)))
            .transpose()
    }

    async fn flows(&self) -> Result<Vec<String>> {
        let rows = self
            .read("SELECT source FROM flows ORDER BY [key]", &[], "list flows")
            .await?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    async fn counts(&self) -> Result<Counts> {
        let rows = self
            .read(
                "SELECT
                (SELECT COUNT_BIG(*) FROM executions),
                (SELECT COUNT_BIG(*) FROM executions WHERE end_date IS NOT NULL),
                (SELECT COUNT_BIG(*) FROM logs),
                (SELECT COUNT_BIG(*) FROM queues WHERE consumed = 0),
                (SELECT COUNT_BIG(*) FROM worker_job_running)",
                &[],
                "count rows",
            )
            .await?;
        let r = rows.first().ok_or_else(|| {
            q("count rows")(tiberius::error::Error::Protocol("no row returned".into()))
        })?;
        Ok(Counts {
            executions: column(r, 0)?,
            terminal_executions: column(r, 1)?,
            logs: column(r, 2)?,
            pending_messages: column(r, 3)?,
            running_jobs: column(r, 4)?,
        })
    }

    async fn clean_queue(&self) -> Result<u64> {
        let mut conn = self.pool.get().await.map_err(checkout("clean queue"))?;
        execute(
            &mut conn.client,
            "DELETE FROM queues WHERE consumed = 1
                 AND ([type] <> 'execution_killed' OR updated < DATEADD(second, -60, SYSUTCDATETIME()))",
            &[],
            "clean queue",
        )
        .await
    }

    async fn kills_after(&self, after: i64, limit: usize) -> Result<Vec<Polled>> {
        let limit = limit as i64;
        let rows = self
            .read(
                "SELECT TOP (@P2) [offset], [type], [key], [value] FROM queues
                 WHERE [type] = 'execution_killed' AND [offset] > @P1 ORDER BY [offset]",
                &[&after, &limit],
                "read the kill queue",
            )
            .await?;
        queue_rows(&rows)
    }

    async fn version(&self) -> Result<String> {
        let rows = self
            .read(
                "SELECT CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(128)),
                    CAST(SERVERPROPERTY('Edition') AS NVARCHAR(128))",
                &[],
                "read version",
            )
            .await?;
        let r = rows.first().ok_or_else(|| {
            q("read version")(tiberius::error::Error::Protocol("no row returned".into()))
        })?;
        Ok(format!("SQL Server {} ({})", text(r, 0)?, text(r, 1)?))
    }

    async fn analyze_queued(&self) -> Result<()> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(checkout("analyze execution_queued"))?;
        batch(&mut conn.client, "UPDATE STATISTICS execution_queued")
            .await
            .map_err(q("analyze execution_queued"))
    }

    async fn explain_queued_pop(
        &self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<PopPlan> {
        let statement = queued_pop_sql(self.queued_index, tenant.is_none());
        let op = "explain the queued pop";
        let mut conn = self.pool.get().await.map_err(checkout(op))?;
        // SHOWPLAN_TEXT does not reach into sp_executesql, which carries bound values, so the
        // select runs under STATISTICS PROFILE, which reports each statement's plan as an
        // extra result set, in a transaction rolled back at once (it only locks a row).
        conn.in_tx = true;
        batch(&mut conn.client, "BEGIN TRAN; SET STATISTICS PROFILE ON")
            .await
            .map_err(q(op))?;
        let limit = 1_i64;
        let result = async {
            conn.client
                .query(
                    statement.as_str(),
                    &pop_params(&tenant, &namespace, &flow_id, &limit),
                )
                .await?
                .into_results()
                .await
        }
        .await;
        let reset = batch(
            &mut conn.client,
            "SET STATISTICS PROFILE OFF; IF @@TRANCOUNT > 0 ROLLBACK TRAN",
        )
        .await;
        let sets = result.map_err(q(op))?;
        reset.map_err(q(op))?;
        conn.in_tx = false;
        let mut lines = Vec::new();
        for row in sets.iter().flatten() {
            if let Some(i) = row.columns().iter().position(|c| c.name() == "StmtText")
                && let Ok(Some(line)) = row.try_get::<&str, _>(i)
            {
                lines.push(line.to_string());
            }
        }
        Ok(PopPlan {
            statement: statement.to_string(),
            plan: lines.join("\n"),
        })
    }
}

struct MssqlTx {
    /// Taken by `commit`; still here on drop means the transaction is rolled back.
    conn: Option<PooledConnection<'static, Manager>>,
    mapping: JsonMapping,
    queued_index: QueuedIndex,
}

impl MssqlTx {
    fn client(&mut self) -> &mut TdsClient {
        &mut self
            .conn
            .as_mut()
            .expect("a transaction holds its connection until commit")
            .client
    }
}

impl Drop for MssqlTx {
    /// Rolls back off the caller's path, then lets the connection go back to the pool (an
    /// empty poll ends this way, so the connection is kept, not reopened). Without a runtime
    /// to run on, the connection is dropped with `in_tx` set, so the pool discards it and the
    /// server rolls back when the session closes.
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !conn.in_tx {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if batch(&mut conn.client, "IF @@TRANCOUNT > 0 ROLLBACK TRAN")
                    .await
                    .is_ok()
                {
                    conn.in_tx = false;
                }
            });
        }
    }
}

#[async_trait]
impl Tx for MssqlTx {
    async fn poll(&mut self, kinds: &[QueueType], limit: usize) -> Result<Vec<Polled>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit as i64;
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let mut params: Vec<&dyn ToSql> = vec![&limit];
        params.extend(names.iter().map(|n| n as &dyn ToSql));
        let rows = fetch(self.client(), &poll_sql(kinds.len()), &params, "poll queue").await?;
        queue_rows(&rows)
    }

    async fn push(&mut self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO queues ([type], [key], [value]) VALUES {}",
                values_rows(chunk.len(), 3)
            );
            let kinds: Vec<&str> = chunk.iter().map(|m| m.kind.as_str()).collect();
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 3);
            for (m, kind) in chunk.iter().zip(&kinds) {
                params.push(kind);
                params.push(&m.key);
                params.push(&m.value);
            }
            execute(self.client(), &sql, &params, "push to queue").await?;
        }
        Ok(())
    }

    async fn push_consumed(&mut self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| format!("({}, 1)", param_list(1 + r * 3, 3)))
                .collect();
            let sql = format!(
                "INSERT INTO queues ([type], [key], [value], consumed) VALUES {}",
                rows.join(", ")
            );
            let kinds: Vec<&str> = chunk.iter().map(|m| m.kind.as_str()).collect();
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 3);
            for (m, kind) in chunk.iter().zip(&kinds) {
                params.push(kind);
                params.push(&m.key);
                params.push(&m.value);
            }
            execute(self.client(), &sql, &params, "push to queue").await?;
        }
        Ok(())
    }

    async fn load_execution(&mut self, id: &str) -> Result<Option<Execution>> {
        // UPDLOCK held to commit: two executors never process one execution at once.
        let rows = fetch(
            self.client(),
            "SELECT [value] FROM executions WITH (UPDLOCK, ROWLOCK) WHERE [key] = @P1",
            &[&id],
            "load execution",
        )
        .await?;
        rows.first()
            .map(|r| super::decode_doc(BACKEND, self.mapping, "execution", id, &text(r, 0)?))
            .transpose()
    }

    async fn save_execution(&mut self, execution: &Execution) -> Result<()> {
        let value = serde_json::to_string(execution).expect("an execution always serializes");
        execute(
            self.client(),
            "MERGE INTO executions WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS [key], @P2 AS [value]) AS s ON t.[key] = s.[key]
             WHEN MATCHED THEN UPDATE SET [value] = s.[value]
             WHEN NOT MATCHED THEN INSERT ([key], [value]) VALUES (s.[key], s.[value]);",
            &[&execution.id, &value],
            "save execution",
        )
        .await?;
        Ok(())
    }

    async fn count_running(&mut self, namespace: &str, flow_id: &str) -> Result<i64> {
        let s = super::running_state_names();
        let rows = fetch(
            self.client(),
            "SELECT COUNT_BIG(*) FROM executions
             WHERE namespace = @P1 AND flow_id = @P2 AND state_current IN (@P3, @P4, @P5, @P6, @P7)",
            &[&namespace, &flow_id, &s[0], &s[1], &s[2], &s[3], &s[4]],
            "count running executions",
        )
        .await?;
        rows.first().map_or(Ok(0), |r| column(r, 0))
    }

    async fn queued_push(&mut self, queued: &ExecutionQueued) -> Result<()> {
        let (key, value, date) = (queued.uid(), queued.to_json(), datetime2(queued.date));
        let tenant = queued.tenant_id.as_deref();
        execute(
            self.client(),
            "MERGE INTO execution_queued WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS [key]) AS s ON t.[key] = s.[key]
             WHEN NOT MATCHED THEN INSERT ([key], [value], tenant_id, namespace, flow_id, [date])
                 VALUES (@P1, @P2, @P3, @P4, @P5, CONVERT(DATETIME2(7), @P6, 126));",
            &[
                &key,
                &value,
                &tenant,
                &queued.namespace,
                &queued.flow_id,
                &date,
            ],
            "queue execution",
        )
        .await?;
        Ok(())
    }

    async fn queued_pop(
        &mut self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Option<Execution>> {
        let sql = queued_pop_sql(self.queued_index, tenant.is_none());
        let limit = 1_i64;
        let rows = fetch(
            self.client(),
            &sql,
            &pop_params(&tenant, &namespace, &flow_id, &limit),
            "pop queued execution",
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let key = text(row, 0)?;
        let queued: ExecutionQueued = super::decode_doc(
            BACKEND,
            self.mapping,
            "queued execution",
            &key,
            &text(row, 1)?,
        )?;
        execute(
            self.client(),
            "DELETE FROM execution_queued WHERE [key] = @P1",
            &[&key],
            "pop queued execution",
        )
        .await?;
        Ok(Some(queued.execution))
    }

    async fn delay_push(&mut self, delay: &ExecutionDelay) -> Result<()> {
        let (key, value, date) = (delay.uid(), delay.to_json(), delay.date.as_millisecond());
        execute(
            self.client(),
            "MERGE INTO executordelayed WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS [key]) AS s ON t.[key] = s.[key]
             WHEN MATCHED THEN UPDATE SET [value] = @P2, date_ms = @P3
             WHEN NOT MATCHED THEN INSERT ([key], [value], date_ms) VALUES (@P1, @P2, @P3);",
            &[&key, &value, &date],
            "store a delay",
        )
        .await?;
        Ok(())
    }

    async fn delays_take(&mut self, now_ms: i64, limit: usize) -> Result<Vec<ExecutionDelay>> {
        let limit = limit as i64;
        let rows = fetch(
            self.client(),
            "SELECT TOP (@P2) [key], [value] FROM executordelayed WITH (UPDLOCK, READPAST, ROWLOCK)
             WHERE date_ms <= @P1 ORDER BY date_ms",
            &[&now_ms, &limit],
            "take due delays",
        )
        .await?;
        let mut delays = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = text(row, 0)?;
            execute(
                self.client(),
                "DELETE FROM executordelayed WHERE [key] = @P1",
                &[&key],
                "take due delays",
            )
            .await?;
            match serde_json::from_str(&text(row, 1)?) {
                Ok(delay) => delays.push(delay),
                Err(e) => tracing::warn!("delay {key} does not decode and is dropped: {e}"),
            }
        }
        Ok(delays)
    }

    async fn trigger_insert(&mut self, initial: &TriggerState) -> Result<()> {
        let (key, value, next) = (
            initial.uid(),
            initial.to_json(),
            initial.next_execution_date.as_millisecond(),
        );
        execute(
            self.client(),
            "MERGE INTO triggers WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS [key]) AS s ON t.[key] = s.[key]
             WHEN NOT MATCHED THEN INSERT ([key], [value], next_ms) VALUES (@P1, @P2, @P3);",
            &[&key, &value, &next],
            "store a trigger",
        )
        .await?;
        Ok(())
    }

    async fn trigger_lock(&mut self, key: &str) -> Result<Option<TriggerState>> {
        let rows = fetch(
            self.client(),
            "SELECT [value] FROM triggers WITH (UPDLOCK, ROWLOCK) WHERE [key] = @P1",
            &[&key],
            "lock a trigger",
        )
        .await?;
        rows.first()
            .map(|row| {
                super::decode_doc(BACKEND, JsonMapping::Direct, "trigger", key, &text(row, 0)?)
            })
            .transpose()
    }

    async fn trigger_put(&mut self, state: &TriggerState) -> Result<()> {
        let (key, value, next) = (
            state.uid(),
            state.to_json(),
            state.next_execution_date.as_millisecond(),
        );
        execute(
            self.client(),
            "UPDATE triggers SET [value] = @P1, next_ms = @P2 WHERE [key] = @P3",
            &[&value, &next, &key],
            "store a trigger",
        )
        .await?;
        Ok(())
    }

    async fn multiple_condition_lock(
        &mut self,
        initial: &MultipleConditionWindow,
    ) -> Result<MultipleConditionWindow> {
        let (key, value, end) = (
            initial.uid(),
            initial.to_json(),
            initial.end.as_millisecond(),
        );
        execute(
            self.client(),
            "MERGE INTO multipleconditions WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS [key]) AS s ON t.[key] = s.[key]
             WHEN NOT MATCHED THEN INSERT ([key], [value], end_ms) VALUES (@P1, @P2, @P3);",
            &[&key, &value, &end],
            "store a multiple condition",
        )
        .await?;
        let rows = fetch(
            self.client(),
            "SELECT [value] FROM multipleconditions WITH (UPDLOCK, ROWLOCK) WHERE [key] = @P1",
            &[&key],
            "lock a multiple condition",
        )
        .await?;
        let row = rows.first().ok_or_else(|| Error::Driver {
            backend: BACKEND,
            op: "lock a multiple condition",
            source: format!("window `{key}` stored in this transaction is not there").into(),
        })?;
        super::decode_doc(
            BACKEND,
            JsonMapping::Direct,
            "multiple condition",
            &key,
            &text(row, 0)?,
        )
    }

    async fn multiple_condition_put(&mut self, window: &MultipleConditionWindow) -> Result<()> {
        let (key, value, end) = (window.uid(), window.to_json(), window.end.as_millisecond());
        execute(
            self.client(),
            "UPDATE multipleconditions SET [value] = @P1, end_ms = @P2 WHERE [key] = @P3",
            &[&value, &end, &key],
            "store a multiple condition",
        )
        .await?;
        Ok(())
    }

    async fn multiple_condition_delete(&mut self, key: &str) -> Result<()> {
        execute(
            self.client(),
            "DELETE FROM multipleconditions WHERE [key] = @P1",
            &[&key],
            "delete a multiple condition",
        )
        .await?;
        Ok(())
    }

    async fn multiple_conditions_purge(&mut self, now_ms: i64) -> Result<u64> {
        execute(
            self.client(),
            "DELETE FROM multipleconditions WHERE end_ms < @P1",
            &[&now_ms],
            "purge multiple conditions",
        )
        .await
    }

    async fn insert_logs(&mut self, logs: &[LogEntry]) -> Result<()> {
        // A MERGE may not touch one row twice: a batch holding a line twice (a task run
        // again after its worker died) keeps the last, as the other dialects' upserts do.
        let mut rows: Vec<(&str, String)> = Vec::with_capacity(logs.len());
        let mut seen = std::collections::HashMap::with_capacity(logs.len());
        for l in logs {
            let value = serde_json::to_string(l).expect("a log entry always serializes");
            match seen.get(l.id.as_str()) {
                Some(&i) => rows[i] = (l.id.as_str(), value),
                None => {
                    seen.insert(l.id.as_str(), rows.len());
                    rows.push((l.id.as_str(), value));
                }
            }
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 2);
            for (key, value) in chunk {
                params.push(key);
                params.push(value);
            }
            execute(
                self.client(),
                &insert_logs_sql(chunk.len()),
                &params,
                "insert logs",
            )
            .await?;
        }
        Ok(())
    }

    async fn lock_flow(&mut self, key: &str) -> Result<Option<(i32, String)>> {
        // HOLDLOCK also locks the key's range when the flow is new, so two deployers of one
        // new flow queue up here instead of both inserting revision 1.
        let rows = fetch(
            self.client(),
            "SELECT revision, source FROM flows WITH (UPDLOCK, HOLDLOCK) WHERE [key] = @P1",
            &[&key],
            "read flow",
        )
        .await?;
        let current = rows
            .first()
            .map(|r| Ok::<_, Error>((column::<i32>(r, 0)?, text(r, 1)?)))
            .transpose()?;
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
        execute(
            self.client(),
            "MERGE INTO flows WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS [key]) AS s ON t.[key] = s.[key]
             WHEN MATCHED THEN UPDATE SET revision = @P4, source = @P5
             WHEN NOT MATCHED THEN INSERT ([key], namespace, id, revision, source)
                 VALUES (@P1, @P2, @P3, @P4, @P5);",
            &[&key, &namespace, &id, &revision, &source],
            "save flow",
        )
        .await?;
        Ok(())
    }

    async fn heartbeat(&mut self, instance: &str, kind: &str, now_ms: i64) -> Result<()> {
        execute(
            self.client(),
            "MERGE INTO service_instance WITH (HOLDLOCK) AS t
             USING (SELECT @P1 AS id) AS s ON t.id = s.id
             WHEN MATCHED THEN UPDATE SET heartbeat_ms = @P3
             WHEN NOT MATCHED THEN INSERT (id, kind, heartbeat_ms) VALUES (@P1, @P2, @P3);",
            &[&instance, &kind, &now_ms],
            "heartbeat",
        )
        .await?;
        Ok(())
    }

    async fn remove_instance(&mut self, instance: &str) -> Result<()> {
        execute(
            self.client(),
            "DELETE FROM service_instance WHERE id = @P1",
            &[&instance],
            "remove instance",
        )
        .await?;
        Ok(())
    }

    async fn dead_instances(&mut self, kind: &str, older_than_ms: i64) -> Result<Vec<String>> {
        let rows = fetch(
            self.client(),
            "SELECT id FROM service_instance WHERE kind = @P1 AND heartbeat_ms < @P2",
            &[&kind, &older_than_ms],
            "find dead instances",
        )
        .await?;
        rows.iter().map(|r| text(r, 0)).collect()
    }

    async fn jobs_started(&mut self, worker: &str, jobs: &[(&str, &str)]) -> Result<()> {
        // One MERGE per job: a MERGE's source would need a table-valued parameter.
        for (key, value) in super::distinct_jobs(jobs) {
            execute(
                self.client(),
                "MERGE INTO worker_job_running WITH (HOLDLOCK) AS t
                 USING (SELECT @P1 AS [key]) AS s ON t.[key] = s.[key]
                 WHEN MATCHED THEN UPDATE SET worker_id = @P2
                 WHEN NOT MATCHED THEN INSERT ([key], worker_id, [value]) VALUES (@P1, @P2, @P3);",
                &[&key, &worker, &value],
                "record running job",
            )
            .await?;
        }
        Ok(())
    }

    async fn jobs_finished(&mut self, keys: &[String]) -> Result<()> {
        for chunk in keys.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM worker_job_running WHERE [key] IN ({})",
                param_list(1, chunk.len())
            );
            let params: Vec<&dyn ToSql> = chunk.iter().map(|k| k as &dyn ToSql).collect();
            execute(self.client(), &sql, &params, "clear finished jobs").await?;
        }
        Ok(())
    }

    async fn take_jobs(&mut self, worker: &str) -> Result<Vec<(String, String)>> {
        let rows = fetch(
            self.client(),
            "DELETE FROM worker_job_running OUTPUT deleted.[key], deleted.[value] WHERE worker_id = @P1",
            &[&worker],
            "take jobs of a dead worker",
        )
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, 0)?, text(r, 1)?)))
            .collect()
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let mut conn = self
            .conn
            .take()
            .expect("a transaction holds its connection until commit");
        // On failure `conn` drops with `in_tx` set and the pool discards it.
        super::committed(
            batch(&mut conn.client, "COMMIT TRAN")
                .await
                .map_err(q("commit")),
        )?;
        conn.in_tx = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_lists_number_from_the_given_index() {
        assert_eq!(param_list(2, 3), "@P2, @P3, @P4");
        assert_eq!(values_rows(2, 3), "(@P1, @P2, @P3), (@P4, @P5, @P6)");
        assert_eq!(values_rows(1, 2), "(@P1, @P2)");
    }

    #[test]
    fn poll_locks_skips_and_binds_every_type() {
        let sql = poll_sql(2);
        assert!(sql.contains("TOP (@P1)"));
        assert!(sql.contains("WITH (UPDLOCK, READPAST, ROWLOCK)"));
        assert!(sql.contains("[type] IN (@P2, @P3)"));
        assert!(sql.contains("OUTPUT inserted.[offset]"));
    }

    #[test]
    fn the_queued_index_knob_picks_the_pop_query() {
        for null_tenant in [true, false] {
            let old = queued_pop_sql(QueuedIndex::Flow, null_tenant);
            let new = queued_pop_sql(QueuedIndex::FlowDate, null_tenant);
            assert!(old.contains("WITH (UPDLOCK, ROWLOCK)") && !old.contains("READPAST"));
            assert!(new.contains("WITH (UPDLOCK, READPAST, ROWLOCK)"));
            for sql in [old, new] {
                assert!(sql.contains("ORDER BY [date] ASC"));
                if null_tenant {
                    assert!(
                        sql.contains("tenant_id IS NULL AND namespace = @P1 AND flow_id = @P2")
                    );
                    assert!(sql.contains("TOP (@P3)"));
                } else {
                    assert!(sql.contains("tenant_id = @P1 AND namespace = @P2 AND flow_id = @P3"));
                    assert!(sql.contains("TOP (@P4)"));
                }
            }
        }
        let (tenant, ns, flow, limit) = (Some("main"), "n", "f", 1_i64);
        assert_eq!(pop_params(&tenant, &ns, &flow, &limit).len(), 4);
        assert_eq!(pop_params(&None, &ns, &flow, &limit).len(), 3);
    }

    #[test]
    fn a_full_log_batch_binds_two_parameters_a_row() {
        let sql = insert_logs_sql(ROWS_PER_INSERT);
        assert!(sql.contains(&format!("@P{}", ROWS_PER_INSERT * 2)));
        assert!(!sql.contains(&format!("@P{}", ROWS_PER_INSERT * 2 + 1)));
    }

    #[test]
    fn bound_dates_have_at_most_seven_fractional_digits() {
        let t: jiff::Timestamp = "2024-01-02T03:04:05.123456789Z".parse().unwrap();
        assert_eq!(datetime2(t), "2024-01-02T03:04:05.1234567");
        let t: jiff::Timestamp = "2024-01-02T03:04:05Z".parse().unwrap();
        assert_eq!(datetime2(t), "2024-01-02T03:04:05.0000000");
    }

    #[test]
    fn both_mappings_decode_a_stored_document() {
        let text = r#"{"a": [1, {"b": "c"}]}"#;
        let direct: serde_json::Value =
            super::super::decode_doc(BACKEND, JsonMapping::Direct, "log", "k", text).unwrap();
        let normalized: serde_json::Value =
            super::super::decode_doc(BACKEND, JsonMapping::Normalize, "log", "k", text).unwrap();
        assert_eq!(direct, normalized);
        let err = super::super::decode_doc::<serde_json::Value>(
            BACKEND,
            JsonMapping::Direct,
            "log",
            "k1",
            "{",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mssql") && err.contains("`k1`"), "{err}");
    }
}
