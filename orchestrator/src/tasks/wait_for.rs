use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Flowable, Role, TaskType};
use crate::executor::{FlowableRun, Progress, Walker};
use crate::flow::{FlowError, Task, TaskProps, task_duration as parse_duration};
use crate::model::{Execution, Level, State, StateType};

/// `io.kestra.plugin.core.flow.WaitFor`: runs its `tasks` in sequence, round after round,
/// until `condition` renders true, `interval` apart, for at most `maxIterations` rounds and
/// `maxDuration`; reaching either ends it SUCCESS, or FAILED with `failOnMaxReached`.
///
/// Follows Kestra 58c1ca2d0's `WaitFor` with `ExecutorService#handleChildWorkerTaskResult`
/// (once every child of a round has succeeded, `iterationCount` grows by one and the
/// condition is rendered; a false one pauses the task run, `CONTINUE_FLOWABLE`) and
/// `ExecutionService#retryWaitFor` ([`next_round`]: the task run starts again CREATED, its
/// `iteration` one more, its children of the last round removed). A round whose children do
/// not all succeed ends the loop in their state. The task run's `iterationCount` output is
/// 1 during the first round; each child's `taskrun.iteration` is its round.
#[derive(Debug, Clone)]
pub struct WaitFor {
    pub tasks: Vec<Task>,
    /// Rendered after each round; true ends the loop.
    pub condition: String,
    pub fail_on_max_reached: bool,
    pub check_frequency: CheckFrequency,
    /// Run once the children have failed; the task then fails.
    pub errors: Vec<Task>,
}

/// Kestra's `WaitFor.CheckFrequency`, with its defaults for what is left unset.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFrequency {
    pub max_iterations: Option<u32>,
    pub max_duration: Option<Duration>,
    pub interval: Duration,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckFrequencyProps {
    #[serde(default = "max_iterations")]
    max_iterations: Option<u32>,
    #[serde(default = "max_duration")]
    max_duration: Option<String>,
    #[serde(default = "interval")]
    interval: Option<String>,
}

fn max_iterations() -> Option<u32> {
    Some(100)
}

fn max_duration() -> Option<String> {
    Some("PT1H".into())
}

fn interval() -> Option<String> {
    Some("PT1S".into())
}

impl Default for CheckFrequencyProps {
    fn default() -> Self {
        CheckFrequencyProps {
            max_iterations: max_iterations(),
            max_duration: max_duration(),
            interval: interval(),
        }
    }
}

impl TaskType for WaitFor {
    const TYPES: &'static [&'static str] = &["io.kestra.plugin.core.flow.WaitFor"];

    fn parse(mut props: TaskProps<'_, '_>) -> Result<Self, FlowError> {
        let tasks = props.tasks("tasks", true)?;
        let condition = props.required_string("condition")?;
        let fail_on_max_reached = props.take::<Option<bool>>("failOnMaxReached")?;
        let frequency = props
            .take::<Option<CheckFrequencyProps>>("checkFrequency")?
            .unwrap_or_default();
        let duration = |key: &str, text: Option<String>| {
            text.map(|t| {
                parse_duration(&t)
                    .map_err(|e| props.error(format!("property `checkFrequency.{key}`: {e}")))
            })
            .transpose()
        };
        let max_duration = duration("maxDuration", frequency.max_duration)?;
        let interval = duration("interval", frequency.interval)?.unwrap_or(Duration::ZERO);
        let errors = props.tasks("errors", false)?;
        props.finish()?;
        Ok(WaitFor {
            tasks,
            condition,
            fail_on_max_reached: fail_on_max_reached.unwrap_or(false),
            check_frequency: CheckFrequency {
                max_iterations: frequency.max_iterations,
                max_duration,
                interval,
            },
            errors,
        })
    }

    fn role(&self) -> Role<'_> {
        Role::Flowable(self)
    }
}

/// The `iterationCount` output of a WaitFor task run (0 when it has none).
fn iteration_count(outputs: Option<&Map<String, Value>>) -> i64 {
    outputs
        .and_then(|o| o.get("iterationCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

impl Flowable for WaitFor {
    fn errors(&self) -> &[Task] {
        &self.errors
    }

    fn children(&self) -> Vec<&[Task]> {
        vec![&self.tasks, &self.errors]
    }

    fn resolve<'a>(&'a self, walker: &mut Walker<'a>, run: &FlowableRun<'_>) -> Progress {
        let own = walker.task_run(run);
        if own.state.current == StateType::Paused {
            return Progress::Running;
        }
        let round = own.iteration.unwrap_or(1);
        if own.outputs.is_none() {
            // `WaitFor#outputs(RunContext)`, saved as the task run is created.
            walker.set_outputs(run, output(1));
        }
        let progress = walker.sequential(&self.tasks, Some(run.id), None);
        walker.set_children_iteration(run, round);
        let Progress::Done(state) = progress else {
            return progress;
        };
        // `WaitFor#childTaskRunExecuted`: as many successful children as `tasks`.
        let succeeded = walker
            .children_of(run)
            .filter(|t| t.state.current == StateType::Success)
            .count();
        if succeeded != self.tasks.len() {
            return walker.or_errors(progress, &self.errors, run);
        }
        let count = iteration_count(walker.task_run(run).outputs.as_ref()) + 1;
        walker.set_outputs(run, output(count));
        let reached = self.reached(walker, run, count);
        if reached.is_none() {
            match walker.eval(run, |r, vars| r.render_condition(&self.condition, vars)) {
                Err(()) => return Progress::Done(StateType::Failed),
                Ok(false) => {
                    walker.pause_round(run, self.check_frequency.interval);
                    return Progress::Running;
                }
                Ok(true) => {}
            }
        }
        match reached {
            Some(why) => {
                walker.log(run, Level::Warn, why.into());
                if self.fail_on_max_reached {
                    Progress::Done(StateType::Failed)
                } else {
                    Progress::Done(state)
                }
            }
            None => Progress::Done(state),
        }
    }
}

impl WaitFor {
    /// `WaitFor#reachedMaximums`: more rounds than `maxIterations`, or `maxDuration` past
    /// since the task run was created.
    fn reached(&self, walker: &Walker<'_>, run: &FlowableRun<'_>, count: i64) -> Option<&str> {
        let limits = &self.check_frequency;
        if limits
            .max_iterations
            .is_some_and(|max| count > i64::from(max))
        {
            return Some("Max iterations reached");
        }
        let created = walker.task_run(run).state.histories.first().map(|h| h.date);
        if let (Some(max), Some(created)) = (limits.max_duration, created) {
            let max = jiff::SignedDuration::try_from(max).unwrap_or(jiff::SignedDuration::MAX);
            if created.checked_add(max).is_ok_and(|end| end < walker.now()) {
                return Some("Max duration reached");
            }
        }
        None
    }
}

fn output(count: i64) -> Map<String, Value> {
    let Value::Object(map) = json!({ "iterationCount": count }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// Starts a paused WaitFor's next round, as Kestra's `ExecutionService#retryWaitFor` does:
/// its task run goes back to CREATED (keeping only its first history), without attempts,
/// its `iteration` one more; the children of the last round are removed; the execution
/// runs again. Returns false when the task run is not in the execution.
pub fn next_round(exec: &mut Execution, task_run_id: &str) -> bool {
    let Some(tr) = exec.task_run_mut(task_run_id) else {
        return false;
    };
    let first = tr.state.histories.first().cloned();
    tr.state = State {
        current: StateType::Created,
        histories: first.into_iter().collect(),
    };
    tr.attempts = None;
    tr.iteration = Some(tr.iteration.unwrap_or(1) + 1);
    exec.task_run_list
        .retain(|t| t.parent_task_run_id.as_deref() != Some(task_run_id));
    exec.state
        .transition(StateType::Running, crate::model::now());
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::flow::{TaskKind, parse_flow};

    fn wait_for(props: &str) -> Result<crate::flow::Flow, crate::flow::FlowError> {
        parse_flow(
            &format!(
                "id: f\nnamespace: n\ntasks:\n  - id: w\n    type: io.kestra.plugin.core.flow.WaitFor\n{props}"
            ),
            "f.yaml",
        )
    }

    const CHILD: &str = "    tasks:\n      - id: r\n        type: io.kestra.plugin.core.debug.Return\n        format: x\n";

    #[test]
    fn check_frequency_defaults_to_kestras() {
        let f = wait_for(&format!("    condition: \"{{{{ true }}}}\"\n{CHILD}")).unwrap();
        let TaskKind::WaitFor(w) = &f.tasks[0].kind else {
            panic!("not a WaitFor")
        };
        assert_eq!(w.check_frequency.max_iterations, Some(100));
        assert_eq!(
            w.check_frequency.max_duration,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(w.check_frequency.interval, Duration::from_secs(1));
        assert!(!w.fail_on_max_reached);
        let f = wait_for(&format!(
            "    condition: x\n    checkFrequency:\n      interval: PT0.2S\n{CHILD}"
        ))
        .unwrap();
        let TaskKind::WaitFor(w) = &f.tasks[0].kind else {
            panic!("not a WaitFor")
        };
        assert_eq!(w.check_frequency.max_iterations, Some(100));
        assert_eq!(w.check_frequency.interval, Duration::from_millis(200));
    }

    #[test]
    fn bad_properties_fail_the_flow_at_load() {
        let e = wait_for(CHILD).unwrap_err().to_string();
        assert!(
            e.contains("f.yaml") && e.contains("flow `n.f`") && e.contains("task `w`"),
            "{e}"
        );
        assert!(e.contains("missing required property `condition`"), "{e}");
        let e = wait_for("    condition: x\n").unwrap_err().to_string();
        assert!(e.contains("missing required property `tasks`"), "{e}");
        let e = wait_for(&format!(
            "    condition: x\n    checkFrequency:\n      interval: soon\n{CHILD}"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`checkFrequency.interval`") && e.contains("soon"),
            "{e}"
        );
        let e = wait_for(&format!(
            "    condition: x\n    checkFrequency:\n      maxIterations: -1\n{CHILD}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("`checkFrequency`") && e.contains("-1"), "{e}");
        let e = wait_for(&format!(
            "    condition: x\n    checkFrequency:\n      every: PT1S\n{CHILD}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("`checkFrequency`") && e.contains("every"), "{e}");
    }
}
