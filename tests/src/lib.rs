//! Helpers for the end-to-end suite, which runs the workspace's binaries together with
//! what sits outside them: a load tool, PostgreSQL and MariaDB.
//!
//! * [`bin`] returns the path of `orchestrator` or `flowbench` for the test's own
//!   profile, building them first when they are missing or older than their sources.
//! * What a test needs from outside ([`tool`], [`server_url`]) is skipped with a printed
//!   reason when it is missing, and fails the test under `CI=true`, whose machines have
//!   it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Whether this runs in CI (`CI=true`), where nothing may be skipped for lack of a tool
/// or a server.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Prints that the test is skipped and why; under `CI=true` fails it instead.
pub fn skip_or_fail(what: &str, why: &str) {
    if in_ci() {
        panic!("{what}: {why} (CI=true makes this a failure)");
    }
    eprintln!("skipped: {what}: {why}");
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// `target/<profile>`: a test binary runs from `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("a test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The path of the workspace binary `name` (`orchestrator` or `flowbench`) for this
/// test's profile. `cargo test --workspace` has built both; when either is missing or
/// older than a source file it is built from, `cargo build` runs first, so a test never
/// runs a stale binary. (Building unconditionally would build the workspace a second
/// time in CI: without the dev-dependencies' features, `cargo build` hashes differently.)
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let path = |name: &str| profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    BUILT.get_or_init(|| {
        let newest_source = newest_source();
        let stale = ["orchestrator", "flowbench"].iter().any(|n| {
            std::fs::metadata(path(n))
                .and_then(|m| m.modified())
                .map_or(true, |built| built < newest_source)
        });
        if !stale {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "-p", "orchestrator", "-p", "harness"])
            .current_dir(workspace_root());
        if profile_dir().file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the workspace's binaries failed");
    });
    let path = path(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The modification time of the newest file the binaries are built from.
fn newest_source() -> std::time::SystemTime {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(modified);
            }
        }
    }
    let root = workspace_root();
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for dir in [
        "orchestrator/src",
        "orchestrator/migrations",
        "harness/src",
        "reports/src",
    ] {
        walk(&root.join(dir), &mut newest);
    }
    for file in [
        "Cargo.lock",
        "orchestrator/Cargo.toml",
        "harness/Cargo.toml",
        "reports/Cargo.toml",
    ] {
        if let Ok(modified) = std::fs::metadata(root.join(file)).and_then(|m| m.modified()) {
            newest = newest.max(modified);
        }
    }
    newest
}

/// The path of an outside program on `PATH`, or `None` after [`skip_or_fail`].
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip_or_fail(name, &format!("not on PATH ({install})"));
    }
    found
}

/// The URL in the environment variable `var` (`FLOWBENCH_POSTGRES_URL`,
/// `FLOWBENCH_MYSQL_URL`), or `None` after [`skip_or_fail`].
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip_or_fail(var, "is not set; .ci/run sets it to the local server");
            None
        }
    }
}

/// Runs `flowbench run ARGS… --scenarios-dir SCENARIOS --out OUT`, requires it to succeed,
/// and returns its `results.json`.
pub fn flowbench_run(args: &[&str], scenarios: &Path, out: &Path) -> serde_json::Value {
    let o = Command::new(bin("flowbench"))
        .arg("run")
        .args(args)
        .arg("--scenarios-dir")
        .arg(scenarios)
        .arg("--out")
        .arg(out)
        .output()
        .expect("flowbench runs");
    assert!(o.status.success(), "{}", describe(&o));
    let text = std::fs::read(out.join("results.json")).expect("flowbench wrote results.json");
    serde_json::from_slice(&text).expect("results.json is JSON")
}

/// A command's status and output, for assertion messages.
pub fn describe(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
