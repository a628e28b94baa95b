//! A gateway dispatch, encoded once and shared by every session that receives it.

use std::sync::{Arc, OnceLock};

use actix::Message;
use bytes::Bytes;
use serde::Serialize;

use crate::session::zlib;

/// One gateway event (`op 0`): its name and its `d` payload, serialised once. Sessions add only
/// their own sequence number around it, and zlib sessions share one compressed copy of `d`.
#[derive(Debug)]
pub struct Dispatch {
    event: &'static str,
    data: Bytes,
    data_deflated: OnceLock<Bytes>,
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
            data_deflated: OnceLock::new(),
        }
    }

    pub fn event(&self) -> &'static str {
        self.event
    }

    /// The JSON text of `d`.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// `d` as self-contained deflate blocks ending in a sync flush, made on first use and then
    /// spliced unchanged into every zlib-stream session's frame.
    pub fn data_deflated(&self) -> &Bytes {
        self.data_deflated.get_or_init(|| zlib::deflate(&self.data))
    }
}

/// Hands a dispatch to a session, which frames it with its next sequence number.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<Dispatch>);
