//! A database that cannot be used is one clear line on stderr, naming the backend and the
//! host, never the password, and a non-zero exit: through the real binary.

mod backend_common;

use std::process::{Command, Output};

use backend_common::{Backend, server_url};

fn flow() -> String {
    format!(
        "{}/../scenarios/e2e-webhook/benchmark01.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run_with_db(db: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["run", &flow(), "--db", db, "--timeout", "30"])
        .env_remove("FLOWBENCH_POSTGRES_URL")
        .env_remove("FLOWBENCH_MYSQL_URL")
        .env_remove("FLOWBENCH_MSSQL_URL")
        .output()
        .expect("the orchestrator binary runs")
}

/// Asserts the failure shape and returns the one line.
fn one_line_failure(out: &Output, must_mention: &[&str]) -> String {
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got:\n{stderr}");
    let line = lines[0].to_string();
    assert!(!line.contains("secret"), "the password leaked: {line}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for m in must_mention {
        assert!(line.contains(m), "`{m}` missing from: {line}");
    }
    line
}

/// `scheme://nobody:secret@HOST/DB` on the server the tests use.
fn with_credentials(url: &str, userinfo: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.split('?').next().unwrap();
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit('@').next().unwrap();
    format!("{scheme}://{userinfo}@{host}/{database}")
}

#[test]
fn unreachable_postgres_is_one_line_without_the_password() {
    let out = run_with_db("postgres://bob:secret@127.0.0.1:1/x");
    one_line_failure(&out, &["postgres", "127.0.0.1", "bob:***@"]);
}

#[test]
fn unreachable_mysql_is_one_line_without_the_password() {
    let out = run_with_db("mysql://bob:secret@127.0.0.1:1/x");
    one_line_failure(&out, &["mysql", "127.0.0.1"]);
}

/// Without the `mssql` feature, the line says how to rebuild; with it, the server is named.
#[test]
fn unreachable_mssql_is_one_line_without_the_password() {
    let out = run_with_db("mssql://bob:secret@127.0.0.1:1/x?trust_cert=true");
    if cfg!(feature = "mssql") {
        one_line_failure(&out, &["mssql", "127.0.0.1", "bob:***@"]);
    } else {
        one_line_failure(&out, &["mssql", "--features mssql"]);
    }
}

#[test]
fn bad_mssql_url_says_why() {
    let out = run_with_db("sqlserver://bob:secret@127.0.0.1:1/x?instance=A");
    if cfg!(feature = "mssql") {
        one_line_failure(&out, &["mssql", "unknown URL parameter `instance`"]);
    } else {
        one_line_failure(&out, &["--features mssql"]);
    }
}

#[test]
fn shorthand_without_its_variable_names_the_variable() {
    one_line_failure(&run_with_db("postgres"), &["FLOWBENCH_POSTGRES_URL"]);
    one_line_failure(&run_with_db("mysql"), &["FLOWBENCH_MYSQL_URL"]);
    one_line_failure(&run_with_db("mssql"), &["FLOWBENCH_MSSQL_URL"]);
}

#[test]
fn invalid_schema_name_is_refused() {
    let out = run_with_db("postgres://bob:secret@127.0.0.1:1/x?flowbench_schema=x%22%3Bdrop");
    one_line_failure(&out, &["postgres", "schema name"]);
}

#[test]
fn missing_postgres_database_is_named() {
    let Some(url) = server_url(Backend::Postgres) else {
        return;
    };
    // PostgreSQL here trusts local logins, so the password is ignored and the database is
    // what fails.
    let url = with_credentials(&url, "postgres:secret", "flowbench_no_such_db");
    let out = run_with_db(&url);
    if String::from_utf8_lossy(&out.stderr).contains("Connection refused") {
        return backend_common::skip_or_fail("postgres", "the server is unreachable");
    }
    one_line_failure(
        &out,
        &["postgres", "flowbench_no_such_db", "does not exist"],
    );
}

#[test]
fn wrong_mysql_password_is_reported() {
    let Some(url) = server_url(Backend::Mysql) else {
        return;
    };
    let url = with_credentials(&url, "flowbench_nobody:secret", "test");
    let out = run_with_db(&url);
    if String::from_utf8_lossy(&out.stderr).contains("Connection refused") {
        return backend_common::skip_or_fail("mysql", "the server is unreachable");
    }
    one_line_failure(&out, &["mysql", "Access denied", "flowbench_nobody:***@"]);
}

#[test]
fn missing_mysql_database_is_named() {
    let Some(url) = server_url(Backend::Mysql) else {
        return;
    };
    let url = backend_common::with_database(&url, "flowbench_no_such_db");
    let out = run_with_db(&url);
    if String::from_utf8_lossy(&out.stderr).contains("Connection refused") {
        return backend_common::skip_or_fail("mysql", "the server is unreachable");
    }
    one_line_failure(&out, &["mysql", "flowbench_no_such_db"]);
}
