//! A flow's `sla` (Kestra 0.20): `MAX_DURATION`, checked when the execution has run for its
//! duration, and `EXECUTION_ASSERTION`, checked on every executor pass over a running
//! execution. Follows Kestra 58c1ca2d0's `SLA`, `MaxDurationSLA`, `ExecutionAssertionSLA`,
//! `SLAService` and `ExecutorService#processViolation`.

use std::time::Duration;

use serde_json::Value;

use super::parse::parse_labels;
use super::task::parse_duration;
use crate::expression::Renderer;
use crate::model::{Execution, Label, Level, StateType};

/// One entry of a flow's `sla`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sla {
    pub id: String,
    pub kind: SlaKind,
    pub behavior: SlaBehavior,
    /// Labels a violation adds to the execution.
    pub labels: Vec<Label>,
}

/// What an SLA checks.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaKind {
    /// The execution must end within `duration` of its start (Kestra's
    /// `ExecutionMonitoringSLA`: watched from a monitor due at the deadline).
    MaxDuration(Duration),
    /// The expression must render truthy on every pass (Kestra's `ExecutionChangedSLA`).
    ExecutionAssertion(String),
}

/// Kestra's `SLA.Behavior`: what a violation does to the execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SlaBehavior {
    Fail,
    Cancel,
    None,
}

/// A violated SLA, and why (Kestra's `Violation`).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation<'a> {
    pub sla: &'a Sla,
    pub reason: String,
}

impl Sla {
    /// Reads one `sla` entry; `Err` says what is wrong with it.
    pub(crate) fn parse(v: Value, renderer: &Renderer) -> Result<Sla, String> {
        let Value::Object(mut m) = v else {
            return Err("an `sla` entry must be a map".into());
        };
        let id = match m.remove("id") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err("an `sla` entry needs an `id`".into()),
        };
        let err = |msg: String| format!("sla `{id}`: {msg}");
        let behavior = serde_json::from_value(m.remove("behavior").unwrap_or(Value::Null))
            .map_err(|_| err("`behavior` must be FAIL, CANCEL or NONE".into()))?;
        let labels = parse_labels(m.remove("labels")).map_err(&err)?;
        if let Some(l) = labels
            .iter()
            .find(|l| l.key.starts_with(crate::tasks::SYSTEM_PREFIX))
        {
            return Err(err(format!("system labels cannot be set: `{}`", l.key)));
        }
        let kind = match m.remove("type").as_ref().and_then(Value::as_str) {
            Some("MAX_DURATION") => {
                let Some(Value::String(d)) = m.remove("duration") else {
                    return Err(err("MAX_DURATION needs a `duration`".into()));
                };
                SlaKind::MaxDuration(
                    parse_duration(&d).map_err(|e| err(format!("`duration`: {e}")))?,
                )
            }
            Some("EXECUTION_ASSERTION") => {
                let Some(Value::String(a)) = m.remove("assert") else {
                    return Err(err(
                        "EXECUTION_ASSERTION needs an `assert` expression".into()
                    ));
                };
                renderer
                    .check_syntax(&a)
                    .map_err(|e| err(format!("`assert`: malformed expression: {e}")))?;
                SlaKind::ExecutionAssertion(a)
            }
            _ => {
                return Err(err(
                    "`type` must be MAX_DURATION or EXECUTION_ASSERTION".into()
                ));
            }
        };
        if let Some(k) = m.keys().next() {
            return Err(err(format!("unknown property `{k}`")));
        }
        Ok(Sla {
            id,
            kind,
            behavior,
            labels,
        })
    }

    /// `MAX_DURATION`'s check at its deadline (`MaxDurationSLA#evaluate`).
    pub fn exceeded(&self, exec: &Execution, now: jiff::Timestamp) -> Option<Violation<'_>> {
        let SlaKind::MaxDuration(max) = self.kind else {
            return None;
        };
        let ran = now.duration_since(exec.state.start_date());
        let max_signed = jiff::SignedDuration::try_from(max).ok()?;
        (ran > max_signed).then(|| Violation {
            sla: self,
            reason: format!(
                "execution duration of {} exceed the maximum duration of {}.",
                crate::model::iso_duration(ran),
                crate::model::iso_duration(max_signed)
            ),
        })
    }
}

/// Evaluates the `EXECUTION_ASSERTION` SLAs against the execution, as
/// `SLAService#evaluateExecutionChangedSLA` does: each violation is logged at WARN, an SLA
/// that cannot be rendered is ignored and logged at ERROR.
pub fn violated<'a>(
    slas: &'a [Sla],
    renderer: &Renderer,
    vars: &Value,
    log: &mut dyn FnMut(Level, String),
) -> Vec<Violation<'a>> {
    let mut found = Vec::new();
    for sla in slas {
        let SlaKind::ExecutionAssertion(assert) = &sla.kind else {
            continue;
        };
        match renderer.render_condition(assert, vars) {
            Ok(true) => {}
            Ok(false) => {
                let v = Violation {
                    sla,
                    reason: format!("assertion is false: {assert}."),
                };
                log(
                    Level::Warn,
                    format!("SLA '{}' violated: {}", sla.id, v.reason),
                );
                found.push(v);
            }
            Err(e) => log(
                Level::Error,
                format!("Ignoring SLA '{}' because of the error: {e}", sla.id),
            ),
        }
    }
    found
}

/// Applies a violation to the execution, as `ExecutorService#processViolation` does: FAIL
/// and CANCEL end the last task run not ended and the execution in that state, NONE leaves
/// them; the SLA's labels are added unless the execution has them all. Returns whether
/// the execution changed.
pub fn apply(
    violation: &Violation<'_>,
    exec: &mut Execution,
    log: &mut dyn FnMut(Level, String),
) -> bool {
    let sla = violation.sla;
    let mut changed = false;
    let state = match sla.behavior {
        SlaBehavior::Fail => {
            log(
                Level::Error,
                format!(
                    "Execution failed due to SLA '{}' violated: {}",
                    sla.id, violation.reason
                ),
            );
            Some(StateType::Failed)
        }
        SlaBehavior::Cancel => Some(StateType::Cancelled),
        SlaBehavior::None => None,
    };
    if let Some(state) = state {
        let now = crate::model::now();
        if let Some(tr) = exec
            .task_run_list
            .iter_mut()
            .rev()
            .find(|t| !t.state.is_terminal())
        {
            tr.state.transition(state, now);
        }
        exec.state.transition(state, now);
        changed = true;
    }
    if !sla.labels.is_empty() && !sla.labels.iter().all(|l| exec.labels.contains(l)) {
        exec.labels.extend(sla.labels.iter().cloned());
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Sla, String> {
        Sla::parse(serde_yaml_ng::from_str(yaml).unwrap(), &Renderer::new())
    }

    #[test]
    fn both_types_parse_and_bad_entries_say_why() {
        let s = parse("id: d\ntype: MAX_DURATION\nbehavior: FAIL\nduration: PT10S\n").unwrap();
        assert_eq!(s.kind, SlaKind::MaxDuration(Duration::from_secs(10)));
        let s = parse("id: a\ntype: EXECUTION_ASSERTION\nbehavior: NONE\nassert: \"{{ true }}\"\nlabels:\n  sla: violated\n").unwrap();
        assert_eq!(s.behavior, SlaBehavior::None);
        assert_eq!(s.labels.len(), 1);
        for (yaml, expected) in [
            (
                "id: d\ntype: MAX_DURATION\nbehavior: FAIL\nduration: soon\n",
                "sla `d`: `duration`",
            ),
            (
                "id: d\ntype: MAX_DURATION\nbehavior: FAIL\n",
                "needs a `duration`",
            ),
            ("id: d\ntype: SOMETIMES\nbehavior: FAIL\n", "`type` must be"),
            (
                "id: d\ntype: MAX_DURATION\nbehavior: SHOUT\nduration: PT1S\n",
                "`behavior` must be",
            ),
            (
                "id: a\ntype: EXECUTION_ASSERTION\nbehavior: FAIL\nassert: \"{{ (\"\n",
                "malformed",
            ),
            (
                "id: a\ntype: EXECUTION_ASSERTION\nbehavior: NONE\nassert: x\nlabels:\n  system.x: y\n",
                "system labels",
            ),
            (
                "id: d\ntype: MAX_DURATION\nbehavior: FAIL\nduration: PT1S\ncolour: red\n",
                "unknown property `colour`",
            ),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(expected), "{yaml}: {e}");
        }
    }
}
