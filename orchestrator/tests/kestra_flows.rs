//! Kestra's own test flows, run unchanged, with what Kestra's own Java tests assert.
//!
//! The flows in `tests/kestra/valids/` are copied byte for byte from Kestra's repository,
//! `core/src/test/resources/flows/valids/`, at commit
//! 58c1ca2d0589c888328bacc3ee65e65dc4ba0a6a (December 2024, the 0.21 development line,
//! which has every 0.20 property these flows use). Each case names the Java test whose
//! assertions it repeats: the inputs that test passes, the KV entries it prepares, the final
//! state and the number of task runs it asserts, and the task-run states, attempt counts,
//! outputs and log lines it checks. Only the assertions are taken; none of Kestra's Java
//! code is.
//!
//! Everything runs on embedded SQLite, one orchestrator for all cases; every mismatch is
//! collected and reported at once.
//!
//! Kestra's tests that run one flow of these task types and assert its end, but do not
//! conform yet, and why:
//!
//! * `trigger-toggle.yaml` (ToggleTest.toggle): the `Toggle` task;
//! * `restart-each.yaml` (RestartCaseTest.replay): replaying an execution;
//! * `flow-concurrency-cancel.yml`, `flow-concurrency-fail.yml` (FlowConcurrencyCaseTest):
//!   they start a second execution while the first runs, which this suite's one-execution
//!   cases do not do (the behaviours are tested in `concurrency.rs`);
//! * `alias-trigger.yaml` (AliasTest.triggerAlias): its trigger type exists only on Kestra's
//!   test classpath;
//! * `allow-failure.yaml` (AllowFailureTest.success): the test runs the flow without its
//!   required input `crash`, which Kestra's test runner does not check and flowbench's
//!   API refuses (`AllowFailureTest.failed`, which gives it, conforms);
//! * `flowable-with-parent-fail.yaml` (BadFlowableTest.flowableWithParentFail): its `If`
//!   condition is not a readable expression; Kestra loads the flow and fails the task run,
//!   flowbench refuses the flow at load, naming the task and the property.

mod common;

use common::{start, states};
use orchestrator::kv::KvStore;
use orchestrator::model::{Execution, Label, StateType};
use serde_json::Value;

/// One Kestra test: a flow and what its Java test asserts.
struct Case {
    flow: &'static str,
    /// The Java test (class and method) the assertions come from.
    java: &'static str,
    /// The inputs the Java test passes, as JSON.
    inputs: &'static str,
    /// The final state the test asserts, if it does.
    state: Option<StateType>,
    /// The number of task runs the test asserts, if it does.
    task_runs: Option<usize>,
    /// Task id and the state its (first) task run must end in.
    task_states: &'static [(&'static str, StateType)],
    /// Task id and the number of attempts its (first) task run must have made.
    attempts: &'static [(&'static str, usize)],
    /// The execution's `outputs`, as JSON (`null`: none), when the test asserts them.
    outputs: Option<&'static str>,
    /// Task outputs the test reads from `execution.outputs()`: a JSON pointer into them
    /// (`/task/value…/key`) and the string it must hold.
    task_outputs: &'static [(&'static str, &'static str)],
    /// Task id, a state, and how many times its (first) task run's history holds it.
    histories: &'static [(&'static str, StateType, usize)],
    /// Tests that run the flow until it pauses (`runOneUntilPaused`), then act.
    paused: Option<Paused>,
    /// The labels the test gives the execution, `key:value` each.
    labels: &'static [&'static str],
    /// The labels the execution must end with, in any order, `key:value` each. In a value,
    /// `{execution}` is the execution's id and `{taskrun:ID}` the id of task `ID`'s run.
    end_labels: Option<&'static [&'static str]>,
    /// Other flows the test loads, deployed first, in this order.
    with: &'static [&'static str],
    /// Task outputs (a JSON pointer, as in `task_outputs`) and a text they must contain.
    task_outputs_contain: &'static [(&'static str, &'static str)],
    /// What the test asserts of the execution the first task run started (a Subflow).
    started: Option<Started>,
    /// Task outputs the test asserts as other JSON values (a number, a count): a JSON
    /// pointer as in `task_outputs`, and the value as JSON.
    task_output_values: &'static [(&'static str, &'static str)],
    /// Task id and a text its (first) task run's log lines must contain.
    task_logs: &'static [(&'static str, &'static str)],
    /// The KV store the test prepares before it runs the flow.
    kv: Option<KvSetup>,
    /// The states every execution of the run ends in, in any order: the first and those
    /// its `CREATE_NEW_EXECUTION` retries started (the test counts the terminated
    /// executions of the flow).
    attempts_end: Option<&'static [StateType]>,
    /// Task ids whose (first) task run must have outputs.
    has_outputs: &'static [&'static str],
    /// What the test asserts of the last task run of the list.
    last: Option<Last>,
    /// Flows the test runs first, each to its end, after deploying `with`: the file and
    /// the state and task-run count it asserts.
    before: &'static [(&'static str, StateType, usize)],
    /// What the test asserts of the executions Flow triggers started.
    triggered: &'static [Triggered],
}

/// The last task run of an execution's list, as a test reads it (`getTaskRunList().getLast()`).
struct Last {
    /// A JSON pointer into its outputs and the string it must hold.
    outputs: &'static [(&'static str, &'static str)],
    /// The attempts it must have made.
    attempts: Option<usize>,
}

/// Executions a Flow trigger started, as the test sees them. They are the executions of
/// `flow` whose trigger is a Flow trigger naming the triggering execution (its
/// `executionId`, `namespace` and `flowId`).
struct Triggered {
    /// The started flow's id (in the triggering execution's namespace).
    flow: &'static str,
    /// The triggering execution: `None` the case's, `Some(i)` the `i`-th of `before`.
    by: Option<usize>,
    /// How many it started (0: the test asserts it starts none).
    count: usize,
    /// The state each ends in.
    state: Option<StateType>,
    /// The task runs each has.
    task_runs: Option<usize>,
    /// Task outputs of each, as in `Case::task_outputs`; `{by}` in the text is the
    /// triggering execution's id.
    task_outputs: &'static [(&'static str, &'static str)],
    /// Each one's `outputs` as JSON, in the order they were created.
    outputs: &'static [&'static str],
}

/// What a `Triggered` asserts nothing about.
const STARTED: Triggered = Triggered {
    flow: "",
    by: None,
    count: 1,
    state: None,
    task_runs: None,
    task_outputs: &[],
    outputs: &[],
};

/// An execution a Subflow task run started, as the test sees it end.
struct Started {
    state: StateType,
    task_runs: usize,
    /// Its labels, in any order; `{parent}` is the starting execution's id.
    labels: Option<&'static [&'static str]>,
}

/// What a test asserts of an execution at its pause, and what it does then.
struct Paused {
    /// The task runs it has at the pause; the first one is PAUSED.
    task_runs: usize,
    /// The `onResume` inputs it resumes with, as JSON; `None`: it waits for the Pause's
    /// `delay` or `timeout` instead.
    resume: Option<&'static str>,
}

/// A namespace KV store as a Java test prepares it: emptied (KvFunctionTest's `@BeforeEach`
/// deletes the namespace's `_kv` folder), then given these entries.
struct KvSetup {
    namespace: &'static str,
    /// Key and value, as JSON.
    entries: &'static [(&'static str, &'static str)],
}

/// What a case asserts nothing about.
const ANY: Case = Case {
    flow: "",
    java: "",
    inputs: "{}",
    state: None,
    task_runs: None,
    task_states: &[],
    attempts: &[],
    outputs: None,
    task_outputs: &[],
    histories: &[],
    paused: None,
    labels: &[],
    end_labels: None,
    with: &[],
    task_outputs_contain: &[],
    started: None,
    task_output_values: &[],
    task_logs: &[],
    kv: None,
    attempts_end: None,
    has_outputs: &[],
    last: None,
    before: &[],
    triggered: &[],
};

const CASES: &[Case] = &[
    Case {
        flow: "allow-failure.yaml",
        java: "AllowFailureTest.failed",
        inputs: r#"{"crash": "1"}"#,
        state: Some(StateType::Failed),
        task_runs: Some(10),
        ..ANY
    },
    Case {
        flow: "allow-failure.yaml",
        java: "AllowFailureTest.failed",
        inputs: r#"{"crash": "1"}"#,
        state: Some(StateType::Failed),
        task_runs: Some(10),
        task_states: &[
            ("first", StateType::Warning),
            ("1-1-allow-failure", StateType::Warning),
            ("1-1-1_seq", StateType::Failed),
            ("1-1-1-1", StateType::Success),
            ("ko", StateType::Failed),
            ("local-error", StateType::Success),
            ("1-2-todo", StateType::Success),
            ("global-error", StateType::Success),
            ("switch", StateType::Failed),
            ("crash", StateType::Failed),
        ],
        ..ANY
    },
    Case {
        flow: "current-output.yaml",
        java: "CurrentEachOutputFunctionTest.parallel",
        task_outputs: &[
            ("/1-1-1_return/v11/v21/v31/value", "return-v11-v21-v31"),
            ("/1-1-1_return/v11/v21/v32/value", "return-v11-v21-v32"),
            ("/1-1-1_return/v11/v22/v31/value", "return-v11-v22-v31"),
            ("/1-1-1_return/v11/v22/v32/value", "return-v11-v22-v32"),
            ("/1-1-1_return/v12/v21/v31/value", "return-v12-v21-v31"),
            ("/1-1-1_return/v12/v21/v32/value", "return-v12-v21-v32"),
            ("/1-1-1_return/v12/v22/v31/value", "return-v12-v22-v31"),
            ("/1-1-1_return/v12/v22/v32/value", "return-v12-v22-v32"),
            ("/2-1_return/v41/value", "return-v41"),
            ("/2-1_return/v42/value", "return-v42"),
        ],
        ..ANY
    },
    Case {
        flow: "dag.yaml",
        java: "DagTest.dag",
        state: Some(StateType::Success),
        task_runs: Some(7),
        ..ANY
    },
    Case {
        flow: "disable-error.yaml",
        java: "DisabledTest.error",
        state: None,
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "disable-flowable.yaml",
        java: "DisabledTest.flowable",
        state: None,
        task_runs: Some(10),
        ..ANY
    },
    Case {
        flow: "disable-simple.yaml",
        java: "DisabledTest.simple",
        state: None,
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "each-empty.yaml",
        java: "EachSequentialTest.eachEmpty",
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "each-null.yaml",
        java: "EachSequentialTest.eachNull",
        state: Some(StateType::Failed),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "each-object-in-list.yaml",
        java: "EachSequentialTest.objectInList",
        state: Some(StateType::Success),
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "each-object.yaml",
        java: "EachSequentialTest.object",
        state: Some(StateType::Success),
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "each-parallel-Integer.yml",
        java: "EachParallelTest.parallelInteger",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "each-parallel-nested.yaml",
        java: "JdbcRunnerTest.eachParallelNested",
        state: None,
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "each-parallel-nested.yaml",
        java: "ExecutionServiceTest.replayEachPara",
        state: Some(StateType::Success),
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "each-parallel-nested.yaml",
        java: "ExecutionServiceTest.markAsEachPara",
        state: Some(StateType::Success),
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "each-parallel-nested.yaml",
        java: "EachParallelTest.parallelNested",
        state: Some(StateType::Success),
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "each-parallel.yaml",
        java: "JdbcRunnerTest.eachParallel",
        state: None,
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "each-parallel.yaml",
        java: "EachParallelTest.parallel",
        state: Some(StateType::Success),
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "each-sequential-nested.yaml",
        java: "JdbcRunnerTest.eachSequentialNested",
        state: None,
        task_runs: Some(23),
        ..ANY
    },
    Case {
        flow: "each-sequential-nested.yaml",
        java: "ExecutionServiceTest.replayEachSeq",
        state: Some(StateType::Success),
        task_runs: Some(23),
        ..ANY
    },
    Case {
        flow: "each-sequential-nested.yaml",
        java: "ExecutionServiceTest.replayEachSeq2",
        state: Some(StateType::Success),
        task_runs: Some(23),
        ..ANY
    },
    Case {
        flow: "each-sequential-nested.yaml",
        java: "EachSequentialTest.sequentialNested",
        state: Some(StateType::Success),
        task_runs: Some(23),
        ..ANY
    },
    Case {
        flow: "each-sequential.yaml",
        java: "EachSequentialTest.sequential",
        state: Some(StateType::Warning),
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "each-switch.yaml",
        java: "EachSequentialTest.eachSwitch",
        state: Some(StateType::Success),
        task_runs: Some(12),
        ..ANY
    },
    Case {
        flow: "empty-variables.yml",
        java: "EmptyVariablesTest.emptyVariables",
        inputs: r#"{"emptyKey": "{ \"foo\": \"\" }", "emptySubObject": "{\"json\":{\"someEmptyObject\":{}}}"}"#,
        state: Some(StateType::Success),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "fail-on-condition.yaml",
        java: "FailTest.failOnCondition",
        inputs: r#"{"param": "fail"}"#,
        state: Some(StateType::Failed),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "fail-on-condition.yaml",
        java: "FailTest.dontFailOnCondition",
        inputs: r#"{"param": "success"}"#,
        state: Some(StateType::Success),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "fail-on-switch.yaml",
        java: "FailTest.failOnSwitch",
        inputs: r#"{"param": "fail"}"#,
        state: Some(StateType::Failed),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "retry-subflow.yaml",
        java: "RetryCaseTest.retrySubflow",
        with: &["failed-first.yaml"],
        state: Some(StateType::Failed),
        attempts: &[("subflow", 3)],
        ..ANY
    },
    Case {
        flow: "failed-first.yaml",
        java: "JdbcRunnerTest.restartMultiple",
        state: Some(StateType::Failed),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "failed-first.yaml",
        java: "VariablesTest.failedFirst",
        state: None,
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "flow-concurrency-queue.yml",
        java: "JdbcRunnerTest.concurrencyQueue",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "flow-with-array-outputs.yml",
        java: "FlowOutputTest.shouldGetSuccessExecutionForFlowWithArrayOutputs",
        state: Some(StateType::Success),
        task_runs: None,
        outputs: Some(r#"{"myout": ["1rstValue", "2ndValue"]}"#),
        ..ANY
    },
    Case {
        flow: "flow-with-outputs-failed.yml",
        java: "FlowOutputTest.shouldGetFailExecutionForFlowWithInvalidOutputs",
        state: Some(StateType::Failed),
        task_runs: None,
        outputs: Some("null"),
        ..ANY
    },
    Case {
        flow: "flow-with-outputs.yml",
        java: "FlowOutputTest.shouldGetSuccessExecutionForFlowWithOutputs",
        state: Some(StateType::Success),
        task_runs: None,
        outputs: Some(r#"{"key": "{\"value\":\"flow-with-outputs\"}"}"#),
        ..ANY
    },
    Case {
        flow: "foreach-concurrent-no-limit.yaml",
        java: "ForEachTest.concurrentNoLimit",
        state: Some(StateType::Success),
        task_runs: Some(7),
        ..ANY
    },
    Case {
        flow: "foreach-concurrent-parallel.yaml",
        java: "ForEachTest.concurrentWithParallel",
        state: Some(StateType::Success),
        task_runs: Some(10),
        ..ANY
    },
    Case {
        flow: "foreach-concurrent.yaml",
        java: "ForEachTest.concurrent",
        state: Some(StateType::Success),
        task_runs: Some(7),
        ..ANY
    },
    Case {
        flow: "foreach-non-concurrent.yaml",
        java: "ForEachTest.nonConcurrent",
        state: Some(StateType::Success),
        task_runs: Some(7),
        ..ANY
    },
    Case {
        flow: "full.yaml",
        java: "JdbcRunnerTest.full",
        state: Some(StateType::Success),
        task_runs: Some(13),
        ..ANY
    },
    Case {
        flow: "if-condition.yaml",
        java: "IfTest.ifFalsy",
        inputs: r#"{"param": "false"}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if-condition.yaml",
        java: "IfTest.ifFalsy",
        inputs: r#"{"param": 0}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if-condition.yaml",
        java: "IfTest.ifFalsy",
        inputs: r#"{"param": false}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if-condition.yaml",
        java: "IfTest.ifTruthy",
        inputs: r#"{"param": "true"}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if-condition.yaml",
        java: "IfTest.ifTruthy",
        inputs: r#"{"param": 1}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if-condition.yaml",
        java: "IfTest.ifTruthy",
        inputs: r#"{"param": true}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if-in-flowable.yaml",
        java: "IfTest.ifInFlowable",
        inputs: r#"{"param": true}"#,
        state: Some(StateType::Success),
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "if-without-else.yaml",
        java: "IfTest.ifWithoutElse",
        inputs: r#"{"param": false}"#,
        state: Some(StateType::Success),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "if-without-else.yaml",
        java: "IfTest.ifWithoutElse",
        inputs: r#"{"param": true}"#,
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "if.yaml",
        java: "IfTest.multipleIf",
        inputs: r#"{"if1": true, "if2": false, "if3": true}"#,
        state: Some(StateType::Success),
        task_runs: Some(12),
        ..ANY
    },
    Case {
        flow: "input-log-secret.yaml",
        java: "InputsTest.shouldNotLogSecretInput",
        state: Some(StateType::Success),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "kv.yaml",
        java: "KvFunctionTest.get",
        kv: Some(KvSetup {
            namespace: "io.kestra.tests",
            entries: &[("my-key", r#"{"field": "value"}"#)],
        }),
        task_outputs: &[("/get/value", "value"), ("/getWithArgs/value", "value")],
        ..ANY
    },
    Case {
        flow: "kv.yaml",
        java: "KvFunctionTest.getKeyNotFound",
        inputs: r#"{"errorOnMissing": true}"#,
        kv: Some(KvSetup {
            namespace: "io.kestra.tests",
            entries: &[],
        }),
        task_states: &[
            ("get", StateType::Success),
            ("getWithArgs", StateType::Failed),
        ],
        task_outputs: &[("/get/value", "")],
        task_logs: &[(
            "getWithArgs",
            "The key 'my-key' does not exist in the namespace 'io.kestra.tests'.",
        )],
        ..ANY
    },
    Case {
        flow: "log-to-file.yaml",
        java: "LogToFileTest.task",
        state: Some(StateType::Success),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "logs.yaml",
        java: "ExecutionServiceTest.deleteExecution",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "logs.yaml",
        java: "ExecutionServiceTest.deleteExecutionKeepLogs",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "logs.yaml",
        java: "ExecutionServiceTest.replayFromBeginning",
        state: Some(StateType::Success),
        task_runs: Some(5),
        ..ANY
    },
    Case {
        flow: "logs.yaml",
        java: "ExecutionServiceTest.replaySimple",
        state: Some(StateType::Success),
        task_runs: Some(5),
        ..ANY
    },
    Case {
        flow: "logs.yaml",
        java: "JdbcRunnerTest.logs",
        state: None,
        task_runs: Some(5),
        ..ANY
    },
    Case {
        flow: "logs.yaml",
        java: "RunContextTest.logs",
        state: None,
        task_runs: Some(5),
        ..ANY
    },
    Case {
        flow: "minimal.yaml",
        java: "JdbcRunnerTest.shouldScheduleOnDate",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "minimal.yaml",
        java: "JdbcRunnerTest.skipExecution",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "output-values.yml",
        java: "OutputValuesTest.output",
        state: Some(StateType::Success),
        task_runs: Some(1),
        ..ANY
    },
    Case {
        flow: "parallel-nested.yaml",
        java: "ExecutionServiceTest.replayParallel",
        state: Some(StateType::Success),
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "parallel-nested.yaml",
        java: "JdbcRunnerTest.parallelNested",
        state: None,
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "parallel-nested.yaml",
        java: "ParallelTest.parallelNested",
        state: None,
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "parallel.yaml",
        java: "JdbcRunnerTest.parallel",
        state: None,
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "parallel.yaml",
        java: "ParallelTest.parallel",
        state: None,
        task_runs: Some(8),
        ..ANY
    },
    Case {
        flow: "restart-each.yaml",
        java: "ExecutionServiceTest.replayFlowable",
        inputs: r#"{"failed": "NO"}"#,
        state: Some(StateType::Success),
        task_runs: Some(20),
        ..ANY
    },
    Case {
        flow: "restart-each.yaml",
        java: "ExecutionServiceTest.restartFlowable",
        inputs: r#"{"failed": "FIRST"}"#,
        state: Some(StateType::Failed),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "restart-each.yaml",
        java: "ExecutionServiceTest.restartFlowable2",
        inputs: r#"{"failed": "SECOND"}"#,
        state: Some(StateType::Failed),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "restart_always_failed.yaml",
        java: "RestartTest.restartFailedThenFailureWithGlobalErrors",
        state: Some(StateType::Failed),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "restart_last_failed.yaml",
        java: "ExecutionServiceTest.restartSimple",
        state: Some(StateType::Failed),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "restart_last_failed.yaml",
        java: "ExecutionServiceTest.restartSimpleRevision",
        state: Some(StateType::Failed),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "restart_last_failed.yaml",
        java: "RestartTest.restartFailedThenSuccess",
        state: Some(StateType::Failed),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "restart_local_errors.yaml",
        java: "RestartTest.restartFailedThenFailureWithLocalErrors",
        state: Some(StateType::Failed),
        task_runs: Some(5),
        ..ANY
    },
    Case {
        flow: "retry-expo.yaml",
        java: "JdbcRunnerRetryTest.retryExpo",
        state: Some(StateType::Failed),
        task_runs: Some(1),
        attempts: &[("failed", 3)],
        ..ANY
    },
    Case {
        flow: "retry-fail.yaml",
        java: "JdbcRunnerRetryTest.retryFail",
        state: Some(StateType::Failed),
        task_runs: Some(2),
        attempts: &[("keepFailingWithRetry", 3)],
        ..ANY
    },
    Case {
        flow: "retry-failed-flow-attempts.yml",
        java: "JdbcRunnerRetryTest.retryFailedFlowAttempts",
        state: Some(StateType::Failed),
        attempts: &[("fail", 4)],
        ..ANY
    },
    Case {
        flow: "retry-failed-flow-duration.yml",
        java: "JdbcRunnerRetryTest.retryFailedFlowDuration",
        state: Some(StateType::Failed),
        attempts: &[("fail", 3)],
        ..ANY
    },
    Case {
        flow: "retry-new-execution-flow-attempts.yml",
        java: "JdbcRunnerRetryTest.retryNewExecutionFlowAttempts",
        attempts_end: Some(&[StateType::Retried, StateType::Retried, StateType::Failed]),
        ..ANY
    },
    Case {
        flow: "retry-new-execution-flow-duration.yml",
        java: "JdbcRunnerRetryTest.retryNewExecutionFlowDuration",
        attempts_end: Some(&[StateType::Retried, StateType::Retried, StateType::Failed]),
        ..ANY
    },
    Case {
        flow: "retry-new-execution-task-attempts.yml",
        java: "JdbcRunnerRetryTest.retryNewExecutionTaskAttempts",
        attempts_end: Some(&[StateType::Retried, StateType::Retried, StateType::Failed]),
        ..ANY
    },
    Case {
        flow: "retry-new-execution-task-duration.yml",
        java: "JdbcRunnerRetryTest.retryNewExecutionTaskDuration",
        attempts_end: Some(&[StateType::Retried, StateType::Retried, StateType::Failed]),
        ..ANY
    },
    Case {
        flow: "retry-failed-task-attempts.yml",
        java: "JdbcRunnerRetryTest.retryFailedTaskAttempts",
        state: Some(StateType::Failed),
        task_runs: None,
        attempts: &[("fail", 4)],
        ..ANY
    },
    Case {
        flow: "retry-failed-task-duration.yml",
        java: "JdbcRunnerRetryTest.retryFailedTaskDuration",
        state: Some(StateType::Failed),
        task_runs: None,
        attempts: &[("fail", 3)],
        ..ANY
    },
    Case {
        flow: "retry-failed.yaml",
        java: "JdbcRunnerRetryTest.retryFailed",
        state: Some(StateType::Failed),
        task_runs: Some(2),
        attempts: &[("failed", 5)],
        ..ANY
    },
    Case {
        flow: "retry-flowable-child.yaml",
        java: "JdbcRunnerRetryTest.retryFlowableChild",
        state: Some(StateType::Failed),
        task_runs: None,
        attempts: &[("child", 3)],
        ..ANY
    },
    Case {
        flow: "retry-flowable-nested-child.yaml",
        java: "JdbcRunnerRetryTest.retryFlowableNestedChild",
        state: Some(StateType::Failed),
        task_runs: None,
        attempts: &[("child", 3)],
        ..ANY
    },
    Case {
        flow: "retry-flowable-parallel.yaml",
        java: "JdbcRunnerRetryTest.retryFlowableParallel",
        state: Some(StateType::Failed),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "retry-flowable.yaml",
        java: "JdbcRunnerRetryTest.retryFlowable",
        state: Some(StateType::Failed),
        task_runs: None,
        attempts: &[("child", 3)],
        ..ANY
    },
    Case {
        flow: "retry-random.yaml",
        java: "JdbcRunnerRetryTest.retryRandom",
        state: Some(StateType::Failed),
        task_runs: Some(1),
        attempts: &[("failed", 3)],
        ..ANY
    },
    Case {
        flow: "retry-success-first-attempt.yaml",
        java: "JdbcRunnerRetryTest.retrySuccessAtFirstAttempt",
        state: Some(StateType::Success),
        task_runs: Some(1),
        attempts: &[("not-retry-and-no-warning", 1)],
        ..ANY
    },
    Case {
        flow: "retry-success.yaml",
        java: "JdbcRunnerRetryTest.retrySuccess",
        state: Some(StateType::Warning),
        task_runs: Some(1),
        attempts: &[("failed", 4)],
        ..ANY
    },
    Case {
        flow: "return.yaml",
        java: "RunContextTest.variables",
        state: None,
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "sequential-with-global-errors.yaml",
        java: "SequentialTest.sequentialWithGlobalErrors",
        state: Some(StateType::Failed),
        task_runs: Some(6),
        ..ANY
    },
    Case {
        flow: "sequential-with-local-errors.yaml",
        java: "SequentialTest.sequentialWithLocalErrors",
        state: Some(StateType::Failed),
        task_runs: Some(6),
        ..ANY
    },
    Case {
        flow: "sequential.yaml",
        java: "JdbcRunnerTest.sequential",
        state: None,
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "sequential.yaml",
        java: "SequentialTest.sequential",
        state: Some(StateType::Success),
        task_runs: Some(11),
        ..ANY
    },
    Case {
        flow: "get-log.yaml",
        java: "FetchTest.fetch",
        state: Some(StateType::Success),
        task_runs: Some(4),
        task_output_values: &[("/get-log-task/size", "3")],
        ..ANY
    },
    Case {
        flow: "get-log-taskid.yaml",
        java: "FetchTest.fetchWithTaskId",
        state: Some(StateType::Success),
        task_runs: Some(4),
        task_output_values: &[("/get-log-task/size", "1")],
        ..ANY
    },
    Case {
        flow: "get-log-executionid.yaml",
        java: "FetchTest.fetchWithExecutionId",
        state: Some(StateType::Success),
        task_runs: Some(4),
        task_output_values: &[("/get-log-task/size", "3")],
        ..ANY
    },
    Case {
        flow: "sleep-task-flow.yaml",
        java: "SleepTest.sleepTaskTest",
        state: Some(StateType::Success),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "waitfor.yaml",
        java: "JdbcRunnerTest.waitFor (WaitForCaseTest.waitfor)",
        state: Some(StateType::Success),
        has_outputs: &["waitfor"],
        ..ANY
    },
    Case {
        flow: "waitfor-max-iterations.yaml",
        java: "JdbcRunnerTest.waitforMaxIterations (WaitForCaseTest)",
        state: Some(StateType::Failed),
        ..ANY
    },
    Case {
        flow: "waitfor-max-duration.yaml",
        java: "JdbcRunnerTest.waitforMaxDuration (WaitForCaseTest)",
        state: Some(StateType::Failed),
        ..ANY
    },
    Case {
        flow: "waitfor-no-success.yaml",
        java: "JdbcRunnerTest.waitforNoSuccess (WaitForCaseTest)",
        state: Some(StateType::Success),
        ..ANY
    },
    Case {
        flow: "waitfor-multiple-tasks.yaml",
        java: "JdbcRunnerTest.waitforMultipleTasks (WaitForCaseTest)",
        state: Some(StateType::Success),
        last: Some(Last {
            outputs: &[("/values/count", "4")],
            attempts: None,
        }),
        ..ANY
    },
    Case {
        flow: "waitfor-multiple-tasks-failed.yaml",
        java: "JdbcRunnerTest.waitforMultipleTasksFailed (WaitForCaseTest)",
        state: Some(StateType::Failed),
        last: Some(Last {
            outputs: &[],
            attempts: Some(1),
        }),
        ..ANY
    },
    // StateTest.set runs the flow three times on one state: create, update, delete. These
    // three cases run in this order against the suite's one store, as its executions do.
    Case {
        flow: "state.yaml",
        java: "StateTest.set (first run)",
        inputs: r#"{"state": "set"}"#,
        state: Some(StateType::Success),
        task_runs: Some(5),
        task_output_values: &[("/createGet/data/value", "1")],
        ..ANY
    },
    Case {
        flow: "state.yaml",
        java: "StateTest.set (second run)",
        inputs: r#"{"state": "set"}"#,
        state: Some(StateType::Success),
        task_runs: Some(5),
        task_outputs: &[("/updateGet/data/value", "2")],
        ..ANY
    },
    Case {
        flow: "state.yaml",
        java: "StateTest.set (third run)",
        inputs: r#"{"state": "set"}"#,
        state: Some(StateType::Success),
        task_runs: Some(5),
        task_output_values: &[("/deleteGet/count", "0")],
        ..ANY
    },
    Case {
        flow: "state.yaml",
        java: "StateTest.each",
        inputs: r#"{"state": "each"}"#,
        state: Some(StateType::Success),
        task_runs: Some(17),
        task_outputs: &[
            ("/regetEach1/b/data/value", "null-b"),
            ("/regetEach2/b/data/value", "null-a-b"),
        ],
        ..ANY
    },
    Case {
        flow: "switch-impossible.yaml",
        java: "SwitchTest.switchImpossible",
        inputs: r#"{"string": "impossible"}"#,
        state: Some(StateType::Failed),
        task_runs: None,
        ..ANY
    },
    Case {
        flow: "task-allow-failure-flowable.yml",
        java: "TaskWithAllowFailureTest.flowableTask",
        state: Some(StateType::Warning),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "task-allow-failure-runnable.yml",
        java: "TaskWithAllowFailureTest.runnableTask",
        state: Some(StateType::Warning),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "task-allow-warning-flowable.yml",
        java: "TaskWithAllowWarningTest.flowableTask",
        state: Some(StateType::Success),
        task_runs: Some(3),
        ..ANY
    },
    Case {
        flow: "task-allow-warning-runnable.yml",
        java: "TaskWithAllowWarningTest.runnableTask",
        state: Some(StateType::Success),
        task_runs: Some(2),
        attempts: &[("fail", 3)],
        ..ANY
    },
    Case {
        flow: "task-runif.yml",
        java: "TaskWithRunIfTest.runnableTask",
        state: Some(StateType::Failed),
        task_runs: Some(4),
        task_states: &[
            ("executed", StateType::Success),
            ("notexecuted", StateType::Skipped),
            ("willfailedtheflow", StateType::Failed),
        ],
        ..ANY
    },
    Case {
        flow: "variables-invalid.yaml",
        java: "VariablesTest.invalidVars",
        state: Some(StateType::Failed),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "pause.yaml",
        java: "PauseTest.run (markAs RUNNING, as a resume without inputs)",
        state: Some(StateType::Success),
        paused: Some(Paused {
            task_runs: 1,
            resume: Some("{}"),
        }),
        ..ANY
    },
    Case {
        flow: "pause-delay.yaml",
        java: "JdbcRunnerTest.pauseRunDelay (PauseTest.Suite.runDelay)",
        state: Some(StateType::Success),
        task_runs: Some(3),
        histories: &[
            ("pause", StateType::Paused, 1),
            ("pause", StateType::Running, 2),
        ],
        paused: Some(Paused {
            task_runs: 1,
            resume: None,
        }),
        ..ANY
    },
    Case {
        flow: "pause-delay-from-input.yaml",
        java: "JdbcRunnerTest.pauseRunDelayFromInput (PauseTest.Suite.runDelayFromInput)",
        state: Some(StateType::Success),
        task_runs: Some(3),
        histories: &[
            ("pause", StateType::Paused, 1),
            ("pause", StateType::Running, 2),
        ],
        paused: Some(Paused {
            task_runs: 1,
            resume: None,
        }),
        ..ANY
    },
    Case {
        flow: "each-parallel-pause.yml",
        java: "JdbcRunnerTest.pauseRunParallelDelay (PauseTest.Suite.runParallelDelay)",
        state: Some(StateType::Success),
        task_runs: Some(7),
        ..ANY
    },
    Case {
        flow: "pause-timeout.yaml",
        java: "JdbcRunnerTest.pauseRunTimeout (PauseTest.Suite.runTimeout)",
        state: Some(StateType::Failed),
        task_runs: Some(1),
        histories: &[
            ("pause", StateType::Paused, 1),
            ("pause", StateType::Running, 1),
            ("pause", StateType::Failed, 1),
        ],
        paused: Some(Paused {
            task_runs: 1,
            resume: None,
        }),
        ..ANY
    },
    Case {
        flow: "pause_no_tasks.yaml",
        java: "PauseTest.runEmptyTasks",
        state: Some(StateType::Success),
        paused: Some(Paused {
            task_runs: 1,
            resume: Some("{}"),
        }),
        ..ANY
    },
    Case {
        flow: "pause_on_resume.yaml",
        java: "PauseTest.runOnResume (the text input; api.rs sends the file part too)",
        state: Some(StateType::Success),
        task_outputs: &[("/last/values/asked", "restarted")],
        paused: Some(Paused {
            task_runs: 1,
            resume: Some(r#"{"asked": "restarted"}"#),
        }),
        ..ANY
    },
    Case {
        flow: "pause_on_resume_optional.yaml",
        java: "PauseTest.runOnResumeOptionalInputs",
        state: Some(StateType::Success),
        task_outputs: &[("/last/values/asked", "MISSING")],
        paused: Some(Paused {
            task_runs: 1,
            resume: Some("{}"),
        }),
        ..ANY
    },
    Case {
        flow: "labels-update-task.yml",
        java: "RuntimeLabelsTest.update",
        inputs: r#"{"labelsJson": "{\"keyFromJson\": \"valueFromJson\"}", "labelsMapKey": "keyFromMap", "labelsMapValue": "valueFromMap", "labelsListKey": "keyFromList", "labelsListValue": "valueFromList"}"#,
        labels: &[
            "keyFromExecution:valueFromExecution",
            "overriddenExecutionLabelKey:executionValueThatWillGetOverridden",
        ],
        state: Some(StateType::Success),
        task_runs: Some(4),
        end_labels: Some(&[
            "system.correlationId:{execution}",
            "flowLabelKey:flowLabelValue",
            "overriddenFlowLabelKey:io.kestra.tests.labels-update-task",
            "keyFromJson:valueFromJson",
            "keyFromMap:valueFromMap",
            "keyFromList:valueFromList",
            "keyFromExecution:valueFromExecution",
            "overriddenExecutionLabelKey:{taskrun:override-labels}",
        ]),
        ..ANY
    },
    Case {
        flow: "npe-labels-update-task.yml",
        java: "RuntimeLabelsTest.noNpeOnNullPreviousExecutionLabels (hasItem)",
        state: Some(StateType::Success),
        task_runs: Some(1),
        end_labels: Some(&[
            "system.correlationId:{execution}",
            "someLabel:{taskrun:labels}",
        ]),
        ..ANY
    },
    Case {
        flow: "primitive-labels-flow.yml",
        java: "RuntimeLabelsTest.primitiveTypeLabels",
        inputs: r#"{"intLabel": 42, "boolLabel": true, "floatLabel": 3.14}"#,
        labels: &["existingLabel:someValue"],
        state: Some(StateType::Success),
        task_runs: Some(1),
        end_labels: Some(&[
            "system.correlationId:{execution}",
            "intValue:42",
            "boolValue:true",
            "floatValue:3.14",
            "taskRunId:{taskrun:update-labels}",
            "existingLabel:someValue",
        ]),
        ..ANY
    },
    Case {
        flow: "task-flow.yaml",
        java: "FlowCaseTest.waitSuccess",
        with: &["switch.yaml"],
        inputs: r#"{"string": "OK"}"#,
        labels: &["mainFlowExecutionLabel:execFoo"],
        state: Some(StateType::Success),
        task_runs: Some(1),
        attempts: &[("launch", 1)],
        task_outputs_contain: &[("/launch/outputs/extracted", "default > amazing")],
        task_outputs: &[("/launch/state", "SUCCESS")],
        started: Some(Started {
            state: StateType::Success,
            task_runs: 2,
            labels: Some(&[
                "system.correlationId:{parent}",
                "mainFlowExecutionLabel:execFoo",
                "mainFlowLabel:flowFoo",
                "launchTaskLabel:launchFoo",
                "switchFlowLabel:switchFoo",
            ]),
        }),
        ..ANY
    },
    Case {
        flow: "task-flow.yaml",
        java: "FlowCaseTest.waitFailed",
        with: &["switch.yaml"],
        inputs: r#"{"string": "THIRD"}"#,
        labels: &["mainFlowExecutionLabel:execFoo"],
        state: Some(StateType::Failed),
        task_runs: Some(1),
        attempts: &[("launch", 1)],
        task_outputs_contain: &[("/launch/outputs/extracted", "Error Trigger ! error-t1")],
        task_outputs: &[("/launch/state", "FAILED")],
        started: Some(Started {
            state: StateType::Failed,
            task_runs: 4,
            labels: Some(&[
                "system.correlationId:{parent}",
                "mainFlowExecutionLabel:execFoo",
                "mainFlowLabel:flowFoo",
                "launchTaskLabel:launchFoo",
                "switchFlowLabel:switchFoo",
            ]),
        }),
        ..ANY
    },
    Case {
        flow: "task-flow.yaml",
        java: "FlowCaseTest.invalidOutputs",
        with: &["switch.yaml"],
        inputs: r#"{"string": "FIRST"}"#,
        labels: &["mainFlowExecutionLabel:execFoo"],
        state: Some(StateType::Failed),
        task_runs: Some(1),
        attempts: &[("launch", 1)],
        started: Some(Started {
            state: StateType::Success,
            task_runs: 2,
            labels: None,
        }),
        ..ANY
    },
    Case {
        flow: "task-flow-inherited-labels.yaml",
        java: "FlowCaseTest.noLabels",
        with: &["switch.yaml"],
        inputs: r#"{"string": "OK"}"#,
        state: Some(StateType::Success),
        task_runs: Some(1),
        attempts: &[("launch", 1)],
        task_outputs_contain: &[("/launch/outputs/extracted", "default > amazing")],
        started: Some(Started {
            state: StateType::Success,
            task_runs: 2,
            labels: Some(&[
                "system.correlationId:{parent}",
                "launchTaskLabel:launchFoo",
                "switchFlowLabel:switchFoo",
            ]),
        }),
        ..ANY
    },
    Case {
        flow: "subflow-parent.yaml",
        java: "CorrelationIdTest.shouldHaveCorrelationId (the child; the grandchild logs it)",
        with: &["subflow-grand-child.yaml", "subflow-child.yaml"],
        state: Some(StateType::Success),
        started: Some(Started {
            state: StateType::Success,
            task_runs: 1,
            labels: Some(&["system.correlationId:{parent}"]),
        }),
        ..ANY
    },
    Case {
        flow: "each-parallel-subflow-notfound.yml",
        java: "JdbcRunnerTest.eachParallelWithSubflowMissing",
        state: Some(StateType::Failed),
        task_states: &[
            ("1_each", StateType::Failed),
            ("subflow-not-exist", StateType::Failed),
        ],
        ..ANY
    },
    Case {
        flow: "task-allow-failure-executable-flow.yml",
        java: "TaskWithAllowFailureTest.executableTask_Flow",
        with: &["for-each-item-subflow-failed.yaml"],
        state: Some(StateType::Warning),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "task-allow-warning-executable-flow.yml",
        java: "TaskWithAllowWarningTest.executableTask_Flow",
        with: &["for-each-item-subflow-failed.yaml"],
        state: Some(StateType::Success),
        task_runs: Some(2),
        ..ANY
    },
    Case {
        flow: "sla-max-duration-fail.yaml",
        java: "JdbcRunnerTest.maxDurationSLAShouldFail",
        state: Some(StateType::Failed),
        ..ANY
    },
    Case {
        flow: "sla-max-duration-ok.yaml",
        java: "JdbcRunnerTest.maxDurationSLAShouldPass",
        state: Some(StateType::Success),
        ..ANY
    },
    Case {
        flow: "sla-execution-condition.yaml",
        java: "JdbcRunnerTest.executionConditionSLAShouldPass",
        state: Some(StateType::Success),
        ..ANY
    },
    Case {
        flow: "sla-execution-condition.yaml",
        java: "JdbcRunnerTest.executionConditionSLAShouldCancel",
        inputs: r#"{"string": "CANCEL"}"#,
        state: Some(StateType::Cancelled),
        ..ANY
    },
    Case {
        flow: "sla-execution-condition.yaml",
        java: "JdbcRunnerTest.executionConditionSLAShouldLabel",
        inputs: r#"{"string": "LABEL"}"#,
        state: Some(StateType::Success),
        end_labels: Some(&["system.correlationId:{execution}", "sla:violated"]),
        ..ANY
    },
    Case {
        flow: "trigger-flow.yaml",
        java: "FlowTriggerCaseTest.trigger",
        with: &[
            "trigger-flow-listener.yaml",
            "trigger-flow-listener-no-inputs.yaml",
            "trigger-flow-listener-namespace-condition.yaml",
            "trigger-flow-listener-invalid.yaml",
        ],
        state: Some(StateType::Success),
        task_runs: Some(1),
        triggered: &[
            Triggered {
                flow: "trigger-flow-listener",
                state: Some(StateType::Success),
                task_runs: Some(1),
                task_outputs: &[("/only-listener/value", "childs: from parents: {by}")],
                ..STARTED
            },
            Triggered {
                flow: "trigger-flow-listener-no-inputs",
                state: Some(StateType::Success),
                task_runs: Some(1),
                ..STARTED
            },
            Triggered {
                flow: "trigger-flow-listener-namespace-condition",
                task_runs: Some(1),
                ..STARTED
            },
        ],
        ..ANY
    },
    Case {
        flow: "trigger-flow-with-pause.yaml",
        java: "FlowTriggerCaseTest.triggerWithPause",
        with: &["trigger-flow-listener-with-pause.yaml"],
        state: Some(StateType::Success),
        task_runs: Some(3),
        triggered: &[Triggered {
            flow: "trigger-flow-listener-with-pause",
            count: 4,
            state: Some(StateType::Success),
            outputs: &[
                r#"{"status": "RUNNING"}"#,
                r#"{"status": "PAUSED"}"#,
                r#"{"status": "RUNNING"}"#,
                r#"{"status": "SUCCESS"}"#,
            ],
            ..STARTED
        }],
        ..ANY
    },
    Case {
        flow: "trigger-multiplecondition-flow-b.yaml",
        java: "MultipleConditionTriggerCaseTest.trigger",
        with: &["trigger-multiplecondition-listener.yaml"],
        before: &[(
            "trigger-multiplecondition-flow-a.yaml",
            StateType::Success,
            1,
        )],
        state: Some(StateType::Success),
        task_runs: Some(1),
        triggered: &[
            Triggered {
                flow: "trigger-multiplecondition-listener",
                by: Some(0),
                count: 0,
                ..STARTED
            },
            Triggered {
                flow: "trigger-multiplecondition-listener",
                state: Some(StateType::Success),
                task_runs: Some(1),
                ..STARTED
            },
        ],
        ..ANY
    },
    Case {
        flow: "trigger-multiplecondition-flow-d.yaml",
        java: "MultipleConditionTriggerCaseTest.failed",
        with: &[
            "trigger-multiplecondition-failed.yaml",
            "trigger-flow-listener-namespace-condition.yaml",
        ],
        before: &[(
            "trigger-multiplecondition-flow-c.yaml",
            StateType::Failed,
            1,
        )],
        state: Some(StateType::Success),
        task_runs: Some(1),
        triggered: &[
            Triggered {
                flow: "trigger-flow-listener-namespace-condition",
                by: Some(0),
                count: 0,
                ..STARTED
            },
            Triggered {
                flow: "trigger-flow-listener-namespace-condition",
                state: Some(StateType::Success),
                ..STARTED
            },
        ],
        ..ANY
    },
    Case {
        flow: "flow-trigger-preconditions-flow-b.yaml",
        java: "MultipleConditionTriggerCaseTest.flowTriggerPreconditions",
        with: &["flow-trigger-preconditions-flow-listen.yaml"],
        before: &[
            (
                "flow-trigger-preconditions-flow-a.yaml",
                StateType::Success,
                1,
            ),
            (
                "flow-trigger-preconditions-flow-a.yaml",
                StateType::Success,
                1,
            ),
        ],
        state: Some(StateType::Success),
        task_runs: Some(1),
        triggered: &[Triggered {
            flow: "flow-trigger-preconditions-flow-listen",
            state: Some(StateType::Success),
            task_runs: Some(1),
            ..STARTED
        }],
        ..ANY
    },
    Case {
        flow: "errors.yaml",
        java: "JdbcRunnerTest.errors",
        task_runs: Some(7),
        task_logs: &[("t2", "- task: failed, message: Task failure")],
        ..ANY
    },
];

/// How the executions Flow triggers started for `by` differ from what the test asserts.
async fn triggered_differs(
    h: &common::Harness,
    by: &Execution,
    expected: &Triggered,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let all =
        h.o.store()
            .executions_of_flow(&by.namespace, expected.flow)
            .await
            .unwrap_or_default();
    let mut found: Vec<Execution> = Vec::new();
    for exec in all.into_iter().filter(|e| {
        e.trigger.as_ref().is_some_and(|t| {
            t.kind == "io.kestra.plugin.core.trigger.Flow"
                && t.variables.get("executionId").and_then(Value::as_str) == Some(&by.id)
        })
    }) {
        found.push(h.finish(&exec.id).await.0);
    }
    found.sort_by_key(|e| e.state.histories.first().map(|h| h.date));
    let what = format!("{} started by {}", expected.flow, by.flow_id);
    if found.len() != expected.count {
        wrong.push(format!(
            "{what}: {} executions (expected {})",
            found.len(),
            expected.count
        ));
        return wrong;
    }
    for (i, exec) in found.iter().enumerate() {
        let t = exec.trigger.as_ref().expect("filtered on its trigger");
        let var = |k: &str| t.variables.get(k).and_then(Value::as_str);
        if var("namespace") != Some(by.namespace.as_str()) || var("flowId") != Some(&by.flow_id) {
            wrong.push(format!("{what}: trigger {t:?}"));
        }
        if let Some(state) = expected.state
            && exec.state.current != state
        {
            wrong.push(format!(
                "{what}: state {} (expected {state})",
                exec.state.current
            ));
        }
        if let Some(n) = expected.task_runs
            && exec.task_run_list.len() != n
        {
            wrong.push(format!(
                "{what}: {} task runs (expected {n})",
                exec.task_run_list.len()
            ));
        }
        let outputs = Value::Object(orchestrator::run_context::outputs(exec));
        for (pointer, text) in expected.task_outputs {
            let text = text.replace("{by}", &by.id);
            let got = outputs.pointer(pointer).and_then(Value::as_str);
            if got != Some(text.as_str()) {
                wrong.push(format!(
                    "{what}: outputs{pointer}: {got:?} (expected {text:?})"
                ));
            }
        }
        if let Some(want) = expected.outputs.get(i) {
            let want: Value = serde_json::from_str(want).unwrap();
            let got = exec.outputs.clone().map_or(Value::Null, Value::Object);
            if got != want {
                wrong.push(format!("{what}: #{i} outputs {got} (expected {want})"));
            }
        }
    }
    wrong
}

/// The execution the first task run of `exec` started, once ended.
async fn started(h: &common::Harness, exec: &Execution) -> Result<Execution, String> {
    let id = exec
        .task_run_list
        .first()
        .and_then(|t| t.outputs.as_ref()?.get("executionId")?.as_str())
        .ok_or("the first task run started no execution")?;
    Ok(h.finish(id).await.0)
}

/// How a started execution differs from what the test asserts of it, and of its trigger.
fn started_differs(parent: &Execution, child: &Execution, expected: &Started) -> Vec<String> {
    let mut wrong = Vec::new();
    if child.state.current != expected.state {
        wrong.push(format!(
            "started execution: state {} (expected {})",
            child.state.current, expected.state
        ));
    }
    if child.task_run_list.len() != expected.task_runs {
        wrong.push(format!(
            "started execution: {} task runs (expected {})",
            child.task_run_list.len(),
            expected.task_runs
        ));
    }
    let trigger = child.trigger.as_ref();
    let var = |k: &str| trigger.and_then(|t| t.variables.get(k)?.as_str());
    if trigger.map(|t| t.kind.as_str()) != Some("io.kestra.plugin.core.flow.Subflow")
        || var("executionId") != Some(parent.id.as_str())
        || var("flowId") != Some(parent.flow_id.as_str())
        || var("namespace") != Some(parent.namespace.as_str())
    {
        wrong.push(format!("started execution: trigger {trigger:?}"));
    }
    if let Some(labels) = expected.labels {
        let mut expected: Vec<String> = labels
            .iter()
            .map(|l| l.replace("{parent}", &parent.id))
            .collect();
        let mut got: Vec<String> = child
            .labels
            .iter()
            .map(|l| format!("{}:{}", l.key, l.value))
            .collect();
        expected.sort();
        got.sort();
        if got != expected {
            wrong.push(format!(
                "started execution: labels {got:?} (expected {expected:?})"
            ));
        }
    }
    wrong
}

/// Empties a namespace's KV store and puts the case's entries, as the Java test does.
fn prepare_kv(storage: &orchestrator::storage::Storage, setup: &KvSetup) {
    let kv = KvStore::new(storage, setup.namespace);
    for entry in kv.list().unwrap() {
        kv.delete(&entry.key).unwrap();
    }
    for (key, value) in setup.entries {
        let value: Value = serde_json::from_str(value).unwrap();
        kv.put(key, &value.into(), None, true).unwrap();
    }
}

fn flow_text(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kestra/valids")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Kestra's invalid test flows (`core/src/test/resources/flows/invalids/`, copied byte for
/// byte into `tests/kestra/invalids/`), refused at load with the message its Java test
/// asserts, naming the file, the flow and the task. Kestra's validator prefixes the
/// message with the task's id (`dag: Cyclic dependency detected: …`); flowbench's error
/// names the task as every load error does (``task `dag` (…Dag): property `tasks`: …``).
#[test]
fn kestras_invalid_flows_are_refused_as_kestras_tests_assert() {
    let cases = [
        (
            "dag-cyclicdependency.yaml",
            "DagTest.dagCyclicDependencies",
            "Cyclic dependency detected: task1, task2",
        ),
        (
            "dag-notexist-task.yaml",
            "DagTest.dagNotExistTask",
            "Not existing task id in dependency: taskX",
        ),
    ];
    for (file, java, message) in cases {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/kestra/invalids")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let e = orchestrator::flow::parse_flow(&text, file)
            .err()
            .unwrap_or_else(|| panic!("{file} ({java}) loads"))
            .to_string();
        let flow = format!("flow `io.kestra.tests.{}`", file.trim_end_matches(".yaml"));
        for part in [file, flow.as_str(), "task `dag`", message] {
            assert!(e.contains(part), "{file} ({java}): `{part}` not in: {e}");
        }
    }
}

#[tokio::test]
async fn kestras_test_flows_end_as_kestras_tests_assert() {
    let h = start(&[]).await;
    let mut failures = Vec::new();
    for case in CASES {
        if let Some(setup) = &case.kv {
            prepare_kv(h.o.storage(), setup);
        }
        let inputs: Value = serde_json::from_str(case.inputs).unwrap();
        let mut wrong = Vec::new();
        let labels: Vec<Label> = case
            .labels
            .iter()
            .map(|l| {
                let (key, value) = l.split_once(':').unwrap();
                Label {
                    key: key.into(),
                    value: value.into(),
                }
            })
            .collect();
        for other in case.with {
            h.o.deploy(&flow_text(other), other).await.unwrap();
        }
        let mut before = Vec::new();
        for (file, state, task_runs) in case.before {
            let id = h
                .start_labelled(&flow_text(file), Value::Null, vec![])
                .await;
            let (exec, _) = h.finish(&id).await;
            if exec.state.current != *state || exec.task_run_list.len() != *task_runs {
                wrong.push(format!(
                    "{file} run first: {} with {} task runs (expected {state} with {task_runs})",
                    exec.state.current,
                    exec.task_run_list.len()
                ));
            }
            before.push(exec);
        }
        let id = h
            .start_labelled(&flow_text(case.flow), inputs, labels)
            .await;
        let (exec, logs) = match &case.paused {
            None => h.finish(&id).await,
            Some(paused) => {
                let at_pause = h.wait_state(&id, StateType::Paused).await;
                if at_pause.task_run_list.len() != paused.task_runs
                    || at_pause.task_run_list[0].state.current != StateType::Paused
                {
                    wrong.push(format!("at the pause: task runs {:?}", states(&at_pause)));
                }
                if let Some(resume) = paused.resume {
                    let inputs: Value = serde_json::from_str(resume).unwrap();
                    let resumed =
                        h.o.resume(&id, inputs.as_object().cloned().unwrap())
                            .await
                            .unwrap();
                    if resumed.state.current != StateType::Restarted {
                        wrong.push(format!("resumed to {}", resumed.state.current));
                    }
                }
                h.finish(&id).await
            }
        };
        if let Some(state) = case.state
            && exec.state.current != state
        {
            wrong.push(format!("state {} (expected {state})", exec.state.current));
        }
        if let Some(n) = case.task_runs
            && exec.task_run_list.len() != n
        {
            wrong.push(format!(
                "{} task runs (expected {n})",
                exec.task_run_list.len()
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
        if !case.task_outputs_contain.is_empty() {
            let outputs = Value::Object(orchestrator::run_context::outputs(&exec));
            for (pointer, expected) in case.task_outputs_contain {
                let got = outputs.pointer(pointer).and_then(Value::as_str);
                if !got.is_some_and(|g| g.contains(expected)) {
                    wrong.push(format!(
                        "outputs{pointer}: {got:?} (expected to contain {expected:?})"
                    ));
                }
            }
        }
        for expected in case.triggered {
            let by = match expected.by {
                None => &exec,
                Some(i) => &before[i],
            };
            wrong.extend(triggered_differs(&h, by, expected).await);
        }
        if let Some(expected) = &case.started {
            match started(&h, &exec).await {
                Err(e) => wrong.push(e),
                Ok(child) => wrong.extend(started_differs(&exec, &child, expected)),
            }
        }
        if let Some(expected) = case.end_labels {
            let value = |v: &str| match v {
                "{execution}" => exec.id.clone(),
                v => match v
                    .strip_prefix("{taskrun:")
                    .and_then(|v| v.strip_suffix('}'))
                {
                    Some(task) => exec
                        .task_run_list
                        .iter()
                        .find(|t| t.task_id == task)
                        .map_or_else(|| format!("no task run of {task}"), |t| t.id.clone()),
                    None => v.to_string(),
                },
            };
            let mut expected: Vec<String> = expected
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap();
                    format!("{k}:{}", value(v))
                })
                .collect();
            let mut got: Vec<String> = exec
                .labels
                .iter()
                .map(|l| format!("{}:{}", l.key, l.value))
                .collect();
            expected.sort();
            got.sort();
            if got != expected {
                wrong.push(format!("labels {got:?} (expected {expected:?})"));
            }
        }
        for (task, state, expected) in case.histories {
            let got = exec.task_run_list.iter().find(|t| t.task_id == *task);
            let n = got.map(|t| {
                t.state
                    .histories
                    .iter()
                    .filter(|h| h.state == *state)
                    .count()
            });
            if n != Some(*expected) {
                wrong.push(format!(
                    "task `{task}`: {state} {n:?} times in its history (expected {expected})"
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
        if !case.task_outputs.is_empty() {
            let outputs = Value::Object(orchestrator::run_context::outputs(&exec));
            for (pointer, expected) in case.task_outputs {
                let got = outputs.pointer(pointer);
                if got.and_then(Value::as_str) != Some(*expected) {
                    wrong.push(format!("outputs{pointer}: {got:?} (expected {expected:?})"));
                }
            }
        }
        if !case.task_output_values.is_empty() {
            let outputs = Value::Object(orchestrator::run_context::outputs(&exec));
            for (pointer, expected) in case.task_output_values {
                let expected: Value = serde_json::from_str(expected).unwrap();
                let got = outputs.pointer(pointer);
                if got != Some(&expected) {
                    wrong.push(format!("outputs{pointer}: {got:?} (expected {expected})"));
                }
            }
        }
        if let Some(expected) = case.attempts_end {
            match h.o.wait_tree(&id, std::time::Duration::from_secs(60)).await {
                Err(e) => wrong.push(format!("retries: {e}")),
                Ok(_) => {
                    let mut got: Vec<String> =
                        h.o.store()
                            .executions_of_flow(&exec.namespace, &exec.flow_id)
                            .await
                            .unwrap()
                            .into_iter()
                            .filter(|e| e.original_id == exec.id)
                            .map(|e| e.state.current.to_string())
                            .collect();
                    let mut expected: Vec<String> =
                        expected.iter().map(ToString::to_string).collect();
                    got.sort();
                    expected.sort();
                    if got != expected {
                        wrong.push(format!("executions ended {got:?} (expected {expected:?})"));
                    }
                }
            }
        }
        for (task, expected) in case.task_logs {
            let run = exec.task_run_list.iter().find(|t| t.task_id == *task);
            let found = run.is_some_and(|run| {
                logs.iter().any(|l| {
                    l.task_run_id.as_deref() == Some(&run.id) && l.message.contains(expected)
                })
            });
            if !found {
                wrong.push(format!("task `{task}`: no log line contains {expected:?}"));
            }
        }
        for task in case.has_outputs {
            let run = exec.task_run_list.iter().find(|t| t.task_id == *task);
            if run.is_none_or(|t| t.outputs.is_none()) {
                wrong.push(format!("task `{task}`: no outputs"));
            }
        }
        if let Some(last) = &case.last {
            match exec.task_run_list.last() {
                None => wrong.push("no task run".into()),
                Some(run) => {
                    let outputs = Value::Object(run.outputs.clone().unwrap_or_default());
                    for (pointer, expected) in last.outputs {
                        let got = outputs.pointer(pointer);
                        if got.and_then(Value::as_str) != Some(*expected) {
                            wrong.push(format!(
                                "last task run `{}`: outputs{pointer}: {got:?} (expected {expected:?})",
                                run.task_id
                            ));
                        }
                    }
                    if let Some(n) = last.attempts
                        && run.attempt_count() != n
                    {
                        wrong.push(format!(
                            "last task run `{}`: {} attempts (expected {n})",
                            run.task_id,
                            run.attempt_count()
                        ));
                    }
                }
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

/// Kestra's `ResumeTest.resume`: `pause.yaml` runs until it pauses; `resume-execution.yaml`,
/// given its id, ends SUCCESS, and the paused execution then ends within 5 s.
#[tokio::test]
async fn resume_resumes_the_paused_execution_it_names() {
    let h = start(&[]).await;
    let paused = h
        .start_labelled(&flow_text("pause.yaml"), Value::Null, Vec::new())
        .await;
    h.wait_state(&paused, StateType::Paused).await;
    let inputs = serde_json::json!({ "executionId": paused });
    let resume = h
        .start_labelled(&flow_text("resume-execution.yaml"), inputs, Vec::new())
        .await;
    let (exec, _) = h.finish(&resume).await;
    assert_eq!(
        exec.state.current,
        StateType::Success,
        "{:?}",
        states(&exec)
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let exec = h.o.execution(&paused).await.unwrap();
        if exec.state.is_terminal() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the paused execution is still {} after 5 s",
            exec.state.current
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    h.stop().await;
}

/// Kestra's `VariablesTest.recursiveVars` (`variables.yaml`), run by the binary: Kestra's
/// build gives that test the environment variables `KESTRA_TEST1` and `KESTRA_TEST2`
/// (`envs`), and its `application-test.yml` the `kestra.variables.globals` passed here
/// with `--globals`; both are read once per process, as Kestra reads them at start-up.
#[test]
fn variables_render_envs_and_globals_as_kestras_test_asserts() {
    let dir = tempfile::tempdir().unwrap();
    let globals = dir.path().join("globals.yaml");
    // Kestra's core/src/test/resources/application-test.yml, kestra.variables.globals.
    std::fs::write(
        &globals,
        "string: \"string\"\nint: 1\nbool: true\nnested:\n  int: 2\n",
    )
    .unwrap();
    let flow =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kestra/valids/variables.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .arg("run")
        .arg(&flow)
        .arg("--globals")
        .arg(&globals)
        .args(["--output", "json"])
        .env("KESTRA_TEST1", "true")
        .env("KESTRA_TEST2", "Pass by env")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let exec: Execution = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exec.task_run_list.len(), 3);
    let value = |task: &str| {
        let tr = exec
            .task_run_list
            .iter()
            .find(|t| t.task_id == task)
            .unwrap();
        tr.outputs.as_ref().unwrap()["value"].clone()
    };
    assert_eq!(value("variable"), "1 > 2 > 3");
    assert_eq!(value("env"), "true Pass by env");
    assert_eq!(value("global"), "string 1 true 2");
}

/// What Kestra's ForEachItem tests assert of one run: the parent's end, its task runs, the
/// `{id}_items` task run's (the third) attempts, state and `iterations`, and the
/// executions it started.
struct ForEachItemCase {
    flow: &'static str,
    java: &'static str,
    /// The lines of the items file (Kestra's tests write 102, or none).
    lines: usize,
    batch: Option<u64>,
    state: StateType,
    task_runs: usize,
    /// The `{id}_items` task run's attempt state, when the test asserts it.
    items_attempt: Option<StateType>,
    /// Its `iterations`: a state and the count the test asserts (`None`: absent).
    iterations: &'static [(&'static str, Option<u64>)],
    /// The subflow the test counts executions of, and the state each ends in.
    children: Option<(&'static str, StateType)>,
    /// Whether the test reads the merged outputs (`forEachItemWithSubflowOutputs`).
    merged: bool,
}

/// Kestra's `ForEachItemCaseTest` (`for-each-item*.yaml`) and the ForEachItem cases of
/// `TaskWithAllowFailureTest` and `TaskWithAllowWarningTest`, at 58c1ca2d0: a file of 102
/// lines (each a number left-padded to 20 characters) uploaded to
/// `kestra:///file/storage/file.txt` and split by 4 lines, so 26 executions, each with 1
/// task run, whose `items` input is a batch under the parent's `tasks/each-split/` folder
/// and whose `system.correlationId` is the parent's id.
#[tokio::test]
async fn for_each_item_runs_one_execution_per_batch_as_kestras_tests_assert() {
    use StateType::*;
    let cases = [
        ForEachItemCase {
            flow: "for-each-item.yaml",
            java: "ForEachItemCaseTest.forEachItem",
            lines: 102,
            batch: Some(4),
            state: Success,
            task_runs: 4,
            items_attempt: Some(Success),
            iterations: &[
                ("CREATED", Some(0)),
                ("RUNNING", Some(0)),
                ("SUCCESS", Some(26)),
            ],
            children: Some(("for-each-item-subflow", Success)),
            merged: false,
        },
        ForEachItemCase {
            flow: "for-each-item.yaml",
            java: "ForEachItemCaseTest.forEachItemEmptyItems",
            lines: 0,
            batch: Some(4),
            state: Success,
            task_runs: 4,
            items_attempt: None,
            iterations: &[],
            children: None,
            merged: false,
        },
        ForEachItemCase {
            flow: "for-each-item-no-wait.yaml",
            java: "ForEachItemCaseTest.forEachItemNoWait",
            lines: 102,
            batch: None,
            state: Success,
            task_runs: 4,
            items_attempt: Some(Success),
            iterations: &[
                ("CREATED", None),
                ("RUNNING", Some(0)),
                ("SUCCESS", Some(26)),
            ],
            children: Some(("for-each-item-subflow", Success)),
            merged: false,
        },
        ForEachItemCase {
            flow: "for-each-item-failed.yaml",
            java: "ForEachItemCaseTest.forEachItemFailed",
            lines: 102,
            batch: None,
            state: Failed,
            task_runs: 3,
            items_attempt: Some(Failed),
            iterations: &[
                ("CREATED", Some(0)),
                ("RUNNING", Some(0)),
                ("FAILED", Some(26)),
            ],
            children: Some(("for-each-item-subflow-failed", Failed)),
            merged: false,
        },
        ForEachItemCase {
            flow: "for-each-item-outputs.yaml",
            java: "ForEachItemCaseTest.forEachItemWithSubflowOutputs",
            lines: 102,
            batch: None,
            state: Success,
            task_runs: 5,
            items_attempt: Some(Success),
            iterations: &[
                ("CREATED", Some(0)),
                ("RUNNING", Some(0)),
                ("SUCCESS", Some(26)),
            ],
            children: Some(("for-each-item-outputs-subflow", Success)),
            merged: true,
        },
        ForEachItemCase {
            flow: "task-allow-failure-executable-foreachitem.yml",
            java: "TaskWithAllowFailureTest.executableTask_ForEachItem",
            lines: 102,
            batch: None,
            state: Warning,
            task_runs: 4,
            items_attempt: None,
            iterations: &[],
            children: None,
            merged: false,
        },
        ForEachItemCase {
            flow: "task-allow-warning-executable-foreachitem.yml",
            java: "TaskWithAllowWarningTest.executableTask_ForEachItem",
            lines: 102,
            batch: None,
            state: Success,
            task_runs: 4,
            items_attempt: None,
            iterations: &[],
            children: None,
            merged: false,
        },
    ];
    let h = start(&[]).await;
    for subflow in [
        "for-each-item-subflow.yaml",
        "for-each-item-subflow-failed.yaml",
        "for-each-item-outputs-subflow.yaml",
    ] {
        h.o.deploy(&flow_text(subflow), subflow).await.unwrap();
    }
    let file = "kestra:///file/storage/file.txt";
    let mut failures = Vec::new();
    for case in &cases {
        let content: String = (0..case.lines).map(|i| format!("{i:>20}\n")).collect();
        h.o.storage().write(file, content.as_bytes()).unwrap();
        let mut inputs = serde_json::json!({ "file": file });
        if let Some(b) = case.batch {
            inputs["batch"] = b.into();
        }
        let flow = h.o.deploy(&flow_text(case.flow), case.flow).await.unwrap();
        let id =
            h.o.create_execution(
                &flow.namespace,
                &flow.id,
                inputs.as_object().cloned().unwrap(),
                vec![],
                None,
            )
            .await
            .unwrap()
            .id;
        let exec =
            h.o.wait_tree(&id, std::time::Duration::from_secs(60))
                .await
                .unwrap();
        let mut wrong = Vec::new();
        if exec.state.current != case.state {
            wrong.push(format!(
                "state {} (want {})",
                exec.state.current, case.state
            ));
        }
        if exec.task_run_list.len() != case.task_runs {
            wrong.push(format!(
                "{} task runs (want {}): {:?}",
                exec.task_run_list.len(),
                case.task_runs,
                states(&exec)
            ));
        }
        let items = exec.task_run_list.get(2);
        if let (Some(want), Some(items)) = (case.items_attempt, items) {
            let attempts: Vec<StateType> = items
                .attempts
                .iter()
                .flatten()
                .map(|a| a.state.current)
                .collect();
            if attempts != [want] {
                wrong.push(format!("each_items attempts {attempts:?} (want [{want}])"));
            }
        }
        let outputs = items.and_then(|t| t.outputs.clone());
        if case.lines == 0 && outputs.is_some() {
            wrong.push(format!("each_items outputs {outputs:?} (want none)"));
        }
        if !case.iterations.is_empty() {
            let o = outputs.clone().unwrap_or_default();
            if o.get("numberOfBatches") != Some(&Value::from(26)) {
                wrong.push(format!(
                    "numberOfBatches {:?} (want 26)",
                    o.get("numberOfBatches")
                ));
            }
            for (state, want) in case.iterations {
                let got = o
                    .get("iterations")
                    .and_then(|i| i.get(state))
                    .and_then(Value::as_u64);
                if got != *want {
                    wrong.push(format!("iterations.{state} {got:?} (want {want:?})"));
                }
            }
        }
        if let Some((subflow, end)) = case.children {
            let children: Vec<Execution> =
                h.o.store()
                    .executions_of_flow("io.kestra.tests", subflow)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|c| {
                        c.trigger
                            .as_ref()
                            .and_then(|t| t.variables.get("executionId"))
                            .and_then(Value::as_str)
                            == Some(exec.id.as_str())
                    })
                    .collect();
            if children.len() != 26 {
                wrong.push(format!(
                    "{} executions of {subflow} (want 26)",
                    children.len()
                ));
            }
            // The no-wait parent ends before its executions: wait for them.
            for child in &children {
                let child =
                    h.o.wait_terminal(&child.id, std::time::Duration::from_secs(60))
                        .await
                        .unwrap();
                let prefix = format!(
                    "kestra:///io/kestra/tests/{}/executions/{}/tasks/each-split/",
                    exec.flow_id, exec.id
                );
                let items = child
                    .inputs
                    .get("items")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let correlation = child
                    .labels
                    .iter()
                    .find(|l| l.key == "system.correlationId")
                    .map(|l| l.value.as_str());
                if child.state.current != end
                    || child.task_run_list.len() != 1
                    || !(items.starts_with(&prefix) && items.ends_with(".txt"))
                    || correlation != Some(exec.id.as_str())
                {
                    wrong.push(format!(
                        "execution {} of {subflow}: {} with {} task runs, items {items}, correlation id {correlation:?}",
                        child.id,
                        child.state.current,
                        child.task_run_list.len()
                    ));
                    break;
                }
            }
        }
        if case.merged {
            let merged = exec.task_run_list.get(3).and_then(|t| {
                t.outputs
                    .as_ref()?
                    .get("subflowOutputs")?
                    .as_str()
                    .map(str::to_string)
            });
            match merged.map(|uri| h.o.storage().read_to_string(&uri)) {
                Some(Ok(text)) if text.lines().count() == 26 => {}
                other => wrong.push(format!("merged outputs: {other:?} (want 26 lines)")),
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}): {}",
                case.flow,
                case.java,
                wrong.join("; ")
            ));
        }
    }
    h.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
