//! The orchestrator as one handle: connect to a database, start any set of components
//! (executor, worker, indexer) and talk to it (deploy flows, trigger executions, wait for
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
use crate::model::{Execution, ExecutionTrigger, Label, LogEntry, State, new_id, now};
use crate::queue::{ExecutionEvent, Timing};
use crate::repository::{self, Store};
use crate::storage::Storage;
use crate::worker::Worker;

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
}

impl Components {
    pub const ALL: Components = Components {
        executor: true,
        worker: true,
        indexer: true,
    };
    pub const NONE: Components = Components {
        executor: false,
        worker: false,
        indexer: false,
    };
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
        let mut flow = parse_flow(source, origin)?;
        let mut tx = self.store.begin().await?;
        flow.revision = tx.save_flow(&flow.namespace, &flow.id, source).await?;
        tx.commit().await?;
        if let Some(kv) = self.renderer.kv() {
            kv.namespaces().insert(&flow.namespace);
        }
        let flow = Arc::new(flow);
        self.flows.insert(flow.clone());
        Ok(flow)
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
        let flow = self.flows.latest(namespace, id).await?;
        if flow.disabled {
            return Err(ServiceError::Disabled(flow.key()));
        }
        let inputs =
            resolve_inputs(&flow.inputs, &inputs).map_err(|source| ServiceError::Inputs {
                flow: flow.key(),
                source,
            })?;
        let mut all_labels = flow.labels.clone();
        for l in labels {
            all_labels.retain(|x| x.key != l.key);
            all_labels.push(l);
        }
        let exec_id = new_id();
        let execution = Execution {
            original_id: exec_id.clone(),
            outputs: None,
            id: exec_id,
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
        };
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
        let Some(trigger_id) = flow.webhook_key_matches(key) else {
            return Err(ServiceError::WebhookNotFound(flow.key()));
        };
        let trigger = ExecutionTrigger {
            id: trigger_id.to_string(),
            kind: "io.kestra.plugin.core.trigger.Webhook".into(),
            variables,
        };
        self.create_execution(namespace, id, Map::new(), Vec::new(), Some(trigger))
            .await
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
