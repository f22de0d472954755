//! Latency recording in microseconds. Each client records into its own histogram without
//! locks, and the run merges them at the end; percentiles come from HdrHistogram so that
//! p99.9 of millions of requests costs a few kilobytes, not a sorted array.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// Largest latency told apart from larger ones; anything slower is recorded as this.
pub const LATENCY_US_MAX: u64 = 60 * 60 * 1_000_000;
/// Significant decimal digits kept per recorded value: 3 keeps every percentile within
/// 0.1% of the true latency.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of one kind of operation, at microsecond resolution.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl LatencyHistogram {
    /// An empty histogram covering 1 µs to [`LATENCY_US_MAX`].
    pub fn new() -> Result<Self, BenchError> {
        let histogram = Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
            .map_err(|error| BenchError::Histogram(format!("{error:?}")))?;
        Ok(LatencyHistogram { histogram })
    }

    /// Records one latency; a latency above [`LATENCY_US_MAX`] is recorded as the maximum.
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one latency given in microseconds.
    pub fn record_micros(&mut self, latency_us: u64) {
        self.histogram.saturating_record(latency_us);
    }

    /// Adds every latency of `other` to this one.
    pub fn merge(&mut self, other: &LatencyHistogram) -> Result<(), BenchError> {
        self.histogram
            .add(&other.histogram)
            .map_err(|error| BenchError::Histogram(format!("{error:?}")))
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The percentiles a report shows.
    pub fn summary(&self) -> LatencySummary {
        if self.histogram.is_empty() {
            return LatencySummary::default();
        }
        let at = |quantile: f64| self.histogram.value_at_quantile(quantile);
        LatencySummary {
            min_us: self.histogram.min(),
            mean_us: self.histogram.mean(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.histogram.max(),
        }
    }
}

/// Latency percentiles of one operation kind, in microseconds; all zero when nothing was
/// recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Fastest latency.
    pub min_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest latency.
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `actual` is within HdrHistogram's 0.1% of `expected`.
    fn close(actual: u64, expected: u64) -> bool {
        actual.abs_diff(expected) <= expected / 1000 + 1
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut histogram = LatencyHistogram::new().unwrap();
        for latency_us in 1..=10_000 {
            histogram.record_micros(latency_us);
        }
        let summary = histogram.summary();
        assert_eq!(histogram.count(), 10_000);
        assert_eq!(summary.min_us, 1);
        assert!(close(summary.p50_us, 5_000), "{summary:?}");
        assert!(close(summary.p90_us, 9_000), "{summary:?}");
        assert!(close(summary.p99_us, 9_900), "{summary:?}");
        assert!(close(summary.p999_us, 9_990), "{summary:?}");
        assert!(close(summary.max_us, 10_000), "{summary:?}");
        assert!((summary.mean_us - 5_000.5).abs() < 10.0, "{summary:?}");
    }

    #[test]
    fn one_slow_request_shows_in_the_tail_only() {
        let mut histogram = LatencyHistogram::new().unwrap();
        for _ in 0..999 {
            histogram.record(Duration::from_micros(100));
        }
        histogram.record(Duration::from_secs(2));
        let summary = histogram.summary();
        assert_eq!(summary.p50_us, 100);
        assert_eq!(summary.p99_us, 100);
        assert!(close(summary.max_us, 2_000_000), "{summary:?}");
    }

    #[test]
    fn merging_adds_counts_and_keeps_extremes() {
        let mut fast = LatencyHistogram::new().unwrap();
        let mut slow = LatencyHistogram::new().unwrap();
        fast.record_micros(10);
        slow.record_micros(10_000);
        fast.merge(&slow).unwrap();
        assert_eq!(fast.count(), 2);
        assert_eq!(fast.summary().min_us, 10);
        assert!(close(fast.summary().max_us, 10_000));
    }

    #[test]
    fn latencies_beyond_the_bound_saturate_instead_of_failing() {
        let mut histogram = LatencyHistogram::new().unwrap();
        histogram.record(Duration::from_secs(100_000));
        assert_eq!(histogram.count(), 1);
        assert!(close(histogram.summary().max_us, LATENCY_US_MAX));
    }

    #[test]
    fn empty_histogram_summarises_as_zeros() {
        let histogram = LatencyHistogram::new().unwrap();
        assert_eq!(histogram.summary(), LatencySummary::default());
    }
}
