//! CDN misses per address. Files are found by ids in their paths; an address that keeps asking
//! for ones that are not there is walking ids, so after `cdn.not_found_limit` misses in a
//! window it gets 429 for the rest of it, before anything is looked up (a hit would tell it
//! as much as a miss). An IPv6 /64 counts as one address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spacebar_actors::sync::lock;

use crate::http::client_address::limit_key;
use crate::http::rate_limits::buckets::{Buckets, Rule};

/// Windows that ended are swept every this many misses.
const SWEEP_EVERY: u64 = 1024;

pub struct Misses {
    /// `None`: not limited.
    rule: Option<Rule>,
    buckets: Mutex<Buckets<IpAddr>>,
    counted: AtomicU64,
}

impl Misses {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            rule: (limit > 0).then_some(Rule { limit, window }),
            buckets: Mutex::default(),
            counted: AtomicU64::default(),
        }
    }

    /// `Err` with how long to wait when `address` has missed too often lately.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        let Some(rule) = self.rule else {
            return Ok(());
        };
        match lock(&self.buckets).wait(&limit_key(address), rule, Instant::now()) {
            None => Ok(()),
            Some(wait) => Err(wait),
        }
    }

    /// Counts a miss of `address`.
    pub fn record(&self, address: IpAddr) {
        let Some(rule) = self.rule else {
            return;
        };
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        if self
            .counted
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            buckets.sweep(now, rule.window);
        }
        buckets.take(limit_key(address), rule, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_misses() {
        let misses = Misses::new(3, Duration::from_secs(60));
        let (walker, other) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..3 {
            assert!(misses.check(walker).is_ok());
            misses.record(walker);
        }
        assert!(misses.check(walker).is_err());
        assert!(misses.check(other).is_ok());
        let off = Misses::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            off.record(walker);
        }
        assert!(off.check(walker).is_ok());
    }
}
