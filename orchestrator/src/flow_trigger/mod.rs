//! Kestra's `Flow` trigger (`io.kestra.plugin.core.trigger.Flow`, 58c1ca2d0): a flow that
//! starts when executions of other flows change state.
//!
//! When an execution's state changes, the executor asks [`triggered_executions`] which
//! deployed flows it starts, as Kestra's `JdbcExecutor#toExecution` asks
//! `FlowTriggerService#computeExecutionsFromFlowTriggers`: every enabled Flow trigger of
//! another flow that listens to the new state (`states`, the terminal ones by default) and
//! whose `conditions` hold. A multiple condition (`preconditions`, or a legacy
//! `MultipleCondition` among the conditions) keeps which of its named conditions executions
//! have met within its time window in `multipleconditions`; the trigger fires once all are
//! met, and the window is then reset (`resetOnSuccess`, the default). The executions it
//! starts are saved and queued in the transaction that saves the state change, so each
//! state change starts them exactly once, however many executors run.
//!
//! The execution a trigger starts is Kestra's `Flow#evaluate`: its `inputs` are rendered
//! against the triggering execution (its `outputs`, `labels`, `inputs`, `execution`, and
//! `trigger.outputs`, the flow outputs it ended with) and passed as they render, without the
//! input declarations' typing, as Kestra passes them; its trigger is the trigger's `id`,
//! Kestra's type name and `executionId`, `namespace`, `flowId`, `flowRevision` and `state`
//! of the triggering execution. A trigger whose inputs do not render starts nothing, with
//! a warning, as in Kestra.

mod condition;
mod window;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use condition::{Comparison, Condition, ExecutionFilter, Multiple, UpstreamFlow};
pub use window::TimeWindow;

use crate::expression::Renderer;
use crate::flow::Flow;
use crate::model::{Execution, ExecutionTrigger, StateType};
use crate::repository::{MultipleConditionWindow, Tx};
use crate::run_context::VarsBase;

/// Kestra's type name of the trigger, and the pre-0.17 alias it still maps.
pub const FLOW_TRIGGER_TYPES: [&str; 2] = [
    "io.kestra.plugin.core.trigger.Flow",
    "io.kestra.core.models.triggers.types.Flow",
];

/// A flow's `Flow` trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowTrigger {
    pub id: String,
    pub disabled: bool,
    /// The inputs of the execution it starts, rendered against the triggering one.
    pub inputs: Option<Map<String, Value>>,
    /// The states it listens to.
    pub states: Vec<StateType>,
    pub conditions: Vec<Condition>,
    pub preconditions: Option<Multiple>,
    /// Labels of the execution it starts (values rendered against the triggering one).
    pub labels: Vec<crate::model::Label>,
}

/// The trigger as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FlowTriggerSpec {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(rename = "id")]
    _id: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    inputs: Option<Map<String, Value>>,
    #[serde(default)]
    states: Option<Vec<StateType>>,
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(default)]
    preconditions: Option<PreconditionsSpec>,
    #[serde(default)]
    labels: Option<Value>,
}

/// `preconditions` as written: Kestra's `Flow.Preconditions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PreconditionsSpec {
    id: String,
    #[serde(default)]
    time_window: Option<window::TimeWindowSpec>,
    #[serde(default)]
    reset_on_success: Option<bool>,
    #[serde(default)]
    flows: Vec<UpstreamFlow>,
    #[serde(default, rename = "where")]
    filters: Vec<ExecutionFilter>,
}

impl PreconditionsSpec {
    /// Kestra's `Preconditions#getConditions`: `condition_N` for each upstream flow, then
    /// `condition_N_{id}` for each filter, numbered on from one.
    fn into_multiple(self) -> Result<Multiple, String> {
        condition::check_id(&self.id).map_err(|e| format!("`preconditions`: {e}"))?;
        let mut conditions = BTreeMap::new();
        let mut n = 0;
        for flow in self.flows {
            n += 1;
            conditions.insert(format!("condition_{n}"), Condition::Upstream(flow));
        }
        for filter in self.filters {
            n += 1;
            conditions.insert(
                format!("condition_{n}_{}", filter.id),
                Condition::Filter(filter),
            );
        }
        Ok(Multiple {
            id: self.id,
            window: self
                .time_window
                .map(TimeWindow::try_from)
                .transpose()
                .map_err(|e| format!("`preconditions`: {e}"))?
                .unwrap_or_default(),
            reset_on_success: self.reset_on_success.unwrap_or(true),
            conditions,
        })
    }
}

impl FlowTrigger {
    /// Reads the trigger; the error says which property is wrong. Expressions are checked
    /// for syntax here, so a flow that cannot run is refused when it is loaded.
    pub fn parse(id: String, t: &Value, renderer: &Renderer) -> Result<FlowTrigger, String> {
        let spec: FlowTriggerSpec = serde_json::from_value(t.clone()).map_err(|e| e.to_string())?;
        let _ = spec.description;
        let preconditions = spec
            .preconditions
            .map(PreconditionsSpec::into_multiple)
            .transpose()?;
        for (i, c) in spec.conditions.iter().enumerate() {
            c.check(renderer)
                .map_err(|e| format!("`conditions[{i}]`: {e}"))?;
        }
        if let Some(p) = &preconditions {
            for (name, c) in &p.conditions {
                c.check(renderer)
                    .map_err(|e| format!("`preconditions` {name}: {e}"))?;
            }
        }
        if let Some(inputs) = &spec.inputs {
            crate::flow::check_syntax(renderer, &Value::Object(inputs.clone()))
                .map_err(|e| format!("`inputs`: malformed expression: {e}"))?;
        }
        let labels =
            crate::flow::parse_labels(spec.labels).map_err(|e| format!("`labels`: {e}"))?;
        for label in &labels {
            renderer
                .check_syntax(&label.value)
                .map_err(|e| format!("label `{}`: malformed expression: {e}", label.key))?;
        }
        // Kestra's default: `State.Type.terminatedTypes()`.
        let states = spec
            .states
            .unwrap_or_else(|| StateType::TERMINATED.to_vec());
        Ok(FlowTrigger {
            id,
            disabled: spec.disabled,
            inputs: spec.inputs,
            states,
            conditions: spec.conditions,
            preconditions,
            labels,
        })
    }

    /// The multiple conditions whose windows are kept: legacy ones, then `preconditions`.
    fn multiples(&self) -> impl Iterator<Item = &Multiple> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::Multiple(m) => Some(m),
                _ => None,
            })
            .chain(self.preconditions.as_ref())
    }
}

/// A Flow trigger of a deployed flow that listens to the execution's new state.
struct Candidate<'a> {
    flow: &'a Arc<Flow>,
    trigger: &'a FlowTrigger,
    /// The variables of the triggered flow over the triggering execution (Kestra's
    /// `runContextFactory.of(flow, execution)`).
    vars: Value,
}

/// The executions the Flow triggers of `flows` start for `exec`'s new state (Kestra's
/// `FlowTriggerService#computeExecutionsFromFlowTriggers`), with the multiple-condition
/// windows they read updated, fulfilled ones reset and expired ones purged, in `tx`.
/// The executions are returned unsaved.
pub async fn triggered_executions(
    tx: &mut dyn Tx,
    flows: &[Arc<Flow>],
    exec: &Execution,
    renderer: &Renderer,
    now: Timestamp,
) -> crate::repository::Result<Vec<Execution>> {
    let warn = |flow: &Flow, trigger: &FlowTrigger, what: &str, e: &str| {
        tracing::warn!(
            "[namespace: {}] [flow: {}] [trigger: {}] {what}: {e}",
            flow.namespace,
            flow.id,
            trigger.id
        );
    };
    let test = |c: &Condition, flow: &Flow, t: &FlowTrigger, vars: &Value, w| {
        c.test(exec, vars, renderer, w).unwrap_or_else(|e| {
            warn(flow, t, "Evaluate Condition Failed with error", &e);
            false
        })
    };
    let mut candidates = Vec::new();
    for flow in flows {
        // Kestra's `FlowService#removeUnwanted`: no flow triggers itself.
        if flow.disabled || (flow.namespace == exec.namespace && flow.id == exec.flow_id) {
            continue;
        }
        for trigger in flow.flow_triggers() {
            if trigger.disabled || !trigger.states.contains(&exec.state.current) {
                continue;
            }
            let vars = VarsBase::new(flow, exec).for_execution();
            let simple = trigger
                .conditions
                .iter()
                .filter(|c| !matches!(c, Condition::Multiple(_)))
                .all(|c| test(c, flow, trigger, &vars, None));
            if simple {
                candidates.push(Candidate {
                    flow,
                    trigger,
                    vars,
                });
            }
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }

    // Each multiple condition's window, with this execution's results added; locked in key
    // order, so that two executors wait for each other rather than deadlock.
    let mut evaluated: Vec<(String, &Candidate, &Multiple)> = candidates
        .iter()
        .flat_map(|c| {
            c.trigger.multiples().map(move |m| {
                (
                    MultipleConditionWindow::key(&c.flow.namespace, &c.flow.id, &m.id),
                    c,
                    m,
                )
            })
        })
        .collect();
    evaluated.sort_by(|a, b| a.0.cmp(&b.0));
    let mut windows: HashMap<String, MultipleConditionWindow> = HashMap::new();
    for (key, c, m) in &evaluated {
        if windows.contains_key(key) {
            continue;
        }
        let (start, end) = m.window.bounds(now);
        let fresh = MultipleConditionWindow {
            namespace: c.flow.namespace.clone(),
            flow_id: c.flow.id.clone(),
            condition_id: m.id.clone(),
            start,
            end,
            results: BTreeMap::new(),
        };
        let mut window = tx.multiple_condition_lock(&fresh).await?;
        if !window.is_valid(now) {
            window = fresh;
        }
        for (name, condition) in &m.conditions {
            if test(condition, c.flow, c.trigger, &c.vars, None) {
                window.results.insert(name.clone(), true);
            }
        }
        if !window.results.is_empty() {
            tx.multiple_condition_put(&window).await?;
        }
        windows.insert(key.clone(), window);
    }

    let mut started = Vec::new();
    for c in &candidates {
        let window_of = |m: &Multiple| {
            windows
                .get(&MultipleConditionWindow::key(
                    &c.flow.namespace,
                    &c.flow.id,
                    &m.id,
                ))
                .map(|w| &w.results)
        };
        let conditions = c.trigger.conditions.iter().all(|cond| {
            let w = match cond {
                Condition::Multiple(m) => window_of(m),
                _ => None,
            };
            test(cond, c.flow, c.trigger, &c.vars, w)
        });
        let preconditions = c
            .trigger
            .preconditions
            .as_ref()
            .is_none_or(|p| p.met(window_of(p)));
        if conditions && preconditions {
            match triggered(c, exec, renderer) {
                Ok(started_exec) => started.push(started_exec),
                Err(e) => warn(
                    c.flow,
                    c.trigger,
                    "Failed to trigger the flow, invalid inputs",
                    &e,
                ),
            }
        }
    }

    // Purge fulfilled windows (unless `resetOnSuccess: false`), then expired ones.
    for (key, _, m) in &evaluated {
        let fulfilled = m.met(windows.get(key).map(|w| &w.results));
        if m.reset_on_success && fulfilled {
            tx.multiple_condition_delete(key).await?;
            windows.remove(key);
        }
    }
    tx.multiple_conditions_purge(now.as_millisecond()).await?;
    Ok(started)
}

/// The execution a matching trigger starts: Kestra's `Flow#evaluate`.
fn triggered(c: &Candidate, exec: &Execution, renderer: &Renderer) -> Result<Execution, String> {
    let mut vars = c.vars.clone();
    if let Some(outputs) = exec.outputs.as_ref().filter(|o| !o.is_empty())
        && let Value::Object(vars) = &mut vars
    {
        let trigger = vars
            .entry("trigger")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(trigger) = trigger {
            trigger.insert("outputs".into(), Value::Object(outputs.clone()));
        }
    }
    let inputs = match &c.trigger.inputs {
        None => Map::new(),
        Some(inputs) => match renderer.render_value(&Value::Object(inputs.clone()), &vars) {
            Ok(Value::Object(m)) => m,
            Ok(_) => Map::new(),
            Err(e) => return Err(e.to_string()),
        },
    };
    let mut labels = Vec::with_capacity(c.trigger.labels.len());
    for label in &c.trigger.labels {
        labels.push(crate::model::Label {
            key: label.key.clone(),
            value: renderer
                .render(&label.value, &vars)
                .map_err(|e| format!("label `{}`: {e}", label.key))?,
        });
    }
    let mut variables = Map::new();
    variables.insert("executionId".into(), exec.id.clone().into());
    variables.insert("namespace".into(), exec.namespace.clone().into());
    variables.insert("flowId".into(), exec.flow_id.clone().into());
    variables.insert("flowRevision".into(), exec.flow_revision.into());
    variables.insert("state".into(), exec.state.current.as_str().into());
    let trigger = ExecutionTrigger {
        id: c.trigger.id.clone(),
        kind: FLOW_TRIGGER_TYPES[0].into(),
        variables,
    };
    Ok(crate::service::new_execution(
        c.flow,
        inputs,
        labels,
        Some(trigger),
    ))
}
