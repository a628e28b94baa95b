//! Fixed-window buckets, as Discord's headers describe them: a bucket allows `limit` requests
//! in a window that starts with the first one; the headers say how many are left and when the
//! window ends, and a client that waits that long finds the bucket full again. So a client that
//! follows the headers (discord.py and discord.js do) never meets a 429 it did not expect.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A bucket's rule: `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub limit: u32,
    pub window: Duration,
}

/// What a bucket says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    /// Requests left in this window after this one.
    pub remaining: u32,
    /// Until the window ends.
    pub reset_after: Duration,
}

/// A request's outcome over its buckets: the route bucket's verdict, or the refusing bucket's
/// and whether that was the caller's global one.
pub type Taken = Result<Verdict, (Verdict, bool)>;

#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
}

/// Many buckets by key; windows that ended are forgotten by [`Buckets::sweep`].
#[derive(Debug)]
pub struct Buckets<K> {
    windows: HashMap<K, Window>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Self {
            windows: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Buckets<K> {
    /// Counts a request against `key`'s bucket, if the bucket has room.
    pub fn take(&mut self, key: K, rule: Rule, now: Instant) -> Verdict {
        let window = self.windows.entry(key).or_insert(Window {
            started: now,
            used: 0,
        });
        if now.duration_since(window.started) >= rule.window {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let allowed = window.used < rule.limit;
        if allowed {
            window.used += 1;
        }
        Verdict {
            allowed,
            limit: rule.limit,
            remaining: rule.limit.saturating_sub(window.used),
            reset_after: (window.started + rule.window).saturating_duration_since(now),
        }
    }

    /// Counts a request against `global` (if any), then — if it had room — against `route`.
    pub fn take_in_turn(
        &mut self,
        global: Option<(K, Rule)>,
        route: (K, Rule),
        now: Instant,
    ) -> Taken {
        if let Some((key, rule)) = global {
            let overall = self.take(key, rule, now);
            if !overall.allowed {
                return Err((overall, true));
            }
        }
        let (key, rule) = route;
        let verdict = self.take(key, rule, now);
        if verdict.allowed {
            Ok(verdict)
        } else {
            Err((verdict, false))
        }
    }

    /// How long until `key`'s bucket has room again; `None` when it has room now. Counts
    /// nothing.
    pub fn wait(&self, key: &K, rule: Rule, now: Instant) -> Option<Duration> {
        let window = self.windows.get(key)?;
        let ends = window.started + rule.window;
        (window.used >= rule.limit && now < ends).then(|| ends - now)
    }

    /// Forgets windows older than `longest` (no rule's window is longer).
    pub fn sweep(&mut self, now: Instant, longest: Duration) {
        self.windows
            .retain(|_, window| now.duration_since(window.started) < longest);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        limit: 3,
        window: Duration::from_secs(2),
    };

    #[test]
    fn a_bucket_counts_down_refuses_then_refills_when_the_headers_said() {
        let mut buckets = Buckets::default();
        let start = Instant::now();
        let remaining: Vec<u32> = (0..3)
            .map(|i| {
                let verdict = buckets.take("k", RULE, start + Duration::from_millis(i * 100));
                assert!(verdict.allowed);
                verdict.remaining
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = buckets.take("k", RULE, start + Duration::from_millis(500));
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_millis(1500));
        // Just before the end: still refused; at the end: a new window.
        let early = start + Duration::from_millis(1999);
        assert!(!buckets.take("k", RULE, early).allowed);
        assert_eq!(
            buckets.wait(&"k", RULE, early),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            buckets.wait(&"k", RULE, start + Duration::from_secs(2)),
            None
        );
        let on_time = buckets.take("k", RULE, start + Duration::from_secs(2));
        assert!(on_time.allowed);
        assert_eq!(on_time.remaining, 2);
        // Other keys have their own buckets.
        assert!(buckets.take("other", RULE, early).allowed);
    }

    #[test]
    fn the_global_bucket_is_taken_first_and_a_refusal_names_its_bucket() {
        let mut buckets = Buckets::default();
        let now = Instant::now();
        let global = Rule { limit: 4, ..RULE };
        // The route's third request is its last; the fourth is refused by it, counted globally.
        for _ in 0..3 {
            assert!(buckets
                .take_in_turn(Some(("g", global)), ("r", RULE), now)
                .is_ok());
        }
        let refused = buckets.take_in_turn(Some(("g", global)), ("r", RULE), now);
        assert!(matches!(refused, Err((verdict, false)) if verdict.limit == 3));
        // The global bucket is spent: another route is refused by it, and not counted there.
        let refused = buckets.take_in_turn(Some(("g", global)), ("other", RULE), now);
        assert!(matches!(refused, Err((verdict, true)) if verdict.limit == 4));
        let alone = buckets.take_in_turn(None, ("other", RULE), now);
        assert!(matches!(alone, Ok(verdict) if verdict.remaining == 2));
    }

    #[test]
    fn old_windows_are_forgotten() {
        let mut buckets = Buckets::default();
        let start = Instant::now();
        buckets.take(1, RULE, start);
        buckets.take(2, RULE, start + Duration::from_secs(3));
        buckets.sweep(start + Duration::from_secs(4), RULE.window);
        assert_eq!(buckets.len(), 1);
    }
}
