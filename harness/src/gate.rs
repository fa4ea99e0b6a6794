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
//!   * [`Verdict::InsufficientSamples`] when the sample sizes cannot reach
//!     [`GatePolicy::alpha`] at all: the smallest two-sided p-value a Mann–Whitney test of
//!     `n_base` against `n_head` values can give is `2 / C(n_base + n_head, n_base)`
//!     ([`mann_whitney::min_p_value`]), 0.1 for 3 against 3. Such a pair can never be
//!     called regressed, so calling it `unchanged` would be a false reassurance.
//!   * [`Verdict::Regressed`] when the Mann–Whitney p-value is below `alpha` **and** the
//!     whole bootstrap CI of the ratio lies beyond the tolerance in the bad direction (per
//!     [`Direction`]).
//!   * [`Verdict::Improved`] is the mirror; [`Verdict::Unchanged`] is everything else.
//!
//!   Both conditions are needed: the U test alone flags 1% shifts nobody cares about once
//!   n is large, and the CI alone can't tell a real shift from a lucky draw for tiny n.
//! * **Noise widens the tolerance; it never voids the verdict.** A timing sample whose
//!   coefficient of variation exceeds [`GatePolicy::cov_threshold`] is *noisy*
//!   ([`Judgement::noisy`]). Its runs no longer look exchangeable: something on the machine
//!   (another job, a frequency change) moved some of them, and may have moved one side's
//!   runs more than the other's, which the bootstrap CI (built on exchangeable runs) does
//!   not cover. The gate then asks the change to exceed what **two single runs** of one
//!   build could differ by: with each run's log-value spread σ ≈ CoV, the log-ratio of a
//!   base run and a head run has spread `√(CoV_base² + CoV_head²)`, and stays within
//!   `z₀.₉₉₅ = 2.576` times that in 99% of A/A pairs, the same 99% bound the history's
//!   drift uses ([`crate::drift`]). So the tolerance becomes
//!
//!   ```text
//!   t' = max(t, exp(2.576 · √(CoV_base² + CoV_head²)) − 1)      (noise_tolerance)
//!   ```
//!
//!   which is 44% for two sides at the 10% threshold. With `t'`:
//!   * p < α and the whole CI beyond `t'` → `Regressed` (or `Improved`), shown as
//!     "regressed (noisy)": a 20× slowdown is a regression however noisy the machine;
//!   * the CI wholly within `t'` → `Unchanged` (noisy): no change larger than the noise;
//!   * otherwise (the CI straddles a bound of `t'`, or lies beyond it with p ≥ α) →
//!     [`Verdict::Erratic`]: a change of about the noise's size, which this pair cannot
//!     settle. It is reported and does not fail the gate.
//! * **Counter** metrics ([`MetricKind::Counter`]), deterministic counts such as
//!   allocations or rows written: the median ratio is compared with
//!   [`GatePolicy::counter_tolerance`]; no test is needed since repeated runs agree, so
//!   neither noise nor sample size applies.
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
    mann_whitney, summarize,
};

/// `z(0.995)`: a noisy metric's tolerance covers 99% of the log-ratios of two single A/A
/// runs (see the module documentation), as [`crate::drift`]'s does for two nights.
pub const NOISE_Z: f64 = 2.5758;

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
    /// Noisy, and the ratio's CI straddles the noise-widened tolerance (timing only):
    /// reported, not gated.
    Erratic,
    /// The sample sizes cannot reach p < α whatever the values (timing only), e.g. 3
    /// against 3 at α = 0.05. Written `"insufficient samples"`.
    #[serde(rename = "insufficient samples")]
    InsufficientSamples,
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
    /// The tolerance the verdict was decided with: the policy's, or for a noisy timing
    /// metric the wider [`noise_tolerance`]; the counter tolerance for a counter.
    pub tolerance: f64,
    /// A timing metric with either side's CoV above the threshold: its tolerance was
    /// widened. Tables show a verdict reached this way as "regressed (noisy)".
    pub noisy: bool,
}

/// The tolerance of a noisy timing metric: `exp(2.576 · √(cov_base² + cov_head²)) − 1`,
/// the bound that the ratio of two single A/A runs stays within 99% of the time when each
/// run's log-spread is its CoV (see the module documentation).
pub fn noise_tolerance(cov_base: f64, cov_head: f64) -> f64 {
    (NOISE_Z * cov_base.hypot(cov_head)).exp() - 1.0
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
    let mut tolerance = policy.tolerance;
    let mut noisy = false;
    let (ratio, verdict) = match (kind, &comparison) {
        (MetricKind::Timing, Some(c)) => {
            noisy = base_summary.erratic || head_summary.erratic;
            if noisy {
                tolerance = tolerance.max(noise_tolerance(base_summary.cov, head_summary.cov));
            }
            let verdict = if !mann_whitney::can_reach(policy.alpha, base.len(), head.len()) {
                Verdict::InsufficientSamples
            } else {
                let (low, high) = worse_factor(&c.ratio_ci, direction);
                let significant = c.p_value < policy.alpha;
                match (classify(low, high, tolerance), significant, noisy) {
                    (v @ (Verdict::Regressed | Verdict::Improved), true, _) => v,
                    (_, _, false) => Verdict::Unchanged,
                    // Noisy: a CI within the widened band is a change no larger than the
                    // noise; one that crosses a bound of it cannot be settled.
                    (_, _, true) if within(low, high, tolerance) => Verdict::Unchanged,
                    (_, _, true) => Verdict::Erratic,
                }
            };
            (c.ratio, verdict)
        }
        // `compare` only refuses a timing metric on a zero baseline, returned above.
        (MetricKind::Timing, None) => return Err(StatsError::ZeroBaseline),
        (MetricKind::Counter, _) => {
            tolerance = policy.counter_tolerance;
            let ratio = counter_ratio(base_summary.median, head_summary.median);
            let worse = match direction {
                Direction::LowerIsBetter => ratio,
                Direction::HigherIsBetter => 1.0 / ratio,
            };
            (ratio, classify(worse, worse, tolerance))
        }
    };
    Ok(Judgement {
        verdict,
        ratio,
        ratio_ci: comparison.as_ref().map(|c| c.ratio_ci),
        p_value: comparison.as_ref().map(|c| c.p_value),
        tolerance,
        noisy,
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

/// Whether the "worse factor" interval lies wholly inside the band
/// `[1 / (1 + tol), 1 + tol]`.
fn within(worse_low: f64, worse_high: f64, tol: f64) -> bool {
    worse_low >= 1.0 / (1.0 + tol) && worse_high <= 1.0 + tol
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
mod tests;
