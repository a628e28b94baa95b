//! A gateway dispatch, encoded once and shared by every session that receives it.

use std::sync::{Arc, OnceLock};

use actix::Message;
use bytes::Bytes;
use serde::Serialize;

use crate::session::transport::{self, Compression, Encoding};

/// Encodings other than plain JSON, each made on first use.
const VARIANTS: [(Encoding, Compression); 5] = [
    (Encoding::Json, Compression::ZlibStream),
    (Encoding::Json, Compression::ZstdStream),
    (Encoding::Etf, Compression::None),
    (Encoding::Etf, Compression::ZlibStream),
    (Encoding::Etf, Compression::ZstdStream),
];

/// One gateway event (`op 0`): its name and its `d` payload, serialised once. Connections add
/// only their own sequence number around it, and share one copy of `d` per encoding and
/// compression.
#[derive(Debug)]
pub struct Dispatch {
    event: &'static str,
    data: Bytes,
    variants: [OnceLock<Bytes>; VARIANTS.len()],
}

impl Dispatch {
    pub fn new<T: Serialize>(
        event: &'static str,
        data: &T,
    ) -> Result<Arc<Self>, serde_json::Error> {
        Ok(Arc::new(Self::from_json(
            event,
            serde_json::to_vec(data)?.into(),
        )))
    }

    /// A dispatch whose `d` is already JSON text.
    pub fn from_json(event: &'static str, data: Bytes) -> Self {
        Self {
            event,
            data,
            variants: Default::default(),
        }
    }

    pub fn event(&self) -> &'static str {
        self.event
    }

    /// The JSON text of `d`.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// `d` in `encoding`, compressed for `compression` (self-contained deflate blocks or zstd
    /// frames), made on first use and then spliced unchanged into every such connection's frames.
    pub fn encoded(&self, encoding: Encoding, compression: Compression) -> &Bytes {
        let Some(index) = VARIANTS.iter().position(|v| *v == (encoding, compression)) else {
            return &self.data;
        };
        match self.variants.get(index) {
            Some(cell) => {
                cell.get_or_init(|| transport::encode_body(&self.data, encoding, compression))
            }
            None => &self.data,
        }
    }
}

/// Hands a dispatch to a session, which frames it with its next sequence number.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Dispatch>);
