//! Snowflake ids on Discord's epoch: milliseconds since 2015-01-01 in the top 42 bits, then a
//! per-process increment. Monotonic within a process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// 2015-01-01T00:00:00Z in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

#[derive(Debug, Default)]
pub struct Snowflakes {
    last: AtomicU64,
}

impl Snowflakes {
    pub fn next(&self) -> i64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let from_clock = now_ms.saturating_sub(DISCORD_EPOCH_MS) << 22;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = from_clock.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                // The top bit stays clear for ~69 years, so the id fits Postgres' BIGINT.
                Ok(_) => return i64::try_from(next).unwrap_or(i64::MAX),
                Err(actual) => last = actual,
            }
        }
    }
}

/// When a snowflake was made.
pub fn timestamp(id: i64) -> DateTime<Utc> {
    let ms = (u64::try_from(id).unwrap_or(0) >> 22) + DISCORD_EPOCH_MS;
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

/// The lowest snowflake made at `time` (ids are ordered by time, so "newer than `time`" is
/// "id at or above this").
pub fn snowflake_at(time: DateTime<Utc>) -> i64 {
    let epoch = i64::try_from(DISCORD_EPOCH_MS).unwrap_or(i64::MAX);
    (time.timestamp_millis() - epoch).max(0) << 22
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_their_time() {
        let snowflakes = Snowflakes::default();
        let (a, b) = (snowflakes.next(), snowflakes.next());
        assert!(b > a);
        let age = Utc::now() - timestamp(a);
        assert!(age.num_seconds().abs() < 5, "{age}");
        // Discord's documented example: 175928847299117063 was made 2016-04-30T11:18:25.796Z.
        assert_eq!(
            timestamp(175928847299117063).timestamp_millis(),
            1462015105796
        );
    }
}
