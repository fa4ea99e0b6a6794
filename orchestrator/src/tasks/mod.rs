//! The core Kestra tasks, one file per task type.
//!
//! Each file owns its task: its Kestra type names, its properties and their parsing
//! ([`TaskType::parse`]), and what it does. A runnable task (`Log`, `Return`,
//! `OutputValues`, `Sleep`, `Fail`, the serdes conversions, the KV store's `kv.Set`,
//! `kv.Get`, `kv.Delete`, `kv.GetKeys`, the state store's `state.Set`, `state.Get`,
//! `state.Delete`, `log.Fetch`, the deprecated `Echo`) implements [`Runnable`] and runs on a worker
//! thread. A flowable task (`Sequential`, `Parallel`, `If`, `Switch`, `ForEach`, `Dag`,
//! `WaitFor`, the
//! deprecated `EachSequential`, `EachParallel` and `AllowFailure`) implements [`Flowable`]:
//! the executor asks it, on every pass, which of its children run next, as Kestra's
//! executor does with `FlowableTask`.
//!
//! `Labels` changes its own execution and implements [`ExecutionUpdatable`]: the executor
//! runs it, as Kestra's runs an `ExecutionUpdatableTask`. `Subflow` starts an execution of
//! another flow, which the executor creates and waits for, as Kestra's does for an
//! `ExecutableTask`; `ForEachItem` starts one per batch of a file's lines. `Resume`
//! resumes a paused execution, which the executor loads and saves in the pass that starts
//! the task run.
//!
//! Adding a task means one new file and one line in the `task_kinds!` list below.

mod allow_failure;
mod dag;
mod debug_return;
mod each_parallel;
mod each_sequential;
mod echo;
mod execution_target;
mod fail;
mod for_each;
mod for_each_item;
mod if_task;
mod kv_delete;
mod kv_get;
mod kv_get_keys;
mod kv_set;
mod labels;
mod log;
mod log_fetch;
mod output_values;
mod parallel;
mod pause;
mod resume;
mod sequential;
mod serdes;
mod sleep;
mod state_delete;
mod state_get;
mod state_set;
mod subflow;
mod switch;
mod wait_for;

pub use allow_failure::AllowFailure;
pub use dag::Dag;
pub use debug_return::DebugReturn;
pub use each_parallel::EachParallel;
pub use each_sequential::EachSequential;
pub use echo::Echo;
pub use execution_target::ExecutionTarget;
pub use fail::Fail;
pub use for_each::ForEach;
pub use for_each_item::{
    EXECUTABLE_TYPE as FOR_EACH_ITEM_TRIGGER_TYPE, ForEachItem, ForEachItemExecutable,
    ForEachItemMergeOutputs, ForEachItemSplit, NUMBER_OF_BATCHES, count_iteration,
};
pub use if_task::IfTask;
pub use kv_delete::KvDelete;
pub use kv_get::KvGet;
pub use kv_get_keys::KvGetKeys;
pub use kv_set::KvSet;
pub use labels::{Labels, SYSTEM_PREFIX};
pub use log::Log;
pub use log_fetch::Fetch;
pub use output_values::OutputValues;
pub use parallel::Parallel;
pub use pause::{Pause, ResumeError, mark_as, on_resume_inputs, resume};
pub use resume::Resume;
pub use sequential::Sequential;
pub use serdes::Conversion;
pub use sleep::Sleep;
pub use state_delete::StateDelete;
pub use state_get::StateGet;
pub use state_set::StateSet;
pub use subflow::{Subflow, TRIGGER_TYPES as SUBFLOW_TRIGGER_TYPES, guess_state};
pub use switch::Switch;
pub use wait_for::{CheckFrequency, WaitFor, next_round};

use serde_json::{Map, Value};

use crate::executor::{FlowableRun, Progress, Walker};
use crate::expression::{ExpressionError, Renderer};
use crate::flow::{FlowError, Task, TaskProps};
use crate::knobs::SerdeMode;
use crate::kv::{KvError, KvStore};
use crate::model::{Execution, Level, LogEntry, TaskRun};
use crate::storage::Storage;

/// A Kestra task type: the names it runs under, and how it reads its properties.
pub(crate) trait TaskType: Sized {
    /// The Kestra type names this task runs under.
    const TYPES: &'static [&'static str];
    /// Older names Kestra still runs it under: `(alias, type)`.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];

    /// Reads the task's own properties (the common ones are read already) and validates
    /// them, so that a bad task fails its flow at load.
    fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError>;

    /// Whether it runs on a worker or is resolved by the executor.
    fn role(&self) -> Role<'_>;
}

/// What a task is to the executor.
pub(crate) enum Role<'a> {
    Runnable(&'a dyn Runnable),
    Flowable(&'a dyn Flowable),
    /// Run by the executor itself, on the execution (Kestra's `ExecutionUpdatableTask`).
    Updating(&'a dyn ExecutionUpdatable),
    /// Starts another execution, which the executor creates (Kestra's `ExecutableTask`).
    Executable(&'a Subflow),
    /// Starts one execution of another flow per batch of a file, and counts them as they
    /// end (a ForEachItem's `{id}_items`, Kestra's iterative `ExecutableTask`).
    Iterative(&'a ForEachItemExecutable),
    /// Resumes a paused execution, which the executor loads and saves.
    Resuming(&'a Resume),
}

/// A task that changes its own execution, run by the executor as it would send the task
/// run to a worker (Kestra's `ExecutionUpdatableTask`).
pub(crate) trait ExecutionUpdatable {
    /// Changes the execution; an error fails the task run, and is logged.
    fn update(&self, exec: &mut Execution, renderer: &Renderer, vars: &Value)
    -> Result<(), String>;
}

/// Declares [`TaskKind`] from the list of task types, with its dispatch.
macro_rules! task_kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// The task types flowbench runs.
        #[derive(Debug, Clone)]
        pub enum TaskKind {
            $($(#[$doc])* $variant($ty),)*
        }

        impl TaskKind {
            /// Every Kestra type name a task can have (aliases excluded).
            pub fn types() -> impl Iterator<Item = &'static str> {
                [$(<$ty as TaskType>::TYPES),*].into_iter().flatten().copied()
            }

            /// The type a written `type` names, an alias mapped to its current name.
            pub fn type_named(written: &str) -> Option<&'static str> {
                Self::types().find(|t| *t == written).or_else(|| {
                    [$(<$ty as TaskType>::ALIASES),*]
                        .into_iter()
                        .flatten()
                        .find(|(alias, _)| *alias == written)
                        .map(|(_, t)| *t)
                })
            }

            pub(crate) fn parse(props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
                let name = props.type_name();
                $(if <$ty as TaskType>::TYPES.contains(&name) {
                    return <$ty as TaskType>::parse(props).map(TaskKind::$variant);
                })*
                unreachable!("`{name}` comes from TaskKind::type_named")
            }

            pub(crate) fn role(&self) -> Role<'_> {
                match self {
                    $(TaskKind::$variant(t) => t.role(),)*
                }
            }
        }
    };
}

task_kinds! {
    Log(Log),
    Fetch(Fetch),
    Return(DebugReturn),
    OutputValues(OutputValues),
    Sleep(Sleep),
    Fail(Fail),
    Sequential(Sequential),
    Parallel(Parallel),
    If(IfTask),
    Switch(Switch),
    ForEach(ForEach),
    ForEachItem(ForEachItem),
    Dag(Dag),
    WaitFor(WaitFor),
    Pause(Pause),
    Labels(Labels),
    Resume(Resume),
    Subflow(Subflow),
    /// A ForEachItem's fixed children.
    ForEachItemSplit(ForEachItemSplit),
    ForEachItemExecutable(ForEachItemExecutable),
    ForEachItemMerge(ForEachItemMergeOutputs),
    /// A FileSerde conversion (`io.kestra.plugin.serdes.*`).
    Convert(Conversion),
    KvSet(KvSet),
    KvGet(KvGet),
    KvDelete(KvDelete),
    KvGetKeys(KvGetKeys),
    StateSet(StateSet),
    StateGet(StateGet),
    StateDelete(StateDelete),
    // Deprecated types Kestra still runs.
    EachSequential(EachSequential),
    EachParallel(EachParallel),
    AllowFailure(AllowFailure),
    Echo(Echo),
}

/// A task whose children the executor runs: asked on every pass which of them run next.
pub(crate) trait Flowable {
    /// Every child list (both branches of an If, every Switch case).
    fn children(&self) -> Vec<&[Task]>;

    /// Its own `errors` branch, one of [`Flowable::children`].
    fn errors(&self) -> &[Task];

    /// Creates and advances the task runs of the children that can run now, and reports
    /// whether the flowable is done, and how.
    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress;
}

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
    /// When the task's `timeout` runs out: the attempt then fails, whatever it returns, and
    /// [`TaskContext::sleep`] wakes (Kestra's worker interrupts the task's thread).
    pub deadline: Option<std::time::Instant>,
    /// The indexed log lines of executions, for `log.Fetch`; `None` where the worker has no
    /// database (the benchmarks' task handler).
    pub logs: Option<&'a dyn ExecutionLogs>,
    /// Turned off when the task run's execution is killed: the attempt then ends KILLED,
    /// whatever it returns, and [`TaskContext::sleep`] wakes (Kestra's worker kills the
    /// task's thread).
    pub kill: Option<&'a KillSwitch>,
}

/// A running task run's kill switch, shared by its worker thread and the worker's reader
/// of the kill queue.
#[derive(Debug, Default)]
pub struct KillSwitch {
    killed: std::sync::Mutex<bool>,
    woken: std::sync::Condvar,
}

impl KillSwitch {
    /// Kills the task run: a sleep under this switch wakes.
    pub fn kill(&self) {
        *self.lock() = true;
        self.woken.notify_all();
    }

    pub fn is_killed(&self) -> bool {
        *self.lock()
    }

    /// Holds the thread for `d`, or until the switch is turned off.
    pub fn sleep(&self, d: std::time::Duration) {
        let killed = self.lock();
        // Spurious wake-ups and early ones are both handled by the predicate.
        let _ = self
            .woken
            .wait_timeout_while(killed, d, |killed| !*killed)
            .map_err(|e| e.into_inner());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        // A bool cannot be left half-written.
        self.killed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads the indexed log lines of an execution, oldest first (Kestra's
/// `LogRepositoryInterface#findByExecutionId`), from a worker thread.
pub trait ExecutionLogs: Send + Sync {
    fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, String>;
}

impl TaskContext<'_> {
    pub fn render(&self, template: &str) -> Result<String, TaskError> {
        Ok(self.renderer.render(template, self.vars)?)
    }

    /// Holds the worker thread for `d`, or until the task's `timeout` runs out, or until its
    /// execution is killed.
    pub fn sleep(&self, d: std::time::Duration) {
        let d = match self.deadline {
            Some(deadline) => d.min(deadline.saturating_duration_since(std::time::Instant::now())),
            None => d,
        };
        match self.kill {
            Some(switch) => switch.sleep(d),
            None => std::thread::sleep(d),
        }
    }

    /// A file of this task run's own folder in internal storage: its URI, and its path with
    /// the folders created (where a task writes its output file).
    pub fn output_file(&self, name: &str) -> Result<(String, std::path::PathBuf), TaskError> {
        let uri = Storage::task_run_uri(self.task_run, name);
        let path = self
            .storage
            .path(&uri)
            .map_err(|e| TaskError::Failed(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| TaskError::Failed(format!("creating {}: {e}", dir.display())))?;
        }
        Ok((uri, path))
    }

    /// Renders a string to a typed value (Kestra's `RunContext.renderTyped`).
    pub fn render_typed(&self, template: &str) -> Result<Value, TaskError> {
        Ok(self.renderer.render_typed(template, self.vars)?)
    }

    /// The KV store of `namespace`, opened from this task run's flow (Kestra's
    /// `RunContext.namespaceKv`, with `KVStoreService`'s namespace rules). The stores are
    /// the renderer's, which `kv()` reads too.
    pub fn namespace_kv(&self, namespace: &str) -> Result<KvStore, TaskError> {
        let service = self.renderer.kv().ok_or_else(|| {
            TaskError::Failed("no KV store: this worker was built without internal storage".into())
        })?;
        service
            .store(namespace, Some(&self.task_run.namespace))
            .map_err(TaskError::from)
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
    /// A KV store refused the operation (a bad key, an existing key, a missing namespace…).
    #[error(transparent)]
    Kv(#[from] KvError),
}

/// A task that runs on a worker thread and returns its outputs.
pub trait Runnable {
    fn run(&self, ctx: &mut TaskContext<'_>) -> Result<Map<String, Value>, TaskError>;
}
