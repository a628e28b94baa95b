//! A gateway dispatch, encoded once and shared by every session that receives it.

use std::sync::{Arc, OnceLock};

use actix::{Message, Recipient};
use bytes::Bytes;
use bytestring::ByteString;
use serde::Serialize;

use crate::event_name::EventName;
use crate::session::transport::{self, Compression, Encoding};

/// Encodings other than plain JSON, each made on first use.
const VARIANTS: [(Encoding, Compression); 5] = [
    (Encoding::Json, Compression::ZlibStream),
    (Encoding::Json, Compression::ZstdStream),
    (Encoding::Etf, Compression::None),
    (Encoding::Etf, Compression::ZlibStream),
    (Encoding::Etf, Compression::ZstdStream),
];

/// A dispatch's `d` as JSON text: checked to be UTF-8 once here, so that every JSON connection
/// splices it into its text frame without checking it again.
#[derive(Debug)]
enum Data {
    Text(ByteString),
    /// Bytes that are not UTF-8 (never what serde writes): sent as they are, in binary frames.
    Bytes(Bytes),
}

/// One gateway event (`op 0`): its name and its `d` payload, serialised once. Connections add
/// only their own sequence number around it, and share one copy of `d` per encoding and
/// compression. Beside the bytes it carries what sessions filter on (see [`crate::intents`]):
/// where it happened, whom it is about, and a copy without message content.
#[derive(Debug)]
pub struct Dispatch {
    event: EventName,
    data: Data,
    variants: [OnceLock<Bytes>; VARIANTS.len()],
    /// The guild it happened in; `None` in a DM or the user's own business.
    guild_id: Option<i64>,
    /// Users it is about, who get it whole whatever their intents: a message's author and the
    /// users it mentions, the member of a GUILD_MEMBER_UPDATE.
    subjects: Box<[i64]>,
    /// The same event without message content, for bots without MESSAGE_CONTENT.
    redacted: Option<Arc<Dispatch>>,
    /// The same event in the CLIENT_STATE_V2 shape (a guild as `{id, properties, …}`), for
    /// sessions that identified with that capability.
    client_state_v2: Option<Arc<Dispatch>>,
    /// A guild's member count and the same event as it is for sessions whose IDENTIFY
    /// `large_threshold` is below that count (a joined guild's GUILD_CREATE).
    large: Option<(usize, Arc<Dispatch>)>,
}

impl Dispatch {
    pub fn new<T: Serialize>(event: EventName, data: &T) -> Result<Arc<Self>, serde_json::Error> {
        Self::json(event, data).map(Arc::new)
    }

    /// Like [`Dispatch::new`], to add to ([`Dispatch::in_guild`] …) before sharing it.
    pub fn json<T: Serialize>(event: EventName, data: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::with_data(
            event,
            Data::Text(serde_json::to_string(data)?.into()),
        ))
    }

    /// A dispatch whose `d` is already JSON text.
    pub fn from_json(event: EventName, data: Bytes) -> Self {
        // The clone only shares the buffer; it is what is left when the check fails.
        let data = match ByteString::try_from(data.clone()) {
            Ok(text) => Data::Text(text),
            Err(_) => Data::Bytes(data),
        };
        Self::with_data(event, data)
    }

    fn with_data(event: EventName, data: Data) -> Self {
        Self {
            event,
            data,
            variants: Default::default(),
            guild_id: None,
            subjects: Box::default(),
            redacted: None,
            client_state_v2: None,
            large: None,
        }
    }

    /// It happened in this guild (sessions of other shards, and without the guild intent,
    /// do not hear it).
    pub fn in_guild(mut self, guild_id: i64) -> Self {
        self.guild_id = Some(guild_id);
        self
    }

    /// It is about these users (see [`Dispatch::subjects`]).
    pub fn about(mut self, users: impl IntoIterator<Item = i64>) -> Self {
        self.subjects = users.into_iter().collect();
        self
    }

    /// Bots without MESSAGE_CONTENT get `redacted` instead, unless it is about them.
    pub fn with_redacted(mut self, redacted: Dispatch) -> Self {
        self.redacted = Some(Arc::new(redacted));
        self
    }

    /// Sessions that identified with CLIENT_STATE_V2 get `shaped` instead.
    pub fn with_client_state_v2(mut self, shaped: Dispatch) -> Self {
        self.client_state_v2 = Some(Arc::new(shaped));
        self
    }

    /// Sessions whose `large_threshold` is below `member_count` get `large` instead.
    pub fn with_large(mut self, member_count: usize, large: Dispatch) -> Self {
        self.large = Some((member_count, Arc::new(large)));
        self
    }

    pub fn event(&self) -> EventName {
        self.event
    }

    pub fn guild_id(&self) -> Option<i64> {
        self.guild_id
    }

    /// Users it is about: they get it whole whatever their intents.
    pub fn subjects(&self) -> &[i64] {
        &self.subjects
    }

    /// The copy without message content, if it has message content.
    pub fn redacted(&self) -> Option<&Arc<Dispatch>> {
        self.redacted.as_ref()
    }

    /// The copy in the CLIENT_STATE_V2 shape, if its shape differs.
    pub fn client_state_v2(&self) -> Option<&Arc<Dispatch>> {
        self.client_state_v2.as_ref()
    }

    /// The member count and the copy for sessions to which the guild is large, if it differs.
    pub fn large(&self) -> Option<&(usize, Arc<Dispatch>)> {
        self.large.as_ref()
    }

    /// The JSON text of `d`.
    pub fn data(&self) -> &Bytes {
        match &self.data {
            Data::Text(text) => text.as_bytes(),
            Data::Bytes(bytes) => bytes,
        }
    }

    /// The JSON text of `d` as a `str`, if it is UTF-8 (it is unless it came from elsewhere
    /// already broken).
    pub fn text(&self) -> Option<&str> {
        match &self.data {
            Data::Text(text) => Some(text),
            Data::Bytes(_) => None,
        }
    }

    /// `d` in `encoding`, compressed for `compression` (self-contained deflate blocks or zstd
    /// frames), made on first use and then spliced unchanged into every such connection's frames.
    pub fn encoded(&self, encoding: Encoding, compression: Compression) -> &Bytes {
        let Some(index) = VARIANTS.iter().position(|v| *v == (encoding, compression)) else {
            return self.data();
        };
        match self.variants.get(index) {
            Some(cell) => {
                cell.get_or_init(|| transport::encode_body(self.data(), encoding, compression))
            }
            None => self.data(),
        }
    }
}

/// Hands a dispatch to a session, which frames it with its next sequence number.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Dispatch>);

/// Where one session's dispatches go: straight onto its line to the connection (see
/// [`crate::session::Line`]), numbered and kept for RESUME by the sender, with no mailbox and no
/// task wake-up of the session's own in between; or any actor that handles [`Deliver`].
#[derive(Clone)]
pub struct Sink(Arc<dyn Deliveries>);

/// What a [`Sink`] reaches.
pub trait Deliveries: Send + Sync {
    fn deliver(&self, dispatch: Arc<Dispatch>);
    /// False once it hears nothing any more: senders may forget it.
    fn connected(&self) -> bool;
}

impl Sink {
    pub fn new(deliveries: Arc<dyn Deliveries>) -> Self {
        Self(deliveries)
    }

    pub fn do_send(&self, Deliver(dispatch): Deliver) {
        self.0.deliver(dispatch);
    }

    pub fn connected(&self) -> bool {
        self.0.connected()
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("connected", &self.connected())
            .finish()
    }
}

impl Deliveries for Recipient<Deliver> {
    fn deliver(&self, dispatch: Arc<Dispatch>) {
        self.do_send(Deliver(dispatch));
    }

    fn connected(&self) -> bool {
        Recipient::connected(self)
    }
}

impl From<Recipient<Deliver>> for Sink {
    fn from(recipient: Recipient<Deliver>) -> Self {
        Self(Arc::new(recipient))
    }
}
