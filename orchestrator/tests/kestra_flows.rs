//! Kestra's own test flows, run unchanged, with what Kestra's own Java tests assert.
//!
//! The flows in `tests/kestra/valids/` are copied byte for byte from Kestra's repository,
//! `core/src/test/resources/flows/valids/`, at commit
//! 58c1ca2d0589c888328bacc3ee65e65dc4ba0a6a (December 2024, the 0.21 development line,
//! which has every 0.20 property these flows use). Each case names the Java test whose
//! assertions it repeats: the inputs that test passes, the final state and the number of
//! task runs it asserts, and the task-run states and attempt counts it checks. Only the
//! assertions are taken; none of Kestra's Java code is.
//!
//! Everything runs on embedded SQLite, one orchestrator for all cases; every mismatch is
//! collected and reported at once.

mod common;

use common::{start, states};
use orchestrator::model::StateType;
use serde_json::{Value, json};

/// One Kestra test: a flow and what its Java test asserts.
struct Case {
    flow: &'static str,
    /// The Java test (class and method) the assertions come from.
    java: &'static str,
    inputs: fn() -> Value,
    state: StateType,
    task_runs: usize,
    /// Task id and the state its (first) task run must end in.
    task_states: &'static [(&'static str, StateType)],
    /// Task id and the number of attempts its (first) task run must have made.
    attempts: &'static [(&'static str, usize)],
    /// The execution's `outputs`, as JSON (`null`: none), when the test asserts them.
    outputs: Option<&'static str>,
}

/// What a case asserts nothing about.
const ANY: Case = Case {
    flow: "",
    java: "",
    inputs: no_inputs,
    state: StateType::Success,
    task_runs: 0,
    task_states: &[],
    attempts: &[],
    outputs: None,
};

fn no_inputs() -> Value {
    json!({})
}

const CASES: &[Case] = &[
    Case {
        flow: "task-runif.yml",
        java: "TaskWithRunIfTest.runnableTask",
        state: StateType::Failed,
        task_runs: 4,
        task_states: &[
            ("executed", StateType::Success),
            ("notexecuted", StateType::Skipped),
            ("willfailedtheflow", StateType::Failed),
        ],
        ..ANY
    },
    Case {
        flow: "task-allow-warning-runnable.yml",
        java: "TaskWithAllowWarningTest.runnableTask",
        task_runs: 2,
        attempts: &[("fail", 3)],
        ..ANY
    },
    Case {
        flow: "task-allow-warning-flowable.yml",
        java: "TaskWithAllowWarningTest.flowableTask",
        task_runs: 3,
        ..ANY
    },
    Case {
        flow: "flow-with-outputs.yml",
        java: "FlowOutputTest.shouldGetSuccessExecutionForFlowWithOutputs",
        task_runs: 1,
        outputs: Some(r#"{"key": "{\"value\":\"flow-with-outputs\"}"}"#),
        ..ANY
    },
    Case {
        flow: "flow-with-array-outputs.yml",
        java: "FlowOutputTest.shouldGetSuccessExecutionForFlowWithArrayOutputs",
        task_runs: 1,
        outputs: Some(r#"{"myout": ["1rstValue", "2ndValue"]}"#),
        ..ANY
    },
    Case {
        flow: "flow-with-outputs-failed.yml",
        java: "FlowOutputTest.shouldGetFailExecutionForFlowWithInvalidOutputs",
        state: StateType::Failed,
        task_runs: 1,
        outputs: Some("null"),
        ..ANY
    },
];

fn flow_text(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kestra/valids")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn kestras_test_flows_end_as_kestras_tests_assert() {
    let h = start(&[]).await;
    let mut failures = Vec::new();
    for case in CASES {
        let (exec, _) = h.run(&flow_text(case.flow), (case.inputs)()).await;
        let mut wrong = Vec::new();
        if exec.state.current != case.state {
            wrong.push(format!(
                "state {} (expected {})",
                exec.state.current, case.state
            ));
        }
        if exec.task_run_list.len() != case.task_runs {
            wrong.push(format!(
                "{} task runs (expected {})",
                exec.task_run_list.len(),
                case.task_runs
            ));
        }
        for (task, expected) in case.task_states {
            let got = exec.task_run_list.iter().find(|t| t.task_id == *task);
            match got.map(|t| t.state.current) {
                Some(s) if s == *expected => {}
                other => wrong.push(format!("task `{task}`: {other:?} (expected {expected})")),
            }
        }
        for (task, expected) in case.attempts {
            let got = exec.task_run_list.iter().find(|t| t.task_id == *task);
            let n = got.map(|t| t.attempts.as_ref().map_or(0, Vec::len));
            if n != Some(*expected) {
                wrong.push(format!(
                    "task `{task}`: {n:?} attempts (expected {expected})"
                ));
            }
        }
        if let Some(expected) = case.outputs {
            let expected: Value = serde_json::from_str(expected).unwrap();
            let got = exec.outputs.clone().map_or(Value::Null, Value::Object);
            if got != expected {
                wrong.push(format!("outputs {got} (expected {expected})"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}): {}; task runs {:?}",
                case.flow,
                case.java,
                wrong.join(", "),
                states(&exec)
            ));
        }
    }
    h.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} Kestra cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
