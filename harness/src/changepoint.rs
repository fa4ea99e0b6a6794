//! Change-point detection over a metric's history: E-Divisive with means.
//!
//! Given one metric's values in commit order (one value per nightly run, usually the
//! median), it finds the indices where the distribution shifted, so the history chart can
//! mark the commit that made something slower or faster.
//!
//! # Method
//!
//! E-Divisive (Matteson & James, "A Nonparametric Approach for Multiple Change Point
//! Analysis of Multivariate Data", JASA 109(505), 2014), with α = 1 so the energy distance
//! compares means, as MongoDB's `signal-processing-algorithms` and Hunter use it (Daly et
//! al., "Change Point Detection in Software Performance Testing", ICPE 2020):
//!
//! 1. For a segment and a split τ into X (before) and Y (from τ on), with m = |X|,
//!    n = |Y|:
//!    `q(τ) = m·n/(m+n) · ( 2/(m·n) Σ|x−y| − 1/C(m,2) Σ|x−x'| − 1/C(n,2) Σ|y−y'| )`.
//!    The best split of a segment maximises q.
//! 2. The candidate is the best split over all current segments. Its significance is a
//!    permutation test: values are shuffled within each segment (keeping the change
//!    points already found), the maximal q recomputed, and
//!    `p = (1 + #{permuted ≥ observed}) / (1 + permutations)`.
//! 3. When p ≤ [`ChangePointConfig::significance`] the candidate is kept and the search
//!    repeats on the refined segments; otherwise it stops.
//!
//! The original paper also searches the end of Y (κ); like MongoDB's implementation we fix
//! κ at the segment end, which is what hierarchical bisection needs and halves the cost.
//! Each scan is O(L²) over a segment of length L using incremental sums, so each kept
//! change point costs O(permutations · T²) for a history of length T. Shuffles come from
//! a seeded ChaCha RNG, so the same history always gives the same change points.
//!
//! ```
//! use harness::changepoint::{detect, ChangePointConfig};
//!
//! let mut history = vec![10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.1, 10.0, 10.2, 9.9];
//! history.extend([12.0, 12.1, 11.9, 12.2, 12.0, 11.8, 12.1, 12.0, 12.2, 11.9]);
//! let found = detect(&history, &ChangePointConfig::default()).unwrap();
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].index, 10);
//! ```

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::stats::{DEFAULT_SEED, StatsError, check_sample};

/// How change points are searched for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChangePointConfig {
    /// Largest permutation p-value for which a candidate is kept. Default 0.05.
    pub significance: f64,
    /// Permutations per candidate. Default 199, so the smallest attainable p is 0.005.
    pub permutations: usize,
    /// Fewest points on each side of a split. Default 3: a single odd night must not be
    /// a regime of its own, yet a shift three runs before the end is still found.
    pub min_segment: usize,
    /// Seed of the shuffles.
    pub seed: u64,
}

impl Default for ChangePointConfig {
    fn default() -> Self {
        Self {
            significance: 0.05,
            permutations: 199,
            min_segment: 3,
            seed: DEFAULT_SEED,
        }
    }
}

/// A detected shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoint {
    /// Index of the first value of the new regime.
    pub index: usize,
    /// The E-Divisive statistic q at this split (larger is a clearer shift).
    pub q: f64,
    /// Permutation p-value when it was accepted.
    pub p_value: f64,
    /// Mean of the segment ending just before `index`.
    pub mean_before: f64,
    /// Mean of the segment starting at `index`.
    pub mean_after: f64,
}

/// Finds the change points of `series`, sorted by index. Fails on an empty or non-finite
/// series; a series too short to split gives none.
pub fn detect(series: &[f64], cfg: &ChangePointConfig) -> Result<Vec<ChangePoint>, StatsError> {
    check_sample(series)?;
    let min = cfg.min_segment.max(2);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    // Accepted split indices with their q and p.
    let mut accepted: Vec<(usize, f64, f64)> = Vec::new();
    loop {
        let bounds = segment_bounds(series.len(), &accepted);
        let Some((index, q)) = best_over_segments(series, &bounds, min) else {
            break;
        };
        let mut shuffled = series.to_vec();
        let mut at_least_as_large = 0usize;
        for _ in 0..cfg.permutations {
            for &(start, end) in &bounds {
                shuffled[start..end].shuffle(&mut rng);
            }
            if best_over_segments(&shuffled, &bounds, min).is_some_and(|(_, pq)| pq >= q) {
                at_least_as_large += 1;
            }
            shuffled.copy_from_slice(series);
        }
        let p = (1 + at_least_as_large) as f64 / (1 + cfg.permutations) as f64;
        if p > cfg.significance {
            break;
        }
        accepted.push((index, q, p));
    }
    accepted.sort_by_key(|a| a.0);
    let bounds = segment_bounds(series.len(), &accepted);
    let mean = |(s, e): (usize, usize)| series[s..e].iter().sum::<f64>() / (e - s) as f64;
    Ok(accepted
        .iter()
        .enumerate()
        .map(|(k, &(index, q, p_value))| ChangePoint {
            index,
            q,
            p_value,
            mean_before: mean(bounds[k]),
            mean_after: mean(bounds[k + 1]),
        })
        .collect())
}

/// The segments `[start, end)` that the accepted split indices cut the series into.
fn segment_bounds(len: usize, accepted: &[(usize, f64, f64)]) -> Vec<(usize, usize)> {
    let mut cuts: Vec<usize> = accepted.iter().map(|a| a.0).collect();
    cuts.sort_unstable();
    let mut bounds = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        bounds.push((start, cut));
        start = cut;
    }
    bounds.push((start, len));
    bounds
}

/// The best split (absolute index, q) over all segments.
fn best_over_segments(
    series: &[f64],
    bounds: &[(usize, usize)],
    min: usize,
) -> Option<(usize, f64)> {
    bounds
        .iter()
        .filter_map(|&(s, e)| best_split(&series[s..e], min).map(|(tau, q)| (s + tau, q)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The split τ (relative, `min ≤ τ ≤ len − min`) maximising q over one segment.
fn best_split(z: &[f64], min: usize) -> Option<(usize, f64)> {
    let len = z.len();
    if len < 2 * min {
        return None;
    }
    let d = |i: usize, j: usize| (z[i] - z[j]).abs();
    // Start with everything in Y, then move z[k] from Y to X for k = 0, 1, …
    let mut within_x = 0.0;
    let mut within_y: f64 = (0..len)
        .map(|i| (i + 1..len).map(|j| d(i, j)).sum::<f64>())
        .sum();
    let mut between = 0.0;
    let mut best: Option<(usize, f64)> = None;
    for k in 0..len - min {
        let to_x: f64 = (0..k).map(|i| d(i, k)).sum();
        let to_rest_of_y: f64 = (k + 1..len).map(|j| d(k, j)).sum();
        within_x += to_x;
        within_y -= to_rest_of_y;
        between += to_rest_of_y - to_x;
        let tau = k + 1;
        if tau < min {
            continue;
        }
        let (m, n) = (tau as f64, (len - tau) as f64);
        let energy = 2.0 * between / (m * n)
            - 2.0 * within_x / (m * (m - 1.0))
            - 2.0 * within_y / (n * (n - 1.0));
        let q = m * n / (m + n) * energy;
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((tau, q));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use rand_distr::{Distribution, Normal};

    use super::*;

    fn noise(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = Normal::new(mean, sd).unwrap();
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn q_matches_direct_definition() {
        // X = [1, 2], Y = [5, 6, 7]: Σ|x−y| = 4+5+6+3+4+5 = 27, Σ|x−x'| = 1, Σ|y−y'| = 4.
        // E = 2·27/6 − 1/1 − 4/3 = 6.6667; q = 6/5 · E = 8.0.
        let z = [1.0, 2.0, 5.0, 6.0, 7.0];
        let (tau, q) = best_split(&z, 2).unwrap();
        assert_eq!(tau, 2);
        assert!((q - 8.0).abs() < 1e-12, "{q}");
    }

    #[test]
    fn injected_shift_is_found_at_its_index() {
        let mut series = noise(30, 100.0, 2.0, 11);
        series.extend(noise(30, 106.0, 2.0, 12));
        let found = detect(&series, &ChangePointConfig::default()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].index.abs_diff(30) <= 1, "{found:?}");
        assert!(found[0].p_value <= 0.05);
        assert!(found[0].mean_after - found[0].mean_before > 4.0);
    }

    #[test]
    fn two_shifts_are_both_found() {
        let mut series = noise(20, 50.0, 1.0, 21);
        series.extend(noise(25, 56.0, 1.0, 22));
        series.extend(noise(20, 51.0, 1.0, 23));
        let found = detect(&series, &ChangePointConfig::default()).unwrap();
        let indices: Vec<usize> = found.iter().map(|c| c.index).collect();
        assert_eq!(indices.len(), 2, "{found:?}");
        assert!(
            indices[0].abs_diff(20) <= 1 && indices[1].abs_diff(45) <= 1,
            "{indices:?}"
        );
    }

    #[test]
    fn flat_noisy_series_has_no_change_point() {
        for seed in [31, 32, 33] {
            let series = noise(60, 100.0, 5.0, seed);
            let found = detect(&series, &ChangePointConfig::default()).unwrap();
            assert!(found.is_empty(), "seed {seed}: {found:?}");
        }
    }

    #[test]
    fn short_or_bad_series() {
        let cfg = ChangePointConfig::default();
        assert!(detect(&[1.0, 2.0, 9.0, 9.0, 9.0], &cfg).unwrap().is_empty());
        assert_eq!(detect(&[], &cfg), Err(StatsError::Empty));
        assert!(detect(&[1.0, f64::INFINITY], &cfg).is_err());
    }

    #[test]
    fn same_seed_same_result() {
        let mut series = noise(15, 10.0, 1.0, 41);
        series.extend(noise(15, 12.0, 1.0, 42));
        let cfg = ChangePointConfig::default();
        assert_eq!(
            detect(&series, &cfg).unwrap(),
            detect(&series, &cfg).unwrap()
        );
    }
}
