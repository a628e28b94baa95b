//! Gateway wire protocol: opcodes, close codes and the inbound payload shapes.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

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

/// IDENTIFY's `d`. Unknown fields are ignored; `compress` is ignored on purpose (the query
/// string decides compression).
#[derive(Debug, Deserialize)]
pub struct Identify {
    pub token: String,
    #[serde(default)]
    pub properties: Value,
    #[serde(default)]
    pub presence: Option<Value>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub intents: Option<u64>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub capabilities: Option<u64>,
    #[serde(default)]
    pub large_threshold: Option<u64>,
    #[serde(default)]
    pub shard: Option<[u64; 2]>,
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

/// VOICE_STATE_UPDATE's `d`, as far as a session without voice needs it.
#[derive(Debug, Deserialize)]
pub struct VoiceStateUpdate {
    pub guild_id: Option<Value>,
    pub channel_id: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_accepts_bitfields_as_numbers_or_strings() {
        let numeric: Identify =
            serde_json::from_str(r#"{"token":"t","capabilities":3070,"intents":"513"}"#).unwrap();
        assert_eq!(
            (numeric.capabilities, numeric.intents),
            (Some(3070), Some(513))
        );
        let text: Identify =
            serde_json::from_str(r#"{"token":"t","capabilities":"1024"}"#).unwrap();
        assert_eq!(text.capabilities, Some(1024));
        assert!(serde_json::from_str::<Identify>(r#"{"token":"t","capabilities":"x"}"#).is_err());
        assert!(serde_json::from_str::<Identify>(r#"{"capabilities":1}"#).is_err());
    }
}
