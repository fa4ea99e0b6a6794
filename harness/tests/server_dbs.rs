//! Each run on a PostgreSQL or MySQL server gets a database of its own, and the scenario's
//! end drops them all. Runs where `FLOWBENCH_POSTGRES_URL` / `FLOWBENCH_MYSQL_URL` are set
//! (`.ci/run` sets both); elsewhere each test prints that it is skipped, and under
//! `CI=true` a missing URL fails it.

use harness::scenario::Backend;
use harness::workload::ServerDatabases;
use sqlx::Connection;

fn url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{var} is not set, and CI must test the server databases"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

async fn can_connect(backend: Backend, url: &str) -> bool {
    match backend {
        Backend::Postgres => sqlx::PgConnection::connect(url).await.is_ok(),
        _ => sqlx::MySqlConnection::connect(url).await.is_ok(),
    }
}

async fn creates_and_drops(backend: Backend, admin: &str) {
    let dbs = ServerDatabases::new(admin, backend).expect("a server backend");
    let a = dbs.create().await.unwrap();
    let b = dbs.create().await.unwrap();
    assert_ne!(a, b, "each run gets its own database");
    for url in [&a, &b] {
        assert!(url.contains("/flowbench_"), "{url}");
        assert!(can_connect(backend, url).await, "{url} exists");
        // A fresh database is empty: the orchestrator's tables are not there yet.
        let store = orchestrator::repository::connect(url, &Default::default())
            .await
            .unwrap();
        assert_eq!(store.counts().await.unwrap().executions, 0);
    }
    dbs.drop_all().await.unwrap();
    for url in [&a, &b] {
        assert!(!can_connect(backend, url).await, "{url} was dropped");
    }

    // A process killed mid-scenario never calls drop_all: its databases are left, and
    // `flowbench run` drops them by the process's id (here this test's own).
    let killed = ServerDatabases::new(admin, backend).expect("a server backend");
    let left = [
        killed.create().await.unwrap(),
        killed.create().await.unwrap(),
    ];
    drop(killed);
    let parent = ServerDatabases::new(admin, backend).expect("a server backend");
    parent.drop_left_by(std::process::id()).await.unwrap();
    for url in &left {
        assert!(
            !can_connect(backend, url).await,
            "{url} left by a killed run was dropped"
        );
    }
}

#[tokio::test]
async fn postgres_runs_get_their_own_database() {
    if let Some(admin) = url("FLOWBENCH_POSTGRES_URL") {
        creates_and_drops(Backend::Postgres, &admin).await;
    }
}

#[tokio::test]
async fn mysql_runs_get_their_own_database() {
    if let Some(admin) = url("FLOWBENCH_MYSQL_URL") {
        creates_and_drops(Backend::Mysql, &admin).await;
    }
}
