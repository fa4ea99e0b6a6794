//! The regression gate: a typed verdict for one metric of an A/B pair.
//!
//! This is the comparison layer (measurement → statistics → **gate**). Its functions are
//! pure: samples in, [`Judgement`] out. `flowbench compare` maps the verdicts to an exit
//! code (0 nothing regressed, 3 a regression); unlike criterion.rs, nothing here panics or
//! exits.
//!
//! # The rule
//!
//! Ratios are `head / base` of medians. With `t` the tolerance, "beyond the tolerance" means
//! above `1 + t` or below `1 / (1 + t)`; the bounds are symmetric in log space, so swapping
//! base and head mirrors the verdict exactly.
//!
//! * **Timing** metrics ([`MetricKind::Timing`]):
//!   * [`Verdict::Erratic`] when either side's coefficient of variation exceeds
//!     [`GatePolicy::cov_threshold`]. It is reported, never gated: such a sample can't
//!     support a verdict either way.
//!   * [`Verdict::Regressed`] when the Mann–Whitney p-value is below
//!     [`GatePolicy::alpha`] **and** the whole bootstrap CI of the ratio lies beyond the
//!     tolerance in the bad direction (per [`Direction`]).
//!   * [`Verdict::Improved`] is the mirror; [`Verdict::Unchanged`] is everything else.
//!
//!   Both conditions are needed: the U test alone flags 1% shifts nobody cares about once
//!   n is large, and the CI alone can't tell a real shift from a lucky draw for tiny n.
//!   With fewer than 4 runs a side the two-sided U test can't reach p < 0.05 (the smallest
//!   exact p for 3 vs 3 is 0.1), so such metrics are never gated.
//! * **Counter** metrics ([`MetricKind::Counter`]), deterministic counts such as
//!   allocations or rows written: the median ratio is compared with
//!   [`GatePolicy::counter_tolerance`]; no test is needed since repeated runs agree.
//!
//! ```
//! use harness::gate::{judge, Direction, GatePolicy, MetricKind, Verdict};
//! use harness::stats::BootstrapConfig;
//!
//! let base = [100.0, 101.0, 99.5, 100.2, 100.8, 99.9, 100.4, 100.1];
//! let head = [130.0, 131.0, 129.4, 130.3, 130.9, 129.8, 130.5, 130.2];
//! let j = judge(&base, &head, Direction::LowerIsBetter, MetricKind::Timing,
//!               &GatePolicy::default(), &BootstrapConfig::default()).unwrap();
//! assert_eq!(j.verdict, Verdict::Regressed);
//! ```

use serde::{Deserialize, Serialize};

use crate::stats::{
    BootstrapConfig, ConfidenceInterval, DEFAULT_COV_THRESHOLD, StatsError, Summary, compare,
    summarize,
};

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Times, CPU, memory, allocations: smaller is better. Written `"lower"`.
    #[serde(rename = "lower")]
    LowerIsBetter,
    /// Throughput: larger is better. Written `"higher"`.
    #[serde(rename = "higher")]
    HigherIsBetter,
}

/// How a metric behaves across repeated runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Noisy measurements (times, rates, RSS): judged with the U test and a ratio CI.
    Timing,
    /// Deterministic counts (allocations, rows): judged by median ratio alone.
    Counter,
}

/// The outcome for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly better, beyond the tolerance.
    Improved,
    /// Significantly worse, beyond the tolerance: the gate fails.
    Regressed,
    /// Neither.
    Unchanged,
    /// Too noisy to judge (timing only); reported, never gated.
    Erratic,
}

/// The thresholds of the gate. `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GatePolicy {
    /// Significance level of the U test. Default 0.05.
    pub alpha: f64,
    /// Relative change a timing metric must exceed, as a fraction. Default 0.05 (5%):
    /// below that, run-to-run drift on shared machines produces false alarms.
    pub tolerance: f64,
    /// Relative change a counter must exceed. Default 0.01 (1%): counters repeat exactly
    /// unless background threads (runtime, pool) allocate a little differently.
    pub counter_tolerance: f64,
    /// CoV above which a timing sample is erratic. Default
    /// [`DEFAULT_COV_THRESHOLD`] (10%).
    pub cov_threshold: f64,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            tolerance: 0.05,
            counter_tolerance: 0.01,
            cov_threshold: DEFAULT_COV_THRESHOLD,
        }
    }
}

/// Per-metric changes to a [`GatePolicy`], as a scenario file writes them:
/// `gate = { tolerance = 0.10 }` on a `[[metric]]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateOverride {
    /// Replaces [`GatePolicy::alpha`].
    pub alpha: Option<f64>,
    /// Replaces [`GatePolicy::tolerance`].
    pub tolerance: Option<f64>,
    /// Replaces [`GatePolicy::counter_tolerance`].
    pub counter_tolerance: Option<f64>,
    /// Replaces [`GatePolicy::cov_threshold`].
    pub cov_threshold: Option<f64>,
}

/// A policy field outside its allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("gate `{field}` = {value} is out of range: {rule}")]
pub struct InvalidPolicy {
    /// The field name, as written in a scenario file.
    pub field: &'static str,
    /// The rejected value.
    pub value: f64,
    /// The allowed range, in words.
    pub rule: &'static str,
}

impl GatePolicy {
    /// This policy with the override's fields replacing its own.
    pub fn with_override(&self, o: &GateOverride) -> GatePolicy {
        GatePolicy {
            alpha: o.alpha.unwrap_or(self.alpha),
            tolerance: o.tolerance.unwrap_or(self.tolerance),
            counter_tolerance: o.counter_tolerance.unwrap_or(self.counter_tolerance),
            cov_threshold: o.cov_threshold.unwrap_or(self.cov_threshold),
        }
    }

    /// Checks every field is in range: alpha in (0, 1), tolerances finite and ≥ 0, the
    /// CoV threshold finite and > 0.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        let checks = [
            (
                "alpha",
                self.alpha,
                self.alpha > 0.0 && self.alpha < 1.0,
                "0 < alpha < 1",
            ),
            (
                "tolerance",
                self.tolerance,
                self.tolerance.is_finite() && self.tolerance >= 0.0,
                "a finite fraction ≥ 0",
            ),
            (
                "counter_tolerance",
                self.counter_tolerance,
                self.counter_tolerance.is_finite() && self.counter_tolerance >= 0.0,
                "a finite fraction ≥ 0",
            ),
            (
                "cov_threshold",
                self.cov_threshold,
                self.cov_threshold.is_finite() && self.cov_threshold > 0.0,
                "a finite fraction > 0",
            ),
        ];
        match checks.into_iter().find(|c| !c.2) {
            Some((field, value, _, rule)) => Err(InvalidPolicy { field, value, rule }),
            None => Ok(()),
        }
    }
}

/// The verdict for one metric with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Summary of the base sample.
    pub base: Summary,
    /// Summary of the head sample.
    pub head: Summary,
    /// `median(head) / median(base)`; for a counter whose base median is 0, 1 when the
    /// head's is 0 too and infinity otherwise.
    pub ratio: f64,
    /// Bootstrap CI of the ratio; `None` for a counter with a zero base median.
    pub ratio_ci: Option<ConfidenceInterval>,
    /// Two-sided Mann–Whitney p-value; `None` for a counter with a zero base median.
    pub p_value: Option<f64>,
}

/// Judges one metric of an A/B pair under `policy`.
///
/// Fails on an empty or non-finite sample, and on a timing metric whose base median is 0.
pub fn judge(
    base: &[f64],
    head: &[f64],
    direction: Direction,
    kind: MetricKind,
    policy: &GatePolicy,
    bootstrap: &BootstrapConfig,
) -> Result<Judgement, StatsError> {
    let base_summary = summarize(base, bootstrap, policy.cov_threshold)?;
    let head_summary = summarize(head, bootstrap, policy.cov_threshold)?;
    let comparison = match compare(base, head, bootstrap) {
        Ok(c) => Some(c),
        Err(StatsError::ZeroBaseline) if kind == MetricKind::Counter => None,
        Err(e) => return Err(e),
    };
    let (ratio, verdict) = match (kind, &comparison) {
        (MetricKind::Timing, Some(c)) => {
            let verdict = if base_summary.erratic || head_summary.erratic {
                Verdict::Erratic
            } else if c.p_value >= policy.alpha {
                Verdict::Unchanged
            } else {
                let worse_ci = worse_factor(&c.ratio_ci, direction);
                classify(worse_ci.0, worse_ci.1, policy.tolerance)
            };
            (c.ratio, verdict)
        }
        // `compare` only refuses a timing metric on a zero baseline, returned above.
        (MetricKind::Timing, None) => return Err(StatsError::ZeroBaseline),
        (MetricKind::Counter, _) => {
            let ratio = counter_ratio(base_summary.median, head_summary.median);
            let worse = match direction {
                Direction::LowerIsBetter => ratio,
                Direction::HigherIsBetter => 1.0 / ratio,
            };
            (ratio, classify(worse, worse, policy.counter_tolerance))
        }
    };
    Ok(Judgement {
        verdict,
        ratio,
        ratio_ci: comparison.as_ref().map(|c| c.ratio_ci),
        p_value: comparison.as_ref().map(|c| c.p_value),
        base: base_summary,
        head: head_summary,
    })
}

/// The CI re-expressed as a "how many times worse" interval (low, high), so one rule
/// serves both directions.
fn worse_factor(ci: &ConfidenceInterval, direction: Direction) -> (f64, f64) {
    match direction {
        Direction::LowerIsBetter => (ci.lower, ci.upper),
        Direction::HigherIsBetter => (1.0 / ci.upper, 1.0 / ci.lower),
    }
}

/// Regressed when the whole "worse factor" interval lies above `1 + tol`, improved when it
/// lies below `1 / (1 + tol)`.
fn classify(worse_low: f64, worse_high: f64, tol: f64) -> Verdict {
    if worse_low > 1.0 + tol {
        Verdict::Regressed
    } else if worse_high < 1.0 / (1.0 + tol) {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    }
}

fn counter_ratio(base_median: f64, head_median: f64) -> f64 {
    if base_median == 0.0 {
        if head_median == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        head_median / base_median
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    use super::*;

    fn boot() -> BootstrapConfig {
        BootstrapConfig {
            resamples: 2000,
            ..Default::default()
        }
    }

    fn normal_sample(mean: f64, sd: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = Normal::new(mean, sd).unwrap();
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    fn timing(base: &[f64], head: &[f64], direction: Direction) -> Judgement {
        judge(
            base,
            head,
            direction,
            MetricKind::Timing,
            &GatePolicy::default(),
            &boot(),
        )
        .unwrap()
    }

    #[test]
    fn identical_samples_are_unchanged() {
        let xs = normal_sample(100.0, 1.0, 10, 1);
        let j = timing(&xs, &xs, Direction::LowerIsBetter);
        assert_eq!(j.verdict, Verdict::Unchanged);
        assert_eq!(j.ratio, 1.0);
        assert_eq!(j.p_value, Some(1.0));
        let c = judge(
            &xs,
            &xs,
            Direction::LowerIsBetter,
            MetricKind::Counter,
            &GatePolicy::default(),
            &boot(),
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::Unchanged);
    }

    #[test]
    fn thirty_percent_shift_is_judged_in_the_right_direction() {
        let base = normal_sample(100.0, 1.0, 10, 2);
        let slower = normal_sample(130.0, 1.3, 10, 3);
        let faster = normal_sample(70.0, 0.7, 10, 4);
        assert_eq!(
            timing(&base, &slower, Direction::LowerIsBetter).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            timing(&base, &faster, Direction::LowerIsBetter).verdict,
            Verdict::Improved
        );
        // For a throughput, a larger head is an improvement.
        assert_eq!(
            timing(&base, &slower, Direction::HigherIsBetter).verdict,
            Verdict::Improved
        );
        assert_eq!(
            timing(&base, &faster, Direction::HigherIsBetter).verdict,
            Verdict::Regressed
        );
        let j = timing(&base, &slower, Direction::LowerIsBetter);
        assert!(j.ratio > 1.25 && j.ratio < 1.35, "{}", j.ratio);
        assert!(j.p_value.unwrap() < 0.001);
    }

    #[test]
    fn significant_shift_within_tolerance_is_unchanged() {
        // 2% slower with very little noise: the U test is sure, but 2% < 5% tolerance.
        let base = normal_sample(100.0, 0.1, 10, 5);
        let head = normal_sample(102.0, 0.1, 10, 6);
        let j = timing(&base, &head, Direction::LowerIsBetter);
        assert!(j.p_value.unwrap() < 0.001);
        assert_eq!(j.verdict, Verdict::Unchanged);
        // The same pair regresses once the tolerance is tightened to 1%.
        let strict = GatePolicy::default().with_override(&GateOverride {
            tolerance: Some(0.01),
            ..Default::default()
        });
        let j = judge(
            &base,
            &head,
            Direction::LowerIsBetter,
            MetricKind::Timing,
            &strict,
            &boot(),
        )
        .unwrap();
        assert_eq!(j.verdict, Verdict::Regressed);
    }

    #[test]
    fn noisy_samples_are_erratic_never_regressed() {
        let base = normal_sample(100.0, 1.0, 10, 7);
        let noisy_head = normal_sample(150.0, 40.0, 10, 8);
        let j = timing(&base, &noisy_head, Direction::LowerIsBetter);
        assert!(j.head.erratic && !j.base.erratic);
        assert_eq!(j.verdict, Verdict::Erratic);
    }

    #[test]
    fn too_few_runs_are_never_gated() {
        let j = timing(
            &[100.0, 101.0, 99.0],
            &[150.0, 151.0, 149.0],
            Direction::LowerIsBetter,
        );
        assert!((j.p_value.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(j.verdict, Verdict::Unchanged);
    }

    #[test]
    fn counters_use_the_counter_tolerance() {
        let policy = GatePolicy::default();
        let counter = |base: &[f64], head: &[f64], d| {
            judge(base, head, d, MetricKind::Counter, &policy, &boot())
                .unwrap()
                .verdict
        };
        let lower = Direction::LowerIsBetter;
        assert_eq!(
            counter(&[1000.0; 3], &[1005.0; 3], lower),
            Verdict::Unchanged
        );
        assert_eq!(
            counter(&[1000.0; 3], &[1020.0; 3], lower),
            Verdict::Regressed
        );
        assert_eq!(counter(&[1000.0; 3], &[980.0; 3], lower), Verdict::Improved);
        assert_eq!(
            counter(&[1000.0; 3], &[1020.0; 3], Direction::HigherIsBetter),
            Verdict::Improved
        );
        // Zero baselines: equal zeros are unchanged, anything from zero is a change.
        assert_eq!(counter(&[0.0; 3], &[0.0; 3], lower), Verdict::Unchanged);
        let j = judge(
            &[0.0; 3],
            &[5.0; 3],
            lower,
            MetricKind::Counter,
            &policy,
            &boot(),
        )
        .unwrap();
        assert_eq!(
            (j.verdict, j.ratio, j.p_value),
            (Verdict::Regressed, f64::INFINITY, None)
        );
        // A counter is never erratic: a one-off outlier does not move the median.
        assert_eq!(
            counter(&[1000.0, 1000.0, 1000.0, 5000.0], &[1000.0; 4], lower),
            Verdict::Unchanged
        );
    }

    #[test]
    fn timing_metric_with_zero_baseline_is_an_error() {
        let r = judge(
            &[0.0; 4],
            &[1.0; 4],
            Direction::LowerIsBetter,
            MetricKind::Timing,
            &GatePolicy::default(),
            &boot(),
        );
        assert_eq!(r, Err(StatsError::ZeroBaseline));
    }

    /// A/A: 20 pairs drawn from one seeded distribution (N(100, 3²), n = 10 per side) must
    /// never regress; with α = 0.05 about one pair is expected to reach p < α by chance,
    /// and the ratio-CI condition is what keeps it from being a false alarm.
    #[test]
    fn a_a_pairs_raise_no_false_alarm() {
        let mut significant = 0;
        for pair in 0..20u64 {
            let base = normal_sample(100.0, 3.0, 10, 1000 + 2 * pair);
            let head = normal_sample(100.0, 3.0, 10, 1001 + 2 * pair);
            let j = timing(&base, &head, Direction::LowerIsBetter);
            assert_ne!(j.verdict, Verdict::Regressed, "pair {pair}: {j:?}");
            assert_ne!(j.verdict, Verdict::Improved, "pair {pair}: {j:?}");
            if j.p_value.unwrap() < 0.05 {
                significant += 1;
            }
        }
        assert!(
            significant <= 4,
            "{significant} of 20 A/A pairs had p < 0.05"
        );
    }

    #[test]
    fn policy_override_and_validation() {
        let p = GatePolicy::default();
        assert_eq!(
            (p.alpha, p.tolerance, p.counter_tolerance),
            (0.05, 0.05, 0.01)
        );
        assert_eq!(p.validate(), Ok(()));
        let o: GateOverride = toml::from_str("alpha = 0.01\ncov_threshold = 0.2").unwrap();
        let q = p.with_override(&o);
        assert_eq!((q.alpha, q.tolerance, q.cov_threshold), (0.01, 0.05, 0.2));
        let bad = p.with_override(&GateOverride {
            alpha: Some(1.5),
            ..Default::default()
        });
        assert_eq!(bad.validate().unwrap_err().field, "alpha");
        assert!(toml::from_str::<GateOverride>("alpah = 0.01").is_err());
    }
}
