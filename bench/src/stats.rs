//! Latency percentiles and rates.

use serde::Serialize;

/// Percentiles of a set of latency samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

impl LatencySummary {
    /// Summarizes samples given in microseconds. Returns `None` for no samples.
    pub fn from_samples(mut samples: Vec<u64>) -> Option<LatencySummary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(LatencySummary {
            count: samples.len(),
            p50_us: percentile(&samples, 50.0),
            p99_us: percentile(&samples, 99.0),
            max_us: samples[samples.len() - 1],
        })
    }
}

/// Returns the nearest-rank percentile `p` (0 to 100) of sorted, non-empty samples.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Returns `count / seconds`, or 0 when no time passed.
pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_no_samples_is_none() {
        assert_eq!(LatencySummary::from_samples(Vec::new()), None);
    }

    #[test]
    fn summary_of_one_sample() {
        let summary = LatencySummary::from_samples(vec![7]).unwrap();
        assert_eq!(summary.count, 1);
        assert_eq!(summary.p50_us, 7);
        assert_eq!(summary.p99_us, 7);
        assert_eq!(summary.max_us, 7);
    }

    #[test]
    fn summary_uses_nearest_rank() {
        // 1..=100 in reverse, so the function has to sort.
        let samples: Vec<u64> = (1..=100).rev().collect();
        let summary = LatencySummary::from_samples(samples).unwrap();
        assert_eq!(summary.p50_us, 50);
        assert_eq!(summary.p99_us, 99);
        assert_eq!(summary.max_us, 100);
    }

    #[test]
    fn p99_of_few_samples_is_the_max() {
        let summary = LatencySummary::from_samples(vec![1, 2, 3, 1000]).unwrap();
        assert_eq!(summary.p50_us, 2);
        assert_eq!(summary.p99_us, 1000);
    }

    #[test]
    fn percentile_bounds() {
        let sorted = [10, 20, 30];
        assert_eq!(percentile(&sorted, 0.0), 10);
        assert_eq!(percentile(&sorted, 100.0), 30);
    }

    #[test]
    fn rate_without_time_is_zero() {
        assert_eq!(rate(10, 0.0), 0.0);
        assert_eq!(rate(10, 2.0), 5.0);
    }
}
