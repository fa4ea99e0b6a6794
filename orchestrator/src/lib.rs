//! flowbench's reference orchestrator, modelled on Kestra's JDBC architecture.
//!
//! ```text
//! HTTP API / webhook / CLI ─► queue(execution) ─► EXECUTOR ─► queue(worker_task) ─► WORKER (N threads)
//!                                   ▲                │ persists executions              │ emits logs
//!                                   └── queue(worker_task_result) ◄─────────────────────┘
//!                                                      queue(log) ─► INDEXER ─► logs table
//! ```
//!
//! Every piece of state lives in SQL tables (embedded SQLite by default), so any component
//! can be killed and restarted without losing an execution or a log line.
//!
//! The primary types are [`service::Orchestrator`] (connect, start components, deploy
//! flows, trigger executions), [`flow::Flow`] (a parsed Kestra flow) and
//! [`model::Execution`] (an execution in Kestra's JSON shape).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use orchestrator::service::{Components, Config, Orchestrator};
//! let o = Orchestrator::connect(Config {
//!     db: "sqlite".into(),
//!     knobs: Default::default(),
//!     storage: std::env::temp_dir().join("flowbench-storage"),
//!     timing: Default::default(),
//! })
//! .await?;
//! o.start(Components::ALL);
//! let flow = o.deploy("id: hello\nnamespace: demo\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n", "inline").await?;
//! let exec = o.create_execution(&flow.namespace, &flow.id, Default::default(), vec![], None).await?;
//! let done = o.wait_terminal(&exec.id, std::time::Duration::from_secs(10)).await?;
//! assert_eq!(done.state.current.as_str(), "SUCCESS");
//! o.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`model`]: executions, task runs, states and log entries, in Kestra's JSON shape.
//! - [`flow`]: the Kestra YAML model, its validating loader, and the flow cache.
//! - [`flow_trigger`]: Kestra's `Flow` trigger: its conditions, preconditions and time
//!   windows, and the executions it starts when another flow's execution changes state.
//! - [`tasks`]: one file per core task type.
//! - [`expression`]: Pebble-style `{{ … }}` rendering with minijinja.
//! - [`repository`]: the tables behind one interface, written once over sqlx, with one
//!   dialect module per database for its SQL text and capabilities.
//! - [`executor`]: consumes executions and results; decides what runs next.
//! - [`worker`]: the thread pool that runs task runs.
//! - [`indexer`]: writes queued log lines in batches.
//! - [`run_context`]: the variables a task renders against.
//! - [`storage`]: internal storage for task files and `logToFile` logs.
//! - [`kv`]: Kestra's namespace key-value stores and the state store, kept in internal
//!   storage.
//! - [`knobs`]: the optimisation switches, before/after.
//! - [`provision`]: `--provision containers`, a database server in a container.
//! - [`service`]: the handle the CLI, the webserver and the tests use.
//! - [`webserver`]: the HTTP API.

pub mod executor;
pub mod expression;
pub mod fileserde;
pub mod flow;
pub mod flow_trigger;
pub mod indexer;
pub mod knobs;
pub mod kv;
pub mod model;
pub mod provision;
pub mod queue;
pub mod repository;
pub mod run_context;
pub mod scheduler;
pub mod service;
pub mod storage;
pub mod tasks;
pub mod webserver;
pub mod worker;
