//! Where an actor's messages to a socket go: the socket actor's mailbox, with a count of the
//! bytes waiting there. A client that stops reading stops its socket actor from taking them (the
//! socket is full), so the count is what that client pins; the sender closes it past a byte
//! budget, however few or many messages that is. The gateway's sessions and the rooms service's
//! rooms both send through one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::dev::SendError;
use actix::{Message, Recipient};

/// A message's weight against an outlet's byte budget.
pub trait Weighed {
    fn weight(&self) -> usize;
}

pub struct Outlet<M: Message<Result = ()> + Send> {
    recipient: Recipient<M>,
    /// Bytes of messages sent and not yet handed to the socket (shared with the socket actor).
    queued: Arc<AtomicUsize>,
    /// The socket's span: what the sender logs about it is logged in it.
    span: tracing::Span,
}

impl<M: Message<Result = ()> + Send> Clone for Outlet<M> {
    fn clone(&self) -> Self {
        Self {
            recipient: self.recipient.clone(),
            queued: self.queued.clone(),
            span: self.span.clone(),
        }
    }
}

impl<M: Message<Result = ()> + Send + Weighed> Outlet<M> {
    pub fn new(recipient: Recipient<M>, queued: Arc<AtomicUsize>, span: tracing::Span) -> Self {
        Self {
            recipient,
            queued,
            span,
        }
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Bytes waiting for the socket actor.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether `weight` more bytes would pass `budget`. One message always fits an empty queue,
    /// however large: past the budget, the client is not keeping up.
    pub fn over(&self, weight: usize, budget: usize) -> bool {
        let queued = self.queued();
        queued > 0 && queued.saturating_add(weight) > budget
    }

    pub fn do_send(&self, message: M) {
        self.queued.fetch_add(message.weight(), Ordering::Relaxed);
        self.recipient.do_send(message);
    }

    pub fn try_send(&self, message: M) -> Result<(), SendError<M>> {
        // Counted before it is sent: the socket actor may take it at once, on another thread.
        let weight = message.weight();
        self.queued.fetch_add(weight, Ordering::Relaxed);
        self.recipient.try_send(message).inspect_err(|_| {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
        })
    }
}

/// What the socket actor calls once it has handed `message` to the socket.
pub fn taken(queued: &AtomicUsize, message: &impl Weighed) {
    queued.fetch_sub(message.weight(), Ordering::Relaxed);
}
