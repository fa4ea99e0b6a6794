//! The variables a task renders against: Kestra's `RunContext` variables.
//!
//! `outputs` is built once per executor pass from every task run that has outputs; a task
//! run inside a ForEach nests its outputs under its value (`outputs.t["1"].values`), as
//! Kestra does.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::flow::{Flow, Task};
use crate::model::{Execution, TaskRun};

/// The variables shared by every task run of one execution at one moment.
pub struct VarsBase {
    base: Map<String, Value>,
}

impl VarsBase {
    pub fn new(flow: &Flow, exec: &Execution) -> Self {
        let mut base = Map::new();
        base.insert(
            "flow".into(),
            json!({"id": flow.id, "namespace": flow.namespace, "revision": exec.flow_revision}),
        );
        base.insert(
            "execution".into(),
            json!({
                "id": exec.id,
                "startDate": exec.state.start_date(),
                "originalId": exec.original_id,
                "state": exec.state.current,
            }),
        );
        base.insert("inputs".into(), Value::Object(exec.inputs.clone()));
        base.insert("labels".into(), Value::Object(label_vars(&exec.labels)));
        base.insert("vars".into(), Value::Object(flow.variables.clone()));
        // Kestra always has both, empty when unset; an empty one is left out here, which
        // reads the same (`{{ envs.x }}` is missing either way) and costs no copy per pass.
        for (name, map) in [("envs", envs()), ("globals", globals())] {
            if !map.is_empty() {
                base.insert(name.into(), Value::Object(map.clone()));
            }
        }
        if let Some(t) = &exec.trigger {
            base.insert("trigger".into(), Value::Object(t.variables.clone()));
        }
        base.insert("outputs".into(), Value::Object(outputs(exec)));
        VarsBase { base }
    }

    /// The variables outside any task run (a flow's `outputs` render against these).
    pub fn for_execution(&self) -> Value {
        Value::Object(self.base.clone())
    }

    /// The variables for one task run: the shared ones plus `task`, `taskrun`, `parent` and
    /// `parents`.
    pub fn for_task_run(&self, exec: &Execution, task_run: &TaskRun, task: &Task) -> Value {
        let mut vars = self.base.clone();
        vars.insert(
            "task".into(),
            json!({"id": task.id, "type": task.type_name}),
        );
        vars.insert("taskrun".into(), taskrun_vars(task_run));
        let mut parents = Vec::new();
        let mut cursor = task_run.parent_task_run_id.as_deref();
        while let Some(pid) = cursor {
            let Some(p) = exec.task_run(pid) else { break };
            parents.push(json!({
                "taskrun": taskrun_vars(p),
                "outputs": p.outputs.clone().unwrap_or_default(),
            }));
            cursor = p.parent_task_run_id.as_deref();
        }
        if let Some(first) = parents.first() {
            vars.insert("parent".into(), first.clone());
        }
        vars.insert("parents".into(), Value::Array(parents));
        Value::Object(vars)
    }
}

/// The variables a trigger's dynamic properties render against outside any execution, as
/// Kestra 58c1ca2d0's `RunContextFactory#of(Flow, AbstractTrigger)` builds them: `flow`,
/// `vars`, `trigger` (its id and type), `envs` and `globals`.
pub fn trigger_vars(flow: &Flow, trigger_id: &str, trigger_type: &str) -> Value {
    json!({
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
        "vars": flow.variables,
        "trigger": {"id": trigger_id, "type": trigger_type},
        "envs": envs(),
        "globals": globals(),
    })
}

/// The prefix of the environment variables that are `envs` (Kestra's default
/// `kestra.variables.env-vars-prefix`).
pub const ENV_VARS_PREFIX: &str = "KESTRA_";

/// Kestra's `envs`: this process's environment variables whose name starts with
/// [`ENV_VARS_PREFIX`], under their name without it, lower-cased (`KESTRA_TEST1` is
/// `envs.test1`). Read once, as Kestra's `RunContextCache` reads them at start-up.
fn envs() -> &'static Map<String, Value> {
    static ENVS: OnceLock<Map<String, Value>> = OnceLock::new();
    ENVS.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.to_str()?.strip_prefix(ENV_VARS_PREFIX)?.to_lowercase();
                Some((name, Value::String(value.to_string_lossy().into_owned())))
            })
            .collect()
    })
}

static GLOBALS: OnceLock<Map<String, Value>> = OnceLock::new();

/// Kestra's `globals` (`kestra.variables.globals`): variables every flow of this process
/// reads. Set once, before the first execution renders (`orchestrator --globals FILE`); a
/// second call is refused, as a server's configuration does not change while it runs.
pub fn set_globals(globals: Map<String, Value>) -> Result<(), &'static str> {
    GLOBALS
        .set(globals)
        .map_err(|_| "the globals of this process are already set")
}

fn globals() -> &'static Map<String, Value> {
    static NONE: OnceLock<Map<String, Value>> = OnceLock::new();
    GLOBALS.get().unwrap_or_else(|| NONE.get_or_init(Map::new))
}

fn taskrun_vars(tr: &TaskRun) -> Value {
    let mut vars = json!({
        "id": tr.id,
        "value": tr.value,
        "startDate": tr.state.start_date(),
        "attemptsCount": tr.attempt_count(),
        "parentId": tr.parent_task_run_id,
    });
    // Only a WaitFor's runs have one (Kestra's `RunVariables.of(TaskRun)` leaves it out
    // otherwise).
    if let (Some(iteration), Value::Object(m)) = (tr.iteration, &mut vars) {
        m.insert("iteration".into(), iteration.into());
    }
    vars
}

/// `outputs.<taskId>` for every task run with outputs, as Kestra's `Execution.outputs()`
/// builds it: nested under the values of its parents (outermost first) and its own, so a
/// task in a ForEach reads `outputs.t["1"].values`.
pub fn outputs(exec: &Execution) -> Map<String, Value> {
    let by_id: HashMap<&str, &TaskRun> = exec
        .task_run_list
        .iter()
        .map(|t| (t.id.as_str(), t))
        .collect();
    let mut out = Map::new();
    let mut values = Vec::new();
    for tr in &exec.task_run_list {
        let Some(o) = &tr.outputs else { continue };
        values.clear();
        values.extend(tr.value.as_deref());
        let mut cursor = tr.parent_task_run_id.as_deref();
        while let Some(parent) = cursor.and_then(|id| by_id.get(id)) {
            values.extend(parent.value.as_deref());
            cursor = parent.parent_task_run_id.as_deref();
        }
        let mut slot = out
            .entry(tr.task_id.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        for v in values.iter().rev() {
            slot = object(slot)
                .entry(v.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        let slot = object(slot);
        for (k, v) in o {
            slot.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The map in `slot`, which becomes one if it held anything else.
fn object(slot: &mut Value) -> &mut Map<String, Value> {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

/// The `labels` variable, as Kestra's `RunVariables` builds it: by key, the first of a key
/// kept; a system label `system.x` is `labels.system.x` (and, as Kestra's map keeps the
/// first entry of each key, only the first system label is there).
fn label_vars(labels: &[crate::model::Label]) -> Map<String, Value> {
    let mut vars = Map::new();
    for l in labels {
        let (key, value) = match l.key.strip_prefix(crate::tasks::SYSTEM_PREFIX) {
            Some(rest) => ("system".to_string(), json!({ rest: l.value.clone() })),
            None => (l.key.clone(), Value::String(l.value.clone())),
        };
        vars.entry(key).or_insert(value);
    }
    vars
}
