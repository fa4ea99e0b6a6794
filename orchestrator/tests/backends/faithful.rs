//! The knobs' "before" paths give the same results as their "after" paths: the same task
//! runs for `worker.task-handling=mutate|immutable`, the same log rows for
//! `logs.indexing=sync|batched`. Only their cost may differ.

use std::collections::BTreeMap;

use orchestrator::model::{Execution, LogEntry, StateType};
use orchestrator::service::{Components, Orchestrator};
use serde_json::{Map, Value};

use super::{Backend, TestDb, WAIT, knobs, run, started};

/// Log, Return, OutputValues, ForEach, If and a retried failure the flow allows.
const SEVERAL_TASK_TYPES: &str = r#"
id: handling
namespace: tests
inputs:
  - id: name
    type: STRING
    defaults: Ada
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name }}"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.name }}!"
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c"]
    tasks:
      - id: out
        type: io.kestra.plugin.core.output.OutputValues
        values:
          item: "{{ taskrun.value }}"
          previous: "{{ outputs.ret.value }}"
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.name == 'Ada' }}"
    then:
      - id: yes
        type: io.kestra.plugin.core.debug.Return
        format: "yes"
  - id: flaky
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    retry:
      type: constant
      interval: PT0.01S
      maxAttempt: 2
"#;

/// A task run, with its id replaced by its place in the flow (ids are new per execution).
type TaskRunSummary = (
    String,
    Option<String>,
    Option<String>,
    StateType,
    Vec<StateType>,
    Option<Map<String, Value>>,
    Vec<StateType>,
);

fn task_runs(exec: &Execution) -> Vec<TaskRunSummary> {
    let place: BTreeMap<&str, String> = exec
        .task_run_list
        .iter()
        .map(|t| (t.id.as_str(), format!("{}[{:?}]", t.task_id, t.value)))
        .collect();
    exec.task_run_list
        .iter()
        .map(|t| {
            (
                place[t.id.as_str()].clone(),
                t.value.clone(),
                t.parent_task_run_id
                    .as_deref()
                    .map(|p| place.get(p).cloned().unwrap_or_else(|| p.to_string())),
                t.state.current,
                t.state.histories.iter().map(|h| h.state).collect(),
                t.outputs.clone(),
                t.attempts
                    .iter()
                    .flatten()
                    .map(|a| a.state.current)
                    .collect(),
            )
        })
        .collect()
}

pub(crate) async fn mutate_and_immutable_give_the_same_task_runs(backend: Backend) {
    let mut seen = Vec::new();
    for mode in ["mutate", "immutable"] {
        let Some((_db, o)) = started(backend, &[&format!("worker.task-handling={mode}")]).await
        else {
            return;
        };
        let exec = run(&o, SEVERAL_TASK_TYPES, Map::new(), vec![]).await;
        assert_eq!(
            exec.state.current,
            StateType::Warning,
            "{mode}: flaky fails"
        );
        let runs = task_runs(&exec);
        assert_eq!(runs.len(), 9, "{mode}: {runs:#?}");
        let flaky = runs.iter().find(|r| r.0.starts_with("flaky")).unwrap();
        assert_eq!(flaky.6.len(), 2, "{mode}: two attempts");
        let logs: Vec<String> = o
            .logs(&exec.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.message)
            .collect();
        seen.push((runs, logs));
        o.shutdown().await;
    }
    assert_eq!(
        seen[0], seen[1],
        "mutate and immutable give the same task runs"
    );
}

/// The same `WorkerTask`, handled once by each path: the results are equal, ids included,
/// but for the times in their state histories.
pub(crate) async fn mutate_and_immutable_give_the_same_result_for_one_worker_task(
    backend: Backend,
) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let o = db.orchestrator(knobs(&[])).await;
    // An executor and no worker: the worker tasks stay in the queue.
    o.start(Components {
        executor: true,
        worker: false,
        indexer: false,
        scheduler: false,
    });
    let flow = o.deploy(SEVERAL_TASK_TYPES, "test.yaml").await.unwrap();
    o.create_execution(&flow.namespace, &flow.id, Map::new(), vec![], None)
        .await
        .unwrap();
    let job = first_worker_task(&o).await;
    let mut results = Vec::new();
    for mode in ["mutate", "immutable"] {
        let knobs = knobs(&[&format!("worker.task-handling={mode}")]);
        let handler_o = db.orchestrator(knobs).await;
        let handler = orchestrator::worker::bench::TaskHandler::new(&handler_o);
        let mut r = handler.handle(job.clone()).task_run;
        for h in r.state.histories.iter_mut().chain(
            r.attempts
                .iter_mut()
                .flatten()
                .flat_map(|a| a.state.histories.iter_mut()),
        ) {
            h.date = Default::default();
        }
        results.push(r);
    }
    o.shutdown().await;
    assert_eq!(results[0].id, job.task_run.id);
    assert_eq!(results[0].state.current, StateType::Success);
    assert_eq!(results[0].attempt_count(), 1);
    assert!(results[0].outputs.is_none(), "a Log task has no outputs");
    assert_eq!(results[0], results[1]);
}

async fn first_worker_task(o: &Orchestrator) -> orchestrator::queue::WorkerTask {
    use orchestrator::repository::QueueType;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut tx = o.store().begin().await.unwrap();
        let polled = tx.poll(&[QueueType::WorkerTask], 1).await.unwrap();
        if let Some(p) = polled.into_iter().next() {
            return serde_json::from_str(&p.value).unwrap();
        }
        drop(tx);
        assert!(tokio::time::Instant::now() < deadline, "no worker task");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A log row, its id relative to its task run (ids are new per execution).
fn log_rows(exec: &Execution, logs: Vec<LogEntry>) -> Vec<(String, String, String, String)> {
    let place: BTreeMap<&str, String> = exec
        .task_run_list
        .iter()
        .map(|t| (t.id.as_str(), format!("{}[{:?}]", t.task_id, t.value)))
        .collect();
    let mut rows: Vec<_> = logs
        .into_iter()
        .map(|l| {
            let tr = l.task_run_id.clone().unwrap_or_default();
            let id =
                l.id.strip_prefix(&tr)
                    .map(|rest| format!("{}{rest}", place[tr.as_str()]))
                    .unwrap_or_else(|| panic!("log id {} outside its task run {tr}", l.id));
            (
                id,
                l.level.as_str().to_string(),
                l.message,
                l.thread.is_some().to_string(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// 3 × 300 numbered lines, as the log-heavy scenario's task logs.
fn log_heavy_flow() -> String {
    let lines: String = (1..=300)
        .map(|n| format!("          - \"{{{{ taskrun.value }}}} line {n}\"\n"))
        .collect();
    format!(
        "id: noisy\nnamespace: tests\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [\"a\", \"b\", \"c\"]\n    tasks:\n      - id: say\n        type: io.kestra.plugin.core.log.Log\n        message:\n{lines}"
    )
}

pub(crate) async fn sync_and_batched_give_the_same_log_rows(backend: Backend) {
    let flow = log_heavy_flow();
    let mut seen = Vec::new();
    for mode in ["sync", "batched"] {
        let Some((_db, o)) = started(backend, &[&format!("logs.indexing={mode}")]).await else {
            return;
        };
        let commits = orchestrator::repository::commits();
        let exec = run(&o, &flow, Map::new(), vec![]).await;
        assert_eq!(exec.state.current, StateType::Success, "{mode}");
        let rows = log_rows(&exec, o.logs(&exec.id).await.unwrap());
        assert_eq!(rows.len(), 900, "{mode}: every line, once");
        if mode == "sync" {
            // One transaction per line (other tests add theirs: at least, not exactly).
            assert!(orchestrator::repository::commits() - commits >= 900);
        }
        let counts = o.store().counts().await.unwrap();
        assert_eq!(
            counts.pending_messages, 0,
            "{mode}: nothing left to consume"
        );
        assert_eq!(counts.logs, 900, "{mode}");
        seen.push(rows);
        o.shutdown().await;
    }
    assert_eq!(seen[0], seen[1], "sync and batched store the same rows");
}
