//! `e2e-webhook`: open-loop, constant-rate load on the webhook trigger of Kestra's
//! benchmark flows B1 and B2, stepped through Kestra's rate ladder until saturation
//! (Kestra OSS: 1,500 executions/min at 0.26 s).
//!
//! Each variant names its flow. Per repetition and variant, a fresh orchestrator serves
//! the HTTP API on `127.0.0.1:0` in this process; [`crate::loadgen`] fires webhooks at
//! each rate of `sweep.rate_per_min` for `params.step_seconds`, with at most
//! `params.max_in_flight` requests outstanding. After each step every execution it
//! created is awaited, and its latency is its own state duration, as Kestra's benchmark
//! reads `avg(state_duration)` from the executions table. The ladder stops at the first
//! saturated step (achieved rate below 90% of the offered one); that rate is the sample
//! of `saturation_rate_per_min`, and a ladder that never saturates records none.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator::service::Components;

use reports::results::Params;

use super::driver::{LatencyUnit, Observed, drive};
use super::{Env, Recorder, Result, WorkloadError, flows};
use crate::latency::LatencyHistogram;
use crate::loadgen::{LoadConfig, SaturationLimits, run_step, saturation};

const DEFAULT_FLOW: &str = "benchmark01.yaml";
/// The webhook key of Kestra's benchmark flows.
const KEY: &str = "benchmark";

pub async fn run(env: &Env<'_>, rec: &mut Recorder) -> Result<()> {
    let rates = env.int_sweep("rate_per_min")?;
    let step = Duration::from_secs(env.int_param("step_seconds")?.max(1) as u64);
    let max_in_flight = env.int_param("max_in_flight")?.max(1) as usize;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| WorkloadError::failed("building the HTTP client", e))?;
    drive(env, rec, "", async |slot| {
        let variant = slot.variant;
        let source = flows::for_variant(env, variant, DEFAULT_FLOW)?;
        let o = env
            .boot(
                &env.knobs(variant)?,
                &format!("e2e-{}", slot.ordinal),
                Components::ALL,
            )
            .await?;
        let mut seen = Observed::default();
        let outcome = async {
            let flow = flows::deploy(&o, &source, "webhook flow").await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| WorkloadError::failed("binding 127.0.0.1:0", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| WorkloadError::failed("reading the bound address", e))?;
            let stop = tokio_util::sync::CancellationToken::new();
            let server = tokio::spawn(orchestrator::webserver::serve(
                listener,
                o.clone(),
                stop.clone().cancelled_owned(),
            ));
            let url = format!(
                "http://{addr}/api/v1/executions/webhook/{}/{}/{KEY}",
                flow.namespace, flow.id
            );
            let mut saturated_at = None;
            for &rate in &rates {
                env.check_cancel()?;
                env.progress.run(
                    &variant.name,
                    &format!("{rate}/min, round {}", slot.round + 1),
                );
                let ids = Arc::new(Mutex::new(Vec::new()));
                let config = LoadConfig {
                    max_in_flight,
                    drain_timeout: Duration::from_secs(30),
                    ..LoadConfig::new(step)
                };
                let report = run_step(rate as f64 / 60.0, &config, |_| {
                    let (client, url, ids) = (client.clone(), url.clone(), ids.clone());
                    async move { fire(&client, &url, &ids).await }
                })
                .await
                .map_err(|e| WorkloadError::failed("load step", e))?;
                let ids = std::mem::take(&mut *ids.lock().expect("ids lock"));
                let mut h = LatencyHistogram::new();
                let mut sum_ms = 0.0;
                for id in &ids {
                    let done = tokio::select! {
                        _ = env.cancel.cancelled() => return Err(WorkloadError::Interrupted),
                        r = o.wait_terminal(id, flows::EXECUTION_TIMEOUT) => r,
                    }
                    .map_err(|e| WorkloadError::failed("waiting for a webhook execution", e))?;
                    let d = flows::state_duration(&done);
                    sum_ms += d.as_secs_f64() * 1000.0;
                    h.record(d);
                }
                let p = super::params([("rate_per_min", rate.into())]);
                let summary = h.summary();
                seen.record(&p, "achieved_rate_per_s", report.achieved_rate_per_s);
                seen.record(&p, "errors", report.errors as f64);
                if !ids.is_empty() {
                    seen.record(&p, "latency_avg_ms", sum_ms / ids.len() as f64);
                    seen.record_all(&p, &summary.metrics_ms());
                    seen.latency(&p, "latency_p50_ms", h, LatencyUnit::Millis);
                }
                if let Some(reason) = saturation(&report, &SaturationLimits::default()) {
                    tracing::info!("{} saturated at {rate}/min: {reason:?}", variant.name);
                    saturated_at = Some(rate);
                    break;
                }
            }
            stop.cancel();
            let _ = server.await;
            Ok(saturated_at)
        }
        .await;
        o.shutdown().await;
        if let Some(rate) = outcome? {
            seen.record(&Params::new(), "saturation_rate_per_min", rate as f64);
        }
        Ok(seen)
    })
    .await
}

/// Fires one webhook and keeps the id of the execution it created.
async fn fire(
    client: &reqwest::Client,
    url: &str,
    ids: &Mutex<Vec<String>>,
) -> std::result::Result<(), String> {
    let response = client.post(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    let id = body["id"]
        .as_str()
        .ok_or_else(|| "the webhook answer has no execution id".to_string())?;
    ids.lock().expect("ids lock").push(id.to_string());
    Ok(())
}
