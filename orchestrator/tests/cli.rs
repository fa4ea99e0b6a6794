//! The `orchestrator` binary: running flows and refusing bad input clearly.

use std::process::Command;

fn orchestrator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_orchestrator"))
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn run_prints_kestras_json_and_exits_by_final_state() {
    let flow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/e2e-webhook/benchmark01.yaml"
    );
    let out = orchestrator()
        .args(["run", flow, "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"]["current"], "SUCCESS");
    assert_eq!(v["namespace"], "benchmarks");
    assert_eq!(v["flowId"], "benchmark01");
    assert!(v["state"]["histories"].as_array().unwrap().len() >= 3);
    let runs = v["taskRunList"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["taskId"], "concatenate");
    assert_eq!(runs[0]["outputs"]["values"]["message"], "Hello World");
    assert_eq!(runs[1]["attempts"][0]["state"]["current"], "SUCCESS");

    let dir = tempfile::tempdir().unwrap();
    let failing = write(
        &dir,
        "fail.yaml",
        "id: f\nnamespace: n\ntasks:\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n",
    );
    let out = orchestrator().arg("run").arg(&failing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
}

/// A `CREATE_NEW_EXECUTION` retry: the run goes on through every attempt, prints each, and
/// exits by the last one's state (`--output json` prints the last one).
#[test]
fn run_follows_a_flow_retry_through_its_new_executions() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write(
        &dir,
        "retry.yaml",
        "id: r\nnamespace: n\nretry:\n  behavior: CREATE_NEW_EXECUTION\n  type: constant\n  interval: PT0.1S\n  maxAttempt: 2\ntasks:\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n",
    );
    let out = orchestrator().arg("run").arg(&flow).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ends: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("execution "))
        .filter_map(|l| l.split(' ').nth(1))
        .collect();
    assert_eq!(ends, ["RETRIED", "FAILED"], "{stdout}");
    let out = orchestrator()
        .args(["run", "--output", "json"])
        .arg(&flow)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"]["current"], "FAILED");
    assert_eq!(v["metadata"]["attemptNumber"], 2);
    assert_ne!(v["id"], v["originalId"]);
}

/// Each bad flow names the file, the flow and the task, exits non-zero without a panic,
/// and leaves no database behind.
#[test]
fn bad_flows_are_refused_with_a_clear_message_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cases = [
        (
            "malformed.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: a\n   type: [\n",
            vec!["malformed.yaml", "invalid YAML at line"],
        ),
        (
            "unknown.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Nope\n",
            vec![
                "unknown.yaml",
                "flow `n.f`",
                "task `t1`",
                "unknown task type",
            ],
        ),
        (
            "missing.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.flow.Sleep\n",
            vec!["missing.yaml", "flow `n.f`", "task `t1`", "duration"],
        ),
        (
            "duplicate.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: a\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: b\n",
            vec![
                "duplicate.yaml",
                "flow `n.f`",
                "task `t1`",
                "duplicate task id",
            ],
        ),
        (
            "flow-trigger.yaml",
            "id: f\nnamespace: n\ntriggers:\n  - id: after\n    type: io.kestra.plugin.core.trigger.Flow\n    conditions:\n      - type: io.kestra.plugin.core.condition.Nope\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: a\n",
            vec![
                "flow-trigger.yaml",
                "flow `n.f`",
                "trigger `after`",
                "io.kestra.plugin.core.condition.Nope",
            ],
        ),
        (
            "expression.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ outputs.x | }}\"\n",
            vec![
                "expression.yaml",
                "flow `n.f`",
                "task `t1`",
                "malformed expression",
            ],
        ),
        (
            "kv-type.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.kv.Set\n    key: k\n    value: \"1\"\n    kvType: NUMBR\n",
            vec!["kv-type.yaml", "flow `n.f`", "task `t1`", "kvType", "NUMBR"],
        ),
        (
            "kv-ttl.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.kv.Set\n    key: k\n    value: v\n    ttl: soon\n",
            vec!["kv-ttl.yaml", "flow `n.f`", "task `t1`", "ttl", "soon"],
        ),
        (
            "kv-key.yaml",
            "id: f\nnamespace: n\ntasks:\n  - id: t1\n    type: io.kestra.plugin.core.kv.Get\n    namespace: n\n",
            vec![
                "kv-key.yaml",
                "flow `n.f`",
                "task `t1`",
                "missing required property `key`",
            ],
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(&dir, name, text);
        let out = orchestrator()
            .arg("run")
            .arg(&path)
            .arg("--db")
            .arg(format!("sqlite://{}", db.display()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        for e in expected {
            assert!(stderr.contains(e), "{name}: `{e}` not in: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(!db.exists(), "{name}: the database was touched");
    }
}

#[test]
fn unknown_knobs_and_missing_files_are_errors_not_panics() {
    let flow = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/e2e-webhook/benchmark01.yaml"
    );
    let out = orchestrator()
        .args(["run", flow, "--set", "logs.indexing=fast"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("`sync` or `batched`"), "{stderr}");
    let out = orchestrator()
        .args(["run", "/nonexistent/flow.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("/nonexistent/flow.yaml"), "{stderr}");
}

/// `secret('key')` reads Kestra OSS's `SECRET_KEY` environment variable, base64-encoded.
#[test]
fn secrets_come_from_base64_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write(
        &dir,
        "secret.yaml",
        "id: s\nnamespace: n\ntasks:\n  - id: get\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ secret('my_password') }}\"\n",
    );
    let out = orchestrator()
        .args(["run", "--output", "json"])
        .arg(&flow)
        .arg("--db")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        // "hunter2", base64-encoded across two lines as a shell might wrap it.
        .env("SECRET_MY_PASSWORD", "aHVu\ndGVyMg==")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["taskRunList"][0]["outputs"]["value"], "hunter2");
}

/// `--label key=value` labels the execution, beside the flow's labels and Kestra's
/// `system.correlationId`; a `Labels` task then reads and changes them.
#[test]
fn labels_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let flow = write(
        &dir,
        "labels.yaml",
        "id: labelled\nnamespace: cli\nlabels:\n  team: data\ntasks:\n  - id: add\n    type: io.kestra.plugin.core.execution.Labels\n    labels:\n      seen: \"{{ labels.env }}\"\n",
    );
    let out = orchestrator()
        .args(["run"])
        .arg(&flow)
        .args([
            "--label", "env=prod", "--label", "team=ops", "--output", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<(String, String)> = v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap().to_string(),
                l["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let id = v["id"].as_str().unwrap().to_string();
    for expected in [
        ("team", "ops"),
        ("env", "prod"),
        ("system.correlationId", id.as_str()),
        ("seen", "prod"),
    ] {
        assert!(
            labels
                .iter()
                .any(|(k, v)| (k.as_str(), v.as_str()) == expected),
            "{expected:?} not in {labels:?}"
        );
    }
    assert_eq!(labels.len(), 4, "{labels:?}");

    let out = orchestrator()
        .args(["run"])
        .arg(&flow)
        .args(["--label", "no-equals-sign"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--label `no-equals-sign` is not KEY=VALUE"),
        "{err}"
    );
}

/// `--flows DIR` deploys a folder first, so that a Subflow finds its flow; the run ends
/// only once every execution it started has ended, even one it did not wait for. A Subflow
/// naming a flow that does not exist is refused at load, naming the task.
#[tokio::test]
async fn subflows_come_from_the_flows_folder_and_the_run_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let child = "id: child\nnamespace: cli\ninputs:\n  - id: who\n    type: STRING\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.5S\n  - id: hello\n    type: io.kestra.plugin.core.debug.Return\n    format: \"hello {{ inputs.who }}\"\noutputs:\n  - id: said\n    type: STRING\n    value: \"{{ outputs.hello.value }}\"\n";
    let parent = write(
        &dir,
        "parent.yaml",
        "id: parent\nnamespace: cli\ntasks:\n  - id: waited\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: cli\n    flowId: child\n    inputs:\n      who: waited\n  - id: fired\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: cli\n    flowId: child\n    wait: false\n    inputs:\n      who: fired\n",
    );
    let (v, db) = run_with_flows(&dir, &[("child.yaml", child)], &parent);
    let runs = v["taskRunList"].as_array().unwrap();
    assert_eq!(runs[0]["outputs"]["state"], "SUCCESS");
    assert_eq!(runs[0]["outputs"]["outputs"]["said"], "hello waited");
    assert_eq!(runs[1]["state"]["current"], "SUCCESS");
    assert_eq!(runs[1]["outputs"]["state"], "CREATED");
    // The execution it did not wait for had ended when the command returned.
    let store = orchestrator::repository::connect(&db, &Default::default())
        .await
        .unwrap();
    let fired = runs[1]["outputs"]["executionId"].as_str().unwrap();
    let fired = store.execution(fired).await.unwrap().unwrap();
    assert_eq!(fired.state.current.as_str(), "SUCCESS");
    assert_eq!(fired.inputs["who"], "fired");

    let out = orchestrator().args(["run"]).arg(&parent).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("task `waited`") && err.contains("the subflow `cli.child` does not exist"),
        "{err}"
    );
}

/// Writes `folder` (file name and YAML each) into `dir/flows` and runs `flow` with
/// `--flows` that folder on a SQLite file of `dir`, expecting success; returns the execution
/// as `--output json` prints it, and the database URL.
fn run_with_flows(
    dir: &tempfile::TempDir,
    folder: &[(&str, &str)],
    flow: &std::path::Path,
) -> (serde_json::Value, String) {
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    for (name, yaml) in folder {
        std::fs::write(flows.join(name), yaml).unwrap();
    }
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let out = orchestrator()
        .args(["run"])
        .arg(flow)
        .arg("--flows")
        .arg(&flows)
        .args(["--db", &db, "--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), db)
}

/// `run` does not wait for the executions a Flow trigger of a deployed flow starts (they are
/// not the execution's own), but each is saved, with its trigger and rendered inputs, in the
/// transaction that ended the execution, for a server on the same database to run.
#[tokio::test]
async fn a_flow_trigger_of_the_flows_folder_starts_its_flow_once_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let after = "id: after\nnamespace: cli\ninputs:\n  - id: got\n    type: STRING\ntriggers:\n  - id: after-first\n    type: io.kestra.plugin.core.trigger.Flow\n    inputs:\n      got: \"{{ outputs.r.value }}\"\n    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: cli\n        flowId: first\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.got }}\"\n";
    let first = write(
        &dir,
        "first.yaml",
        "id: first\nnamespace: cli\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: ready\n",
    );
    let (v, db) = run_with_flows(&dir, &[("after.yaml", after)], &first);
    assert_eq!(v["state"]["current"], "SUCCESS");
    let store = orchestrator::repository::connect(&db, &Default::default())
        .await
        .unwrap();
    let started = store.executions_of_flow("cli", "after").await.unwrap();
    assert_eq!(started.len(), 1, "{started:?}");
    let trigger = started[0].trigger.as_ref().unwrap();
    assert_eq!(trigger.id, "after-first");
    assert_eq!(trigger.variables["executionId"], v["id"]);
    assert_eq!(started[0].inputs["got"], "ready");
}

/// A key one `orchestrator run` stores is read with `kv()` by a later one that uses the same
/// internal storage: the KV store lives in files, not in the process.
#[test]
fn kv_stored_by_one_run_is_read_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let set = write(
        &dir,
        "set.yaml",
        "id: set\nnamespace: company.team\ntasks:\n  - id: set\n    type: io.kestra.plugin.core.kv.Set\n    key: greeting\n    value: \"{{ 'hello' | upper }}\"\n",
    );
    let get = write(
        &dir,
        "get.yaml",
        "id: get\nnamespace: company.team\ntasks:\n  - id: get\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ kv('greeting') }} again\"\n",
    );
    let run = |flow: &std::path::Path| {
        let out = orchestrator()
            .args(["run", "--output", "json"])
            .arg(flow)
            .arg("--storage")
            .arg(&storage)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            flow.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    run(&set);
    let file = storage.join("company/team/_kv/greeting.ion");
    assert_eq!(std::fs::read_to_string(file).unwrap(), "\"HELLO\"");
    let v = run(&get);
    assert_eq!(v["taskRunList"][0]["outputs"]["value"], "HELLO again");
}
