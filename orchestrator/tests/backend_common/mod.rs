//! Shared by the backend test files: an isolated database per test on each backend.
//!
//! PostgreSQL tests get their own schema (`?flowbench_schema=t_fb_…`) and MySQL/MariaDB and
//! SQL Server tests their own database (`t_fb_…`), dropped when the test ends, so that several
//! test processes can share one server. A server URL comes from `FLOWBENCH_POSTGRES_URL` /
//! `FLOWBENCH_MYSQL_URL` / `FLOWBENCH_MSSQL_URL`. Without one, or when the server does not
//! answer, the test prints why and is skipped; with `CI=true` the project's local default URL
//! is used and an unreachable server fails the test.
//!
//! SQL Server is the exception: the project's machines have none (and no Docker engine to
//! start one), so its tests run only where `FLOWBENCH_MSSQL_URL` is set, in a build with the
//! `mssql` feature, and are skipped otherwise, in CI too.

#![allow(dead_code)] // each test file uses part of it

use std::time::Duration;

use orchestrator::knobs::Knobs;
use orchestrator::queue::Timing;
use orchestrator::service::{Config, Orchestrator};
use sqlx::Connection as _;

/// Turns each `async fn case(backend: Backend)` of the test file into one test per backend,
/// `sqlite::case`, `postgres::case`, `mysql::case` and `mssql::case`. The file names
/// `Backend` and the cases at its root; `#[macro_use] mod backend_common;` brings the macro in.
#[allow(unused_macros)] // backends_connect.rs and multiprocess.rs do not use it
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        on_every_backend!(@module sqlite, Sqlite, $($case),*);
        on_every_backend!(@module postgres, Postgres, $($case),*);
        on_every_backend!(@module mysql, Mysql, $($case),*);
        on_every_backend!(@module mssql, Mssql, $($case),*);
    };
    (@module $module:ident, $backend:ident, $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::$backend).await
                }
            )*
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
    Mssql,
}

impl Backend {
    fn env(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "FLOWBENCH_POSTGRES_URL",
            Backend::Mysql => "FLOWBENCH_MYSQL_URL",
            Backend::Mssql => "FLOWBENCH_MSSQL_URL",
        }
    }

    /// Where DESIGN.md says the project's machines run each server.
    fn local_default(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Backend::Mysql => "mysql://root@127.0.0.1:3306/test",
            Backend::Mssql => "mssql://sa:PASSWORD@127.0.0.1:1433/master?trust_cert=true",
        }
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The server URL to test against, or `None` (printed) when the test is to be skipped.
pub fn server_url(backend: Backend) -> Option<String> {
    match std::env::var(backend.env()) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ if backend == Backend::Mssql => {
            eprintln!(
                "SKIPPED: {} is not set: there is no SQL Server on this machine (nor a Docker engine \
                 to start one); set it, e.g. {}={}, to run the SQL Server tests",
                backend.env(),
                backend.env(),
                backend.local_default()
            );
            None
        }
        _ if in_ci() => Some(backend.local_default().to_string()),
        _ => {
            eprintln!(
                "SKIPPED: {} is not set (e.g. {}={})",
                backend.env(),
                backend.env(),
                backend.local_default()
            );
            None
        }
    }
}

/// A database of one's own, dropped on drop.
pub struct TestDb {
    pub backend: Backend,
    /// The URL to give the orchestrator (`--db`).
    pub url: String,
    /// Holds the SQLite file and the internal storage.
    pub dir: tempfile::TempDir,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    PgSchema { admin: String, schema: String },
    MysqlDatabase { admin: String, database: String },
    MssqlDatabase { admin: String, database: String },
}

fn unique_name() -> String {
    format!("t_fb_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

/// `mysql://u@h:p/db?x` with `db` replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL has a scheme");
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Prints that the test is skipped and why; under `CI=true` fails it instead.
pub fn skip_or_fail(what: &str, why: &str) {
    if in_ci() {
        panic!("{what}: {why} (CI=true makes this a failure)");
    }
    eprintln!("SKIPPED: {what}: {why}");
}

fn unreachable(backend: Backend, url: &str, e: impl std::fmt::Display) -> Option<TestDb> {
    let url = orchestrator::repository::redact(url);
    skip_or_fail(
        &format!("{backend:?} server at {url}"),
        &format!("unreachable: {e}"),
    );
    None
}

impl TestDb {
    /// A fresh database on `backend`, or `None` when the test is to be skipped.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("flowbench.db").display());
                Some(TestDb {
                    backend,
                    url,
                    dir,
                    cleanup: None,
                })
            }
            Backend::Postgres => {
                let admin = server_url(backend)?;
                let probe = tokio::time::timeout(
                    Duration::from_secs(5),
                    sqlx::PgConnection::connect(&admin),
                )
                .await;
                match probe {
                    Ok(Ok(c)) => {
                        let _ = c.close().await;
                    }
                    Ok(Err(e)) => return unreachable(backend, &admin, e),
                    Err(_) => return unreachable(backend, &admin, "no answer within 5s"),
                }
                // The store creates the schema itself; the test only names and drops it.
                let schema = unique_name();
                let sep = if admin.contains('?') { '&' } else { '?' };
                let url = format!("{admin}{sep}flowbench_schema={schema}");
                Some(TestDb {
                    backend,
                    url,
                    dir,
                    cleanup: Some(Cleanup::PgSchema { admin, schema }),
                })
            }
            Backend::Mysql => {
                let admin = server_url(backend)?;
                let probe = tokio::time::timeout(
                    Duration::from_secs(5),
                    sqlx::MySqlConnection::connect(&admin),
                )
                .await;
                let mut conn = match probe {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return unreachable(backend, &admin, e),
                    Err(_) => return unreachable(backend, &admin, "no answer within 5s"),
                };
                let database = unique_name();
                // `database` is generated here: [a-z0-9_] only.
                sqlx::query(&format!(
                    "CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
                let _ = conn.close().await;
                Some(TestDb {
                    backend,
                    url: with_database(&admin, &database),
                    dir,
                    cleanup: Some(Cleanup::MysqlDatabase { admin, database }),
                })
            }
            Backend::Mssql => Self::create_mssql(dir).await,
        }
    }

    #[cfg(feature = "mssql")]
    async fn create_mssql(dir: tempfile::TempDir) -> Option<TestDb> {
        use orchestrator::repository::{Error, MssqlStore};
        let backend = Backend::Mssql;
        let admin = server_url(backend)?;
        let database = unique_name();
        match MssqlStore::create_database(&admin, &database).await {
            Ok(()) => {}
            Err(e @ Error::Unreachable { .. }) => return unreachable(backend, &admin, e),
            Err(e) => panic!("CREATE DATABASE {database}: {e}"),
        }
        Some(TestDb {
            backend,
            url: with_database(&admin, &database),
            dir,
            cleanup: Some(Cleanup::MssqlDatabase { admin, database }),
        })
    }

    #[cfg(not(feature = "mssql"))]
    async fn create_mssql(_dir: tempfile::TempDir) -> Option<TestDb> {
        eprintln!(
            "SKIPPED: SQL Server: this build lacks the `mssql` feature (run the tests with \
             `--features mssql` and FLOWBENCH_MSSQL_URL set)"
        );
        None
    }

    /// For PostgreSQL, a connection to the server whose `search_path` is this test's schema,
    /// to read the tables directly.
    pub async fn pg_connection(&self) -> sqlx::PgConnection {
        let Some(Cleanup::PgSchema { admin, schema }) = &self.cleanup else {
            panic!("not a PostgreSQL test database");
        };
        let options: sqlx::postgres::PgConnectOptions = admin.parse().expect("a URL");
        sqlx::PgConnection::connect_with(&options.options([("search_path", schema.as_str())]))
            .await
            .expect("a connection to the test schema")
    }

    pub fn config(&self, knobs: Knobs) -> Config {
        Config {
            db: self.url.clone(),
            knobs,
            storage: self.dir.path().join("storage"),
            timing: Timing::default(),
        }
    }

    pub async fn orchestrator(&self, knobs: Knobs) -> Orchestrator {
        Orchestrator::connect(self.config(knobs))
            .await
            .unwrap_or_else(|e| panic!("connecting to {:?}: {e:#}", self.backend))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself: the statement
        // runs on a thread with a runtime of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let r = match &cleanup {
                    Cleanup::PgSchema { admin, schema } => {
                        match sqlx::PgConnection::connect(admin).await {
                            Ok(mut c) => {
                                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                                    .execute(&mut c)
                                    .await
                                    .map(|_| ())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    #[cfg(feature = "mssql")]
                    Cleanup::MssqlDatabase { admin, database } => {
                        use orchestrator::repository::MssqlStore;
                        if let Err(e) = MssqlStore::drop_database(admin, database).await {
                            eprintln!("warning: dropping the test database failed: {e}");
                        }
                        Ok(())
                    }
                    #[cfg(not(feature = "mssql"))]
                    Cleanup::MssqlDatabase { .. } => Ok(()),
                    Cleanup::MysqlDatabase { admin, database } => {
                        match sqlx::MySqlConnection::connect(admin).await {
                            Ok(mut c) => {
                                sqlx::query(&format!("DROP DATABASE IF EXISTS {database}"))
                                    .execute(&mut c)
                                    .await
                                    .map(|_| ())
                            }
                            Err(e) => Err(e),
                        }
                    }
                };
                if let Err(e) = r {
                    eprintln!("warning: dropping the test database failed: {e}");
                }
            })
        });
        let _ = done.join();
    }
}

#[test]
fn database_is_replaced_in_urls() {
    assert_eq!(
        with_database("mysql://root@h:3306/test", "t_x"),
        "mysql://root@h:3306/t_x"
    );
    assert_eq!(
        with_database("mysql://root@h/test?ssl-mode=disabled", "t_x"),
        "mysql://root@h/t_x?ssl-mode=disabled"
    );
    assert_eq!(with_database("mysql://root@h", "t_x"), "mysql://root@h/t_x");
}
