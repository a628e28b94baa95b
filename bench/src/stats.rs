//! Small statistics helpers for the summary.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Nearest-rank percentile of an ascending-sorted slice (`p` in 0..=100):
/// the smallest sample such that at least p% of the samples are <= it.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `{a: 1, b: 2}`, like the summary's close-code map.
pub fn format_counts(map: &BTreeMap<String, usize>) -> String {
    let mut out = String::from("{");
    for (i, (key, count)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{key}: {count}");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&samples, 50.0), Some(50.0));
        assert_eq!(nearest_rank(&samples, 90.0), Some(90.0));
        assert_eq!(nearest_rank(&samples, 99.0), Some(99.0));
        assert_eq!(nearest_rank(&samples, 100.0), Some(100.0));
        assert_eq!(nearest_rank(&samples, 0.0), Some(1.0));
        assert_eq!(nearest_rank(&[7.0], 99.0), Some(7.0));
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }

    #[test]
    fn counts_format() {
        let mut m = BTreeMap::new();
        assert_eq!(format_counts(&m), "{}");
        m.insert("4004".to_string(), 2);
        m.insert("1006".to_string(), 1);
        assert_eq!(format_counts(&m), "{1006: 1, 4004: 2}");
    }
}
