//! The shipped scenarios' claims: each names the Kestra commits its "before" path
//! follows, `jdbc.json-mapping` has a Kestra counterpart on PostgreSQL only, and both
//! `flowbench list` and the results a run writes say so.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::scenario::{self, Backend};
use harness::suite;
use reports::results::Status;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_scenario_says_what_its_before_path_follows() {
    for s in scenario::load_all(&scenarios_dir()).unwrap() {
        assert!(
            s.claim.before.as_deref().is_some_and(|b| !b.is_empty()),
            "{}: no `before`",
            s.id
        );
        // Every scenario but those that compare two loads on the same code (B1 against B2,
        // 100 schedules against 1,000) compares Kestra's code before and after a change,
        // so it names the commits.
        if !["e2e-webhook", "scheduler"].contains(&s.id.as_str()) {
            assert!(
                !s.claim.kestra_commits.is_empty(),
                "{}: no kestra_commit",
                s.id
            );
        }
    }
}

#[test]
fn json_mapping_has_a_kestra_counterpart_on_postgres_only() {
    let all = scenario::load_all(&scenarios_dir()).unwrap();
    let jm = all.iter().find(|s| s.id == "json-mapping").unwrap();
    assert_eq!(jm.claim.kestra_backends, [Backend::Postgres]);
    // The knob still runs on every backend.
    assert!(jm.backends.contains(&Backend::Sqlite) && jm.backends.contains(&Backend::Mysql));

    let on = |backend: &str| suite::claim(jm, backend);
    assert!(on("postgres").kestra_counterpart);
    assert!(!on("sqlite").kestra_counterpart);
    assert!(!on("mysql").kestra_counterpart);
    assert_eq!(on("sqlite").kestra_backends, ["postgres"]);
    assert_eq!(on("sqlite").kestra_commits, ["1d7982406"]);

    // A result without numbers carries the flag too, so a skipped row is not mistaken
    // for a claim either.
    let skipped = suite::without_numbers(
        jm,
        "mysql",
        Status::Skipped {
            reason: "not here".into(),
        },
    );
    assert!(!skipped.claim.kestra_counterpart);

    // Every other scenario has a counterpart wherever it runs.
    for s in all.iter().filter(|s| s.id != "json-mapping") {
        for b in &s.backends {
            assert!(
                suite::claim(s, b.name()).kestra_counterpart,
                "{} on {b:?}",
                s.id
            );
        }
    }
}

#[test]
fn worker_threads_labels_128_as_the_old_docker_compose_setting() {
    let all = scenario::load_all(&scenarios_dir()).unwrap();
    let wt = all.iter().find(|s| s.id == "worker-threads").unwrap();
    let before = wt.claim.before.as_deref().unwrap();
    assert!(before.contains("docker-compose"), "{before}");
    assert!(before.contains("not a code default"), "{before}");
    assert!(
        wt.claim.kestra_figure.contains("2 × cores"),
        "{}",
        wt.claim.kestra_figure
    );
}

#[test]
fn list_marks_backends_without_a_kestra_counterpart() {
    let dir = scenarios_dir();
    let o = Command::new(env!("CARGO_BIN_EXE_flowbench"))
        .args(["list", "--scenarios-dir", dir.to_str().unwrap()])
        .env_remove("FLOWBENCH_SCENARIOS")
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    // The json-mapping block: from its title line to the next scenario's.
    let start = out.find("json-mapping ").unwrap();
    let block: String = out[start..]
        .lines()
        .take_while(|l| l.starts_with("json-mapping") || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(block.contains("Kestra commit: 1d7982406"), "{block}");
    assert!(
        block.contains(
            "backends: sqlite no Kestra counterpart · postgres claim · mysql no Kestra counterpart"
        ),
        "{block}"
    );
    // No other scenario has such a row.
    assert_eq!(out.matches("no Kestra counterpart").count(), 2, "{out}");
}
