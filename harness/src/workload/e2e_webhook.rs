//! `e2e-webhook`: open-loop, constant-rate load on the webhook trigger of Kestra's
//! benchmark flows B1 and B2, stepped through a ladder of rates until saturation
//! (Kestra OSS: 1,500 executions/min at 0.26 s).
//!
//! Each step measures what a user deploys, from the same starting state:
//!
//! 1. a new database (a new file on SQLite, a new database on a server) and a new
//!    `orchestrator server standalone` process on it ([`super::server_process`]), with the
//!    variant's flow deployed at start, as Kestra's benchmark clears its executions
//!    between load generations;
//! 2. [`crate::loadgen`] fires the webhook at the step's rate for `params.step_seconds`,
//!    with at most `params.max_in_flight` requests outstanding; a variant with
//!    `load = "hey"` has Debian's `hey` fire it instead ([`hey`]), to check the harness's
//!    generator against a tool that is not flowbench's;
//! 3. once every accepted execution has ended, the server is stopped (SIGTERM), and the
//!    executions are read from the executions table as Kestra's benchmark reads them:
//!    each one's `state_duration` is a latency sample, and `latency_avg_ms` is their
//!    `avg(state_duration)` ([`super::db_read`]);
//! 4. on PostgreSQL and MySQL/MariaDB the database's own counters over the server's
//!    whole life (start-up and flow deployment included) are recorded per execution.
//!
//! `executions_lost` counts accepted webhooks whose execution did not end SUCCESS with
//! the same number of log lines as the others. A step is saturated when the achieved rate
//! falls below 90% of the offered one, or the p99 of the executions' latency exceeds
//! `params.saturation_p99_ms` (1,000 ms: Kestra's ceilings are defined by latency, not by
//! accepted requests). The ladder stops there, and that rate is the sample of
//! `saturation_rate_per_min`; a ladder that never saturates records none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reports::results::Params;

use super::db_read::{self, DbCounters};
use super::driver::{LatencyUnit, Observed, drive};
use super::server_process::{ServerProcess, ServerSpec};
use super::{Env, Result, WorkloadError, flows};
use crate::latency::LatencyHistogram;
use crate::loadgen::{LoadConfig, SaturationLimits, run_step};
use crate::scenario::LoadTool;

const DEFAULT_FLOW: &str = "benchmark01.yaml";
/// The webhook key of Kestra's benchmark flows.
const KEY: &str = "benchmark";
/// The p99 execution latency above which a step is saturated, unless the scenario sets
/// `params.saturation_p99_ms`.
const DEFAULT_SATURATION_P99_MS: i64 = 1000;
/// How long the backlog may stay the same size after the load before the run fails.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(env: &Env<'_>, rec: &mut super::Recorder) -> Result<()> {
    let rates = env.int_sweep("rate_per_min")?;
    let step = Duration::from_secs(env.int_param("step_seconds")?.max(1) as u64);
    let max_in_flight = env.int_param("max_in_flight")?.max(1) as usize;
    let p99_limit = match env.scenario.params.get("saturation_p99_ms") {
        Some(_) => env.int_param("saturation_p99_ms")?,
        None => DEFAULT_SATURATION_P99_MS,
    };
    // One rule with the load generator's (`loadgen::saturation`), on the executions' p99.
    let limits = SaturationLimits {
        max_p99: Some(Duration::from_millis(p99_limit.max(1) as u64)),
        ..SaturationLimits::default()
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| WorkloadError::failed("building the HTTP client", e))?;
    drive(env, rec, "", async |slot| {
        let variant = slot.variant;
        let source = flows::for_variant(env, variant, DEFAULT_FLOW)?;
        let origin = variant
            .flow
            .as_deref()
            .map_or(DEFAULT_FLOW.into(), |f| f.display().to_string());
        let flow = orchestrator::flow::parse_flow(&source, &origin)
            .map_err(|e| WorkloadError::failed(format!("loading {origin}"), e))?;
        let flows_dir = env.scratch.join(format!("e2e-{}-flows", slot.ordinal));
        std::fs::create_dir_all(&flows_dir)
            .and_then(|()| std::fs::write(flows_dir.join("flow.yaml"), &source))
            .map_err(|e| WorkloadError::failed(format!("writing {}", flows_dir.display()), e))?;
        let knobs = env.knobs(variant)?;
        let mut seen = Observed::default();
        for &rate in &rates {
            env.check_cancel()?;
            env.progress.run(
                &variant.name,
                &format!("{rate}/min, round {}", slot.round + 1),
            );
            let label = format!("e2e-{}-{rate}", slot.ordinal);
            let url = env.database_url(&label).await?;
            let storage = env.scratch.join(format!("{label}-storage"));
            let log = env.scratch.join(format!("{label}-server.log"));
            let spec = ServerSpec {
                db: &url,
                knobs: &knobs,
                flows: &flows_dir,
                storage: &storage,
                log: &log,
            };
            let target = Target {
                env,
                url: &url,
                namespace: &flow.namespace,
                flow_id: &flow.id,
            };
            let before = target.counters().await?;
            let mut server = ServerProcess::start(&spec).await?;
            let webhook = format!(
                "{}/api/v1/executions/webhook/{}/{}/{KEY}",
                server.base, flow.namespace, flow.id
            );
            let report = match variant.load {
                LoadTool::Flowbench => {
                    let accepted = Arc::new(AtomicU64::new(0));
                    let config = LoadConfig {
                        max_in_flight,
                        drain_timeout: Duration::from_secs(30),
                        ..LoadConfig::new(step)
                    };
                    let report = run_step(rate as f64 / 60.0, &config, |_| {
                        let (client, url, accepted) =
                            (client.clone(), webhook.clone(), accepted.clone());
                        async move { fire(&client, &url, &accepted).await }
                    })
                    .await
                    .map_err(|e| WorkloadError::failed("load step", e))?;
                    StepLoad {
                        accepted: accepted.load(Ordering::Relaxed),
                        achieved_rate_per_s: report.achieved_rate_per_s,
                        errors: report.errors,
                    }
                }
                LoadTool::Hey => hey(env, &webhook, rate, step).await?,
            };
            target.wait_until_ended(&mut server).await?;
            server.stop().await?;
            let counters = match (before, target.counters().await?) {
                (Some(b), Some(a)) => Some(a.since(&b)),
                _ => None,
            };
            let outcome = target.outcome(report.accepted).await?;

            let p = super::params([("rate_per_min", rate.into())]);
            seen.record(&p, "achieved_rate_per_s", report.achieved_rate_per_s);
            seen.record(&p, "errors", report.errors as f64);
            seen.record(&p, "executions_lost", outcome.lost as f64);
            if let Some(c) = counters {
                seen.record_all(&p, &c.per_execution(outcome.latency.len()));
            }
            let p99 = Duration::from_micros(outcome.latency.value_at_quantile(0.99));
            if !outcome.latency.is_empty() {
                seen.record(&p, "latency_avg_ms", outcome.avg_ms);
                seen.record_all(&p, &outcome.latency.summary().metrics_ms());
                seen.latency(&p, "latency_p50_ms", outcome.latency, LatencyUnit::Millis);
            }
            let saturated = limits.judge(report.achieved_rate_per_s, rate as f64 / 60.0, p99);
            if let Some(reason) = saturated {
                tracing::info!("{} saturated at {rate}/min: {reason}", variant.name);
                seen.record(&Params::new(), "saturation_rate_per_min", rate as f64);
                break;
            }
        }
        Ok(seen)
    })
    .await
}

/// The flow under load in one step's database.
struct Target<'a> {
    env: &'a Env<'a>,
    url: &'a str,
    namespace: &'a str,
    flow_id: &'a str,
}

/// What the executions table holds after a step.
struct Outcome {
    /// The `state_duration` of every execution that ended SUCCESS.
    latency: LatencyHistogram,
    avg_ms: f64,
    /// Accepted webhooks without a SUCCESS execution that has every log line.
    lost: u64,
}

impl Target<'_> {
    fn backend(&self) -> crate::scenario::Backend {
        self.env.db.backend
    }

    /// Waits, polling the executions table, until no execution of the flow is unfinished.
    /// A backlog that does not shrink for [`STALL_TIMEOUT`] fails the run, with the
    /// server's log: executions that stopped moving are a fault, not a slow server.
    async fn wait_until_ended(&self, server: &mut ServerProcess) -> Result<()> {
        let mut fewest = u64::MAX;
        let mut progressed = tokio::time::Instant::now();
        loop {
            server.check_alive()?;
            let left =
                db_read::unfinished(self.backend(), self.url, self.namespace, self.flow_id).await?;
            if left == 0 {
                return Ok(());
            }
            if left < fewest {
                fewest = left;
                progressed = tokio::time::Instant::now();
            } else if progressed.elapsed() >= STALL_TIMEOUT {
                return Err(server.failure(&format!(
                    "left {left} executions of {}.{} unfinished, and none ended in {:?}",
                    self.namespace, self.flow_id, STALL_TIMEOUT
                )));
            }
            self.env.sleep(Duration::from_millis(100)).await?;
        }
    }

    /// The database's counters now, or `None` where there are none (SQLite, a URL that
    /// names no database).
    async fn counters(&self) -> Result<Option<DbCounters>> {
        let Some(dbs) = &self.env.server_dbs else {
            return Ok(None);
        };
        let Some(name) = db_read::database_name(self.url) else {
            return Ok(None);
        };
        db_read::counters(self.backend(), dbs.admin_url(), name).await
    }

    async fn outcome(&self, accepted: u64) -> Result<Outcome> {
        let rows =
            db_read::executions(self.backend(), self.url, self.namespace, self.flow_id).await?;
        let lines =
            db_read::log_lines(self.backend(), self.url, self.namespace, self.flow_id).await?;
        // Every execution of one flow with no inputs logs the same lines: the most common
        // count is the expected one.
        let mut by_count = std::collections::BTreeMap::<i64, u64>::new();
        for r in rows.iter().filter(|r| r.state == "SUCCESS") {
            *by_count
                .entry(lines.get(&r.id).copied().unwrap_or(0))
                .or_default() += 1;
        }
        let expected = by_count
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(lines, _)| *lines);
        let mut latency = LatencyHistogram::new();
        let (mut sum_ms, mut complete) = (0.0, 0u64);
        for r in &rows {
            let Some(ms) = r.duration_ms else { continue };
            if r.state != "SUCCESS" {
                continue;
            }
            latency.record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
            sum_ms += ms;
            if lines.get(&r.id).copied().unwrap_or(0) == expected.unwrap_or(0) {
                complete += 1;
            }
        }
        let n = latency.len();
        Ok(Outcome {
            avg_ms: if n > 0 { sum_ms / n as f64 } else { 0.0 },
            latency,
            lost: accepted.saturating_sub(complete),
        })
    }
}

/// What the load of one step achieved, whichever tool generated it.
struct StepLoad {
    /// Requests answered with an execution.
    accepted: u64,
    /// Accepted requests per second, over the step or the time the load took if longer.
    achieved_rate_per_s: f64,
    /// Requests that failed or were not sent.
    errors: u64,
}

/// One step of `hey -c 1 -q RATE -z STEP` (Debian's `hey`): one connection that sends a
/// request every 1/RATE s and waits for its answer. Below saturation, where an answer
/// takes milliseconds, that is the same constant rate [`crate::loadgen`] offers, from a
/// tool that is not flowbench's; above it hey falls behind instead of queueing requests.
async fn hey(env: &Env<'_>, url: &str, rate_per_min: i64, step: Duration) -> Result<StepLoad> {
    let run = tokio::process::Command::new("hey")
        .args(["-c", "1", "-m", "POST", "-z"])
        .arg(format!("{}s", step.as_secs()))
        .arg("-q")
        .arg(format!("{}", rate_per_min as f64 / 60.0))
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = tokio::select! {
        _ = env.cancel.cancelled() => return Err(WorkloadError::Interrupted),
        o = run => o,
    };
    let output = output.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WorkloadError::Skipped(
            "a variant with `load = \"hey\"` needs hey on PATH (Debian: apt-get install hey)"
                .into(),
        ),
        _ => WorkloadError::failed("running hey", e),
    })?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(WorkloadError::Failed(format!(
            "hey exited with {}: {}{}",
            output.status,
            report,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse_hey(&report, step)
        .ok_or_else(|| WorkloadError::Failed(format!("hey's report has no total time:\n{report}")))
}

/// Reads hey's summary: the total time, and the count of each status code (`[200]  34
/// responses`) and of each error (`[2]  dial tcp: …`); a 2xx answer counts as accepted.
fn parse_hey(report: &str, step: Duration) -> Option<StepLoad> {
    let total_s: f64 = report.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Total:")?;
        rest.split_whitespace().next()?.parse().ok()
    })?;
    let (mut accepted, mut errors) = (0, 0);
    let mut in_errors = false;
    for line in report.lines().map(str::trim) {
        if line.starts_with("Error distribution:") {
            in_errors = true;
            continue;
        }
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((number, rest)) = rest.split_once(']') else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        if in_errors {
            // `[count]  message`
            errors += number;
            continue;
        }
        // `[status]  count responses`
        let Some(count) = rest
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if (200..300).contains(&number) {
            accepted += count;
        } else {
            errors += count;
        }
    }
    let window = total_s.max(step.as_secs_f64());
    Some(StepLoad {
        accepted,
        achieved_rate_per_s: if window > 0.0 {
            accepted as f64 / window
        } else {
            0.0
        },
        errors,
    })
}

/// Fires one webhook; an answer with an execution id counts as accepted.
async fn fire(
    client: &reqwest::Client,
    url: &str,
    accepted: &AtomicU64,
) -> std::result::Result<(), String> {
    let response = client.post(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    if body["id"].as_str().is_none() {
        return Err("the webhook answer has no execution id".to_string());
    }
    accepted.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hey 0.1.4's summary, as Debian ships it, with a refused request.
    const REPORT: &str = "
Summary:
  Total:\t4.1082 secs
  Slowest:\t0.0311 secs
  Requests/sec:\t8.2761

Latency distribution:
  10% in 0.0046 secs

Status code distribution:
  [200]\t33 responses
  [503]\t1 responses

Error distribution:
  [2]\tPost \"http://127.0.0.1:1/x\": dial tcp: connection refused
";

    #[test]
    fn hey_reports_give_accepted_requests_errors_and_the_achieved_rate() {
        let load = parse_hey(REPORT, Duration::from_secs(4)).unwrap();
        assert_eq!((load.accepted, load.errors), (33, 3));
        assert!((load.achieved_rate_per_s - 33.0 / 4.1082).abs() < 1e-9);
        // A step that ended early still counts its whole length.
        let short = REPORT.replace("4.1082", "3.5");
        let load = parse_hey(&short, Duration::from_secs(4)).unwrap();
        assert!((load.achieved_rate_per_s - 33.0 / 4.0).abs() < 1e-9);
        assert!(parse_hey("no summary", Duration::from_secs(4)).is_none());
    }
}
