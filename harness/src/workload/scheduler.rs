//! `scheduler`: how late the scheduler fires the ticks of many schedules.
//!
//! Each variant's name is a number of flows, each with one `Schedule` trigger on the same
//! cron (`params.cron`, `params.with_seconds`) and one `Return` task. A run deploys them on
//! a fresh database with every component started (the executor and the worker run what
//! fires, as in a standalone server), waits until `params.ticks` ticks of every schedule
//! have fired, and reads the executions back.
//!
//! Metrics:
//! - `lateness_p50_ms`, `lateness_p99_ms`, `lateness_max_ms`: from a tick's date
//!   (`trigger.date`) to the creation of its execution (the first date of its state
//!   history), over every execution of the run;
//! - `ticks_missed`, `ticks_doubled`: between a schedule's first and last fired tick, the
//!   ticks with no execution, and the executions beyond one per tick (both must be 0);
//! - `executions`: how many fired.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use orchestrator::service::Components;
use reports::results::ParamValue;

use super::driver::{LatencyUnit, Observed, drive};
use super::{Env, Recorder, Result, WorkloadError};
use crate::latency::LatencyHistogram;
use crate::scenario::Variant;

const NAMESPACE: &str = "bench.scheduler";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let ticks = env.int_param("ticks")?.max(1) as usize;
    let period = Duration::from_secs(env.int_param("period_seconds")?.max(1) as u64);
    let cron = match s.params.get("cron") {
        Some(crate::scenario::ParamValue::Text(c)) => c.clone(),
        _ => return Err(env.bad_param("cron", "is missing or not a string")),
    };
    let with_seconds = cron.split_whitespace().count() == 6;
    let counts: Vec<usize> = s.variants.iter().map(schedules).collect::<Result<_>>()?;
    let params = super::params([
        ("ticks", (ticks as i64).into()),
        ("cron", ParamValue::Text(cron.clone())),
    ]);
    drive(
        env,
        rec,
        &format!("{ticks} ticks of `{cron}`"),
        async |slot| {
            let n = counts[slot.variant_index];
            let knobs = env.knobs(slot.variant)?;
            let o = env
                .boot(
                    &knobs,
                    &format!("scheduler-{}", slot.ordinal),
                    Components::ALL,
                )
                .await?;
            let sources: Vec<String> = (0..n).map(|i| flow(i, &cron, with_seconds)).collect();
            let origins: Vec<String> = (0..n).map(|i| format!("generated flow {i}")).collect();
            let pairs: Vec<(&str, &str)> = sources
                .iter()
                .zip(&origins)
                .map(|(s, o)| (s.as_str(), o.as_str()))
                .collect();
            o.deploy_all(&pairs)
                .await
                .map_err(|e| WorkloadError::failed("deploying the scheduled flows", e))?;
            // The first tick may come up to a period after the scheduler reads the flows.
            let wanted = (n * ticks) as i64;
            let deadline = Instant::now() + period * (ticks as u32 + 1) + Duration::from_secs(60);
            loop {
                env.check_cancel()?;
                let c = o
                    .store()
                    .counts()
                    .await
                    .map_err(|e| WorkloadError::failed("counting executions", e))?;
                if c.executions >= wanted {
                    break;
                }
                if Instant::now() >= deadline {
                    o.shutdown().await;
                    return Err(WorkloadError::Failed(format!(
                        "{} of {wanted} executions fired within {:?}",
                        c.executions,
                        period * (ticks as u32 + 1) + Duration::from_secs(60)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            o.shutdown().await;
            let mut lateness = LatencyHistogram::new();
            let (mut missed, mut doubled, mut executions) = (0usize, 0usize, 0usize);
            for i in 0..n {
                let fired = o
                    .store()
                    .executions_of_flow(NAMESPACE, &flow_id(i))
                    .await
                    .map_err(|e| WorkloadError::failed("reading the executions", e))?;
                let mut dates = BTreeSet::new();
                for exec in &fired {
                    let tick = tick_of(exec)?;
                    let created = exec.state.start_date();
                    let late = created.duration_since(tick);
                    lateness.record(late.unsigned_abs());
                    dates.insert(tick);
                }
                executions += fired.len();
                doubled += fired.len() - dates.len();
                if let (Some(first), Some(last)) = (dates.first(), dates.last()) {
                    let span = last.duration_since(*first).as_secs_f64();
                    let expected = (span / period.as_secs_f64()).round() as usize + 1;
                    missed += expected.saturating_sub(dates.len());
                }
            }
            let summary = lateness.summary();
            let mut seen = Observed::default();
            seen.record(&params, "lateness_p50_ms", summary.p50_us as f64 / 1000.0);
            seen.record(&params, "lateness_p99_ms", summary.p99_us as f64 / 1000.0);
            seen.record(&params, "lateness_max_ms", summary.max_us as f64 / 1000.0);
            seen.record(&params, "ticks_missed", missed as f64);
            seen.record(&params, "ticks_doubled", doubled as f64);
            seen.record(&params, "executions", executions as f64);
            seen.latency(&params, "lateness_p50_ms", lateness, LatencyUnit::Millis);
            Ok(seen)
        },
    )
    .await
}

/// The number of schedules a variant runs: its name.
fn schedules(v: &Variant) -> Result<usize> {
    v.name.parse().map_err(|_| {
        WorkloadError::Failed(format!(
            "variant `{}`: a scheduler variant is named by its number of schedules",
            v.name
        ))
    })
}

fn flow_id(i: usize) -> String {
    format!("scheduled-{i:05}")
}

fn flow(i: usize, cron: &str, with_seconds: bool) -> String {
    format!(
        "id: {}\nnamespace: {NAMESPACE}\ntriggers:\n  - id: tick\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"{cron}\"\n    withSeconds: {with_seconds}\n    timezone: UTC\ntasks:\n  - id: r\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{{{ trigger.date }}}}\"\n",
        flow_id(i)
    )
}

/// The tick an execution was fired for.
fn tick_of(exec: &orchestrator::model::Execution) -> Result<jiff::Timestamp> {
    exec.trigger
        .as_ref()
        .and_then(|t| t.variables.get("date")?.as_str())
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| {
            WorkloadError::Failed(format!(
                "execution {} of {} has no readable trigger.date",
                exec.id, exec.flow_id
            ))
        })
}
