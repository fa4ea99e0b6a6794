//! The executor: consumes executions, worker results and kill requests, decides what runs
//! next, persists the execution, and enforces flow concurrency limits through
//! `execution_queued`.
//!
//! A kill (Kestra's `JdbcExecutor#killQueue`) moves the execution to KILLING and tells the
//! workers, which stop its running task runs; the task runs nothing runs yet, or that the
//! executor runs (a Pause, a Subflow), end KILLED at once, the others with their worker's
//! result, and then the execution ends KILLED. `restart` restarts an ended execution in
//! place (Kestra's `ExecutionService#restart`).
//!
//! Each batch of messages is handled in one transaction: the messages are consumed, the
//! executions updated, the new worker tasks and log lines queued, and all of it commits or
//! none of it does (Kestra's `JdbcExecutor` locks the execution row for the same reason).

mod listeners;
mod resolve;
mod restart;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub(crate) use resolve::{FlowableRun, Progress, Walker};
pub use resolve::{Resolution, resolve};
pub use restart::{RestartError, restart};

use crate::expression::Renderer;
use crate::flow::{ConcurrencyBehavior, Flow, FlowCache};
use crate::knobs::{Knobs, LogIndexing};
use crate::model::{Execution, LogEntry, StateType, WorkerTaskResult};
use crate::queue::{
    self, ExecutionEvent, ExecutionKilled, KillState, QueueMessage, RunContext, Timing,
    Transaction, WorkerTask,
};
use crate::repository::{
    DelayType, ExecutionDelay, ExecutionQueued, Message, QueueType, SavedExecution, Store, Tx,
};
use crate::run_context::VarsBase;
use crate::storage::Storage;
use crate::tasks::Role;

/// How many messages one executor transaction takes.
const POLL_SIZE: usize = 100;

/// How often the executor looks for due delays (Kestra's `JdbcExecutor` schedules
/// `executionDelaySend` every second).
const DELAYS_EVERY: Duration = Duration::from_secs(1);

pub struct Executor {
    store: Arc<dyn Store>,
    flows: Arc<FlowCache>,
    renderer: Arc<Renderer>,
    knobs: Knobs,
    timing: Timing,
    saved: Mutex<Saved>,
    /// The deployed flows with a Flow trigger, for the executions a state change starts.
    listeners: tokio::sync::Mutex<listeners::Listeners>,
}

/// How many bytes of documents [`Saved`] holds at most.
const SAVED_BYTES: usize = 32 << 20;

/// The executions this executor saved last, with their documents, so that the next pass
/// over one of them skips decoding the document it wrote itself when the database still
/// holds that very text (`Tx::load_execution_saved`). A pass over a large execution (a
/// ForEach over thousands of values) would otherwise spend most of its time decoding.
/// Ended executions leave; the oldest go first once the documents pass [`SAVED_BYTES`].
#[derive(Default)]
struct Saved {
    /// By execution id: the generation it was kept at, and the execution.
    entries: HashMap<String, (u64, SavedExecution)>,
    /// Ids by generation, oldest first; an id kept again leaves a stale pair behind.
    order: VecDeque<(u64, String)>,
    generation: u64,
    bytes: usize,
}

impl Saved {
    fn take(&mut self, id: &str) -> Option<SavedExecution> {
        let (_, saved) = self.entries.remove(id)?;
        self.bytes -= saved.document.len();
        Some(saved)
    }

    fn keep(&mut self, saved: SavedExecution) {
        let len = saved.document.len();
        if len > SAVED_BYTES {
            return;
        }
        self.generation += 1;
        let id = saved.execution.id.clone();
        if let Some((_, old)) = self.entries.insert(id.clone(), (self.generation, saved)) {
            self.bytes -= old.document.len();
        }
        self.bytes += len;
        self.order.push_back((self.generation, id));
        while self.bytes > SAVED_BYTES {
            let Some((generation, id)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&id).is_some_and(|(g, _)| *g == generation) {
                self.take(&id);
            }
        }
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(generation, id)| entries.get(id).is_some_and(|(g, _)| g == generation));
        }
    }
}

#[derive(Default)]
struct Effects {
    messages: Vec<Message>,
    logs: Vec<LogEntry>,
    terminated: bool,
    /// Flows with a concurrency limit whose execution ended: each frees a slot for its
    /// oldest queued execution once the batch has committed.
    releases: Vec<Release>,
    /// Executions saved by the batch, kept in [`Saved`] once it has committed.
    saved: Vec<SavedExecution>,
}

/// A slot freed under a flow's concurrency limit.
struct Release {
    tenant: Option<String>,
    namespace: String,
    flow_id: String,
}

impl Executor {
    pub fn new(
        store: Arc<dyn Store>,
        flows: Arc<FlowCache>,
        renderer: Arc<Renderer>,
        knobs: Knobs,
        timing: Timing,
    ) -> Self {
        Executor {
            store,
            flows,
            renderer,
            knobs,
            timing,
            saved: Mutex::default(),
            listeners: Default::default(),
        }
    }

    /// Runs until `shutdown` is cancelled. Errors (a database restart, say) are logged and
    /// retried with backoff; nothing is lost because a failed batch never commits.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut idle = self.timing.min_poll;
        let mut last_liveness = tokio::time::Instant::now();
        let mut last_clean = tokio::time::Instant::now();
        let mut last_delays = tokio::time::Instant::now();
        let notifier = self.store.notifier();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            // Registered before the poll, so that a push committed from here on wakes the
            // wait below (see `Notifier::notified`).
            let executions = notifier.notified(QueueType::Execution);
            let results = notifier.notified(QueueType::WorkerTaskResult);
            let kills = notifier.notified(QueueType::ExecutionKilled);
            tokio::pin!(executions, results, kills);
            executions.as_mut().enable();
            results.as_mut().enable();
            kills.as_mut().enable();
            if last_liveness.elapsed() >= self.timing.heartbeat {
                last_liveness = tokio::time::Instant::now();
                if let Err(e) = self.resubmit_dead_workers().await {
                    tracing::warn!("executor: liveness check failed: {e}");
                }
            }
            if last_delays.elapsed() >= DELAYS_EVERY {
                last_delays = tokio::time::Instant::now();
                if let Err(e) = self.resume_due().await {
                    tracing::warn!("executor: delayed executions: {e:#}");
                }
            }
            if last_clean.elapsed() >= Duration::from_secs(5) {
                last_clean = tokio::time::Instant::now();
                if let Err(e) = self.store.clean_queue().await {
                    tracing::warn!("executor: queue cleaning failed: {e}");
                }
            }
            match self.step().await {
                // A full batch: more may be waiting. A partial one drained the queue, and
                // whatever is pushed from now on wakes this loop (see `queue::Transaction`),
                // so it waits rather than poll again for nothing.
                Ok(POLL_SIZE..) => {
                    idle = self.timing.min_poll;
                    continue;
                }
                Ok(1..) => idle = self.timing.min_poll,
                Ok(0) => {}
                Err(e) => {
                    tracing::warn!("executor: {e:#}; retrying");
                    idle = self.timing.max_poll;
                }
            }
            let until_delays = DELAYS_EVERY.saturating_sub(last_delays.elapsed());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut executions => {}
                _ = &mut results => {}
                _ = &mut kills => {}
                _ = tokio::time::sleep(idle.min(until_delays)) => {}
            }
            idle = (idle * 2).min(self.timing.max_poll);
        }
    }

    /// Handles one batch; returns how many messages it consumed.
    pub async fn step(&self) -> anyhow::Result<usize> {
        let mut tx = self.store.begin().await?;
        let polled = tx
            .poll(
                &[
                    QueueType::Execution,
                    QueueType::WorkerTaskResult,
                    QueueType::ExecutionKilled,
                ],
                POLL_SIZE,
            )
            .await?;
        if polled.is_empty() {
            // Ended, not rolled back: it wrote nothing, and the database then counts no
            // rollback for a poll that merely found the queue empty.
            tx.commit().await?;
            return Ok(0);
        }
        let n = polled.len();
        // Group by execution, keeping order, so each execution is loaded and saved once.
        // Each result is decoded once, here, under the queue's one policy for a message that
        // does not decode (`queue::decode`).
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<WorkerTaskResult>> = HashMap::new();
        // Execution id → whether its kill cascades, for the kills requested.
        let mut kills: HashMap<String, bool> = HashMap::new();
        for p in polled {
            // A result names its execution itself (rows queued before results were keyed by
            // execution carry the task run id as their key).
            let (id, result) = match p.kind {
                QueueType::WorkerTaskResult => match queue::decode::<WorkerTaskResult>(&p) {
                    Some(r) => (r.task_run.execution_id.clone(), Some(r)),
                    None => continue,
                },
                QueueType::ExecutionKilled => match queue::decode::<ExecutionKilled>(&p) {
                    // An executed kill is the workers' (Kestra's executor skips it too).
                    Some(k) if k.state == KillState::Requested => {
                        *kills.entry(k.execution_id.clone()).or_default() |= k.is_on_kill_cascade;
                        (k.execution_id, None)
                    }
                    _ => continue,
                },
                _ => (p.key, None),
            };
            if !groups.contains_key(&id) {
                order.push(id.clone());
            }
            groups.entry(id).or_default().extend(result);
        }
        let mut effects = Effects::default();
        for id in order {
            let results = groups.remove(&id).unwrap_or_default();
            let saved = self.saved().take(&id);
            let Some(mut exec) = tx.load_execution_saved(&id, saved).await? else {
                tracing::warn!("executor: message for unknown execution {id} dropped");
                continue;
            };
            let mut flow = None;
            for result in results {
                if !result.iteration {
                    merge_result(&mut exec, result);
                    continue;
                }
                let flow = match &flow {
                    Some(f) => f,
                    None => flow.insert(
                        self.flows
                            .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
                            .await?,
                    ),
                };
                count_iteration(flow, &mut exec, result);
            }
            if let Some(cascade) = kills.remove(&id) {
                let before = exec.state.current;
                kill(&mut exec, cascade, &mut effects);
                if cascade && crate::service::has_batches(&exec) {
                    // Kestra's `killSubflowExecutions` kills every execution this one
                    // started: a ForEachItem's batches too.
                    let flow = self
                        .flows
                        .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
                        .await?;
                    let batches =
                        crate::service::batch_executions(self.store.as_ref(), &flow, &exec).await?;
                    for child in batches.iter().filter(|c| !c.state.is_terminal()) {
                        effects
                            .messages
                            .push(ExecutionKilled::requested(&child.id, true).to_message());
                    }
                }
                if exec.state.current != before {
                    self.flow_triggers(&mut *tx, &exec, &mut effects).await?;
                }
            }
            self.process(&mut *tx, exec, &mut effects).await?;
        }
        self.flush(tx, effects).await?;
        Ok(n)
    }

    async fn flush(&self, mut tx: Transaction<'_>, effects: Effects) -> anyhow::Result<()> {
        let mut messages = effects.messages;
        if !effects.logs.is_empty() {
            match self.knobs.logs_indexing {
                LogIndexing::Sync => tx.insert_logs(&effects.logs).await?,
                LogIndexing::Batched => {
                    messages.extend(effects.logs.iter().map(QueueMessage::to_message))
                }
            }
        }
        tx.push(&messages).await?;
        tx.commit().await?;
        if !effects.saved.is_empty() {
            let mut saved = self.saved();
            for s in effects.saved {
                saved.keep(s);
            }
        }
        if effects.terminated {
            self.store.notifier().terminated.notify_waiters();
        }
        for r in effects.releases {
            self.release_queued(&r).await?;
        }
        Ok(())
    }

    /// Pops the flow's oldest queued execution and sends it on as RUNNING, in a transaction
    /// of its own after the ending execution's batch committed, as Kestra's
    /// `JdbcExecutor#toExecution` calls `executionQueuedStorage.pop(...)` with a consumer
    /// that emits `queued.withState(RUNNING)` to the execution queue. So a pop's row lock is
    /// held only for the pop, and several executors pop as Kestra's do.
    async fn release_queued(&self, r: &Release) -> anyhow::Result<()> {
        let mut tx = self.store.begin().await?;
        let mut queued = loop {
            let Some(queued) = tx
                .queued_pop(r.tenant.as_deref(), &r.namespace, &r.flow_id)
                .await?
            else {
                tx.commit().await?;
                return Ok(());
            };
            // One killed while it waited has ended: it stays as it is, and the next goes.
            match tx.load_execution(&queued.id).await? {
                Some(stored) if stored.state.is_terminal() => continue,
                _ => break queued,
            }
        };
        queued
            .state
            .transition(StateType::Running, crate::model::now());
        tx.save_execution(&queued).await?;
        tx.send(&[ExecutionEvent::new(&queued.id)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Carries out the due delays, as Kestra's `JdbcExecutor#executionDelaySend` does.
    /// `RESUME_FLOW`: a paused task run whose `delay` or `timeout` has passed is marked as
    /// its delay says ([`crate::tasks::mark_as`]) and the execution goes back to the
    /// executor; `CONTINUE_FLOWABLE`: a paused `WaitFor` starts its next round
    /// ([`crate::tasks::next_round`]); a task run no longer paused (resumed by hand meanwhile) is left as it is,
    /// where Kestra would mark it again. `RESTART_FAILED_FLOW`: a RETRIED execution is
    /// replayed as a new one. `SLA_MONITOR`: a `MAX_DURATION` SLA past its deadline is
    /// violated. Returns how many delays were taken.
    pub async fn resume_due(&self) -> anyhow::Result<usize> {
        let mut tx = self.store.begin().await?;
        let delays = tx
            .delays_take(jiff::Timestamp::now().as_millisecond(), POLL_SIZE)
            .await?;
        let mut fx = Effects::default();
        for delay in &delays {
            let Some(mut exec) = tx.load_execution(&delay.execution_id).await? else {
                tracing::warn!(
                    "delay {} for unknown execution {} dropped",
                    delay.uid(),
                    delay.execution_id
                );
                continue;
            };
            match delay.delay_type {
                DelayType::ResumeFlow | DelayType::ContinueFlowable => {
                    let paused = exec
                        .task_run(&delay.task_run_id)
                        .is_some_and(|t| t.state.current == StateType::Paused);
                    if !paused {
                        continue;
                    }
                    let original = exec.state.current;
                    if delay.delay_type == DelayType::ContinueFlowable {
                        crate::tasks::next_round(&mut exec, &delay.task_run_id);
                    } else {
                        let flow = self
                            .flows
                            .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
                            .await?;
                        crate::tasks::mark_as(
                            &mut exec,
                            &flow,
                            &delay.task_run_id,
                            delay.state,
                            None,
                        )?;
                    }
                    if exec.state.current != original {
                        self.flow_triggers(&mut *tx, &exec, &mut fx).await?;
                    }
                    tx.save_execution(&exec).await?;
                    fx.messages.push(ExecutionEvent::new(&exec.id).to_message());
                }
                // `ExecutionService#replay` from the start: a new execution, one attempt up.
                DelayType::RestartFailedFlow => {
                    if exec.state.current != StateType::Retried {
                        continue;
                    }
                    let next = crate::service::replay_execution(&exec);
                    tx.save_execution(&next).await?;
                    fx.messages.push(ExecutionEvent::new(&next.id).to_message());
                }
                // `ExecutionService#retryTask`: the task run is CREATED again, and the
                // executor starts its next attempt.
                DelayType::RestartFailedTask => {
                    let Some(tr) = exec
                        .task_run_mut(&delay.task_run_id)
                        .filter(|t| t.state.current == StateType::Retrying)
                    else {
                        continue;
                    };
                    let now = crate::model::now();
                    tr.state.transition(StateType::Created, now);
                    if exec.state.current != StateType::Running {
                        exec.state.transition(StateType::Running, now);
                    }
                    tx.save_execution(&exec).await?;
                    fx.messages.push(ExecutionEvent::new(&exec.id).to_message());
                }
                // `JdbcExecutor#executionSLAMonitor`.
                DelayType::SlaMonitor => {
                    if exec.state.is_terminal() {
                        continue;
                    }
                    let flow = self
                        .flows
                        .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
                        .await?;
                    let sla = flow
                        .sla
                        .iter()
                        .find(|s| Some(&s.id) == delay.sla_id.as_ref());
                    let Some(violation) = sla.and_then(|s| s.exceeded(&exec, crate::model::now()))
                    else {
                        continue;
                    };
                    let mut lines = vec![(
                        crate::model::Level::Warn,
                        format!("SLA '{}' violated: {}", violation.sla.id, violation.reason),
                    )];
                    let changed = crate::flow::sla::apply(&violation, &mut exec, &mut |l, m| {
                        lines.push((l, m))
                    });
                    fx.logs.extend(
                        lines
                            .into_iter()
                            .map(|(level, message)| execution_log(&exec, level, message)),
                    );
                    if !changed {
                        continue;
                    }
                    if exec.state.is_terminal() {
                        fx.terminated = true;
                        release_slot(&flow, &exec, &mut fx);
                        self.flow_triggers(&mut *tx, &exec, &mut fx).await?;
                    }
                    tx.save_execution(&exec).await?;
                }
            }
        }
        self.flush(tx, fx).await?;
        Ok(delays.len())
    }

    /// Moves an execution forward; an end under a QUEUE concurrency limit frees a slot.
    async fn process(
        &self,
        tx: &mut dyn Tx,
        mut exec: Execution,
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        let flow = self
            .flows
            .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
            .await?;
        let now = crate::model::now();
        let original = exec.state.current;
        if exec.state.current == StateType::Created {
            // Kestra's `JdbcExecutor` saves an SLA monitor per `MAX_DURATION` SLA of a
            // created execution, due at its start plus the duration.
            for sla in &flow.sla {
                if let crate::flow::SlaKind::MaxDuration(d) = sla.kind
                    && let Ok(d) = jiff::SignedDuration::try_from(d)
                    && let Ok(deadline) = exec.state.start_date().checked_add(d)
                {
                    tx.delay_push(&ExecutionDelay::sla_monitor(&exec.id, &sla.id, deadline))
                        .await?;
                }
            }
            if let Some(c) = &flow.concurrency {
                let running = tx.count_running(&exec.namespace, &exec.flow_id).await?;
                if running >= i64::from(c.limit) {
                    match c.behavior {
                        ConcurrencyBehavior::Queue => {
                            exec.state.transition(StateType::Queued, now);
                            tx.queued_push(&ExecutionQueued::new(exec.clone(), now))
                                .await?;
                        }
                        ConcurrencyBehavior::Cancel => {
                            exec.state.transition(StateType::Cancelled, now);
                            fx.terminated = true;
                        }
                        ConcurrencyBehavior::Fail => {
                            exec.state.transition(StateType::Failed, now);
                            fx.terminated = true;
                        }
                    }
                    self.flow_triggers(tx, &exec, fx).await?;
                    tx.save_execution(&exec).await?;
                    return Ok(());
                }
            }
            exec.state.transition(StateType::Running, now);
        } else if matches!(exec.state.current, StateType::Queued | StateType::Restarted) {
            // Released by a finishing execution of the same flow, or resumed after a pause
            // (Kestra's `ExecutorService#handleRestart`).
            exec.state.transition(StateType::Running, now);
        }
        if exec.state.is_terminal() {
            // A late or duplicated result for a finished execution changes nothing.
            tx.save_execution(&exec).await?;
            return Ok(());
        }
        if exec.state.current == StateType::Killing {
            // Nothing starts in a KILLING execution (`ExecutorService#process`).
            self.killing(tx, &flow, &mut exec, fx).await?;
            if exec.state.current != original {
                self.flow_triggers(tx, &exec, fx).await?;
            }
            tx.save_execution(&exec).await?;
            return Ok(());
        }
        // Kestra's `ExecutorService#handleExecutionChangedSLA`: the first violated
        // `EXECUTION_ASSERTION` applies.
        if !flow.sla.is_empty() {
            let vars = VarsBase::new(&flow, &exec).for_execution();
            let mut lines = Vec::new();
            let mut log = |level, message| lines.push((level, message));
            let violations = crate::flow::sla::violated(&flow.sla, &self.renderer, &vars, &mut log);
            if let Some(v) = violations.first() {
                crate::flow::sla::apply(v, &mut exec, &mut log);
            }
            fx.logs.extend(
                lines
                    .into_iter()
                    .map(|(level, message)| execution_log(&exec, level, message)),
            );
            if exec.state.is_terminal() {
                fx.terminated = true;
                release_slot(&flow, &exec, fx);
                self.flow_triggers(tx, &exec, fx).await?;
                tx.save_execution(&exec).await?;
                return Ok(());
            }
        }
        if let Some(delay) = retry_as_new_execution(&flow, &mut exec) {
            // Kestra's `ExecutorService#handleChildWorkerTaskResult` with
            // `CREATE_NEW_EXECUTION`: the execution ends RETRIED, and a new one starts at the
            // delay's date (`resume_due`).
            tx.delay_push(&delay).await?;
            fx.terminated = true;
            release_slot(&flow, &exec, fx);
            self.flow_triggers(tx, &exec, fx).await?;
            tx.save_execution(&exec).await?;
            return Ok(());
        }
        for delay in retry_failed_subflows(&flow, &mut exec) {
            tx.delay_push(&delay).await?;
        }
        let resolution = resolve(&flow, &mut exec, &self.renderer);
        self.dispatch(&flow, &exec, &resolution, fx);
        if !resolution.subflows.is_empty() {
            self.start_subflows(tx, &flow, &mut exec, &resolution.subflows, fx)
                .await?;
        }
        if !resolution.resumes.is_empty() {
            self.resume_executions(tx, &flow, &mut exec, &resolution.resumes, fx)
                .await?;
        }
        fx.logs.extend(resolution.logs);
        if resolution.paused {
            // Kestra's `ExecutorService#handlePausedDelay`.
            exec.state
                .transition(StateType::Paused, crate::model::now());
        }
        for delay in &resolution.delays {
            tx.delay_push(delay).await?;
        }
        // A paused execution does not end (`ExecutorService#handleEnd`).
        let done = resolution
            .done
            .filter(|_| exec.state.current != StateType::Paused);
        if let Some(mut done) = done {
            if !flow.outputs.is_empty() {
                match self.flow_outputs(&flow, &exec) {
                    Ok(outputs) => exec.outputs = Some(outputs),
                    Err(message) => {
                        // Kestra's ExecutorService#onEnd: the execution fails, and says why.
                        fx.logs.push(execution_log(
                            &exec,
                            crate::model::Level::Error,
                            format!("Failed to render output values: {message}"),
                        ));
                        done = StateType::Failed;
                    }
                }
            }
            exec.state.transition(done, crate::model::now());
            fx.terminated = true;
            self.subflow_ended(tx, &flow, &exec, fx).await?;
            release_slot(&flow, &exec, fx);
        }
        if exec.state.current != original {
            self.flow_triggers(tx, &exec, fx).await?;
        }
        let terminal = exec.state.is_terminal();
        if let Some(saved) = tx.save_execution_keeping(exec).await?
            && !terminal
        {
            fx.saved.push(saved);
        }
        Ok(())
    }

    /// Moves a KILLING execution on, as Kestra's `ExecutorService#handleCreatedKilling` and
    /// the killing of flowable parents do: the task runs nothing runs yet, paused ones and
    /// the ones the executor runs (a Subflow's, a Resume's) end KILLED at once; those on a
    /// worker end with its result (KILLED, or as they ended first). Once none is left on a
    /// worker, the flowables around them end KILLED, and so does the execution, as a
    /// parent's Subflow task run learns.
    async fn killing(
        &self,
        tx: &mut dyn Tx,
        flow: &Flow,
        exec: &mut Execution,
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        let now = crate::model::now();
        let mut on_worker = false;
        for tr in &mut exec.task_run_list {
            if tr.state.is_terminal() {
                continue;
            }
            let role = flow.find_task(&tr.task_id).map(|t| t.kind.role());
            match (role, tr.state.current) {
                (_, StateType::Paused) => tr.state.transition(StateType::Killed, now),
                (Some(Role::Flowable(_)), _) => {}
                (Some(Role::Runnable(_)), StateType::Running) => on_worker = true,
                _ => tr.state.transition(StateType::Killed, now),
            }
        }
        if on_worker {
            return Ok(());
        }
        for tr in &mut exec.task_run_list {
            if !tr.state.is_terminal() {
                tr.state.transition(StateType::Killed, now);
            }
        }
        // One killed while queued under its flow's concurrency limit held no slot.
        let was_queued = exec
            .state
            .histories
            .iter()
            .rev()
            .find(|h| h.state != StateType::Killing)
            .is_some_and(|h| h.state == StateType::Queued);
        exec.state.transition(StateType::Killed, now);
        fx.terminated = true;
        self.subflow_ended(tx, flow, exec, fx).await?;
        if !was_queued {
            release_slot(flow, exec, fx);
        }
        Ok(())
    }

    /// Starts the executions the deployed Flow triggers start for the execution's new
    /// state, in this batch's transaction (Kestra's `JdbcExecutor#toExecution` "handle flow
    /// triggers on state change"), so each state change starts them exactly once.
    async fn flow_triggers(
        &self,
        tx: &mut dyn Tx,
        exec: &Execution,
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        for started in self.flow_triggered(tx, exec).await? {
            fx.messages.push(ExecutionEvent::new(&started).to_message());
        }
        Ok(())
    }

    /// Saves the executions the Flow triggers start for `exec`'s state; returns their ids,
    /// for the caller to queue.
    async fn flow_triggered(
        &self,
        tx: &mut dyn Tx,
        exec: &Execution,
    ) -> anyhow::Result<Vec<String>> {
        let flows = self
            .listeners
            .lock()
            .await
            .current(self.store.as_ref(), &self.flows)
            .await?;
        if flows.is_empty() {
            return Ok(Vec::new());
        }
        let started = crate::flow_trigger::triggered_executions(
            tx,
            &flows,
            exec,
            &self.renderer,
            jiff::Timestamp::now(),
        )
        .await?;
        let mut ids = Vec::with_capacity(started.len());
        for e in started {
            tx.save_execution(&e).await?;
            ids.push(e.id);
        }
        Ok(ids)
    }

    /// Starts the executions of the Subflow task runs this pass created, as Kestra's
    /// `ExecutorService#handleExecutableTask` does: each is saved and queued in this batch's
    /// transaction; its task run keeps the new execution's id in its `executionId` output
    /// and waits for it, or, without `wait`, ends SUCCESS at once. A subflow that cannot be
    /// started (not found, disabled, bad inputs) fails the task run, the reason logged.
    async fn start_subflows(
        &self,
        tx: &mut dyn Tx,
        flow: &Flow,
        exec: &mut Execution,
        indexes: &[usize],
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        let now = crate::model::now();
        let vars = VarsBase::new(flow, exec);
        let mut ended = false;
        for &i in indexes {
            let (subflow, items, task_vars) = match run_by_executor(flow, exec, &vars, i) {
                Some((Role::Executable(subflow), task_vars)) => (Some(subflow), None, task_vars),
                Some((Role::Iterative(items), task_vars)) => (None, Some(items), task_vars),
                _ => continue,
            };
            let Some(subflow) = subflow else {
                if let Some(items) = items {
                    ended |= self
                        .start_iterations(tx, flow, exec, i, items, task_vars, fx)
                        .await?;
                }
                continue;
            };
            let trigger = (
                crate::tasks::SUBFLOW_TRIGGER_TYPES[0],
                serde_json::Map::new(),
            );
            let started = self
                .subflow_execution(flow, exec, i, subflow, &task_vars, trigger)
                .await?;
            if let Ok(child) = &started {
                tx.save_execution(child).await?;
                tx.push(&[ExecutionEvent::new(&child.id).to_message()])
                    .await?;
            }
            let tr = &mut exec.task_run_list[i];
            let mut outputs = serde_json::Map::new();
            match started {
                Ok(child) => {
                    fx.logs.push(task_log(
                        tr,
                        crate::model::Level::Info,
                        format!(
                            "Created new execution [[link execution=\"{}\" flowId=\"{}\" namespace=\"{}\"]]",
                            child.id, child.flow_id, child.namespace
                        ),
                    ));
                    outputs.insert("executionId".into(), child.id.clone().into());
                    if !subflow.wait {
                        // `createSubflowExecutionResult` of the execution just created.
                        outputs.insert("state".into(), child.state.current.as_str().into());
                        end_task_run(tr, StateType::Success, now);
                        ended = true;
                    }
                    tr.outputs = Some(outputs);
                }
                Err(message) => {
                    fx.logs
                        .push(task_log(tr, crate::model::Level::Error, message));
                    end_task_run(tr, StateType::Failed, now);
                    ended = true;
                }
            }
        }
        if ended {
            // The ended task runs move the execution on in its next pass, as Kestra's
            // results of them do.
            fx.messages.push(ExecutionEvent::new(&exec.id).to_message());
        }
        Ok(())
    }

    /// Runs the Resume task runs this pass started (`crate::tasks::Resume`): each resumes
    /// the execution it names, as `POST /api/v1/executions/{id}/resume` does, saved and
    /// queued in this batch's transaction, and ends SUCCESS; FAILED, the reason logged, when
    /// that execution does not exist or is not paused. The task's own execution is resumed
    /// in place.
    async fn resume_executions(
        &self,
        tx: &mut dyn Tx,
        flow: &Flow,
        exec: &mut Execution,
        indexes: &[usize],
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        let now = crate::model::now();
        let vars = VarsBase::new(flow, exec);
        for &i in indexes {
            let Some((Role::Resuming(resume), task_vars)) = run_by_executor(flow, exec, &vars, i)
            else {
                continue;
            };
            let outcome = match resume.target(&self.renderer, &task_vars, exec) {
                Err(message) => Err(message),
                Ok((id, inputs)) if id == exec.id => {
                    crate::tasks::resume(exec, flow, inputs).map_err(|e| e.to_string())
                }
                Ok((id, inputs)) => match tx.load_execution(&id).await? {
                    None => Err(format!("No execution found for execution id {id}")),
                    Some(mut other) => {
                        let other_flow = self
                            .flows
                            .get(&other.namespace, &other.flow_id, other.flow_revision)
                            .await?;
                        match crate::tasks::resume(&mut other, &other_flow, inputs) {
                            Err(e) => Err(e.to_string()),
                            Ok(()) => {
                                tx.save_execution(&other).await?;
                                fx.messages
                                    .push(ExecutionEvent::new(&other.id).to_message());
                                Ok(())
                            }
                        }
                    }
                },
            };
            let tr = &mut exec.task_run_list[i];
            let state = match outcome {
                Ok(()) => StateType::Success,
                Err(message) => {
                    fx.logs
                        .push(task_log(tr, crate::model::Level::Error, message));
                    StateType::Failed
                }
            };
            end_task_run(tr, state, now);
        }
        // The ended task runs move the execution on in its next pass.
        fx.messages.push(ExecutionEvent::new(&exec.id).to_message());
        Ok(())
    }

    /// Starts the executions of a ForEachItem's `{id}_items` task run (task run `i`), one
    /// per batch its `{id}_split` sibling wrote, as Kestra's
    /// `ForEachItemExecutable#createSubflowExecutions` and `ExecutorService#handleExecutableTask`
    /// do: each renders the `inputs` with `taskrun.items`, the batch's URI, and
    /// `taskrun.iteration`, its number from 1. They are all created, or none: one that
    /// cannot be (its flow missing, its inputs bad) fails the task run. With `wait` the task
    /// run counts them RUNNING and waits for them; without, it counts them ended at once.
    /// With no batch it ends SUCCESS at once, without outputs. A restarted task run starts
    /// every batch again and counts from nothing. Returns whether it ended.
    #[allow(clippy::too_many_arguments)]
    async fn start_iterations(
        &self,
        tx: &mut dyn Tx,
        flow: &Flow,
        exec: &mut Execution,
        i: usize,
        items: &crate::tasks::ForEachItemExecutable,
        mut vars: serde_json::Value,
        fx: &mut Effects,
    ) -> anyhow::Result<bool> {
        let now = crate::model::now();
        // A restarted task run counts its new executions from nothing.
        exec.task_run_list[i].outputs = None;
        let splits = match self.splits(exec, i) {
            Ok(splits) => splits,
            Err(message) => {
                let tr = &mut exec.task_run_list[i];
                fx.logs
                    .push(task_log(tr, crate::model::Level::Error, message));
                end_task_run(tr, StateType::Failed, now);
                return Ok(true);
            }
        };
        if splits.is_empty() {
            // `handleExecutableTaskRunning.noExecution`: SUCCESS, without an attempt.
            exec.task_run_list[i]
                .state
                .transition(StateType::Success, now);
            return Ok(true);
        }
        let tr = exec.task_run_list[i].clone();
        let mut children = Vec::with_capacity(splits.len());
        for (n, split) in splits.iter().enumerate() {
            let iteration = n as i64 + 1;
            if let Some(taskrun) = vars.get_mut("taskrun").and_then(|t| t.as_object_mut()) {
                taskrun.insert("items".into(), split.clone().into());
                taskrun.insert("iteration".into(), iteration.into());
            }
            // The parent task run's ids and iteration, as later Kestra keeps them in the
            // trigger to find the task run a child execution belongs to.
            let mut variables = serde_json::Map::new();
            variables.insert("taskRunId".into(), tr.id.clone().into());
            variables.insert("taskId".into(), tr.task_id.clone().into());
            if let Some(value) = &tr.value {
                variables.insert("taskRunValue".into(), value.clone().into());
            }
            variables.insert("taskRunIteration".into(), iteration.into());
            let trigger = (crate::tasks::FOR_EACH_ITEM_TRIGGER_TYPE, variables);
            match self
                .subflow_execution(flow, exec, i, &items.subflow, &vars, trigger)
                .await?
            {
                Ok(child) => children.push(child),
                Err(message) => {
                    let tr = &mut exec.task_run_list[i];
                    fx.logs
                        .push(task_log(tr, crate::model::Level::Error, message));
                    end_task_run(tr, StateType::Failed, now);
                    return Ok(true);
                }
            }
        }
        let tr = &mut exec.task_run_list[i];
        let mut messages = Vec::with_capacity(children.len());
        for child in &children {
            tx.save_execution(child).await?;
            messages.push(ExecutionEvent::new(&child.id).to_message());
            fx.logs.push(task_log(
                tr,
                crate::model::Level::Info,
                format!(
                    "Created new execution [[link execution=\"{}\" flowId=\"{}\" namespace=\"{}\"]]",
                    child.id, child.flow_id, child.namespace
                ),
            ));
        }
        tx.push(&messages).await?;
        let batches = children.len() as u64;
        tr.iteration = Some(batches as i32);
        // The results Kestra's executor sends itself as it starts them: RUNNING (from
        // CREATED) with `wait`, SUCCESS (from RUNNING) without.
        let (from, to) = match items.subflow.wait {
            true => (StateType::Created, StateType::Running),
            false => (StateType::Running, StateType::Success),
        };
        let mut ended = false;
        for _ in 0..batches {
            ended = crate::tasks::count_iteration(
                tr,
                from,
                to,
                batches,
                items.subflow.transmit_failed,
                false,
                false,
                now,
            );
        }
        Ok(ended)
    }

    /// The batches the `{id}_split` sibling of a ForEachItem's `{id}_items` task run `i`
    /// wrote: the URIs its `splits` file lists.
    fn splits(&self, exec: &Execution, i: usize) -> Result<Vec<String>, String> {
        let tr = &exec.task_run_list[i];
        let split_id = format!(
            "{}_split",
            tr.task_id.strip_suffix("_items").unwrap_or(&tr.task_id)
        );
        let uri = exec
            .task_run_list
            .iter()
            .find(|t| t.task_id == split_id && t.parent_task_run_id == tr.parent_task_run_id)
            .and_then(|t| t.outputs.as_ref()?.get("splits")?.as_str())
            .ok_or_else(|| format!("task `{split_id}` left no `splits` output"))?;
        let storage = self
            .renderer
            .kv()
            .map(|kv| kv.storage())
            .ok_or("no internal storage to read the batches from")?;
        let text = storage
            .read_to_string(uri)
            .map_err(|e| format!("reading the batches {uri}: {e}"))?;
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Builds one execution a Subflow or ForEachItem task run `i` starts, as Kestra's
    /// `ExecutableUtils#subflowExecution` does, with `trigger`'s type and its variables
    /// added to the parent's ids; `Err` says why it could not be. The caller saves it.
    #[allow(clippy::too_many_arguments)]
    async fn subflow_execution(
        &self,
        flow: &Flow,
        exec: &Execution,
        i: usize,
        subflow: &crate::tasks::Subflow,
        vars: &serde_json::Value,
        trigger: (&str, serde_json::Map<String, serde_json::Value>),
    ) -> anyhow::Result<Result<Execution, String>> {
        let render = |s: &str| self.renderer.render(s, vars).map_err(|e| e.to_string());
        let (namespace, flow_id) = match (render(&subflow.namespace), render(&subflow.flow_id)) {
            (Ok(n), Ok(f)) => (n, f),
            (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        };
        let found = match subflow.revision {
            Some(r) => self.flows.get(&namespace, &flow_id, r).await,
            None => self.flows.latest(&namespace, &flow_id).await,
        };
        let child_flow = match found {
            Ok(f) => f,
            Err(crate::flow::FlowLookupError::NotFound { .. }) => {
                return Ok(Err(format!(
                    "Unable to find flow '{namespace}'.'{flow_id}' with revision '{}'",
                    subflow.revision.unwrap_or(0)
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if child_flow.disabled {
            return Ok(Err("Cannot execute a flow which is disabled".into()));
        }
        let given = match self
            .renderer
            .render_value(&serde_json::Value::Object(subflow.inputs.clone()), vars)
        {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => serde_json::Map::new(),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let inputs = match crate::flow::resolve_inputs(&child_flow.inputs, &given) {
            Ok(inputs) => inputs,
            Err(e) => return Ok(Err(format!("flow `{}`: {e}", child_flow.key()))),
        };
        let labels = match subflow.child_labels(&exec.labels, render) {
            Ok(labels) => labels,
            Err(e) => return Ok(Err(e)),
        };
        let (kind, extra) = trigger;
        let mut variables = serde_json::Map::new();
        variables.insert("executionId".into(), exec.id.clone().into());
        variables.insert("namespace".into(), flow.namespace.clone().into());
        variables.insert("flowId".into(), flow.id.clone().into());
        variables.insert("flowRevision".into(), flow.revision.into());
        variables.extend(extra);
        let trigger = crate::model::ExecutionTrigger {
            id: exec.task_run_list[i].task_id.clone(),
            kind: kind.to_string(),
            variables,
        };
        let child = crate::service::new_execution(&child_flow, inputs, labels, Some(trigger));
        Ok(Ok(child))
    }

    /// When a subflow execution ends, ends the Subflow task run waiting for it, as Kestra's
    /// `Subflow#createSubflowExecutionResult` does: its state from the execution's
    /// ([`crate::tasks::guess_state`]), its outputs the execution's id, state and flow
    /// `outputs` (or the task's deprecated `outputs`, rendered against the execution). The
    /// task run goes to its execution as a worker result would.
    async fn subflow_ended(
        &self,
        tx: &mut dyn Tx,
        flow: &Flow,
        exec: &Execution,
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        let Some(trigger) = &exec.trigger else {
            return Ok(());
        };
        if trigger.kind == crate::tasks::FOR_EACH_ITEM_TRIGGER_TYPE {
            return self.iteration_ended(tx, flow, exec, fx).await;
        }
        if !crate::tasks::SUBFLOW_TRIGGER_TYPES.contains(&trigger.kind.as_str()) {
            return Ok(());
        }
        let Some(parent_id) = trigger
            .variables
            .get("executionId")
            .and_then(|v| v.as_str())
        else {
            return Ok(());
        };
        let Some(parent) = tx.load_execution(parent_id).await? else {
            tracing::warn!(
                "subflow execution {} ended; its parent {parent_id} is gone",
                exec.id
            );
            return Ok(());
        };
        let Some(task_run) = parent.task_run_list.iter().find(|t| {
            !t.state.is_terminal()
                && t.outputs
                    .as_ref()
                    .and_then(|o| o.get("executionId"))
                    .and_then(|v| v.as_str())
                    == Some(exec.id.as_str())
        }) else {
            return Ok(());
        };
        let parent_flow = self
            .flows
            .get(&parent.namespace, &parent.flow_id, parent.flow_revision)
            .await?;
        let Some(task) = parent_flow.find_task(&task_run.task_id) else {
            return Ok(());
        };
        let Role::Executable(subflow) = task.kind.role() else {
            return Ok(());
        };
        let mut task_run = task_run.clone();
        let mut outputs = serde_json::Map::new();
        outputs.insert("executionId".into(), exec.id.clone().into());
        outputs.insert("state".into(), exec.state.current.as_str().into());
        let mut state = crate::tasks::guess_state(
            exec.state.current,
            subflow.transmit_failed,
            task.allow_failure,
            task.allow_warning,
        );
        if flow.outputs.is_empty() {
            if let Some(wanted) = &subflow.outputs {
                let vars = VarsBase::new(flow, exec).for_execution();
                match self
                    .renderer
                    .render_value(&serde_json::Value::Object(wanted.clone()), &vars)
                {
                    Ok(v) => {
                        outputs.insert("outputs".into(), v);
                    }
                    Err(e) => {
                        fx.logs.push(task_log(
                            &task_run,
                            crate::model::Level::Warn,
                            format!("Failed to extract outputs with the error: '{e}'"),
                        ));
                        state = match (task.allow_failure, task.allow_warning) {
                            (true, true) => StateType::Success,
                            (true, false) => StateType::Warning,
                            _ => StateType::Failed,
                        };
                    }
                }
            }
        } else if let Some(o) = &exec.outputs {
            outputs.insert("outputs".into(), serde_json::Value::Object(o.clone()));
        }
        task_run.outputs = Some(outputs);
        end_task_run(&mut task_run, state, crate::model::now());
        fx.messages.push(
            WorkerTaskResult {
                task_run,
                iteration: false,
            }
            .to_message(),
        );
        Ok(())
    }

    /// When one of a ForEachItem's executions ends, tells its parent's `{id}_items` task
    /// run, which counts it (`count_iteration`), as Kestra's
    /// `ForEachItemExecutable#createSubflowExecutionResult` does for a task that waits: when
    /// the execution's flow has `outputs`, they are rendered against it and written, one ION
    /// line, as `{batch}/outputs.ion` under the task run's folder, for `{id}_merge` to
    /// gather. Outputs that cannot be rendered count the execution FAILED, the reason logged.
    async fn iteration_ended(
        &self,
        tx: &mut dyn Tx,
        flow: &Flow,
        exec: &Execution,
        fx: &mut Effects,
    ) -> anyhow::Result<()> {
        let Some(trigger) = &exec.trigger else {
            return Ok(());
        };
        let var = |k: &str| trigger.variables.get(k).and_then(|v| v.as_str());
        let (Some(parent_id), Some(task_run_id)) = (var("executionId"), var("taskRunId")) else {
            return Ok(());
        };
        let Some(parent) = tx.load_execution(parent_id).await? else {
            tracing::warn!(
                "subflow execution {} ended; its parent {parent_id} is gone",
                exec.id
            );
            return Ok(());
        };
        let Some(task_run) = parent
            .task_run(task_run_id)
            .filter(|t| !t.state.is_terminal())
        else {
            return Ok(());
        };
        let parent_flow = self
            .flows
            .get(&parent.namespace, &parent.flow_id, parent.flow_revision)
            .await?;
        let Some(Role::Iterative(items)) = parent_flow
            .find_task(&task_run.task_id)
            .map(|t| t.kind.role())
        else {
            return Ok(());
        };
        if !items.subflow.wait {
            return Ok(());
        }
        let iteration = trigger
            .variables
            .get("taskRunIteration")
            .and_then(|v| v.as_i64());
        let mut task_run = task_run.clone();
        let mut state = exec.state.current;
        if !flow.outputs.is_empty()
            && let Some(n) = iteration
        {
            let uri = format!("{}/{n}/outputs.ion", Storage::task_run_folder(&task_run));
            if let Err(e) = self.write_iteration_outputs(flow, exec, &uri) {
                fx.logs.push(task_log(
                    &task_run,
                    crate::model::Level::Warn,
                    format!("Failed to extract outputs with the error: '{e}'"),
                ));
                state = StateType::Failed;
            }
        }
        task_run.iteration = iteration.and_then(|n| i32::try_from(n).ok());
        task_run.state.transition(state, crate::model::now());
        fx.messages.push(
            WorkerTaskResult {
                task_run,
                iteration: true,
            }
            .to_message(),
        );
        Ok(())
    }

    /// Renders an ended execution's flow `outputs` (as written, not typed, as Kestra's
    /// `runContext.render(outputs)`) and writes them to `uri`, one ION line
    /// (`FileSerde.write`).
    fn write_iteration_outputs(
        &self,
        flow: &Flow,
        exec: &Execution,
        uri: &str,
    ) -> Result<(), String> {
        let vars = VarsBase::new(flow, exec).for_execution();
        let mut outputs = serde_json::Map::new();
        for output in &flow.outputs {
            let value = self
                .renderer
                .render_value(&output.value, &vars)
                .map_err(|e| format!("output `{}`: {e}", output.id))?;
            outputs.insert(output.id.clone(), value);
        }
        let record: crate::fileserde::Value =
            serde_json::from_value(serde_json::Value::Object(outputs))
                .map_err(|e| e.to_string())?;
        let storage = self
            .renderer
            .kv()
            .map(|kv| kv.storage())
            .ok_or("no internal storage to write the outputs to")?;
        let path = storage.path(uri).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        crate::fileserde::write_all(
            &path,
            crate::fileserde::Format::Ion,
            &[record],
            &crate::fileserde::ConvertOptions::default(),
            self.knobs.serde_mode,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// The flow's `outputs`, rendered against the ended execution and typed.
    fn flow_outputs(
        &self,
        flow: &Flow,
        exec: &Execution,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let vars = VarsBase::new(flow, exec).for_execution();
        let mut outputs = serde_json::Map::new();
        for output in &flow.outputs {
            let value = self
                .renderer
                .render_value(&output.value, &vars)
                .map_err(|e| format!("output `{}`: {e}", output.id))?;
            let value = output
                .as_input()
                .coerce(&value)
                .map_err(|e| format!("output `{}`: {e}", output.id))?;
            outputs.insert(output.id.clone(), value);
        }
        Ok(outputs)
    }

    fn dispatch(&self, flow: &Flow, exec: &Execution, r: &Resolution, fx: &mut Effects) {
        if r.dispatch.is_empty() {
            return;
        }
        let vars = VarsBase::new(flow, exec);
        for &i in &r.dispatch {
            let task_run = &exec.task_run_list[i];
            let Some(task) = flow.find_task(&task_run.task_id) else {
                continue;
            };
            // A task without a `retry` carries the one it inherits, for the worker's attempts.
            let task = match flow.retry_for(exec, task_run) {
                Some(retry) if task.retry.is_none() => task.inheriting(retry),
                _ => task.clone(),
            };
            let variables = vars.for_task_run(exec, task_run, &task);
            let worker_task = WorkerTask {
                task_run: task_run.clone(),
                task,
                run_context: RunContext { variables },
            };
            fx.messages.push(worker_task.to_message());
        }
    }

    fn saved(&self) -> std::sync::MutexGuard<'_, Saved> {
        // The cache holds no invariant a panic could break halfway: take it as it is.
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resubmits the task runs of workers that stopped heartbeating (Kestra's
    /// `JdbcExecutor#workersUpdate`): the worker task goes back on the queue as it was.
    pub async fn resubmit_dead_workers(&self) -> anyhow::Result<usize> {
        let cutoff = jiff::Timestamp::now().as_millisecond()
            - self.timing.liveness_timeout.as_millis() as i64;
        let mut tx = self.store.begin().await?;
        let dead = tx.dead_instances("worker", cutoff).await?;
        let mut messages = Vec::new();
        for worker in &dead {
            for (key, value) in tx.take_jobs(worker).await? {
                messages.push(Message {
                    kind: QueueType::WorkerTask,
                    key,
                    value,
                });
            }
            tx.remove_instance(worker).await?;
            tracing::warn!("worker {worker} stopped heartbeating; its task runs are resubmitted");
        }
        tx.push(&messages).await?;
        tx.commit().await?;
        Ok(messages.len())
    }
}

/// Kestra's `JdbcExecutor#killQueue` for a requested kill: the workers are told, whatever
/// the execution's state (an `EXECUTED` kill, in this batch's transaction); on cascade the
/// executions its Subflow task runs started get a kill request of their own
/// (`ExecutionService#killSubflowExecutions`); and one still running moves to KILLING
/// (`ExecutionService#kill`), which [`Executor::killing`] ends.
fn kill(exec: &mut Execution, cascade: bool, fx: &mut Effects) {
    fx.messages
        .push(ExecutionKilled::executed(&exec.id).to_message());
    if cascade {
        for child in crate::service::started_executions(exec) {
            fx.messages
                .push(ExecutionKilled::requested(child, true).to_message());
        }
    }
    if exec.state.current != StateType::Killing && !exec.state.is_terminal() {
        exec.state
            .transition(StateType::Killing, crate::model::now());
    }
}

/// Applies a worker's result unless the task run already ended (a resubmitted task run can
/// report twice; the first terminal result wins).
/// The role of task run `i`'s task, and the variables it renders against, for a task run
/// the executor runs itself (a Subflow, a Resume).
fn run_by_executor<'f>(
    flow: &'f Flow,
    exec: &Execution,
    vars: &VarsBase,
    i: usize,
) -> Option<(Role<'f>, serde_json::Value)> {
    let task_run = &exec.task_run_list[i];
    let task = flow.find_task(&task_run.task_id)?;
    Some((task.kind.role(), vars.for_task_run(exec, task_run, task)))
}

fn merge_result(exec: &mut Execution, result: WorkerTaskResult) {
    if let Some(tr) = exec.task_run_mut(&result.task_run.id)
        && !tr.state.is_terminal()
    {
        *tr = result.task_run;
    }
}

/// Counts one ended execution of a ForEachItem in its `{id}_items` task run, unless that
/// task run ended already (Kestra's `JdbcExecutor#subflowExecutionResultQueue` with
/// `ExecutableUtils#manageIterations`). The result's task run holds the state the execution
/// ended in, after the RUNNING it was counted in when it started.
fn count_iteration(flow: &Flow, exec: &mut Execution, result: WorkerTaskResult) {
    let Some(tr) = exec.task_run_mut(&result.task_run.id) else {
        return;
    };
    if tr.state.is_terminal() {
        return;
    }
    let Some(task) = flow.find_task(&tr.task_id) else {
        return;
    };
    let Role::Iterative(items) = task.kind.role() else {
        return;
    };
    let Some(batches) = tr
        .outputs
        .as_ref()
        .and_then(|o| o.get(crate::tasks::NUMBER_OF_BATCHES))
        .and_then(|v| v.as_u64())
    else {
        return;
    };
    let histories = &result.task_run.state.histories;
    let from = match histories.len() {
        n if n > 1 => histories[n - 2].state,
        _ => StateType::Running,
    };
    tr.iteration = result.task_run.iteration;
    crate::tasks::count_iteration(
        tr,
        from,
        result.task_run.state.current,
        batches,
        items.subflow.transmit_failed,
        task.allow_failure,
        task.allow_warning,
        crate::model::now(),
    );
}

/// Frees the flow's concurrency slot of an execution that ended; Kestra pops only for
/// `behavior: QUEUE` (`JdbcExecutor#toExecution`).
fn release_slot(flow: &Flow, exec: &Execution, fx: &mut Effects) {
    if flow
        .concurrency
        .as_ref()
        .is_some_and(|c| c.behavior == ConcurrencyBehavior::Queue)
    {
        fx.releases.push(Release {
            tenant: exec.tenant_id.clone(),
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
        });
    }
}

/// A failed task run whose retry says `CREATE_NEW_EXECUTION`, while the execution's
/// attempts and the retry's `maxDuration` allow another: marks the task run, its parents
/// and the execution RETRIED, and returns the delay at which the execution is replayed.
/// Follows Kestra 58c1ca2d0's `ExecutorService#handleChildWorkerTaskResult`, with
/// `TaskRun#nextRetryDate(retry, execution)` for a task's (or a parent's) retry and
/// `ExecutionService#nextRetryDate` for the flow's, then
/// `ExecutionService#markWithTaskRunAs(…, RETRIED, true)`.
fn retry_as_new_execution(flow: &Flow, exec: &mut Execution) -> Option<ExecutionDelay> {
    let (id, date) = exec.task_run_list.iter().find_map(|tr| {
        if tr.state.current != StateType::Failed {
            return None;
        }
        let task = flow.find_task(&tr.task_id)?;
        if !matches!(
            task.kind.role(),
            Role::Runnable(_) | Role::Executable(_) | Role::Iterative(_)
        ) {
            return None;
        }
        let task_retry = flow.task_retry(exec, tr);
        let retry = task_retry.or(flow.retry.as_ref())?;
        if retry.behavior() != crate::flow::RetryBehavior::CreateNewExecution {
            return None;
        }
        let attempt = exec.attempt_number();
        if retry.max_attempt().is_some_and(|max| attempt >= max) {
            return None;
        }
        // From the task run's last attempt for a task's retry, from the execution for the
        // flow's.
        let base = match task_retry {
            Some(_) => tr
                .attempts
                .as_ref()
                .and_then(|a| a.last())
                .and_then(|a| a.state.histories.last())
                .map_or_else(crate::model::now, |h| h.date),
            None => exec
                .state
                .histories
                .last()
                .map_or_else(crate::model::now, |h| h.date),
        };
        let delay = jiff::SignedDuration::try_from(retry.delay_before(attempt + 1)).ok()?;
        let date = base.checked_add(delay).ok()?;
        if let Some(max) = retry.max_duration() {
            let max = jiff::SignedDuration::try_from(max).ok()?;
            if exec
                .original_created_date()
                .checked_add(max)
                .is_ok_and(|end| date > end)
            {
                return None;
            }
        }
        Some((tr.id.clone(), date))
    })?;
    let now = crate::model::now();
    let mut next = Some(id.clone());
    while let Some(tr) = next.and_then(|id| exec.task_run_mut(&id)) {
        tr.state.transition(StateType::Retried, now);
        next = tr.parent_task_run_id.clone();
    }
    exec.state.transition(StateType::Retried, now);
    Some(ExecutionDelay::restart_failed_flow(&exec.id, &id, date))
}

/// Failed Subflow task runs whose retry (their own, a parent's, or the flow's) says
/// `RETRY_FAILED_TASK` and allows another attempt: each is marked RETRYING, and starts again
/// at the returned delay (`DelayType::RestartFailedTask`). Follows Kestra 58c1ca2d0's
/// `ExecutorService#handleChildWorkerTaskResult` with `TaskRun#nextRetryDate(retry)`: the
/// next attempt's delay after the last attempt's end, none once `maxAttempt` attempts were
/// made or past `maxDuration` from the first attempt's start. (A runnable task's retries
/// are its worker's, `crate::worker`.)
fn retry_failed_subflows(flow: &Flow, exec: &mut Execution) -> Vec<ExecutionDelay> {
    let due: Vec<(usize, jiff::Timestamp)> = exec
        .task_run_list
        .iter()
        .enumerate()
        .filter_map(|(i, tr)| {
            if tr.state.current != StateType::Failed {
                return None;
            }
            let task = flow.find_task(&tr.task_id)?;
            if !matches!(task.kind.role(), Role::Executable(_)) {
                return None;
            }
            let retry = flow.task_retry(exec, tr).or(flow.retry.as_ref())?;
            if retry.behavior() != crate::flow::RetryBehavior::RetryFailedTask {
                return None;
            }
            let made = u32::try_from(tr.attempt_count()).unwrap_or(u32::MAX);
            if made == 0 || made >= retry.max_attempts() {
                return None;
            }
            let attempts = tr.attempts.as_deref().unwrap_or_default();
            let first = attempts.first()?.state.start_date();
            let last = attempts.last()?.state.histories.last()?.date;
            let delay = jiff::SignedDuration::try_from(retry.delay_before(made + 1)).ok()?;
            let date = last.checked_add(delay).ok()?;
            if let Some(max) = retry.max_duration() {
                let max = jiff::SignedDuration::try_from(max).ok()?;
                if first.checked_add(max).is_ok_and(|end| date > end) {
                    return None;
                }
            }
            Some((i, date))
        })
        .collect();
    let now = crate::model::now();
    due.into_iter()
        .map(|(i, date)| {
            let tr = &mut exec.task_run_list[i];
            tr.state.transition(StateType::Retrying, now);
            ExecutionDelay::restart_failed_task(&exec.id, &tr.id, date)
        })
        .collect()
}

/// Ends a task run the executor runs itself, with one attempt in the same state.
fn end_task_run(tr: &mut crate::model::TaskRun, state: StateType, at: jiff::Timestamp) {
    tr.state.transition(state, at);
    let mut attempt = crate::model::State::new(at);
    attempt.transition(state, at);
    tr.attempts
        .get_or_insert_with(Vec::new)
        .push(crate::model::TaskRunAttempt {
            state: attempt,
            log_file: None,
        });
}

/// A line in a task run's logs, written by the executor.
fn task_log(tr: &crate::model::TaskRun, level: crate::model::Level, message: String) -> LogEntry {
    let id = format!("{}:executor:{}", tr.id, crate::model::new_id());
    LogEntry::from_executor(tr, id, level, crate::model::now(), message)
}

/// A line in the execution's logs, outside any task run.
fn execution_log(exec: &Execution, level: crate::model::Level, message: String) -> LogEntry {
    LogEntry {
        id: format!("{}:executor:{}", exec.id, crate::model::new_id()),
        namespace: exec.namespace.clone(),
        flow_id: exec.flow_id.clone(),
        task_id: None,
        execution_id: exec.id.clone(),
        task_run_id: None,
        attempt_number: None,
        timestamp: crate::model::now(),
        level,
        thread: Some("executor".into()),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(id: &str, bytes: usize) -> SavedExecution {
        let execution = Execution {
            id: id.to_string(),
            tenant_id: None,
            namespace: "n".into(),
            flow_id: "f".into(),
            flow_revision: 1,
            inputs: Default::default(),
            labels: Vec::new(),
            state: crate::model::State::new(crate::model::now()),
            task_run_list: Vec::new(),
            trigger: None,
            original_id: id.to_string(),
            metadata: None,
            outputs: None,
        };
        SavedExecution {
            document: "x".repeat(bytes),
            execution,
        }
    }

    #[test]
    fn saved_executions_are_taken_once_and_the_oldest_leave_first() {
        let mut s = Saved::default();
        let third = SAVED_BYTES / 3;
        s.keep(saved("a", third));
        s.keep(saved("b", third));
        s.keep(saved("a", third)); // kept again: now the newest
        s.keep(saved("c", third));
        assert_eq!(s.bytes, 3 * third);
        s.keep(saved("d", third)); // over the budget: the oldest, b, leaves
        assert!(s.take("b").is_none());
        assert!(s.take("a").is_some());
        assert!(s.take("a").is_none(), "taken twice");
        assert_eq!(s.bytes, 2 * third);
        assert!(s.take("c").is_some() && s.take("d").is_some());
        assert_eq!(s.bytes, 0);
        s.keep(saved("huge", SAVED_BYTES + 1));
        assert!(
            s.entries.is_empty(),
            "a document over the budget is not kept"
        );
    }

    #[test]
    fn the_order_of_saved_executions_stays_bounded() {
        let mut s = Saved::default();
        for _ in 0..10_000 {
            s.keep(saved("a", 10));
            s.take("a");
        }
        assert!(s.order.len() <= 65, "{} ids in order", s.order.len());
    }
}
