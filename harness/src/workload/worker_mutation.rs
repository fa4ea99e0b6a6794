//! `worker-mutation`: the worker's CPU per task run, `worker.task-handling=mutate` vs
//! `immutable` (Kestra: "up to 15% of worker CPU").
//!
//! The flow runs many small task runs (`OutputValues`, `Return`) whose run context is
//! sizeable (flow variables and inputs every task run carries), because the `mutate` path
//! copies the whole `WorkerTask` through JSON. Worker CPU is read per thread from
//! `/proc/self/task/*` for the threads the worker names `worker-thread-N`, so the
//! executor and database, which share the process, are left out of
//! `cpu_per_task_run_us`; `cpu_ms` and the allocation counters cover the whole process.

use super::{Env, Probe, Recorder, Result, WorkloadError, flows, worker_threads_cpu};
use crate::interleave::{Phase, schedule};

const DEFAULT_FLOW: &str = "flows/small-outputs.yaml";

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
        let cpu_before =
            worker_threads_cpu().map_err(|e| WorkloadError::failed("reading thread CPU", e));
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
        let cpu_after =
            worker_threads_cpu().map_err(|e| WorkloadError::failed("reading thread CPU", e));
        o.shutdown().await;
        outcome?;
        let worker_cpu = cpu_after?.saturating_sub(cpu_before?);
        if run.phase == Phase::Measured && task_runs > 0 {
            rec.record_all(&variant.name, &params, &sample.metrics());
            rec.record(
                &variant.name,
                &params,
                "cpu_per_task_run_us",
                worker_cpu.as_secs_f64() * 1e6 / task_runs as f64,
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
