//! `--provision containers` where no Docker engine answers: one clear line listing what to
//! do instead, a non-zero exit, no panic. Through the real binary.
//!
//! `DOCKER_HOST` points at a socket that does not exist, so the test means the same on a
//! machine that has a Docker engine: nothing is started.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let flow = format!(
        "{}/../scenarios/e2e-webhook/benchmark01.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let missing = std::env::temp_dir().join("flowbench-no-such-docker.sock");
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .arg("run")
        .arg(&flow)
        .args(args)
        .args(["--timeout", "30"])
        .env("DOCKER_HOST", format!("unix://{}", missing.display()))
        .env_remove("FLOWBENCH_POSTGRES_URL")
        .env_remove("FLOWBENCH_MYSQL_URL")
        .env_remove("FLOWBENCH_MSSQL_URL")
        .output()
        .expect("the orchestrator binary runs")
}

fn one_line(out: &Output) -> String {
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got:\n{stderr}");
    lines[0].to_string()
}

fn assert_mentions(line: &str, words: &[&str]) {
    for w in words {
        assert!(line.contains(w), "`{w}` missing from: {line}");
    }
}

/// Every way out is named: SQLite, the URL variables, a URL, or starting Docker.
const WAYS_OUT: [&str; 5] = [
    "--db sqlite",
    "FLOWBENCH_POSTGRES_URL",
    "FLOWBENCH_MYSQL_URL",
    "FLOWBENCH_MSSQL_URL",
    "Docker engine",
];

#[test]
fn provision_containers_without_a_docker_engine_is_one_clear_line() {
    for db in ["postgres", "mysql"] {
        let out = run(&["--db", db, "--provision", "containers"]);
        assert_eq!(out.status.code(), Some(2), "{db}");
        let line = one_line(&out);
        assert_mentions(&line, &WAYS_OUT);
        if cfg!(feature = "containers") {
            assert_mentions(&line, &[db, "no Docker engine is reachable"]);
        } else {
            assert_mentions(&line, &["--features containers"]);
        }
    }
}

#[test]
fn provision_containers_for_mssql_needs_both_features() {
    let out = run(&["--db", "mssql", "--provision", "containers"]);
    let line = one_line(&out);
    match (cfg!(feature = "mssql"), cfg!(feature = "containers")) {
        (false, _) => assert_mentions(&line, &["--features mssql"]),
        (true, false) => assert_mentions(&line, &["--features containers"]),
        (true, true) => assert_mentions(&line, &["mssql", "no Docker engine is reachable"]),
    }
}

#[test]
fn provision_is_refused_for_sqlite_and_urls() {
    for db in ["sqlite", "postgres://u@127.0.0.1:1/x"] {
        let out = run(&["--db", db, "--provision", "containers"]);
        assert_mentions(
            &one_line(&out),
            &["--provision containers", "--db postgres"],
        );
    }
}
