//! Ownership leases: one node at a time holds `key` (`own:g:{guild}`, `own:v:{room}` …), with
//! an epoch that grows with every new holder (a fencing token).
//!
//! The value is `node_id:epoch`, set with an expiry; the holder renews it before it lapses.
//! A holder counts itself valid only until the time its last acquire or renew was *sent* plus
//! the lease minus a margin, so a node that cannot reach Redis stops acting before Redis can
//! let another node take over.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult, Script};

use super::keys;

/// Takes the lease if nobody holds it; the new epoch comes from the key's counter.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch
";

/// Extends the lease if it is still this value.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Gives the lease up if it is still this value.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A held lease on one object.
#[derive(Debug)]
pub struct Lease {
    key: String,
    node_id: String,
    epoch: u64,
    valid_until: Instant,
}

impl Lease {
    /// A lease another node took in this node's name (a voice room placed here): valid once
    /// renewed.
    pub fn adopt(key: String, node_id: String, epoch: u64) -> Self {
        Self {
            key,
            node_id,
            epoch,
            valid_until: Instant::now(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Still safe to act as holder.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }

    fn value(&self) -> String {
        format!("{}:{}", self.node_id, self.epoch)
    }
}

/// Until when a lease sent at `sent` for `ttl` may be acted on: a fifth of it is kept as a
/// margin for clocks and delays.
fn valid_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl - ttl / 5
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// Takes the lease if free; `None`: someone else holds it.
pub async fn acquire(
    redis: &mut ConnectionManager,
    key: &str,
    node_id: &str,
    ttl: Duration,
) -> RedisResult<Option<Lease>> {
    let sent = Instant::now();
    let epoch: Option<u64> = Script::new(ACQUIRE)
        .key(key)
        .key(keys::epoch(key))
        .arg(node_id)
        .arg(millis(ttl))
        .invoke_async(redis)
        .await?;
    Ok(epoch.map(|epoch| Lease {
        key: key.to_owned(),
        node_id: node_id.to_owned(),
        epoch,
        valid_until: valid_until(sent, ttl),
    }))
}

/// Extends the lease if still held; false: lost (stop acting now).
pub async fn renew(
    redis: &mut ConnectionManager,
    lease: &mut Lease,
    ttl: Duration,
) -> RedisResult<bool> {
    let sent = Instant::now();
    let renewed: i64 = Script::new(RENEW)
        .key(&lease.key)
        .arg(lease.value())
        .arg(millis(ttl))
        .invoke_async(redis)
        .await?;
    if renewed == 1 {
        lease.valid_until = valid_until(sent, ttl);
    } else {
        lease.valid_until = sent;
    }
    Ok(renewed == 1)
}

/// Gives the lease up if still held.
pub async fn release(redis: &mut ConnectionManager, lease: &Lease) -> RedisResult<()> {
    Script::new(RELEASE)
        .key(&lease.key)
        .arg(lease.value())
        .invoke_async::<i64>(redis)
        .await?;
    Ok(())
}

/// Who holds `key` now: (node id, epoch).
pub async fn holder(
    redis: &mut ConnectionManager,
    key: &str,
) -> RedisResult<Option<(String, u64)>> {
    let value: Option<String> = redis.get(key).await?;
    Ok(value.and_then(|value| {
        let (node, epoch) = value.rsplit_once(':')?;
        Some((node.to_owned(), epoch.parse().ok()?))
    }))
}
