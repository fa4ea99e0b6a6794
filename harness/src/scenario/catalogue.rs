//! The names a scenario file may use: knobs with their allowed values, and metrics.
//!
//! Knob names and values are those of `DESIGN.md` ("The seven optimisations as
//! switches"); the orchestrator accepts the same strings through `--set knob=value`.

/// The values a knob accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobValues {
    /// One of these strings; the first is the "before" behaviour, the last the default.
    OneOf(&'static [&'static str]),
    /// An integer ≥ 1.
    PositiveInteger,
}

/// One knob of the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// Its name, as in `--set name=value`.
    pub name: &'static str,
    /// What it accepts.
    pub values: KnobValues,
}

/// Every knob a variant may set.
pub const KNOBS: &[Knob] = &[
    Knob {
        name: "serde.mode",
        values: KnobValues::OneOf(&["naive", "batched"]),
    },
    Knob {
        name: "jdbc.json-mapping",
        values: KnobValues::OneOf(&["normalize", "direct"]),
    },
    Knob {
        name: "queued.index",
        values: KnobValues::OneOf(&["flow", "flow-date"]),
    },
    Knob {
        name: "logs.indexing",
        values: KnobValues::OneOf(&["sync", "batched"]),
    },
    Knob {
        name: "worker.threads",
        values: KnobValues::PositiveInteger,
    },
    Knob {
        name: "worker.task-handling",
        values: KnobValues::OneOf(&["mutate", "immutable"]),
    },
];

/// Every metric name a scenario may declare, with what it measures.
///
/// The measurement layer produces the first group for every run; the others come from
/// the workloads (the serde scenario reports records/s, the load generator latencies…).
pub const KNOWN_METRICS: &[(&str, &str)] = &[
    ("wall_ms", "wall-clock time of the run"),
    ("cpu_user_ms", "user-mode CPU time"),
    ("cpu_sys_ms", "kernel CPU time"),
    ("cpu_ms", "user + kernel CPU time"),
    ("cpu_utilisation", "CPU time / (wall time × cores), 0..1"),
    ("peak_rss_kib", "peak resident set size"),
    (
        "idle_thread_rss_kib",
        "resident memory one idle worker thread adds to the process (VmRSS)",
    ),
    (
        "idle_thread_vsz_kib",
        "address space one idle worker thread adds to the process (VmSize)",
    ),
    (
        "idle_thread_stack_kib",
        "an idle worker thread's stack mapping and guard page, from /proc/self/smaps",
    ),
    (
        "alloc_count",
        "allocator calls that obtained memory (counting allocator)",
    ),
    ("alloc_bytes", "bytes allocated (counting allocator)"),
    ("rows_written", "database rows written"),
    (
        "execution_duration_ms",
        "an execution's own duration, from its state history (Kestra's state_duration)",
    ),
    (
        "task_duration_ms",
        "a task run's duration, from its state history",
    ),
    (
        "records_per_s",
        "records read, written or converted per second",
    ),
    ("mb_per_s", "megabytes processed per second"),
    (
        "throughput_per_s",
        "completed executions or task runs per second",
    ),
    ("task_runs_per_s", "task runs completed per second"),
    (
        "worker_cpu_per_task_run_us",
        "CPU time per task run of every thread the worker owns (`worker-*`)",
    ),
    (
        "task_thread_cpu_per_task_run_us",
        "CPU time per task run of the worker's task threads (`worker-thread-*`) only",
    ),
    (
        "indexed_ms",
        "from execution creation until it ended and every log line was in the logs table",
    ),
    (
        "commits_per_line",
        "database transactions the process committed, per log line the task emitted",
    ),
    (
        "lateness_p50_ms",
        "median time from a schedule's tick to the creation of its execution",
    ),
    (
        "lateness_p99_ms",
        "99th percentile time from a schedule's tick to the creation of its execution",
    ),
    (
        "lateness_max_ms",
        "longest time from a schedule's tick to the creation of its execution",
    ),
    (
        "ticks_missed",
        "schedule ticks, between a schedule's first and last, that started no execution",
    ),
    ("ticks_doubled", "executions beyond one per schedule tick"),
    ("executions", "executions started"),
    ("latency_avg_ms", "mean request latency"),
    ("latency_p50_ms", "median request latency"),
    ("latency_p90_ms", "90th percentile request latency"),
    ("latency_p99_ms", "99th percentile request latency"),
    ("latency_p999_ms", "99.9th percentile request latency"),
    (
        "achieved_rate_per_s",
        "successful requests per second under open-loop load",
    ),
    ("errors", "failed requests"),
    (
        "saturation_rate_per_min",
        "first offered rate at which the system saturated",
    ),
    (
        "executions_lost",
        "accepted requests whose execution did not end SUCCESS with all its log lines",
    ),
    (
        "db_commits_per_execution",
        "database commits per execution (PostgreSQL xact_commit, MySQL Com_commit)",
    ),
    (
        "db_rollbacks_per_execution",
        "database rollbacks per execution (PostgreSQL xact_rollback, MySQL Com_rollback)",
    ),
    (
        "db_tuples_fetched_per_execution",
        "PostgreSQL tup_fetched per execution",
    ),
    (
        "db_tuples_returned_per_execution",
        "PostgreSQL tup_returned per execution",
    ),
    (
        "db_rows_read_per_execution",
        "MySQL Handler_read_* per execution",
    ),
    (
        "pop_latency_p50_us",
        "median pop latency of the execution_queued table",
    ),
    (
        "pop_latency_p99_us",
        "99th percentile pop latency of the execution_queued table",
    ),
    (
        "concurrent_pops_per_s",
        "execution_queued pops per second with several poppers on one flow",
    ),
    (
        "concurrent_pop_latency_p50_us",
        "median pop latency with several poppers on one flow",
    ),
    (
        "concurrent_pop_latency_p99_us",
        "99th percentile pop latency with several poppers on one flow",
    ),
    (
        "empty_pops",
        "pops that found nothing while the flow still held queued executions",
    ),
];

/// The knob called `name`, if any.
pub fn knob(name: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.name == name)
}

/// Whether `name` is in [`KNOWN_METRICS`].
pub fn is_known_metric(name: &str) -> bool {
    KNOWN_METRICS.iter().any(|(n, _)| *n == name)
}
