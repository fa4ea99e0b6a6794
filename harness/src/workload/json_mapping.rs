//! `json-mapping`: loading execution rows, `jdbc.json-mapping=normalize` vs `direct`
//! (Kestra: CPU −15%, allocations −20% on PostgreSQL).
//!
//! Setup, untimed: a few real executions of the scenario's flow (Kestra's benchmark 02,
//! 10 task runs each) run to the end, and are then copied under new ids until the table
//! holds `rows` executions, so every row is a realistic document. Then one `Store` is
//! connected per variant to the same database, and each measured run loads every row
//! by id through it, which decodes it with that variant's mapping.

use std::path::Path;

use orchestrator::model::{Execution, new_id};
use orchestrator::repository::Store;
use orchestrator::service::Components;

use super::driver::{Observed, drive};
use super::{Env, Probe, Recorder, Result, WorkloadError, flows};
use crate::scenario::ParamValue;

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let s = env.scenario;
    let flow_file = match s.params.get("flow") {
        Some(ParamValue::Text(f)) => f.clone(),
        _ => {
            return Err(WorkloadError::Failed(
                "`params.flow` must name a flow file".into(),
            ));
        }
    };
    let seeds = env.int_param("seed_executions")?.max(1) as usize;
    for (k, rows) in env.int_sweep("rows")?.into_iter().enumerate() {
        env.check_cancel()?;
        let label = format!("json-mapping-{k}");
        let url = env.database_url(&label).await?;
        let ids = seed(env, &url, &label, &flow_file, seeds, rows as usize).await?;
        let mut stores = Vec::new();
        for v in &s.variants {
            let store = orchestrator::repository::connect(&url, &env.knobs(v)?)
                .await
                .map_err(|e| WorkloadError::failed(format!("connecting for `{}`", v.name), e))?;
            stores.push(store);
        }
        let params = super::params([("rows", rows.into())]);
        drive(env, rec, &format!("{rows} rows"), async |slot| {
            let store = &stores[slot.variant_index];
            let probe = Probe::start(env.alloc);
            let loaded = load_all(&**store, &ids).await;
            let sample = probe.finish();
            let loaded = loaded?;
            if loaded != ids.len() {
                return Err(WorkloadError::Failed(format!(
                    "loaded {loaded} of {} executions",
                    ids.len()
                )));
            }
            let mut seen = Observed::default();
            seen.record_all(&params, &sample.metrics());
            seen.record(
                &params,
                "throughput_per_s",
                loaded as f64 / sample.wall.as_secs_f64(),
            );
            Ok(seen)
        })
        .await?;
    }
    Ok(())
}

/// Loads every id, decoding each row; returns how many were found.
async fn load_all(store: &dyn Store, ids: &[String]) -> Result<usize> {
    let mut found = 0;
    for id in ids {
        let e = store
            .execution(id)
            .await
            .map_err(|e| WorkloadError::failed("loading an execution", e))?;
        found += usize::from(e.is_some());
    }
    Ok(found)
}

/// Fills the database with `rows` executions copied from `seeds` real ones; returns
/// every id.
async fn seed(
    env: &Env<'_>,
    url: &str,
    label: &str,
    flow_file: &str,
    seeds: usize,
    rows: usize,
) -> Result<Vec<String>> {
    let o = env
        .boot_at(&env.base_knobs, url, label, Components::ALL)
        .await?;
    let result = async {
        let source = flows::read(env, Path::new(flow_file))?;
        let flow = flows::deploy(&o, &source, flow_file).await?;
        let mut originals = Vec::with_capacity(seeds);
        for _ in 0..seeds.min(rows.max(1)) {
            originals.push(flows::execute(env, &o, &flow.namespace, &flow.id).await?);
        }
        let mut ids: Vec<String> = originals.iter().map(|e| e.id.clone()).collect();
        let mut batch = Vec::new();
        while ids.len() + batch.len() < rows {
            batch.push(copy(
                &originals[(ids.len() + batch.len()) % originals.len()],
            ));
            if batch.len() == 500 || ids.len() + batch.len() == rows {
                save(&o, &batch).await?;
                ids.extend(batch.drain(..).map(|e| e.id));
            }
        }
        Ok(ids)
    }
    .await;
    o.shutdown().await;
    result
}

/// The same execution under a new id, as another run of the flow would be stored.
fn copy(original: &Execution) -> Execution {
    let mut e = original.clone();
    e.id = new_id();
    e.original_id = e.id.clone();
    let mut renamed = std::collections::HashMap::new();
    for tr in &mut e.task_run_list {
        let id = new_id();
        renamed.insert(tr.id.clone(), id.clone());
        tr.id = id;
        tr.execution_id = e.id.clone();
    }
    for tr in &mut e.task_run_list {
        if let Some(parent) = &tr.parent_task_run_id {
            tr.parent_task_run_id = renamed.get(parent).cloned();
        }
    }
    e
}

async fn save(o: &orchestrator::service::Orchestrator, batch: &[Execution]) -> Result<()> {
    let fail = |e| WorkloadError::failed("storing execution rows", e);
    let mut tx = o.store().begin().await.map_err(fail)?;
    for e in batch {
        tx.save_execution(e).await.map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}
