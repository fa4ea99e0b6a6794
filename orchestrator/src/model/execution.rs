use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{State, StateType};

/// A flow or execution label (`labels:` accepts a map or a list of key/value in Kestra).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// What started an execution, for `{{ trigger.* }}` (a webhook's body, headers, parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionTrigger {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub variables: Map<String, Value>,
}

/// Kestra's `Execution`, persisted as JSON in the `executions` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: String,
    /// Kestra's `tenantId`: `None` in Kestra OSS (no tenant), a tenant's id in a
    /// multi-tenant setup. Left out of the JSON when `None`, as Kestra's mapper does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub namespace: String,
    pub flow_id: String,
    pub flow_revision: i32,
    #[serde(default)]
    pub inputs: Map<String, Value>,
    #[serde(default)]
    pub labels: Vec<Label>,
    pub state: State,
    #[serde(default)]
    pub task_run_list: Vec<TaskRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<ExecutionTrigger>,
    pub original_id: String,
    /// The flow's `outputs`, rendered when the execution ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Map<String, Value>>,
    /// Kestra's `metadata`, kept once a `CREATE_NEW_EXECUTION` retry made this execution;
    /// `None` on a first attempt, whose metadata the execution itself gives
    /// ([`Execution::attempt_number`], [`Execution::original_created_date`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ExecutionMetadata>,
}

/// Kestra's `ExecutionMetadata`: which attempt of its flow this execution is, and when the
/// first attempt was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionMetadata {
    pub attempt_number: u32,
    pub original_created_date: jiff::Timestamp,
}

impl Execution {
    /// 1 for a first execution, one more for each execution a retry created after it.
    pub fn attempt_number(&self) -> u32 {
        self.metadata.as_ref().map_or(1, |m| m.attempt_number)
    }

    /// When the first attempt of this execution was created.
    pub fn original_created_date(&self) -> jiff::Timestamp {
        self.metadata
            .as_ref()
            .map_or_else(|| self.state.start_date(), |m| m.original_created_date)
    }

    pub fn task_run(&self, id: &str) -> Option<&TaskRun> {
        self.task_run_list.iter().find(|t| t.id == id)
    }

    pub fn task_run_mut(&mut self, id: &str) -> Option<&mut TaskRun> {
        self.task_run_list.iter_mut().find(|t| t.id == id)
    }
}

/// One attempt of a task run (retries add attempts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRunAttempt {
    pub state: State,
    /// Internal-storage URI of this attempt's logs, when the task has `logToFile: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
}

/// Kestra's `TaskRun`: one run of one task, with the ForEach `value` it runs for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRun {
    pub id: String,
    pub execution_id: String,
    pub namespace: String,
    pub flow_id: String,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_run_id: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub attempts: Option<Vec<TaskRunAttempt>>,
    #[serde(default)]
    pub outputs: Option<Map<String, Value>>,
    pub state: State,
    /// Kestra's `TaskRun.iteration`: which round of a `WaitFor` this run belongs to (the
    /// `WaitFor`'s own run counts its restarts from 2; its children have the round, from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<i32>,
}

impl TaskRun {
    pub fn current(&self) -> StateType {
        self.state.current
    }

    pub fn attempt_count(&self) -> usize {
        self.attempts.as_ref().map_or(0, Vec::len)
    }
}

/// What a worker sends back: the task run in its new state, with attempts and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerTaskResult {
    pub task_run: TaskRun,
    /// Set when one of a ForEachItem's executions ended: the task run carries that
    /// execution's state, and the executor counts it in the task run's `iterations` rather
    /// than taking the task run as it is (Kestra's `SubflowExecutionResult` of a
    /// `ForEachItemExecutable`, which its executor passes to `manageIterations`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub iteration: bool,
}
