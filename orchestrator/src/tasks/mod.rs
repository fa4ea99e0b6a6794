//! The core Kestra tasks, one file per task type.
//!
//! Runnable tasks (`Log`, `Return`, `OutputValues`, `Sleep`, `Fail`, the serdes
//! conversions) implement [`Runnable`]
//! and run on a worker thread. Flowable tasks (`Sequential`, `Parallel`, `If`, `Switch`,
//! `ForEach`) are plain data: the executor resolves their children (see
//! `executor::resolve`), as Kestra's executor does with `FlowableTask`.

mod debug_return;
mod fail;
mod for_each;
mod if_task;
mod log;
mod output_values;
mod parallel;
mod sequential;
mod serdes;
mod sleep;
mod switch;

use serde_json::{Map, Value};

pub use debug_return::DebugReturn;
pub use fail::Fail;
pub use for_each::ForEach;
pub use if_task::IfTask;
pub use log::Log;
pub use output_values::OutputValues;
pub use parallel::Parallel;
pub use sequential::Sequential;
pub use serdes::{CONVERSIONS, Conversion};
pub use sleep::Sleep;
pub use switch::Switch;

use crate::expression::{ExpressionError, Renderer};
use crate::knobs::SerdeMode;
use crate::model::{Level, TaskRun};
use crate::storage::Storage;

pub const LOG: &str = "io.kestra.plugin.core.log.Log";
pub const RETURN: &str = "io.kestra.plugin.core.debug.Return";
pub const OUTPUT_VALUES: &str = "io.kestra.plugin.core.output.OutputValues";
pub const SLEEP: &str = "io.kestra.plugin.core.flow.Sleep";
pub const FAIL: &str = "io.kestra.plugin.core.execution.Fail";
pub const SEQUENTIAL: &str = "io.kestra.plugin.core.flow.Sequential";
pub const PARALLEL: &str = "io.kestra.plugin.core.flow.Parallel";
pub const IF: &str = "io.kestra.plugin.core.flow.If";
pub const SWITCH: &str = "io.kestra.plugin.core.flow.Switch";
pub const FOR_EACH: &str = "io.kestra.plugin.core.flow.ForEach";

/// Where a running task writes its log lines. The worker decides where they go (the queue,
/// the logs table directly, or a file in internal storage) and filters by `logLevel`.
pub trait TaskLogger {
    fn log(&mut self, level: Level, message: String);
}

/// What a runnable task sees while it runs: Kestra's `RunContext`.
pub struct TaskContext<'a> {
    pub renderer: &'a Renderer,
    /// The variables expressions render against (`inputs`, `outputs`, `taskrun`, …).
    pub vars: &'a Value,
    pub logger: &'a mut dyn TaskLogger,
    /// Internal storage, for tasks that read or write files.
    pub storage: &'a Storage,
    /// The task run being executed (its ids name the files it writes).
    pub task_run: &'a TaskRun,
    /// The `serde.mode` knob, for the FileSerde conversion tasks.
    pub serde_mode: SerdeMode,
}

impl TaskContext<'_> {
    pub fn render(&self, template: &str) -> Result<String, TaskError> {
        Ok(self.renderer.render(template, self.vars)?)
    }
}

/// Why a task attempt failed. The worker logs the message at ERROR in the task's logs.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// An expression could not be rendered (an undefined variable, a bad filter…).
    #[error(transparent)]
    Expression(#[from] ExpressionError),
    /// The task failed on purpose (`Fail`) or could not do its work.
    #[error("{0}")]
    Failed(String),
}

/// A task that runs on a worker thread and returns its outputs.
pub trait Runnable {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError>;
}
