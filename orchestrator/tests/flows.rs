//! Every core task type and flow property, run end to end on embedded SQLite.

mod common;

use common::{messages, start, states, task};
use orchestrator::model::{Level, StateType};
use serde_json::json;

fn read(path: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path),
    )
    .unwrap()
}

#[tokio::test]
async fn kestra_benchmark_flows_succeed_with_kestras_task_run_counts() {
    let h = start(&[]).await;
    for (path, runs) in [
        ("scenarios/e2e-webhook/benchmark01.yaml", 2),
        ("scenarios/e2e-webhook/benchmark02.yaml", 10),
        ("scenarios/foreach/benchmark03.yaml", 101),
    ] {
        let (exec, logs) = h.run(&read(path), json!({})).await;
        assert_eq!(
            exec.state.current,
            StateType::Success,
            "{path}: {:?}",
            states(&exec)
        );
        assert_eq!(exec.task_run_list.len(), runs, "{path}");
        if path.ends_with("01.yaml") {
            assert_eq!(messages(&logs), vec!["Hello World"]);
        }
        if path.ends_with("02.yaml") {
            assert_eq!(logs.len(), 5);
            assert!(messages(&logs).iter().all(|m| m.starts_with("Hello True")));
        }
        if path.ends_with("03.yaml") {
            let values: Vec<_> = exec
                .task_run_list
                .iter()
                .filter_map(|t| t.value.clone())
                .collect();
            assert_eq!(values.len(), 100);
            assert!(values.contains(&"1".to_string()) && values.contains(&"100".to_string()));
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn log_return_output_values_and_expressions() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            r#"
id: expressions
namespace: tests
labels:
  team: data
inputs:
  - id: who
    type: STRING
    defaults: World
  - id: n
    type: INT
    defaults: 3
variables:
  greeting: Hi
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ vars.greeting }} {{ inputs.who }} x{{ inputs.n }}"
  - id: values
    type: io.kestra.plugin.core.output.OutputValues
    values:
      items: "{{ range(1, inputs.n) | json }}"
      flow: "{{ flow.namespace }}.{{ flow.id }}"
  - id: log
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message:
      - "{{ outputs.ret.value }}"
      - "{{ outputs.values.values.flow }} {{ labels.team }} {{ task.id }} {{ execution.id | length > 0 }}"
      - "{{ outputs | jq('.ret.value') | first }}"
      - "{{ '{\"a\":1}' is json }} {{ 'nope' is json }}"
      - "{{ taskrun.id | length > 0 }} {{ taskrun.startDate | length > 0 }} {{ taskrun.value ?? 'none' }}"
"#,
            json!({"who": "Ada"}),
        )
        .await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    assert_eq!(
        task(&exec, "ret").outputs.as_ref().unwrap()["value"],
        "Hi Ada x3"
    );
    assert_eq!(
        task(&exec, "values").outputs.as_ref().unwrap()["values"]["items"],
        "[1,2,3]"
    );
    assert_eq!(
        messages(&logs),
        vec![
            "Hi Ada x3",
            "tests.expressions data log true",
            "Hi Ada x3",
            "true false",
            "true true none",
        ]
    );
    assert!(logs.iter().all(|l| l.level == Level::Warn));
    assert_eq!(exec.labels[0].key, "team");
    h.stop().await;
}

#[tokio::test]
async fn undefined_variable_fails_the_task_and_logs_why() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            "id: undefined\nnamespace: tests\ntasks:\n  - id: bad\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.missing }}\"\n  - id: never\n    type: io.kestra.plugin.core.log.Log\n    message: no\n",
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Failed);
    assert_eq!(exec.task_run_list.len(), 1, "the next task must not start");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].level, Level::Error);
    assert_eq!(logs[0].task_id.as_deref(), Some("bad"));
    assert!(
        logs[0].message.contains("inputs.missing"),
        "{}",
        logs[0].message
    );
    h.stop().await;
}

#[tokio::test]
async fn sleep_holds_the_task_for_its_duration() {
    let h = start(&[]).await;
    let (exec, _) = h
        .run(
            "id: sleepy\nnamespace: tests\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.2S\n",
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Success);
    let attempt = &task(&exec, "nap").attempts.as_ref().unwrap()[0];
    assert!(attempt.state.duration() >= jiff::SignedDuration::from_millis(200));
    h.stop().await;
}

#[tokio::test]
async fn fail_fails_the_execution_unless_its_condition_is_false_or_failure_is_allowed() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            "id: failing\nnamespace: tests\ntasks:\n  - id: skip\n    type: io.kestra.plugin.core.execution.Fail\n    condition: \"{{ 1 == 2 }}\"\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n    errorMessage: broken on purpose\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: unreachable\n",
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Failed);
    assert_eq!(task(&exec, "skip").state.current, StateType::Success);
    assert_eq!(task(&exec, "boom").state.current, StateType::Failed);
    assert!(exec.task_run_list.iter().all(|t| t.task_id != "after"));
    assert_eq!(messages(&logs), vec!["broken on purpose"]);

    let (exec, _) = h
        .run(
            "id: allowed\nnamespace: tests\ntasks:\n  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n    allowFailure: true\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: still runs\n",
            json!({}),
        )
        .await;
    assert_eq!(
        exec.state.current,
        StateType::Warning,
        "{:?}",
        states(&exec)
    );
    assert_eq!(task(&exec, "boom").state.current, StateType::Warning);
    assert_eq!(task(&exec, "after").state.current, StateType::Success);
    h.stop().await;
}

#[tokio::test]
async fn flowable_tasks_choose_and_order_their_children() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            r#"
id: flowables
namespace: tests
inputs:
  - id: pick
    type: STRING
    defaults: b
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: s1
        type: io.kestra.plugin.core.log.Log
        message: one
      - id: s2
        type: io.kestra.plugin.core.log.Log
        message: two
  - id: cond
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.pick == 'b' }}"
    then:
      - id: yes
        type: io.kestra.plugin.core.log.Log
        message: then-branch
    else:
      - id: no
        type: io.kestra.plugin.core.log.Log
        message: else-branch
  - id: sw
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.pick }}"
    cases:
      a:
        - id: case-a
          type: io.kestra.plugin.core.log.Log
          message: A
      b:
        - id: case-b
          type: io.kestra.plugin.core.log.Log
          message: B
    defaults:
      - id: case-default
        type: io.kestra.plugin.core.log.Log
        message: default
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: 2
    tasks:
      - id: p1
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.1S
      - id: p2
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.1S
      - id: p3
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT0.1S
  - id: off
    type: io.kestra.plugin.core.log.Log
    disabled: true
    message: disabled tasks never run
"#,
            json!({}),
        )
        .await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    // Each of the three Sleep tasks says how long it waits, as Kestra's does.
    assert_eq!(
        messages(&logs),
        vec![
            "one",
            "two",
            "then-branch",
            "B",
            "Waiting for PT0.1S",
            "Waiting for PT0.1S",
            "Waiting for PT0.1S"
        ]
    );
    assert!(
        exec.task_run_list
            .iter()
            .all(|t| !["no", "case-a", "case-default", "off"].contains(&t.task_id.as_str()))
    );
    assert_eq!(task(&exec, "sw").outputs.as_ref().unwrap()["value"], "b");
    // Sequential order: s2 starts after s1 ended.
    assert!(task(&exec, "s2").state.start_date() >= task(&exec, "s1").state.end_date().unwrap());
    // Parallel with concurrent: 2 never runs three children at once.
    let runs: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|id| {
            let a = &task(&exec, id).attempts.as_ref().unwrap()[0].state;
            (a.start_date(), a.end_date().unwrap())
        })
        .collect();
    assert!(max_overlap(&runs) <= 2, "{runs:?}");
    h.stop().await;
}

/// The largest number of intervals open at one instant.
fn max_overlap(runs: &[(jiff::Timestamp, jiff::Timestamp)]) -> usize {
    runs.iter()
        .map(|(s, _)| runs.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn for_each_respects_its_concurrency_limit_and_exposes_the_value() {
    let h = start(&["worker.threads=8"]).await;
    let (exec, logs) = h
        .run(
            r#"
id: loop
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c", "d", "e", "f", "a"]
    concurrencyLimit: 2
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: nap
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.05S
          - id: say
            type: io.kestra.plugin.core.log.Log
            # Only ForEach children carry a value, as in Kestra: the value is the parent's.
            message: "{{ taskrun.value ?? 'none' }} {{ parent.taskrun.value }} {{ parents | length }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.nap is defined }}"
"#,
            json!({}),
        )
        .await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    let mut said = messages(&logs);
    said.sort();
    let mut expected = vec!["Waiting for PT0.05S"; 6];
    expected.extend([
        "none a 2", "none b 2", "none c 2", "none d 2", "none e 2", "none f 2",
    ]);
    assert_eq!(said, expected);
    let iterations: Vec<_> = exec
        .task_run_list
        .iter()
        .filter(|t| t.task_id == "inner")
        .map(|t| (t.state.start_date(), t.state.end_date().unwrap()))
        .collect();
    assert_eq!(iterations.len(), 6);
    assert!(max_overlap(&iterations) <= 2, "{iterations:?}");
    h.stop().await;
}

/// A Dag starts a task once every task it `dependsOn` has ended, at most `concurrent` at
/// once, whatever the order they are listed in.
#[tokio::test]
async fn dag_starts_each_task_after_its_dependencies_and_within_concurrent() {
    let h = start(&["worker.threads=8"]).await;
    let (exec, logs) = h
        .run(
            r#"
id: dag
namespace: tests
tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    concurrent: 2
    tasks:
      - task:
          id: last
          type: io.kestra.plugin.core.log.Log
          message: "after {{ outputs.a.value }}"
        dependsOn: [a, b, c]
      - task:
          id: a
          type: io.kestra.plugin.core.debug.Return
          format: "{{ task.id }}"
      - task:
          id: b
          type: io.kestra.plugin.core.flow.Sleep
          duration: PT0.1S
      - task:
          id: c
          type: io.kestra.plugin.core.flow.Sleep
          duration: PT0.1S
        dependsOn: [a]
"#,
            json!({}),
        )
        .await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    assert_eq!(exec.task_run_list.len(), 5);
    let span = |id: &str| {
        let t = task(&exec, id);
        (t.state.start_date(), t.state.end_date().unwrap())
    };
    let (a, b, c, last) = (span("a"), span("b"), span("c"), span("last"));
    assert!(c.0 >= a.1, "c started before a ended: {a:?} {c:?}");
    for dep in [a, b, c] {
        assert!(
            last.0 >= dep.1,
            "last started before {dep:?} ended: {last:?}"
        );
    }
    assert!(max_overlap(&[a, b, c]) <= 2, "{a:?} {b:?} {c:?}");
    assert!(messages(&logs).contains(&"after a".to_string()));
    h.stop().await;
}

/// A Dag task that depends on a disabled task never starts, and the Dag still ends.
#[tokio::test]
async fn a_dag_task_waiting_for_a_disabled_one_never_starts() {
    let h = start(&[]).await;
    let (exec, _) = h
        .run(
            r#"
id: dag-disabled
namespace: tests
tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task:
          id: off
          type: io.kestra.plugin.core.log.Log
          message: never
          disabled: true
      - task:
          id: after-off
          type: io.kestra.plugin.core.log.Log
          message: never either
        dependsOn: [off]
      - task:
          id: free
          type: io.kestra.plugin.core.log.Log
          message: runs
"#,
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Success);
    let ran: Vec<&str> = exec
        .task_run_list
        .iter()
        .map(|t| t.task_id.as_str())
        .collect();
    assert_eq!(ran, ["dag", "free"]);
    h.stop().await;
}

/// A WaitFor runs its tasks again until its condition is true; each child knows its round
/// (`taskrun.iteration`), and the loop's `iterationCount` output counts them.
#[tokio::test]
async fn wait_for_repeats_its_tasks_until_the_condition_holds() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            r#"
id: waiting
namespace: tests
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ outputs.round.value == '3' }}"
    checkFrequency:
      interval: PT0.05S
    tasks:
      - id: round
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.iteration }}"
      - id: say
        type: io.kestra.plugin.core.log.Log
        message: "round {{ taskrun.iteration }} count {{ outputs.loop.iterationCount }}"
"#,
            json!({}),
        )
        .await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    // The children of earlier rounds are gone, as in Kestra.
    assert_eq!(exec.task_run_list.len(), 3, "{:?}", states(&exec));
    let looped = task(&exec, "loop");
    assert_eq!(looped.outputs.as_ref().unwrap()["iterationCount"], json!(4));
    assert_eq!(looped.iteration, Some(3));
    assert_eq!(task(&exec, "round").iteration, Some(3));
    assert_eq!(
        messages(&logs),
        vec!["round 1 count 1", "round 2 count 2", "round 3 count 3"]
    );
    h.stop().await;
}

/// Kestra's `TimeoutTest`: a 100-second Sleep with a 100 µs `timeout` fails at once, with
/// `TimeoutExceededException`'s message in its logs; a retry gives each attempt the whole
/// timeout again; an expression timeout is rendered when the attempt starts.
#[tokio::test]
async fn timeout_fails_an_attempt_that_runs_too_long() {
    let h = start(&[]).await;
    let started = std::time::Instant::now();
    let (exec, logs) = h
        .run(
            r#"
id: timeouts
namespace: tests
inputs:
  - id: limit
    type: STRING
    defaults: PT0.05S
tasks:
  - id: test
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT100S
    timeout: PT0.0001S
    allowFailure: true
  - id: retried
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT100S
    timeout: "{{ inputs.limit }}"
    allowFailure: true
    retry:
      type: constant
      interval: PT0.01S
      maxAttempt: 2
  - id: inTime
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.01S
    timeout: PT10S
"#,
            json!({}),
        )
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "the sleeps were not cut short"
    );
    assert_eq!(
        exec.state.current,
        StateType::Warning,
        "{:?}",
        states(&exec)
    );
    assert_eq!(task(&exec, "test").state.current, StateType::Warning);
    let timed_out = |id: &str| -> Vec<String> {
        logs.iter()
            .filter(|l| l.task_id.as_deref() == Some(id) && l.level == Level::Error)
            .map(|l| l.message.clone())
            .collect()
    };
    assert_eq!(timed_out("test"), vec!["Timeout after 00:00:00.000"]);
    let retried = task(&exec, "retried").attempts.as_ref().unwrap();
    assert_eq!(retried.len(), 2);
    assert!(retried.iter().all(|a| a.state.current == StateType::Failed));
    assert!(
        retried
            .iter()
            .all(|a| a.state.duration() >= jiff::SignedDuration::from_millis(50))
    );
    assert_eq!(timed_out("retried"), vec!["Timeout after 00:00:00.050"; 2]);
    assert_eq!(task(&exec, "inTime").state.current, StateType::Success);
    h.stop().await;
}

#[tokio::test]
async fn retry_makes_the_configured_number_of_attempts() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            r#"
id: retries
namespace: tests
tasks:
  - id: constant
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
    retry:
      type: constant
      interval: PT0.01S
      maxAttempt: 3
  - id: exponential
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: exponential
      interval: PT0.01S
      maxInterval: PT0.05S
      maxAttempt: 4
"#,
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Failed);
    let c = task(&exec, "constant").attempts.as_ref().unwrap();
    assert_eq!(c.len(), 3);
    assert!(c.iter().all(|a| a.state.current == StateType::Failed));
    assert_eq!(
        task(&exec, "exponential").attempts.as_ref().unwrap().len(),
        4
    );
    // Each attempt logs its own error line.
    assert_eq!(
        logs.iter()
            .filter(|l| l.task_id.as_deref() == Some("constant"))
            .count(),
        3
    );
    let attempt_numbers: Vec<_> = logs
        .iter()
        .filter(|l| l.task_id.as_deref() == Some("exponential"))
        .filter_map(|l| l.attempt_number)
        .collect();
    assert_eq!(attempt_numbers.len(), 4);
    h.stop().await;
}

#[tokio::test]
async fn log_level_filters_at_the_source_and_task_defaults_apply() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            r#"
id: levels
namespace: tests
taskDefaults:
  - type: io.kestra.plugin.core.log.Log
    values:
      logLevel: WARN
tasks:
  - id: info
    type: io.kestra.plugin.core.log.Log
    message: dropped
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: kept
  - id: error
    type: io.kestra.plugin.core.log.Log
    level: ERROR
    message: kept too
"#,
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Success);
    assert_eq!(messages(&logs), vec!["kept", "kept too"]);
    h.stop().await;
}

#[tokio::test]
async fn log_to_file_puts_lines_in_storage_not_the_logs_table() {
    let h = start(&[]).await;
    let (exec, logs) = h
        .run(
            "id: tofile\nnamespace: tests\ntasks:\n  - id: noisy\n    type: io.kestra.plugin.core.log.Log\n    logToFile: true\n    message: [\"line 1\", \"line 2\", \"line 3\"]\n  - id: quiet\n    type: io.kestra.plugin.core.log.Log\n    message: in the table\n",
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Success);
    assert_eq!(messages(&logs), vec!["in the table"]);
    let uri = task(&exec, "noisy").attempts.as_ref().unwrap()[0]
        .log_file
        .clone()
        .expect("logToFile records the file's URI on the attempt");
    let text = h.o.storage().read_to_string(&uri).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].ends_with("INFO line 1") && lines[2].ends_with("INFO line 3"),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test]
async fn sync_and_batched_log_indexing_store_the_same_rows() {
    let flow = "id: logs\nnamespace: tests\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: \"{{ range(1, 20) }}\"\n    tasks:\n      - id: say\n        type: io.kestra.plugin.core.log.Log\n        message: [\"a {{ taskrun.value }}\", \"b {{ taskrun.value }}\"]\n";
    let mut rows = Vec::new();
    for mode in ["logs.indexing=sync", "logs.indexing=batched"] {
        let h = start(&[mode]).await;
        let (exec, logs) = h.run(flow, json!({})).await;
        assert_eq!(exec.state.current, StateType::Success);
        let mut r: Vec<_> = logs
            .iter()
            .map(|l| {
                (
                    l.task_id.clone(),
                    l.level,
                    l.attempt_number,
                    l.message.clone(),
                )
            })
            .collect();
        r.sort_by(|a, b| a.3.cmp(&b.3));
        rows.push(r);
        h.stop().await;
    }
    assert_eq!(rows[0].len(), 40);
    assert_eq!(rows[0], rows[1]);
}

#[tokio::test]
async fn mutate_and_immutable_task_handling_produce_the_same_results() {
    let flow = read("scenarios/e2e-webhook/benchmark01.yaml");
    let mut results = Vec::new();
    for mode in [
        "worker.task-handling=mutate",
        "worker.task-handling=immutable",
    ] {
        let h = start(&[mode]).await;
        let (exec, logs) = h.run(&flow, json!({"name": "Grace"})).await;
        let summary: Vec<_> = exec
            .task_run_list
            .iter()
            .map(|t| {
                (
                    t.task_id.clone(),
                    t.value.clone(),
                    t.state.current,
                    t.state
                        .histories
                        .iter()
                        .map(|h| h.state)
                        .collect::<Vec<_>>(),
                    t.outputs.clone(),
                    t.attempts
                        .as_ref()
                        .map(|a| a.iter().map(|a| a.state.current).collect::<Vec<_>>()),
                )
            })
            .collect();
        results.push((exec.state.current, summary, messages(&logs)));
        h.stop().await;
    }
    assert_eq!(results[0].0, StateType::Success);
    assert_eq!(results[0], results[1]);
}

#[tokio::test]
async fn inputs_labels_and_disabled_flows() {
    let h = start(&[]).await;
    let flow = h
        .o
        .deploy(
            "id: typed\nnamespace: tests\nlabels:\n  - key: env\n    value: test\ninputs:\n  - id: count\n    type: INT\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ inputs.count + 1 }}\"\n",
            "typed.yaml",
        )
        .await
        .unwrap();
    let missing =
        h.o.create_execution(&flow.namespace, &flow.id, Default::default(), vec![], None)
            .await
            .unwrap_err();
    assert!(
        missing.to_string().contains("`count` is required"),
        "{missing}"
    );
    let bad =
        h.o.create_execution(
            &flow.namespace,
            &flow.id,
            json!({"count": "many"}).as_object().unwrap().clone(),
            vec![],
            None,
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("expects INT"), "{bad}");
    let exec =
        h.o.create_execution(
            &flow.namespace,
            &flow.id,
            json!({"count": "41"}).as_object().unwrap().clone(),
            vec![orchestrator::model::Label {
                key: "run".into(),
                value: "1".into(),
            }],
            None,
        )
        .await
        .unwrap();
    let (done, _) = h.finish(&exec.id).await;
    assert_eq!(task(&done, "r").outputs.as_ref().unwrap()["value"], "42");
    let keys: Vec<_> = done.labels.iter().map(|l| l.key.as_str()).collect();
    // The flow's labels, the given ones, and Kestra's correlation id: the execution's own.
    assert_eq!(keys, vec!["env", "run", "system.correlationId"]);
    assert_eq!(done.labels[2].value, done.id);

    let off = h
        .o
        .deploy(
            "id: off\nnamespace: tests\ndisabled: true\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n",
            "off.yaml",
        )
        .await
        .unwrap();
    let refused =
        h.o.create_execution(&off.namespace, &off.id, Default::default(), vec![], None)
            .await
            .unwrap_err();
    assert!(refused.to_string().contains("disabled"), "{refused}");
    assert_eq!(h.o.store().counts().await.unwrap().executions, 1);
    h.stop().await;
}

/// One execution stores keys; a second one, of another flow in a child namespace, reads them
/// with `kv()` and the KV tasks, then deletes one.
#[tokio::test]
async fn kv_set_by_one_execution_is_read_by_the_next_with_kv() {
    let h = start(&[]).await;
    let producer = r#"
id: producer
namespace: company.team
inputs:
  - id: n
    type: INT
tasks:
  - id: count
    type: io.kestra.plugin.core.kv.Set
    key: orders_count
    value: "{{ inputs.n }}"
    kvType: NUMBER
  - id: config
    type: io.kestra.plugin.core.kv.Set
    key: config
    value: "{{ {'region': 'eu', 'retries': 3} }}"
  - id: temporary
    type: io.kestra.plugin.core.kv.Set
    key: session
    value: abc
    ttl: PT1H
"#;
    let (exec, _) = h.run(producer, json!({"n": 41})).await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );

    let consumer = r#"
id: consumer
namespace: company.team.reports
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('orders_count', 'company.team') + 1 }} {{ kv('config', 'company.team').region }}"
  - id: own
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('orders_count') ?? 'not in company.team.reports' }}"
  - id: get
    type: io.kestra.plugin.core.kv.Get
    key: config
    namespace: company.team
  - id: keys
    type: io.kestra.plugin.core.kv.GetKeys
    namespace: company.team
    prefix: "{{ 'o' }}"
  - id: delete
    type: io.kestra.plugin.core.kv.Delete
    key: orders_count
    namespace: company.team
  - id: gone
    type: io.kestra.plugin.core.debug.Return
    format: "{{ kv('orders_count', 'company.team') ?? 'gone' }}"
"#;
    let (exec, _) = h.run(consumer, json!({})).await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    let output = |id: &str| task(&exec, id).outputs.clone().unwrap_or_default();
    assert_eq!(output("read")["value"], "42 eu");
    assert_eq!(output("own")["value"], "not in company.team.reports");
    assert_eq!(
        output("get")["value"],
        json!({"region": "eu", "retries": 3})
    );
    assert_eq!(output("keys")["keys"], json!(["orders_count"]));
    assert_eq!(output("delete")["deleted"], true);
    assert_eq!(output("gone")["value"], "gone");
    h.stop().await;
}

/// The KV tasks fail with Kestra's messages, in the task's logs.
#[tokio::test]
async fn kv_tasks_refuse_what_kestra_refuses() {
    let h = start(&[]).await;
    let flow = r#"
id: refusals
namespace: company.team
inputs:
  - id: case
    type: STRING
tasks:
  - id: seed
    type: io.kestra.plugin.core.kv.Set
    key: config
    value: first
  - id: switch
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.case }}"
    cases:
      overwrite:
        - id: overwrite
          type: io.kestra.plugin.core.kv.Set
          key: config
          value: second
          overwrite: false
      missing:
        - id: missing
          type: io.kestra.plugin.core.kv.Get
          key: nope
          errorOnMissing: true
      delete:
        - id: delete
          type: io.kestra.plugin.core.kv.Delete
          key: nope
          errorOnMissing: true
      namespace:
        - id: namespace
          type: io.kestra.plugin.core.kv.Get
          key: config
          namespace: nowhere.at.all
      key:
        - id: key
          type: io.kestra.plugin.core.kv.Set
          key: "a/b"
          value: x
"#;
    let cases = [
        (
            "overwrite",
            "Cannot set value for key 'config'. Key already exists and `overwrite` is set to `false`.",
        ),
        (
            "missing",
            "No value found for key 'nope' in namespace 'company.team' and `errorOnMissing` is set to true",
        ),
        (
            "delete",
            "No value found for key 'nope' in namespace 'company.team' and `errorOnMissing` is set to true",
        ),
        (
            "namespace",
            "Cannot access the KV store. The namespace 'nowhere.at.all' does not exist.",
        ),
        ("key", "Key must start with an alphanumeric character"),
    ];
    for (case, message) in cases {
        let (exec, logs) = h.run(flow, json!({ "case": case })).await;
        assert_eq!(
            exec.state.current,
            StateType::Failed,
            "{case}: {:?}",
            states(&exec)
        );
        assert_eq!(task(&exec, case).state.current, StateType::Failed, "{case}");
        assert!(
            logs.iter()
                .any(|l| l.task_id.as_deref() == Some(case) && l.message.contains(message)),
            "{case}: {:?}",
            messages(&logs)
        );
    }
    h.stop().await;
}

/// Kestra's StateNamespaceTest: a state set with `namespace: true` is seen by another flow
/// of the namespace; a flow's own state is not.
#[tokio::test]
async fn a_namespace_state_is_shared_and_a_flow_state_is_not() {
    let h = start(&[]).await;
    let flow1 = r#"
id: flow1
namespace: io.kestra.tests
tasks:
  - id: set
    type: io.kestra.plugin.core.state.Set
    namespace: true
    data:
      john: doe
  - id: own
    type: io.kestra.plugin.core.state.Set
    data:
      mine: "{{ flow.id }}"
"#;
    let flow2 = r#"
id: flow2
namespace: io.kestra.tests
tasks:
  - id: shared
    type: io.kestra.plugin.core.state.Get
    namespace: true
  - id: own
    type: io.kestra.plugin.core.state.Get
  - id: strict
    type: io.kestra.plugin.core.state.Get
    errorOnMissing: true
"#;
    let (exec, _) = h.run(flow1, json!({})).await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    let set = task(&exec, "set").outputs.clone().unwrap();
    assert_eq!(set["count"], 1);
    assert_eq!(set["key"], "states_tasks-states_default");
    assert_eq!(
        task(&exec, "own").outputs.as_ref().unwrap()["key"],
        "flow1_states_tasks-states_default"
    );

    let (exec, logs) = h.run(flow2, json!({})).await;
    let shared = task(&exec, "shared").outputs.clone().unwrap();
    assert_eq!(shared["count"], 1);
    assert_eq!(shared["data"]["john"], "doe");
    assert_eq!(task(&exec, "own").outputs.as_ref().unwrap()["count"], 0);
    assert_eq!(task(&exec, "strict").state.current, StateType::Failed);
    assert!(
        messages(&logs)
            .iter()
            .any(|m| m.contains("State flow2_states_tasks-states_default not found")),
        "{:?}",
        messages(&logs)
    );
    h.stop().await;
}

/// Kestra's `read()` and `fileSize()`: a file of the execution's own internal storage is read
/// and measured; one of another execution, or a namespace file path, fails the task with
/// Kestra's message.
#[tokio::test]
async fn read_and_file_size_open_the_executions_own_files_only() {
    let h = start(&[]).await;
    let id = h
        .start_labelled(
            r#"
id: files
namespace: tests
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: size
    type: io.kestra.plugin.core.debug.Return
    format: "{{ fileSize('kestra:///tests/files/executions/' ~ execution.id ~ '/tasks/t/r/data.txt') }}"
  - id: text
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(path='kestra:///tests/files/executions/' ~ execution.id ~ '/tasks/t/r/data.txt') }}"
  - id: foreign
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('kestra:///tests/files/executions/another/tasks/t/r/data.txt') }}"
    allowFailure: true
  - id: namespaceFile
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('scripts/x.py') }}"
    allowFailure: true
"#,
            json!({}),
            vec![],
        )
        .await;
    h.wait_state(&id, StateType::Paused).await;
    let uri = format!("kestra:///tests/files/executions/{id}/tasks/t/r/data.txt");
    h.o.storage().write(&uri, "héllo".as_bytes()).unwrap();
    h.o.resume(&id, serde_json::Map::new()).await.unwrap();
    let (exec, logs) = h.finish(&id).await;
    let outputs = orchestrator::run_context::outputs(&exec);
    assert_eq!(outputs["size"]["value"], "6", "{:?}", states(&exec));
    assert_eq!(outputs["text"]["value"], "héllo");
    let error = |id: &str| {
        logs.iter()
            .find(|l| l.task_id.as_deref() == Some(id) && l.level == Level::Error)
            .map(|l| l.message.clone())
            .unwrap_or_default()
    };
    assert!(
        error("foreign").contains("as it didn't belong to the current execution"),
        "{}",
        error("foreign")
    );
    assert!(
        error("namespaceFile").contains("no namespace files"),
        "{}",
        error("namespaceFile")
    );
    assert_eq!(task(&exec, "foreign").state.current, StateType::Warning);
    h.stop().await;
}

/// The child flow of the ForEachItem tests: it returns its batch's text and number.
const BATCH_FLOW: &str = r#"
id: batch
namespace: tests
inputs:
  - id: items
    type: STRING
  - id: n
    type: INT
tasks:
  - id: text
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.n }}:{{ read(inputs.items) }}"
outputs:
  - id: value
    type: STRING
    value: "{{ outputs.text.value }}"
"#;

/// A ForEachItem over `kestra:///tests/items/data.txt` with this `batch`, its batches
/// run by [`BATCH_FLOW`].
fn for_each_item_flow(batch: &str) -> String {
    format!(
        r#"
id: items
namespace: tests
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: kestra:///tests/items/data.txt
    batch: {batch}
    namespace: tests
    flowId: batch
    inputs:
      items: "{{{{ taskrun.items }}}}"
      n: "{{{{ taskrun.iteration }}}}"
"#
    )
}

/// The merged outputs of a ForEachItem's run: each batch's `value`, in batch order.
fn merged_values(h: &common::Harness, exec: &orchestrator::model::Execution) -> Vec<String> {
    let merge = task(exec, "each_merge");
    let uri = merge.outputs.as_ref().unwrap()["subflowOutputs"]
        .as_str()
        .unwrap()
        .to_string();
    let path = h.o.storage().path(&uri).unwrap();
    orchestrator::fileserde::read_all(
        &path,
        orchestrator::fileserde::Format::Ion,
        &Default::default(),
        Default::default(),
    )
    .unwrap()
    .into_iter()
    .map(|v| {
        let json = serde_json::to_value(&v).unwrap();
        json["value"].as_str().unwrap().to_string()
    })
    .collect()
}

#[tokio::test]
async fn for_each_item_splits_by_rows_partitions_and_bytes() {
    let h = start(&[]).await;
    h.o.deploy(BATCH_FLOW, "batch.yaml").await.unwrap();
    h.o.storage()
        .write(
            "kestra:///tests/items/data.txt",
            b"a\r\nbb\nccc\ndddd\neeeee",
        )
        .unwrap();
    for (batch, want) in [
        ("{rows: 2}", vec!["1:a\nbb\n", "2:ccc\ndddd\n", "3:eeeee\n"]),
        ("{partitions: 2}", vec!["1:a\nccc\neeeee\n", "2:bb\ndddd\n"]),
        // A batch ends once it holds 6 bytes or more.
        ("{bytes: \"6\"}", vec!["1:a\nbb\nccc\n", "2:dddd\neeeee\n"]),
        (
            "{rows: 10, separator: \";\"}",
            vec!["1:a;bb;ccc;dddd;eeeee;"],
        ),
    ] {
        let (exec, _) = h.run(&for_each_item_flow(batch), json!({})).await;
        let exec =
            h.o.wait_tree(&exec.id, std::time::Duration::from_secs(30))
                .await
                .unwrap();
        assert_eq!(
            exec.state.current,
            StateType::Success,
            "{batch}: {:?}",
            states(&exec)
        );
        let items = task(&exec, "each_items").outputs.clone().unwrap();
        assert_eq!(items["numberOfBatches"], json!(want.len()), "{batch}");
        assert_eq!(merged_values(&h, &exec), want, "{batch}");
    }
    h.stop().await;
}

#[tokio::test]
async fn for_each_item_refuses_items_outside_internal_storage_and_missing_subflows() {
    let h = start(&[]).await;
    h.o.deploy(BATCH_FLOW, "batch.yaml").await.unwrap();
    let (exec, logs) = h
        .run(
            &for_each_item_flow("{rows: 1}")
                .replace("kestra:///tests/items/data.txt", "/etc/hosts"),
            json!({}),
        )
        .await;
    assert_eq!(exec.state.current, StateType::Failed, "{:?}", states(&exec));
    assert!(
        messages(&logs).iter().any(|m| m.contains(
            "Unable to split the items from /etc/hosts, this is not an internal storage URI!"
        )),
        "{:?}",
        messages(&logs)
    );
    let e =
        h.o.deploy(
            &for_each_item_flow("{rows: 1}").replace("flowId: batch", "flowId: nosuchflow"),
            "items.yaml",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the subflow `tests.nosuchflow` does not exist"),
        "{e}"
    );
    h.stop().await;
}

/// Kestra's `killSubflowExecutions`: killing the execution kills the batches it started,
/// and the waiting task run ends KILLED.
#[tokio::test]
async fn killing_a_for_each_item_kills_its_batches() {
    let h = start(&[]).await;
    h.o.deploy(
        "id: slow\nnamespace: tests\ninputs:\n  - id: items\n    type: STRING\ntasks:\n  - id: sleep\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n",
        "slow.yaml",
    )
    .await
    .unwrap();
    h.o.storage()
        .write("kestra:///tests/items/data.txt", b"1\n2\n3\n")
        .unwrap();
    let flow = for_each_item_flow("{rows: 1}")
        .replace("flowId: batch", "flowId: slow")
        .replace("      n: \"{{ taskrun.iteration }}\"\n", "");
    let id = h.start_labelled(&flow, json!({}), vec![]).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let batches = loop {
        let batches: Vec<_> =
            h.o.store()
                .executions_of_flow("tests", "slow")
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.state.current == StateType::Running && !e.task_run_list.is_empty())
                .collect();
        if batches.len() == 3 {
            break batches;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "3 batches never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    h.o.kill(&id, true).await.unwrap();
    let killed =
        h.o.wait_terminal(&id, std::time::Duration::from_secs(30))
            .await
            .unwrap();
    assert_eq!(
        killed.state.current,
        StateType::Killed,
        "{:?}",
        states(&killed)
    );
    assert_eq!(task(&killed, "each_items").state.current, StateType::Killed);
    for b in batches {
        let b =
            h.o.wait_terminal(&b.id, std::time::Duration::from_secs(30))
                .await
                .unwrap();
        assert_eq!(b.state.current, StateType::Killed, "batch {}", b.id);
    }
    h.stop().await;
}

/// A restarted ForEachItem starts its batches again and counts only them: it ends again
/// once they have, not at once on the old counts.
#[tokio::test]
async fn a_restarted_for_each_item_counts_its_new_batches_only() {
    let h = start(&[]).await;
    h.o.deploy(
        "id: fails\nnamespace: tests\ninputs:\n  - id: items\n    type: STRING\ntasks:\n  - id: fail\n    type: io.kestra.plugin.core.execution.Fail\n",
        "fails.yaml",
    )
    .await
    .unwrap();
    h.o.storage()
        .write("kestra:///tests/items/data.txt", b"1\n2\n")
        .unwrap();
    let flow = for_each_item_flow("{rows: 1}")
        .replace("flowId: batch", "flowId: fails")
        .replace("      n: \"{{ taskrun.iteration }}\"\n", "");
    let (exec, _) = h.run(&flow, json!({})).await;
    assert_eq!(exec.state.current, StateType::Failed, "{:?}", states(&exec));
    h.o.restart(&exec.id).await.unwrap();
    let again =
        h.o.wait_terminal(&exec.id, std::time::Duration::from_secs(30))
            .await
            .unwrap();
    assert_eq!(
        again.state.current,
        StateType::Failed,
        "{:?}",
        states(&again)
    );
    let items = task(&again, "each_items").outputs.clone().unwrap();
    assert_eq!(
        items["iterations"],
        json!({"CREATED": 0, "RUNNING": 0, "FAILED": 2}),
        "the task run ended before its new batches did"
    );
    assert_eq!(items["numberOfBatches"], json!(2));
    let batches =
        h.o.store()
            .executions_of_flow("tests", "fails")
            .await
            .unwrap();
    assert_eq!(batches.len(), 4, "two batches, started twice");
    h.stop().await;
}
