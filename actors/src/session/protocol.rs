//! Gateway wire protocol: opcodes, close codes and the inbound payload shapes.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::intents::{self, Shard};

use super::backend::{MemberSelection, MembersRequest};

/// Gateway opcodes (Discord's numbering; 40 is the client's QoS heartbeat).
pub mod op {
    pub const DISPATCH: u8 = 0;
    pub const HEARTBEAT: u8 = 1;
    pub const IDENTIFY: u8 = 2;
    pub const PRESENCE_UPDATE: u8 = 3;
    pub const VOICE_STATE_UPDATE: u8 = 4;
    pub const RESUME: u8 = 6;
    pub const RECONNECT: u8 = 7;
    pub const REQUEST_GUILD_MEMBERS: u8 = 8;
    pub const INVALID_SESSION: u8 = 9;
    pub const HELLO: u8 = 10;
    pub const HEARTBEAT_ACK: u8 = 11;
    pub const GUILD_SUBSCRIPTIONS: u8 = 14;
    pub const STREAM_CREATE: u8 = 18;
    pub const STREAM_DELETE: u8 = 19;
    pub const STREAM_WATCH: u8 = 20;
    pub const STREAM_SET_PAUSED: u8 = 22;
    pub const GUILD_SUBSCRIPTIONS_BULK: u8 = 37;
    pub const QOS_HEARTBEAT: u8 = 40;
}

/// Gateway close codes, with the reason text Discord sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    UnknownError = 4000,
    UnknownOpcode = 4001,
    DecodeError = 4002,
    NotAuthenticated = 4003,
    AuthenticationFailed = 4004,
    AlreadyAuthenticated = 4005,
    InvalidSeq = 4007,
    RateLimited = 4008,
    SessionTimedOut = 4009,
    InvalidShard = 4010,
    ShardingRequired = 4011,
    InvalidApiVersion = 4012,
    InvalidIntents = 4013,
    DisallowedIntents = 4014,
}

impl CloseCode {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownError => "Unknown error.",
            Self::UnknownOpcode => "Unknown opcode.",
            Self::DecodeError => "Error while decoding payload.",
            Self::NotAuthenticated => "Not authenticated.",
            Self::AuthenticationFailed => "Authentication failed.",
            Self::AlreadyAuthenticated => "Already authenticated.",
            Self::InvalidSeq => "Invalid seq.",
            Self::RateLimited => "Rate limited.",
            Self::SessionTimedOut => "Session timed out.",
            Self::InvalidShard => "Invalid shard.",
            Self::ShardingRequired => "Sharding required.",
            Self::InvalidApiVersion => "Invalid API version.",
            Self::InvalidIntents => "Invalid intent(s).",
            Self::DisallowedIntents => "Disallowed intent(s).",
        }
    }
}

/// Any payload a client sends: `{op, d}` (`s` and `t` are ignored inbound).
#[derive(Debug, Deserialize)]
pub struct Inbound {
    pub op: u8,
    #[serde(default)]
    pub d: Value,
}

/// IDENTIFY capability: guilds (in READY and every live GUILD_CREATE) in the CLIENT_STATE_V2
/// shape, `{id, properties, …}` (Fermi).
pub const CLIENT_STATE_V2: u64 = 1 << 10;

/// IDENTIFY's `d`. Unknown fields are ignored; `compress` is ignored on purpose (the query
/// string decides compression).
#[derive(Debug, Deserialize)]
pub struct Identify {
    pub token: String,
    #[serde(default)]
    pub properties: Value,
    #[serde(default)]
    pub presence: Option<Value>,
    /// Checked by [`Identify::intents`] (a bad value closes with 4013, not 4002).
    #[serde(default)]
    pub intents: Option<Value>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub capabilities: Option<u64>,
    #[serde(default)]
    pub large_threshold: Option<u64>,
    /// Checked by [`Identify::shard`] (a bad value closes with 4010).
    #[serde(default)]
    pub shard: Option<Value>,
}

impl Identify {
    /// The intents asked for (a number or a numeric string); `None` when absent or `null`.
    /// Negative values and bits beyond the known ones are 4013.
    pub fn intents(&self) -> Result<Option<u64>, CloseCode> {
        match &self.intents {
            None | Some(Value::Null) => Ok(None),
            Some(value) => whole_number(value)
                .filter(|intents| *intents & !intents::ALL == 0)
                .map(Some)
                .ok_or(CloseCode::InvalidIntents),
        }
    }

    /// `shard: [id, count]`; `None` when absent or `null`. `count` 0 or `id >= count` is 4010.
    pub fn shard(&self) -> Result<Option<Shard>, CloseCode> {
        match &self.shard {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(pair)) => match pair.as_slice() {
                [id, count] => whole_number(id)
                    .zip(whole_number(count))
                    .and_then(|(id, count)| Shard::new(id, count))
                    .map(Some)
                    .ok_or(CloseCode::InvalidShard),
                _ => Err(CloseCode::InvalidShard),
            },
            Some(_) => Err(CloseCode::InvalidShard),
        }
    }
}

/// A non-negative whole number, sent as a number or as a numeric string.
fn whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// RESUME's `d`.
#[derive(Debug, Deserialize)]
pub struct Resume {
    pub token: String,
    pub session_id: String,
    #[serde(default, deserialize_with = "number_or_string")]
    pub seq: Option<u64>,
}

/// Accepts `3070`, `"3070"` and `null`: clients send bitfields either way.
pub fn number_or_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not a number: {text:?}"))),
    }
}

/// VOICE_STATE_UPDATE's `d` (op 4); absent and `null` flags are false.
#[derive(Debug, Deserialize)]
pub struct VoiceStateUpdate {
    #[serde(default)]
    guild_id: Option<Snowflake>,
    #[serde(default)]
    channel_id: Option<Snowflake>,
    #[serde(default)]
    self_mute: Option<bool>,
    #[serde(default)]
    self_deaf: Option<bool>,
    #[serde(default)]
    self_video: Option<bool>,
}

/// What an op 4 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceRequest {
    pub guild_id: Option<i64>,
    /// `None`: leave voice.
    pub channel_id: Option<i64>,
    pub self_mute: bool,
    pub self_deaf: bool,
    pub self_video: bool,
}

/// Checks op 4's `d`; `None` if it is not one.
pub fn voice_request(d: Value) -> Option<VoiceRequest> {
    let update: VoiceStateUpdate = serde_json::from_value(d).ok()?;
    Some(VoiceRequest {
        guild_id: update.guild_id.map(|Snowflake(id)| id),
        channel_id: update.channel_id.map(|Snowflake(id)| id),
        self_mute: update.self_mute.unwrap_or(false),
        self_deaf: update.self_deaf.unwrap_or(false),
        self_video: update.self_video.unwrap_or(false),
    })
}

/// A Go Live command (ops 18, 19, 20, 22), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamCommand {
    /// In a guild's voice channel, or (`guild_id: None`) in a DM or group DM call.
    Create {
        guild_id: Option<i64>,
        channel_id: i64,
    },
    Delete(StreamKey),
    Watch(StreamKey),
    SetPaused(StreamKey, bool),
}

/// A stream's key: `guild:{guild_id}:{channel_id}:{user_id}`, or `call:{channel_id}:{user_id}`
/// (`guild_id: None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    pub guild_id: Option<i64>,
    pub channel_id: i64,
    pub user_id: i64,
}

#[derive(Debug, Deserialize)]
struct StreamPayload {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    guild_id: Option<Snowflake>,
    #[serde(default)]
    channel_id: Option<Snowflake>,
    #[serde(default)]
    stream_key: Option<String>,
    #[serde(default)]
    paused: Option<bool>,
}

/// A command that is not what its opcode takes (closes with 4002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed command")]
pub struct Malformed;

/// Checks a Go Live command: `Err` for a malformed one (closes with 4002).
pub fn stream_command(op: u8, d: Value) -> Result<StreamCommand, Malformed> {
    let payload: StreamPayload = serde_json::from_value(d).map_err(|_| Malformed)?;
    if op == op::STREAM_CREATE {
        return match (
            payload.kind.as_deref(),
            payload.guild_id,
            payload.channel_id,
        ) {
            (Some("guild") | None, Some(Snowflake(guild_id)), Some(Snowflake(channel_id))) => {
                Ok(StreamCommand::Create {
                    guild_id: Some(guild_id),
                    channel_id,
                })
            }
            (Some("call"), _, Some(Snowflake(channel_id))) => Ok(StreamCommand::Create {
                guild_id: None,
                channel_id,
            }),
            _ => Err(Malformed),
        };
    }
    let text = payload.stream_key.ok_or(Malformed)?;
    let parts: Vec<&str> = text.split(':').collect();
    let id = |text: &str| text.parse::<i64>().map_err(|_| Malformed);
    let key = match parts.as_slice() {
        ["guild", guild_id, channel_id, user_id] => StreamKey {
            guild_id: Some(id(guild_id)?),
            channel_id: id(channel_id)?,
            user_id: id(user_id)?,
        },
        ["call", channel_id, user_id] => StreamKey {
            guild_id: None,
            channel_id: id(channel_id)?,
            user_id: id(user_id)?,
        },
        _ => return Err(Malformed),
    };
    Ok(match op {
        op::STREAM_DELETE => StreamCommand::Delete(key),
        op::STREAM_WATCH => StreamCommand::Watch(key),
        _ => StreamCommand::SetPaused(key, payload.paused.ok_or(Malformed)?),
    })
}

/// REQUEST_GUILD_MEMBERS's `d` as sent; [`members_request`] checks it.
#[derive(Debug, Deserialize)]
struct RequestGuildMembers {
    guild_id: Snowflake,
    #[serde(default)]
    query: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    limit: Option<u64>,
    #[serde(default)]
    presences: Option<bool>,
    #[serde(default)]
    user_ids: Option<OneOrMany>,
    #[serde(default)]
    nonce: Option<Value>,
}

/// A snowflake as a string or a number.
#[derive(Debug, Clone, Copy)]
struct Snowflake(i64);

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = number_or_string(deserializer)?
            .ok_or_else(|| serde::de::Error::custom("a snowflake may not be null"))?;
        i64::try_from(id)
            .map(Snowflake)
            .map_err(|_| serde::de::Error::custom("snowflake out of range"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Snowflake),
    Many(Vec<Snowflake>),
}

/// Most members a prefix query, or a list of user ids, may ask for.
pub const MAX_MEMBERS_ASKED: u32 = 100;

/// REQUEST_GUILD_MEMBERS's `d` checked as Discord checks it; `None` closes the connection with
/// 4002. One guild id; exactly one of `query` (with `limit`) or `user_ids` (one id or up to
/// 100). A prefix query returns at most 100 members; `query: ""` with `limit: 0` asks for all.
/// An invalid `nonce` is dropped, not refused.
pub fn members_request(d: Value) -> Option<MembersRequest> {
    let raw: RequestGuildMembers = serde_json::from_value(d).ok()?;
    let selection = match (raw.query, raw.user_ids) {
        (Some(prefix), None) => {
            let limit = match raw.limit? {
                0 if prefix.is_empty() => None,
                0 => Some(MAX_MEMBERS_ASKED),
                n => Some(u32::try_from(n).map_or(MAX_MEMBERS_ASKED, |n| n.min(MAX_MEMBERS_ASKED))),
            };
            MemberSelection::Query { prefix, limit }
        }
        (None, Some(ids)) => {
            let ids = match ids {
                OneOrMany::One(id) => vec![id],
                OneOrMany::Many(ids) => ids,
            };
            if ids.len() > MAX_MEMBERS_ASKED as usize {
                return None;
            }
            let mut unique: Vec<i64> = Vec::with_capacity(ids.len());
            for Snowflake(id) in ids {
                if !unique.contains(&id) {
                    unique.push(id);
                }
            }
            MemberSelection::UserIds(unique)
        }
        _ => return None,
    };
    let nonce = match raw.nonce {
        Some(Value::String(nonce)) if nonce.len() <= 32 => Some(nonce),
        _ => None,
    };
    Some(MembersRequest {
        guild_id: raw.guild_id.0,
        selection,
        presences: raw.presences.unwrap_or(false),
        nonce,
    })
}

/// What op 14 or op 37 asks of one guild: the member lists of these channels, from these
/// rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub guild_id: i64,
    pub channels: Vec<(i64, Vec<(usize, usize)>)>,
}

/// Most channels one guild's request may watch, ranges per channel, and rows per range (as
/// Discord's clients ask: a few windows of 100).
const MAX_LIST_CHANNELS: usize = 5;
const MAX_RANGES: usize = 5;
const MAX_RANGE_ROWS: usize = 100;

/// One guild's entry of op 14 (its whole `d`) or op 37 (`subscriptions[guild_id]`). Typing,
/// activities, threads and member presences are accepted and not served.
#[derive(Debug, Deserialize)]
struct GuildSubscription {
    #[serde(default)]
    channels: Option<HashMap<String, Vec<(u64, u64)>>>,
}

/// Op 14's `d` (`{guild_id, channels: {id: [[0, 99], …]}, …}`) or op 37's
/// (`{subscriptions: {guild_id: {channels, …}}}`), checked; `None` closes with 4002. Only
/// entries that name `channels` ask for member lists. A range runs from its first row to its
/// last (both included); past the limits above, ranges are cut and extra ones ignored.
pub fn list_requests(bulk: bool, d: Value) -> Option<Vec<ListRequest>> {
    let entries: Vec<(Snowflake, GuildSubscription)> = if bulk {
        #[derive(Deserialize)]
        struct Bulk {
            subscriptions: HashMap<String, GuildSubscription>,
        }
        let bulk: Bulk = serde_json::from_value(d).ok()?;
        bulk.subscriptions
            .into_iter()
            .map(|(id, entry)| Some((snowflake(&id)?, entry)))
            .collect::<Option<_>>()?
    } else {
        #[derive(Deserialize)]
        struct Single {
            guild_id: Snowflake,
            #[serde(flatten)]
            entry: GuildSubscription,
        }
        let single: Single = serde_json::from_value(d).ok()?;
        vec![(single.guild_id, single.entry)]
    };
    let mut requests = Vec::new();
    for (Snowflake(guild_id), entry) in entries {
        let Some(channels) = entry.channels else {
            continue;
        };
        let mut watched = Vec::new();
        for (channel, ranges) in channels.into_iter().take(MAX_LIST_CHANNELS) {
            let Snowflake(channel_id) = snowflake(&channel)?;
            let mut rows = Vec::new();
            for (from, to) in ranges.into_iter().take(MAX_RANGES) {
                let from = usize::try_from(from).ok()?;
                let to = usize::try_from(to).ok()?;
                if to < from {
                    return None;
                }
                rows.push((from, to.min(from + MAX_RANGE_ROWS - 1)));
            }
            watched.push((channel_id, rows));
        }
        watched.sort_unstable();
        requests.push(ListRequest {
            guild_id,
            channels: watched,
        });
    }
    Some(requests)
}

fn snowflake(text: &str) -> Option<Snowflake> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .map(Snowflake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_live_commands_are_checked_in_guilds_and_calls() {
        let key = StreamKey {
            guild_id: Some(1),
            channel_id: 2,
            user_id: 3,
        };
        let command = |op, d: &str| stream_command(op, serde_json::from_str(d).unwrap());
        assert_eq!(
            command(18, r#"{"type":"guild","guild_id":"1","channel_id":2}"#),
            Ok(StreamCommand::Create {
                guild_id: Some(1),
                channel_id: 2
            })
        );
        assert_eq!(
            command(22, r#"{"stream_key":"guild:1:2:3","paused":true}"#),
            Ok(StreamCommand::SetPaused(key, true))
        );
        assert_eq!(
            command(20, r#"{"stream_key":"guild:1:2:3"}"#),
            Ok(StreamCommand::Watch(key))
        );
        let call = StreamKey {
            guild_id: None,
            ..key
        };
        assert_eq!(
            command(19, r#"{"stream_key":"call:2:3"}"#),
            Ok(StreamCommand::Delete(call))
        );
        assert_eq!(
            command(18, r#"{"type":"call","channel_id":"2"}"#),
            Ok(StreamCommand::Create {
                guild_id: None,
                channel_id: 2
            })
        );
        assert_eq!(
            command(19, r#"{"stream_key":"guild:x:2:3"}"#),
            Err(Malformed)
        );
        assert_eq!(command(19, r#"{"stream_key":"call:2"}"#), Err(Malformed));
        assert_eq!(
            command(22, r#"{"stream_key":"guild:1:2:3"}"#),
            Err(Malformed)
        );
    }

    #[test]
    fn identify_accepts_bitfields_as_numbers_or_strings() {
        let numeric: Identify =
            serde_json::from_str(r#"{"token":"t","capabilities":3070,"intents":"513"}"#).unwrap();
        assert_eq!(
            (numeric.capabilities, numeric.intents()),
            (Some(3070), Ok(Some(513)))
        );
        let text: Identify =
            serde_json::from_str(r#"{"token":"t","capabilities":"1024"}"#).unwrap();
        assert_eq!(text.capabilities, Some(1024));
        assert!(serde_json::from_str::<Identify>(r#"{"token":"t","capabilities":"x"}"#).is_err());
        assert!(serde_json::from_str::<Identify>(r#"{"capabilities":1}"#).is_err());
    }

    #[test]
    fn intents_and_shards_are_checked_with_their_own_close_codes() {
        let identify = |d: &str| serde_json::from_str::<Identify>(d).unwrap();
        assert_eq!(identify(r#"{"token":"t"}"#).intents(), Ok(None));
        assert_eq!(
            identify(r#"{"token":"t","intents":null}"#).intents(),
            Ok(None)
        );
        assert_eq!(
            identify(r#"{"token":"t","intents":67108863}"#).intents(),
            Ok(Some(intents::ALL))
        );
        for bad in ["-1", "67108864", "1.5", "\"x\"", "[]"] {
            let d = format!(r#"{{"token":"t","intents":{bad}}}"#);
            assert_eq!(
                identify(&d).intents(),
                Err(CloseCode::InvalidIntents),
                "{bad}"
            );
        }
        assert_eq!(
            identify(r#"{"token":"t","shard":[1,2]}"#).shard(),
            Ok(Shard::new(1, 2))
        );
        for bad in ["[2,2]", "[0,0]", "[-1,2]", "[0]", "3"] {
            let d = format!(r#"{{"token":"t","shard":{bad}}}"#);
            assert_eq!(identify(&d).shard(), Err(CloseCode::InvalidShard), "{bad}");
        }
    }

    #[test]
    fn member_list_requests_are_checked() {
        let parse = |bulk, d: &str| list_requests(bulk, serde_json::from_str(d).unwrap());
        let single = parse(
            false,
            r#"{"guild_id":"1","typing":true,"channels":{"2":[[0,99],[100,300]]}}"#,
        )
        .unwrap();
        assert_eq!(
            single,
            vec![ListRequest {
                guild_id: 1,
                channels: vec![(2, vec![(0, 99), (100, 199)])]
            }]
        );
        assert_eq!(
            parse(false, r#"{"guild_id":"1","typing":true}"#),
            Some(vec![])
        );
        let bulk = parse(
            true,
            r#"{"subscriptions":{"1":{"channels":{"2":[[0,99]]}},"3":{"typing":true}}}"#,
        )
        .unwrap();
        assert_eq!(bulk.len(), 1);
        for (is_bulk, bad) in [
            (false, r#"{"channels":{"2":[[0,99]]}}"#),
            (false, r#"{"guild_id":"1","channels":{"x":[[0,99]]}}"#),
            (false, r#"{"guild_id":"1","channels":{"2":[[99,0]]}}"#),
            (false, r#"{"guild_id":"1","channels":{"2":[[-1,5]]}}"#),
            (false, r#"{"guild_id":"1","channels":{"2":[0,99]}}"#),
            (true, r#"{"subscriptions":{"x":{}}}"#),
            (true, r#"{"subscriptions":[]}"#),
        ] {
            assert_eq!(parse(is_bulk, bad), None, "{bad}");
        }
    }

    #[test]
    fn member_requests_are_checked_as_discord_does() {
        let parse = |d: &str| members_request(serde_json::from_str(d).unwrap());
        let everyone = parse(r#"{"guild_id":"1","query":"","limit":0,"nonce":"n"}"#).unwrap();
        assert!(everyone.is_everyone());
        assert_eq!(everyone.nonce.as_deref(), Some("n"));
        let prefix = parse(r#"{"guild_id":1,"query":"ab","limit":500,"presences":true}"#).unwrap();
        assert_eq!(
            prefix.selection,
            MemberSelection::Query {
                prefix: "ab".into(),
                limit: Some(100)
            }
        );
        assert!(prefix.presences);
        let one = parse(r#"{"guild_id":"1","user_ids":"7","limit":null,"query":null}"#).unwrap();
        assert_eq!(one.selection, MemberSelection::UserIds(vec![7]));
        let long_nonce = format!(
            r#"{{"guild_id":"1","user_ids":["7","7"],"nonce":"{}"}}"#,
            "x".repeat(33)
        );
        let deduped = parse(&long_nonce).unwrap();
        assert_eq!(deduped.selection, MemberSelection::UserIds(vec![7]));
        assert_eq!(deduped.nonce, None);
        let too_many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
        for bad in [
            r#"{"guild_id":"1"}"#.to_string(),
            r#"{"guild_id":"1","query":"a"}"#.to_string(),
            r#"{"guild_id":"1","query":"","limit":0,"user_ids":["2"]}"#.to_string(),
            r#"{"query":"","limit":0}"#.to_string(),
            r#"{"guild_id":["1"],"query":"","limit":0}"#.to_string(),
            r#"{"guild_id":"x","query":"","limit":0}"#.to_string(),
            r#"{"guild_id":"1","user_ids":["-1"]}"#.to_string(),
            serde_json::json!({ "guild_id": "1", "user_ids": too_many }).to_string(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
