//! `log-heavy`: one task that emits many log lines (Kestra: "up to 10×").
//!
//! The scenario's flow files hold a `Log` task with one message; the workload repeats it
//! `params.lines` times (numbered), so the task logs that many lines in one attempt. The
//! variants differ by knob (`logs.indexing=sync|batched`) or by flow (`logToFile: true`,
//! `logLevel: WARN`). Each run starts from an empty database, runs the flow, then waits
//! until every line is indexed, so `rows_written` counts the log rows the run left.
//!
//! Metrics:
//! - `indexed_ms` (the claim's): from just before the execution is created until it has
//!   ended **and** every line is in the logs table (the later of the two). With
//!   `logs.indexing=sync` the task does not wait for its lines (Kestra 0.19's `emitAsync`),
//!   so the lines may be committed after the execution ended; with `batched` the indexer
//!   may still be writing the last batch. The time a line was indexed is the orchestrator's
//!   own record of its last log commit (`Notifier::last_logs_indexed`), not a poll.
//! - `commits_per_line`: transactions the whole process committed during the run (every
//!   component: executor, worker, indexer, log pool), divided by `params.lines`.
//! - `task_duration_ms`: the noisy task run's own duration, from its state history: what
//!   the task thread paid, without the lines still being written after it.
//! - `cpu_ms`, `wall_ms`, `execution_duration_ms`, `rows_written`, `alloc_count`.

use std::time::{Duration, Instant};

use orchestrator::service::Components;

use super::driver::{Observed, drive};
use super::{Env, Probe, Recorder, Result, WorkloadError, flows};

const DEFAULT_FLOW: &str = "flows/log-to-database.yaml";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let lines = env.int_param("lines")?.max(1) as usize;
    let mut sources = Vec::new();
    for v in &s.variants {
        sources.push(flows::expand_log_messages(
            &flows::for_variant(env, v, DEFAULT_FLOW)?,
            lines,
        )?);
    }
    let params = super::params([("lines", (lines as i64).into())]);
    drive(env, rec, &format!("{lines} lines"), async |slot| {
        let knobs = env.knobs(slot.variant)?;
        let o = env
            .boot(
                &knobs,
                &format!("log-heavy-{}", slot.ordinal),
                Components::ALL,
            )
            .await?;
        let flow = flows::deploy(&o, &sources[slot.variant_index], "log-heavy flow").await?;
        let logs_before = counts(&o).await?.logs;
        let commits_before = orchestrator::repository::commits();
        let probe = Probe::start(env.alloc);
        let started = Instant::now();
        let done = flows::execute(env, &o, &flow.namespace, &flow.id).await;
        let ended = Instant::now();
        // The lines are the task's cost even when indexed after it ended: wait for them.
        let idle = match &done {
            Ok(_) => o
                .wait_idle(flows::EXECUTION_TIMEOUT)
                .await
                .map_err(|e| WorkloadError::failed("waiting for the log lines to be indexed", e)),
            Err(_) => Ok(()),
        };
        let sample = probe.finish();
        let commits = orchestrator::repository::commits() - commits_before;
        let indexed = o
            .store()
            .notifier()
            .last_logs_indexed()
            .map_or(ended, |at| at.max(ended))
            .saturating_duration_since(started);
        let logs_after = counts(&o).await;
        o.shutdown().await;
        let done = done?;
        idle?;
        let rows = logs_after?.logs - logs_before;
        let mut seen = Observed::default();
        seen.record_all(&params, &sample.metrics());
        seen.record(&params, "rows_written", rows as f64);
        seen.record(&params, "indexed_ms", ms(indexed));
        seen.record(&params, "commits_per_line", commits as f64 / lines as f64);
        seen.record(
            &params,
            "execution_duration_ms",
            ms(flows::state_duration(&done)),
        );
        // The noisy task's own duration, from its task run's state history.
        let task_ms: f64 = done
            .task_run_list
            .iter()
            .map(|tr| tr.state.duration().unsigned_abs().as_secs_f64() * 1000.0)
            .fold(0.0, f64::max);
        seen.record(&params, "task_duration_ms", task_ms);
        Ok(seen)
    })
    .await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn counts(
    o: &orchestrator::service::Orchestrator,
) -> Result<orchestrator::repository::Counts> {
    o.store()
        .counts()
        .await
        .map_err(|e| WorkloadError::failed("counting rows", e))
}
