//! `queued-index`: popping `execution_queued`, `queued.index=flow` vs `flow-date`
//! (Kestra commit 34fa6ce91: the date joins the index and the pop skips locked rows; Kestra's
//! figure is about 50% less total time for 1k executions with a concurrency limit).
//!
//! Every measurement is made in each tenant mode of the `tenant` sweep: `none` is Kestra OSS
//! (the column is NULL and the pop filters `tenant_id IS NULL`), any other value is a tenant
//! of a multi-tenant setup (`tenant_id = ?`). Whether a database can walk the (tenant,
//! namespace, flow, date) index in date order differs between those two predicates, so the
//! two index settings are only ever compared within one tenant mode: the mode is part of the
//! sweep point.
//!
//! * **Pop latency against queue depth.** For each `rows` × `tenant` point, a database is
//!   filled with that many queued executions of the tenant, spread over `params.flows` flows,
//!   and ANALYZEd. Each run connects a `Store` with the variant's knob (which builds that
//!   variant's index), ANALYZEs again, and pops `params.pops` executions round-robin over the
//!   flows, one transaction each, timing every pop into an HDR histogram. The first run of
//!   each variant also records the database's plan for the pop (`EXPLAIN`) and whether it
//!   walks the variant's index or sorts.
//! * **Concurrent poppers.** In the same run, `params.poppers` tasks pop one flow at once,
//!   each pop its own transaction, as several executors releasing slots of one flow do. This
//!   is where Kestra's `SKIP LOCKED` matters: without it a popper waits for the one holding
//!   the oldest row. On SQLite every write transaction runs on one writer connection, so
//!   the poppers take turns whatever the setting: the figure shows a single writer's queue.
//!   Popped rows are queued again afterwards (untimed) so the depth stays put.
//! * **Total time under a concurrency limit.** `params.executions` executions of the
//!   scenario's flow (`concurrency.limit: 50`, behaviour QUEUE) are created at once, in the
//!   tenant, and the run lasts until every one has ended. The `executors` sweep runs that many
//!   executor consumers in the process. One Kestra `JdbcExecutor` pops from one thread (its
//!   execution-queue consumer; `toExecution` pops only when the executor carries the flow,
//!   which only that consumer sets), so `1` is one Kestra executor and `2` two executor
//!   processes popping at once, where `SKIP LOCKED` matters.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator::model::{Execution, State, new_id, now};
use orchestrator::repository::{ExecutionQueued, Message, QueueType, Store, plan};
use orchestrator::service::{Components, Orchestrator};
use reports::results::{ParamValue as ResultParam, QueryPlan};

use super::driver::{LatencyUnit, Observed, drive};
use super::{Env, Probe, Recorder, Result, WorkloadError, flows};
use crate::latency::LatencyHistogram;
use crate::scenario::ParamValue;

const NAMESPACE: &str = "benchmarks.queued";
const DEFAULT_FLOW: &str = "flows/limited.yaml";
/// The flow the concurrent poppers share and whose pop plan is read.
const SHARED_FLOW: &str = "flow-0";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    pop_latency(env, rec).await?;
    total_time(env, rec).await
}

fn fail(what: &'static str) -> impl Fn(orchestrator::repository::Error) -> WorkloadError {
    move |e| WorkloadError::failed(what, e)
}

/// The tenant modes of the `tenant` sweep: `"none"` is Kestra OSS, any other text a tenant.
/// Without the sweep, OSS only.
fn tenants(env: &Env<'_>) -> Result<Vec<(String, Option<String>)>> {
    if !env.scenario.sweep.contains_key("tenant") {
        return Ok(vec![("none".into(), None)]);
    }
    env.sweep("tenant")?
        .iter()
        .map(|v| match v {
            ParamValue::Text(t) if t == "none" => Ok((t.clone(), None)),
            ParamValue::Text(t) if !t.trim().is_empty() => Ok((t.clone(), Some(t.clone()))),
            other => Err(WorkloadError::Failed(format!(
                "{}: `sweep.tenant` value {other:?} is neither \"none\" (Kestra OSS) nor a tenant id",
                env.scenario
                    .dir
                    .join(crate::scenario::SCENARIO_FILE)
                    .display()
            ))),
        })
        .collect()
}

async fn pop_latency(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let flows = env.int_param("flows")?.max(1) as usize;
    let pops = env.int_param("pops")?.max(1) as usize;
    let poppers = env.int_param("poppers")?.max(1) as usize;
    for (k, rows) in env.int_sweep("rows")?.into_iter().enumerate() {
        for (label, tenant) in tenants(env)? {
            env.check_cancel()?;
            let url = env
                .database_url(&format!("queued-index-{k}-{label}"))
                .await?;
            {
                let store = orchestrator::repository::connect(&url, &env.base_knobs)
                    .await
                    .map_err(fail("connecting"))?;
                fill(&*store, tenant.as_deref(), rows as usize, flows).await?;
                store.analyze_queued().await.map_err(fail("analyzing"))?;
            }
            let point = Point {
                params: super::params([
                    ("rows", rows.into()),
                    ("tenant", ResultParam::Text(label.clone())),
                ]),
                tenant,
                flows,
                pops,
                poppers,
                // Never more than half the shared flow's rows, so that an empty pop can
                // only mean a popper missed rows that were there.
                concurrent_pops: pops.min(rows as usize / flows / 2).max(poppers),
            };
            measure_point(env, rec, &url, &point).await?;
        }
    }
    Ok(())
}

/// One `rows` × `tenant` sweep point of the pop measurements.
struct Point {
    params: reports::results::Params,
    tenant: Option<String>,
    flows: usize,
    pops: usize,
    poppers: usize,
    concurrent_pops: usize,
}

async fn measure_point(env: &Env<'_>, rec: &mut Recorder, url: &str, p: &Point) -> Result<()> {
    let tenant = p.tenant.as_deref();
    let mut concurrent_params = p.params.clone();
    concurrent_params.insert("poppers".into(), (p.poppers as i64).into());
    let mut explained: HashSet<usize> = HashSet::new();
    let mut plans = Vec::new();
    let what = reports::results::display_params(&p.params);
    drive(env, rec, &what, async |slot| {
        // Connecting with the variant's knob drops the other index and builds its own;
        // ANALYZE then gives the planner the statistics of the table as it now is.
        let knobs = env.knobs(slot.variant)?;
        let store = orchestrator::repository::connect(url, &knobs)
            .await
            .map_err(fail("connecting"))?;
        store.analyze_queued().await.map_err(fail("analyzing"))?;
        // A plan is not a measurement: the first run of each variant reads it, warm-up or not.
        if explained.insert(slot.variant_index) {
            let found = store
                .explain_queued_pop(tenant, NAMESPACE, SHARED_FLOW)
                .await
                .map_err(fail("explaining the pop"))?;
            let index = plan::index_name(knobs.queued_index);
            let facts = plan::read(store.backend(), &found.plan, index);
            plans.push(QueryPlan {
                variant: slot.variant.name.clone(),
                params: p.params.clone(),
                index: index.to_string(),
                statement: found.statement,
                plan: found.plan,
                uses_index: facts.uses_index,
                sorts: facts.sorts,
            });
        }

        let mut h = LatencyHistogram::new();
        let mut popped = Vec::with_capacity(p.pops);
        for i in 0..p.pops {
            let flow_id = format!("flow-{}", i % p.flows);
            let started = Instant::now();
            let mut tx = store.begin().await.map_err(fail("begin"))?;
            let execution = tx
                .queued_pop(tenant, NAMESPACE, &flow_id)
                .await
                .map_err(fail("popping"))?;
            tx.commit().await.map_err(fail("commit"))?;
            h.record(started.elapsed());
            match execution {
                Some(e) => popped.push(e),
                None => {
                    return Err(WorkloadError::Failed(format!(
                        "flow {flow_id} had nothing queued after {i} pops"
                    )));
                }
            }
        }
        let concurrent = pop_concurrently(&store, tenant, p.poppers, p.concurrent_pops).await?;
        popped.extend(concurrent.popped.iter().cloned());
        requeue(&*store, popped).await?;

        let mut seen = Observed::default();
        let summary = h.summary();
        seen.record(&p.params, "pop_latency_p50_us", summary.p50_us as f64);
        seen.record(&p.params, "pop_latency_p99_us", summary.p99_us as f64);
        seen.latency(&p.params, "pop_latency_p50_us", h, LatencyUnit::Micros);
        let c = concurrent.latency.summary();
        let cp = &concurrent_params;
        seen.record(
            cp,
            "concurrent_pops_per_s",
            concurrent.popped.len() as f64 / concurrent.wall.as_secs_f64(),
        );
        seen.record(cp, "concurrent_pop_latency_p50_us", c.p50_us as f64);
        seen.record(cp, "concurrent_pop_latency_p99_us", c.p99_us as f64);
        seen.record(cp, "empty_pops", concurrent.empty as f64);
        seen.latency(
            cp,
            "concurrent_pop_latency_p50_us",
            concurrent.latency,
            LatencyUnit::Micros,
        );
        Ok(seen)
    })
    .await?;
    rec.plans.extend(plans);
    Ok(())
}

/// What the concurrent poppers did.
struct Concurrent {
    popped: Vec<Execution>,
    /// Pops that found nothing although the flow still held rows.
    empty: usize,
    latency: LatencyHistogram,
    wall: Duration,
}

/// `poppers` tasks pop [`SHARED_FLOW`] at once, `total` pops between them, each pop its own
/// transaction. Two poppers taking the same execution is a failure, not a figure.
async fn pop_concurrently(
    store: &Arc<dyn Store>,
    tenant: Option<&str>,
    poppers: usize,
    total: usize,
) -> Result<Concurrent> {
    let barrier = Arc::new(tokio::sync::Barrier::new(poppers));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(poppers);
    for n in 0..poppers {
        let store = store.clone();
        let tenant = tenant.map(str::to_string);
        let barrier = barrier.clone();
        let share = total / poppers + usize::from(n < total % poppers);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut h = LatencyHistogram::new();
            let mut popped = Vec::with_capacity(share);
            let mut empty = 0;
            for _ in 0..share {
                let t0 = Instant::now();
                let mut tx = store.begin().await?;
                let e = tx
                    .queued_pop(tenant.as_deref(), NAMESPACE, SHARED_FLOW)
                    .await?;
                tx.commit().await?;
                h.record(t0.elapsed());
                match e {
                    Some(e) => popped.push(e),
                    None => empty += 1,
                }
            }
            Ok::<_, orchestrator::repository::Error>((popped, empty, h))
        }));
    }
    let mut out = Concurrent {
        popped: Vec::with_capacity(total),
        empty: 0,
        latency: LatencyHistogram::new(),
        wall: Duration::ZERO,
    };
    for t in tasks {
        let (popped, empty, h) = t
            .await
            .map_err(|e| WorkloadError::failed("a popper task", e))?
            .map_err(fail("popping concurrently"))?;
        out.popped.extend(popped);
        out.empty += empty;
        out.latency.merge(&h);
    }
    out.wall = started.elapsed();
    let distinct: HashSet<&str> = out.popped.iter().map(|e| e.id.as_str()).collect();
    if distinct.len() != out.popped.len() {
        return Err(WorkloadError::Failed(format!(
            "concurrent poppers took {} queued executions, only {} of them distinct",
            out.popped.len(),
            distinct.len()
        )));
    }
    Ok(out)
}

/// Queues popped executions again, newest, so the depth is the same for the next run.
async fn requeue(store: &dyn Store, popped: Vec<Execution>) -> Result<()> {
    let mut tx = store.begin().await.map_err(fail("begin"))?;
    for e in popped {
        tx.queued_push(&ExecutionQueued::new(e, now()))
            .await
            .map_err(fail("re-queueing"))?;
    }
    tx.commit().await.map_err(fail("commit"))
}

/// A queued execution of `flow_id` in `tenant`, in the state the executor queues it in.
fn queued(tenant: Option<&str>, flow_id: String) -> ExecutionQueued {
    let id = new_id();
    let at = now();
    let mut state = State::new(at);
    state.transition(orchestrator::model::StateType::Queued, at);
    let execution = Execution {
        original_id: id.clone(),
        metadata: None,
        outputs: None,
        id,
        tenant_id: tenant.map(str::to_string),
        namespace: NAMESPACE.into(),
        flow_id,
        flow_revision: 1,
        inputs: Default::default(),
        labels: Vec::new(),
        state,
        task_run_list: Vec::new(),
        trigger: None,
    };
    ExecutionQueued::new(execution, at)
}

/// Queues `rows` executions of `tenant`, round-robin over `flows` flows, in transactions of
/// 1000.
async fn fill(store: &dyn Store, tenant: Option<&str>, rows: usize, flows: usize) -> Result<()> {
    let mut i = 0;
    while i < rows {
        let mut tx = store.begin().await.map_err(fail("begin"))?;
        for _ in 0..1000.min(rows - i) {
            tx.queued_push(&queued(tenant, format!("flow-{}", i % flows)))
                .await
                .map_err(fail("queueing"))?;
            i += 1;
        }
        tx.commit().await.map_err(fail("commit"))?;
    }
    Ok(())
}

/// The `executors` sweep's values; one executor without it.
fn executor_counts(env: &Env<'_>) -> Result<Vec<i64>> {
    if env.scenario.sweep.contains_key("executors") {
        env.int_sweep("executors")
    } else {
        Ok(vec![1])
    }
}

async fn total_time(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let executions = env.int_param("executions")?.max(1) as usize;
    for (label, tenant) in tenants(env)? {
        for executors in executor_counts(env)? {
            let params = super::params([
                ("executions", (executions as i64).into()),
                ("tenant", ResultParam::Text(label.clone())),
                ("executors", executors.into()),
            ]);
            let what = reports::results::display_params(&params);
            drive(env, rec, &what, async |slot| {
                let (o, flow) = flows::boot_variant(
                    env,
                    slot.variant,
                    DEFAULT_FLOW,
                    &format!("queued-total-{label}-{executors}-{}", slot.ordinal),
                )
                .await?;
                // `boot_variant` started one executor; the others consume the same queues.
                for _ in 1..executors {
                    o.start(Components {
                        executor: true,
                        worker: false,
                        indexer: false,
                        scheduler: false,
                    });
                }
                let probe = Probe::start(env.alloc);
                let outcome = async {
                    for _ in 0..executions {
                        create(
                            &o,
                            &flow.namespace,
                            &flow.id,
                            flow.revision,
                            tenant.as_deref(),
                        )
                        .await?;
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
                let mut seen = Observed::default();
                seen.record_all(&params, &sample.metrics());
                seen.record(
                    &params,
                    "throughput_per_s",
                    executions as f64 / sample.wall.as_secs_f64(),
                );
                Ok(seen)
            })
            .await?;
        }
    }
    Ok(())
}

/// Creates an execution of the flow in `tenant`. Kestra OSS executions (no tenant) go
/// through the orchestrator's own `create_execution`; a tenant's are written the same way
/// it writes them (the execution, then its message on the execution queue), with the
/// tenant set, since the orchestrator's API creates OSS executions only.
async fn create(
    o: &Orchestrator,
    namespace: &str,
    flow_id: &str,
    revision: i32,
    tenant: Option<&str>,
) -> Result<()> {
    let Some(tenant) = tenant else {
        o.create_execution(namespace, flow_id, Default::default(), vec![], None)
            .await
            .map_err(|e| WorkloadError::failed("creating an execution", e))?;
        return Ok(());
    };
    let id = new_id();
    let execution = Execution {
        original_id: id.clone(),
        metadata: None,
        outputs: None,
        id,
        tenant_id: Some(tenant.to_string()),
        namespace: namespace.into(),
        flow_id: flow_id.into(),
        flow_revision: revision,
        inputs: Default::default(),
        labels: Vec::new(),
        state: State::new(now()),
        task_run_list: Vec::new(),
        trigger: None,
    };
    let store = o.store();
    let mut tx = store.begin().await.map_err(fail("begin"))?;
    tx.save_execution(&execution)
        .await
        .map_err(fail("creating an execution"))?;
    tx.push(&[Message {
        kind: QueueType::Execution,
        key: execution.id.clone(),
        value: serde_json::json!({ "executionId": execution.id }).to_string(),
    }])
    .await
    .map_err(fail("creating an execution"))?;
    tx.commit().await.map_err(fail("commit"))
}
