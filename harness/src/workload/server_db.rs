//! A fresh database per run on a PostgreSQL or MySQL/MariaDB server.
//!
//! A run must start from empty tables created with its own variant's knobs: the
//! `queued.index` knob picks the index the schema is created with, and `json-mapping`
//! loads exactly the rows it inserted. On the embedded default each run gets a new file;
//! on a server each run gets a new database, `flowbench_<pid>_<n>`, created through the
//! URL the user gave (which must be allowed to create databases) and dropped when the
//! scenario ends, even when it failed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

use super::{Result, WorkloadError};
use crate::scenario::Backend;

/// The databases created for one scenario on one server.
pub struct ServerDatabases {
    /// The URL the user gave; it names the database the others are created from.
    admin_url: String,
    backend: Backend,
    created: Mutex<Vec<String>>,
    next: AtomicU32,
}

impl ServerDatabases {
    /// `None` for a backend whose runs share the given database (SQLite files, SQL
    /// Server).
    pub fn new(url: &str, backend: Backend) -> Option<ServerDatabases> {
        matches!(backend, Backend::Postgres | Backend::Mysql).then(|| ServerDatabases {
            admin_url: url.to_string(),
            backend,
            created: Mutex::new(Vec::new()),
            next: AtomicU32::new(0),
        })
    }

    /// The URL the user gave, which names the database the others are created from.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Creates an empty database and returns the URL that names it.
    pub async fn create(&self) -> Result<String> {
        let name = format!(
            "flowbench_{}_{}",
            std::process::id(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        // The name is built here from digits and `_`, so it is safe to splice into DDL,
        // which takes no bind parameters.
        self.execute(&format!("CREATE DATABASE {name}")).await?;
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        Ok(with_database(&self.admin_url, &name))
    }

    /// Drops every database [`create`](Self::create) made. Errors are returned after
    /// every drop was tried.
    pub async fn drop_all(&self) -> Result<()> {
        let names = std::mem::take(&mut *self.created.lock().unwrap_or_else(|p| p.into_inner()));
        let mut first_error = None;
        for name in names {
            let sql = match self.backend {
                // Connections a pool has not closed yet must not keep the database alive.
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                _ => format!("DROP DATABASE IF EXISTS {name}"),
            };
            if let Err(e) = self.execute(&sql).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops the databases that the `flowbench` process `pid` created on this server and
    /// could not drop itself, because it was killed: every `flowbench_<pid>_<n>`. `run`
    /// calls it for a scenario process that ended without its result.
    pub async fn drop_left_by(&self, pid: u32) -> Result<()> {
        let pattern = format!("flowbench\\_{pid}\\_%");
        let fail = |e: sqlx::Error| {
            WorkloadError::Failed(format!(
                "listing the databases of process {pid} on {}: {e}",
                orchestrator::repository::redact(&self.admin_url)
            ))
        };
        let names: Vec<String> = match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.admin_url)
                    .await
                    .map_err(fail)?;
                sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
                    .bind(&pattern)
                    .fetch_all(&mut c)
                    .await
                    .map_err(fail)?
            }
            _ => {
                let mut c = sqlx::MySqlConnection::connect(&self.admin_url)
                    .await
                    .map_err(fail)?;
                sqlx::query_scalar(
                    "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?",
                )
                .bind(&pattern)
                .fetch_all(&mut c)
                .await
                .map_err(fail)?
            }
        };
        // Only names of the exact form this module makes are spliced into DDL.
        let ours = |n: &String| {
            n.strip_prefix(&format!("flowbench_{pid}_"))
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        };
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(names.into_iter().filter(ours));
        self.drop_all().await
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        let fail = |e: sqlx::Error| {
            WorkloadError::Failed(format!(
                "{} on {}: {e}",
                sql.split_whitespace().take(2).collect::<Vec<_>>().join(" "),
                orchestrator::repository::redact(&self.admin_url)
            ))
        };
        match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.admin_url)
                    .await
                    .map_err(fail)?;
                sqlx::raw_sql(sql).execute(&mut c).await.map_err(fail)?;
                c.close().await.map_err(fail)
            }
            _ => {
                let mut c = sqlx::MySqlConnection::connect(&self.admin_url)
                    .await
                    .map_err(fail)?;
                sqlx::raw_sql(sql).execute(&mut c).await.map_err(fail)?;
                c.close().await.map_err(fail)
            }
        }
    }
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "fb_1"),
            "postgres://postgres@127.0.0.1:5432/fb_1"
        );
        assert_eq!(
            with_database("mysql://root:p%2Fw@db:3306/test?ssl-mode=disabled", "fb_2"),
            "mysql://root:p%2Fw@db:3306/fb_2?ssl-mode=disabled"
        );
        assert_eq!(
            with_database("postgres://u@h", "fb_3"),
            "postgres://u@h/fb_3"
        );
    }

    #[test]
    fn embedded_and_sql_server_runs_share_their_database() {
        assert!(ServerDatabases::new("sqlite", Backend::Sqlite).is_none());
        assert!(ServerDatabases::new("mssql://h/db", Backend::Mssql).is_none());
        assert!(ServerDatabases::new("postgres://h/db", Backend::Postgres).is_some());
    }
}
