//! Snowflake ids in Discord's layout: milliseconds since 2015-01-01 in the top 42 bits, then
//! 5 bits of worker (`instance.worker_id`), 5 of process (this process's id) and a 12-bit
//! increment. The increment starts each millisecond at a random value, so ids handed out are
//! not a walkable counter next to a guessable time; it carries into the next millisecond when
//! a burst exhausts it. Monotonic within a process. A cluster node uses the worker and process
//! bits together for the number it leased, so no two live nodes share them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// 2015-01-01T00:00:00Z in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

const INCREMENT_BITS: u32 = 12;
const INCREMENT_MASK: u64 = (1 << INCREMENT_BITS) - 1;
/// Where a millisecond's increment may start: the lower half, leaving room for a burst.
const RANDOM_START: u64 = 1 << (INCREMENT_BITS - 1);

/// How many nodes the worker and process bits tell apart.
pub const NODES: u64 = 1 << 10;

#[derive(Debug)]
pub struct Snowflakes {
    /// Worker and process, the 10 bits above the increment.
    node: u64,
    /// The last id's milliseconds and increment: `ms << 12 | increment`.
    last: AtomicU64,
}

impl Snowflakes {
    /// `worker_id` is 0-31 (checked with the configuration); the process bits are this
    /// process's id modulo 32.
    pub fn new(worker_id: u16) -> Self {
        let worker = worker_id & 31;
        let process = u16::try_from(std::process::id() & 31).unwrap_or(0);
        Self::for_node((worker << 5) | process)
    }

    /// Worker and process bits together (0 to [`NODES`] - 1): a cluster node's leased number,
    /// unique among the live nodes (see `cluster::nodes`).
    pub fn for_node(node: u16) -> Self {
        Self {
            node: u64::from(node) % NODES,
            last: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> i64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .saturating_sub(DISCORD_EPOCH_MS);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = if now_ms > last >> INCREMENT_BITS {
                (now_ms << INCREMENT_BITS) | (rand::random::<u64>() % RANDOM_START)
            } else {
                last + 1
            };
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let ms = next >> INCREMENT_BITS;
                    let id = (ms << 22) | (self.node << INCREMENT_BITS) | (next & INCREMENT_MASK);
                    // The top bit stays clear for ~69 years, so the id fits Postgres' BIGINT.
                    return i64::try_from(id).unwrap_or(i64::MAX);
                }
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
        let snowflakes = Snowflakes::new(3);
        let ids: Vec<i64> = (0..5000).map(|_| snowflakes.next()).collect();
        assert!(ids.windows(2).all(|pair| pair[1] > pair[0]), "increasing");
        let a = ids[0];
        assert_eq!((a >> 17) & 31, 3, "the worker bits");
        assert_eq!(
            (a >> 12) & 31,
            i64::from(std::process::id() & 31),
            "the process bits"
        );
        let age = Utc::now() - timestamp(a);
        assert!(age.num_seconds().abs() < 5, "{age}");
        let leased = Snowflakes::for_node(1000).next();
        assert_eq!(
            (leased >> 12) & 1023,
            1000,
            "a cluster node's leased number"
        );
        // Discord's documented example: 175928847299117063 was made 2016-04-30T11:18:25.796Z.
        assert_eq!(
            timestamp(175928847299117063).timestamp_millis(),
            1462015105796
        );
    }
}
