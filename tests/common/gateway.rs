//! A gateway client over a real WebSocket: JSON or ETF, inflating zlib-stream and zstd-stream
//! as clients do.

use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{self, Frame};
use awc::BoxedSocket;
use flate2::{Decompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use super::Server;

/// What the server sent next.
#[derive(Debug)]
pub enum Event {
    Payload(Value),
    Closed(Option<u16>),
}

/// The client side of a connection's transport compression.
enum Inflater {
    None,
    /// One inflate context for the connection, fed until a message ends in a sync flush.
    Zlib(Decompress, Vec<u8>),
    Zstd(zstd::stream::raw::Decoder<'static>),
}

pub struct Gateway {
    connection: Framed<BoxedSocket, ws::Codec>,
    inflater: Inflater,
    etf: bool,
    pub binary_frames: usize,
    pub text_frames: usize,
    pub hello: Value,
}

impl Gateway {
    /// Connects with `query` (e.g. `"v=9&encoding=json"`) and reads HELLO.
    pub async fn connect(server: &impl Server, query: &str) -> Self {
        let mut gateway = Self::connect_raw(server, query).await;
        gateway.hello = gateway.payload().await;
        assert_eq!(gateway.hello["op"], 10, "{:?}", gateway.hello);
        gateway
    }

    /// Connects without reading anything.
    pub async fn connect_raw(server: &impl Server, query: &str) -> Self {
        Self::connect_at(server, "/", query).await
    }

    /// Connects to the WebSocket at `path` (`/`, `/voice`) without reading anything.
    pub async fn connect_at(server: &impl Server, path: &str, query: &str) -> Self {
        let inflater = if query.contains("compress=zlib-stream") {
            Inflater::Zlib(Decompress::new(true), Vec::new())
        } else if query.contains("compress=zstd-stream") {
            Inflater::Zstd(zstd::stream::raw::Decoder::new().unwrap())
        } else {
            Inflater::None
        };
        let (_, connection) = awc::Client::new()
            .ws(server.url(&format!("{path}?{query}")))
            .max_frame_size(16 << 20)
            .connect()
            .await
            .unwrap();
        Self {
            connection,
            inflater,
            etf: query.contains("encoding=etf"),
            binary_frames: 0,
            text_frames: 0,
            hello: Value::Null,
        }
    }

    pub async fn send(&mut self, payload: Value) {
        if self.etf {
            let bytes = super::etf::encode(&payload);
            self.connection
                .send(ws::Message::Binary(bytes.into()))
                .await
                .unwrap();
        } else {
            self.send_text(payload.to_string()).await;
        }
    }

    pub async fn send_text(&mut self, text: String) {
        self.connection
            .send(ws::Message::Text(text.into()))
            .await
            .unwrap();
    }

    /// The next payload or close, within five seconds.
    pub async fn next(&mut self) -> Event {
        self.next_within(Duration::from_secs(5)).await
    }

    pub async fn next_within(&mut self, limit: Duration) -> Event {
        self.read(limit, false).await
    }

    /// The next payload or close, within five seconds; a connection that broke (its server
    /// was killed) counts as closed.
    pub async fn next_or_broken(&mut self) -> Event {
        self.read(Duration::from_secs(5), true).await
    }

    async fn read(&mut self, limit: Duration, broken_is_closed: bool) -> Event {
        loop {
            let frame = tokio::time::timeout(limit, self.connection.next())
                .await
                .expect("the server sent nothing in time");
            match frame {
                None => return Event::Closed(None),
                Some(Err(_)) if broken_is_closed => return Event::Closed(None),
                Some(Err(error)) => panic!("websocket error: {error}"),
                Some(Ok(Frame::Close(reason))) => {
                    return Event::Closed(reason.map(|r| r.code.into()))
                }
                Some(Ok(Frame::Text(text))) => {
                    self.text_frames += 1;
                    assert!(
                        matches!(self.inflater, Inflater::None) && !self.etf,
                        "a text frame on a binary connection"
                    );
                    return Event::Payload(serde_json::from_slice(&text).unwrap());
                }
                Some(Ok(Frame::Binary(bytes))) => {
                    self.binary_frames += 1;
                    let Some(message) = self.inflate(&bytes) else {
                        continue;
                    };
                    return Event::Payload(if self.etf {
                        super::etf::decode(&message)
                    } else {
                        serde_json::from_slice(&message).unwrap()
                    });
                }
                Some(Ok(Frame::Ping(bytes))) => self
                    .connection
                    .send(ws::Message::Pong(bytes))
                    .await
                    .unwrap(),
                Some(Ok(_)) => {}
            }
        }
    }

    /// One binary frame's payload bytes, or `None` while a zlib message is still incomplete.
    fn inflate(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        match &mut self.inflater {
            Inflater::None => Some(bytes.to_vec()),
            Inflater::Zlib(inflater, buffer) => {
                buffer.extend_from_slice(bytes);
                if !buffer.ends_with(&[0, 0, 0xff, 0xff]) {
                    return None;
                }
                let mut out = Vec::with_capacity(buffer.len() * 20 + 1024);
                let before = inflater.total_in();
                inflater
                    .decompress_vec(buffer, &mut out, FlushDecompress::Sync)
                    .unwrap();
                assert_eq!(
                    inflater.total_in() - before,
                    buffer.len() as u64,
                    "output buffer too small"
                );
                buffer.clear();
                Some(out)
            }
            Inflater::Zstd(decoder) => {
                use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
                let mut output = vec![0u8; bytes.len() * 50 + (1 << 16)];
                let mut input = InBuffer::around(bytes);
                let mut out = OutBuffer::around(&mut output[..]);
                while input.pos() < bytes.len() {
                    decoder.run(&mut input, &mut out).unwrap();
                }
                let written = out.pos();
                output.truncate(written);
                Some(output)
            }
        }
    }

    /// The next payload; fails on a close.
    pub async fn payload(&mut self) -> Value {
        match self.next().await {
            Event::Payload(payload) => payload,
            Event::Closed(code) => panic!("closed with {code:?} while a payload was expected"),
        }
    }

    /// Closes the socket with a close frame carrying `code`.
    pub async fn close_with(&mut self, code: u16) {
        let reason = ws::CloseReason {
            code: ws::CloseCode::from(code),
            description: None,
        };
        self.connection
            .send(ws::Message::Close(Some(reason)))
            .await
            .unwrap();
    }

    /// Reads until the connection closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Event::Closed(code) => return code,
                Event::Payload(_) => {}
            }
        }
    }

    /// The next dispatch named `event`, skipping others.
    pub async fn dispatch(&mut self, event: &str) -> Value {
        loop {
            let payload = self.payload().await;
            if payload["op"] == 0 && payload["t"] == event {
                return payload;
            }
        }
    }

    /// The next dispatch of each name in `events`, in whatever order they arrive (events that
    /// leave by different routes, a guild's and a user's, may overtake each other); returned in
    /// the order asked for.
    pub async fn dispatches(&mut self, events: &[&str]) -> Vec<Value> {
        let mut found: Vec<Option<Value>> = vec![None; events.len()];
        while found.iter().any(Option::is_none) {
            let payload = self.payload().await;
            if payload["op"] != 0 {
                continue;
            }
            let name = payload["t"].as_str().unwrap_or_default().to_owned();
            if let Some(at) =
                (0..events.len()).find(|&at| found[at].is_none() && events[at] == name)
            {
                found[at] = Some(payload);
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Every dispatch up to and including the next `event`: with an event the reader must see
    /// as a barrier, this shows what else arrived before it (or did not).
    pub async fn dispatches_until(&mut self, event: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let payload = self.payload().await;
            if payload["op"] != 0 {
                continue;
            }
            let done = payload["t"] == event;
            seen.push(payload);
            if done {
                return seen;
            }
        }
    }

    /// The next payload that is not a dispatch (a heartbeat ACK, say), skipping dispatches.
    pub async fn skip_dispatches(&mut self) -> Value {
        loop {
            let payload = self.payload().await;
            if payload["op"] != 0 {
                return payload;
            }
        }
    }

    /// IDENTIFY with `token`; returns the whole READY payload.
    pub async fn identify(&mut self, token: &str) -> Value {
        self.send(json!({
            "op": 2,
            "d": { "token": token, "properties": { "os": "linux", "browser": "test", "device": "" }, "intents": 513 },
        }))
        .await;
        self.dispatch("READY").await
    }
}
