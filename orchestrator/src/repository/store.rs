//! The queues and repositories, written once over the sqlx dialects: every [`Store`] and
//! [`Tx`] method binds its values into its [`Dialect`]'s statement and reads the rows back,
//! so that a dialect holds only its SQL text and what it alone can do.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::query_builder::Separated;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row,
    Transaction, Type,
};

use super::dialect::{Dialect, Poll, q};
use super::search::{self, ExecutionSearch, Page, Param};
use super::{
    Counts, ExecutionDelay, ExecutionQueued, Message, MultipleConditionWindow, Notifier, Polled,
    PopPlan, QueueType, Result, SavedExecution, Store, TriggerState, Tx, decode_doc,
};
use crate::knobs::JsonMapping;
use crate::model::{Execution, LogEntry};

/// A database reached through sqlx, with the dialect `D`.
pub struct SqlxStore<D: Dialect> {
    /// Where transactions run. SQLite's is a pool of one connection: its single writer.
    write: Pool<D::DB>,
    /// Where plain reads run: the same pool, except on SQLite, whose readers in WAL mode
    /// never wait for the writer.
    read: Pool<D::DB>,
    mapping: JsonMapping,
    notifier: Arc<Notifier>,
    dialect: Arc<D>,
}

impl<D: Dialect> SqlxStore<D> {
    pub(crate) fn new(
        write: Pool<D::DB>,
        read: Pool<D::DB>,
        mapping: JsonMapping,
        notifier: Arc<Notifier>,
        dialect: D,
    ) -> Self {
        SqlxStore {
            write,
            read,
            mapping,
            notifier,
            dialect: Arc::new(dialect),
        }
    }

    /// A transaction with this store's settings: what [`Store::begin_tx`] boxes.
    async fn transaction(&self) -> Result<SqlxTx<D>> {
        Ok(SqlxTx {
            tx: self.write.begin().await.map_err(q::<D>("begin"))?,
            mapping: self.mapping,
            dialect: self.dialect.clone(),
        })
    }
}

// The where-clauses below say what sqlx must offer for a database to run under
// `SqlxStore` (each sqlx driver flowbench uses does). Rust does not carry a trait's
// where-clauses to its users, so each impl spells them out.
#[async_trait]
impl<D: Dialect> Store for SqlxStore<D>
where
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'y> String: Encode<'y, D::DB> + Type<D::DB>,
    for<'y> i64: Encode<'y, D::DB> + Decode<'y, D::DB> + Type<D::DB>,
    for<'y> i32: Encode<'y, D::DB> + Decode<'y, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn begin_tx(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(self.transaction().await?))
    }

    async fn execution(&self, id: &str) -> Result<Option<Execution>> {
        let row = sqlx::query(&self.dialect.sql().execution)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(q::<D>("read execution"))?;
        row.map(|r| D::document(self.mapping, &r, 0, "execution", id))
            .transpose()
    }

    async fn search_executions(&self, search: &ExecutionSearch) -> Result<Page<Execution>> {
        let statements = search::statements(search, &self.dialect.sql().search);
        let op = "search executions";
        let total = bind_search(sqlx::query(&statements.count), &statements.count_params)
            .fetch_one(&self.read)
            .await
            .and_then(|row| row.try_get::<i64, _>(0))
            .map_err(q::<D>(op))?;
        let rows = bind_search(sqlx::query(&statements.page), &statements.page_params)
            .fetch_all(&self.read)
            .await
            .map_err(q::<D>(op))?;
        let results = rows
            .iter()
            .map(|r| {
                let key = D::text(r, 0).map_err(q::<D>(op))?;
                D::document(self.mapping, r, 1, "execution", &key)
            })
            .collect::<Result<_>>()?;
        Ok(Page {
            results,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }

    async fn delete_execution(&self, id: &str, logs: bool) -> Result<bool> {
        let sql = self.dialect.sql();
        let mut tx = self.write.begin().await.map_err(q::<D>("begin"))?;
        let deleted = sqlx::query(sql.delete_execution)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(q::<D>("delete execution"))?;
        if logs {
            sqlx::query(sql.delete_logs)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q::<D>("delete an execution's logs"))?;
        }
        tx.commit().await.map_err(q::<D>("commit"))?;
        Ok(D::rows_affected(&deleted) > 0)
    }

    async fn executions_of_flow(&self, namespace: &str, flow_id: &str) -> Result<Vec<Execution>> {
        let rows = sqlx::query(&self.dialect.sql().executions_of_flow)
            .bind(namespace)
            .bind(flow_id)
            .fetch_all(&self.read)
            .await
            .map_err(q::<D>("read a flow's executions"))?;
        rows.iter()
            .map(|r| {
                let key = D::text(r, 0).map_err(q::<D>("read a flow's executions"))?;
                D::document(self.mapping, r, 1, "execution", &key)
            })
            .collect()
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>> {
        let rows = sqlx::query(&self.dialect.sql().logs)
            .bind(execution_id)
            .fetch_all(&self.read)
            .await
            .map_err(q::<D>("read logs"))?;
        rows.iter()
            .map(|r| {
                let key = D::text(r, 0).map_err(q::<D>("read logs"))?;
                D::document(self.mapping, r, 1, "log", &key)
            })
            .collect()
    }

    async fn flow(&self, namespace: &str, id: &str) -> Result<Option<(i32, String)>> {
        let row = sqlx::query(self.dialect.sql().flow)
            .bind(namespace)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(q::<D>("read flow"))?;
        row.map(|r| revision_and_source::<D>(&r))
            .transpose()
            .map_err(q::<D>("read flow"))
    }

    async fn flows(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(self.dialect.sql().flows)
            .fetch_all(&self.read)
            .await
            .map_err(q::<D>("list flows"))?;
        rows.iter()
            .map(|r| D::text(r, 0))
            .collect::<Result<_, _>>()
            .map_err(q::<D>("list flows"))
    }

    async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(self.dialect.sql().counts)
            .fetch_one(&self.read)
            .await
            .map_err(q::<D>("count rows"))?;
        let n = |i: usize| row.try_get::<i64, _>(i).map_err(q::<D>("count rows"));
        Ok(Counts {
            executions: n(0)?,
            terminal_executions: n(1)?,
            logs: n(2)?,
            pending_messages: n(3)?,
            running_jobs: n(4)?,
        })
    }

    async fn clean_queue(&self) -> Result<u64> {
        let r = sqlx::query(self.dialect.sql().clean_queue)
            .execute(&self.write)
            .await
            .map_err(q::<D>("clean queue"))?;
        Ok(D::rows_affected(&r))
    }

    async fn kills_after(&self, after: i64, limit: usize) -> Result<Vec<Polled>> {
        let rows = sqlx::query(self.dialect.sql().kills_after)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(q::<D>("read the kill queue"))?;
        queue_rows::<D>(&rows).map_err(q::<D>("read the kill queue"))
    }

    async fn version(&self) -> Result<String> {
        let row = sqlx::query(self.dialect.sql().version)
            .fetch_one(&self.read)
            .await
            .map_err(q::<D>("read version"))?;
        let version = D::text(&row, 0).map_err(q::<D>("read version"))?;
        Ok(D::version_label(version))
    }

    async fn analyze_queued(&self) -> Result<()> {
        sqlx::query(self.dialect.sql().analyze_queued)
            .execute(&self.write)
            .await
            .map_err(q::<D>("analyze execution_queued"))?;
        Ok(())
    }

    async fn explain_queued_pop(
        &self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<PopPlan> {
        let sql = self.dialect.sql();
        let statement = &sql.queued_pop[usize::from(tenant.is_none())];
        let explain = format!("{}{statement}", sql.explain);
        // On the writer, which pops and which ran ANALYZE, so the plan is made with the same
        // statistics; in a transaction rolled back, though EXPLAIN without ANALYZE runs
        // nothing.
        let mut tx = self.write.begin().await.map_err(q::<D>("begin"))?;
        let rows = bind_pop(sqlx::query(&explain), tenant, namespace, flow_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(q::<D>("explain the queued pop"))?;
        tx.rollback().await.map_err(q::<D>("rollback"))?;
        Ok(PopPlan {
            statement: statement.clone(),
            plan: D::plan_text(&rows)?,
        })
    }

    async fn poll_rows_read(&self, kinds: &[QueueType], limit: usize) -> Result<Option<u64>> {
        let mut tx = self.transaction().await?;
        // Reading a counter may read rows itself (MySQL's status table): a reading between
        // two readings measures that, and is taken off.
        let Some(first) = D::queue_rows_read(&mut *tx.tx).await? else {
            return Ok(None);
        };
        let second = D::queue_rows_read(&mut *tx.tx).await?.unwrap_or(first);
        tx.poll(kinds, limit).await?;
        let after = D::queue_rows_read(&mut *tx.tx).await?.unwrap_or(second);
        tx.tx.rollback().await.map_err(q::<D>("rollback"))?;
        let reading = second.saturating_sub(first);
        Ok(Some(after.saturating_sub(second).saturating_sub(reading)))
    }
}

/// `(revision, source)` from the first two columns.
fn revision_and_source<D: Dialect>(
    row: &<D::DB as Database>::Row,
) -> Result<(i32, String), sqlx::Error>
where
    for<'y> i32: Decode<'y, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    Ok((row.try_get(0)?, D::text(row, 1)?))
}

/// Queue rows `(offset, type, key, value)` as messages, in offset order.
fn queue_rows<D: Dialect>(rows: &[<D::DB as Database>::Row]) -> Result<Vec<Polled>, sqlx::Error>
where
    for<'y> i64: Decode<'y, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    let rows = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>(0)?,
                D::text(r, 1)?,
                D::text(r, 2)?,
                D::text(r, 3)?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Polled::in_offset_order(rows))
}

/// Binds the pop's values in the order of [`super::dialect::Sql::queued_pop`]: the tenant
/// if there is one, the namespace, the flow, and the limit of 1, which jOOQ binds too.
fn bind_pop<'a, DB: Database>(
    query: super::dialect::Bound<'a, DB>,
    tenant: Option<&'a str>,
    namespace: &'a str,
    flow_id: &'a str,
) -> super::dialect::Bound<'a, DB>
where
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'y> i64: Encode<'y, DB> + Type<DB>,
{
    let query = match tenant {
        Some(t) => query.bind(t),
        None => query,
    };
    query.bind(namespace).bind(flow_id).bind(1_i64)
}

/// Binds a search's values in order.
fn bind_search<'a, DB: Database>(
    mut query: super::dialect::Bound<'a, DB>,
    params: &'a [Param],
) -> super::dialect::Bound<'a, DB>
where
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'y> i64: Encode<'y, DB> + Type<DB>,
{
    for p in params {
        query = match p {
            Param::Text(s) => query.bind(s.as_str()),
            Param::Int(n) => query.bind(*n),
        };
    }
    query
}

/// One transaction of a [`SqlxStore`].
pub(crate) struct SqlxTx<D: Dialect> {
    tx: Transaction<'static, D::DB>,
    mapping: JsonMapping,
    dialect: Arc<D>,
}

impl<D: Dialect> SqlxTx<D> {
    /// Whether a saved execution may be reused by [`Tx::load_execution_saved`]: the database
    /// keeps the document's text as written, and the JSON mapping is the default one. (The
    /// `jdbc.json-mapping=normalize` path reproduces Kestra's decode before 0.20, so each of
    /// its loads decodes, as Kestra's did.)
    fn keeps_documents(&self) -> bool {
        D::KEEPS_DOCUMENT_TEXT && self.mapping == JsonMapping::Direct
    }

    /// Inserts `rows` in multi-row statements: `head`, then each row's values as `bind`
    /// pushes them, then `tail`.
    async fn insert_rows<T: Sync>(
        &mut self,
        op: &'static str,
        head: &str,
        rows: &[T],
        tail: &str,
        mut bind: impl for<'b> FnMut(&mut Separated<'_, 'b, D::DB, &'static str>, &'b T) + Send,
    ) -> Result<()> {
        for chunk in rows.chunks(D::ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<D::DB>::new(head);
            qb.push_values(chunk, |mut b, row| bind(&mut b, row));
            qb.push(tail);
            D::execute_built(&mut self.tx, qb)
                .await
                .map_err(q::<D>(op))?;
        }
        Ok(())
    }

    /// `head`, then `values` bound and separated by commas, then `)`: a statement over a
    /// list (`IN (…)`), in chunks that each dialect's parameter limit allows.
    async fn execute_in<T: Sync>(
        &mut self,
        op: &'static str,
        head: &str,
        values: &[T],
        bind: impl for<'b> Fn(&mut Separated<'_, 'b, D::DB, &'static str>, &'b T) + Send,
    ) -> Result<()> {
        for chunk in values.chunks(D::ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<D::DB>::new(head);
            let mut sep = qb.separated(", ");
            for v in chunk {
                bind(&mut sep, v);
            }
            qb.push(")");
            D::execute_built(&mut self.tx, qb)
                .await
                .map_err(q::<D>(op))?;
        }
        Ok(())
    }
}

impl<D: Dialect> SqlxTx<D>
where
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
{
    /// The execution's row, read for update ([`Sql::load_execution`]).
    async fn execution_row(&mut self, id: &str) -> Result<Option<<D::DB as Database>::Row>> {
        sqlx::query(&self.dialect.sql().load_execution)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q::<D>("load execution"))
    }

    /// Upserts the execution with its serialized `document`.
    async fn write_execution(&mut self, execution: &Execution, document: String) -> Result<()> {
        let query = sqlx::query(self.dialect.sql().save_execution);
        D::bind_execution(query, execution, document)
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("save execution"))?;
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> Tx for SqlxTx<D>
where
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'y> String: Encode<'y, D::DB> + Type<D::DB>,
    for<'y> i64: Encode<'y, D::DB> + Decode<'y, D::DB> + Type<D::DB>,
    for<'y> i32: Encode<'y, D::DB> + Decode<'y, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    async fn poll(&mut self, kinds: &[QueueType], limit: usize) -> Result<Vec<Polled>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = self.dialect.sql();
        let qb = match &sql.poll {
            Poll::InList {
                head,
                limit: at,
                end,
            } => {
                let mut qb = QueryBuilder::<D::DB>::new(*head);
                let mut sep = qb.separated(", ");
                for k in kinds {
                    sep.push_bind(k.as_str());
                }
                qb.push(*at);
                qb.push_bind(limit as i64);
                qb.push(*end);
                qb
            }
            Poll::EachKind(pieces) => {
                let pieces = pieces(kinds);
                let mut qb = QueryBuilder::<D::DB>::new(&pieces[0]);
                for piece in &pieces[1..] {
                    qb.push_bind(limit as i64);
                    qb.push(piece);
                }
                qb
            }
        };
        let rows = D::fetch_built(&mut self.tx, qb)
            .await
            .map_err(q::<D>("poll queue"))?;
        let polled = queue_rows::<D>(&rows).map_err(q::<D>("poll queue"))?;
        if let Some(mark) = sql.mark_polled.filter(|_| !polled.is_empty()) {
            let offsets: Vec<i64> = polled.iter().map(|p| p.offset).collect();
            self.execute_in("mark polled messages consumed", mark, &offsets, |s, o| {
                s.push_bind(*o);
            })
            .await?;
        }
        Ok(polled)
    }

    async fn push(&mut self, messages: &[Message]) -> Result<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let dialect = self.dialect.clone();
        let sql = dialect.sql();
        self.insert_rows("push to queue", sql.push, messages, "", |b, m| {
            b.push_bind(m.kind.as_str())
                .push_bind(m.key.as_str())
                .push_bind(m.value.as_str())
                .push_unseparated(sql.json_cast);
        })
        .await?;
        let kinds: Vec<QueueType> = QueueType::ALL
            .into_iter()
            .filter(|k| messages.iter().any(|m| m.kind == *k))
            .collect();
        dialect.pushed(&mut *self.tx, &kinds).await
    }

    async fn push_consumed(&mut self, messages: &[Message]) -> Result<()> {
        let dialect = self.dialect.clone();
        let sql = dialect.sql();
        self.insert_rows("push to queue", sql.push_consumed, messages, "", |b, m| {
            b.push_bind(m.kind.as_str())
                .push_bind(m.key.as_str())
                .push_bind(m.value.as_str())
                .push_unseparated(sql.json_cast)
                .push(sql.true_literal);
        })
        .await
    }

    async fn load_execution(&mut self, id: &str) -> Result<Option<Execution>> {
        let row = self.execution_row(id).await?;
        row.map(|r| D::document(self.mapping, &r, 0, "execution", id))
            .transpose()
    }

    async fn save_execution(&mut self, execution: &Execution) -> Result<()> {
        let document = serde_json::to_string(execution).expect("an execution always serializes");
        self.write_execution(execution, document).await
    }

    async fn load_execution_saved(
        &mut self,
        id: &str,
        saved: Option<SavedExecution>,
    ) -> Result<Option<Execution>> {
        let Some(saved) = saved.filter(|_| self.keeps_documents()) else {
            return self.load_execution(id).await;
        };
        let Some(row) = self.execution_row(id).await? else {
            return Ok(None);
        };
        let text = D::text(&row, 0).map_err(q::<D>("load execution"))?;
        if text == saved.document {
            return Ok(Some(saved.execution));
        }
        decode_doc(D::BACKEND, self.mapping, "execution", id, &text).map(Some)
    }

    async fn save_execution_keeping(
        &mut self,
        execution: Execution,
    ) -> Result<Option<SavedExecution>> {
        if !self.keeps_documents() {
            self.save_execution(&execution).await?;
            return Ok(None);
        }
        let document = serde_json::to_string(&execution).expect("an execution always serializes");
        self.write_execution(&execution, document.clone()).await?;
        Ok(Some(SavedExecution {
            document,
            execution,
        }))
    }

    async fn count_running(&mut self, namespace: &str, flow_id: &str) -> Result<i64> {
        let mut query = sqlx::query(self.dialect.sql().count_running)
            .bind(namespace)
            .bind(flow_id);
        for state in super::running_state_names() {
            query = query.bind(state);
        }
        let row = query
            .fetch_one(&mut *self.tx)
            .await
            .map_err(q::<D>("count running executions"))?;
        row.try_get(0).map_err(q::<D>("count running executions"))
    }

    async fn queued_push(&mut self, queued: &ExecutionQueued) -> Result<()> {
        sqlx::query(self.dialect.sql().queued_push)
            .bind(queued.uid())
            .bind(queued.to_json())
            .bind(queued.tenant_id.as_deref())
            .bind(queued.namespace.as_str())
            .bind(queued.flow_id.as_str())
            .bind(D::queued_date(queued.date))
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("queue execution"))?;
        Ok(())
    }

    async fn queued_pop(
        &mut self,
        tenant: Option<&str>,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Option<Execution>> {
        let dialect = self.dialect.clone();
        let sql = dialect.sql();
        let select = &sql.queued_pop[usize::from(tenant.is_none())];
        let row = bind_pop(sqlx::query(select), tenant, namespace, flow_id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q::<D>("pop queued execution"))?;
        let Some(row) = row else { return Ok(None) };
        let key = D::text(&row, 0).map_err(q::<D>("pop queued execution"))?;
        let queued: ExecutionQueued = D::document(self.mapping, &row, 1, "queued execution", &key)?;
        sqlx::query(sql.queued_delete)
            .bind(key.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("pop queued execution"))?;
        Ok(Some(queued.execution))
    }

    async fn delay_push(&mut self, delay: &ExecutionDelay) -> Result<()> {
        sqlx::query(self.dialect.sql().delay_push)
            .bind(delay.uid())
            .bind(delay.to_json())
            .bind(delay.date.as_millisecond())
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("store a delay"))?;
        Ok(())
    }

    async fn delays_take(&mut self, now_ms: i64, limit: usize) -> Result<Vec<ExecutionDelay>> {
        let sql = self.dialect.sql();
        let rows = sqlx::query(sql.delays_due)
            .bind(now_ms)
            .bind(limit as i64)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(q::<D>("take due delays"))?;
        let mut delays = Vec::with_capacity(rows.len());
        for row in &rows {
            let key = D::text(row, 0).map_err(q::<D>("take due delays"))?;
            let value = D::text(row, 1).map_err(q::<D>("take due delays"))?;
            sqlx::query(sql.delay_delete)
                .bind(key.as_str())
                .execute(&mut *self.tx)
                .await
                .map_err(q::<D>("take due delays"))?;
            match serde_json::from_str(&value) {
                Ok(delay) => delays.push(delay),
                // A row that does not decode is dropped with a warning, as the queue drops
                // a message that does not decode (`queue::decode`), rather than retried
                // every second for ever.
                Err(e) => tracing::warn!("delay {key} does not decode and is dropped: {e}"),
            }
        }
        Ok(delays)
    }

    async fn trigger_insert(&mut self, initial: &TriggerState) -> Result<()> {
        sqlx::query(self.dialect.sql().trigger_insert)
            .bind(initial.uid())
            .bind(initial.to_json())
            .bind(initial.next_execution_date.as_millisecond())
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("store a trigger"))?;
        Ok(())
    }

    async fn trigger_lock(&mut self, key: &str) -> Result<Option<TriggerState>> {
        let row = sqlx::query(self.dialect.sql().trigger_lock)
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q::<D>("lock a trigger"))?;
        row.map(|row| {
            let value = D::text(&row, 0).map_err(q::<D>("lock a trigger"))?;
            decode_doc(D::BACKEND, JsonMapping::Direct, "trigger", key, &value)
        })
        .transpose()
    }

    async fn trigger_put(&mut self, state: &TriggerState) -> Result<()> {
        sqlx::query(self.dialect.sql().trigger_put)
            .bind(state.to_json())
            .bind(state.next_execution_date.as_millisecond())
            .bind(state.uid())
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("store a trigger"))?;
        Ok(())
    }

    async fn multiple_condition_lock(
        &mut self,
        initial: &MultipleConditionWindow,
    ) -> Result<MultipleConditionWindow> {
        let key = initial.uid();
        // The row is locked first and inserted only when missing: on MySQL an insert that
        // finds the row would take a shared lock, and two executors would then deadlock on
        // the lock for update.
        for attempt in 0..2 {
            let row = sqlx::query(self.dialect.sql().multiple_condition_lock)
                .bind(&key)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(q::<D>("lock a multiple condition"))?;
            if let Some(row) = row {
                let value = D::text(&row, 0).map_err(q::<D>("lock a multiple condition"))?;
                return decode_doc(
                    D::BACKEND,
                    JsonMapping::Direct,
                    "multiple condition",
                    &key,
                    &value,
                );
            }
            if attempt == 0 {
                sqlx::query(self.dialect.sql().multiple_condition_insert)
                    .bind(&key)
                    .bind(initial.to_json())
                    .bind(initial.end.as_millisecond())
                    .execute(&mut *self.tx)
                    .await
                    .map_err(q::<D>("store a multiple condition"))?;
            }
        }
        Err(super::Error::Driver {
            backend: D::BACKEND,
            op: "lock a multiple condition",
            source: format!("window `{key}` stored in this transaction is not there").into(),
        })
    }

    async fn multiple_condition_put(&mut self, window: &MultipleConditionWindow) -> Result<()> {
        sqlx::query(self.dialect.sql().multiple_condition_put)
            .bind(window.to_json())
            .bind(window.end.as_millisecond())
            .bind(window.uid())
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("store a multiple condition"))?;
        Ok(())
    }

    async fn multiple_condition_delete(&mut self, key: &str) -> Result<()> {
        sqlx::query(self.dialect.sql().multiple_condition_delete)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("delete a multiple condition"))?;
        Ok(())
    }

    async fn multiple_conditions_purge(&mut self, now_ms: i64) -> Result<u64> {
        let done = sqlx::query(self.dialect.sql().multiple_conditions_purge)
            .bind(now_ms)
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("purge multiple conditions"))?;
        Ok(D::rows_affected(&done))
    }

    async fn insert_logs(&mut self, logs: &[LogEntry]) -> Result<()> {
        let dialect = self.dialect.clone();
        let sql = dialect.sql();
        self.insert_rows(
            "insert logs",
            sql.insert_logs,
            logs,
            sql.insert_logs_end,
            |b, l| {
                b.push_bind(l.id.as_str())
                    .push_bind(serde_json::to_string(l).expect("a log entry always serializes"))
                    .push_unseparated(sql.json_cast);
            },
        )
        .await
    }

    async fn lock_flow(&mut self, key: &str) -> Result<Option<(i32, String)>> {
        let row = sqlx::query(self.dialect.sql().lock_flow)
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(q::<D>("read flow"))?;
        row.map(|r| revision_and_source::<D>(&r))
            .transpose()
            .map_err(q::<D>("read flow"))
    }

    async fn put_flow(
        &mut self,
        key: &str,
        namespace: &str,
        id: &str,
        revision: i32,
        source: &str,
    ) -> Result<()> {
        sqlx::query(self.dialect.sql().put_flow)
            .bind(key)
            .bind(namespace)
            .bind(id)
            .bind(revision)
            .bind(source)
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("save flow"))?;
        Ok(())
    }

    async fn heartbeat(&mut self, instance: &str, kind: &str, now_ms: i64) -> Result<()> {
        sqlx::query(self.dialect.sql().heartbeat)
            .bind(instance)
            .bind(kind)
            .bind(now_ms)
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("heartbeat"))?;
        Ok(())
    }

    async fn remove_instance(&mut self, instance: &str) -> Result<()> {
        sqlx::query(self.dialect.sql().remove_instance)
            .bind(instance)
            .execute(&mut *self.tx)
            .await
            .map_err(q::<D>("remove instance"))?;
        Ok(())
    }

    async fn dead_instances(&mut self, kind: &str, older_than_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(self.dialect.sql().dead_instances)
            .bind(kind)
            .bind(older_than_ms)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(q::<D>("find dead instances"))?;
        rows.iter()
            .map(|r| D::text(r, 0))
            .collect::<Result<_, _>>()
            .map_err(q::<D>("find dead instances"))
    }

    async fn jobs_started(&mut self, worker: &str, jobs: &[(&str, &str)]) -> Result<()> {
        let dialect = self.dialect.clone();
        let sql = dialect.sql();
        let jobs = super::distinct_jobs(jobs);
        self.insert_rows(
            "record running jobs",
            sql.jobs_started,
            &jobs,
            sql.jobs_started_end,
            |b, (key, value)| {
                b.push_bind(*key)
                    .push_bind(worker)
                    .push_bind(*value)
                    .push_unseparated(sql.json_cast);
            },
        )
        .await
    }

    async fn jobs_finished(&mut self, keys: &[String]) -> Result<()> {
        let dialect = self.dialect.clone();
        self.execute_in(
            "clear finished jobs",
            dialect.sql().jobs_finished,
            keys,
            |s, k| {
                s.push_bind(k.as_str());
            },
        )
        .await
    }

    async fn take_jobs(&mut self, worker: &str) -> Result<Vec<(String, String)>> {
        let dialect = self.dialect.clone();
        let sql = dialect.sql();
        let rows = sqlx::query(sql.take_jobs)
            .bind(worker)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(q::<D>("take jobs of a dead worker"))?;
        let jobs = rows
            .iter()
            .map(|r| Ok((D::text(r, 0)?, D::text(r, 1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(q::<D>("take jobs of a dead worker"))?;
        if let Some(delete) = sql.take_jobs_delete {
            sqlx::query(delete)
                .bind(worker)
                .execute(&mut *self.tx)
                .await
                .map_err(q::<D>("take jobs of a dead worker"))?;
        }
        Ok(jobs)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        super::committed(self.tx.commit().await.map_err(q::<D>("commit")))
    }
}
