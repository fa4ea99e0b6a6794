//! `--provision containers`: starts the database server `--db` names (`postgres`, `mysql` or
//! `mssql`) in a container through testcontainers, and hands back its URL and a handle that
//! keeps it running.
//!
//! It needs the `containers` cargo feature and a reachable Docker engine. Without either, the
//! error is one line saying what to do instead: `--db sqlite`, a server URL in
//! `FLOWBENCH_POSTGRES_URL` / `FLOWBENCH_MYSQL_URL` / `FLOWBENCH_MSSQL_URL`, a URL given to
//! `--db`, or starting Docker. The engine is found as testcontainers finds it (`DOCKER_HOST`,
//! `~/.testcontainers.properties`, then the local socket) and pinged before anything starts.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use orchestrator::provision::{Provision, provision};
//! let server = provision(Provision::Containers, "postgres").await?;
//! let store = orchestrator::repository::connect(&server.url, &Default::default()).await?;
//! // … the container is removed when `server` is dropped.
//! # Ok(()) }
//! ```

use crate::repository::{MSSQL_URL_ENV, MYSQL_URL_ENV, POSTGRES_URL_ENV};

/// How a server database is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provision {
    /// Start the server in a container (testcontainers; needs a Docker engine).
    Containers,
}

/// The server backends a container can be started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerBackend {
    Postgres,
    Mysql,
    Mssql,
}

impl ServerBackend {
    /// The backend `--db NAME` names: `postgres`, `mysql` or `mssql` (and their aliases).
    pub fn parse(db: &str) -> Option<ServerBackend> {
        match db {
            "postgres" | "postgresql" => Some(ServerBackend::Postgres),
            "mysql" | "mariadb" => Some(ServerBackend::Mysql),
            "mssql" | "sqlserver" => Some(ServerBackend::Mssql),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerBackend::Postgres => "postgres",
            ServerBackend::Mysql => "mysql",
            ServerBackend::Mssql => "mssql",
        }
    }

    /// The variable `--db NAME` otherwise reads the URL from.
    pub fn url_env(self) -> &'static str {
        match self {
            ServerBackend::Postgres => POSTGRES_URL_ENV,
            ServerBackend::Mysql => MYSQL_URL_ENV,
            ServerBackend::Mssql => MSSQL_URL_ENV,
        }
    }
}

/// What to use instead when no container can be started.
const ALTERNATIVES: &str = "use `--db sqlite`, set FLOWBENCH_POSTGRES_URL / FLOWBENCH_MYSQL_URL / FLOWBENCH_MSSQL_URL and pass `--db postgres|mysql|mssql`, pass a server URL to `--db`, or start a Docker engine for `--provision containers`";

/// A provisioning error: each is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--db` names no server backend (SQLite needs no server; a URL names one already running).
    #[error(
        "`--provision containers` starts a server for `--db postgres`, `--db mysql` or `--db mssql`, not for `{0}`"
    )]
    NotAServer(String),
    /// This build has no testcontainers.
    #[error(
        "`--provision containers` needs the orchestrator's `containers` cargo feature, which this build lacks: rebuild with `cargo build -p orchestrator --features containers` (for the harness, `--features orchestrator/containers`), or {ALTERNATIVES}"
    )]
    FeatureDisabled,
    /// No Docker engine answers.
    #[error(
        "cannot start a {backend} container: no Docker engine is reachable ({reason}); {ALTERNATIVES}"
    )]
    NoDockerEngine {
        backend: &'static str,
        reason: String,
    },
    /// The engine answered but the container did not start (image pull, start-up, ports).
    #[error("cannot start a {backend} container ({image}): {reason}")]
    Start {
        backend: &'static str,
        image: String,
        reason: String,
    },
    /// The server started but could not be prepared (SQL Server: creating its database).
    #[error(transparent)]
    Prepare(#[from] crate::repository::Error),
}

/// A running database server; dropping it stops and removes the container.
pub struct Provisioned {
    pub backend: ServerBackend,
    /// The URL to pass to `--db` / [`crate::repository::connect`].
    pub url: String,
    /// The container, held for its `Drop`.
    _container: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioned")
            .field("backend", &self.backend)
            .field("url", &crate::repository::redact(&self.url))
            .finish_non_exhaustive()
    }
}

/// Provides the server `db` names (`postgres`, `mysql` or `mssql`) as `how` says.
pub async fn provision(how: Provision, db: &str) -> Result<Provisioned, Error> {
    let Provision::Containers = how;
    let backend = ServerBackend::parse(db).ok_or_else(|| Error::NotAServer(db.to_string()))?;
    if backend == ServerBackend::Mssql && !cfg!(feature = "mssql") {
        return Err(crate::repository::Error::FeatureDisabled {
            backend: "mssql",
            feature: "mssql",
        }
        .into());
    }
    #[cfg(feature = "containers")]
    return containers::start(backend).await;
    #[cfg(not(feature = "containers"))]
    Err(Error::FeatureDisabled)
}

#[cfg(feature = "containers")]
mod containers {
    use std::time::Duration;

    #[cfg(feature = "mssql")]
    use testcontainers_modules::mssql_server;
    use testcontainers_modules::testcontainers::core::client::docker_client_instance;
    use testcontainers_modules::testcontainers::runners::AsyncRunner;
    use testcontainers_modules::testcontainers::{
        ContainerAsync, ContainerRequest, Image, ImageExt,
    };
    use testcontainers_modules::{mysql, postgres};

    use super::{Error, Provisioned, ServerBackend};

    /// PostgreSQL 12 brought the generated columns the schema uses; the module's default
    /// image is 11.
    const POSTGRES_TAG: &str = "16-alpine";
    /// The database created in a SQL Server container, whose only database is `master`.
    #[cfg(feature = "mssql")]
    const MSSQL_DATABASE: &str = "flowbench";

    pub(super) async fn start(backend: ServerBackend) -> Result<Provisioned, Error> {
        let name = backend.name();
        let no_engine = |reason: String| Error::NoDockerEngine {
            backend: name,
            reason,
        };
        let docker = docker_client_instance()
            .await
            .map_err(|e| no_engine(e.to_string()))?;
        match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(no_engine(e.to_string())),
            Err(_) => return Err(no_engine("no answer to a ping within 5 s".into())),
        }
        match backend {
            ServerBackend::Postgres => {
                let c = run(name, postgres::Postgres::default().with_tag(POSTGRES_TAG)).await?;
                let (host, port) = address(name, &c, 5432).await?;
                let url = format!("postgres://postgres:postgres@{host}:{port}/postgres");
                Ok(held(backend, url, c))
            }
            ServerBackend::Mysql => {
                let c = run(name, mysql::Mysql::default()).await?;
                let (host, port) = address(name, &c, 3306).await?;
                Ok(held(backend, format!("mysql://root@{host}:{port}/test"), c))
            }
            #[cfg(feature = "mssql")]
            ServerBackend::Mssql => {
                let image = mssql_server::MssqlServer::default().with_accept_eula();
                let c = run(name, image).await?;
                let (host, port) = address(name, &c, 1433).await?;
                let password = mssql_server::MssqlServer::DEFAULT_SA_PASSWORD;
                let server = format!("mssql://sa:{password}@{host}:{port}");
                let master = format!("{server}/master?trust_cert=true");
                crate::repository::MssqlStore::create_database(&master, MSSQL_DATABASE).await?;
                let url = format!("{server}/{MSSQL_DATABASE}?trust_cert=true");
                Ok(held(backend, url, c))
            }
            // `provision` refuses SQL Server before coming here when the feature is off.
            #[cfg(not(feature = "mssql"))]
            ServerBackend::Mssql => unreachable!("SQL Server without the mssql feature"),
        }
    }

    async fn run<I: Image>(
        backend: &'static str,
        request: impl Into<ContainerRequest<I>>,
    ) -> Result<ContainerAsync<I>, Error> {
        let request = request.into();
        let descriptor = request.descriptor();
        request.start().await.map_err(|e| Error::Start {
            backend,
            image: descriptor,
            reason: e.to_string(),
        })
    }

    /// The host and mapped port a container's `port` is reached on.
    async fn address<I: Image>(
        backend: &'static str,
        c: &ContainerAsync<I>,
        port: u16,
    ) -> Result<(String, u16), Error> {
        let failed =
            |e: testcontainers_modules::testcontainers::TestcontainersError| Error::Start {
                backend,
                image: format!("{}:{}", c.image().name(), c.image().tag()),
                reason: e.to_string(),
            };
        let host = c.get_host().await.map_err(failed)?;
        let mapped = c.get_host_port_ipv4(port).await.map_err(failed)?;
        Ok((host.to_string(), mapped))
    }

    fn held<I: Image + 'static>(
        backend: ServerBackend,
        url: String,
        c: ContainerAsync<I>,
    ) -> Provisioned {
        Provisioned {
            backend,
            url,
            _container: Box::new(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_backends_are_provisioned() {
        assert_eq!(
            ServerBackend::parse("postgresql"),
            Some(ServerBackend::Postgres)
        );
        assert_eq!(ServerBackend::parse("mariadb"), Some(ServerBackend::Mysql));
        assert_eq!(
            ServerBackend::parse("sqlserver"),
            Some(ServerBackend::Mssql)
        );
        assert_eq!(ServerBackend::Mssql.url_env(), "FLOWBENCH_MSSQL_URL");
        for db in ["sqlite", "sqlite://x.db", "postgres://u@h/db"] {
            assert_eq!(ServerBackend::parse(db), None, "{db}");
        }
    }

    #[tokio::test]
    async fn a_url_or_sqlite_is_refused_before_anything_starts() {
        let err = provision(Provision::Containers, "sqlite")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAServer(_)), "{err}");
        assert!(err.to_string().contains("`--db postgres`"), "{err}");
    }

    #[test]
    fn the_no_engine_message_lists_every_way_out() {
        let e = Error::NoDockerEngine {
            backend: "postgres",
            reason: "socket not found".into(),
        }
        .to_string();
        for way in [
            "--db sqlite",
            "FLOWBENCH_POSTGRES_URL",
            "FLOWBENCH_MYSQL_URL",
            "FLOWBENCH_MSSQL_URL",
            "URL to `--db`",
            "start a Docker engine",
            "socket not found",
        ] {
            assert!(e.contains(way), "`{way}` missing from: {e}");
        }
        assert!(!e.contains('\n'));
    }
}
