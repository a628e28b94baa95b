//! Leases: one owner in the cluster for a stateful object (a guild's serialised state
//! `own:g:{guild}`, a voice room `own:v:{room}` …).
//!
//! A lease is a Redis key holding `node_id:epoch` with an expiry (`SET NX PX`). The epoch comes
//! from a counter of the object's own (`epoch:{key}`), raised in the same script that takes the
//! lease, so every new owner has a higher epoch than every earlier one: it is the fencing
//! token others compare. The counter never goes below Redis's clock in milliseconds, so epochs
//! keep rising even across a Redis restart that lost the counter.
//!
//! The holder renews the lease before it lapses. It acts as owner only while
//! [`Lease::is_valid`]: until the time it *sent* its last successful take or renewal, plus the
//! lease's lifetime, minus a margin. Redis starts the expiry when it receives the command,
//! which is later, so a node that can no longer renew (Redis hung, the network cut) stops
//! acting before Redis can let another node take the object.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisResult, Script};
use spacebar_actors::sync;

use super::keys;

/// Takes the lease if free: raises the epoch (never below Redis's clock in ms) and sets
/// `node_id:epoch` with the expiry; the epoch, or nil when someone holds it.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if epoch < floor then
  epoch = floor
  redis.call('SET', KEYS[2], epoch)
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch
";

/// Extends the lease if this holder (and epoch) still has it: 1; else 0. A lapsed lease is not
/// taken back: another node may have held it in between, and a new owner needs a new epoch.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the key if it still holds the value given.
const DELETE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A held lease on one object: the key, and the value `node_id:epoch` it holds there.
#[derive(Debug, Clone)]
pub struct Lease {
    key: String,
    value: String,
    epoch: u64,
    valid_until: Instant,
}

impl Lease {
    /// A lease another node took in this node's name (a voice room placed here, see
    /// `super::placement`): valid once renewed.
    pub fn adopt(key: String, node_id: &str, epoch: u64) -> Self {
        Self {
            key,
            value: format!("{node_id}:{epoch}"),
            epoch,
            valid_until: Instant::now(),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// What the lease key holds while this is the lease: `node_id:epoch`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The fencing token: higher for every new owner of this object.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Still safe to act as owner: now < (time the last take or renewal was sent) + ttl −
    /// margin, so a node that cannot renew stops acting before Redis can let another take it.
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }

    /// How long the holder may still act as owner (zero once it may not).
    pub fn remaining(&self) -> Duration {
        self.valid_until.saturating_duration_since(Instant::now())
    }

    fn extend(&mut self, sent: Instant, ttl: Duration) {
        self.valid_until = valid_until(sent, ttl);
    }
}

/// Until when a holder may act on a lease of `ttl` taken or renewed by a command sent at
/// `sent`: a tenth less, as the clocks of Redis and the node may run at slightly different
/// rates and the node must stop before Redis lets go.
pub(super) fn valid_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl.saturating_sub(ttl / 10)
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Takes the lease if free (`SET NX PX`); the epoch comes from `INCR` on `epoch:{key}` in the
/// same Lua script, so every new owner has a higher epoch. `Ok(None)`: someone else holds it.
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
    Ok(epoch.map(|epoch| {
        let mut lease = Lease {
            key: key.to_owned(),
            value: format!("{node_id}:{epoch}"),
            epoch,
            valid_until: sent,
        };
        lease.extend(sent, ttl);
        lease
    }))
}

/// Extends the lease if still ours (Lua: `GET` == value → `PEXPIRE`); `false`: lost, stop
/// acting as owner now. On an error (Redis unreachable, a timeout) the lease stays valid only
/// as long as the last renewal allows.
pub async fn renew(
    redis: &mut ConnectionManager,
    lease: &mut Lease,
    ttl: Duration,
) -> RedisResult<bool> {
    let sent = Instant::now();
    let renewed: i64 = Script::new(RENEW)
        .key(&lease.key)
        .arg(&lease.value)
        .arg(millis(ttl))
        .invoke_async(redis)
        .await?;
    if renewed == 1 {
        lease.extend(sent, ttl);
        Ok(true)
    } else {
        lease.valid_until = sent;
        Ok(false)
    }
}

/// Gives the lease up if still ours (Lua compare-and-delete).
pub async fn release(redis: &mut ConnectionManager, lease: &Lease) -> RedisResult<()> {
    delete_if(redis, &lease.key, &lease.value).await
}

/// Deletes `key` if it still holds `value` (a lease given back by its holder, never another's).
pub(super) async fn delete_if(
    redis: &mut ConnectionManager,
    key: &str,
    value: &str,
) -> RedisResult<()> {
    Script::new(DELETE_IF)
        .key(key)
        .arg(value)
        .invoke_async::<i64>(redis)
        .await?;
    Ok(())
}

/// Who holds `key` now: (node id, epoch), or `None`.
pub async fn holder(
    redis: &mut ConnectionManager,
    key: &str,
) -> RedisResult<Option<(String, u64)>> {
    let value: Option<String> = redis.get(key).await?;
    Ok(value.as_deref().and_then(parse))
}

/// The leases one node holds on objects of one kind (guilds, calls …), by the object's id.
pub type Held<K> = Mutex<HashMap<K, Lease>>;

/// Renews `lease`, held in `held` for `id`, waiting a third of `ttl` at most: whether this node
/// still holds it. A lost one leaves `held`; one Redis did not answer for stays, valid as long
/// as the last renewal allows (tried again next time).
pub async fn renew_held<K: Eq + Hash>(
    held: &Held<K>,
    redis: &ConnectionManager,
    id: K,
    mut lease: Lease,
    ttl: Duration,
) -> bool {
    let mut redis = redis.clone();
    match tokio::time::timeout(ttl / 3, renew(&mut redis, &mut lease, ttl)).await {
        Ok(Ok(true)) => {
            let mut leases = sync::lock(held);
            if let Some(current) = leases.get_mut(&id) {
                if current.epoch() == lease.epoch() {
                    *current = lease;
                }
            }
            true
        }
        Ok(Ok(false)) => {
            forget_held(held, id, &lease);
            false
        }
        Ok(Err(_)) | Err(_) => true,
    }
}

/// Drops `lease` from `held` (if it is still the one held for `id`).
pub fn forget_held<K: Eq + Hash>(held: &Held<K>, id: K, lease: &Lease) {
    let mut leases = sync::lock(held);
    if leases
        .get(&id)
        .is_some_and(|current| current.epoch() == lease.epoch())
    {
        leases.remove(&id);
    }
}

/// Gives up every lease in `held` (a graceful stop), waiting `within` at most: whether all
/// were given up in time (the others lapse).
pub async fn release_held<K>(held: &Held<K>, redis: &ConnectionManager, within: Duration) -> bool {
    let leases: Vec<Lease> = std::mem::take(&mut *sync::lock(held))
        .into_values()
        .collect();
    let releases = leases.iter().map(|lease| {
        let mut redis = redis.clone();
        async move { release(&mut redis, lease).await }
    });
    tokio::time::timeout(within, join_all(releases))
        .await
        .is_ok()
}

/// `node_id:epoch` (a node id may hold colons itself: `host:port`).
fn parse(value: &str) -> Option<(String, u64)> {
    let (node_id, epoch) = value.rsplit_once(':')?;
    Some((node_id.to_owned(), epoch.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_with_colons_in_its_name_parses() {
        assert_eq!(parse("host:8080:17"), Some(("host:8080".to_owned(), 17)));
        assert_eq!(parse("node-a:3"), Some(("node-a".to_owned(), 3)));
        assert_eq!(parse("no-epoch"), None);
        assert_eq!(parse("node:x"), None);
    }
}
