//! Presences over every node: each node keeps its part of a user's presence (what its
//! sessions of theirs show) in the user's `pres:{user}` hash, and what others see is all the
//! parts together.
//!
//! A part is written and the parts read back in one script, which also numbers the hash's
//! changes (`v`, from Redis's clock in milliseconds, always above the one before): the node
//! whose write changed what others see publishes it with its number, and a node hearing two
//! changes out of order shows the later one. A node's writes go out in the order its sessions
//! changed (one queue, pipelined), so its part is always its latest. A part carries when it
//! lapses; the node renews
//! its parts while its sessions live, so those of a node that died lapse on their own.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use spacebar_actors::interest::Topic;
use spacebar_actors::presence::{Aggregate, Board, Shown};
use spacebar_actors::sync;
use tokio::sync::{mpsc, oneshot};

use spacebar_actors::registry::PresenceHeard;

use super::envelope::Body;
use super::keys;
use super::publisher::Publisher;
use crate::db::members::Member;
use crate::db::relationships::{kind as relationship_kind, Relationship};
use crate::db::DbError;
use crate::state::AppState;

/// How long a node's part outlives its last renewal.
const LAPSE_MS: u64 = 90_000;
/// How often a node renews its parts (well within [`LAPSE_MS`], so a slow round survives).
const RENEW_EVERY: Duration = Duration::from_secs(30);
/// Users per write, renewal or lookup round trip.
const BATCH: usize = 256;
/// Presence writes waiting for Redis; past it a change is refused (as if Redis had refused it).
const WRITES: usize = 65_536;
/// The field that numbers the hash's changes.
const VERSION: &str = "v";

/// Writes this node's part (ARGV[2], none if empty) as `{lapses_at} {version} {json}`, and
/// answers the new version, Redis's time, and every field as it was before.
const RECORD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = redis.call('HGETALL', KEYS[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local version = string.format('%.0f', math.max(last + 1, now))
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local lapses = string.format('%.0f', now + tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], ARGV[1], lapses .. ' ' .. version .. ' ' .. ARGV[2])
end
redis.call('HSET', KEYS[1], 'v', version)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {version, string.format('%.0f', now), before}
";

/// Puts off the lapse of this node's part in each of KEYS, where it still has one.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lapses = string.format('%.0f', now + tonumber(ARGV[2]))
for _, key in ipairs(KEYS) do
  local part = redis.call('HGET', key, ARGV[1])
  if part then
    redis.call('HSET', key, ARGV[1], lapses .. string.sub(part, string.find(part, ' ', 1, true)))
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return 0
";

/// Takes a dead node's part (ARGV[1]) out of KEYS[1], if it has one, numbering the change:
/// the new version, Redis's time, and every field as it was before; nil if it had none.
const SWEEP: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return nil
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = redis.call('HGETALL', KEYS[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local version = string.format('%.0f', math.max(last + 1, now))
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], 'v', version)
return {version, string.format('%.0f', now), before}
";

/// This node's side of presences over every node.
pub(super) struct Presences {
    redis: ConnectionManager,
    node_id: Arc<str>,
    publisher: Publisher,
    /// Users this node has a part for: renewed until it records none.
    parts: Arc<Mutex<HashSet<i64>>>,
    writes: mpsc::Sender<Write>,
}

/// This node's part of a user's presence (empty: none), to write.
struct Write {
    user_id: i64,
    part: String,
    /// The script's answer: the new version, Redis's time, the hash as it was.
    done: oneshot::Sender<Recorded>,
}

type Recorded = (u64, u64, HashMap<String, String>);

impl Presences {
    /// Starts renewing this node's parts on the current runtime.
    pub(super) fn start(redis: ConnectionManager, node_id: Arc<str>, publisher: Publisher) -> Self {
        let (writes, queue) = mpsc::channel(WRITES);
        tokio::spawn(write(redis.clone(), node_id.clone(), queue));
        let parts = Arc::default();
        tokio::spawn(renew(
            redis.clone(),
            node_id.clone(),
            Arc::downgrade(&parts),
        ));
        Self {
            redis,
            node_id,
            publisher,
            parts,
            writes,
        }
    }

    /// What others see of the user, before and after this node's part became `here`.
    fn shown(node_id: &str, here: Option<Aggregate>, recorded: Recorded) -> Shown {
        let (version, now, before) = recorded;
        let others: Vec<(Aggregate, u64)> = parts(&before, now, node_id).collect();
        let was = before.get(node_id).and_then(|part| parse(part, now));
        let was = Aggregate::merge(others.iter().chain(was.as_ref()).map(|(p, at)| (p, *at)));
        let is = here.map(|presence| (presence, version));
        let is = Aggregate::merge(others.iter().chain(is.as_ref()).map(|(p, at)| (p, *at)));
        Shown {
            changed: is != was,
            presence: is,
            version,
        }
    }

    async fn look_up(
        mut redis: ConnectionManager,
        node_id: Arc<str>,
        users: Vec<i64>,
    ) -> Result<Vec<(i64, Aggregate)>, redis::RedisError> {
        let mut online = Vec::new();
        for chunk in users.chunks(BATCH) {
            let mut pipe = redis::pipe();
            pipe.cmd("TIME");
            for &user_id in chunk {
                pipe.cmd("HGETALL").arg(keys::presence(user_id));
            }
            let answers: Vec<redis::Value> = pipe.query_async(&mut redis).await?;
            let mut answers = answers.into_iter();
            let Some(time) = answers.next() else {
                continue;
            };
            let (seconds, micros): (u64, u64) = redis::from_redis_value(time)?;
            let now = seconds * 1000 + micros / 1000;
            for (&user_id, hash) in chunk.iter().zip(answers) {
                let hash: HashMap<String, String> = redis::from_redis_value(hash)?;
                let parts: Vec<_> = parts(&hash, now, &node_id).collect();
                let presence = Aggregate::merge(parts.iter().map(|(p, at)| (p, *at)));
                if !presence.is_offline() {
                    online.push((user_id, presence));
                }
            }
        }
        Ok(online)
    }
}

/// After a node died: its parts of users' presences go at once (rather than when they lapse),
/// and the users it alone showed online turn offline for their guilds and friends on every
/// node (this one included: a node does not hear what it publishes).
pub(super) async fn sweep_after(state: Weak<AppState>, dead: String) {
    let Some(redis) = state
        .upgrade()
        .and_then(|state| Some(state.cluster.as_ref()?.redis.clone()))
    else {
        return;
    };
    let changed = match sweep(redis, &dead).await {
        Ok(changed) => changed,
        Err(error) => {
            return tracing::warn!(%error, node_id = %dead, "a dead node's presences were not swept (they lapse)");
        }
    };
    for (user_id, presence, version) in changed {
        let Some(state) = state.upgrade() else { return };
        let topics = match audience(&state, user_id).await {
            Ok(topics) => topics,
            Err(error) => {
                tracing::warn!(%error, "who hears a presence was not read");
                continue;
            }
        };
        if let Some(cluster) = &state.cluster {
            cluster
                .presences
                .tell(user_id, &presence, version, topics.clone());
        }
        for topic in topics {
            state.tree.sessions.do_send(PresenceHeard {
                user_id,
                presence: presence.clone(),
                version,
                topic,
            });
        }
    }
}

/// Removes `dead`'s part from every presence: the users whose presence that changed, with
/// what they show now and its version.
async fn sweep(
    mut redis: ConnectionManager,
    dead: &str,
) -> redis::RedisResult<Vec<(i64, Aggregate, u64)>> {
    let script = redis::Script::new(SWEEP);
    let mut changed = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(keys::presence_pattern())
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut redis)
            .await?;
        for key in found {
            let Some(user_id) = keys::presence_user(&key) else {
                continue;
            };
            let swept: Option<Recorded> =
                script.key(&key).arg(dead).invoke_async(&mut redis).await?;
            let Some((version, now, before)) = swept else {
                continue;
            };
            let shown = |skip: &str| {
                let parts: Vec<_> = parts(&before, now, skip).collect();
                Aggregate::merge(parts.iter().map(|(p, at)| (p, *at)))
            };
            // Before: every part (none skipped: the version field is not one); after: the
            // dead node's skipped.
            let (was, is) = (shown(VERSION), shown(dead));
            if was != is {
                changed.push((user_id, is, version));
            }
        }
        if next == 0 {
            return Ok(changed);
        }
        cursor = next;
    }
}

/// Who hears a user's presence: their guilds' members, their friends, their own sessions.
async fn audience(state: &AppState, user_id: i64) -> Result<Vec<Topic>, DbError> {
    let mut conn = state
        .pool
        .get()
        .await
        .map_err(|e| DbError::Pool(e.to_string()))?;
    let guilds = Member::of_user(&mut conn, user_id).await?;
    let friends = Relationship::of_user(&mut conn, user_id).await?;
    let mut topics: Vec<Topic> = guilds.iter().map(|m| Topic::Guild(m.guild_id)).collect();
    topics.extend(
        friends
            .iter()
            .filter(|r| r.kind == relationship_kind::FRIEND)
            .map(|r| Topic::User(r.other_id)),
    );
    topics.push(Topic::User(user_id));
    Ok(topics)
}

/// The parts of other nodes in a `pres:{user}` hash that have not lapsed at `now`.
fn parts<'a>(
    hash: &'a HashMap<String, String>,
    now: u64,
    node_id: &'a str,
) -> impl Iterator<Item = (Aggregate, u64)> + 'a {
    hash.iter()
        .filter(move |(field, _)| *field != VERSION && *field != node_id)
        .filter_map(move |(_, part)| parse(part, now))
}

/// A part, `{lapses_at} {version} {json}`, unless it lapsed (or does not read).
fn parse(part: &str, now: u64) -> Option<(Aggregate, u64)> {
    let mut fields = part.splitn(3, ' ');
    let lapses: u64 = fields.next()?.parse().ok()?;
    let at: u64 = fields.next()?.parse().ok()?;
    if lapses <= now {
        return None;
    }
    match serde_json::from_str(fields.next()?) {
        Ok(presence) => Some((presence, at)),
        Err(error) => {
            tracing::warn!(%error, "a presence part did not read");
            None
        }
    }
}

/// Writes parts in the order asked, a batch per round trip, until the node stops. A batch
/// Redis did not take is not retried (its sessions start over when the bus recovers).
async fn write(mut redis: ConnectionManager, node_id: Arc<str>, mut queue: mpsc::Receiver<Write>) {
    let script = redis::Script::new(RECORD);
    let mut loaded = false;
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        if !loaded {
            loaded = script.prepare_invoke().load_async(&mut redis).await.is_ok();
        }
        let mut pipe = redis::pipe();
        for write in &batch {
            pipe.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(1)
                .arg(keys::presence(write.user_id))
                .arg(&*node_id)
                .arg(&write.part)
                .arg(LAPSE_MS);
        }
        let answers: Option<Vec<Recorded>> = match loaded {
            true => pipe
                .query_async(&mut redis)
                .await
                .inspect_err(|error| tracing::warn!(%error, "presences were not recorded"))
                .ok(),
            false => None,
        };
        match answers {
            Some(answers) => {
                for (write, answer) in batch.drain(..).zip(answers) {
                    let _ = write.done.send(answer);
                }
            }
            None => {
                // A restarted Redis also forgot the script.
                loaded = false;
                // Dropped unanswered: not recorded.
                batch.clear();
            }
        }
    }
}

/// Renews this node's parts until the node stops.
async fn renew(mut redis: ConnectionManager, node_id: Arc<str>, parts: Weak<Mutex<HashSet<i64>>>) {
    let script = redis::Script::new(RENEW);
    let mut every = tokio::time::interval(RENEW_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(parts) = parts.upgrade() else {
            return;
        };
        let users: Vec<i64> = sync::lock(&parts).iter().copied().collect();
        drop(parts);
        for chunk in users.chunks(BATCH) {
            let mut renewing = script.prepare_invoke();
            for &user_id in chunk {
                renewing.key(keys::presence(user_id));
            }
            renewing.arg(&*node_id).arg(LAPSE_MS);
            if let Err(error) = renewing.invoke_async::<()>(&mut redis).await {
                tracing::warn!(%error, "presences were not renewed: retried next round");
            }
        }
    }
}

impl Board for Presences {
    fn shared(&self) -> bool {
        true
    }

    fn record(&self, user_id: i64, here: Option<Aggregate>) -> BoxFuture<'static, Option<Shown>> {
        // Noted in the order asked, as the writes go out.
        {
            let mut parts = sync::lock(&self.parts);
            match here {
                Some(_) => parts.insert(user_id),
                None => parts.remove(&user_id),
            };
        }
        let part = match here.as_ref().map(serde_json::to_string).transpose() {
            Ok(part) => part.unwrap_or_default(),
            Err(error) => {
                tracing::error!(%error, "a presence did not encode");
                return Box::pin(std::future::ready(None));
            }
        };
        let (done, recorded) = oneshot::channel();
        // Full (Redis far behind): refused like a failed write, the change is not announced.
        let queued = self.writes.try_send(Write {
            user_id,
            part,
            done,
        });
        if queued.is_err() {
            tracing::warn!("presence writes are behind: a change is not shared");
        }
        let node_id = self.node_id.clone();
        Box::pin(async move {
            let recorded = recorded.await.ok()?;
            Some(Self::shown(&node_id, here, recorded))
        })
    }

    fn tell(&self, user_id: i64, presence: &Aggregate, version: u64, topics: Vec<Topic>) {
        let body = Body::Presence {
            user_id,
            presence: presence.clone(),
            version,
        };
        self.publisher
            .publish(topics.into_iter().map(keys::channel).collect(), body);
    }

    fn elsewhere(&self, users: Vec<i64>) -> BoxFuture<'static, Vec<(i64, Aggregate)>> {
        let looking = Self::look_up(self.redis.clone(), self.node_id.clone(), users);
        Box::pin(async move {
            looking.await.unwrap_or_else(|error| {
                tracing::warn!(%error, "presences on other nodes were not read");
                Vec::new()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use spacebar_actors::presence::{Platform, Status};

    use super::*;

    fn showing(status: Status) -> Aggregate {
        Aggregate {
            status,
            activities: Vec::new(),
            client_status: BTreeMap::from([(Platform::Web, status)]),
        }
    }

    fn part(status: Status, lapses: u64, at: u64) -> String {
        let presence = serde_json::to_string(&showing(status)).unwrap();
        format!("{lapses} {at} {presence}")
    }

    #[test]
    fn the_others_parts_decide_what_a_change_shows() {
        let before = HashMap::from([
            ("a".to_owned(), part(Status::Online, 2_000, 10)),
            ("b".to_owned(), part(Status::Idle, 2_000, 5)),
            ("dead".to_owned(), part(Status::Dnd, 999, 7)),
            (VERSION.to_owned(), "10".to_owned()),
        ]);
        // Node a's last session ends: b's idle is left; the lapsed part counts for nothing.
        let left = Presences::shown("a", None, (11, 1_000, before.clone()));
        assert_eq!((left.presence.status, left.version), (Status::Idle, 11));
        assert!(left.changed);
        // A session on node c comes online: a's online showed already.
        let online = Some(showing(Status::Online));
        let joined = Presences::shown("c", online, (12, 1_000, before.clone()));
        assert_eq!(joined.presence.status, Status::Online);
        assert!(!joined.changed);
        // Node b goes dnd: online still wins.
        let dnd = Some(showing(Status::Dnd));
        assert!(!Presences::shown("b", dnd, (13, 1_000, before.clone())).changed);
        // Other nodes' parts only; one that does not read is no part.
        assert_eq!(parts(&before, 1_000, "a").count(), 1);
        assert!(parse("3000 x {}", 0).is_none());
    }
}
