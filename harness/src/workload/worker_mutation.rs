//! `worker-mutation`: the worker's CPU per task run, `worker.task-handling=mutate` vs
//! `immutable` (Kestra: "up to 15% of worker CPU").
//!
//! The flow runs many small task runs (`OutputValues`, `Return`) whose run context is
//! sizeable (flow variables and inputs every task run carries), because the `mutate` path
//! copies the whole `WorkerTask` through JSON.
//!
//! Metrics:
//! - `worker_cpu_per_task_run_us` (the claim's): CPU of every thread the worker owns, per task run,
//!   read per thread from `/proc/self/task/*`: the task threads (`worker-thread-N`) and the
//!   worker runtime (`worker-rt`), which polls and decodes each `WorkerTask`, serialises and
//!   queues each result, heartbeats, and drives the worker's database client work. Out:
//!   the executor and indexer (main runtime threads) and, on SQLite, the connection threads
//!   (`sqlx-sqlite-worker-*`) shared by every component. See [`super::worker_cpu`].
//! - `task_thread_cpu_per_task_run_us`: the task threads alone (running tasks, building
//!   results), as this scenario measured before the worker's other threads were named.
//! - `cpu_ms` and the allocation counters cover the whole process.

use std::time::Duration;

use super::{Env, Probe, Recorder, Result, WorkloadError, flows, task_threads_cpu, worker_cpu};
use crate::interleave::{Phase, schedule};

const DEFAULT_FLOW: &str = "flows/small-outputs.yaml";

/// The whole worker's CPU and its task threads' CPU so far.
fn cpu() -> Result<(Duration, Duration)> {
    let read = |e| WorkloadError::failed("reading thread CPU", e);
    Ok((
        worker_cpu().map_err(read)?,
        task_threads_cpu().map_err(read)?,
    ))
}

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let executions = env.int_param("executions")?.max(1) as usize;
    let params = super::params([("executions", (executions as i64).into())]);
    let runs = schedule(&s.variants, s.repetitions as usize, s.warmup as usize);
    env.progress.runs(runs.len() as u64);
    for (n, run) in runs.enumerate() {
        env.check_cancel()?;
        let variant = run.variant;
        env.progress
            .run(&variant.name, &format!("round {}", run.round + 1));
        let (o, flow) =
            flows::boot_variant(env, variant, DEFAULT_FLOW, &format!("worker-mutation-{n}"))
                .await?;
        let cpu_before = cpu();
        let probe = Probe::start(env.alloc);
        let mut task_runs = 0usize;
        let mut outcome = Ok(());
        for _ in 0..executions {
            match flows::execute(env, &o, &flow.namespace, &flow.id).await {
                Ok(done) => task_runs += done.task_run_list.len(),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        let sample = probe.finish();
        // Read before shutdown: the worker's threads end with it.
        let cpu_after = cpu();
        o.shutdown().await;
        outcome?;
        let ((worker_after, tasks_after), (worker_before, tasks_before)) =
            (cpu_after?, cpu_before?);
        let per_task_run = |d: Duration| d.as_secs_f64() * 1e6 / task_runs.max(1) as f64;
        if run.phase == Phase::Measured && task_runs > 0 {
            rec.record_all(&variant.name, &params, &sample.metrics());
            rec.record(
                &variant.name,
                &params,
                "worker_cpu_per_task_run_us",
                per_task_run(worker_after.saturating_sub(worker_before)),
            );
            rec.record(
                &variant.name,
                &params,
                "task_thread_cpu_per_task_run_us",
                per_task_run(tasks_after.saturating_sub(tasks_before)),
            );
            rec.record(
                &variant.name,
                &params,
                "task_runs_per_s",
                task_runs as f64 / sample.wall.as_secs_f64(),
            );
        }
        env.progress.done();
    }
    Ok(())
}
