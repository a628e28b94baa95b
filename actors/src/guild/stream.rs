//! Go Live in a guild voice channel or a DM call: someone in voice streams (op 18, with STREAM
//! in a guild channel), others in the same channel or call watch (op 20), the streamer pauses
//! (op 22) or stops (op 19), and leaving ends the stream. Each stream is a voice room of its own
//! ([`RoomKey::Stream`]) whose voice gateway `server_id` is the stream's `rtc_server_id`; the
//! streamer and each watcher are admitted to it with a token of their own.

use crate::event_name::EventName;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::voice::Notice;
use crate::voice::{Admissions, Flags, RoomKey};

/// The region streams are placed in: this server carries them itself.
const REGION: &str = "spacebar";

#[derive(Debug, Clone)]
pub struct Stream {
    pub key: String,
    rtc_server_id: String,
    streamer: (i64, Arc<str>),
    /// Watchers, by user, with the session that watches.
    viewers: BTreeMap<i64, Arc<str>>,
    paused: bool,
}

/// A Go Live command, for the guild or the call the stream is in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StreamChange {
    /// Op 18: go live in the voice channel (or call) the user, in this session, is in.
    Create {
        session_id: Arc<str>,
        channel_id: i64,
    },
    /// Op 20: watch `streamer`'s stream, from the same channel.
    Watch { session_id: Arc<str>, streamer: i64 },
    /// Op 19: the streamer stops.
    Delete,
    /// Op 22: the streamer pauses or resumes.
    Paused { paused: bool },
}

/// The live streams of one guild or call, by streamer.
#[derive(Debug, Default)]
pub struct Streams(HashMap<i64, Stream>);

impl Streams {
    /// The streamer (whose last stream, if any, has ended) goes live: STREAM_CREATE and a token
    /// for them.
    pub fn start(
        &mut self,
        key: String,
        streamer: (i64, Arc<str>),
        endpoint: &str,
        admissions: &Admissions,
    ) -> Vec<Notice> {
        let user_id = streamer.0;
        let (stream, started) = Stream::start(key, streamer, endpoint, admissions);
        self.0.insert(user_id, stream);
        started
    }

    /// Someone in the same channel or call watches `streamer`; `None` if they are not live.
    pub fn watch(
        &mut self,
        streamer: i64,
        viewer: (i64, Arc<str>),
        endpoint: &str,
        admissions: &Admissions,
    ) -> Option<Vec<Notice>> {
        let stream = self.0.get_mut(&streamer)?;
        Some(stream.watch(viewer.0, viewer.1, endpoint, admissions))
    }

    /// `None` if `streamer` is not live.
    pub fn set_paused(&mut self, streamer: i64, paused: bool) -> Option<Vec<Notice>> {
        Some(self.0.get_mut(&streamer)?.set_paused(paused))
    }

    /// `streamer`'s stream ends; nothing if they were not live.
    pub fn end(&mut self, streamer: i64, why: Ended, admissions: &Admissions) -> Vec<Notice> {
        self.0
            .remove(&streamer)
            .map(|stream| stream.end(why, admissions))
            .unwrap_or_default()
    }

    /// The user left the channel or call: they stop watching every stream.
    pub fn unwatch_all(&mut self, user_id: i64, admissions: &Admissions) -> Vec<Notice> {
        let mut notices = Vec::new();
        for stream in self.0.values_mut() {
            if stream.is_viewer(user_id) {
                notices.extend(stream.unwatch(user_id, admissions));
            }
        }
        notices
    }

    pub fn is_live(&self, user_id: i64) -> bool {
        self.0.contains_key(&user_id)
    }
}

/// Why a stream ended, as STREAM_DELETE says.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    /// The streamer stopped it (op 19).
    Stopped,
    /// The streamer left the channel.
    StreamerLeft,
}

impl Stream {
    /// `guild:{g}:{c}:{u}`, as clients build it.
    pub fn key(guild_id: i64, channel_id: i64, user_id: i64) -> String {
        format!("guild:{guild_id}:{channel_id}:{user_id}")
    }

    /// `call:{c}:{u}`, a stream in a DM or group DM call.
    pub fn call_key(channel_id: i64, user_id: i64) -> String {
        format!("call:{channel_id}:{user_id}")
    }

    /// A new stream of the streamer's session; the streamer hears STREAM_CREATE and gets a
    /// token in STREAM_SERVER_UPDATE.
    pub fn start(
        key: String,
        streamer: (i64, Arc<str>),
        endpoint: &str,
        admissions: &Admissions,
    ) -> (Self, Vec<Notice>) {
        let stream = Self {
            key,
            rtc_server_id: rand::rng().random::<u64>().to_string(),
            streamer,
            viewers: BTreeMap::new(),
            paused: false,
        };
        let (user_id, session_id) = stream.streamer.clone();
        let notices = stream.admit(user_id, session_id, endpoint, admissions);
        (stream, notices)
    }

    /// A member in the channel watches: they get the stream and a token of their own; the
    /// streamer and the other watchers hear who watches.
    pub fn watch(
        &mut self,
        user_id: i64,
        session_id: Arc<str>,
        endpoint: &str,
        admissions: &Admissions,
    ) -> Vec<Notice> {
        self.viewers.insert(user_id, session_id.clone());
        let mut notices = self.admit(user_id, session_id.clone(), endpoint, admissions);
        notices.extend(self.tell_others(&session_id, EventName::StreamUpdate, &self.to_json()));
        notices
    }

    /// The streamer paused or resumed: everyone watching hears it.
    pub fn set_paused(&mut self, paused: bool) -> Vec<Notice> {
        self.paused = paused;
        self.tell_all(EventName::StreamUpdate, &self.to_json())
    }

    /// A watcher left the channel: their connection to the stream ends.
    pub fn unwatch(&mut self, user_id: i64, admissions: &Admissions) -> Vec<Notice> {
        let Some(session_id) = self.viewers.remove(&user_id) else {
            return Vec::new();
        };
        admissions.dismiss(&self.room(), user_id);
        let mut notices = vec![Notice::Session {
            session_id,
            event: EventName::StreamDelete,
            d: self.deleted_json(Ended::StreamerLeft),
        }];
        notices.extend(self.tell_all(EventName::StreamUpdate, &self.to_json()));
        notices
    }

    /// The stream is over: everyone admitted to it is dismissed and hears STREAM_DELETE.
    pub fn end(self, why: Ended, admissions: &Admissions) -> Vec<Notice> {
        let room = self.room();
        admissions.dismiss(&room, self.streamer.0);
        for user_id in self.viewers.keys() {
            admissions.dismiss(&room, *user_id);
        }
        self.tell_all(EventName::StreamDelete, &self.deleted_json(why))
    }

    pub fn is_viewer(&self, user_id: i64) -> bool {
        self.viewers.contains_key(&user_id)
    }

    fn room(&self) -> RoomKey {
        RoomKey::Stream {
            stream_key: self.key.clone(),
        }
    }

    /// STREAM_CREATE and STREAM_SERVER_UPDATE for one session joining the stream's room.
    fn admit(
        &self,
        user_id: i64,
        session_id: Arc<str>,
        endpoint: &str,
        admissions: &Admissions,
    ) -> Vec<Notice> {
        let token = admissions.admit(
            self.rtc_server_id.clone(),
            user_id,
            session_id.to_string(),
            self.room(),
            Flags::default(),
        );
        let server = json!({
            "stream_key": self.key,
            "token": token,
            "endpoint": endpoint,
            "guild_id": null,
        });
        vec![
            Notice::Session {
                session_id: session_id.clone(),
                event: EventName::StreamCreate,
                d: self.to_json(),
            },
            Notice::Session {
                session_id,
                event: EventName::StreamServerUpdate,
                d: server,
            },
        ]
    }

    /// STREAM_CREATE and STREAM_UPDATE's `d`.
    fn to_json(&self) -> Value {
        json!({
            "stream_key": self.key,
            "rtc_server_id": self.rtc_server_id,
            "viewer_ids": self.viewers.keys().map(i64::to_string).collect::<Vec<_>>(),
            "region": REGION,
            "paused": self.paused,
        })
    }

    fn deleted_json(&self, why: Ended) -> Value {
        let reason = match why {
            Ended::Stopped => "user_requested",
            Ended::StreamerLeft => "stream_ended",
        };
        json!({ "stream_key": self.key, "unavailable": false, "reason": reason })
    }

    /// The streamer's and every watcher's session.
    fn sessions(&self) -> impl Iterator<Item = &Arc<str>> {
        std::iter::once(&self.streamer.1).chain(self.viewers.values())
    }

    fn tell_all(&self, event: EventName, d: &Value) -> Vec<Notice> {
        self.sessions()
            .map(|session_id| Notice::Session {
                session_id: session_id.clone(),
                event,
                d: d.clone(),
            })
            .collect()
    }

    fn tell_others(&self, but: &Arc<str>, event: EventName, d: &Value) -> Vec<Notice> {
        self.tell_all(event, d)
            .into_iter()
            .filter(|n| !matches!(n, Notice::Session { session_id, .. } if session_id == but))
            .collect()
    }
}
