//! Scenario files: `scenarios/<id>/scenario.toml`, parsed and validated.
//!
//! A scenario declares one experiment: the claim it checks, its variants (knob values),
//! its parameters and sweeps, its metrics and how each is gated, its repetitions and
//! warm-up, smaller settings for `--quick`, and the backends it runs on. Parsing is strict
//! (`deny_unknown_fields`, known knobs and metrics only), so a typo fails loudly with the
//! file, the field and the line, instead of silently measuring the default.
//!
//! ```toml
//! id = "serde"
//! title = "FileSerde: naive vs batched record I/O"
//! workload = "serde"              # serde | json-mapping | queued-index | log-heavy |
//!                                 # worker-threads | worker-mutation | e2e-webhook | foreach
//! repetitions = 10
//! warmup = 2
//! backends = ["sqlite"]           # sqlite | postgres | mysql | mssql
//!
//! [claim]
//! text = "Batched serde reads and writes records 20–40% faster"
//! kestra_figure = "+20–40%"
//! direction = "lower"             # the metric goes lower | higher from first to last variant
//! expected_ratio = 0.7
//! metric = "wall_ms"              # optional; must be a declared metric
//! kestra_commit = "9b8a1c482"     # optional; or a list: the commits the first
//!                                 # variant's ("before") path follows
//! before = "Jackson writeValueAsBytes per record, 8 KiB buffers"   # optional
//! kestra_backends = ["postgres"]  # optional; where Kestra made the change (default: all)
//!
//! [[variant]]                     # the first variant is the baseline ("before")
//! name = "naive"
//! knobs = { "serde.mode" = "naive" }
//!
//! [[variant]]
//! name = "batched"
//! knobs = { "serde.mode" = "batched" }
//! # flow = "flows/convert.yaml"   # optional, relative to the scenario folder; must exist
//!
//! [params]                        # scalars, interpreted by the workload
//! format = "json"
//!
//! [sweep]                         # non-empty lists; one run set per value
//! records = [10000, 100000]
//!
//! [[metric]]
//! name = "wall_ms"                # see KNOWN_METRICS
//! unit = "ms"
//! better = "lower"                # lower | higher
//! kind = "timing"                 # timing | counter
//! gate = { tolerance = 0.10 }     # optional GateOverride
//!
//! [quick]                         # --quick: overrides of the above, all optional
//! repetitions = 4
//! warmup = 1
//! sweep = { records = [10000] }
//! ```
//!
//! # Enough repetitions to reach α
//!
//! A timing metric is judged with a two-sided Mann–Whitney U test, which cannot go below
//! `p = 2 / C(2r, r)` with `r` runs a side: 0.1 for 3, 0.029 for 4. The loader therefore
//! raises `repetitions` and `[quick] repetitions` to the fewest runs that can reach the
//! smallest α among the scenario's timing metrics (4 for the default α = 0.05), and
//! records it ([`RepetitionFloor`]); `flowbench run` prints a note naming the file.
//! Raising, not refusing, keeps a quick run quick while its verdicts stay meaningful.
//!
//! Knobs: [`KNOBS`]. Metric names: [`KNOWN_METRICS`]. Errors: [`ScenarioError`].

mod catalogue;
mod error;
mod raw;

pub use catalogue::{KNOBS, KNOWN_METRICS, Knob, KnobValues, is_known_metric, knob};
pub use error::ScenarioError;
pub use raw::repetition_floor;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gate::{Direction, GateOverride, GatePolicy, MetricKind};

/// The file name inside each scenario folder.
pub const SCENARIO_FILE: &str = "scenario.toml";

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// Its id, equal to its folder name.
    pub id: String,
    /// One-line title.
    pub title: String,
    /// Which workload runs it.
    pub workload: Workload,
    /// The claim it checks.
    pub claim: Claim,
    /// Its variants; the first is the baseline.
    pub variants: Vec<Variant>,
    /// Scalar parameters for the workload.
    pub params: BTreeMap<String, ParamValue>,
    /// Swept parameters: each axis is a non-empty list.
    pub sweep: BTreeMap<String, Vec<ParamValue>>,
    /// Declared metrics.
    pub metrics: Vec<Metric>,
    /// Measured runs per variant.
    pub repetitions: u32,
    /// Uncounted warm-up runs per variant.
    pub warmup: u32,
    /// The `--quick` overrides.
    pub quick: Quick,
    /// Backends it applies to.
    pub backends: Vec<Backend>,
    /// Its folder, against which flow and input paths resolve.
    pub dir: PathBuf,
    /// The fewest repetitions that can reach α, and what the loader raised to it.
    pub floor: RepetitionFloor,
}

/// The fewest runs a side with which every timing metric of a scenario can reach its α
/// ([`crate::stats::mann_whitney::min_repetitions`]), and the declared repetitions the
/// loader raised to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RepetitionFloor {
    /// The fewest repetitions; 1 when the scenario has no timing metric (counters are
    /// judged without a test).
    pub min: u32,
    /// The smallest α among the timing metrics, which sets `min`.
    pub alpha: f64,
    /// `repetitions` as written, when it was below `min`.
    pub raised_full: Option<u32>,
    /// `[quick] repetitions` as written, when it was below `min`.
    pub raised_quick: Option<u32>,
}

/// The kind of workload a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// FileSerde read/write/convert (`serde.mode`).
    Serde,
    /// Mapping execution rows from JSON columns (`jdbc.json-mapping`).
    JsonMapping,
    /// Popping `execution_queued` under a concurrency limit (`queued.index`).
    QueuedIndex,
    /// A task emitting many log lines (`logs.indexing`, `logToFile`, `logLevel`).
    LogHeavy,
    /// Throughput and memory across worker thread counts (`worker.threads`).
    WorkerThreads,
    /// Worker CPU per task run (`worker.task-handling`).
    WorkerMutation,
    /// Open-loop load on a webhook trigger (Kestra's benchmark B1/B2).
    E2eWebhook,
    /// ForEach over 100 values (Kestra's benchmark B3).
    Foreach,
    /// How late the scheduler fires many schedules' ticks.
    Scheduler,
}

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQL Server.
    Mssql,
}

/// Which way the claim says the metric moves from the first variant to the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedChange {
    /// The metric decreases (a time, CPU, allocations).
    Lower,
    /// The metric increases (a throughput).
    Higher,
}

/// The claim a scenario checks, beside Kestra's published figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// The claim in words.
    pub text: String,
    /// Kestra's figure as published, e.g. `"+20–40%"`.
    pub kestra_figure: String,
    /// The expected direction of change.
    pub direction: ExpectedChange,
    /// Expected `last / first` ratio of the metric's medians.
    pub expected_ratio: f64,
    /// The metric the claim is about, when it names one.
    pub metric: Option<String>,
    /// The Kestra commits the first ("before") variant's code path follows, as
    /// `kestra_commit` gives them: `"84d845cde"`, `"plugin-serdes 7c4a3a3"`.
    pub kestra_commits: Vec<String>,
    /// What the "before" path does, in a phrase, so that a reader can check it against
    /// Kestra's code without opening flowbench's.
    pub before: Option<String>,
    /// The backends on which Kestra made the change; empty when it made it on every one.
    /// On any other backend the knob still works, but there is no Kestra claim to
    /// reproduce: `jdbc.json-mapping` changed PostgreSQL only, as MySQL and H2 read a
    /// plain string before and after.
    pub kestra_backends: Vec<Backend>,
    /// Kestra's published figures for the same measurement (`[[claim.published]]`),
    /// which reports draw beside the run's own.
    pub published: Vec<reports::results::PublishedSeries>,
}

impl Claim {
    /// Whether Kestra made the claimed change on `backend` (a results backend name:
    /// `sqlite`, `postgres`, `mysql`, `mssql`, or `none` for scenarios without a
    /// database).
    pub fn has_kestra_counterpart(&self, backend: &str) -> bool {
        self.kestra_backends.is_empty() || self.kestra_backends.iter().any(|b| b.name() == backend)
    }
}

impl Backend {
    /// The name results files and `--db` use: `sqlite`, `postgres`, `mysql`, `mssql`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Mssql => "mssql",
        }
    }
}

/// One variant: a name and the knob values that define it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    /// Its name, unique in the scenario.
    pub name: String,
    /// Knob name → value, as `--set name=value` takes them (integers in decimal).
    pub knobs: BTreeMap<String, String>,
    /// A flow file for this variant, relative to the scenario folder.
    pub flow: Option<PathBuf>,
    /// What generates the load (`e2e-webhook` only): flowbench's own generator, or an
    /// outside tool that checks it.
    pub load: LoadTool,
}

/// The load generator of an `e2e-webhook` variant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadTool {
    /// [`crate::loadgen`], open loop.
    #[default]
    Flowbench,
    /// `hey -c 1 -q RATE` (Debian's `hey`): one connection, one request every 1/RATE s.
    Hey,
}

/// A declared metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// One of [`KNOWN_METRICS`].
    pub name: String,
    /// Display unit.
    pub unit: String,
    /// Which way is better.
    pub better: Direction,
    /// Timing or counter.
    pub kind: MetricKind,
    /// Changes to the gate policy for this metric.
    pub gate: Option<GateOverride>,
}

impl Metric {
    /// `base` with this metric's override applied.
    pub fn policy(&self, base: &GatePolicy) -> GatePolicy {
        match &self.gate {
            Some(o) => base.with_override(o),
            None => *base,
        }
    }
}

/// A scalar parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A whole number.
    Integer(i64),
    /// A decimal number.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// Text, e.g. `"4x-cores"` or a format name.
    Text(String),
}

/// The overrides `--quick` applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quick {
    /// Replaces `repetitions`.
    pub repetitions: Option<u32>,
    /// Replaces `warmup`.
    pub warmup: Option<u32>,
    /// Replaces these `params` entries.
    pub params: BTreeMap<String, ParamValue>,
    /// Replaces these `sweep` axes.
    pub sweep: BTreeMap<String, Vec<ParamValue>>,
}

impl Scenario {
    /// This scenario with its `--quick` overrides applied.
    pub fn quick(&self) -> Scenario {
        let mut s = self.clone();
        s.repetitions = self.quick.repetitions.unwrap_or(self.repetitions);
        s.warmup = self.quick.warmup.unwrap_or(self.warmup);
        s.params.extend(self.quick.params.clone());
        s.sweep.extend(self.quick.sweep.clone());
        s
    }

    /// Notes for the repetitions the loader raised, naming the file, for a run with or
    /// without `--quick`.
    pub fn repetition_notes(&self, quick: bool) -> Vec<String> {
        let f = &self.floor;
        let raised = if quick {
            f.raised_quick.map(|r| ("[quick] repetitions", r)).or(f
                .raised_full
                .filter(|_| self.quick.repetitions.is_none())
                .map(|r| ("repetitions", r)))
        } else {
            f.raised_full.map(|r| ("repetitions", r))
        };
        raised
            .map(|(field, declared)| {
                format!(
                    "{}: {field} = {declared} raised to {}: with fewer runs a side the \
                     Mann–Whitney test cannot reach α = {} (its smallest p is {:.3})",
                    self.dir.join(SCENARIO_FILE).display(),
                    f.min,
                    f.alpha,
                    crate::stats::mann_whitney::min_p_value(declared as usize, declared as usize),
                )
            })
            .into_iter()
            .collect()
    }

    /// The declared metric called `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// Parses and validates scenario text; `path` names the file in errors, and its folder
/// is where flow paths resolve.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let ctx = raw::Ctx { text, path };
    let raw: raw::RawScenario = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| {
            // `Spanned` fields add a private segment to the path; drop it.
            let field = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            ScenarioError::Parse {
                path: path.to_path_buf(),
                // serde_path_to_error writes "." for the document root.
                field: (field != ".").then_some(field),
                line: inner.span().map(|s| ctx.line(s.start)),
                // toml's messages can span lines ("invalid string\nexpected ..."); keep one.
                message: inner.message().trim_end().replace('\n', "; "),
            }
        })?;
    raw.validate(&ctx)
}

/// Loads one `scenario.toml` and checks that its `id` is its folder's name.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let scenario = parse(&text, path)?;
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|f| f.to_str());
    if let Some(folder) = folder {
        if folder != scenario.id {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("id"))
                .map(|i| i + 1);
            return Err(ScenarioError::Invalid {
                path: path.to_path_buf(),
                field: "id".into(),
                line,
                message: format!(
                    "id `{}` differs from its folder name `{folder}`",
                    scenario.id
                ),
            });
        }
    }
    Ok(scenario)
}

/// Loads every `<dir>/<id>/scenario.toml`, sorted by id. Folders without a scenario
/// file are skipped; the first bad file is an error.
pub fn load_all(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let io_err = |source| ScenarioError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let file = entry.map_err(io_err)?.path().join(SCENARIO_FILE);
        if file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    let mut scenarios = files
        .iter()
        .map(|f| load(f))
        .collect::<Result<Vec<_>, _>>()?;
    scenarios.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(scenarios)
}

#[cfg(test)]
mod tests;
