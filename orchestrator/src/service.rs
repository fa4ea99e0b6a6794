//! The orchestrator as one handle: connect to a database, start any set of components
//! (executor, worker, indexer, scheduler) and talk to it (deploy flows, trigger executions, wait for
//! them). The CLI, the webserver, the tests and the harness all go through it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::executor::Executor;
use crate::expression::Renderer;
use crate::flow::{
    Flow, FlowCache, FlowError, FlowLookupError, InputError, parse_flow, resolve_inputs,
};
use crate::indexer::Indexer;
use crate::knobs::Knobs;
use crate::kv::{FlowNamespaces, KvService};
use crate::model::{
    Execution, ExecutionMetadata, ExecutionTrigger, Label, LogEntry, State, StateType, new_id, now,
};
use crate::queue::{ExecutionEvent, ExecutionKilled, Timing};
use crate::repository::{self, Store};
use crate::storage::Storage;
use crate::worker::Worker;

/// The label Kestra gives every execution, to follow it through the executions it starts.
pub const CORRELATION_ID: &str = "system.correlationId";

/// How to reach the database and run the components.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite` (a fresh temporary file), `sqlite://PATH`, or a server URL.
    pub db: String,
    pub knobs: Knobs,
    /// The internal-storage folder.
    pub storage: PathBuf,
    pub timing: Timing,
}

/// Which components this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Components {
    pub executor: bool,
    pub worker: bool,
    pub indexer: bool,
    /// Fires the flows' `Schedule` triggers.
    pub scheduler: bool,
}

impl Components {
    pub const ALL: Components = Components {
        executor: true,
        worker: true,
        indexer: true,
        scheduler: true,
    };
    pub const NONE: Components = Components {
        executor: false,
        worker: false,
        indexer: false,
        scheduler: false,
    };
}

/// A new execution of `flow` (state CREATED), as Kestra's `Execution#newExecution` makes
/// one: the flow's labels but its system ones, the given ones (replacing a flow label of
/// the same key), and a `system.correlationId`, its own id, unless one was given.
pub fn new_execution(
    flow: &Flow,
    inputs: Map<String, Value>,
    labels: Vec<Label>,
    trigger: Option<ExecutionTrigger>,
) -> Execution {
    new_execution_with_id(new_id(), flow, inputs, labels, trigger)
}

/// [`new_execution`] with the id given.
pub fn new_execution_with_id(
    id: String,
    flow: &Flow,
    inputs: Map<String, Value>,
    labels: Vec<Label>,
    trigger: Option<ExecutionTrigger>,
) -> Execution {
    let mut all_labels: Vec<Label> = flow
        .labels
        .iter()
        .filter(|l| !l.key.starts_with(crate::tasks::SYSTEM_PREFIX))
        .cloned()
        .collect();
    for l in labels {
        all_labels.retain(|x| x.key != l.key);
        all_labels.push(l);
    }
    if !all_labels.iter().any(|l| l.key == CORRELATION_ID) {
        all_labels.push(Label {
            key: CORRELATION_ID.into(),
            value: id.clone(),
        });
    }
    Execution {
        original_id: id.clone(),
        metadata: None,
        outputs: None,
        id,
        // Kestra OSS: no tenant.
        tenant_id: None,
        namespace: flow.namespace.clone(),
        flow_id: flow.id.clone(),
        flow_revision: flow.revision,
        inputs,
        labels: all_labels,
        state: State::new(now()),
        task_run_list: Vec::new(),
        trigger,
    }
}

/// The executions an execution's Subflow task runs started.
/// The execution a `CREATE_NEW_EXECUTION` retry starts after a RETRIED one, as Kestra's
/// `ExecutionService#replay` builds it from the start (`Execution#childExecution` with no
/// task runs and a new state, then `metadata.nextAttempt()`): the same flow revision,
/// inputs, labels, trigger and original id, one attempt number up.
pub fn replay_execution(exec: &Execution) -> Execution {
    Execution {
        id: new_id(),
        tenant_id: exec.tenant_id.clone(),
        namespace: exec.namespace.clone(),
        flow_id: exec.flow_id.clone(),
        flow_revision: exec.flow_revision,
        inputs: exec.inputs.clone(),
        labels: exec.labels.clone(),
        state: State::new(now()),
        task_run_list: Vec::new(),
        trigger: exec.trigger.clone(),
        original_id: exec.original_id.clone(),
        outputs: exec.outputs.clone(),
        metadata: Some(ExecutionMetadata {
            attempt_number: exec.attempt_number() + 1,
            original_created_date: exec.original_created_date(),
        }),
    }
}

pub(crate) fn started_executions(exec: &Execution) -> Vec<String> {
    exec.task_run_list
        .iter()
        .filter_map(|t| t.outputs.as_ref()?.get("executionId")?.as_str())
        .map(str::to_string)
        .collect()
}

/// Whether `exec` has a ForEachItem task run that started executions.
pub(crate) fn has_batches(exec: &Execution) -> bool {
    exec.task_run_list.iter().any(|t| {
        t.outputs
            .as_ref()
            .is_some_and(|o| o.contains_key(crate::tasks::NUMBER_OF_BATCHES))
    })
}

/// The executions `exec`'s ForEachItem task runs started, one per batch: those of the flow
/// each names whose trigger names the task run (a flow named by an expression is not
/// looked for).
pub(crate) async fn batch_executions(
    store: &dyn Store,
    flow: &Flow,
    exec: &Execution,
) -> Result<Vec<Execution>, repository::Error> {
    let mut found = Vec::new();
    for tr in exec.task_run_list.iter() {
        let Some(crate::tasks::TaskKind::ForEachItemExecutable(items)) =
            flow.find_task(&tr.task_id).map(|t| &t.kind)
        else {
            continue;
        };
        let (namespace, flow_id) = (&items.subflow.namespace, &items.subflow.flow_id);
        for child in store.executions_of_flow(namespace, flow_id).await? {
            let task_run_id = child
                .trigger
                .as_ref()
                .and_then(|t| t.variables.get("taskRunId"))
                .and_then(Value::as_str);
            if task_run_id == Some(tr.id.as_str()) {
                found.push(child);
            }
        }
    }
    Ok(found)
}

/// Every Subflow task (and ForEachItem's `{id}_items`) among these tasks and their
/// children: the task, and the namespace and flow id it names.
fn subflows(tasks: &[crate::flow::Task]) -> Vec<(&crate::flow::Task, &str, &str)> {
    let mut found = Vec::new();
    for task in tasks {
        let subflow = match &task.kind {
            crate::tasks::TaskKind::Subflow(s) => Some(s),
            crate::tasks::TaskKind::ForEachItemExecutable(e) => Some(&e.subflow),
            _ => None,
        };
        if let Some(s) = subflow {
            found.push((task, s.namespace.as_str(), s.flow_id.as_str()));
        }
        for children in task.children() {
            found.extend(subflows(children));
        }
    }
    found
}

/// A request the orchestrator refuses, or could not carry out.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Lookup(#[from] FlowLookupError),
    /// Kestra refuses to execute a disabled flow.
    #[error("flow `{0}` is disabled")]
    Disabled(String),
    /// The inputs given do not fit the flow's declaration.
    #[error("flow `{flow}`: {source}")]
    Inputs {
        flow: String,
        #[source]
        source: InputError,
    },
    /// No webhook trigger of the flow has this key.
    #[error("flow `{0}` has no webhook trigger with this key")]
    WebhookNotFound(String),
    #[error("execution `{0}` not found")]
    ExecutionNotFound(String),
    /// Kestra answers 409 to a kill of an ended execution without `isOnKillCascade`.
    #[error("execution `{0}` is already finished, can't kill it")]
    Ended(String),
    /// An execution that has not ended (409), or that has no failed task run (422).
    #[error(transparent)]
    Restart(#[from] crate::executor::RestartError),
    /// Kestra answers 409 to a resume of an execution that is not paused.
    #[error(transparent)]
    Resume(#[from] crate::tasks::ResumeError),
    #[error("execution `{id}` did not end within {waited:?} (state {state})")]
    Timeout {
        id: String,
        waited: Duration,
        state: String,
    },
    #[error(transparent)]
    Repository(#[from] repository::Error),
}

pub struct Orchestrator {
    store: Arc<dyn Store>,
    flows: Arc<FlowCache>,
    renderer: Arc<Renderer>,
    storage: Storage,
    config: Config,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Log lines a worker accepted and has not committed yet (`logs.indexing=sync`).
    lines_in_flight: Arc<AtomicUsize>,
}

impl Orchestrator {
    /// Connects to (and migrates) the database. Starts nothing.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let store = repository::connect(&config.db, &config.knobs).await?;
        let storage = Storage::new(&config.storage).map_err(|e| {
            anyhow::anyhow!(
                "cannot create internal storage at {}: {e}",
                config.storage.display()
            )
        })?;
        let namespaces = Arc::new(FlowNamespaces::default());
        for source in store.flows().await? {
            if let Some(namespace) = flow_namespace(&source) {
                namespaces.insert(&namespace);
            }
        }
        let kv = KvService::new(storage.clone(), namespaces);
        Ok(Orchestrator {
            flows: Arc::new(FlowCache::new(store.clone())),
            store,
            renderer: Arc::new(Renderer::with_kv(kv)),
            storage,
            config,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            lines_in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn knobs(&self) -> &Knobs {
        &self.config.knobs
    }

    pub(crate) fn renderer(&self) -> &Arc<Renderer> {
        &self.renderer
    }

    /// Spawns the chosen components; they run until [`Orchestrator::shutdown`].
    pub fn start(&self, components: Components) {
        let timing = self.config.timing.clone();
        if components.executor {
            let executor = Executor::new(
                self.store.clone(),
                self.flows.clone(),
                self.renderer.clone(),
                self.config.knobs.clone(),
                timing.clone(),
            );
            self.tracker.spawn(executor.run(self.shutdown.clone()));
        }
        if components.worker {
            let worker = Worker::new(
                self.store.clone(),
                self.renderer.clone(),
                self.storage.clone(),
                self.config.knobs.clone(),
                timing.clone(),
            )
            .with_lines_in_flight(self.lines_in_flight.clone());
            tracing::info!(
                "worker {} started with {} threads",
                worker.id(),
                self.config.knobs.worker_threads
            );
            self.tracker.spawn(worker.run(self.shutdown.clone()));
        }
        if components.indexer {
            let indexer = Indexer::new(self.store.clone(), timing);
            self.tracker.spawn(indexer.run(self.shutdown.clone()));
        }
        if components.scheduler {
            let scheduler = crate::scheduler::Scheduler::new(self.store.clone());
            self.tracker.spawn(scheduler.run(self.shutdown.clone()));
        }
    }

    /// A token that stops every component when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the components and waits for them: workers finish their running task runs.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Parses, validates and stores a flow. Nothing is stored when it is invalid.
    pub async fn deploy(&self, source: &str, origin: &str) -> Result<Arc<Flow>, ServiceError> {
        let mut deployed = self.deploy_all(&[(source, origin)]).await?;
        Ok(deployed.remove(0))
    }

    /// Parses and validates every flow (`(source, origin)` each), then stores them all;
    /// nothing is stored when one is invalid. A Subflow task that names a flow neither
    /// stored nor among these is refused, as Kestra's flow validation refuses it (a name
    /// written as an expression is looked up when the task runs).
    pub async fn deploy_all(
        &self,
        sources: &[(&str, &str)],
    ) -> Result<Vec<Arc<Flow>>, ServiceError> {
        let mut flows = Vec::with_capacity(sources.len());
        for (source, origin) in sources {
            flows.push((parse_flow(source, origin)?, *source, *origin));
        }
        for (flow, _, origin) in &flows {
            for (task, namespace, id) in subflows(&flow.tasks)
                .into_iter()
                .chain(subflows(&flow.errors))
            {
                let dynamic = |s: &str| s.contains("{{") || s.contains("{%");
                if dynamic(namespace) || dynamic(id) {
                    continue;
                }
                let among = flows
                    .iter()
                    .any(|(f, _, _)| f.namespace == namespace && f.id == id);
                if !among && self.store.flow(namespace, id).await?.is_none() {
                    return Err(FlowError::Task {
                        origin: origin.to_string(),
                        flow: flow.key(),
                        task: task.id.clone(),
                        kind: task.type_name.clone(),
                        message: format!("the subflow `{namespace}.{id}` does not exist"),
                    }
                    .into());
                }
            }
        }
        let mut tx = self.store.begin().await?;
        for (flow, source, _) in &mut flows {
            flow.revision = tx.save_flow(&flow.namespace, &flow.id, source).await?;
        }
        tx.commit().await?;
        if let Some(kv) = self.renderer.kv() {
            for (flow, _, _) in &flows {
                kv.namespaces().insert(&flow.namespace);
            }
        }
        Ok(flows
            .into_iter()
            .map(|(flow, _, _)| {
                let flow = Arc::new(flow);
                self.flows.deployed(flow.clone());
                flow
            })
            .collect())
    }

    pub async fn flow(&self, namespace: &str, id: &str) -> Result<Arc<Flow>, ServiceError> {
        Ok(self.flows.latest(namespace, id).await?)
    }

    /// Creates an execution (state CREATED) and queues it for the executor, atomically.
    /// Once this returns, the execution is durable: it will reach a terminal state.
    pub async fn create_execution(
        &self,
        namespace: &str,
        id: &str,
        inputs: Map<String, Value>,
        labels: Vec<Label>,
        trigger: Option<ExecutionTrigger>,
    ) -> Result<Execution, ServiceError> {
        self.create_execution_as(new_id(), namespace, id, inputs, labels, trigger)
            .await
    }

    /// [`Orchestrator::create_execution`] with the execution's id chosen by the caller: the
    /// HTTP API stores file inputs under the new execution's folder before it creates the
    /// execution, as Kestra's `ExecutionController#create` does.
    pub async fn create_execution_as(
        &self,
        execution_id: String,
        namespace: &str,
        id: &str,
        inputs: Map<String, Value>,
        labels: Vec<Label>,
        trigger: Option<ExecutionTrigger>,
    ) -> Result<Execution, ServiceError> {
        let flow = self.flows.latest(namespace, id).await?;
        if flow.disabled {
            return Err(ServiceError::Disabled(flow.key()));
        }
        let inputs =
            resolve_inputs(&flow.inputs, &inputs).map_err(|source| ServiceError::Inputs {
                flow: flow.key(),
                source,
            })?;
        let execution = new_execution_with_id(execution_id, &flow, inputs, labels, trigger);
        let mut tx = self.store.begin().await?;
        tx.save_execution(&execution).await?;
        tx.send(&[ExecutionEvent::new(&execution.id)]).await?;
        tx.commit().await?;
        Ok(execution)
    }

    /// Fires a flow's webhook trigger: `trigger.body`, `trigger.headers` and
    /// `trigger.parameters` are what the request carried.
    pub async fn webhook(
        &self,
        namespace: &str,
        id: &str,
        key: &str,
        variables: Map<String, Value>,
    ) -> Result<Execution, ServiceError> {
        let flow = self.flows.latest(namespace, id).await?;
        let Some(trigger_id) = flow.webhook_key_matches(key, &self.renderer) else {
            return Err(ServiceError::WebhookNotFound(flow.key()));
        };
        let trigger = ExecutionTrigger {
            id: trigger_id.to_string(),
            kind: crate::flow::WEBHOOK_TYPE.into(),
            variables,
        };
        self.create_execution(namespace, id, Map::new(), Vec::new(), Some(trigger))
            .await
    }

    /// Resumes a paused execution with its Pause's `onResume` inputs (typed, defaults
    /// applied, required ones checked), as Kestra's `POST /api/v1/executions/{id}/resume`:
    /// the paused task run goes on, and the execution goes back to the executor, in one
    /// transaction that holds the execution's row.
    pub async fn resume(
        &self,
        id: &str,
        inputs: Map<String, Value>,
    ) -> Result<Execution, ServiceError> {
        let mut tx = self.store.begin().await?;
        let mut exec = tx
            .load_execution(id)
            .await?
            .ok_or_else(|| ServiceError::ExecutionNotFound(id.into()))?;
        if exec.state.current != crate::model::StateType::Paused {
            return Err(crate::tasks::ResumeError::NotPaused(id.into()).into());
        }
        let flow = self
            .flows
            .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
            .await?;
        let declared = crate::tasks::on_resume_inputs(&exec, &flow);
        let inputs = resolve_inputs(declared, &inputs).map_err(|source| ServiceError::Inputs {
            flow: flow.key(),
            source,
        })?;
        crate::tasks::resume(&mut exec, &flow, Some(inputs))?;
        tx.save_execution(&exec).await?;
        tx.send(&[ExecutionEvent::new(&exec.id)]).await?;
        tx.commit().await?;
        Ok(exec)
    }

    /// Requests the kill of an execution, as Kestra's `DELETE /api/v1/executions/{id}/kill`:
    /// the request is queued for the executor, which moves the execution to KILLING, has
    /// the workers stop its running task runs, kills its subflow executions when
    /// `cascade`, and ends it KILLED. An ended execution is refused unless `cascade`, as
    /// Kestra accepts it then for its subflow executions.
    pub async fn kill(&self, id: &str, cascade: bool) -> Result<(), ServiceError> {
        let exec = self.execution(id).await?;
        if exec.state.is_terminal() && !cascade {
            return Err(ServiceError::Ended(id.into()));
        }
        let mut tx = self.store.begin().await?;
        tx.send(&[ExecutionKilled::requested(id, cascade)]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Restarts an ended execution in place, as Kestra's
    /// `POST /api/v1/executions/{id}/restart` ([`crate::executor::restart`]), in one
    /// transaction that holds the execution's row, and queues it for the executor.
    pub async fn restart(&self, id: &str) -> Result<Execution, ServiceError> {
        let mut tx = self.store.begin().await?;
        let mut exec = tx
            .load_execution(id)
            .await?
            .ok_or_else(|| ServiceError::ExecutionNotFound(id.into()))?;
        let flow = self
            .flows
            .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
            .await?;
        crate::executor::restart(&flow, &mut exec)?;
        tx.save_execution(&exec).await?;
        tx.send(&[ExecutionEvent::new(&exec.id)]).await?;
        tx.commit().await?;
        Ok(exec)
    }

    pub async fn execution(&self, id: &str) -> Result<Execution, ServiceError> {
        self.store
            .execution(id)
            .await?
            .ok_or_else(|| ServiceError::ExecutionNotFound(id.into()))
    }

    pub async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, ServiceError> {
        Ok(self.store.logs(execution_id).await?)
    }

    /// Waits until the execution is terminal (woken by the executor in this process, with a
    /// poll as a fallback for executors in other processes).
    pub async fn wait_terminal(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Execution, ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.store.notifier().terminated.notified();
            let exec = self.execution(id).await?;
            if exec.state.is_terminal() {
                return Ok(exec);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::Timeout {
                    id: id.into(),
                    waited: timeout,
                    state: exec.state.current.to_string(),
                });
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Waits until the execution has ended, and every execution it started (its Subflow
    /// task runs' `executionId` outputs and its ForEachItems' batches, at every depth) has
    /// too; returns the first. The
    /// executions Flow triggers start are not its own: Kestra gives them no parent and
    /// their own correlation id, and a chain of Flow triggers need not end.
    pub async fn wait_tree(&self, id: &str, timeout: Duration) -> Result<Execution, ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let root = self.wait_terminal(id, timeout).await?;
        let mut pending = started_executions(&root);
        pending.extend(self.batches_started(&root).await?);
        pending.extend(self.next_attempt(&root, deadline, timeout).await?);
        while let Some(child) = pending.pop() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ended = self.wait_terminal(&child, left).await?;
            pending.extend(started_executions(&ended));
            pending.extend(self.batches_started(&ended).await?);
            pending.extend(self.next_attempt(&ended, deadline, timeout).await?);
        }
        Ok(root)
    }

    /// The executions `exec`'s ForEachItem task runs started, one per batch. A ForEachItem
    /// without `wait` ends before them.
    async fn batches_started(&self, exec: &Execution) -> Result<Vec<String>, ServiceError> {
        if !has_batches(exec) {
            return Ok(Vec::new());
        }
        let flow = self
            .flows
            .get(&exec.namespace, &exec.flow_id, exec.flow_revision)
            .await?;
        let batches = batch_executions(self.store.as_ref(), &flow, exec).await?;
        Ok(batches.into_iter().map(|e| e.id).collect())
    }

    /// Every attempt of `exec`'s run, first to last: `exec`, and the executions its
    /// `CREATE_NEW_EXECUTION` retries started after it.
    pub async fn attempts(&self, exec: &Execution) -> Result<Vec<Execution>, ServiceError> {
        if exec.state.current != StateType::Retried {
            return Ok(vec![exec.clone()]);
        }
        let mut all: Vec<Execution> = self
            .store
            .executions_of_flow(&exec.namespace, &exec.flow_id)
            .await?
            .into_iter()
            .filter(|e| {
                e.original_id == exec.original_id && e.attempt_number() >= exec.attempt_number()
            })
            .collect();
        all.sort_by_key(Execution::attempt_number);
        Ok(all)
    }

    /// The execution a `CREATE_NEW_EXECUTION` retry starts after `ended`, once the executor
    /// created it (at its retry delay); `None` unless `ended` is RETRIED.
    async fn next_attempt(
        &self,
        ended: &Execution,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Option<String>, ServiceError> {
        if ended.state.current != StateType::Retried {
            return Ok(None);
        }
        let attempt = ended.attempt_number() + 1;
        loop {
            let next = self
                .store
                .executions_of_flow(&ended.namespace, &ended.flow_id)
                .await?
                .into_iter()
                .find(|e| e.original_id == ended.original_id && e.attempt_number() == attempt);
            if let Some(next) = next {
                return Ok(Some(next.id));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::Timeout {
                    id: ended.id.clone(),
                    waited: timeout,
                    state: "RETRIED, its next attempt not created yet".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every queued message is consumed and every log line a worker of this
    /// process accepted is committed (all log lines indexed, all results handled). For
    /// tests and the harness, which count rows afterwards.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), ServiceError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = self.store.counts().await?;
            let lines = self.lines_in_flight.load(Ordering::Acquire);
            if c.pending_messages == 0 && c.running_jobs == 0 && lines == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::Timeout {
                    id: "queue".into(),
                    waited: timeout,
                    state: format!(
                        "{} messages pending, {} jobs running, {lines} log lines unwritten",
                        c.pending_messages, c.running_jobs
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The `namespace` of a stored flow's source, read without validating the flow: the KV
/// stores' namespace rules need only which namespaces hold flows.
fn flow_namespace(source: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Namespace {
        namespace: String,
    }
    serde_yaml_ng::from_str::<Namespace>(source)
        .ok()
        .map(|n| n.namespace)
}
