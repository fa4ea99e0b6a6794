//! Decides what runs next: Kestra's `FlowableUtils` and the executor's task-run creation,
//! as a pure function of the flow and the execution.
//!
//! Flowable tasks are re-evaluated on every pass (as Kestra calls `childTasks` each time);
//! their expressions are deterministic because the outputs they read never change once
//! produced.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::expression::Renderer;
use crate::flow::{Flow, Task};
use crate::model::{Execution, Level, LogEntry, State, StateType, TaskRun, TaskRunAttempt, new_id};
use crate::repository::ExecutionDelay;
use crate::run_context::VarsBase;
use crate::tasks::{ExecutionUpdatable, Role};

/// What one pass decided.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Indexes in `taskRunList` of runnable task runs to send to workers.
    pub dispatch: Vec<usize>,
    /// Errors raised while evaluating flowable tasks, as task log lines.
    pub logs: Vec<LogEntry>,
    /// The execution's final state, once every branch is done.
    pub done: Option<StateType>,
    /// Task runs this pass paused (a `Pause`): the execution pauses.
    pub paused: bool,
    /// When to move those task runs on, for the ones with a `delay` or a `timeout`.
    pub delays: Vec<ExecutionDelay>,
    /// Indexes in `taskRunList` of Subflow task runs whose execution the executor starts.
    pub subflows: Vec<usize>,
    /// Indexes in `taskRunList` of Resume task runs, whose execution the executor resumes.
    pub resumes: Vec<usize>,
}

/// Whether a task run waits to be started: CREATED, or RESTARTED by a restart (Kestra's
/// `State.Type#isCreated`).
fn waiting(state: StateType) -> bool {
    matches!(state, StateType::Created | StateType::Restarted)
}

/// Whether a task run, or a list of them, is done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Progress {
    Running,
    Done(StateType),
}

type Key = (String, Option<String>, Option<String>);

/// The task run of a flowable being resolved.
pub(crate) struct FlowableRun<'a> {
    /// Its index in `taskRunList`.
    index: usize,
    pub task: &'a Task,
    /// The task run's id: its children's parent.
    pub id: &'a str,
}

/// One pass over a flow against an execution (see [`resolve`]); flowable tasks drive it
/// through [`crate::tasks::Flowable::resolve`].
pub(crate) struct Walker<'a> {
    exec: &'a mut Execution,
    renderer: &'a Renderer,
    vars: VarsBase,
    now: Timestamp,
    index: HashMap<Key, usize>,
    out: Resolution,
}

/// Walks the flow against the execution, creating the task runs that can start now.
pub fn resolve(flow: &Flow, exec: &mut Execution, renderer: &Renderer) -> Resolution {
    let index = exec
        .task_run_list
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                (
                    t.task_id.clone(),
                    t.parent_task_run_id.clone(),
                    t.value.clone(),
                ),
                i,
            )
        })
        .collect();
    let vars = VarsBase::new(flow, exec);
    let mut w = Walker {
        exec,
        renderer,
        vars,
        now: crate::model::now(),
        index,
        out: Resolution::default(),
    };
    let main = w.sequential(&flow.tasks, None, None);
    w.out.done = match main {
        Progress::Running => None,
        Progress::Done(s) if s.is_failed() && !flow.errors.is_empty() => {
            match w.sequential(&flow.errors, None, None) {
                Progress::Running => None,
                Progress::Done(_) => Some(StateType::Failed),
            }
        }
        Progress::Done(s) if s.is_failed() => Some(StateType::Failed),
        Progress::Done(StateType::Warning) => Some(StateType::Warning),
        Progress::Done(_) => Some(StateType::Success),
    };
    w.out
}

impl<'a> Walker<'a> {
    fn find(&self, task: &Task, parent: Option<&str>, value: Option<&str>) -> Option<usize> {
        self.index
            .get(&(
                task.id.clone(),
                parent.map(str::to_string),
                value.map(str::to_string),
            ))
            .copied()
    }

    fn create(&mut self, task: &Task, parent: Option<&str>, value: Option<&str>) -> usize {
        let tr = TaskRun {
            id: new_id(),
            execution_id: self.exec.id.clone(),
            namespace: self.exec.namespace.clone(),
            flow_id: self.exec.flow_id.clone(),
            task_id: task.id.clone(),
            parent_task_run_id: parent.map(str::to_string),
            value: value.map(str::to_string),
            attempts: None,
            outputs: None,
            state: State::new(self.now),
            iteration: None,
        };
        let i = self.exec.task_run_list.len();
        self.index.insert(
            (
                task.id.clone(),
                tr.parent_task_run_id.clone(),
                tr.value.clone(),
            ),
            i,
        );
        self.exec.task_run_list.push(tr);
        i
    }

    fn find_or_create(&mut self, task: &Task, parent: Option<&str>, value: Option<&str>) -> usize {
        match self.find(task, parent, value) {
            Some(i) => i,
            None => self.create(task, parent, value),
        }
    }

    pub(crate) fn sequential(
        &mut self,
        tasks: &'a [Task],
        parent: Option<&str>,
        value: Option<&str>,
    ) -> Progress {
        self.sequential_of(tasks.iter().map(|t| (t, value)), parent)
    }

    /// Task runs one after the other, each a task with its value (an `EachSequential` runs
    /// every task once per value in one sequence).
    pub(crate) fn sequential_of<'v>(
        &mut self,
        items: impl Iterator<Item = (&'a Task, Option<&'v str>)>,
        parent: Option<&str>,
    ) -> Progress {
        let mut state = StateType::Success;
        for (task, value) in items.filter(|(t, _)| !t.disabled) {
            let i = self.find_or_create(task, parent, value);
            match self.advance(i, task) {
                Progress::Running => return Progress::Running,
                Progress::Done(s) if s.is_failed() => return Progress::Done(s),
                Progress::Done(s) => state = state.worst(s),
            }
        }
        Progress::Done(state)
    }

    /// Children started together, at most `limit` unfinished at once (0: no limit). After a
    /// failure no new child starts; the running ones finish first.
    pub(crate) fn parallel(
        &mut self,
        tasks: &'a [Task],
        parent: Option<&str>,
        value: Option<&str>,
        limit: u32,
    ) -> Progress {
        self.parallel_of(tasks.iter().map(|t| (t, value)), parent, limit)
    }

    /// [`Walker::parallel`] over task runs that each carry their own value (an
    /// `EachParallel` starts every task of every value together).
    pub(crate) fn parallel_of<'v>(
        &mut self,
        items: impl Iterator<Item = (&'a Task, Option<&'v str>)>,
        parent: Option<&str>,
        limit: u32,
    ) -> Progress {
        self.parallel_when(items, parent, limit, |_, _| true)
    }

    /// [`Walker::parallel_of`] where a child starts only once `ready` says so (a Dag's
    /// `dependsOn`, Kestra's `FlowableUtils.resolveDagNexts`). A child never ready while
    /// nothing else runs is left unstarted, and the list is done without it.
    pub(crate) fn parallel_when<'v>(
        &mut self,
        items: impl Iterator<Item = (&'a Task, Option<&'v str>)>,
        parent: Option<&str>,
        limit: u32,
        ready: impl Fn(&Self, &Task) -> bool,
    ) -> Progress {
        let mut state = StateType::Success;
        let mut active = 0u32;
        let mut waiting = Vec::new();
        for (task, value) in items.filter(|(t, _)| !t.disabled) {
            match self.find(task, parent, value) {
                Some(i) => match self.advance(i, task) {
                    Progress::Running => active += 1,
                    Progress::Done(s) => state = state.worst(s),
                },
                None => waiting.push((task, value)),
            }
        }
        let mut blocked = false;
        // A child that ends as it starts (an executor-run task) can make a later-listed one
        // ready, or an earlier-listed one: go round until a round starts nothing.
        loop {
            let mut started = false;
            let mut unready = Vec::new();
            for (task, value) in waiting {
                if state.is_failed() {
                    break;
                }
                if limit != 0 && active >= limit {
                    blocked = true;
                    break;
                }
                if !ready(self, task) {
                    unready.push((task, value));
                    continue;
                }
                started = true;
                let i = self.create(task, parent, value);
                match self.advance(i, task) {
                    Progress::Running => active += 1,
                    Progress::Done(s) => state = state.worst(s),
                }
            }
            if !started || unready.is_empty() || blocked {
                break;
            }
            waiting = unready;
        }
        if active > 0 || blocked {
            Progress::Running
        } else {
            Progress::Done(state)
        }
    }

    pub(crate) fn for_each(
        &mut self,
        tasks: &'a [Task],
        parent: &str,
        values: &[String],
        limit: u32,
    ) -> Progress {
        let Some(first) = tasks.iter().find(|t| !t.disabled) else {
            return Progress::Done(StateType::Success);
        };
        let mut state = StateType::Success;
        let mut active = 0u32;
        let mut waiting = Vec::new();
        for v in values {
            if self.find(first, Some(parent), Some(v)).is_some() {
                match self.sequential(tasks, Some(parent), Some(v)) {
                    Progress::Running => active += 1,
                    Progress::Done(s) => state = state.worst(s),
                }
            } else {
                waiting.push(v);
            }
        }
        let mut blocked = false;
        for v in waiting {
            if state.is_failed() {
                break;
            }
            if limit != 0 && active >= limit {
                blocked = true;
                break;
            }
            match self.sequential(tasks, Some(parent), Some(v)) {
                Progress::Running => active += 1,
                Progress::Done(s) => state = state.worst(s),
            }
        }
        if active > 0 || blocked {
            Progress::Running
        } else {
            Progress::Done(state)
        }
    }

    /// Whether every task in `ids` has a task run under `parent` that has ended.
    pub(crate) fn ended(&self, ids: &[String], parent: &str) -> bool {
        ids.iter().all(|id| {
            self.index
                .get(&(id.clone(), Some(parent.to_string()), None))
                .is_some_and(|&i| self.exec.task_run_list[i].state.current.is_terminal())
        })
    }

    fn transition(&mut self, i: usize, to: StateType) {
        self.exec.task_run_list[i].state.transition(to, self.now);
    }

    /// Moves one task run forward and reports whether it is done.
    fn advance(&mut self, i: usize, task: &'a Task) -> Progress {
        let current = self.exec.task_run_list[i].state.current;
        if current.is_terminal() {
            let allowed = self.allowed(current, task);
            if allowed != current {
                self.transition(i, allowed);
            }
            return Progress::Done(allowed);
        }
        if waiting(current)
            && let Some(condition) = &task.run_if
        {
            // Kestra's executor renders `runIf` as it sends the task run (JdbcExecutor, 0.20).
            let ran = self.eval_at(i, task, |r, vars| r.render_condition(condition, vars));
            let ended = match ran {
                Ok(true) => None,
                Ok(false) => Some(StateType::Skipped),
                Err(()) => Some(StateType::Failed),
            };
            if let Some(state) = ended {
                self.transition(i, state);
                return self.advance(i, task);
            }
        }
        match task.kind.role() {
            Role::Updating(updating) => return self.update(i, task, updating),
            Role::Executable(_) | Role::Iterative(_) => {
                if waiting(current) {
                    self.transition(i, StateType::Running);
                    self.out.subflows.push(i);
                }
                return Progress::Running;
            }
            Role::Resuming(_) => {
                if waiting(current) {
                    self.transition(i, StateType::Running);
                    self.out.resumes.push(i);
                }
                return Progress::Running;
            }
            Role::Runnable(_) | Role::Flowable(_) => {}
        }
        let Some(flowable) = task.flowable() else {
            if waiting(current) {
                self.transition(i, StateType::Running);
                self.out.dispatch.push(i);
            }
            return Progress::Running;
        };
        if waiting(current) {
            self.transition(i, StateType::Running);
        }
        let id = self.exec.task_run_list[i].id.clone();
        let run = FlowableRun {
            index: i,
            task,
            id: &id,
        };
        match flowable.resolve(self, &run) {
            Progress::Running => Progress::Running,
            Progress::Done(s) => {
                let allowed = self.allowed(s, task);
                if allowed != s && s.is_failed() {
                    // The history keeps the failure the task allowed.
                    self.transition(i, StateType::Failed);
                }
                self.transition(i, allowed);
                Progress::Done(allowed)
            }
        }
    }

    /// Runs a task that changes the execution, where a runnable would be sent to a worker
    /// (Kestra's `ExecutorService#handleExecutionUpdatingTask`): one attempt, SUCCESS, or
    /// FAILED with the error in the task run's logs.
    fn update(&mut self, i: usize, task: &'a Task, updating: &dyn ExecutionUpdatable) -> Progress {
        self.transition(i, StateType::Running);
        let vars = self
            .vars
            .for_task_run(self.exec, &self.exec.task_run_list[i], task);
        let state = match updating.update(self.exec, self.renderer, &vars) {
            Ok(()) => StateType::Success,
            Err(message) => {
                self.log_at(i, Level::Error, message);
                StateType::Failed
            }
        };
        let tr = &mut self.exec.task_run_list[i];
        let mut attempt = State::new(self.now);
        attempt.transition(state, self.now);
        tr.attempts = Some(vec![TaskRunAttempt {
            state: attempt,
            log_file: None,
        }]);
        self.transition(i, state);
        self.advance(i, task)
    }

    /// Kestra's `allowFailure` and `allowWarning`: a failure the task allows becomes a
    /// warning, and a warning it allows a success.
    fn allowed(&self, state: StateType, task: &Task) -> StateType {
        match state {
            s if s.is_failed() && task.allow_failure && task.allow_warning => StateType::Success,
            s if s.is_failed() && task.allow_failure => StateType::Warning,
            StateType::Warning if task.allow_warning => StateType::Success,
            s => s,
        }
    }

    /// The state of a flowable's own task run.
    pub(crate) fn state(&self, run: &FlowableRun<'_>) -> &State {
        &self.exec.task_run_list[run.index].state
    }

    /// Pauses a flowable's task run (a `Pause`), and with it the execution; `after` is how
    /// long until it moves on by itself, and to which state.
    pub(crate) fn pause(
        &mut self,
        run: &FlowableRun<'_>,
        after: Option<(std::time::Duration, StateType)>,
    ) {
        self.transition(run.index, StateType::Paused);
        self.out.paused = true;
        if let Some((after, state)) = after {
            let at = self.after(after);
            self.out
                .delays
                .push(ExecutionDelay::resume(&self.exec.id, run.id, at, state));
        }
    }

    /// Pauses a flowable's task run until its next round, `after` from now (a `WaitFor`'s
    /// `interval`; Kestra's `ExecutionService#pauseFlowable` and `CONTINUE_FLOWABLE`).
    pub(crate) fn pause_round(&mut self, run: &FlowableRun<'_>, after: std::time::Duration) {
        self.transition(run.index, StateType::Paused);
        self.out.paused = true;
        let at = self.after(after);
        self.out
            .delays
            .push(ExecutionDelay::continue_flowable(&self.exec.id, run.id, at));
    }

    fn after(&self, after: std::time::Duration) -> Timestamp {
        self.now
            .checked_add(jiff::SignedDuration::try_from(after).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX)
    }

    /// When this pass runs.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    /// A flowable's own task run.
    pub(crate) fn task_run(&self, run: &FlowableRun<'_>) -> &TaskRun {
        &self.exec.task_run_list[run.index]
    }

    /// The task runs whose parent is a flowable's task run.
    pub(crate) fn children_of(&self, run: &FlowableRun<'_>) -> impl Iterator<Item = &TaskRun> {
        self.exec
            .task_run_list
            .iter()
            .filter(|t| t.parent_task_run_id.as_deref() == Some(run.id))
    }

    /// Sets the `iteration` of a flowable's children that have none (a `WaitFor`'s round).
    pub(crate) fn set_children_iteration(&mut self, run: &FlowableRun<'_>, iteration: i32) {
        for t in &mut self.exec.task_run_list {
            if t.parent_task_run_id.as_deref() == Some(run.id) && t.iteration.is_none() {
                t.iteration = Some(iteration);
            }
        }
    }

    /// Sets a flowable's task-run outputs (a Switch's `value` and `defaults`).
    pub(crate) fn set_outputs(&mut self, run: &FlowableRun<'_>, outputs: Map<String, Value>) {
        self.exec.task_run_list[run.index].outputs = Some(outputs);
    }

    /// Renders a flowable's expression; on error, logs it as the task's own ERROR line.
    pub(crate) fn eval<T>(
        &mut self,
        run: &FlowableRun<'_>,
        f: impl FnOnce(&Renderer, &Value) -> Result<T, crate::expression::ExpressionError>,
    ) -> Result<T, ()> {
        self.eval_at(run.index, run.task, f)
    }

    fn eval_at<T>(
        &mut self,
        i: usize,
        task: &Task,
        f: impl FnOnce(&Renderer, &Value) -> Result<T, crate::expression::ExpressionError>,
    ) -> Result<T, ()> {
        let vars = self
            .vars
            .for_task_run(self.exec, &self.exec.task_run_list[i], task);
        f(self.renderer, &vars).map_err(|e| self.log_at(i, Level::Error, e.to_string()))
    }

    /// A line in a flowable's task-run logs, written by the executor.
    pub(crate) fn log(&mut self, run: &FlowableRun<'_>, level: Level, message: String) {
        self.log_at(run.index, level, message);
    }

    fn log_at(&mut self, i: usize, level: Level, message: String) {
        let tr = &self.exec.task_run_list[i];
        let id = format!("{}:0:{}", tr.id, self.out.logs.len());
        self.out
            .logs
            .push(LogEntry::from_executor(tr, id, level, self.now, message));
    }

    /// A flowable's `errors` branch, as Kestra's `FlowableUtils` runs it: once its children
    /// have failed, the `errors` tasks run as its children, and the flowable then fails.
    pub(crate) fn or_errors(
        &mut self,
        progress: Progress,
        errors: &'a [Task],
        run: &FlowableRun<'_>,
    ) -> Progress {
        match progress {
            Progress::Done(s) if s.is_failed() && errors.iter().any(|t| !t.disabled) => {
                match self.sequential(errors, Some(run.id), None) {
                    Progress::Running => Progress::Running,
                    Progress::Done(_) => Progress::Done(s),
                }
            }
            p => p,
        }
    }

    /// The execution's `namespace.flowId`, and its id, for messages.
    pub(crate) fn execution_names(&self) -> (String, String) {
        (
            format!("{}.{}", self.exec.namespace, self.exec.flow_id),
            self.exec.id.clone(),
        )
    }
}
