//! The one run loop every workload shares, as criterion's `Routine` owns warm-up and
//! sampling while a benchmark supplies only its body.
//!
//! [`drive`] owns the schedule (paired, interleaved A B A B … after warm-up,
//! [`crate::interleave::schedule`]), the progress bar, the Ctrl-C check between runs,
//! and the rule that only measured runs are recorded. A workload's body runs one slot —
//! boot, probe, work, shut down — and hands back what it [`Observed`]; it never touches
//! the [`Recorder`] itself, so a warm-up run cannot leak into the results.
//!
//! ```no_run
//! # use harness::workload::{driver::{drive, Observed}, Env, Recorder, Result};
//! # async fn example(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
//! let params = harness::workload::params([("rows", 1000.into())]);
//! drive(env, rec, "1000 rows", async |slot| {
//!     let mut seen = Observed::default();
//!     seen.record(&params, "wall_ms", 12.5);
//!     let _ = slot.variant;
//!     Ok(seen)
//! })
//! .await
//! # }
//! ```

use reports::results::Params;

use super::{Env, Recorder, Result};
use crate::interleave::{Phase, schedule};
use crate::latency::LatencyHistogram;
use crate::scenario::Variant;

/// One slot of the schedule, as a body sees it.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// The variant to run.
    pub variant: &'a Variant,
    /// Its index in the scenario's variants.
    pub variant_index: usize,
    /// Warm-up or measured; a body needs it only to skip work a warm-up does not need.
    pub phase: Phase,
    /// 0-based round within the phase.
    pub round: usize,
    /// The slot's position in this schedule, unique per call of [`drive`]: for naming
    /// the run's database or scratch files.
    pub ordinal: usize,
}

/// The unit a latency histogram's percentiles are reported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyUnit {
    /// Microseconds, as recorded.
    Micros,
    /// Milliseconds.
    Millis,
}

/// What one run observed: samples at one or more sweep points, and latency histograms.
///
/// Samples belong to the slot's variant unless recorded `_as` another: a thread sweep runs
/// thread counts but records under the scenario's own variants too.
#[derive(Debug, Default)]
pub struct Observed {
    samples: Vec<(Option<String>, Params, &'static str, f64)>,
    latencies: Vec<(
        Option<String>,
        Params,
        &'static str,
        LatencyHistogram,
        LatencyUnit,
    )>,
}

impl Observed {
    /// One sample of `metric` at the sweep point `params`.
    pub fn record(&mut self, params: &Params, metric: &'static str, value: f64) {
        self.samples.push((None, params.clone(), metric, value));
    }

    /// Several metrics of the run, recorded under `variant` rather than the slot's.
    pub fn record_all_as(
        &mut self,
        variant: &str,
        params: &Params,
        metrics: &[(&'static str, f64)],
    ) {
        for (metric, value) in metrics {
            self.samples
                .push((Some(variant.to_string()), params.clone(), metric, *value));
        }
    }

    /// Several metrics of the run at one sweep point.
    pub fn record_all(&mut self, params: &Params, metrics: &[(&'static str, f64)]) {
        for (metric, value) in metrics {
            self.record(params, metric, *value);
        }
    }

    /// Every observation behind a latency metric; the driver merges the histograms of
    /// all measured runs, so the reported percentiles cover every run, not the last.
    pub fn latency(
        &mut self,
        params: &Params,
        metric: &'static str,
        histogram: LatencyHistogram,
        unit: LatencyUnit,
    ) {
        self.latencies
            .push((None, params.clone(), metric, histogram, unit));
    }

    /// [`latency`](Self::latency) under `variant` rather than the slot's.
    pub fn latency_as(
        &mut self,
        variant: &str,
        params: &Params,
        metric: &'static str,
        histogram: LatencyHistogram,
        unit: LatencyUnit,
    ) {
        self.latencies.push((
            Some(variant.to_string()),
            params.clone(),
            metric,
            histogram,
            unit,
        ));
    }
}

/// Runs `body` once per slot of the scenario's schedule and records what measured runs
/// observed. `what` describes the sweep point in the progress bar (may be empty).
///
/// The first error ends the loop and is returned: a run that broke leaves no sample, and
/// the scenario is recorded as failed by the caller.
pub async fn drive<F>(env: &Env<'_>, rec: &mut Recorder, what: &str, mut body: F) -> Result<()>
where
    F: AsyncFnMut(Slot<'_>) -> Result<Observed>,
{
    let s = env.scenario;
    drive_variants(env, rec, what, &s.variants, async |slot| body(slot).await).await
}

/// [`drive`] over a list of variants other than the scenario's own (a thread sweep adds
/// its own).
pub async fn drive_variants<F>(
    env: &Env<'_>,
    rec: &mut Recorder,
    what: &str,
    variants: &[Variant],
    mut body: F,
) -> Result<()>
where
    F: AsyncFnMut(Slot<'_>) -> Result<Observed>,
{
    let s = env.scenario;
    let runs = schedule(variants, s.repetitions as usize, s.warmup as usize);
    env.progress.runs(runs.len() as u64);
    for (ordinal, run) in runs.enumerate() {
        env.check_cancel()?;
        let round = match run.phase {
            Phase::Warmup => format!("warm-up {}", run.round + 1),
            Phase::Measured => format!("round {}", run.round + 1),
        };
        let label = if what.is_empty() {
            round
        } else {
            format!("{what}, {round}")
        };
        env.progress.run(&run.variant.name, &label);
        let slot = Slot {
            variant: run.variant,
            variant_index: run.variant_index,
            phase: run.phase,
            round: run.round,
            ordinal,
        };
        let observed = body(slot).await?;
        if run.phase == Phase::Measured {
            rec.absorb(&run.variant.name, observed);
        }
        env.progress.done();
    }
    Ok(())
}

impl Recorder {
    /// Records everything one measured run observed.
    fn absorb(&mut self, variant: &str, observed: Observed) {
        for (other, params, metric, value) in observed.samples {
            self.record(other.as_deref().unwrap_or(variant), &params, metric, value);
        }
        for (other, params, metric, histogram, unit) in observed.latencies {
            let variant = other.as_deref().unwrap_or(variant);
            self.merge_latency(variant, &params, metric, &histogram, unit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::workload::{Database, NoProgress, WorkloadError};

    fn scenario(dir: &std::path::Path) -> Scenario {
        let text = r#"id = "driver-test"
title = "driver test"
workload = "foreach"
repetitions = 4
warmup = 2
backends = ["sqlite"]

[claim]
text = "t"
kestra_figure = "f"
direction = "lower"
expected_ratio = 0.5
metric = "wall_ms"

[[variant]]
name = "a"

[[variant]]
name = "b"

[[metric]]
name = "wall_ms"
unit = "ms"
better = "lower"
kind = "timing"
"#;
        crate::scenario::parse(text, &dir.join("scenario.toml")).unwrap()
    }

    fn env<'a>(s: &'a Scenario, dir: &std::path::Path) -> Env<'a> {
        Env {
            scenario: s,
            db: Database::parse("sqlite").unwrap(),
            base_knobs: Default::default(),
            threads: None,
            alloc: None,
            progress: &NoProgress,
            cancel: Default::default(),
            scratch: dir.to_path_buf(),
            quick: false,
            server_dbs: None,
        }
    }

    #[tokio::test]
    async fn only_measured_runs_are_recorded_interleaved() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path());
        let env = env(&s, dir.path());
        let mut rec = Recorder::new(&s);
        let mut order = Vec::new();
        let p = Params::new();
        drive(&env, &mut rec, "", async |slot| {
            order.push((slot.variant.name.clone(), slot.phase, slot.ordinal));
            let mut seen = Observed::default();
            // Warm-ups report a value that must never reach the results.
            let value = match slot.phase {
                Phase::Warmup => -1.0,
                Phase::Measured => slot.round as f64 + 10.0 * slot.variant_index as f64,
            };
            seen.record(&p, "wall_ms", value);
            // Undeclared metrics are dropped by the recorder.
            seen.record(&p, "not_declared", 1.0);
            Ok(seen)
        })
        .await
        .unwrap();
        let names: Vec<&str> = order.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"].repeat(6));
        assert_eq!(order.iter().filter(|o| o.1 == Phase::Warmup).count(), 4);
        assert_eq!(order.last().unwrap().2, 11);
        assert_eq!(rec.series.len(), 2);
        let a = rec.series.iter().find(|s| s.variant == "a").unwrap();
        let b = rec.series.iter().find(|s| s.variant == "b").unwrap();
        assert_eq!(a.samples, [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(b.samples, [10.0, 11.0, 12.0, 13.0]);
    }

    #[tokio::test]
    async fn an_error_stops_the_loop_and_a_cancel_interrupts_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path());
        let env = env(&s, dir.path());
        let mut rec = Recorder::new(&s);
        let mut calls = 0;
        let r = drive(&env, &mut rec, "x", async |_slot| {
            calls += 1;
            if calls == 3 {
                Err(WorkloadError::Failed("boom".into()))
            } else {
                Ok(Observed::default())
            }
        })
        .await;
        assert!(matches!(r, Err(WorkloadError::Failed(m)) if m == "boom"));
        assert_eq!(calls, 3);

        env.cancel.cancel();
        let r = drive(&env, &mut rec, "x", async |_slot| Ok(Observed::default())).await;
        assert!(matches!(r, Err(WorkloadError::Interrupted)));
    }

    #[tokio::test]
    async fn latencies_merge_over_measured_runs() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(dir.path());
        let env = env(&s, dir.path());
        let mut rec = Recorder::new(&s);
        let p = Params::new();
        drive(&env, &mut rec, "", async |slot| {
            let mut seen = Observed::default();
            let mut h = LatencyHistogram::new();
            // Each measured run of `a` adds one observation of (round + 1) ms; warm-ups
            // add a huge one that must not show.
            let micros = match slot.phase {
                Phase::Warmup => 9_000_000,
                Phase::Measured => (slot.round as u64 + 1) * 1000,
            };
            h.record_micros(micros);
            seen.record(&p, "wall_ms", 1.0);
            seen.latency(&p, "wall_ms", h, LatencyUnit::Millis);
            Ok(seen)
        })
        .await
        .unwrap();
        let a = rec.series.iter().find(|s| s.variant == "a").unwrap();
        let l = a.latency.as_ref().unwrap();
        // Four observations, 1 to 4 ms: the median is 2 ms, the maximum 4 ms.
        assert!((l.p50 - 2.0).abs() < 0.01, "{l:?}");
        assert!((l.p999 - 4.0).abs() < 0.01, "{l:?}");
    }
}
