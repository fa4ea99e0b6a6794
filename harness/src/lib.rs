//! The flowbench harness: scenarios → measurement → statistics → gate.
//!
//! It runs the orchestrator's A/B experiments and decides, with statistics rather than
//! eyeballing, whether a change made anything faster or slower. The layers depend one way,
//! as in criterion.rs: measurement produces plain samples, statistics describes them, and
//! the gate turns descriptions into a typed [`gate::Verdict`]. Nothing here renders
//! reports (that is the `reports` crate) or knows the orchestrator's internals.
//!
//! # Layout
//!
//! * [`scenario`] — parses and validates `scenarios/<id>/scenario.toml`: claim, variants
//!   (knob values), params and sweeps, metrics and their gate overrides, repetitions,
//!   `--quick` overrides, backends.
//! * [`interleave`] — the paired run order: warm-ups, then A B A B … so drift cancels.
//! * [`measure`] — one run's wall time, user/sys CPU and peak RSS, in-process or for a
//!   child process; [`measure::CountingAllocator`] for allocation counters; the dhat
//!   `--heap-profile` hook ([`measure::heap_profile`], feature `dhat-heap`).
//! * [`latency`] — HDR latency histograms with p50/p90/p99/p99.9 summaries.
//! * [`loadgen`] — the open-loop constant-rate load generator, with coordinated-omission
//!   correction, Kestra's rate ladder and saturation detection.
//! * [`stats`] — median, mean, CoV, bootstrap confidence intervals, ratio of medians and
//!   the Mann–Whitney U test.
//! * [`gate`] — the regression verdict for a metric: improved, regressed, unchanged,
//!   erratic or insufficient samples, under a [`gate::GatePolicy`]; noise widens the
//!   tolerance, it never voids a verdict.
//! * [`drift`] — between-run drift of timing metrics from the history, which widens the
//!   gate's tolerance so that two runs of one build do not raise an alarm.
//! * [`changepoint`] — E-Divisive change-point detection over a metric's history.
//! * [`workload`] — one file per kind of scenario: drives the orchestrator in-process,
//!   runs the variants interleaved and records samples per metric.
//! * [`suite`] — turns recorded samples into a `results.json` scenario entry: summaries,
//!   A/B comparisons with verdicts, whether the claim was reproduced; the run metadata.
//! * [`diff`] — `flowbench compare`: two results files, metric by metric, judged by the
//!   gate.
//!
//! The `flowbench` binary (`src/main.rs`, one file per command under `src/cmd/`) sits on
//! top: `list`, `run`, `compare`, `report`.
//!
//! # Example
//!
//! Two variants, interleaved, measured, then judged on a deterministic counter:
//!
//! ```
//! use harness::gate::{judge, Direction, GatePolicy, MetricKind, Verdict};
//! use harness::interleave::{schedule, Phase};
//! use harness::measure::measure;
//! use harness::stats::BootstrapConfig;
//!
//! /// Writes `records` records in batches of `batch`; returns the number of write calls.
//! fn write(records: u64, batch: u64) -> u64 {
//!     (0..records.div_ceil(batch)).map(|_| 1).sum()
//! }
//!
//! let batch_sizes = [1u64, 100]; // variant A (naive), variant B (batched)
//! let mut write_calls: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
//! for run in schedule(&batch_sizes, 5, 1) {
//!     let (calls, m) = measure(|| write(10_000, *run.variant)).unwrap();
//!     if run.phase == Phase::Measured {
//!         write_calls[run.variant_index].push(calls as f64);
//!         // m.metrics() holds wall_ms, cpu_ms, peak_rss_kib… for timing metrics.
//!         assert!(m.metrics().iter().any(|(name, _)| *name == "wall_ms"));
//!     }
//! }
//! let j = judge(&write_calls[0], &write_calls[1], Direction::LowerIsBetter,
//!               MetricKind::Counter, &GatePolicy::default(), &BootstrapConfig::default())
//!     .unwrap();
//! assert_eq!((j.verdict, j.ratio), (Verdict::Improved, 0.01));
//! ```

pub mod changepoint;
pub mod diff;
pub mod drift;
pub mod gate;
pub mod interleave;
pub mod latency;
pub mod loadgen;
pub mod measure;
pub mod scenario;
pub mod stats;
pub mod suite;
pub mod workload;
