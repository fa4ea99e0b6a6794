//! An open-loop, constant-rate load generator, as wrk2 and Vegeta are.
//!
//! Request `i` of a step is due at `start + i / rate`, whether or not earlier requests have
//! answered: each is spawned as its own task, so a slow server builds a queue instead of
//! slowing the generator down. Latency is measured from the request's **intended** send
//! time, not from when it actually left, which corrects for coordinated omission (Gil
//! Tene, "How NOT to Measure Latency"): a generator that stalls, or a closed loop waiting
//! for answers, would otherwise hide exactly the delays users see.
//!
//! * [`run_step`] drives one rate for one duration and returns a [`StepReport`]: offered
//!   and achieved rate, ok and error counts, the latency histogram of the successful
//!   requests.
//! * At most [`LoadConfig::max_in_flight`] requests are outstanding; a request due while
//!   the cap is reached is not sent and counts as an error (`overflow`), so memory stays
//!   bounded against a server that stops answering. After the last request is due, the
//!   step waits up to [`LoadConfig::drain_timeout`] for the rest; those still running are
//!   aborted and count as errors (`timed_out`).
//! * [`run_steps`] runs a ladder of rates (Kestra's benchmark table, [`kestra_ladder`]) and
//!   stops at the first step that [`saturation`] flags: achieved rate below 90% of the
//!   offered rate, or p99 above a limit.
//!
//! Timing uses [`tokio::time::Instant`], so tests can run the generator under
//! `tokio::time::pause()` with simulated servers, deterministically.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use crate::latency::{LatencyHistogram, LatencySummary};

mod ladder;

pub use ladder::{
    DEFAULT_MIN_ACHIEVED_FRACTION, KESTRA_RATES_PER_MIN, SaturationLimits, SaturationReason,
    StepsReport, kestra_ladder, run_steps, saturation,
};

/// How each step runs, apart from its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadConfig {
    /// How long requests are scheduled for; a step sends `rate × duration` requests.
    pub duration: Duration,
    /// Most outstanding requests; one due beyond that is counted as an overflow error.
    /// It bounds memory and sockets when the server stops answering.
    pub max_in_flight: usize,
    /// How long to wait for outstanding requests once the last one is due.
    pub drain_timeout: Duration,
}

impl LoadConfig {
    /// A config with a 10 000-request in-flight cap and a 30 s drain timeout.
    pub fn new(duration: Duration) -> Self {
        Self {
            duration,
            max_in_flight: 10_000,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Bad load parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The rate is not a finite number above zero.
    #[error("the rate must be a finite number of requests per second above 0, not {0}")]
    InvalidRate(f64),
    /// `max_in_flight` is zero, so no request could ever be sent.
    #[error("max_in_flight must be at least 1")]
    NoInFlightAllowed,
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Requests per second asked for.
    pub offered_rate_per_s: f64,
    /// Successful requests per second: `ok / max(duration, elapsed)`, Vegeta's
    /// "throughput" (the wait for the last answers counts against the server).
    pub achieved_rate_per_s: f64,
    /// Requests that came due.
    pub scheduled: u64,
    /// Requests whose future returned `Ok`.
    pub ok: u64,
    /// All failures: returned `Err`, panicked, overflowed or timed out.
    pub errors: u64,
    /// Requests not sent because `max_in_flight` were outstanding (part of `errors`).
    pub overflow: u64,
    /// Requests aborted at the drain timeout (part of `errors`).
    pub timed_out: u64,
    /// The first error message seen, for diagnosis.
    pub first_error: Option<String>,
    /// From the first due time until the last request ended.
    pub elapsed: Duration,
    /// Latency of the successful requests from their intended send time.
    pub latency: LatencyHistogram,
}

/// A [`StepReport`] as plain data, for results files and reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// See [`StepReport::offered_rate_per_s`].
    pub offered_rate_per_s: f64,
    /// See [`StepReport::achieved_rate_per_s`].
    pub achieved_rate_per_s: f64,
    /// See [`StepReport::scheduled`].
    pub scheduled: u64,
    /// See [`StepReport::ok`].
    pub ok: u64,
    /// See [`StepReport::errors`].
    pub errors: u64,
    /// See [`StepReport::overflow`].
    pub overflow: u64,
    /// See [`StepReport::timed_out`].
    pub timed_out: u64,
    /// See [`StepReport::first_error`].
    pub first_error: Option<String>,
    /// See [`StepReport::elapsed`].
    pub elapsed: Duration,
    /// Percentiles of [`StepReport::latency`].
    pub latency: LatencySummary,
}

impl StepReport {
    /// This report as plain data.
    pub fn summary(&self) -> StepSummary {
        StepSummary {
            offered_rate_per_s: self.offered_rate_per_s,
            achieved_rate_per_s: self.achieved_rate_per_s,
            scheduled: self.scheduled,
            ok: self.ok,
            errors: self.errors,
            overflow: self.overflow,
            timed_out: self.timed_out,
            first_error: self.first_error.clone(),
            elapsed: self.elapsed,
            latency: self.latency.summary(),
        }
    }
}

/// Runs one open-loop step at `rate_per_s`. `request(i)` makes the future for request
/// `i` (0-based); it is called on the generator's task, so it should only build the
/// future, and the future is spawned.
pub async fn run_step<F, Fut, E>(
    rate_per_s: f64,
    config: &LoadConfig,
    request: F,
) -> Result<StepReport, LoadError>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    run_step_from(rate_per_s, config, 0, &request).await
}

type Outcome = (Result<(), String>, Duration);

pub(crate) async fn run_step_from<F, Fut, E>(
    rate_per_s: f64,
    config: &LoadConfig,
    first_index: u64,
    request: &F,
) -> Result<StepReport, LoadError>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    if !rate_per_s.is_finite() || rate_per_s <= 0.0 {
        return Err(LoadError::InvalidRate(rate_per_s));
    }
    if config.max_in_flight == 0 {
        return Err(LoadError::NoInFlightAllowed);
    }
    // The epsilon keeps e.g. 250/60 req/s × 60 s at 250 despite rounding.
    let count = (rate_per_s * config.duration.as_secs_f64() + 1e-9).floor() as u64;
    let mut tally = Tally::default();
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let start = Instant::now();

    for i in 0..count {
        let intended = start + Duration::from_secs_f64(i as f64 / rate_per_s);
        tokio::time::sleep_until(intended).await;
        while let Some(done) = tasks.try_join_next() {
            tally.add(done);
        }
        if tasks.len() >= config.max_in_flight {
            tally.overflow += 1;
            continue;
        }
        let fut = request(first_index + i);
        tasks.spawn(async move {
            let outcome = fut.await.map_err(|e| e.to_string());
            (outcome, intended.elapsed())
        });
    }

    let deadline = Instant::now() + config.drain_timeout;
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(done) => tally.add(done),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => {
                tally.timed_out = tasks.len() as u64;
                tasks.abort_all();
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    let window = elapsed.max(config.duration).as_secs_f64();
    Ok(StepReport {
        offered_rate_per_s: rate_per_s,
        achieved_rate_per_s: if window > 0.0 {
            tally.ok as f64 / window
        } else {
            0.0
        },
        scheduled: count,
        ok: tally.ok,
        errors: tally.failed + tally.overflow + tally.timed_out,
        overflow: tally.overflow,
        timed_out: tally.timed_out,
        first_error: tally.first_error,
        elapsed,
        latency: tally.latency,
    })
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    overflow: u64,
    timed_out: u64,
    first_error: Option<String>,
    latency: LatencyHistogram,
}

impl Tally {
    fn add(&mut self, done: Result<Outcome, JoinError>) {
        let message = match done {
            Ok((Ok(()), latency)) => {
                self.ok += 1;
                self.latency.record(latency);
                return;
            }
            Ok((Err(message), _)) => message,
            Err(join) => format!("request task failed: {join}"),
        };
        self.failed += 1;
        self.first_error.get_or_insert(message);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn constant_rate_with_a_fast_server() {
        let cfg = LoadConfig::new(Duration::from_secs(1));
        let seen = Arc::new(AtomicU64::new(0));
        let r = run_step(100.0, &cfg, |_| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(10 * MS).await;
                seen.fetch_add(1, Ordering::Relaxed);
                Ok::<(), String>(())
            }
        })
        .await
        .unwrap();
        assert_eq!((r.scheduled, r.ok, r.errors), (100, 100, 0));
        assert_eq!(seen.load(Ordering::Relaxed), 100);
        // Under the paused clock every request takes exactly its 10 ms service time (the
        // histogram reports its bucket bounds, within 0.1%).
        let s = r.latency.summary();
        assert_eq!(s.count, 100);
        assert!(
            s.min_us.abs_diff(10_000) <= 10 && s.max_us.abs_diff(10_000) <= 10,
            "{s:?}"
        );
        assert!(
            (r.achieved_rate_per_s - 100.0).abs() < 1e-6,
            "{}",
            r.achieved_rate_per_s
        );
        assert_eq!(saturation(&r, &SaturationLimits::default()), None);
    }

    /// A server that handles one request at a time in 50 ms can do 20/s. At 100/s offered
    /// the generator must keep sending on schedule (open loop) and the latency from the
    /// intended time must grow with the queue: request i ends at (i + 1)·50 ms and was due
    /// at i·10 ms, so its latency is 50 + 40·i ms.
    #[tokio::test(start_paused = true)]
    async fn slow_server_queues_and_saturates() {
        let server = Arc::new(tokio::sync::Mutex::new(()));
        let cfg = LoadConfig::new(Duration::from_secs(1));
        let r = run_step(100.0, &cfg, |_| {
            let server = server.clone();
            async move {
                let _busy = server.lock().await;
                tokio::time::sleep(50 * MS).await;
                Ok::<(), String>(())
            }
        })
        .await
        .unwrap();
        assert_eq!((r.scheduled, r.ok), (100, 100));
        let s = r.latency.summary();
        assert!(s.min_us.abs_diff(50_000) <= 50, "{s:?}");
        assert!((s.max_us as f64 - 4_010_000.0).abs() < 4_010.0, "{s:?}");
        assert!(
            (r.achieved_rate_per_s - 20.0).abs() < 0.1,
            "{}",
            r.achieved_rate_per_s
        );
        assert!(matches!(
            saturation(&r, &SaturationLimits::default()),
            Some(SaturationReason::ThroughputBelowOffered { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_cap_counts_overflow_as_errors() {
        let cfg = LoadConfig {
            max_in_flight: 5,
            ..LoadConfig::new(Duration::from_millis(500))
        };
        let r = run_step(100.0, &cfg, |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<(), String>(())
        })
        .await
        .unwrap();
        assert_eq!((r.scheduled, r.ok, r.overflow, r.errors), (50, 5, 45, 45));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_still_running_at_the_drain_timeout_are_errors() {
        let cfg = LoadConfig {
            drain_timeout: Duration::from_secs(1),
            ..LoadConfig::new(Duration::from_millis(100))
        };
        let r = run_step(100.0, &cfg, |_| {
            futures::future::pending::<Result<(), String>>()
        })
        .await
        .unwrap();
        assert_eq!((r.scheduled, r.ok, r.timed_out, r.errors), (10, 0, 10, 10));
        assert!(r.latency.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_requests_are_counted_with_the_first_message() {
        let cfg = LoadConfig::new(Duration::from_secs(1));
        let r = run_step(20.0, &cfg, |i| async move {
            if i % 4 == 3 {
                Err(format!("request {i} refused"))
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!((r.scheduled, r.ok, r.errors), (20, 15, 5));
        assert_eq!(r.first_error.as_deref(), Some("request 3 refused"));
        assert_eq!(r.latency.len(), 15);
        assert_eq!(r.summary().latency.count, 15);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_parameters_are_errors() {
        let ok = |_| async { Ok::<(), String>(()) };
        let cfg = LoadConfig::new(Duration::from_secs(1));
        assert_eq!(
            run_step(0.0, &cfg, ok).await.unwrap_err(),
            LoadError::InvalidRate(0.0)
        );
        assert!(run_step(f64::NAN, &cfg, ok).await.is_err());
        let none = LoadConfig {
            max_in_flight: 0,
            ..cfg
        };
        assert_eq!(
            run_step(1.0, &none, ok).await.unwrap_err(),
            LoadError::NoInFlightAllowed
        );
    }
}
