//! Latency recording in HDR histograms, summarised at p50, p90, p99 and p99.9.
//!
//! An HDR histogram (Gil Tene's `HdrHistogram`, here the `hdrhistogram` crate) keeps every
//! value to 3 significant digits in fixed memory, so a million requests cost kilobytes and
//! high percentiles stay exact to 0.1%. Histograms from several tasks or steps merge
//! losslessly, unlike averaged percentiles.
//!
//! Values are recorded in **microseconds**; the summary is in microseconds, with
//! millisecond helpers for the `latency_*_ms` scenario metrics.
//!
//! ```
//! use std::time::Duration;
//! use harness::latency::LatencyHistogram;
//!
//! let mut h = LatencyHistogram::new();
//! for ms in 1..=100 {
//!     h.record(Duration::from_millis(ms));
//! }
//! let s = h.summary();
//! assert_eq!(s.count, 100);
//! assert!((s.p50_us as f64 - 50_000.0).abs() / 50_000.0 < 0.001);
//! ```

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant decimal digits kept: 3 gives a worst-case error of 0.1%.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds that grows to whatever range it is given.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
}

/// Plain-data percentiles of a [`LatencyHistogram`], in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of recorded values.
    pub count: u64,
    /// Smallest value.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest value.
    pub max_us: u64,
}

impl LatencySummary {
    /// The values under the scenario metric names `latency_p50_ms`, `latency_p90_ms`,
    /// `latency_p99_ms` and `latency_p999_ms`.
    pub fn metrics_ms(&self) -> [(&'static str, f64); 4] {
        let ms = |us: u64| us as f64 / 1000.0;
        [
            ("latency_p50_ms", ms(self.p50_us)),
            ("latency_p90_ms", ms(self.p90_us)),
            ("latency_p99_ms", ms(self.p99_us)),
            ("latency_p999_ms", ms(self.p999_us)),
        ]
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty, auto-resizing histogram.
    pub fn new() -> Self {
        // `new` only fails for more than 5 significant digits.
        let hist = Histogram::new(SIGNIFICANT_DIGITS).unwrap_or_else(|_| unreachable!());
        Self { hist }
    }

    /// Records one latency, rounded down to whole microseconds.
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one latency given in microseconds.
    pub fn record_micros(&mut self, micros: u64) {
        // `record` grows the auto-resizing histogram; `saturating_record` would clamp to
        // the current range instead. It fails only beyond the largest trackable value,
        // which is then the best answer.
        if self.hist.record(micros).is_err() {
            self.hist.saturating_record(micros);
        }
    }

    /// Adds every value of `other` to this histogram.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // With auto-resize on, `add` only fails if a count would overflow u64.
        let _ = self.hist.add(&other.hist);
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    /// The percentiles as plain data; all zero when empty.
    pub fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.hist.len(),
            min_us: self.hist.min(),
            mean_us: self.hist.mean(),
            p50_us: self.hist.value_at_quantile(0.50),
            p90_us: self.hist.value_at_quantile(0.90),
            p99_us: self.hist.value_at_quantile(0.99),
            p999_us: self.hist.value_at_quantile(0.999),
            max_us: self.hist.max(),
        }
    }

    /// The underlying histogram, for reports that plot the full percentile curve.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: u64, expected: u64) -> bool {
        (actual as f64 - expected as f64).abs() <= expected as f64 * 0.001 + 1.0
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        let mut h = LatencyHistogram::new();
        for us in 1..=10_000 {
            h.record_micros(us);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min_us, 1);
        assert!(close(s.max_us, 10_000), "{s:?}");
        assert!(close(s.p50_us, 5_000), "{s:?}");
        assert!(close(s.p90_us, 9_000), "{s:?}");
        assert!(close(s.p99_us, 9_900), "{s:?}");
        assert!(close(s.p999_us, 9_990), "{s:?}");
        assert!((s.mean_us - 5_000.5).abs() < 5.0, "{s:?}");
        let ms = s.metrics_ms();
        assert_eq!(ms[0].0, "latency_p50_ms");
        assert!((ms[0].1 - s.p50_us as f64 / 1000.0).abs() < 1e-9);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        let mut all = LatencyHistogram::new();
        for us in 1..=1000u64 {
            let value = us * 37 % 5000 + 1;
            if us % 3 == 0 {
                a.record_micros(value)
            } else {
                b.record_micros(value)
            }
            all.record_micros(value);
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
    }

    #[test]
    fn wide_range_and_durations() {
        let mut h = LatencyHistogram::new();
        assert!(h.is_empty());
        assert_eq!(h.summary(), LatencySummary::default());
        h.record(Duration::from_nanos(500)); // rounds down to 0 µs
        h.record(Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
        assert_eq!(h.summary().min_us, 0);
        assert!(close(h.summary().max_us, 3_600_000_000));
    }
}
