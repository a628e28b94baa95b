//! Where a session's dispatches go: its connection's mailbox, with a count of the bytes waiting
//! there. A client that stops reading stops its connection from taking them (the socket is
//! full), so the count is what that client pins; the session closes it past a byte budget,
//! however few or many dispatches that is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::dev::SendError;
use actix::Recipient;

use super::Outbound;

#[derive(Clone)]
pub struct Outlet {
    recipient: Recipient<Outbound>,
    /// Bytes of live dispatches sent and not yet handed to the socket (shared with the
    /// connection).
    queued: Arc<AtomicUsize>,
    /// The connection's span: what the session logs about it is logged in it.
    span: tracing::Span,
}

impl Outlet {
    pub fn new(
        recipient: Recipient<Outbound>,
        queued: Arc<AtomicUsize>,
        span: tracing::Span,
    ) -> Self {
        Self {
            recipient,
            queued,
            span,
        }
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Bytes waiting for the connection.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn do_send(&self, outbound: Outbound) {
        self.queued.fetch_add(size(&outbound), Ordering::Relaxed);
        self.recipient.do_send(outbound);
    }

    pub fn try_send(&self, outbound: Outbound) -> Result<(), SendError<Outbound>> {
        // Counted before it is sent: the connection may take it at once, on another thread.
        let size = size(&outbound);
        self.queued.fetch_add(size, Ordering::Relaxed);
        self.recipient.try_send(outbound).inspect_err(|_| {
            self.queued.fetch_sub(size, Ordering::Relaxed);
        })
    }
}

/// What the connection calls once it has handed `outbound` to the socket.
pub fn taken(queued: &AtomicUsize, outbound: &Outbound) {
    queued.fetch_sub(size(outbound), Ordering::Relaxed);
}

/// The bytes an outbound message counts for: a live dispatch's payload.
fn size(outbound: &Outbound) -> usize {
    match outbound {
        Outbound::Dispatch { dispatch, .. } => dispatch.data().len(),
        Outbound::Owed { .. } | Outbound::Close(_) | Outbound::Reconnect => 0,
    }
}
