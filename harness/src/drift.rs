//! Between-run drift of each metric, learned from the run history.
//!
//! The samples of one run are taken minutes apart on one machine, so they share its
//! state: CPU frequency, page cache, what else runs. Two runs of the same build on
//! different nights differ by more than their own samples suggest, and a U test on the
//! pooled samples reads that drift as a shift. The gate therefore needs a tolerance at
//! least as wide as the drift, and the drift can only be seen across runs.
//!
//! # The estimate
//!
//! For each metric, let `x₁ … xₙ` be its medians in the history, oldest first, and
//! `dᵢ = |ln(xᵢ / xᵢ₋₁)|` the size of each step between consecutive runs. If each run's
//! log-median is the true value plus independent noise of spread σ, a step is the
//! difference of two such runs, exactly what an A/A comparison measures: normal with
//! spread σ√2, so `median(d) = 0.6745 · σ√2`. The tolerance that an A/A log-ratio stays
//! within 99% of the time is then
//!
//! ```text
//! 2.576 · σ√2 = (2.576 / 0.6745) · median(d) ≈ 3.82 · median(d)
//! ```
//!
//! The median of the steps, not their mean or maximum, is used so that a real shift in
//! the history (one large step) does not widen the tolerance and hide the next one.
//! Fewer than [`MIN_RUNS`] runs give no estimate, and the policy's tolerance stands.
//!
//! ```
//! use harness::drift::Drift;
//! use reports::results::history::{History, HistoryRecord};
//!
//! let medians = [100.0, 104.0, 99.0, 103.0, 98.0, 101.0];
//! let records = medians.iter().enumerate().map(|(i, m)| HistoryRecord {
//!     v: 1,
//!     run_id: format!("r{i}"),
//!     git_sha: None,
//!     time: "2026-01-01T00:00:00Z".parse().unwrap(),
//!     medians: [("s/sqlite/a/wall_ms".to_string(), *m)].into(),
//! }).collect();
//! let drift = Drift::from_history(&History { records }, None);
//! let t = drift.tolerance("s/sqlite/a/wall_ms").unwrap();
//! assert!(t > 0.10 && t < 0.25, "{t}");
//! assert_eq!(drift.tolerance("other"), None);
//! ```

use std::collections::BTreeMap;

use reports::results::history::History;

/// Runs a metric needs in the history before its drift is estimated.
pub const MIN_RUNS: usize = 5;

/// `z(0.995) / (z(0.75) · √2) · √2`: turns the median absolute step into the 99% bound
/// of an A/A log-ratio (see the module documentation).
pub const STEP_TO_TOLERANCE: f64 = 2.5758 / 0.6745;

/// One metric's drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The runs it was estimated from.
    pub runs: usize,
    /// The median of `|ln(xᵢ / xᵢ₋₁)|`.
    pub median_step: f64,
    /// The relative tolerance that covers A/A drift: `exp(3.82 · median_step) − 1`.
    pub tolerance: f64,
}

/// Drift estimates by metric key (`scenario/backend/variant/metric[params]`, as the
/// history writes them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    by_key: BTreeMap<String, Estimate>,
}

impl Drift {
    /// Estimates every metric of `history` with at least [`MIN_RUNS`] positive medians,
    /// leaving out the run `skip_run` (the head being judged, when the run has already
    /// appended itself).
    pub fn from_history(history: &History, skip_run: Option<&str>) -> Drift {
        let mut series: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for record in &history.records {
            if Some(record.run_id.as_str()) == skip_run {
                continue;
            }
            for (key, &median) in &record.medians {
                if median.is_finite() && median > 0.0 {
                    series.entry(key).or_default().push(median);
                }
            }
        }
        let by_key = series
            .into_iter()
            .filter(|(_, xs)| xs.len() >= MIN_RUNS)
            .map(|(key, xs)| {
                let mut steps: Vec<f64> = xs.windows(2).map(|w| (w[1] / w[0]).ln().abs()).collect();
                // At least MIN_RUNS - 1 steps, so never empty.
                let median_step = crate::stats::median_in_place(&mut steps);
                let estimate = Estimate {
                    runs: xs.len(),
                    median_step,
                    tolerance: (STEP_TO_TOLERANCE * median_step).exp() - 1.0,
                };
                (key.to_string(), estimate)
            })
            .collect();
        Drift { by_key }
    }

    /// The drift tolerance of `key`, when the history had enough runs of it.
    pub fn tolerance(&self, key: &str) -> Option<f64> {
        self.by_key.get(key).map(|e| e.tolerance)
    }

    /// The full estimate of `key`.
    pub fn estimate(&self, key: &str) -> Option<&Estimate> {
        self.by_key.get(key)
    }

    /// How many metrics have an estimate.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no metric has an estimate.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};
    use reports::results::history::HistoryRecord;

    use super::*;

    fn history(key: &str, medians: &[f64]) -> History {
        History {
            records: medians
                .iter()
                .enumerate()
                .map(|(i, m)| HistoryRecord {
                    v: 1,
                    run_id: format!("r{i}"),
                    git_sha: None,
                    time: "2026-01-01T00:00:00Z".parse().unwrap(),
                    medians: [(key.to_string(), *m)].into(),
                })
                .collect(),
        }
    }

    #[test]
    fn too_few_runs_give_no_estimate() {
        let h = history("k", &[1.0, 1.1, 0.9, 1.0]);
        assert_eq!(Drift::from_history(&h, None).tolerance("k"), None);
    }

    #[test]
    fn a_flat_history_has_no_drift() {
        let h = history("k", &[5.0; 8]);
        assert_eq!(Drift::from_history(&h, None).tolerance("k"), Some(0.0));
    }

    #[test]
    fn the_skipped_run_is_left_out() {
        let h = history("k", &[1.0, 1.0, 1.0, 1.0, 1.0, 9.0]);
        let with = Drift::from_history(&h, None)
            .estimate("k")
            .copied()
            .unwrap();
        let without = Drift::from_history(&h, Some("r5"))
            .estimate("k")
            .copied()
            .unwrap();
        assert_eq!((with.runs, without.runs), (6, 5));
        assert_eq!(without.tolerance, 0.0);
    }

    #[test]
    fn one_real_shift_does_not_widen_the_tolerance() {
        let mut medians = vec![100.0, 101.0, 99.0, 100.5, 99.5, 100.0];
        medians.extend([130.0, 131.0, 129.0, 130.5, 129.5]);
        let t = Drift::from_history(&history("k", &medians), None)
            .tolerance("k")
            .unwrap();
        assert!(t < 0.08, "the step to 130 must not count as drift: {t}");
    }

    /// Runs whose log-medians scatter with spread σ: the estimated tolerance must cover
    /// about 99% of A/A log-ratios between two such runs.
    #[test]
    fn the_tolerance_covers_ninety_nine_percent_of_a_a_pairs() {
        let sigma = 0.05;
        let noise: Normal<f64> = Normal::new(0.0, sigma).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let medians: Vec<f64> = (0..400).map(|_| noise.sample(&mut rng).exp()).collect();
        let t = Drift::from_history(&history("k", &medians), None)
            .tolerance("k")
            .unwrap();
        let bound = t.ln_1p();
        let expected = 2.5758 * sigma * 2f64.sqrt();
        assert!(
            (bound - expected).abs() / expected < 0.15,
            "bound {bound} vs {expected}"
        );
        let pairs = 4000;
        let outside = (0..pairs)
            .filter(|_| (noise.sample(&mut rng) - noise.sample(&mut rng)).abs() > bound)
            .count();
        let rate = outside as f64 / pairs as f64;
        assert!(rate < 0.025, "A/A pairs beyond the tolerance: {rate}");
    }
}
