//! Connections: opening one (TCP, TDS login, session settings), the bb8 pool of them, and the
//! schema migration that runs once per start.
//!
//! The pool is bb8 with a manager of our own rather than `bb8-tiberius`, for one reason: a
//! connection returned to the pool while its transaction is still open must be thrown away,
//! not handed to the next user (see [`Conn::in_tx`]). bb8 asks the manager through
//! `has_broken`, which `bb8-tiberius` always answers `false`.

use tiberius::{Client, Config};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::knobs::QueuedIndex;

pub(crate) type TdsClient = Client<Compat<TcpStream>>;

/// Session settings every connection gets before its first statement.
///
/// Rows of a table with an index on a computed column can only be written with these SET
/// options (SQL Server refuses the INSERT otherwise), and ODBC-style defaults are not what a
/// plain TDS login gets. XACT_ABORT rolls the whole transaction back on any error, so a failed
/// statement never leaves half a step applied. READ COMMITTED is the default, written out
/// because a queue's `READPAST` needs it.
const SESSION_SETUP: &str = "SET ANSI_NULLS ON; SET ANSI_PADDING ON; SET ANSI_WARNINGS ON; \
    SET ARITHABORT ON; SET CONCAT_NULL_YIELDS_NULL ON; SET QUOTED_IDENTIFIER ON; \
    SET NUMERIC_ROUNDABORT OFF; SET XACT_ABORT ON; \
    SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// A pooled connection.
pub(crate) struct Conn {
    pub client: TdsClient,
    /// True from `BEGIN TRAN` until COMMIT or ROLLBACK has been acknowledged. A connection
    /// that goes back to the pool with this still set is discarded, and closing its session
    /// makes the server roll the transaction back; so no one ever inherits another's locks.
    pub in_tx: bool,
}

/// Opens one session: TCP, the TDS login (following one Azure-style redirect), then
/// [`SESSION_SETUP`].
pub(crate) async fn open(config: &Config) -> tiberius::Result<Conn> {
    let client = match login(config.clone()).await {
        Err(tiberius::error::Error::Routing { host, port }) => {
            let mut redirected = config.clone();
            redirected.host(host);
            redirected.port(port);
            login(redirected).await?
        }
        other => other?,
    };
    let mut conn = Conn {
        client,
        in_tx: false,
    };
    batch(&mut conn.client, SESSION_SETUP).await?;
    Ok(conn)
}

async fn login(config: Config) -> tiberius::Result<TdsClient> {
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// Runs a batch without parameters (SQL Server's SQLBatch, not `sp_executesql`: `BEGIN TRAN`
/// there would outlive its procedure and be refused) and drains its results.
pub(crate) async fn batch(client: &mut TdsClient, sql: &str) -> tiberius::Result<()> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

pub(crate) struct Manager {
    pub config: Config,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = tiberius::error::Error;

    async fn connect(&self) -> Result<Conn, Self::Error> {
        open(&self.config).await
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        batch(&mut conn.client, "SELECT 1").await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.in_tx
    }
}

/// The schema, one entry per file of `migrations/mssql`, applied in order.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "migration 0001_init",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/mssql/0001_init.sql"
        )),
    ),
    (
        2,
        "migration 0002_execution_queued_tenant_value",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/mssql/0002_execution_queued_tenant_value.sql"
        )),
    ),
    (
        3,
        "migration 0003_executordelayed",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/mssql/0003_executordelayed.sql"
        )),
    ),
    (
        4,
        "migration 0004_triggers",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/mssql/0004_triggers.sql"
        )),
    ),
    (
        5,
        "migration 0005_multipleconditions",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/mssql/0005_multipleconditions.sql"
        )),
    ),
];

/// Serialises migrations and the `queued.index` DDL across processes starting together
/// (SQL Server's counterpart of PostgreSQL's advisory lock). Held by the session, released
/// explicitly and in any case when the session closes.
const LOCK: &str = "DECLARE @r INT; \
    EXEC @r = sp_getapplock @Resource = N'flowbench.migrate', @LockMode = N'Exclusive', \
        @LockOwner = N'Session', @LockTimeout = 60000; \
    IF @r < 0 THROW 50001, N'flowbench: timed out waiting for another process to migrate', 1";
const UNLOCK: &str =
    "EXEC sp_releaseapplock @Resource = N'flowbench.migrate', @LockOwner = N'Session'";

const MIGRATIONS_TABLE: &str = "IF OBJECT_ID(N'flowbench_migrations', N'U') IS NULL \
    CREATE TABLE flowbench_migrations ( \
        version INT NOT NULL PRIMARY KEY, \
        description NVARCHAR(200) NOT NULL, \
        applied_at DATETIME2(3) NOT NULL DEFAULT SYSUTCDATETIME())";

/// Applies the migrations not yet recorded in `flowbench_migrations`, each in a transaction
/// of its own (DDL is transactional on SQL Server), then sets the `queued.index` knob's index.
/// Returns the step that failed with the error.
pub(crate) async fn migrate(
    conn: &mut Conn,
    index: QueuedIndex,
) -> Result<(), (&'static str, tiberius::error::Error)> {
    let client = &mut conn.client;
    batch(client, LOCK)
        .await
        .map_err(|e| ("lock migrations", e))?;
    let result = async {
        batch(client, MIGRATIONS_TABLE)
            .await
            .map_err(|e| ("create flowbench_migrations", e))?;
        for (version, description, script) in MIGRATIONS {
            let done = client
                .query(
                    "SELECT COUNT_BIG(*) FROM flowbench_migrations WHERE version = @P1",
                    &[version],
                )
                .await
                .map_err(|e| ("read flowbench_migrations", e))?
                .into_row()
                .await
                .map_err(|e| ("read flowbench_migrations", e))?
                .and_then(|r| r.get::<i64, _>(0))
                .unwrap_or(0);
            if done > 0 {
                continue;
            }
            let applied = async {
                batch(client, "BEGIN TRAN").await?;
                for b in batches(script) {
                    batch(client, b).await?;
                }
                client
                    .execute(
                        "INSERT INTO flowbench_migrations (version, description) VALUES (@P1, @P2)",
                        &[version, description],
                    )
                    .await?;
                batch(client, "COMMIT TRAN").await
            }
            .await;
            if let Err(e) = applied {
                let _ = batch(client, "IF @@TRANCOUNT > 0 ROLLBACK TRAN").await;
                return Err((*description, e));
            }
        }
        batch(client, &queued_index_ddl(index))
            .await
            .map_err(|e| ("set the queued.index index", e))
    }
    .await;
    let _ = batch(client, UNLOCK).await;
    result
}

/// Splits a script at lines holding only `GO`, as sqlcmd does.
pub(crate) fn batches(script: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in script.split_inclusive('\n') {
        if line.trim().eq_ignore_ascii_case("go") {
            out.push(&script[start..pos]);
            start = pos + line.len();
        }
        pos += line.len();
    }
    out.push(&script[start..]);
    out.retain(|b| !b.trim().is_empty());
    out
}

/// The `queued.index` knob picks the index `execution_queued` pops with: Kestra's old
/// (namespace, flow_id) or the (namespace, flow_id, date) one its PR added. The other is
/// dropped; both statements check the catalogue first, so a restart changes nothing.
pub(crate) fn queued_index_ddl(index: QueuedIndex) -> String {
    let pop = crate::repository::dialect::queued_pop(index);
    let columns: Vec<String> = pop.columns.iter().map(|c| format!("[{c}]")).collect();
    format!(
        "IF EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'{dropped}' AND object_id = OBJECT_ID(N'execution_queued'))
             DROP INDEX {dropped} ON execution_queued;
         IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'{index}' AND object_id = OBJECT_ID(N'execution_queued'))
             CREATE INDEX {index} ON execution_queued ({columns});",
        dropped = pop.dropped,
        index = pop.index,
        columns = columns.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_go_lines_only() {
        let s = "CREATE TABLE a (x INT);\nGO\n  go  \nSELECT 'GO';\nCREATE TABLE gone (x INT);\n";
        assert_eq!(
            batches(s),
            [
                "CREATE TABLE a (x INT);\n",
                "SELECT 'GO';\nCREATE TABLE gone (x INT);\n"
            ]
        );
        assert_eq!(batches("SELECT 1"), ["SELECT 1"]);
    }

    #[test]
    fn the_init_migration_is_one_batch_creating_every_table() {
        let (_, _, script) = MIGRATIONS[0];
        assert_eq!(batches(script).len(), 1);
        for table in [
            "queues",
            "executions",
            "logs",
            "execution_queued",
            "flows",
            "service_instance",
            "worker_job_running",
        ] {
            assert!(
                script.contains(&format!("CREATE TABLE {table} (")),
                "{table}"
            );
        }
        // Kestra's computed, persisted, indexed columns over the JSON document.
        for column in [
            "namespace",
            "flow_id",
            "state_current",
            "start_date",
            "end_date",
        ] {
            assert!(script.contains(&format!("    {column} AS ")), "{column}");
        }
        assert!(script.contains("state_duration AS CAST(DATEDIFF_BIG"));
        assert!(script.contains("CREATE INDEX ix_logs_execution_id ON logs (execution_id)"));
        assert!(script.contains("CREATE INDEX ix_logs_timestamp ON logs ([timestamp])"));
    }

    #[test]
    fn each_queued_index_setting_creates_its_index_and_drops_the_other() {
        let flow = queued_index_ddl(QueuedIndex::Flow);
        assert!(flow.contains("DROP INDEX ix_execution_queued_flow_date"));
        assert!(flow.contains(
            "CREATE INDEX ix_execution_queued_flow ON execution_queued ([tenant_id], [namespace], [flow_id])"
        ));
        let date = queued_index_ddl(QueuedIndex::FlowDate);
        assert!(date.contains("DROP INDEX ix_execution_queued_flow ON"));
        assert!(date.contains("([tenant_id], [namespace], [flow_id], [date])"));
    }
}
