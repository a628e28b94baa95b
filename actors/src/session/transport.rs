//! How a connection puts payloads on the wire: the encoding (`json` text or `etf` terms) and
//! the transport compression (none, `zlib-stream`, `zstd-stream`), and reading what clients
//! send in the same encoding.

use super::protocol::Inbound;
use super::{etf, zlib, zstd};
use crate::dispatch::Dispatch;
use crate::event_name::EventName;

/// The `encoding` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Etf,
}

/// The `compress` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    ZlibStream,
    ZstdStream,
}

/// A piece of a message: bytes to compress (or not) here, or bytes already made for this
/// connection's compression.
pub enum Piece<'a> {
    Raw(&'a [u8]),
    Encoded(&'a [u8]),
}

impl Piece<'_> {
    fn bytes(&self) -> &[u8] {
        let (Piece::Raw(part) | Piece::Encoded(part)) = self;
        part
    }
}

/// What goes on the socket. Handed to the websocket context by move: a `String` or `Vec` of
/// exactly its length becomes actix's `ByteString` or `Bytes` without a copy or another
/// allocation. The context's codec then copies it once into the socket's write buffer, as it
/// does every message; short of splitting it into continuation frames, which clients would see,
/// that copy cannot be avoided.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug)]
pub struct Transport {
    encoding: Encoding,
    compression: Compression,
    zlib: zlib::ZlibStream,
    /// A dispatch's head (everything before `d`), rewritten in place for each compressed or
    /// ETF frame: a few dozen bytes kept by the connection instead of allocated per frame.
    head: Vec<u8>,
}

impl Compression {
    /// Whether this compression compresses a piece of `len` bytes rather than sending it raw.
    /// A dispatch's `d` it would compress comes from the copy compressed once per dispatch,
    /// whatever its size: compressing is deterministic, so that copy is the very bytes the
    /// connection would have made of it, at the cost of one compression instead of one per
    /// recipient.
    fn compresses(self, len: usize) -> bool {
        match self {
            Compression::None => false,
            Compression::ZlibStream => len >= zlib::DEFLATE_MIN_BYTES,
            Compression::ZstdStream => len >= zstd::COMPRESS_MIN_BYTES,
        }
    }
}

impl Transport {
    pub fn new(encoding: Encoding, compression: Compression) -> Self {
        Self {
            encoding,
            compression,
            zlib: zlib::ZlibStream::default(),
            head: Vec::new(),
        }
    }

    /// A payload other than a dispatch (HELLO, heartbeat ACK, …), given as JSON text.
    pub fn op(&mut self, json: &str) -> Frame {
        let term;
        let payload = match self.encoding {
            Encoding::Json => json.as_bytes(),
            Encoding::Etf => {
                term = etf::encode(&serde_json::from_str(json).unwrap_or_default());
                &term
            }
        };
        let pieces = [Piece::Raw(payload)];
        finish(self.encoding, self.compression, &mut self.zlib, &pieces)
    }

    /// A dispatch with this connection's sequence number; its `d` comes from the copy shared
    /// by every connection with the same encoding and compression.
    ///
    /// This runs once per recipient of every event, so it does the least it can: one
    /// allocation of the frame's exact size and one copy of `d` into it (the head is written
    /// without `format!`, and JSON text is not checked for UTF-8 again).
    pub fn dispatch(&mut self, seq: u64, dispatch: &Dispatch) -> Frame {
        let (encoding, compression) = (self.encoding, self.compression);
        let raw = dispatch.encoded(encoding, Compression::None);
        let body = if compression.compresses(raw.len()) {
            Piece::Encoded(dispatch.encoded(encoding, compression))
        } else {
            Piece::Raw(raw)
        };
        let head = &mut self.head;
        head.clear();
        match encoding {
            Encoding::Json => {
                let mut number = itoa::Buffer::new();
                let parts = [
                    r#"{"op":0,"t":""#,
                    dispatch.event().as_str(),
                    r#"","s":"#,
                    number.format(seq),
                    r#","d":"#,
                ];
                if let (Compression::None, Some(text)) = (compression, dispatch.text()) {
                    let [op, t, s, seq, d] = parts;
                    return Frame::Text([op, t, s, seq, d, text, "}"].concat());
                }
                for part in parts {
                    head.extend_from_slice(part.as_bytes());
                }
                let pieces = [Piece::Raw(head), body, Piece::Raw(b"}")];
                finish(encoding, compression, &mut self.zlib, &pieces)
            }
            Encoding::Etf => {
                etf_head(dispatch.event(), seq, head);
                let pieces = [Piece::Raw(head), body];
                finish(encoding, compression, &mut self.zlib, &pieces)
            }
        }
    }

    /// Reads a client payload in this connection's encoding; `None` if it does not decode.
    pub fn decode(&self, bytes: &[u8]) -> Option<Inbound> {
        match self.encoding {
            Encoding::Json => serde_json::from_slice(bytes).ok(),
            Encoding::Etf => serde_json::from_value(etf::decode(bytes).ok()?).ok(),
        }
    }
}

/// An ETF dispatch's term up to its `d`: a map of four whose `d` value follows.
fn etf_head(event: EventName, seq: u64, head: &mut Vec<u8>) {
    head.push(131);
    etf::map_header(4, head);
    etf::key_term("op", head);
    etf::integer(0, head);
    etf::key_term("t", head);
    etf::binary(event.as_str().as_bytes(), head);
    etf::key_term("s", head);
    etf::integer(i64::try_from(seq).unwrap_or(i64::MAX), head);
    etf::key_term("d", head);
}

/// One message made of `pieces`, in `encoding` and `compression`, with one allocation of its
/// size (exact but for pieces compressed here).
fn finish(
    encoding: Encoding,
    compression: Compression,
    zlib: &mut zlib::ZlibStream,
    pieces: &[Piece<'_>],
) -> Frame {
    match compression {
        Compression::ZlibStream => Frame::Binary(zlib.encode(pieces)),
        Compression::ZstdStream => Frame::Binary(zstd::encode(pieces)),
        Compression::None => {
            let length = pieces.iter().map(|piece| piece.bytes().len()).sum();
            let mut bytes = Vec::with_capacity(length);
            for piece in pieces {
                bytes.extend_from_slice(piece.bytes());
            }
            match encoding {
                Encoding::Etf => Frame::Binary(bytes),
                Encoding::Json => match String::from_utf8(bytes) {
                    Ok(text) => Frame::Text(text),
                    Err(error) => Frame::Binary(error.into_bytes()),
                },
            }
        }
    }
}

/// A dispatch's `d` in one encoding and compression, made once per dispatch.
pub fn encode_body(data: &[u8], encoding: Encoding, compression: Compression) -> bytes::Bytes {
    let raw: bytes::Bytes = match encoding {
        Encoding::Json => bytes::Bytes::copy_from_slice(data),
        Encoding::Etf => {
            let mut term = Vec::with_capacity(data.len());
            etf::encode_term(&serde_json::from_slice(data).unwrap_or_default(), &mut term);
            term.into()
        }
    };
    match compression {
        Compression::None => raw,
        Compression::ZlibStream => zlib::deflate(&raw),
        Compression::ZstdStream => zstd::compress(&raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};
    use serde_json::json;

    /// A dispatch's frame made as it was before the per-recipient work was cut (a `format!`ed
    /// head, `d` under 256 bytes compressed for each recipient, JSON checked for UTF-8 whole):
    /// the bytes every frame must still be.
    fn frame_as_before(transport: &mut Transport, seq: u64, dispatch: &Dispatch) -> Frame {
        let (encoding, compression) = (transport.encoding, transport.compression);
        let raw = dispatch.encoded(encoding, Compression::None);
        let body = if compression == Compression::None || raw.len() < 256 {
            Piece::Raw(raw)
        } else {
            Piece::Encoded(dispatch.encoded(encoding, compression))
        };
        let zlib = &mut transport.zlib;
        match encoding {
            Encoding::Json => {
                let head = format!(r#"{{"op":0,"t":"{}","s":{seq},"d":"#, dispatch.event());
                let pieces = [Piece::Raw(head.as_bytes()), body, Piece::Raw(b"}")];
                finish(encoding, compression, zlib, &pieces)
            }
            Encoding::Etf => {
                let mut head = Vec::new();
                etf_head(dispatch.event(), seq, &mut head);
                finish(encoding, compression, zlib, &[Piece::Raw(&head), body])
            }
        }
    }

    fn wire(frame: Frame) -> (&'static str, Vec<u8>) {
        match frame {
            Frame::Text(text) => ("text", text.into_bytes()),
            Frame::Binary(bytes) => ("binary", bytes),
        }
    }

    #[test]
    fn dispatch_frames_are_the_bytes_they_were_in_every_encoding_and_compression() {
        let bodies: Vec<bytes::Bytes> = vec![
            "{}".into(),
            serde_json::to_vec(&json!({ "id": "1", "name": "x".repeat(40) }))
                .unwrap()
                .into(),
            serde_json::to_vec(&json!({ "typing": "ünïcödé ✓ ".repeat(12) }))
                .unwrap()
                .into(),
            serde_json::to_vec(&json!({ "content": "hello world ".repeat(100), "n": 7 }))
                .unwrap()
                .into(),
            serde_json::to_vec(&json!({ "bulk": "abcdefghij".repeat(8_000) }))
                .unwrap()
                .into(),
            // Not UTF-8: JSON connections got it in a binary frame, and still do.
            bytes::Bytes::from_static(b"{\"bad\":\"\xff\"}"),
        ];
        let sizes: Vec<usize> = bodies.iter().map(|body| body.len()).collect();
        assert!(
            sizes.iter().any(|&len| (96..256).contains(&len)),
            "{sizes:?}"
        );
        let seqs = [1, 300, 70_000, 3_000_000_000, u64::MAX];
        for encoding in [Encoding::Json, Encoding::Etf] {
            for compression in [
                Compression::None,
                Compression::ZlibStream,
                Compression::ZstdStream,
            ] {
                let mut before = Transport::new(encoding, compression);
                let mut now = Transport::new(encoding, compression);
                for body in &bodies {
                    let dispatch = Dispatch::from_json(EventName::MessageCreate, body.clone());
                    for seq in seqs {
                        assert_eq!(
                            wire(now.dispatch(seq, &dispatch)),
                            wire(frame_as_before(&mut before, seq, &dispatch)),
                            "{encoding:?} {compression:?} seq {seq}, {} bytes of d",
                            body.len()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn etf_dispatches_through_zlib_decode_to_the_payload() {
        let data = serde_json::to_vec(&json!({ "bio": "x".repeat(400), "n": 1 })).unwrap();
        let dispatch = Dispatch::from_json(EventName::UserUpdate, data.into());
        let mut transport = Transport::new(Encoding::Etf, Compression::ZlibStream);
        let mut inflater = Decompress::new(true);
        for seq in 1..=2 {
            let Frame::Binary(bytes) = transport.dispatch(seq, &dispatch) else {
                panic!("text frame")
            };
            let mut out = Vec::with_capacity(1 << 16);
            inflater
                .decompress_vec(&bytes, &mut out, FlushDecompress::Sync)
                .unwrap();
            let value = etf::decode(&out).unwrap();
            assert_eq!(value["s"], seq);
            assert_eq!(value["d"]["n"], 1);
        }
    }
}
