//! Statistics over the samples that the measurement layer collects.
//!
//! This is the middle layer of the harness (measurement → **statistics** → gate). It knows
//! nothing about processes, databases or scenarios: it takes plain `&[f64]` samples and
//! returns plain data.
//!
//! * [`summarize`] describes one sample: median, mean, standard deviation, coefficient of
//!   variation (CoV), a percentile-bootstrap 95% confidence interval of the median, and an
//!   `erratic` flag when the CoV exceeds a threshold ([`DEFAULT_COV_THRESHOLD`]).
//! * [`compare`] describes an A/B pair: the ratio of medians (head / base) with its
//!   bootstrap confidence interval, and the two-sided Mann–Whitney U p-value
//!   ([`mann_whitney()`]).
//!
//! Every bootstrap draws from a ChaCha RNG seeded by [`BootstrapConfig::seed`], so the same
//! samples always give the same intervals: a verdict can be re-derived from a results file.
//!
//! ```
//! use harness::stats::{compare, summarize, BootstrapConfig, DEFAULT_COV_THRESHOLD};
//!
//! let base = [100.0, 101.0, 99.0, 100.5, 100.2, 99.8, 100.1];
//! let head = [80.0, 80.5, 79.6, 80.2, 80.1, 79.9, 80.3];
//! let cfg = BootstrapConfig::default();
//! let s = summarize(&base, &cfg, DEFAULT_COV_THRESHOLD).unwrap();
//! assert_eq!(s.median, 100.1);
//! assert!(!s.erratic);
//! let c = compare(&base, &head, &cfg).unwrap();
//! assert!(c.ratio_ci.upper < 0.85 && c.p_value < 0.01);
//! ```

mod bootstrap;
pub mod mann_whitney;

pub use bootstrap::{median_ci, ratio_of_medians_ci};
pub use mann_whitney::{MannWhitney, mann_whitney};

use serde::{Deserialize, Serialize};

/// CoV (standard deviation / mean) above which a sample is flagged `erratic`.
///
/// 10%: on the project's shared 2-core machines, repeated whole-process runs of a stable
/// scenario stay within a few percent; above 10% the spread is as large as the effects the
/// gate is meant to find (Kestra's claims start at 15%), so a verdict would mean little.
pub const DEFAULT_COV_THRESHOLD: f64 = 0.10;

/// Bootstrap resamples drawn by default. 10 000 keeps the 2.5% / 97.5% percentiles stable
/// to well under 1% of the interval width and costs milliseconds for typical n ≤ 50.
pub const DEFAULT_RESAMPLES: usize = 10_000;

/// The fixed default seed (`"flowbench"` in ASCII, truncated to 8 bytes).
pub const DEFAULT_SEED: u64 = 0x666c_6f77_6265_6e63;

/// Errors for samples that statistics cannot describe.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The sample holds no value.
    #[error("the sample is empty")]
    Empty,
    /// The sample holds a NaN or an infinity at this index.
    #[error("sample value {index} is not finite ({value})")]
    NonFinite {
        /// Position of the bad value in the sample.
        index: usize,
        /// The bad value.
        value: f64,
    },
    /// A ratio was asked for but the base median is zero.
    #[error("the base median is zero, so a ratio head/base is undefined")]
    ZeroBaseline,
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Confidence level, e.g. `0.95`.
    pub level: f64,
}

impl ConfidenceInterval {
    /// Whether `x` lies within the interval, bounds included.
    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
}

/// How bootstrap intervals are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of resamples.
    pub resamples: usize,
    /// Confidence level of the interval, in (0, 1).
    pub confidence: f64,
    /// RNG seed; the same seed and samples give the same interval.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: DEFAULT_RESAMPLES,
            confidence: 0.95,
            seed: DEFAULT_SEED,
        }
    }
}

/// The description of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Median (mean of the two middle values for even n).
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator); 0 for n = 1.
    pub std_dev: f64,
    /// Coefficient of variation, `std_dev / |mean|`; 0 when the mean is 0 and all values
    /// are equal, infinite when the mean is 0 and they are not.
    pub cov: f64,
    /// Percentile-bootstrap confidence interval of the median.
    pub median_ci: ConfidenceInterval,
    /// The CoV exceeds the threshold given to [`summarize`].
    pub erratic: bool,
}

/// The description of an A/B pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// `median(head) / median(base)`.
    pub ratio: f64,
    /// Percentile-bootstrap interval of the ratio of medians.
    pub ratio_ci: ConfidenceInterval,
    /// Two-sided Mann–Whitney U p-value for "base and head come from the same
    /// distribution".
    pub p_value: f64,
    /// The U test details (statistic, method).
    pub u_test: MannWhitney,
}

/// Checks that the sample is non-empty and finite.
pub fn check_sample(xs: &[f64]) -> Result<(), StatsError> {
    if xs.is_empty() {
        return Err(StatsError::Empty);
    }
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            index,
            value: xs[index],
        }),
        None => Ok(()),
    }
}

/// Median of the sample, `None` when it is empty. NaNs sort last (`f64::total_cmp`).
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut buf = xs.to_vec();
    Some(median_in_place(&mut buf))
}

/// Median of a non-empty buffer, reordering it. Used in bootstrap loops, where sorting a
/// fresh copy per resample would dominate.
pub(crate) fn median_in_place(buf: &mut [f64]) -> f64 {
    let n = buf.len();
    let mid = n / 2;
    let (left, upper_mid, _) = buf.select_nth_unstable_by(mid, f64::total_cmp);
    let upper_mid = *upper_mid;
    if n % 2 == 1 {
        upper_mid
    } else {
        let lower_mid = left
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(upper_mid);
        (lower_mid + upper_mid) / 2.0
    }
}

/// Arithmetic mean, `None` when the sample is empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// Sample standard deviation (n − 1 denominator), `None` when the sample is empty and 0
/// for a single value.
pub fn std_dev(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    if xs.len() < 2 {
        return Some(0.0);
    }
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// Coefficient of variation, `std_dev / |mean|`, `None` when the sample is empty.
pub fn coefficient_of_variation(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    let sd = std_dev(xs)?;
    Some(if sd == 0.0 {
        0.0
    } else if m == 0.0 {
        f64::INFINITY
    } else {
        sd / m.abs()
    })
}

/// Describes one sample; `cov_threshold` sets the `erratic` flag.
pub fn summarize(
    xs: &[f64],
    cfg: &BootstrapConfig,
    cov_threshold: f64,
) -> Result<Summary, StatsError> {
    check_sample(xs)?;
    let cov = coefficient_of_variation(xs).unwrap_or(0.0);
    Ok(Summary {
        n: xs.len(),
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        median: median(xs).unwrap_or(f64::NAN),
        mean: mean(xs).unwrap_or(f64::NAN),
        std_dev: std_dev(xs).unwrap_or(0.0),
        cov,
        median_ci: median_ci(xs, cfg)?,
        erratic: cov > cov_threshold,
    })
}

/// Describes an A/B pair: ratio of medians with its interval, and the U test.
pub fn compare(
    base: &[f64],
    head: &[f64],
    cfg: &BootstrapConfig,
) -> Result<Comparison, StatsError> {
    check_sample(base)?;
    check_sample(head)?;
    let base_median = median(base).unwrap_or(f64::NAN);
    if base_median == 0.0 {
        return Err(StatsError::ZeroBaseline);
    }
    let ratio = median(head).unwrap_or(f64::NAN) / base_median;
    let u_test = mann_whitney(base, head)?;
    Ok(Comparison {
        ratio,
        ratio_ci: ratio_of_medians_ci(base, head, cfg)?,
        p_value: u_test.p_value,
        u_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn mean_sd_cov_known_values() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32/7.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), Some(5.0));
        let sd = std_dev(&xs).unwrap();
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let cov = coefficient_of_variation(&xs).unwrap();
        assert!((cov - sd / 5.0).abs() < 1e-12);
        assert_eq!(coefficient_of_variation(&[3.0, 3.0]), Some(0.0));
        assert_eq!(coefficient_of_variation(&[-1.0, 1.0]), Some(f64::INFINITY));
    }

    #[test]
    fn summarize_rejects_empty_and_nan() {
        let cfg = BootstrapConfig::default();
        assert_eq!(summarize(&[], &cfg, 0.1), Err(StatsError::Empty));
        assert!(matches!(
            summarize(&[1.0, f64::NAN], &cfg, 0.1),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn summarize_flags_erratic_above_threshold() {
        let cfg = BootstrapConfig {
            resamples: 500,
            ..Default::default()
        };
        let steady = [100.0, 101.0, 99.0, 100.0, 100.5];
        let noisy = [60.0, 140.0, 95.0, 170.0, 40.0];
        let s = summarize(&steady, &cfg, DEFAULT_COV_THRESHOLD).unwrap();
        assert!(!s.erratic);
        assert!(s.median_ci.contains(s.median));
        assert_eq!((s.min, s.max, s.n), (99.0, 101.0, 5));
        assert!(
            summarize(&noisy, &cfg, DEFAULT_COV_THRESHOLD)
                .unwrap()
                .erratic
        );
    }

    #[test]
    fn compare_rejects_zero_baseline() {
        let cfg = BootstrapConfig::default();
        assert_eq!(
            compare(&[0.0, 0.0, 1.0], &[1.0, 2.0, 3.0], &cfg),
            Err(StatsError::ZeroBaseline)
        );
    }

    #[test]
    fn compare_is_reproducible_for_a_seed() {
        let cfg = BootstrapConfig {
            resamples: 1000,
            ..Default::default()
        };
        let base = [10.0, 11.0, 9.5, 10.2, 10.8, 9.9];
        let head = [12.0, 12.5, 11.9, 12.2, 13.0, 12.1];
        let a = compare(&base, &head, &cfg).unwrap();
        let b = compare(&base, &head, &cfg).unwrap();
        assert_eq!(a, b);
        assert!((a.ratio - 12.15 / 10.1).abs() < 1e-12);
        assert!(a.ratio_ci.contains(a.ratio));
    }
}
