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

use super::driver::{Observed, drive};
use super::{Env, Recorder, Result, WorkloadError, flows, task_threads_cpu, worker_cpu};

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
    let executions = env.int_param("executions")?.max(1) as usize;
    let params = super::params([("executions", (executions as i64).into())]);
    drive(env, rec, "", async |slot| {
        let label = format!("worker-mutation-{}", slot.ordinal);
        let (sample, (task_runs, before, after)) =
            flows::probed(env, slot.variant, DEFAULT_FLOW, &label, async |o, flow| {
                let before = cpu()?;
                let mut task_runs = 0usize;
                for _ in 0..executions {
                    task_runs += flows::execute(env, o, &flow.namespace, &flow.id)
                        .await?
                        .task_run_list
                        .len();
                }
                // Read before shutdown: the worker's task threads end with it.
                Ok((task_runs, before, cpu()?))
            })
            .await?;
        let ((worker_after, tasks_after), (worker_before, tasks_before)) = (after, before);
        let per_task_run = |d: Duration| d.as_secs_f64() * 1e6 / task_runs.max(1) as f64;
        let mut seen = Observed::default();
        if task_runs > 0 {
            seen.record_all(&params, &sample.metrics());
            seen.record(
                &params,
                "worker_cpu_per_task_run_us",
                per_task_run(worker_after.saturating_sub(worker_before)),
            );
            seen.record(
                &params,
                "task_thread_cpu_per_task_run_us",
                per_task_run(tasks_after.saturating_sub(tasks_before)),
            );
            seen.record(
                &params,
                "task_runs_per_s",
                task_runs as f64 / sample.wall.as_secs_f64(),
            );
        }
        Ok(seen)
    })
    .await
}
