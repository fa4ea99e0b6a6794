//! The data Kestra moves between components, in Kestra's JSON shape.
//!
//! `Execution`, `TaskRun` and `State` serialize exactly as Kestra's REST API prints them
//! (`state.current`, `state.histories`, `taskRunList[]` …), so tools written against Kestra
//! read flowbench's output unchanged.

mod execution;
mod log;
mod state;

pub use execution::{
    Execution, ExecutionMetadata, ExecutionTrigger, Label, TaskRun, TaskRunAttempt,
    WorkerTaskResult,
};
pub use log::{Level, LogEntry};
pub use state::{History, State, StateType, iso_duration};

/// The current instant, as every component stamps it.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// A fresh id in Kestra's style: short, URL-safe, time-ordered.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
