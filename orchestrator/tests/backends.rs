//! One flow suite, run on every backend: each case below becomes a test in `sqlite::`,
//! `postgres::`, `mysql::` and `mssql::` (e.g. `postgres::b3_foreach_runs_101_task_runs`).
//!
//! The server backends need `FLOWBENCH_POSTGRES_URL` / `FLOWBENCH_MYSQL_URL`; see
//! `backend_common` for how a missing server is skipped (and fails under `CI=true`). The
//! `mssql::` tests also need the `mssql` feature and `FLOWBENCH_MSSQL_URL`, and are skipped
//! without them even under `CI=true`: the project's machines have no SQL Server.

mod backend_common;
#[path = "backends/faithful.rs"]
mod faithful;

use std::time::Duration;

use backend_common::{Backend, TestDb};
use faithful::{
    mutate_and_immutable_give_the_same_result_for_one_worker_task,
    mutate_and_immutable_give_the_same_task_runs, sync_and_batched_give_the_same_log_rows,
};
use orchestrator::knobs::Knobs;
use orchestrator::model::{Execution, Label, StateType};
use orchestrator::service::{Components, Orchestrator};
use serde_json::{Map, Value, json};

const WAIT: Duration = Duration::from_secs(120);

macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Mysql).await
                }
            )*
        }
        mod mssql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Mssql).await
                }
            )*
        }
    };
}

on_every_backend!(
    b1_simple_flow_runs_2_task_runs,
    b2_complex_flow_runs_10_task_runs,
    b3_foreach_runs_101_task_runs,
    concurrency_queue_runs_one_at_a_time,
    sync_and_batched_give_the_same_log_rows,
    mutate_and_immutable_give_the_same_task_runs,
    mutate_and_immutable_give_the_same_result_for_one_worker_task,
    hostile_strings_round_trip_verbatim,
    json_mappings_read_the_same_execution,
);

fn knobs(set: &[&str]) -> Knobs {
    let mut k = Knobs::default();
    k.apply(set).expect("valid knobs");
    k.worker_threads = 4;
    k
}

fn scenario(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Deploys `source`, runs one execution to its end and waits until its logs are indexed.
async fn run(
    o: &Orchestrator,
    source: &str,
    inputs: Map<String, Value>,
    labels: Vec<Label>,
) -> Execution {
    let flow = o.deploy(source, "test.yaml").await.expect("deploy");
    let exec = o
        .create_execution(&flow.namespace, &flow.id, inputs, labels, None)
        .await
        .expect("create execution");
    let done = o.wait_terminal(&exec.id, WAIT).await.expect("terminal");
    o.wait_idle(WAIT).await.expect("idle");
    done
}

async fn started(backend: Backend, set: &[&str]) -> Option<(TestDb, Orchestrator)> {
    let db = TestDb::create(backend).await?;
    let o = db.orchestrator(knobs(set)).await;
    o.start(Components::ALL);
    Some((db, o))
}

async fn b1_simple_flow_runs_2_task_runs(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let exec = run(
        &o,
        &scenario("scenarios/e2e-webhook/benchmark01.yaml"),
        Map::new(),
        vec![],
    )
    .await;
    assert_eq!(exec.state.current, StateType::Success);
    assert_eq!(exec.task_run_list.len(), 2);
    let logs = o.logs(&exec.id).await.unwrap();
    assert_eq!(
        logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(),
        ["Hello World"]
    );
    // The generated columns are filled from the stored document.
    let c = o.store().counts().await.unwrap();
    assert_eq!((c.executions, c.terminal_executions, c.logs), (1, 1, 1));
    o.shutdown().await;
}

async fn b2_complex_flow_runs_10_task_runs(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let exec = run(
        &o,
        &scenario("scenarios/e2e-webhook/benchmark02.yaml"),
        Map::new(),
        vec![],
    )
    .await;
    assert_eq!(exec.state.current, StateType::Success);
    assert_eq!(exec.task_run_list.len(), 10);
    assert_eq!(o.logs(&exec.id).await.unwrap().len(), 5);
    o.shutdown().await;
}

async fn b3_foreach_runs_101_task_runs(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let exec = run(
        &o,
        &scenario("scenarios/foreach/benchmark03.yaml"),
        Map::new(),
        vec![],
    )
    .await;
    assert_eq!(exec.state.current, StateType::Success);
    assert_eq!(exec.task_run_list.len(), 101);
    assert!(
        exec.task_run_list
            .iter()
            .all(|t| t.state.current == StateType::Success)
    );
    o.shutdown().await;
}

async fn concurrency_queue_runs_one_at_a_time(backend: Backend) {
    for index in ["flow", "flow-date"] {
        let Some((_db, o)) = started(backend, &[&format!("queued.index={index}")]).await else {
            return;
        };
        let source = r#"
id: one-at-a-time
namespace: tests
concurrency:
  limit: 1
  behavior: QUEUE
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.2S
"#;
        let flow = o.deploy(source, "test.yaml").await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..4 {
            let e = o
                .create_execution(&flow.namespace, &flow.id, Map::new(), vec![], None)
                .await
                .unwrap();
            ids.push(e.id);
        }
        let mut runs = Vec::new();
        for id in &ids {
            let e = o.wait_terminal(id, WAIT).await.unwrap();
            assert_eq!(e.state.current, StateType::Success, "{index}: {id}");
            let running = e
                .state
                .histories
                .iter()
                .find(|h| h.state == StateType::Running)
                .expect("ran")
                .date;
            runs.push((
                running,
                e.state.end_date().expect("ended"),
                e.state.histories.clone(),
            ));
        }
        let queued = runs
            .iter()
            .filter(|r| r.2.iter().any(|h| h.state == StateType::Queued))
            .count();
        assert!(
            queued >= 1,
            "{index}: with limit 1, some of 4 executions waited in QUEUED"
        );
        runs.sort_by_key(|r| r.0);
        for pair in runs.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "{index}: two executions ran at once: {pair:?}"
            );
        }
        o.shutdown().await;
    }
}

/// Strings that break SQL built by formatting, LIKE patterns, or a careless charset.
fn hostile_strings(backend: Backend) -> Vec<&'static str> {
    let mut s = vec![
        "'; DROP TABLE executions; --",
        "Robert\"); DROP TABLE logs;--",
        "%_\\",
        "back\\slash \"quote\" `tick`",
        "emoji 🚀 👩‍👩‍👧 family",
        "עברית RTL مرحبا بالعالم",
        "e\u{301} combining, \u{200f}rlm, \u{feff}bom",
        "tab\tnew\nline",
    ];
    // PostgreSQL stores no NUL character, in TEXT or in JSONB (`\u0000`): it is refused with
    // an error (see `nul_is_refused_on_postgres`), so it is only round-tripped elsewhere.
    if backend != Backend::Postgres {
        s.push("nul\u{0}byte");
    }
    s
}

async fn hostile_strings_round_trip_verbatim(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    for (i, text) in hostile_strings(backend).into_iter().enumerate() {
        let flow_id = format!("f{i} {text}");
        let source = serde_yaml_ng::to_string(&json!({
            "id": flow_id,
            "namespace": "tests",
            "labels": { "weird": text },
            "inputs": [{ "id": "v", "type": "STRING" }],
            "tasks": [
                { "id": "say", "type": "io.kestra.plugin.core.log.Log", "message": "{{ inputs.v }}" },
                { "id": "keep", "type": "io.kestra.plugin.core.debug.Return", "format": "{{ inputs.v }}" }
            ]
        }))
        .unwrap();
        let mut inputs = Map::new();
        inputs.insert("v".into(), json!(text));
        let labels = vec![Label {
            key: "given".into(),
            value: text.to_string(),
        }];
        let exec = run(&o, &source, inputs, labels).await;
        assert_eq!(exec.state.current, StateType::Success, "{text:?}");
        let exec = o.execution(&exec.id).await.unwrap();
        assert_eq!(exec.flow_id, flow_id);
        assert_eq!(exec.inputs["v"], json!(text));
        let label = |k: &str| {
            exec.labels
                .iter()
                .find(|l| l.key == k)
                .map(|l| l.value.as_str())
        };
        assert_eq!(label("weird"), Some(text));
        assert_eq!(label("given"), Some(text));
        let keep = exec
            .task_run_list
            .iter()
            .find(|t| t.task_id == "keep")
            .unwrap();
        assert_eq!(keep.outputs.as_ref().unwrap()["value"], json!(text));
        let logs = o.logs(&exec.id).await.unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].message, text);
        assert_eq!(logs[0].flow_id, flow_id);
        let (_, stored) = o
            .store()
            .flow("tests", &flow_id)
            .await
            .unwrap()
            .expect("stored flow");
        assert_eq!(stored, source);
    }
    // The tables the strings tried to drop are still there.
    let c = o.store().counts().await.unwrap();
    let n = hostile_strings(backend).len() as i64;
    assert_eq!((c.executions, c.logs), (n, n));
    o.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_refused_on_postgres() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let o = db.orchestrator(knobs(&[])).await;
    let source = "id: nul\nnamespace: tests\ninputs:\n  - id: v\n    type: STRING\ntasks:\n  - id: say\n    type: io.kestra.plugin.core.log.Log\n    message: x\n";
    let flow = o.deploy(source, "test.yaml").await.unwrap();
    let mut inputs = Map::new();
    inputs.insert("v".into(), json!("a\u{0}b"));
    let err = o
        .create_execution(&flow.namespace, &flow.id, inputs, vec![], None)
        .await
        .expect_err("PostgreSQL cannot store NUL");
    assert!(err.to_string().contains("postgres"), "{err}");
    assert_eq!(o.store().counts().await.unwrap().executions, 0);
}

async fn json_mappings_read_the_same_execution(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let o = db.orchestrator(knobs(&["jdbc.json-mapping=direct"])).await;
    o.start(Components::ALL);
    let exec = run(
        &o,
        &scenario("scenarios/e2e-webhook/benchmark02.yaml"),
        Map::new(),
        vec![],
    )
    .await;
    o.shutdown().await;
    let direct = o.execution(&exec.id).await.unwrap();
    let normalize = db
        .orchestrator(knobs(&["jdbc.json-mapping=normalize"]))
        .await
        .execution(&exec.id)
        .await
        .unwrap();
    assert_eq!(direct, normalize);
    assert_eq!(direct.task_run_list.len(), 10);
}

/// A commit through one store wakes the pollers of another store (another process, in a real
/// deployment) at once, through PostgreSQL's LISTEN/NOTIFY rather than the poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_pollers_of_another_store() {
    use orchestrator::repository::{Message, QueueType};
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let producer = db.orchestrator(knobs(&[])).await;
    let consumer = db.orchestrator(knobs(&[])).await;
    let notifier = consumer.store().notifier();
    // Let the listener connect, and drain the wake-up it gives when it (re)connects.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while tokio::time::timeout(
        Duration::from_millis(200),
        notifier.notified(QueueType::WorkerTask),
    )
    .await
    .is_ok()
    {}
    let woken = notifier.notified(QueueType::WorkerTask);
    let mut tx = producer.store().begin().await.unwrap();
    tx.push(&[Message {
        kind: QueueType::WorkerTask,
        key: "k".into(),
        value: "{}".into(),
    }])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), woken)
        .await
        .expect("the NOTIFY reached the other store");
}
