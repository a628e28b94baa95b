//! The `/rooms/ws` wire: what clients send (parsed here, once, by the socket) and how the
//! server's messages are written. The protocol is docs/rooms.md.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::grants::Source;
use crate::outlet::Weighed;

/// What a room sends one participant's socket.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum ToClient {
    /// A JSON text frame, written once and shared by everyone it goes to.
    Text(Arc<str>),
    /// Send `error` with this code and message, then close with the same code.
    Close(Code, String),
}

impl Weighed for ToClient {
    /// A text frame's bytes; a close is owed whatever the budget.
    fn weight(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Close(..) => 0,
        }
    }
}

/// `error` codes (docs/rooms.md); the fatal ones are also close codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadMessage = 4000,
    Unauthorized = 4001,
    WrongState = 4002,
    PermissionDenied = 4003,
    NotFound = 4004,
    RoomFull = 4005,
    NoRoom = 4006,
    Removed = 4007,
    RoomClosed = 4008,
    RateLimited = 4009,
    TooLarge = 4010,
    Media = 4011,
    Replaced = 4012,
    /// The client stopped reading: what waited for it passed the outbound bounds.
    NotReading = 4013,
    /// In a cluster: the room is served by another node, whose socket the `error`'s `url` names.
    OtherNode = 4014,
}

impl Code {
    pub fn number(self) -> u16 {
        self as u16
    }
}

/// An `error` message.
pub fn error(code: Code, message: &str, request: Option<&str>) -> Arc<str> {
    let mut error = json!({ "type": "error", "code": code.number(), "message": message });
    if let Some(request) = request {
        error["request"] = json!(request);
    }
    error.to_string().into()
}

/// A message of `kind` with these fields (an object).
pub fn message(kind: &str, mut fields: Value) -> Arc<str> {
    if let Some(object) = fields.as_object_mut() {
        object.insert("type".into(), json!(kind));
    }
    fields.to_string().into()
}

/// A client's message.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    Join {
        #[serde(default)]
        auto_subscribe: bool,
    },
    Leave {},
    PublishOffer {
        sdp: String,
        #[serde(default)]
        tracks: Vec<TrackRequest>,
    },
    PublishIceCandidate(Candidate),
    Unpublish {
        sid: String,
    },
    Subscribe(Selection),
    SubscribeAnswer {
        sdp: String,
    },
    SubscribeIceCandidate(Candidate),
    Unsubscribe(Selection),
    Mute {
        sid: String,
    },
    Unmute {
        sid: String,
    },
    PublishData(Data),
    Ping {
        #[serde(default)]
        ts: Value,
    },
}

impl Request {
    /// Its `type`, for `error`'s `request`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::Leave {} => "leave",
            Self::PublishOffer { .. } => "publish-offer",
            Self::PublishIceCandidate(_) => "publish-ice-candidate",
            Self::Unpublish { .. } => "unpublish",
            Self::Subscribe(_) => "subscribe",
            Self::SubscribeAnswer { .. } => "subscribe-answer",
            Self::SubscribeIceCandidate(_) => "subscribe-ice-candidate",
            Self::Unsubscribe(_) => "unsubscribe",
            Self::Mute { .. } => "mute",
            Self::Unmute { .. } => "unmute",
            Self::PublishData(_) => "publish-data",
            Self::Ping { .. } => "ping",
        }
    }
}

/// Which source an m-line of a `publish-offer` carries.
#[derive(Debug, Clone, Deserialize)]
pub struct TrackRequest {
    pub mid: String,
    pub source: Source,
}

/// A trickled ICE candidate.
#[derive(Debug, Clone, Deserialize)]
pub struct Candidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default)]
    pub sdp_mline_index: Option<u16>,
}

/// What `subscribe` / `unsubscribe` name: one track, one participant's, or (neither) all.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Selection {
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub participant: Option<String>,
}

/// `reliable` or `lossy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    #[default]
    Reliable,
    Lossy,
}

/// `publish-data`.
#[derive(Debug, Clone, Deserialize)]
pub struct Data {
    #[serde(default)]
    pub kind: DataKind,
    pub payload: Value,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The largest `publish-data` payload (its JSON), either kind.
pub const MAX_PAYLOAD_BYTES: usize = 15 * 1024;
/// The longest `topic`.
pub const MAX_TOPIC_BYTES: usize = 128;
/// The most identities a `publish-data` may name.
pub const MAX_RECIPIENTS: usize = 64;
/// Messages a socket may send per [`RATE_WINDOW`].
pub const MAX_MESSAGES_PER_WINDOW: u32 = 100;
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);
/// Messages that may wait for a socket whose client is not reading (with the byte bound,
/// `RoomLimits::outbound_bytes`); one more closes it with [`Code::NotReading`].
pub const MAX_QUEUED_MESSAGES: usize = 4096;
/// Tracks one participant may publish.
pub const MAX_TRACKS: usize = 8;
/// Trickled candidates one connection takes.
pub const MAX_CANDIDATES: usize = 32;

/// At most [`MAX_MESSAGES_PER_WINDOW`] per [`RATE_WINDOW`].
pub struct Rate {
    start: Instant,
    count: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            count: 0,
        }
    }
}

impl Rate {
    /// Counts one; whether it is within the rate.
    pub fn admit(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.start) >= RATE_WINDOW {
            *self = Self::default();
        }
        self.count += 1;
        self.count <= MAX_MESSAGES_PER_WINDOW
    }
}

impl Data {
    /// Why it may not be sent, if it may not.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.payload.to_string().len() > MAX_PAYLOAD_BYTES {
            return Err("the payload is over 15 KiB");
        }
        if self
            .topic
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TOPIC_BYTES)
        {
            return Err("the topic is over 128 bytes");
        }
        if self.to.len() > MAX_RECIPIENTS {
            return Err("more than 64 recipients");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_by_type() {
        let parse = |text: &str| serde_json::from_str::<Request>(text);
        assert!(matches!(
            parse(r#"{"type":"join","auto_subscribe":true}"#),
            Ok(Request::Join {
                auto_subscribe: true
            })
        ));
        assert!(matches!(
            parse(r#"{"type":"leave"}"#),
            Ok(Request::Leave {})
        ));
        let Ok(Request::PublishData(data)) =
            parse(r#"{"type":"publish-data","kind":"lossy","payload":{"a":1},"to":["bob"]}"#)
        else {
            panic!("publish-data did not parse");
        };
        assert_eq!((data.kind, data.to.len()), (DataKind::Lossy, 1));
        assert!(matches!(
            parse(r#"{"type":"subscribe"}"#),
            Ok(Request::Subscribe(Selection {
                sid: None,
                participant: None
            }))
        ));
        assert!(parse(r#"{"type":"dance"}"#).is_err());
        assert!(parse(r#"{"type":"mute"}"#).is_err());
    }

    #[test]
    fn an_error_names_its_code_and_request() {
        let text = error(
            Code::PermissionDenied,
            "no publish grant",
            Some("publish-offer"),
        );
        let value: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(value["type"], "error");
        assert_eq!(value["code"], 4003);
        assert_eq!(value["request"], "publish-offer");
    }
}
