//! Shared helpers for the orchestrator's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use orchestrator::knobs::Knobs;
use orchestrator::model::{Execution, Label, LogEntry, StateType};
use orchestrator::queue::Timing;
use orchestrator::service::{Components, Config, Orchestrator};
use serde_json::{Map, Value};

/// An orchestrator on a fresh SQLite file, every component started.
pub struct Harness {
    pub o: Orchestrator,
    pub dir: tempfile::TempDir,
}

pub async fn start(sets: &[&str]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut knobs = Knobs::default();
    knobs.apply(sets).unwrap();
    let o = Orchestrator::connect(Config {
        db: format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        knobs,
        storage: dir.path().join("storage"),
        timing: Timing {
            heartbeat: Duration::from_millis(200),
            liveness_timeout: Duration::from_secs(2),
            ..Timing::default()
        },
    })
    .await
    .unwrap();
    o.start(Components::ALL);
    Harness { o, dir }
}

impl Harness {
    /// Deploys the flow, runs one execution with these inputs, waits for the end and for
    /// every log line to be indexed.
    pub async fn run(&self, yaml: &str, inputs: Value) -> (Execution, Vec<LogEntry>) {
        let flow = self.o.deploy(yaml, "test.yaml").await.unwrap();
        let inputs: Map<String, Value> = inputs.as_object().cloned().unwrap_or_default();
        let exec = self
            .o
            .create_execution(&flow.namespace, &flow.id, inputs, vec![], None)
            .await
            .unwrap();
        self.finish(&exec.id).await
    }

    /// Deploys the flow and creates one execution with these inputs and labels; returns
    /// its id.
    pub async fn start_labelled(&self, yaml: &str, inputs: Value, labels: Vec<Label>) -> String {
        let flow = self.o.deploy(yaml, "test.yaml").await.unwrap();
        let inputs: Map<String, Value> = inputs.as_object().cloned().unwrap_or_default();
        self.o
            .create_execution(&flow.namespace, &flow.id, inputs, labels, None)
            .await
            .unwrap()
            .id
    }

    /// Waits (up to 30 s) until the execution is in `state`.
    pub async fn wait_state(&self, id: &str, state: StateType) -> Execution {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let exec = self.o.execution(id).await.unwrap();
            if exec.state.current == state {
                return exec;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "execution {id} still {} after 30 s, waiting for {state}",
                exec.state.current
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn finish(&self, id: &str) -> (Execution, Vec<LogEntry>) {
        let done = self
            .o
            .wait_terminal(id, Duration::from_secs(60))
            .await
            .unwrap();
        self.o.wait_idle(Duration::from_secs(60)).await.unwrap();
        let logs = self.o.logs(id).await.unwrap();
        (done, logs)
    }

    pub async fn stop(self) {
        self.o.shutdown().await;
    }
}

pub fn states(exec: &Execution) -> Vec<(String, Option<String>, String)> {
    exec.task_run_list
        .iter()
        .map(|t| {
            (
                t.task_id.clone(),
                t.value.clone(),
                t.state.current.to_string(),
            )
        })
        .collect()
}

pub fn task<'a>(exec: &'a Execution, id: &str) -> &'a orchestrator::model::TaskRun {
    exec.task_run_list
        .iter()
        .find(|t| t.task_id == id)
        .unwrap_or_else(|| panic!("no task run for `{id}` in {:?}", states(exec)))
}

pub fn messages(logs: &[LogEntry]) -> Vec<String> {
    logs.iter().map(|l| l.message.clone()).collect()
}
