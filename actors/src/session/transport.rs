//! How a connection puts payloads on the wire: the encoding (`json` text or `etf` terms) and
//! the transport compression (none, `zlib-stream`, `zstd-stream`), and reading what clients
//! send in the same encoding.

use super::protocol::Inbound;
use super::{etf, zlib, zstd};
use crate::dispatch::Dispatch;

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

/// What goes on the socket.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug)]
pub struct Transport {
    encoding: Encoding,
    compression: Compression,
    zlib: zlib::ZlibStream,
}

/// Dispatch bodies shorter than this are sent as they are, not from the shared compressed copy.
const SHARED_COMPRESSED_MIN: usize = 256;

impl Transport {
    pub fn new(encoding: Encoding, compression: Compression) -> Self {
        Self {
            encoding,
            compression,
            zlib: zlib::ZlibStream::default(),
        }
    }

    /// A payload other than a dispatch (HELLO, heartbeat ACK, …), given as JSON text.
    pub fn op(&mut self, json: &str) -> Frame {
        match self.encoding {
            Encoding::Json => self.finish(&[Piece::Raw(json.as_bytes())]),
            Encoding::Etf => {
                let value = serde_json::from_str(json).unwrap_or_default();
                let term = etf::encode(&value);
                self.finish(&[Piece::Raw(&term)])
            }
        }
    }

    /// A dispatch with this connection's sequence number; its `d` comes from the copy shared
    /// by every connection with the same encoding and compression.
    pub fn dispatch(&mut self, seq: u64, dispatch: &Dispatch) -> Frame {
        let (encoding, compression) = (self.encoding, self.compression);
        let raw = dispatch.encoded(encoding, Compression::None);
        let body = if compression == Compression::None || raw.len() < SHARED_COMPRESSED_MIN {
            Piece::Raw(raw)
        } else {
            Piece::Encoded(dispatch.encoded(encoding, compression))
        };
        match encoding {
            Encoding::Json => {
                let head = format!(r#"{{"op":0,"t":"{}","s":{seq},"d":"#, dispatch.event());
                self.finish(&[Piece::Raw(head.as_bytes()), body, Piece::Raw(b"}")])
            }
            Encoding::Etf => {
                let mut head = vec![131];
                etf::map_header(4, &mut head);
                etf::key_term("op", &mut head);
                etf::integer(0, &mut head);
                etf::key_term("t", &mut head);
                etf::binary(dispatch.event().as_str().as_bytes(), &mut head);
                etf::key_term("s", &mut head);
                etf::integer(i64::try_from(seq).unwrap_or(i64::MAX), &mut head);
                etf::key_term("d", &mut head);
                self.finish(&[Piece::Raw(&head), body])
            }
        }
    }

    fn finish(&mut self, pieces: &[Piece<'_>]) -> Frame {
        match self.compression {
            Compression::ZlibStream => Frame::Binary(self.zlib.encode(pieces)),
            Compression::ZstdStream => Frame::Binary(zstd::encode(pieces)),
            Compression::None => {
                let length = pieces.iter().map(|piece| piece.bytes().len()).sum();
                let mut bytes = Vec::with_capacity(length);
                for piece in pieces {
                    bytes.extend_from_slice(piece.bytes());
                }
                match self.encoding {
                    Encoding::Etf => Frame::Binary(bytes),
                    Encoding::Json => match String::from_utf8(bytes) {
                        Ok(text) => Frame::Text(text),
                        Err(error) => Frame::Binary(error.into_bytes()),
                    },
                }
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
    use crate::event_name::EventName;
    use flate2::{Decompress, FlushDecompress};
    use serde_json::json;

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
