//! Stepped load: a ladder of rates run one step after another until saturation.
//!
//! Kestra's benchmark raises the webhook rate through 250, 500, 1 000, 1 500 and 2 000
//! executions per minute; [`kestra_ladder`] continues it by ×1.5 a step. [`run_steps`]
//! stops at the first step that [`saturation`] flags, whose rate is the saturation point.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{LoadConfig, LoadError, StepReport, run_step_from};

/// Kestra's benchmark rates, in executions per minute, before the ladder goes up by ×1.5.
pub const KESTRA_RATES_PER_MIN: [f64; 5] = [250.0, 500.0, 1000.0, 1500.0, 2000.0];

/// Fraction of the offered rate below which a step is saturated.
pub const DEFAULT_MIN_ACHIEVED_FRACTION: f64 = 0.9;

/// When a step counts as saturated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaturationLimits {
    /// Saturated when achieved < this fraction of offered. Default 0.9.
    pub min_achieved_fraction: f64,
    /// Saturated when the p99 latency exceeds this, if set.
    pub max_p99: Option<Duration>,
}

impl Default for SaturationLimits {
    fn default() -> Self {
        Self {
            min_achieved_fraction: DEFAULT_MIN_ACHIEVED_FRACTION,
            max_p99: None,
        }
    }
}

/// Why a step is saturated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SaturationReason {
    /// The server completed too few requests.
    ThroughputBelowOffered {
        /// Achieved successful requests per second.
        achieved_per_s: f64,
        /// Offered requests per second.
        offered_per_s: f64,
    },
    /// The tail latency is above the limit.
    P99AboveLimit {
        /// Measured p99.
        p99: Duration,
        /// The limit.
        limit: Duration,
    },
}

/// The outcome of a ladder of steps.
#[derive(Debug, Clone)]
pub struct StepsReport {
    /// Every step run, in order; the last is the saturated one when `saturated_at` is set.
    pub steps: Vec<StepReport>,
    /// Index into `steps` of the first saturated step, and why.
    pub saturated_at: Option<(usize, SaturationReason)>,
}

/// Kestra's benchmark ladder in requests **per second**: 250, 500, 1 000, 1 500 and 2 000
/// per minute, then ×1.5 each step (3 000, 4 500, …), `steps` rates in all.
pub fn kestra_ladder(steps: usize) -> Vec<f64> {
    let mut per_min: Vec<f64> = KESTRA_RATES_PER_MIN.iter().copied().take(steps).collect();
    while per_min.len() < steps {
        let last = per_min.last().copied().unwrap_or(KESTRA_RATES_PER_MIN[0]);
        per_min.push(last * 1.5);
    }
    per_min.into_iter().map(|r| r / 60.0).collect()
}

/// Whether `report` shows saturation under `limits`, judged on the requests' own latency.
pub fn saturation(report: &StepReport, limits: &SaturationLimits) -> Option<SaturationReason> {
    limits.judge(
        report.achieved_rate_per_s,
        report.offered_rate_per_s,
        Duration::from_micros(report.latency.value_at_quantile(0.99)),
    )
}

impl SaturationLimits {
    /// The saturation rule, for any latency a caller measures (a request's, or an
    /// execution's as `e2e-webhook` reads it): achieved below `min_achieved_fraction` of
    /// offered, or `p99` above `max_p99`.
    pub fn judge(
        &self,
        achieved_per_s: f64,
        offered_per_s: f64,
        p99: Duration,
    ) -> Option<SaturationReason> {
        if achieved_per_s < self.min_achieved_fraction * offered_per_s {
            return Some(SaturationReason::ThroughputBelowOffered {
                achieved_per_s,
                offered_per_s,
            });
        }
        match self.max_p99 {
            Some(limit) if p99 > limit => Some(SaturationReason::P99AboveLimit { p99, limit }),
            _ => None,
        }
    }
}

impl Display for SaturationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaturationReason::ThroughputBelowOffered {
                achieved_per_s,
                offered_per_s,
            } => write!(
                f,
                "{achieved_per_s:.1} requests/s achieved of {offered_per_s:.1} offered"
            ),
            SaturationReason::P99AboveLimit { p99, limit } => {
                write!(f, "p99 {p99:?} above {limit:?}")
            }
        }
    }
}

/// Runs `rates_per_s` in order, one step each, until a step is saturated or the rates run
/// out. Request indices continue across steps, so each request of the run gets a unique
/// index (a webhook key, say).
pub async fn run_steps<F, Fut, E>(
    rates_per_s: &[f64],
    config: &LoadConfig,
    limits: &SaturationLimits,
    request: F,
) -> Result<StepsReport, LoadError>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let mut steps = Vec::new();
    let mut next_index = 0;
    for &rate in rates_per_s {
        let report = run_step_from(rate, config, next_index, &request).await?;
        next_index += report.scheduled;
        let saturated = saturation(&report, limits);
        steps.push(report);
        if let Some(reason) = saturated {
            return Ok(StepsReport {
                saturated_at: Some((steps.len() - 1, reason)),
                steps,
            });
        }
    }
    Ok(StepsReport {
        steps,
        saturated_at: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::loadgen::run_step;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn kestra_ladder_follows_the_table_then_grows_by_half() {
        let per_min: Vec<f64> = kestra_ladder(8)
            .iter()
            .map(|r| (r * 60.0).round())
            .collect();
        assert_eq!(
            per_min,
            [250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4500.0, 6750.0]
        );
        assert_eq!(kestra_ladder(2).len(), 2);
    }

    /// Capacity 20/s (two workers, 100 ms each): 5, 10 and 15/s are served, 30/s is not,
    /// and the ladder stops there without running 60/s.
    #[tokio::test(start_paused = true)]
    async fn steps_stop_at_saturation_and_indices_continue() {
        let workers = Arc::new(tokio::sync::Semaphore::new(2));
        let max_index = Arc::new(AtomicU64::new(0));
        let cfg = LoadConfig::new(Duration::from_secs(2));
        let report = run_steps(
            &[5.0, 10.0, 15.0, 30.0, 60.0],
            &cfg,
            &SaturationLimits::default(),
            |i| {
                let workers = workers.clone();
                max_index.fetch_max(i, Ordering::Relaxed);
                async move {
                    let _worker = workers.acquire().await.map_err(|e| e.to_string())?;
                    tokio::time::sleep(100 * MS).await;
                    Ok::<(), String>(())
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(report.steps.len(), 4);
        let (at, reason) = report.saturated_at.unwrap();
        assert_eq!(at, 3);
        assert!(matches!(
            reason,
            SaturationReason::ThroughputBelowOffered { .. }
        ));
        // 10 + 20 + 30 + 60 requests, indices 0..=119.
        assert_eq!(max_index.load(Ordering::Relaxed), 119);
    }

    #[tokio::test(start_paused = true)]
    async fn p99_limit_flags_saturation() {
        // 10 s, so the 200 ms drain after the last request barely lowers the achieved rate.
        let cfg = LoadConfig::new(Duration::from_secs(10));
        let r = run_step(50.0, &cfg, |_| async {
            tokio::time::sleep(200 * MS).await;
            Ok::<(), String>(())
        })
        .await
        .unwrap();
        let limits = SaturationLimits {
            max_p99: Some(100 * MS),
            ..Default::default()
        };
        assert!(matches!(
            saturation(&r, &limits),
            Some(SaturationReason::P99AboveLimit { .. })
        ));
        assert_eq!(saturation(&r, &SaturationLimits::default()), None);
    }
}
