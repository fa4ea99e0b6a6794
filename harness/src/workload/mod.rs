//! Workloads: the code that drives the orchestrator for one kind of scenario and turns
//! what it observes into samples.
//!
//! A scenario folder says *what* to measure (variants, params, metrics, repetitions); its
//! `workload` names the code that knows *how*. Each kind has one file here, and [`run`]
//! dispatches on [`Workload`]. A workload
//!
//! * drives the orchestrator in-process through `orchestrator::service::Orchestrator` (or
//!   its `Store` directly, when the claim is about one query or one decode);
//! * runs the variants paired and interleaved ([`crate::interleave::schedule`]), so drift
//!   hits every variant alike, and leaves warm-up runs uncounted;
//! * records one sample per measured run and metric in a [`Recorder`], which keeps only
//!   the metrics the scenario declares.
//!
//! Statistics, verdicts and the results file are built from the recorder afterwards, by
//! [`crate::suite`]; nothing here decides whether a claim holds.
//!
//! A workload that cannot run says why: [`WorkloadError::Skipped`] (not applicable here:
//! a backend that is not reachable, a module not built), [`WorkloadError::Failed`] (it
//! tried and broke), or [`WorkloadError::Interrupted`] (Ctrl-C). It never invents a figure.

pub mod db_read;
pub mod driver;
mod e2e_webhook;
mod flows;
mod foreach;
mod json_mapping;
mod log_heavy;
mod probe;
mod queued_index;
mod scheduler;
mod serde;
mod server_db;
pub mod server_process;
mod worker_mutation;
mod worker_threads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orchestrator::knobs::Knobs;
use orchestrator::queue::Timing;
use orchestrator::service::{Components, Config, Orchestrator};
use reports::results::{Params, Percentiles, VariantResult};
use tokio_util::sync::CancellationToken;

use crate::measure::CountingAllocator;
use crate::scenario::{ParamValue, Scenario, Variant, Workload};

pub use probe::{Probe, RunSample, task_threads_cpu, worker_cpu};
pub use server_db::ServerDatabases;

/// Why a workload produced no (or not all) numbers.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The scenario does not apply here; the reason is recorded as `skipped`.
    #[error("skipped: {0}")]
    Skipped(String),
    /// It ran and broke; the message is recorded as `failed`.
    #[error("{0}")]
    Failed(String),
    /// Ctrl-C arrived while it ran.
    #[error("interrupted")]
    Interrupted,
}

impl WorkloadError {
    /// A failure with `context` in front of an error's whole chain.
    pub fn failed(context: impl std::fmt::Display, e: impl Into<anyhow::Error>) -> Self {
        WorkloadError::Failed(format!("{context}: {:#}", e.into()))
    }
}

/// `Result` for workloads.
pub type Result<T, E = WorkloadError> = std::result::Result<T, E>;

/// Hooks a workload calls so the CLI can show progress bars; every hook defaults to
/// nothing, so tests can pass [`NoProgress`].
pub trait Progress: Send + Sync {
    /// `total` runs are about to start (warm-ups included).
    fn runs(&self, _total: u64) {}
    /// One run is starting: which variant, which repetition, what it is doing.
    fn run(&self, _variant: &str, _label: &str) {}
    /// A run finished.
    fn done(&self) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The database a scenario runs against.
#[derive(Debug, Clone)]
pub struct Database {
    /// `sqlite`, `sqlite://PATH`, or a server URL, passed through to the orchestrator.
    pub url: String,
    /// `sqlite`, `postgres`, `mysql` or `mssql`.
    pub backend: crate::scenario::Backend,
}

impl Database {
    /// The backend a URL names, or `None` for a URL no backend takes.
    pub fn parse(url: &str) -> Option<Database> {
        use crate::scenario::Backend;
        let scheme = url.split("://").next().unwrap_or(url);
        let scheme = scheme.split(':').next().unwrap_or(scheme);
        let backend = match scheme {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            "mysql" | "mariadb" => Backend::Mysql,
            "mssql" | "sqlserver" => Backend::Mssql,
            _ => return None,
        };
        Some(Database {
            url: url.to_string(),
            backend,
        })
    }

    /// The backend's name as results files write it.
    pub fn backend_name(&self) -> &'static str {
        use crate::scenario::Backend;
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Mssql => "mssql",
        }
    }

    /// Whether this is the embedded default, where each run gets a new file. (On a
    /// PostgreSQL or MySQL server each run gets a new database instead, through
    /// [`ServerDatabases`]; other URLs are shared by every run.)
    fn is_default_sqlite(&self) -> bool {
        self.url == "sqlite"
    }
}

/// Everything a workload needs for one scenario on one database.
pub struct Env<'a> {
    /// The scenario, with `--quick` already applied when asked for.
    pub scenario: &'a Scenario,
    pub db: Database,
    /// Knob values from `--set`; a variant's own knobs win over them.
    pub base_knobs: Knobs,
    /// `--threads`, for the thread sweep.
    pub threads: Option<Vec<usize>>,
    /// The binary's counting allocator; `None` in a dhat build, where counters would
    /// read zero, so the allocation metrics are left out rather than faked.
    pub alloc: Option<&'static CountingAllocator>,
    pub progress: &'a dyn Progress,
    /// Cancelled on Ctrl-C; workloads check it between runs.
    pub cancel: CancellationToken,
    /// A scratch folder for this scenario: database files, internal storage.
    pub scratch: PathBuf,
    /// Whether `--quick` is in force.
    pub quick: bool,
    /// On a PostgreSQL or MySQL server, where each run's database is created
    /// ([`ServerDatabases`]); `None` elsewhere.
    pub server_dbs: Option<ServerDatabases>,
}

impl Env<'_> {
    /// The knobs of a variant: `--set` values, then the variant's own.
    pub fn knobs(&self, variant: &Variant) -> Result<Knobs> {
        let mut knobs = self.base_knobs.clone();
        for (k, v) in &variant.knobs {
            knobs
                .set(k, v)
                .map_err(|e| WorkloadError::failed(format!("variant `{}`", variant.name), e))?;
        }
        Ok(knobs)
    }

    /// A database URL for one run called `label`: a new file in the scratch folder for
    /// the embedded default, a new database on a PostgreSQL or MySQL server, the given
    /// URL otherwise.
    pub async fn database_url(&self, label: &str) -> Result<String> {
        if self.db.is_default_sqlite() {
            let file = self.scratch.join(format!("{label}.db"));
            return Ok(format!("sqlite://{}", file.display()));
        }
        match &self.server_dbs {
            Some(dbs) => dbs.create().await,
            None => Ok(self.db.url.clone()),
        }
    }

    /// Connects an orchestrator for one run on a database of its own and starts
    /// `components`.
    pub async fn boot(
        &self,
        knobs: &Knobs,
        label: &str,
        components: Components,
    ) -> Result<Arc<Orchestrator>> {
        let url = self.database_url(label).await?;
        self.boot_at(knobs, &url, label, components).await
    }

    /// [`boot`](Self::boot) on a database the caller already has, from
    /// [`database_url`](Self::database_url).
    pub async fn boot_at(
        &self,
        knobs: &Knobs,
        url: &str,
        label: &str,
        components: Components,
    ) -> Result<Arc<Orchestrator>> {
        let config = Config {
            db: url.to_string(),
            knobs: knobs.clone(),
            storage: self.scratch.join(format!("{label}-storage")),
            timing: Timing::default(),
        };
        let o = Orchestrator::connect(config)
            .await
            .map_err(|e| WorkloadError::failed("connecting the orchestrator", e))?;
        o.start(components);
        Ok(Arc::new(o))
    }

    /// Fails with [`WorkloadError::Interrupted`] once Ctrl-C arrived.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(WorkloadError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// A scalar parameter as an integer.
    pub fn int_param(&self, name: &str) -> Result<i64> {
        match self.scenario.params.get(name) {
            Some(ParamValue::Integer(n)) => Ok(*n),
            Some(other) => Err(self.bad_param(name, &format!("{other:?} is not an integer"))),
            None => Err(self.bad_param(name, "is missing")),
        }
    }

    /// A swept parameter's values.
    pub fn sweep(&self, name: &str) -> Result<&[ParamValue]> {
        self.scenario
            .sweep
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| self.bad_param(&format!("sweep.{name}"), "is missing"))
    }

    /// A swept parameter whose values are all integers.
    pub fn int_sweep(&self, name: &str) -> Result<Vec<i64>> {
        self.sweep(name)?
            .iter()
            .map(|v| match v {
                ParamValue::Integer(n) if *n > 0 => Ok(*n),
                other => Err(self.bad_param(
                    &format!("sweep.{name}"),
                    &format!("{other:?} is not a positive integer"),
                )),
            })
            .collect()
    }

    pub(crate) fn bad_param(&self, name: &str, problem: &str) -> WorkloadError {
        WorkloadError::Failed(format!(
            "{}: `{name}` {problem} (the `{}` workload needs it)",
            self.scenario
                .dir
                .join(crate::scenario::SCENARIO_FILE)
                .display(),
            workload_name(self.scenario.workload),
        ))
    }

    /// Waits for `d` unless Ctrl-C comes first.
    pub async fn sleep(&self, d: Duration) -> Result<()> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(WorkloadError::Interrupted),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}

/// The workload kind as scenario files spell it.
pub fn workload_name(w: Workload) -> &'static str {
    match w {
        Workload::Serde => "serde",
        Workload::JsonMapping => "json-mapping",
        Workload::QueuedIndex => "queued-index",
        Workload::LogHeavy => "log-heavy",
        Workload::WorkerThreads => "worker-threads",
        Workload::WorkerMutation => "worker-mutation",
        Workload::E2eWebhook => "e2e-webhook",
        Workload::Foreach => "foreach",
        Workload::Scheduler => "scheduler",
    }
}

/// Whether the workload uses a database at all (`serde` does not).
pub fn uses_database(w: Workload) -> bool {
    !matches!(w, Workload::Serde)
}

/// Runs the scenario's workload and returns what it recorded.
pub async fn run(env: &Env<'_>) -> Result<Recorder> {
    let mut rec = Recorder::new(env.scenario);
    match env.scenario.workload {
        Workload::Serde => serde::run(env, &mut rec).await?,
        Workload::JsonMapping => json_mapping::run(env, &mut rec).await?,
        Workload::QueuedIndex => queued_index::run(env, &mut rec).await?,
        Workload::LogHeavy => log_heavy::run(env, &mut rec).await?,
        Workload::WorkerThreads => worker_threads::run(env, &mut rec).await?,
        Workload::WorkerMutation => worker_mutation::run(env, &mut rec).await?,
        Workload::E2eWebhook => e2e_webhook::run(env, &mut rec).await?,
        Workload::Foreach => foreach::run(env, &mut rec).await?,
        Workload::Scheduler => scheduler::run(env, &mut rec).await?,
    }
    Ok(rec)
}

/// One metric's samples for one variant at one sweep point.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub variant: String,
    pub params: Params,
    pub metric: String,
    pub samples: Vec<f64>,
    /// Percentiles over every observation behind the samples (HDR-merged), for metrics
    /// that are latency distributions.
    pub latency: Option<Percentiles>,
}

/// Collects samples as a workload runs. Metrics the scenario does not declare are
/// dropped here, so a scenario folder chooses what is reported.
#[derive(Debug, Clone)]
pub struct Recorder {
    declared: Vec<String>,
    /// The variants as run: the scenario's, plus any the workload adds (a thread sweep).
    pub variants: Vec<VariantResult>,
    pub series: Vec<Series>,
    /// Every measured run's latency histogram merged per (variant, params, metric), from
    /// which the series' percentiles are computed.
    histograms: Vec<(String, Params, String, crate::latency::LatencyHistogram)>,
    /// Query plans the workload read from the database (`EXPLAIN`), for the report.
    pub plans: Vec<reports::results::QueryPlan>,
}

impl Recorder {
    /// An empty recorder listing the scenario's variants.
    pub fn new(scenario: &Scenario) -> Self {
        Recorder {
            declared: scenario.metrics.iter().map(|m| m.name.clone()).collect(),
            variants: scenario
                .variants
                .iter()
                .map(|v| VariantResult {
                    name: v.name.clone(),
                    knobs: v.knobs.clone(),
                    params: Params::new(),
                })
                .collect(),
            series: Vec::new(),
            histograms: Vec::new(),
            plans: Vec::new(),
        }
    }

    /// Adds a variant the scenario does not declare, unless one of that name exists.
    pub fn add_variant(&mut self, variant: VariantResult) {
        if !self.variants.iter().any(|v| v.name == variant.name) {
            self.variants.push(variant);
        }
    }

    fn slot(&mut self, variant: &str, params: &Params, metric: &str) -> Option<&mut Series> {
        if !self.declared.iter().any(|m| m == metric) {
            return None;
        }
        let i = match self
            .series
            .iter()
            .position(|s| s.variant == variant && s.metric == metric && &s.params == params)
        {
            Some(i) => i,
            None => {
                self.series.push(Series {
                    variant: variant.to_string(),
                    params: params.clone(),
                    metric: metric.to_string(),
                    samples: Vec::new(),
                    latency: None,
                });
                self.series.len() - 1
            }
        };
        Some(&mut self.series[i])
    }

    /// Records one sample; undeclared metrics and non-finite values are dropped.
    pub fn record(&mut self, variant: &str, params: &Params, metric: &str, value: f64) {
        if !value.is_finite() {
            return;
        }
        if let Some(s) = self.slot(variant, params, metric) {
            s.samples.push(value);
        }
    }

    /// Records several metrics of one run.
    pub fn record_all(&mut self, variant: &str, params: &Params, metrics: &[(&str, f64)]) {
        for (metric, value) in metrics {
            self.record(variant, params, metric, *value);
        }
    }

    /// Attaches latency percentiles to a series.
    pub fn set_latency(&mut self, variant: &str, params: &Params, metric: &str, p: Percentiles) {
        if let Some(s) = self.slot(variant, params, metric) {
            s.latency = Some(p);
        }
    }

    /// Merges one run's latency histogram into the series' and recomputes its percentiles.
    pub fn merge_latency(
        &mut self,
        variant: &str,
        params: &Params,
        metric: &str,
        histogram: &crate::latency::LatencyHistogram,
        unit: driver::LatencyUnit,
    ) {
        if histogram.is_empty() || self.slot(variant, params, metric).is_none() {
            return;
        }
        let i = match self
            .histograms
            .iter()
            .position(|(v, p, m, _)| v == variant && p == params && m == metric)
        {
            Some(i) => i,
            None => {
                self.histograms.push((
                    variant.to_string(),
                    params.clone(),
                    metric.to_string(),
                    crate::latency::LatencyHistogram::new(),
                ));
                self.histograms.len() - 1
            }
        };
        self.histograms[i].3.merge(histogram);
        let merged = match unit {
            driver::LatencyUnit::Micros => percentiles_us(&self.histograms[i].3),
            driver::LatencyUnit::Millis => percentiles_ms(&self.histograms[i].3),
        };
        self.set_latency(variant, params, metric, merged);
    }

    /// Whether anything was recorded.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.samples.is_empty())
    }
}

/// Sweep-point parameters from `(name, value)` pairs.
pub fn params<const N: usize>(pairs: [(&str, reports::results::ParamValue); N]) -> Params {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect::<BTreeMap<_, _>>()
}

/// Percentiles in milliseconds from an HDR histogram in microseconds.
pub fn percentiles_ms(h: &crate::latency::LatencyHistogram) -> Percentiles {
    let s = h.summary();
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        p50: ms(s.p50_us),
        p90: ms(s.p90_us),
        p99: ms(s.p99_us),
        p999: ms(s.p999_us),
    }
}

/// Percentiles in microseconds from an HDR histogram.
pub fn percentiles_us(h: &crate::latency::LatencyHistogram) -> Percentiles {
    let s = h.summary();
    Percentiles {
        p50: s.p50_us as f64,
        p90: s.p90_us as f64,
        p99: s.p99_us as f64,
        p999: s.p999_us as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_their_backend() {
        use crate::scenario::Backend;
        assert_eq!(Database::parse("sqlite").unwrap().backend, Backend::Sqlite);
        assert_eq!(
            Database::parse("sqlite:///tmp/x.db").unwrap().backend,
            Backend::Sqlite
        );
        assert_eq!(
            Database::parse("postgres://u:p@h/db").unwrap().backend,
            Backend::Postgres
        );
        assert_eq!(
            Database::parse("mysql://root@127.0.0.1/test")
                .unwrap()
                .backend,
            Backend::Mysql
        );
        assert!(Database::parse("oracle://x").is_none());
    }
}
