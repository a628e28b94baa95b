//! Buckets shared by every node of a cluster: counters in Redis (`rl:…`), all of a request's
//! buckets taken by one script in one round trip, with the fixed windows of [`Buckets`]: the
//! window starts with its first request and is the key's expiry.
//!
//! Redis that does not answer within [`TIMEOUT`] must not stall every request nor lift the
//! limits: the node then decides with its own [`Buckets`] (per-node limits, said once in the
//! log) and lets one request a [`RETRY`] ask Redis again, so shared limits resume by themselves.
//!
//! [`Buckets`]: super::buckets::Buckets

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use spacebar_actors::sync::lock;

use super::buckets::{Rule, Taken, Verdict};
use crate::cluster::keys;

/// KEYS: the buckets in the order they are taken; ARGV: each one's limit and window (ms).
/// Takes each in turn, as `Buckets::take_in_turn` does, until one refuses; returns that one (or
/// the last): its index (from 1), 1 if it had room, what is left, milliseconds until its reset.
const TAKE: &str = r"
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = ARGV[2 * i]
  local reset = redis.call('PTTL', key)
  local used = 0
  if reset > 0 then
    used = tonumber(redis.call('GET', key))
  else
    reset = tonumber(window)
  end
  local allowed = used < limit
  if allowed then
    if used == 0 then
      redis.call('SET', key, 1, 'PX', window)
    else
      redis.call('INCR', key)
    end
    used = used + 1
  end
  if not allowed or i == #KEYS then
    return {i, allowed and 1 or 0, math.max(limit - used, 0), reset}
  end
end
";

/// How long a request waits for Redis before its node decides alone.
const TIMEOUT: Duration = Duration::from_millis(100);
/// While Redis does not answer, how often one request asks it again.
const RETRY: Duration = Duration::from_secs(1);

pub(super) struct Shared {
    script: redis::Script,
    /// Redis did not answer the last time it was asked.
    down: AtomicBool,
    /// While down: when to ask again.
    retry_at: Mutex<Instant>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            script: redis::Script::new(TAKE),
            down: AtomicBool::new(false),
            retry_at: Mutex::new(Instant::now()),
        }
    }
}

impl Shared {
    /// Counts a request against `global` (if any), then the route's bucket, as
    /// [`Buckets::take_in_turn`](super::buckets::Buckets::take_in_turn) does but over every
    /// node's requests; `None` when Redis does not answer (or did not lately): the caller
    /// decides locally.
    pub(super) async fn take(
        &self,
        redis: &ConnectionManager,
        global: Option<(&str, Rule)>,
        route: (&str, Rule),
    ) -> Option<Taken> {
        if self.down.load(Ordering::Relaxed) && !self.may_retry() {
            return None;
        }
        let buckets: Vec<(&str, Rule)> = global.into_iter().chain([route]).collect();
        let mut invocation = self.script.prepare_invoke();
        for (name, rule) in &buckets {
            let window_ms = u64::try_from(rule.window.as_millis()).unwrap_or(u64::MAX);
            invocation
                .key(keys::rate_limit(name))
                .arg(rule.limit)
                .arg(window_ms);
        }
        let mut redis = redis.clone();
        let answer: Result<(usize, u8, u32, u64), String> =
            match tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut redis)).await {
                Ok(answer) => answer.map_err(|error| error.to_string()),
                Err(_) => Err(format!("no answer within {} ms", TIMEOUT.as_millis())),
            };
        let decided = answer.and_then(|(index, allowed, remaining, reset_ms)| {
            let (_, rule) = index
                .checked_sub(1)
                .and_then(|at| buckets.get(at))
                .ok_or_else(|| format!("the script named bucket {index}"))?;
            let verdict = Verdict {
                allowed: allowed == 1,
                limit: rule.limit,
                remaining,
                reset_after: Duration::from_millis(reset_ms),
            };
            Ok(if verdict.allowed {
                Ok(verdict)
            } else {
                Err((verdict, global.is_some() && index == 1))
            })
        });
        match decided {
            Ok(taken) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: rate limits are shared by every node");
                }
                Some(taken)
            }
            Err(error) => {
                *lock(&self.retry_at) = Instant::now() + RETRY;
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        "Redis did not answer a rate-limit check: each node limits alone until it does"
                    );
                }
                None
            }
        }
    }

    /// Whether this request is the one to ask Redis again (the others meanwhile decide
    /// locally).
    fn may_retry(&self) -> bool {
        let mut retry_at = lock(&self.retry_at);
        let now = Instant::now();
        if now < *retry_at {
            return false;
        }
        *retry_at = now + RETRY;
        true
    }
}
