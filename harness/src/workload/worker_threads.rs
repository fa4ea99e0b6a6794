//! `worker-threads`: throughput, latency, memory and CPU use across worker thread
//! counts, for CPU-bound, sleep-bound and mixed task runs (Kestra: 4 × cores by default,
//! down from 128: less memory, same throughput).
//!
//! For each task kind of `sweep.task` (a flow file `flows/<task>.yaml`, a ForEach over
//! `params.iterations` values), the thread counts of `sweep.threads` (or `--threads`)
//! are run interleaved: 1 8 128 1 8 128 … Each run starts a worker with that many
//! threads on a fresh database and runs one execution. Results are recorded twice:
//! under the variant `sweep` at `{task, threads}` for the sweep charts, and, at the
//! thread counts the scenario's variants set (`worker.threads = 128`, and the default
//! 4 × cores), under those variants at `{task}`, so the two are compared as A/B.

use std::collections::BTreeMap;

use orchestrator::service::Components;
use reports::results::{ParamValue as Pv, VariantResult};
use serde_json::{Map, Value};

use super::{Env, Probe, Recorder, Result, WorkloadError, flows, percentiles_ms};
use crate::interleave::{Phase, schedule};
use crate::latency::LatencyHistogram;
use crate::scenario::ParamValue;

/// The variant name the sweep points are recorded under.
pub const SWEEP_VARIANT: &str = "sweep";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let iterations = env.int_param("iterations")?.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads: Vec<usize> = match &env.threads {
        Some(t) => t.clone(),
        None => env
            .sweep("threads")?
            .iter()
            .map(|v| match v {
                ParamValue::Integer(n) if *n > 0 => Ok(*n as usize),
                ParamValue::Text(t) if t == "4x-cores" => Ok(4 * cores),
                other => Err(WorkloadError::Failed(format!(
                    "sweep.threads: {other:?} is neither a positive integer nor \"4x-cores\""
                ))),
            })
            .collect::<Result<_>>()?,
    };
    // The A/B variants' thread counts must be measured even if the sweep omits them.
    let mut variant_threads = BTreeMap::new();
    for v in &s.variants {
        let n = env.knobs(v)?.worker_threads;
        variant_threads.insert(v.name.clone(), n);
        threads.push(n);
    }
    threads.sort_unstable();
    threads.dedup();
    rec.add_variant(VariantResult {
        name: SWEEP_VARIANT.into(),
        knobs: Default::default(),
        params: Default::default(),
    });

    let tasks: Vec<String> = env
        .sweep("task")?
        .iter()
        .map(|v| match v {
            ParamValue::Text(t) => Ok(t.clone()),
            other => Err(WorkloadError::Failed(format!(
                "sweep.task: {other:?} is not a name"
            ))),
        })
        .collect::<Result<_>>()?;
    let total = tasks.len() * threads.len() * (s.repetitions + s.warmup) as usize;
    env.progress.runs(total as u64);
    for task in &tasks {
        let source = flows::read(env, std::path::Path::new(&format!("flows/{task}.yaml")))?;
        let mut latency: BTreeMap<usize, LatencyHistogram> = BTreeMap::new();
        for (n, run) in schedule(&threads, s.repetitions as usize, s.warmup as usize).enumerate() {
            env.check_cancel()?;
            let count = *run.variant;
            env.progress.run(
                &format!("{task}, {count} threads"),
                &format!("round {}", run.round + 1),
            );
            let mut knobs = env.base_knobs.clone();
            knobs.worker_threads = count;
            let o = env
                .boot(&knobs, &format!("threads-{task}-{n}"), Components::ALL)
                .await?;
            let flow = flows::deploy(&o, &source, task).await?;
            let mut inputs = Map::new();
            inputs.insert("iterations".into(), Value::from(iterations));
            let probe = Probe::start(env.alloc);
            let done = async {
                let created = o
                    .create_execution(&flow.namespace, &flow.id, inputs, vec![], None)
                    .await
                    .map_err(|e| WorkloadError::failed("creating an execution", e))?;
                let done = tokio::select! {
                    _ = env.cancel.cancelled() => return Err(WorkloadError::Interrupted),
                    r = o.wait_terminal(&created.id, flows::EXECUTION_TIMEOUT) => r,
                }
                .map_err(|e| WorkloadError::failed("waiting for the execution", e))?;
                flows::expect_success(&done)?;
                Ok(done)
            }
            .await;
            let sample = probe.finish();
            o.shutdown().await;
            let done = done?;
            if run.phase != Phase::Measured {
                env.progress.done();
                continue;
            }
            // Task runs of runnable tasks (not the ForEach itself): created → ended,
            // so the wait for a free thread counts, as a user sees it.
            let mut h = LatencyHistogram::new();
            for tr in done.task_run_list.iter().filter(|tr| tr.value.is_some()) {
                h.record(tr.state.duration().unsigned_abs());
            }
            let task_runs = h.len() as f64;
            let mut metrics = sample.metrics();
            metrics.push(("task_runs_per_s", task_runs / sample.wall.as_secs_f64()));
            metrics.push(("throughput_per_s", task_runs / sample.wall.as_secs_f64()));
            let summary = h.summary();
            metrics.push(("latency_p50_ms", summary.p50_us as f64 / 1000.0));
            metrics.push(("latency_p99_ms", summary.p99_us as f64 / 1000.0));
            let sweep_point = super::params([
                ("task", Pv::Text(task.clone())),
                ("threads", (count as i64).into()),
            ]);
            rec.record_all(SWEEP_VARIANT, &sweep_point, &metrics);
            let ab_point = super::params([("task", Pv::Text(task.clone()))]);
            for (name, _) in variant_threads.iter().filter(|(_, t)| **t == count) {
                rec.record_all(name, &ab_point, &metrics);
            }
            latency.entry(count).or_default().merge(&h);
            env.progress.done();
        }
        for (count, h) in latency {
            let point = super::params([
                ("task", Pv::Text(task.clone())),
                ("threads", (count as i64).into()),
            ]);
            rec.set_latency(SWEEP_VARIANT, &point, "latency_p99_ms", percentiles_ms(&h));
        }
    }
    Ok(())
}
