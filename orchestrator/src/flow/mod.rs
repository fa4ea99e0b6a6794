//! Kestra flows: the YAML model and its loader.
//!
//! A flow is parsed once, validated entirely (unknown task types, missing properties,
//! duplicate task ids, malformed expressions) and only then stored or run, so bad input never
//! leaves anything half-written.

mod cache;
mod error;
mod input;
mod parse;
pub(crate) mod sla;
mod task;

use serde_json::{Map, Value};

pub use cache::{FlowCache, FlowLookupError};
pub use error::FlowError;
pub use input::{Input, InputError, resolve_inputs};
pub use parse::parse_flow;
pub(crate) use parse::{check_syntax, only_properties, parse_labels};
pub use sla::{Sla, SlaBehavior, SlaKind, Violation};
pub use task::{Retry, RetryBehavior, Task, TaskProps, parse_duration as task_duration};

pub use crate::tasks::TaskKind;

use crate::expression::Renderer;
use crate::model::{Execution, Label, TaskRun};

/// Flow `concurrency.behavior`: what happens to an execution over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConcurrencyBehavior {
    Queue,
    Cancel,
    Fail,
}

/// Flow `concurrency`: at most `limit` running executions of this flow at once.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    pub limit: u32,
    #[serde(default = "default_behavior")]
    pub behavior: ConcurrencyBehavior,
}

fn default_behavior() -> ConcurrencyBehavior {
    ConcurrencyBehavior::Queue
}

/// The type of a Webhook trigger (its pre-0.17 alias reads as this one).
pub const WEBHOOK_TYPE: &str = "io.kestra.plugin.core.trigger.Webhook";

/// A flow trigger: a webhook the webserver serves, a schedule the scheduler fires, or a
/// Flow trigger the executor fires when other flows' executions change state.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Webhook { id: String, key: String },
    Schedule(crate::scheduler::Schedule),
    Flow(crate::flow_trigger::FlowTrigger),
}

/// A flow output (`outputs:`, Kestra 0.15+): rendered when the execution ends, typed like an
/// input, and kept in the execution's `outputs`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowOutput {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Value,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "required_output")]
    pub required: bool,
}

fn required_output() -> bool {
    true
}

impl FlowOutput {
    /// The output as an input declaration, whose typing rules it shares.
    pub(crate) fn as_input(&self) -> Input {
        Input {
            id: self.id.clone(),
            kind: self.kind.clone(),
            defaults: None,
            required: self.required,
            description: self.description.clone(),
            values: None,
        }
    }
}

/// A parsed, validated Kestra flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub namespace: String,
    pub revision: i32,
    pub disabled: bool,
    pub labels: Vec<Label>,
    pub inputs: Vec<Input>,
    pub variables: Map<String, Value>,
    pub tasks: Vec<Task>,
    pub errors: Vec<Task>,
    pub outputs: Vec<FlowOutput>,
    pub concurrency: Option<Concurrency>,
    /// The flow's `retry`: for a failed task run whose task, and whose parents, have none.
    pub retry: Option<Retry>,
    /// The flow's `sla`.
    pub sla: Vec<Sla>,
    pub triggers: Vec<Trigger>,
    /// The YAML as written, stored in the `flows` table and returned by the API.
    pub source: String,
}

impl Flow {
    /// `namespace/id`, the key flows are stored and cached under.
    pub fn key(&self) -> String {
        flow_key(&self.namespace, &self.id)
    }

    /// Finds a task anywhere in the tree (tasks, errors and every flowable's children).
    pub fn find_task(&self, id: &str) -> Option<&Task> {
        fn find<'a>(tasks: &'a [Task], id: &str) -> Option<&'a Task> {
            tasks.iter().find_map(|t| {
                if t.id == id {
                    Some(t)
                } else {
                    t.children().find_map(|c| find(c, id))
                }
            })
        }
        find(&self.tasks, id).or_else(|| find(&self.errors, id))
    }

    /// The retry that covers a failed run of `task_run`, as Kestra's
    /// `ExecutorService#handleChildWorkerTaskResult` picks it: the task's own, else that of
    /// its nearest parent that has one ([`Flow::task_retry`]), else the flow's.
    pub fn retry_for(&self, exec: &Execution, task_run: &TaskRun) -> Option<&Retry> {
        self.task_retry(exec, task_run).or(self.retry.as_ref())
    }

    /// The task's own `retry`, else that of its nearest parent that has one.
    pub fn task_retry(&self, exec: &Execution, task_run: &TaskRun) -> Option<&Retry> {
        let task = self.find_task(&task_run.task_id)?;
        if task.retry.is_some() {
            return task.retry.as_ref();
        }
        let mut parent = task_run.parent_task_run_id.as_deref();
        while let Some(id) = parent {
            let run = exec.task_run(id)?;
            if let Some(r) = self.find_task(&run.task_id).and_then(|t| t.retry.as_ref()) {
                return Some(r);
            }
            parent = run.parent_task_run_id.as_deref();
        }
        None
    }

    /// The flow's `Flow` triggers.
    pub fn flow_triggers(&self) -> impl Iterator<Item = &crate::flow_trigger::FlowTrigger> {
        self.triggers.iter().filter_map(|t| match t {
            Trigger::Flow(f) => Some(f),
            _ => None,
        })
    }

    /// The id of the Webhook trigger whose `key` is `key`. As in Kestra 58c1ca2d0's
    /// `ExecutionController#webhook`, a key is rendered (against [`trigger_vars`], so
    /// `{{ secret('…') }}` and `{{ flow.namespace }}` work) and trimmed before it is
    /// compared, and a key that fails to render matches nothing, with a warning.
    ///
    /// [`trigger_vars`]: crate::run_context::trigger_vars
    pub fn webhook_key_matches(&self, key: &str, renderer: &Renderer) -> Option<&str> {
        self.triggers.iter().find_map(|t| {
            let Trigger::Webhook { id, key: k } = t else {
                return None;
            };
            let matches = if crate::expression::is_template(k) {
                let vars = crate::run_context::trigger_vars(self, id, WEBHOOK_TYPE);
                match renderer.render(k, &vars) {
                    Ok(rendered) => rendered.trim() == key,
                    Err(e) => {
                        tracing::warn!(flow = %self.key(), trigger = %id, "the webhook key cannot be rendered, the webhook is ignored: {e}");
                        false
                    }
                }
            } else {
                k.trim() == key
            };
            matches.then_some(id.as_str())
        })
    }
}

pub fn flow_key(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}")
}
