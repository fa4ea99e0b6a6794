//! One flow suite, run on every backend: each case below becomes a test in `sqlite::`,
//! `postgres::`, `mysql::` and `mssql::` (e.g. `postgres::b3_foreach_runs_101_task_runs`).
//!
//! The server backends need `FLOWBENCH_POSTGRES_URL` / `FLOWBENCH_MYSQL_URL`; see
//! `backend_common` for how a missing server is skipped (and fails under `CI=true`). The
//! `mssql::` tests also need the `mssql` feature and `FLOWBENCH_MSSQL_URL`, and are skipped
//! without them even under `CI=true`: the project's machines have no SQL Server.

#[macro_use]
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
    queued_pops_keep_tenants_apart_in_date_order,
    queued_pop_plans_are_captured,
    skip_locked_pops_pass_a_held_row,
    several_executors_release_every_queued_execution,
    a_tenants_executions_queue_and_release_in_that_tenant,
    migration_0002_keeps_queued_executions,
    a_poll_reads_the_backlog_not_the_history,
    a_result_that_does_not_decode_does_not_block_the_executor,
    a_saved_execution_is_reused_only_while_its_document_is_stored,
    delays_are_taken_once_when_due,
    a_paused_execution_goes_on_after_its_delay_and_fails_after_its_timeout,
    a_wait_for_goes_round_through_continue_flowable_delays,
    a_resume_task_resumes_a_paused_execution,
    subflows_started_together_each_end_their_task_run,
    two_schedulers_fire_each_tick_once_and_a_new_one_takes_up_the_rest,
    multiple_condition_windows_are_kept_reset_and_purged,
    flow_triggers_start_each_flow_once_under_two_executors,
    a_killed_execution_stops_its_running_task_and_its_subflow,
    executions_are_searched_paged_and_deleted,
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

/// [`run`] of a flow file of the repository, with no inputs and no labels.
async fn run_file(o: &Orchestrator, path: &str) -> Execution {
    run(o, &scenario(path), Map::new(), vec![]).await
}

async fn started(backend: Backend, set: &[&str]) -> Option<(TestDb, Orchestrator)> {
    let db = TestDb::create(backend).await?;
    let o = db.orchestrator(knobs(set)).await;
    o.start(Components::ALL);
    Some((db, o))
}

/// [`started`], plus a second executor consumer in the process, as a second Kestra
/// executor process would be.
async fn with_two_executors(backend: Backend, set: &[&str]) -> Option<(TestDb, Orchestrator)> {
    let (db, o) = started(backend, set).await?;
    o.start(Components {
        executor: true,
        worker: false,
        indexer: false,
        scheduler: false,
    });
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

/// SQLite writes the executions table's indexed columns beside the document (migration
/// 0003) instead of generating them from it: they hold exactly what 0001's generated
/// columns computed from the same document, for a running and for an ended execution.
#[tokio::test]
async fn sqlite_execution_columns_are_what_the_document_says() {
    use sqlx::Connection as _;
    let (db, o) = started(Backend::Sqlite, &[])
        .await
        .expect("SQLite always runs");
    let ended = run(
        &o,
        &scenario("scenarios/e2e-webhook/benchmark01.yaml"),
        Map::new(),
        vec![],
    )
    .await;
    o.shutdown().await;
    let mut running = ended.clone();
    running.id = "still-running".into();
    running.state = orchestrator::model::State::new(orchestrator::model::now());
    running
        .state
        .transition(StateType::Running, orchestrator::model::now());
    let mut tx = o.store().begin().await.unwrap();
    tx.save_execution(&running).await.unwrap();
    tx.commit().await.unwrap();

    let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    // key; namespace, flow, state, start and end equal (the dates as instants: the columns
    // are written fixed-width, so that text order is time order); state_duration written,
    // generated
    type Row = (
        String,
        bool,
        bool,
        bool,
        bool,
        bool,
        Option<f64>,
        Option<f64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT "key",
                  namespace IS json_extract(value, '$.namespace'),
                  flow_id IS json_extract(value, '$.flowId'),
                  state_current IS json_extract(value, '$.state.current'),
                  julianday(start_date) IS julianday(json_extract(value, '$.state.startDate')),
                  julianday(end_date) IS julianday(json_extract(value, '$.state.endDate')),
                  state_duration,
                  (julianday(json_extract(value, '$.state.endDate'))
                   - julianday(json_extract(value, '$.state.startDate'))) * 86400000.0
               FROM executions ORDER BY "key""#,
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (key, ns, flow, state, start, end, written, generated) in rows {
        assert!(
            ns && flow && state && start && end,
            "{key}: a column differs"
        );
        match (written, generated) {
            (None, None) => assert_eq!(key, "still-running"),
            // julianday keeps about a millisecond.
            (Some(w), Some(g)) => assert!((w - g).abs() < 2.0, "{key}: {w} ms vs {g} ms"),
            other => panic!("{key}: state_duration {other:?}"),
        }
    }
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
    let exec = run_file(&o, "scenarios/e2e-webhook/benchmark02.yaml").await;
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

/// A queued execution of `flow_id` in `tenant`, dated `second` seconds into 2024.
fn queued(
    tenant: Option<&str>,
    flow_id: &str,
    second: i64,
) -> orchestrator::repository::ExecutionQueued {
    let date = jiff::Timestamp::from_second(1_704_067_200 + second).unwrap();
    let id = orchestrator::model::new_id();
    let mut state = orchestrator::model::State::new(date);
    state.transition(StateType::Queued, date);
    let execution = Execution {
        original_id: id.clone(),
        metadata: None,
        outputs: None,
        id,
        tenant_id: tenant.map(str::to_string),
        namespace: "tests.queued".into(),
        flow_id: flow_id.into(),
        flow_revision: 1,
        inputs: Map::new(),
        labels: vec![],
        state,
        task_run_list: vec![],
        trigger: None,
    };
    orchestrator::repository::ExecutionQueued::new(execution, date)
}

async fn queued_store(
    db: &TestDb,
    index: &str,
) -> std::sync::Arc<dyn orchestrator::repository::Store> {
    orchestrator::repository::connect(&db.url, &knobs(&[&format!("queued.index={index}")]))
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", db.backend))
}

/// Pops `flow_id` in `tenant` until nothing is left, one transaction a pop.
async fn pop_all(
    store: &dyn orchestrator::repository::Store,
    tenant: Option<&str>,
    flow_id: &str,
) -> Vec<Execution> {
    let mut out = Vec::new();
    loop {
        let mut tx = store.begin().await.unwrap();
        let popped = tx
            .queued_pop(tenant, "tests.queued", flow_id)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        match popped {
            Some(e) => out.push(e),
            None => return out,
        }
    }
}

/// Kestra OSS pops (`tenant_id IS NULL`) never take a tenant's queued executions and a
/// tenant's pops never take OSS ones; each pops its own oldest first; and both
/// `queued.index` settings (Kestra before and after 34fa6ce91) pop the same executions in
/// the same order, each read back whole from the queued row.
async fn queued_pops_keep_tenants_apart_in_date_order(backend: Backend) {
    let mut orders = Vec::new();
    for index in ["flow", "flow-date"] {
        let Some(db) = TestDb::create(backend).await else {
            return;
        };
        let store = queued_store(&db, index).await;
        // Pushed out of date order, interleaving tenants and a second flow.
        let rows = [
            queued(None, "f", 30),
            queued(Some("main"), "f", 5),
            queued(None, "f", 10),
            queued(None, "other", 1),
            queued(Some("main"), "f", 40),
            queued(None, "f", 20),
            queued(Some("other-tenant"), "f", 2),
        ];
        let mut tx = store.begin().await.unwrap();
        for r in &rows {
            tx.queued_push(r).await.unwrap();
        }
        tx.commit().await.unwrap();
        let dates = |popped: &[Execution]| -> Vec<jiff::Timestamp> {
            popped
                .iter()
                .map(|e| {
                    rows.iter()
                        .find(|r| r.execution.id == e.id)
                        .expect("a pushed execution")
                        .date
                })
                .collect()
        };

        let oss = pop_all(&*store, None, "f").await;
        assert_eq!(oss.len(), 3, "{index}: the three OSS rows of flow f");
        assert!(
            oss.iter()
                .all(|e| e.tenant_id.is_none() && e.flow_id == "f")
        );
        let oss_dates = dates(&oss);
        assert!(
            oss_dates.is_sorted(),
            "{index}: oldest first: {oss_dates:?}"
        );
        // Each popped execution is the one pushed, read back whole from its row.
        for e in &oss {
            let pushed = rows.iter().find(|r| r.execution.id == e.id).unwrap();
            assert_eq!(e, &pushed.execution, "{index}");
        }

        let main = pop_all(&*store, Some("main"), "f").await;
        assert_eq!(
            main.len(),
            2,
            "{index}: the tenant's two rows, untouched by OSS pops"
        );
        assert!(main.iter().all(|e| e.tenant_id.as_deref() == Some("main")));
        assert!(dates(&main).is_sorted(), "{index}");

        // What is left belongs to other flows or tenants, and OSS pops of f found none.
        assert_eq!(pop_all(&*store, None, "other").await.len(), 1);
        assert_eq!(pop_all(&*store, Some("other-tenant"), "f").await.len(), 1);
        assert!(pop_all(&*store, Some("main"), "f").await.is_empty());
        orders.push((
            oss.iter()
                .map(|e| dates(std::slice::from_ref(e))[0])
                .collect::<Vec<_>>(),
            dates(&main),
        ));
    }
    assert_eq!(
        orders[0], orders[1],
        "both index settings pop in the same order"
    );
}

/// After ANALYZE, each index setting's pop has a plan, in each tenant mode, that names
/// what it scans; the plan is read for the index and a sort without an error.
async fn queued_pop_plans_are_captured(backend: Backend) {
    use orchestrator::repository::plan;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    for (index, name) in [
        ("flow", "ix_execution_queued_flow"),
        ("flow-date", "ix_execution_queued_flow_date"),
    ] {
        let store = queued_store(&db, index).await;
        let mut tx = store.begin().await.unwrap();
        for i in 0..200 {
            let tenant = (i % 2 == 0).then_some("main");
            tx.queued_push(&queued(tenant, &format!("f{}", i % 4), i))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        store.analyze_queued().await.unwrap();
        for tenant in [None, Some("main")] {
            let p = store
                .explain_queued_pop(tenant, "tests.queued", "f1")
                .await
                .unwrap();
            assert!(
                !p.plan.trim().is_empty(),
                "{backend:?} {index} {tenant:?}: an empty plan"
            );
            assert!(p.plan.contains("execution_queued"), "{}", p.plan);
            let tenant_sql = if tenant.is_some() {
                "tenant_id = "
            } else {
                "tenant_id IS NULL"
            };
            assert!(p.statement.contains(tenant_sql), "{}", p.statement);
            let facts = plan::read(store.backend(), &p.plan, name);
            assert!(
                facts.uses_index.is_some() && facts.sorts.is_some(),
                "{}",
                p.plan
            );
        }
        // EXPLAIN popped nothing: flows f1 and f3 hold the 100 OSS rows (odd i), f0 and f2
        // the tenant's 100; popping them all empties the table for the next setting.
        for (tenant, flow) in [
            (None, "f1"),
            (None, "f3"),
            (Some("main"), "f0"),
            (Some("main"), "f2"),
        ] {
            assert_eq!(
                pop_all(&*store, tenant, flow).await.len(),
                50,
                "{tenant:?} {flow}"
            );
        }
        assert!(pop_all(&*store, Some("main"), "f1").await.is_empty());
    }
}

/// Kestra's SKIP LOCKED half of 34fa6ce91: while one transaction holds the flow's oldest
/// queued row, a second popper takes the next one instead of waiting. SQLite has one writer
/// and no row locks (a second transaction waits for the first), so it is left out.
async fn skip_locked_pops_pass_a_held_row(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = queued_store(&db, "flow-date").await;
    let rows = [queued(None, "f", 1), queued(None, "f", 2)];
    let mut tx = store.begin().await.unwrap();
    for r in &rows {
        tx.queued_push(r).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut first = store.begin().await.unwrap();
    let held = first.queued_pop(None, "tests.queued", "f").await.unwrap();
    assert_eq!(held.map(|e| e.id), Some(rows[0].execution.id.clone()));
    let mut second = store.begin().await.unwrap();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        second.queued_pop(None, "tests.queued", "f"),
    )
    .await
    .expect("a SKIP LOCKED pop does not wait on the held row")
    .unwrap();
    assert_eq!(next.map(|e| e.id), Some(rows[1].execution.id.clone()));
    second.commit().await.unwrap();
    first.commit().await.unwrap();
}

/// Two executor consumers in one process, as two Kestra executor processes pop at once: every
/// queued execution is released and runs to its end under both `queued.index` settings (a
/// lost pop would leave one QUEUED for good).
async fn several_executors_release_every_queued_execution(backend: Backend) {
    for index in ["flow", "flow-date"] {
        let Some((_db, o)) = with_two_executors(backend, &[&format!("queued.index={index}")]).await
        else {
            return;
        };
        let source = r#"
id: two-at-a-time
namespace: tests
concurrency:
  limit: 2
  behavior: QUEUE
tasks:
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      v: done
"#;
        let flow = o.deploy(source, "test.yaml").await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..12 {
            let e = o
                .create_execution(&flow.namespace, &flow.id, Map::new(), vec![], None)
                .await
                .unwrap();
            ids.push(e.id);
        }
        let mut queued = 0;
        for id in &ids {
            let e = o.wait_terminal(id, WAIT).await.unwrap();
            assert_eq!(e.state.current, StateType::Success, "{index}: {id}");
            if e.state
                .histories
                .iter()
                .any(|h| h.state == StateType::Queued)
            {
                queued += 1;
            }
        }
        assert!(
            queued >= 1,
            "{index}: with limit 2, some of 12 executions waited"
        );
        o.shutdown().await;
    }
}

/// A tenant's executions under a concurrency limit are queued with the tenant and released
/// by pops in that tenant (`tenant_id = ?`), not by OSS pops (`tenant_id IS NULL`): every one
/// runs to its end, one at a time.
async fn a_tenants_executions_queue_and_release_in_that_tenant(backend: Backend) {
    use orchestrator::repository::{Message, QueueType};
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let source = "id: tenant-limited\nnamespace: tests\nconcurrency:\n  limit: 1\n  behavior: QUEUE\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.1S\n";
    let flow = o.deploy(source, "test.yaml").await.unwrap();
    // The orchestrator's API creates OSS executions; a tenant's are written as it writes them.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = orchestrator::model::new_id();
        let execution = Execution {
            original_id: id.clone(),
            metadata: None,
            outputs: None,
            id: id.clone(),
            tenant_id: Some("main".into()),
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            flow_revision: flow.revision,
            inputs: Map::new(),
            labels: vec![],
            state: orchestrator::model::State::new(orchestrator::model::now()),
            task_run_list: vec![],
            trigger: None,
        };
        let mut tx = o.store().begin().await.unwrap();
        tx.save_execution(&execution).await.unwrap();
        tx.push(&[Message {
            kind: QueueType::Execution,
            key: id.clone(),
            value: json!({ "executionId": id }).to_string(),
        }])
        .await
        .unwrap();
        tx.commit().await.unwrap();
        o.store().notifier().notify(QueueType::Execution);
        ids.push(id);
    }
    let mut queued = 0;
    for id in &ids {
        let e = o.wait_terminal(id, WAIT).await.unwrap();
        assert_eq!(e.state.current, StateType::Success, "{id}");
        assert_eq!(e.tenant_id.as_deref(), Some("main"), "the tenant is kept");
        queued += usize::from(
            e.state
                .histories
                .iter()
                .any(|h| h.state == StateType::Queued),
        );
    }
    assert!(
        queued >= 1,
        "with limit 1, some of 3 executions waited in QUEUED"
    );
    o.shutdown().await;
}

/// Keeps only migration 0001 of a migrator: the schema as it was before 0002.
fn only_0001(mut m: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    m.migrations = m
        .migrations
        .iter()
        .filter(|x| x.version == 1)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    m
}

/// A database migrated by 0001 (tenant '' and no document) that holds a queued execution
/// is migrated by 0002 when a store opens it: the row is kept, gets its document from the
/// execution it names, and an OSS pop (`tenant_id IS NULL`) returns that execution. (SQL
/// Server's 0002 cannot be run here.)
async fn migration_0002_keeps_queued_executions(backend: Backend) {
    use sqlx::Connection as _;
    if backend == Backend::Mssql {
        return;
    }
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let mut exec = queued(None, "f", 0).execution;
    exec.tenant_id = None;
    let value = serde_json::to_string(&exec).unwrap();
    let (id, ns, flow) = (exec.id.as_str(), exec.namespace.as_str(), "f");
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", db.url))
                .await
                .unwrap();
            only_0001(sqlx::migrate!("./migrations/sqlite"))
                .run(&mut c)
                .await
                .unwrap();
            sqlx::query(r#"INSERT INTO executions ("key", value) VALUES (?, ?)"#)
                .bind(id)
                .bind(&value)
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query(r#"INSERT INTO execution_queued ("key", namespace, flow_id, date) VALUES (?, ?, ?, ?)"#)
                .bind(id)
                .bind(ns)
                .bind(flow)
                .bind("2024-01-01T00:00:00.5Z")
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
        Backend::Postgres => {
            let schema = db
                .url
                .rsplit("flowbench_schema=")
                .next()
                .unwrap()
                .to_string();
            let admin = db.url.split('?').next().unwrap();
            let mut a = sqlx::PgConnection::connect(admin).await.unwrap();
            sqlx::query(&format!(r#"CREATE SCHEMA IF NOT EXISTS "{schema}""#))
                .execute(&mut a)
                .await
                .unwrap();
            a.close().await.unwrap();
            let mut c = db.pg_connection().await;
            only_0001(sqlx::migrate!("./migrations/postgres"))
                .run(&mut c)
                .await
                .unwrap();
            sqlx::query(r#"INSERT INTO executions ("key", value) VALUES ($1, $2::jsonb)"#)
                .bind(id)
                .bind(&value)
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query(r#"INSERT INTO execution_queued ("key", namespace, flow_id, date) VALUES ($1, $2, $3, $4::timestamptz)"#)
                .bind(id)
                .bind(ns)
                .bind(flow)
                .bind("2024-01-01T00:00:00.5Z")
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
        Backend::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            only_0001(sqlx::migrate!("./migrations/mysql"))
                .run(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO executions (`key`, `value`) VALUES (?, ?)")
                .bind(id)
                .bind(&value)
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO execution_queued (`key`, namespace, flow_id, date) VALUES (?, ?, ?, ?)")
                .bind(id)
                .bind(ns)
                .bind(flow)
                .bind("2024-01-01 00:00:00.500000")
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
        }
        Backend::Mssql => unreachable!(),
    }
    let store = queued_store(&db, "flow-date").await;
    if backend == Backend::Sqlite {
        // 0003 rebuilt the table: the row keeps the columns 0001 generated for it.
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let (namespace, state): (String, String) =
            sqlx::query_as(r#"SELECT namespace, state_current FROM executions WHERE "key" = ?"#)
                .bind(id)
                .fetch_one(&mut c)
                .await
                .unwrap();
        assert_eq!(
            (namespace.as_str(), state.as_str()),
            (ns, exec.state.current.as_str())
        );
    }
    assert!(
        pop_all(&*store, Some(""), "f").await.is_empty(),
        "'' is no tenant any more"
    );
    let popped = pop_all(&*store, None, "f").await;
    assert_eq!(popped, vec![exec]);
}

/// A poll costs O(unconsumed rows), whatever the queue's history. 20,000 messages are
/// pushed, the planner's statistics gathered while they wait (as autovacuum samples a busy
/// queue), and then all are consumed; the next poll must read, by the database's own
/// counters (`Store::poll_rows_read`), as few rows as a poll of a fresh queue. Before
/// PostgreSQL's partial index (migration 0003), the planner walked the primary key through
/// every consumed row not yet cleaned: 20,000 rows read for 5 returned. SQLite and SQL
/// Server keep no such counter and skip the check.
async fn a_poll_reads_the_backlog_not_the_history(backend: Backend) {
    use orchestrator::repository::{Message, QueueType};
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = queued_store(&db, "flow-date").await;
    let message = |kind: QueueType, i: usize| Message {
        kind,
        key: format!("k{i}"),
        value: format!("{{\"n\": {i}}}"),
    };
    let kinds = [QueueType::Execution, QueueType::WorkerTaskResult];
    // A backlog of 5 messages the poll wants, and 5 of another kind.
    let backlog: Vec<Message> = (0..5)
        .map(|i| message(QueueType::Execution, i))
        .chain((0..5).map(|i| message(QueueType::WorkerTask, i)))
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.push(&backlog).await.unwrap();
    tx.commit().await.unwrap();
    let Some(fresh) = store.poll_rows_read(&kinds, 100).await.unwrap() else {
        return;
    };
    // History: 20,000 messages of the polled kinds, waiting when statistics are gathered,
    // then consumed (with the backlog's 5), 1,000 a transaction.
    let mut tx = store.begin().await.unwrap();
    let history: Vec<Message> = (0..20_000).map(|i| message(kinds[i % 2], i)).collect();
    tx.push(&history).await.unwrap();
    tx.commit().await.unwrap();
    analyze_queues(&db).await;
    let mut consumed = 0;
    loop {
        let mut tx = store.begin().await.unwrap();
        let n = tx.poll(&kinds, 1_000).await.unwrap().len();
        tx.commit().await.unwrap();
        if n == 0 {
            break;
        }
        consumed += n;
    }
    assert_eq!(consumed, 20_005);
    let mut tx = store.begin().await.unwrap();
    tx.push(&backlog[..5]).await.unwrap();
    tx.commit().await.unwrap();
    let with_history = store.poll_rows_read(&kinds, 100).await.unwrap().unwrap();
    assert!(
        fresh <= 50 && with_history <= 50,
        "{backend:?}: one poll read {fresh} rows of a fresh queue and {with_history} with 20,000 consumed rows behind it"
    );
    // The poll, rolled back, still finds the new backlog.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.poll(&kinds, 100).await.unwrap().len(), 5);
}

/// `ANALYZE` of the `queues` table on a server backend.
async fn analyze_queues(db: &TestDb) {
    use sqlx::Connection;
    match db.backend {
        Backend::Postgres => {
            let mut c = db.pg_connection().await;
            sqlx::query("ANALYZE queues").execute(&mut c).await.unwrap();
        }
        Backend::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
            sqlx::query("ANALYZE TABLE queues")
                .execute(&mut c)
                .await
                .unwrap();
        }
        _ => {}
    }
}

/// A worker task result that does not decode is logged and dropped, as Kestra's consumers
/// skip a message they cannot deserialize: the executor's batch that holds it still commits,
/// so the execution it names runs to its end rather than its batch being received again
/// forever. The bad result is keyed by the execution, so that it lands in that execution's
/// group, where a merge that failed the batch would stop it.
async fn a_result_that_does_not_decode_does_not_block_the_executor(backend: Backend) {
    use orchestrator::repository::{Message, QueueType};
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let o = db.orchestrator(knobs(&[])).await;
    let flow = o
        .deploy(
            &scenario("scenarios/e2e-webhook/benchmark01.yaml"),
            "test.yaml",
        )
        .await
        .expect("deploy");
    let exec = o
        .create_execution(&flow.namespace, &flow.id, Map::new(), vec![], None)
        .await
        .expect("create execution");
    let mut tx = o.store().begin().await.unwrap();
    tx.push(&[Message {
        kind: QueueType::WorkerTaskResult,
        key: exec.id.clone(),
        value: r#"{"taskRun": "not a task run"}"#.into(),
    }])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    o.start(Components::ALL);
    let done = o
        .wait_terminal(&exec.id, Duration::from_secs(30))
        .await
        .expect("the execution ends although a bad result came with it");
    assert_eq!(done.state.current, StateType::Success);
    o.wait_idle(WAIT).await.expect("idle");
    assert_eq!(o.store().counts().await.unwrap().pending_messages, 0);
}

/// `Tx::load_execution_saved` hands back the execution the caller saved, undecoded, only
/// while the database still holds the very document it wrote; once anything else has saved
/// the execution it decodes what is stored. PostgreSQL's JSONB does not keep the text, so
/// there nothing is kept and every load decodes; the `normalize` JSON mapping (Kestra's decode
/// before 0.20) always decodes too.
async fn a_saved_execution_is_reused_only_while_its_document_is_stored(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let o = db.orchestrator(knobs(&[])).await;
    o.start(Components::ALL);
    let exec = run_file(&o, "scenarios/e2e-webhook/benchmark01.yaml").await;
    o.shutdown().await;
    for (mapping, keeps) in [
        ("direct", backend != Backend::Postgres),
        ("normalize", false),
    ] {
        let store = orchestrator::repository::connect(
            &db.url,
            &knobs(&[&format!("jdbc.json-mapping={mapping}")]),
        )
        .await
        .unwrap();
        let mut tx = store.begin().await.unwrap();
        let saved = tx.save_execution_keeping(exec.clone()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            saved.is_some(),
            keeps,
            "{backend:?} {mapping}: a document kept"
        );
        let Some(mut saved) = saved else { continue };
        assert_eq!(saved.execution, exec);
        // A mark only the kept copy has: it comes back only if the copy is reused.
        saved.execution.labels.push(Label {
            key: "kept".into(),
            value: "copy".into(),
        });
        let mut tx = store.begin().await.unwrap();
        let loaded = tx
            .load_execution_saved(&exec.id, Some(saved))
            .await
            .unwrap();
        assert_eq!(
            loaded
                .as_ref()
                .map(|e| e.labels.last().map(|l| l.key.as_str())),
            Some(Some("kept")),
            "{backend:?}: the unchanged document was decoded again"
        );
        // Another writer saves the execution: the kept copy no longer matches.
        let mut changed = exec.clone();
        changed.labels.push(Label {
            key: "other".into(),
            value: "writer".into(),
        });
        tx.save_execution(&changed).await.unwrap();
        let stale = tx
            .save_execution_keeping(exec.clone())
            .await
            .unwrap()
            .unwrap();
        tx.save_execution(&changed).await.unwrap();
        let loaded = tx
            .load_execution_saved(&exec.id, Some(stale))
            .await
            .unwrap();
        assert_eq!(
            loaded.as_ref(),
            Some(&changed),
            "{backend:?}: a stale copy was reused"
        );
        tx.commit().await.unwrap();
    }
}

/// `executordelayed`: a delay is taken once it is due, earliest first, and only once; a second
/// push for the same task run replaces the first; where the database locks rows, a delay one
/// transaction holds is skipped by another rather than waited for.
async fn delays_are_taken_once_when_due(backend: Backend) {
    use orchestrator::repository::ExecutionDelay;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = queued_store(&db, "flow-date").await;
    let at = |ms: i64| jiff::Timestamp::from_millisecond(ms).unwrap();
    let late = ExecutionDelay::resume("e1", "t1", at(3_000), StateType::Running);
    let early = ExecutionDelay::resume("e2", "t2", at(1_000), StateType::Failed);
    let future = ExecutionDelay::resume("e3", "t3", at(9_000), StateType::Running);
    let mut tx = store.begin().await.unwrap();
    tx.delay_push(&ExecutionDelay::resume(
        "e1",
        "t1",
        at(8_000),
        StateType::Failed,
    ))
    .await
    .unwrap();
    for d in [&late, &early, &future] {
        tx.delay_push(d).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let taken = tx.delays_take(5_000, 100).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(taken, vec![early, late], "{backend:?}");
    let mut tx = store.begin().await.unwrap();
    assert!(tx.delays_take(5_000, 100).await.unwrap().is_empty());
    tx.commit().await.unwrap();

    if backend != Backend::Sqlite {
        let mut first = store.begin().await.unwrap();
        let held = first.delays_take(10_000, 1).await.unwrap();
        assert_eq!(held, vec![future.clone()]);
        let mut second = store.begin().await.unwrap();
        let other = tokio::time::timeout(Duration::from_secs(10), second.delays_take(10_000, 1))
            .await
            .expect("a held delay is skipped, not waited for")
            .unwrap();
        assert!(other.is_empty(), "{other:?}");
        second.commit().await.unwrap();
        // Rolled back: the delay is there again.
        drop(first);
    }
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.delays_take(10_000, 100).await.unwrap(), vec![future]);
    tx.commit().await.unwrap();
}

/// A Pause's `delay` resumes it and its `timeout` fails it, through `executordelayed`, on every
/// backend (Kestra's `PauseTest.runDelay` and `runTimeout`).
async fn a_paused_execution_goes_on_after_its_delay_and_fails_after_its_timeout(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    for (after, end, task_runs) in [
        ("delay", StateType::Success, 2),
        ("timeout", StateType::Failed, 1),
    ] {
        let source = format!(
            "id: pause-{after}\nnamespace: tests\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n    {after}: PT0.5S\n  - id: last\n    type: io.kestra.plugin.core.debug.Return\n    format: done\n"
        );
        let exec = run(&o, &source, Map::new(), vec![]).await;
        assert_eq!(exec.state.current, end, "{backend:?} {after}");
        assert_eq!(exec.task_run_list.len(), task_runs, "{backend:?} {after}");
        let pause = &exec.task_run_list[0].state;
        assert!(
            pause.histories.iter().any(|h| h.state == StateType::Paused),
            "{backend:?} {after}: {pause:?}"
        );
        let paused_at = exec
            .state
            .histories
            .iter()
            .find(|h| h.state == StateType::Paused)
            .expect("the execution paused")
            .date;
        let waited = exec.state.end_date().unwrap().duration_since(paused_at);
        assert!(
            waited >= jiff::SignedDuration::from_millis(500),
            "{backend:?} {after}: ended {waited:?} after the pause"
        );
    }
    o.shutdown().await;
}

/// A WaitFor's rounds are `CONTINUE_FLOWABLE` rows of `executordelayed`, on every backend
/// (Kestra's `WaitForCaseTest.waitforMultipleTasks`): three rounds, `interval` apart.
async fn a_wait_for_goes_round_through_continue_flowable_delays(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let source = "id: waitfor\nnamespace: tests\ntasks:\n  - id: waitfor\n    type: io.kestra.plugin.core.flow.WaitFor\n    condition: \"{{ outputs.count.value == '4' }}\"\n    checkFrequency:\n      interval: PT0.2S\n    tasks:\n      - id: count\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{ outputs.waitfor.iterationCount + 1 }}\"\n";
    let exec = run(&o, source, Map::new(), vec![]).await;
    assert_eq!(exec.state.current, StateType::Success, "{backend:?}");
    assert_eq!(exec.task_run_list.len(), 2, "{backend:?}");
    let waitfor = &exec.task_run_list[0];
    assert_eq!(waitfor.iteration, Some(3), "{backend:?}");
    assert_eq!(
        waitfor.outputs.as_ref().unwrap()["iterationCount"],
        json!(4)
    );
    let paused = exec
        .state
        .histories
        .iter()
        .filter(|h| h.state == StateType::Paused)
        .count();
    assert_eq!(paused, 2, "{backend:?}: paused between the rounds");
    o.shutdown().await;
}

/// A Resume task resumes the paused execution it names, on every backend (Kestra's
/// `ResumeTest.resume`): the resumed one goes on to its end.
async fn a_resume_task_resumes_a_paused_execution(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let pause = o
        .deploy(
            "id: pause\nnamespace: tests\ntasks:\n  - id: pause\n    type: io.kestra.plugin.core.flow.Pause\n  - id: last\n    type: io.kestra.plugin.core.debug.Return\n    format: done\n",
            "pause.yaml",
        )
        .await
        .unwrap();
    let paused = o
        .create_execution(&pause.namespace, &pause.id, Map::new(), vec![], None)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while o.execution(&paused.id).await.unwrap().state.current != StateType::Paused {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{backend:?}: never paused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resume = "id: resume\nnamespace: tests\ninputs:\n  - id: executionId\n    type: STRING\ntasks:\n  - id: resume\n    type: io.kestra.plugin.core.execution.Resume\n    executionId: \"{{ inputs.executionId }}\"\n";
    let inputs: Map<String, Value> = [("executionId".to_string(), json!(paused.id))]
        .into_iter()
        .collect();
    let exec = run(&o, resume, inputs, vec![]).await;
    assert_eq!(exec.state.current, StateType::Success, "{backend:?}");
    let resumed = o.wait_terminal(&paused.id, WAIT).await.unwrap();
    assert_eq!(resumed.state.current, StateType::Success, "{backend:?}");
    assert_eq!(resumed.task_run_list.len(), 2, "{backend:?}");
    o.shutdown().await;
}

/// Subflow task runs started together (a ForEach with no concurrency limit) each end with
/// their own execution, on every backend: the ending subflow reads its parent's row under
/// the database's row lock while the parent's other subflows end.
async fn subflows_started_together_each_end_their_task_run(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    o.deploy(
        "id: child\nnamespace: tests\ninputs:\n  - id: n\n    type: INT\ntasks:\n  - id: double\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.n * 2 }}\"\noutputs:\n  - id: doubled\n    type: INT\n    value: \"{{ outputs.double.value }}\"\n",
        "child.yaml",
    )
    .await
    .unwrap();
    let parent = "id: parent\nnamespace: tests\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [1, 2, 3, 4, 5, 6]\n    concurrencyLimit: 0\n    tasks:\n      - id: sub\n        type: io.kestra.plugin.core.flow.Subflow\n        namespace: tests\n        flowId: child\n        inputs:\n          n: \"{{ taskrun.value }}\"\n";
    let exec = run(&o, parent, Map::new(), vec![]).await;
    assert_eq!(exec.state.current, StateType::Success, "{backend:?}");
    let mut doubled: Vec<i64> = exec
        .task_run_list
        .iter()
        .filter(|t| t.task_id == "sub")
        .map(|t| {
            assert_eq!(t.state.current, StateType::Success, "{backend:?}");
            t.outputs.as_ref().unwrap()["outputs"]["doubled"]
                .as_i64()
                .unwrap()
        })
        .collect();
    doubled.sort();
    assert_eq!(doubled, [2, 4, 6, 8, 10, 12], "{backend:?}");
    o.shutdown().await;
}

/// Two schedulers on one database, passing at the same moment, fire each tick once between
/// them; a third, started later as a restarted scheduler would be, fires the ticks missed
/// meanwhile and none twice (`triggers` holds where the schedule is).
async fn two_schedulers_fire_each_tick_once_and_a_new_one_takes_up_the_rest(backend: Backend) {
    use orchestrator::scheduler::Scheduler;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let o = db.orchestrator(knobs(&[])).await;
    o.deploy(
        "id: ticking\nnamespace: tests\ntriggers:\n  - id: every-second\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"* * * * * *\"\n    withSeconds: true\n    timezone: UTC\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ trigger.date }}\"\n",
        "ticking.yaml",
    )
    .await
    .unwrap();
    // Each scheduler has its own connections, as separate processes would, except on
    // SQLite, whose one writer a deployment shares within one process.
    let shared = o.store().clone();
    let store = || async {
        if backend == Backend::Sqlite {
            return shared.clone();
        }
        orchestrator::repository::connect(&db.url, &knobs(&[]))
            .await
            .unwrap()
    };
    let (mut a, mut b) = (Scheduler::new(store().await), Scheduler::new(store().await));
    a.reload().await.unwrap();
    b.reload().await.unwrap();
    let t0: jiff::Timestamp = "2030-01-01T00:00:00.500Z".parse().unwrap();
    // The first pass stores the trigger: its first tick is the one after t0.
    assert_eq!(a.pass(t0).await.unwrap(), 0);
    let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
    let (fa, fb) = tokio::join!(a.pass(at(5)), b.pass(at(5)));
    let (fa, fb) = (fa.unwrap(), fb.unwrap());
    assert_eq!(
        fa + fb,
        5,
        "{backend:?}: {fa} + {fb} executions for 5 ticks"
    );
    // A scheduler that was down from then on.
    let mut c = Scheduler::new(store().await);
    c.reload().await.unwrap();
    assert_eq!(c.pass(at(8)).await.unwrap(), 3, "{backend:?}");
    assert_eq!(a.pass(at(8)).await.unwrap(), 0, "{backend:?}");
    let mut dates: Vec<String> = Vec::new();
    for exec in executions_of(&o, "ticking").await {
        let trigger = exec.trigger.expect("a scheduled execution has its trigger");
        assert_eq!(trigger.kind, "io.kestra.plugin.core.trigger.Schedule");
        dates.push(trigger.variables["date"].as_str().unwrap().to_string());
    }
    dates.sort();
    let expected: Vec<String> = (1..=8)
        .map(|s| format!("2030-01-01T00:00:{s:02}Z"))
        .collect();
    assert_eq!(dates, expected, "{backend:?}");
    o.shutdown().await;
}

/// `multipleconditions` keeps one window per key: the first lock stores it, a later one
/// reads what was put, a held row makes another transaction wait (where the database locks
/// rows), and a delete or an expiry removes it.
async fn multiple_condition_windows_are_kept_reset_and_purged(backend: Backend) {
    use orchestrator::repository::MultipleConditionWindow;
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let store = queued_store(&db, "flow-date").await;
    let at = |ms: i64| jiff::Timestamp::from_millisecond(ms).unwrap();
    let window = |id: &str, end: i64| MultipleConditionWindow {
        namespace: "tests".into(),
        flow_id: "listen".into(),
        condition_id: id.into(),
        start: at(1_000),
        end: at(end),
        results: Default::default(),
    };
    let mut tx = store.begin().await.unwrap();
    let stored = tx
        .multiple_condition_lock(&window("m", 9_000))
        .await
        .unwrap();
    assert_eq!(stored, window("m", 9_000), "{backend:?}");
    let mut met = stored.clone();
    met.results.insert("condition_1".into(), true);
    tx.multiple_condition_put(&met).await.unwrap();
    tx.multiple_condition_lock(&window("old", 2_000))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A later lock reads the stored window, not the one it would store.
    let mut tx = store.begin().await.unwrap();
    let again = tx
        .multiple_condition_lock(&window("m", 5_000))
        .await
        .unwrap();
    assert_eq!(again, met, "{backend:?}");
    if backend != Backend::Sqlite {
        let waiting = {
            let store = store.clone();
            let fresh = window("m", 5_000);
            tokio::spawn(async move {
                let mut other = store.begin().await.unwrap();
                let seen = other.multiple_condition_lock(&fresh).await.unwrap();
                other.commit().await.unwrap();
                seen
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "{backend:?}: a held window is waited for"
        );
        let mut both = met.clone();
        both.results.insert("condition_2".into(), true);
        tx.multiple_condition_put(&both).await.unwrap();
        tx.commit().await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the lock is released at commit")
            .unwrap();
        assert_eq!(
            seen, both,
            "{backend:?}: the waiter reads the committed window"
        );
    } else {
        tx.commit().await.unwrap();
    }

    // Expired windows are purged; a fulfilled one is deleted by its key.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.multiple_conditions_purge(3_000).await.unwrap(),
        1,
        "{backend:?}"
    );
    tx.multiple_condition_delete(&met.uid()).await.unwrap();
    let fresh = tx
        .multiple_condition_lock(&window("m", 7_000))
        .await
        .unwrap();
    assert_eq!(
        fresh,
        window("m", 7_000),
        "{backend:?}: deleted, then stored again"
    );
    tx.commit().await.unwrap();
}

/// Flow triggers on every backend, with a second executor running: a listener with
/// `preconditions` on two flows starts once, when the second has succeeded too, with the
/// trigger Kestra sets; a listener with conditions and `inputs` starts once per matching
/// execution, its inputs rendered from the triggering execution's outputs.
async fn flow_triggers_start_each_flow_once_under_two_executors(backend: Backend) {
    let Some((_db, o)) = with_two_executors(backend, &[]).await else {
        return;
    };
    o.deploy(
        "id: both\nnamespace: tests\ntriggers:\n  - id: after-a-and-b\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: ab\n      flows:\n        - namespace: tests\n          flowId: a\n          states: [SUCCESS]\n        - namespace: tests\n          flowId: b\n          states: [SUCCESS]\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"after {{ trigger.flowId }}\"\n",
        "both.yaml",
    )
    .await
    .unwrap();
    o.deploy(
        "id: each\nnamespace: tests\ninputs:\n  - id: got\n    type: STRING\ntriggers:\n  - id: after-a\n    type: io.kestra.plugin.core.trigger.Flow\n    inputs:\n      got: \"{{ outputs.r.value }}\"\n    conditions:\n      - type: io.kestra.plugin.core.condition.ExecutionFlow\n        namespace: tests\n        flowId: a\n      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [SUCCESS]\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.got }}\"\n",
        "each.yaml",
    )
    .await
    .unwrap();
    let a = "id: a\nnamespace: tests\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"from {{ execution.id }}\"\n";
    let b = "id: b\nnamespace: tests\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: b\n";
    let first_a = run(&o, a, Map::new(), vec![]).await;
    let second_a = run(&o, a, Map::new(), vec![]).await;
    assert!(
        executions_of(&o, "both").await.is_empty(),
        "{backend:?}: b has not run yet"
    );
    let b = run(&o, b, Map::new(), vec![]).await;

    let both = executions_of(&o, "both").await;
    assert_eq!(both.len(), 1, "{backend:?}: {both:?}");
    let both = o.wait_terminal(&both[0].id, WAIT).await.unwrap();
    assert_eq!(both.state.current, StateType::Success, "{backend:?}");
    let trigger = both.trigger.as_ref().unwrap();
    assert_eq!(trigger.id, "after-a-and-b");
    assert_eq!(trigger.kind, "io.kestra.plugin.core.trigger.Flow");
    assert_eq!(trigger.variables["executionId"], json!(b.id));
    assert_eq!(trigger.variables["flowId"], json!("b"));
    assert_eq!(trigger.variables["namespace"], json!("tests"));
    assert_eq!(trigger.variables["state"], json!("SUCCESS"));
    assert_eq!(trigger.variables["flowRevision"], json!(b.flow_revision));

    let each = executions_of(&o, "each").await;
    let mut by = Vec::new();
    for started in &each {
        let done = o.wait_terminal(&started.id, WAIT).await.unwrap();
        assert_eq!(done.state.current, StateType::Success, "{backend:?}");
        let id = done.trigger.as_ref().unwrap().variables["executionId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            done.inputs["got"],
            json!(format!("from {id}")),
            "{backend:?}"
        );
        by.push(id);
    }
    by.sort();
    let mut expected = vec![first_a.id.clone(), second_a.id.clone()];
    expected.sort();
    assert_eq!(by, expected, "{backend:?}: one per execution of a");
    o.shutdown().await;
}

/// Every execution of a flow in the database.
async fn executions_of(o: &Orchestrator, flow_id: &str) -> Vec<Execution> {
    o.store()
        .executions_of_flow("tests", flow_id)
        .await
        .unwrap()
}

/// A kill travels through the kill queue on every backend: the executor consumes the
/// request and moves the execution to KILLING, a worker reads the executed kill without
/// consuming it and stops the running Sleep, and the execution ends KILLED with its task
/// run KILLED, long before the Sleep would have ended; its subflow execution is killed too.
async fn a_killed_execution_stops_its_running_task_and_its_subflow(backend: Backend) {
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let child = "id: sleeper\nnamespace: tests\ntasks:\n  - id: sleep\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n";
    let parent = "id: parent\nnamespace: tests\ntasks:\n  - id: both\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n      - id: sleep\n        type: io.kestra.plugin.core.flow.Sleep\n        duration: PT60S\n      - id: sub\n        type: io.kestra.plugin.core.flow.Subflow\n        namespace: tests\n        flowId: sleeper\n";
    o.deploy(child, "child.yaml").await.expect("deploy");
    o.deploy(parent, "parent.yaml").await.expect("deploy");
    let started_at = tokio::time::Instant::now();
    let exec = o
        .create_execution("tests", "parent", Map::new(), vec![], None)
        .await
        .expect("create");
    // Both Sleeps are on a worker: the parent's, and the subflow execution's.
    let child_id = loop {
        let e = o.execution(&exec.id).await.unwrap();
        let child = e
            .task_run_list
            .iter()
            .find(|t| t.task_id == "sub")
            .and_then(|t| {
                t.outputs
                    .as_ref()?
                    .get("executionId")?
                    .as_str()
                    .map(str::to_string)
            });
        let jobs = o.store().counts().await.unwrap().running_jobs;
        if let Some(child) = child
            && jobs == 2
        {
            break child;
        }
        assert!(started_at.elapsed() < WAIT, "{backend:?}: never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    o.kill(&exec.id, true).await.expect("kill");
    let killed = o.wait_terminal(&exec.id, WAIT).await.unwrap();
    let child = o.wait_terminal(&child_id, WAIT).await.unwrap();
    assert!(
        started_at.elapsed() < Duration::from_secs(50),
        "{backend:?}: the Sleeps were not stopped"
    );
    assert_eq!(killed.state.current, StateType::Killed, "{backend:?}");
    assert_eq!(child.state.current, StateType::Killed, "{backend:?}");
    for e in [&killed, &child] {
        assert!(
            e.task_run_list
                .iter()
                .all(|t| t.state.current == StateType::Killed),
            "{backend:?}: {:?}",
            e.task_run_list
                .iter()
                .map(|t| (&t.task_id, t.state.current))
                .collect::<Vec<_>>()
        );
        assert!(
            e.state
                .histories
                .iter()
                .any(|h| h.state == StateType::Killing),
            "{backend:?}"
        );
    }
    o.wait_idle(WAIT).await.expect("the worker is free again");
    // Consumed, the kill rows stay a while for the workers that read them.
    o.store().clean_queue().await.expect("clean the queue");
    let kills = o
        .store()
        .kills_after(0, 100)
        .await
        .expect("read the kill queue");
    let executed = kills
        .iter()
        .filter(|k| k.value.contains("EXECUTED"))
        .map(|k| k.key.as_str())
        .collect::<std::collections::HashSet<_>>();
    assert!(
        executed.contains(exec.id.as_str()) && executed.contains(child_id.as_str()),
        "{backend:?}: {kills:?}"
    );
    o.shutdown().await;
}

/// `GET /api/v1/executions/search`'s repository query, on each dialect: the namespace (and
/// those under it), flow, state, date and label filters, the sort on each field, the
/// pages and their total; then a delete, with and without its logs.
async fn executions_are_searched_paged_and_deleted(backend: Backend) {
    use orchestrator::repository::search::{Direction, ExecutionSearch, SortField};
    let Some((_db, o)) = started(backend, &[]).await else {
        return;
    };
    let flow = |namespace: &str, id: &str, fail: bool| {
        format!(
            "id: {id}\nnamespace: {namespace}\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.{}\n",
            if fail {
                "execution.Fail"
            } else {
                "log.Log\n    message: hi"
            }
        )
    };
    let label = |key: &str, value: &str| Label {
        key: key.into(),
        value: value.into(),
    };
    // Five executions, one after another: a (ns1.a, SUCCESS) three times, b (ns1.sub.b,
    // FAILED), c (ns2_x.c, SUCCESS): `ns2_x` checks that `_` is no wildcard.
    let mut ids = Vec::new();
    for (namespace, id, fail, labels) in [
        (
            "ns1",
            "a",
            false,
            vec![label("team", "x"), label("env", "prod")],
        ),
        ("ns1", "a", false, vec![label("team", "y")]),
        (
            "ns1",
            "a",
            false,
            vec![label("team", "x"), label("env", "dev:1")],
        ),
        ("ns1.sub", "b", true, vec![label("team", "x")]),
        ("ns2_x", "c", false, vec![]),
    ] {
        let exec = run(&o, &flow(namespace, id, fail), Map::new(), labels).await;
        ids.push(exec.id);
    }
    let search = |f: &dyn Fn(&mut ExecutionSearch)| {
        let mut s = ExecutionSearch {
            page: 1,
            size: 10,
            ..Default::default()
        };
        f(&mut s);
        s
    };
    let store = o.store();
    let found = |s: ExecutionSearch| async move {
        let page = store.search_executions(&s).await.unwrap();
        let found: Vec<String> = page.results.into_iter().map(|e| e.id).collect();
        (found, page.total)
    };

    // No filter, newest first: all five.
    let (all, total) = found(search(&|_| {})).await;
    assert_eq!(total, 5);
    assert_eq!(all, ids.iter().rev().cloned().collect::<Vec<_>>());
    // Oldest first, two a page: the third page has the last one.
    let oldest = |page| {
        search(&move |s| {
            s.sort = vec![(SortField::StartDate, Direction::Asc)];
            s.size = 2;
            s.page = page;
        })
    };
    assert_eq!(found(oldest(1)).await, (ids[..2].to_vec(), 5));
    assert_eq!(found(oldest(3)).await, (ids[4..].to_vec(), 5));
    assert_eq!(found(oldest(4)).await, (vec![], 5));
    // A namespace finds those under it, not those that merely begin alike.
    let (under, total) = found(search(&|s| s.namespace = Some("ns1".into()))).await;
    assert_eq!((under.len(), total), (4, 4));
    let (none, _) = found(search(&|s| s.namespace = Some("ns2".into()))).await;
    assert!(none.is_empty(), "{none:?}");
    let (c, _) = found(search(&|s| s.namespace = Some("ns2_x".into()))).await;
    assert_eq!(c, [ids[4].clone()]);
    // With a flow id, the namespace alone.
    let (a, _) = found(search(&|s| {
        s.namespace = Some("ns1".into());
        s.flow_id = Some("a".into());
    }))
    .await;
    assert_eq!(a.len(), 3);
    // States, and labels: every label given must be there with its value.
    let (failed, _) = found(search(&|s| s.states = vec![StateType::Failed])).await;
    assert_eq!(failed, [ids[3].clone()]);
    let (both, _) = found(search(&|s| {
        s.states = vec![StateType::Failed, StateType::Success];
        s.flow_id = Some("c".into());
    }))
    .await;
    assert_eq!(both, [ids[4].clone()]);
    let (team_x, _) = found(search(&|s| {
        s.labels = vec![label("team", "x")];
        s.sort = vec![(SortField::StartDate, Direction::Asc)];
    }))
    .await;
    assert_eq!(team_x, [ids[0].clone(), ids[2].clone(), ids[3].clone()]);
    let (x_dev, _) = found(search(&|s| {
        s.labels = vec![label("team", "x"), label("env", "dev:1")]
    }))
    .await;
    assert_eq!(x_dev, [ids[2].clone()]);
    // Dates: started at or after the third's start, ended at or before the fourth's end.
    let third = o.execution(&ids[2]).await.unwrap();
    let fourth = o.execution(&ids[3]).await.unwrap();
    let (window, _) = found(search(&|s| {
        s.start_date = Some(third.state.start_date());
        s.end_date = fourth.state.end_date();
        s.sort = vec![(SortField::StartDate, Direction::Asc)];
    }))
    .await;
    assert_eq!(window, [ids[2].clone(), ids[3].clone()]);
    // Every sort field runs; flowId down puts c first, and the id breaks ties.
    for (field, _) in SortField::NAMES {
        let field = SortField::parse(field).unwrap();
        let (sorted, total) = found(search(&|s| s.sort = vec![(field, Direction::Desc)])).await;
        assert_eq!((sorted.len(), total), (5, 5), "{field:?}");
    }
    let (by_flow, _) = found(search(&|s| {
        s.sort = vec![(SortField::FlowId, Direction::Desc)]
    }))
    .await;
    assert_eq!(by_flow[0], ids[4]);
    let (up, _) = found(search(&|s| s.sort = vec![(SortField::Id, Direction::Asc)])).await;
    let (mut down, _) = found(search(&|s| s.sort = vec![(SortField::Id, Direction::Desc)])).await;
    down.reverse();
    assert_eq!(up, down);

    // Delete: the row, and its logs unless asked to keep them.
    assert!(!o.logs(&ids[0]).await.unwrap().is_empty());
    assert!(o.store().delete_execution(&ids[0], true).await.unwrap());
    assert!(o.store().execution(&ids[0]).await.unwrap().is_none());
    assert!(o.logs(&ids[0]).await.unwrap().is_empty());
    assert!(o.store().delete_execution(&ids[1], false).await.unwrap());
    assert!(!o.logs(&ids[1]).await.unwrap().is_empty());
    assert!(!o.store().delete_execution(&ids[1], true).await.unwrap());
    assert_eq!(found(search(&|_| {})).await.1, 3);
}
