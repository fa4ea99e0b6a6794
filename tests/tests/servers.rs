//! `flowbench run` end to end on PostgreSQL and MariaDB, as the nightly runs it: the
//! scenario processes, a database of their own per run (dropped afterwards), the server
//! process of `e2e-webhook`, and the database counters it records.
//!
//! Needs `FLOWBENCH_POSTGRES_URL` and `FLOWBENCH_MYSQL_URL` (`.ci/run` sets both); without
//! them it is skipped, saying why, and with `CI=true` it fails instead.

use flowbench_tests::{bin, flowbench_run, server_url, workspace_root};
use sqlx::Connection;

#[test]
fn the_quick_suite_runs_on_postgres_and_mariadb_and_leaves_no_database_behind() {
    let (Some(pg), Some(my)) = (
        server_url("FLOWBENCH_POSTGRES_URL"),
        server_url("FLOWBENCH_MYSQL_URL"),
    ) else {
        return;
    };
    bin("orchestrator");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let before = runtime.block_on(run_databases(&pg, &my));
    let dir = tempfile::tempdir().unwrap();
    let results = flowbench_run(
        &[
            "foreach",
            "e2e-webhook",
            "--quick",
            "--db",
            &pg,
            "--db",
            &my,
        ],
        &workspace_root().join("scenarios"),
        &dir.path().join("out"),
    );
    let scenarios = results["scenarios"].as_array().unwrap();
    let ran: Vec<(String, String, String)> = scenarios
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["backend"].as_str().unwrap().to_string(),
                s["status"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for id in ["foreach", "e2e-webhook"] {
        for backend in ["postgres", "mysql"] {
            assert!(
                ran.contains(&(id.into(), backend.into(), "ok".into())),
                "{id} on {backend} did not run ok: {ran:?}"
            );
        }
    }
    let samples = |backend: &str, metric: &str| -> Vec<f64> {
        scenarios
            .iter()
            .filter(|s| s["id"] == "e2e-webhook" && s["backend"] == backend)
            .flat_map(|s| s["metrics"].as_array().unwrap())
            .filter(|m| m["metric"] == metric)
            .flat_map(|m| m["samples"].as_array().unwrap())
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    // The database's own counters: every step ran executions, which commit and read rows.
    for (backend, metric) in [
        ("postgres", "db_commits_per_execution"),
        ("postgres", "db_tuples_fetched_per_execution"),
        ("mysql", "db_commits_per_execution"),
        ("mysql", "db_rows_read_per_execution"),
    ] {
        let v = samples(backend, metric);
        assert!(
            !v.is_empty() && v.iter().all(|x| *x > 0.0),
            "{metric} on {backend}: {v:?}"
        );
    }
    for backend in ["postgres", "mysql"] {
        let lost = samples(backend, "executions_lost");
        assert!(
            !lost.is_empty() && lost.iter().all(|x| *x == 0.0),
            "executions lost on {backend}: {lost:?}"
        );
    }
    let after = runtime.block_on(run_databases(&pg, &my));
    let left: Vec<&String> = after.iter().filter(|d| !before.contains(d)).collect();
    assert!(left.is_empty(), "databases left behind: {left:?}");
}

/// The `flowbench_<pid>_<n>` databases on both servers.
async fn run_databases(pg: &str, my: &str) -> Vec<String> {
    let mut c = sqlx::PgConnection::connect(pg).await.unwrap();
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'flowbench\\_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut c = sqlx::MySqlConnection::connect(my).await.unwrap();
    let mysql: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME LIKE 'flowbench\\_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    names.extend(mysql.into_iter().map(|n| format!("mysql:{n}")));
    names
}
