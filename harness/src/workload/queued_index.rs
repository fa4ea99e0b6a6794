//! `queued-index`: popping `execution_queued`, `queued.index=flow` vs `flow-date`
//! (Kestra PR: about 50% less total time for 1k executions with a concurrency limit).
//!
//! Two measurements:
//!
//! * **Pop latency against queue depth.** For each `rows` of the sweep, the table is
//!   filled with that many queued executions spread over `params.flows` flows. Each run
//!   connects a `Store` with the variant's knob (which builds that variant's index), then
//!   pops `params.pops` executions, one transaction each, timing every pop into an HDR
//!   histogram; the popped rows are pushed back afterwards (untimed) so the depth stays
//!   put for the next run.
//! * **Total time under a concurrency limit.** `params.executions` executions of the
//!   scenario's flow (`concurrency.limit: 50`, behaviour QUEUE) are created at once, and
//!   the run lasts until every one has ended.

use std::time::{Duration, Instant};

use orchestrator::model::{Execution, State, new_id};
use orchestrator::repository::Store;

use super::{Env, Probe, Recorder, Result, WorkloadError, flows, percentiles_us};
use crate::interleave::{Phase, schedule};
use crate::latency::LatencyHistogram;

const NAMESPACE: &str = "benchmarks.queued";
const DEFAULT_FLOW: &str = "flows/limited.yaml";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    pop_latency(env, rec).await?;
    total_time(env, rec).await
}

fn fail(what: &'static str) -> impl Fn(orchestrator::repository::Error) -> WorkloadError {
    move |e| WorkloadError::failed(what, e)
}

async fn pop_latency(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let flows = env.int_param("flows")?.max(1) as usize;
    let pops = env.int_param("pops")?.max(1) as usize;
    for (k, rows) in env.int_sweep("rows")?.into_iter().enumerate() {
        env.check_cancel()?;
        let url = env.database_url(&format!("queued-index-{k}")).await?;
        {
            let store = orchestrator::repository::connect(&url, &env.base_knobs)
                .await
                .map_err(fail("connecting"))?;
            fill(&*store, rows as usize, flows).await?;
        }
        let params = super::params([("rows", rows.into())]);
        let mut merged: Vec<LatencyHistogram> =
            s.variants.iter().map(|_| LatencyHistogram::new()).collect();
        let runs = schedule(&s.variants, s.repetitions as usize, s.warmup as usize);
        env.progress.runs(runs.len() as u64);
        for run in runs {
            env.check_cancel()?;
            env.progress.run(
                &run.variant.name,
                &format!("{rows} rows, round {}", run.round + 1),
            );
            // Connecting with the variant's knob drops the other index and builds its own.
            let store = orchestrator::repository::connect(&url, &env.knobs(run.variant)?)
                .await
                .map_err(fail("connecting"))?;
            let mut h = LatencyHistogram::new();
            let mut popped = Vec::with_capacity(pops);
            for i in 0..pops {
                let flow_id = format!("flow-{}", i % flows);
                let started = Instant::now();
                let mut tx = store.begin().await.map_err(fail("begin"))?;
                let key = tx
                    .queued_pop(NAMESPACE, &flow_id)
                    .await
                    .map_err(fail("popping"))?;
                tx.commit().await.map_err(fail("commit"))?;
                h.record(started.elapsed());
                match key {
                    Some(key) => popped.push((key, flow_id)),
                    None => {
                        return Err(WorkloadError::Failed(format!(
                            "flow {flow_id} had nothing queued after {i} pops"
                        )));
                    }
                }
            }
            // Put them back, newest, so the depth is the same for the next run.
            let mut tx = store.begin().await.map_err(fail("begin"))?;
            for (key, flow_id) in popped {
                tx.queued_push(&queued(key, flow_id))
                    .await
                    .map_err(fail("re-queueing"))?;
            }
            tx.commit().await.map_err(fail("commit"))?;
            if run.phase == Phase::Measured {
                let summary = h.summary();
                rec.record(
                    &run.variant.name,
                    &params,
                    "pop_latency_p50_us",
                    summary.p50_us as f64,
                );
                rec.record(
                    &run.variant.name,
                    &params,
                    "pop_latency_p99_us",
                    summary.p99_us as f64,
                );
                merged[run.variant_index].merge(&h);
            }
            env.progress.done();
        }
        for (v, h) in s.variants.iter().zip(&merged) {
            if !h.is_empty() {
                rec.set_latency(&v.name, &params, "pop_latency_p50_us", percentiles_us(h));
            }
        }
    }
    Ok(())
}

fn queued(id: String, flow_id: String) -> Execution {
    Execution {
        original_id: id.clone(),
        id,
        namespace: NAMESPACE.into(),
        flow_id,
        flow_revision: 1,
        inputs: Default::default(),
        labels: Vec::new(),
        state: State::new(orchestrator::model::now()),
        task_run_list: Vec::new(),
        trigger: None,
    }
}

/// Queues `rows` executions, round-robin over `flows` flows, in transactions of 1000.
async fn fill(store: &dyn Store, rows: usize, flows: usize) -> Result<()> {
    let mut i = 0;
    while i < rows {
        let mut tx = store.begin().await.map_err(fail("begin"))?;
        for _ in 0..1000.min(rows - i) {
            tx.queued_push(&queued(new_id(), format!("flow-{}", i % flows)))
                .await
                .map_err(fail("queueing"))?;
            i += 1;
        }
        tx.commit().await.map_err(fail("commit"))?;
    }
    Ok(())
}

async fn total_time(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let executions = env.int_param("executions")?.max(1) as usize;
    let params = super::params([("executions", (executions as i64).into())]);
    let runs = schedule(&s.variants, s.repetitions as usize, s.warmup as usize);
    env.progress.runs(runs.len() as u64);
    for (n, run) in runs.enumerate() {
        env.check_cancel()?;
        let variant = run.variant;
        env.progress.run(
            &variant.name,
            &format!("{executions} executions, round {}", run.round + 1),
        );
        let (o, flow) =
            flows::boot_variant(env, variant, DEFAULT_FLOW, &format!("queued-total-{n}")).await?;
        let probe = Probe::start(env.alloc);
        let outcome = async {
            for _ in 0..executions {
                o.create_execution(&flow.namespace, &flow.id, Default::default(), vec![], None)
                    .await
                    .map_err(|e| WorkloadError::failed("creating an execution", e))?;
            }
            let deadline = Instant::now() + flows::EXECUTION_TIMEOUT;
            loop {
                let c = o.store().counts().await.map_err(fail("counting"))?;
                if c.terminal_executions as usize >= executions {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(WorkloadError::Failed(format!(
                        "{} of {executions} executions ended within {:?}",
                        c.terminal_executions,
                        flows::EXECUTION_TIMEOUT
                    )));
                }
                env.sleep(Duration::from_millis(10)).await?;
            }
        }
        .await;
        let sample = probe.finish();
        o.shutdown().await;
        outcome?;
        if run.phase == Phase::Measured {
            rec.record_all(&variant.name, &params, &sample.metrics());
            rec.record(
                &variant.name,
                &params,
                "throughput_per_s",
                executions as f64 / sample.wall.as_secs_f64(),
            );
        }
        env.progress.done();
    }
    Ok(())
}
