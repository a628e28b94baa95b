//! Where an actor's messages to a socket go, with a count of the bytes waiting there. A client
//! that stops reading stops its socket actor from taking them (the socket is full), so the
//! count is what that client pins; the sender closes it past a byte budget, however few or many
//! messages that is. The gateway's sessions and the rooms service's rooms both send through one.
//!
//! Two kinds: the socket actor's mailbox (the rooms service), or a [`Queue`] the socket actor
//! drains a batch at a time (the gateway). A queue costs a delivery no envelope and no
//! allocation, and a batch taken in one go leaves in one write to the socket.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix::dev::SendError;
use actix::{Message, Recipient};
use futures_util::task::AtomicWaker;
use futures_util::Stream;

/// A message's weight against an outlet's byte budget.
pub trait Weighed {
    fn weight(&self) -> usize;
}

pub struct Outlet<M: Message<Result = ()> + Send> {
    target: Target<M>,
    /// Bytes of messages sent and not yet handed to the socket (shared with the socket actor).
    queued: Arc<AtomicUsize>,
    /// The socket's span: what the sender logs about it is logged in it.
    span: tracing::Span,
}

impl<M: Message<Result = ()> + Send> Clone for Outlet<M> {
    fn clone(&self) -> Self {
        let target = match &self.target {
            Target::Mailbox(recipient) => Target::Mailbox(recipient.clone()),
            Target::Queue(queue) => Target::Queue(queue.clone()),
        };
        Self {
            target,
            queued: self.queued.clone(),
            span: self.span.clone(),
        }
    }
}

impl<M: Message<Result = ()> + Send + Weighed> Outlet<M> {
    /// Through `recipient`'s mailbox; its actor calls [`taken`] for each message it handles.
    pub fn new(recipient: Recipient<M>, queued: Arc<AtomicUsize>, span: tracing::Span) -> Self {
        Self {
            target: Target::Mailbox(recipient),
            queued,
            span,
        }
    }

    /// Through a queue of at most `capacity` messages (beyond it, [`Outlet::try_send`] is
    /// refused), which the socket actor reads as a stream of batches ([`Drain`]).
    pub fn queue(capacity: usize, span: tracing::Span) -> (Self, Drain<M>) {
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            waker: AtomicWaker::new(),
            closed: AtomicBool::new(false),
            capacity,
        });
        let queued = Arc::<AtomicUsize>::default();
        let drain = Drain {
            queue: queue.clone(),
            queued: queued.clone(),
        };
        let outlet = Self {
            target: Target::Queue(queue),
            queued,
            span,
        };
        (outlet, drain)
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

    /// Sends whatever the queue's length (never refused for being full).
    pub fn do_send(&self, message: M) {
        // Counted before it is sent: the socket actor may take it at once, on another thread.
        let weight = message.weight();
        self.queued.fetch_add(weight, Ordering::Relaxed);
        let sent = match &self.target {
            Target::Mailbox(recipient) => {
                recipient.do_send(message);
                Ok(())
            }
            Target::Queue(queue) => queue.push(message, false),
        };
        if sent.is_err() {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
        }
    }

    pub fn try_send(&self, message: M) -> Result<(), SendError<M>> {
        let weight = message.weight();
        self.queued.fetch_add(weight, Ordering::Relaxed);
        let sent = match &self.target {
            Target::Mailbox(recipient) => recipient.try_send(message),
            Target::Queue(queue) => queue.push(message, true),
        };
        sent.inspect_err(|_| {
            self.queued.fetch_sub(weight, Ordering::Relaxed);
        })
    }
}

/// What the socket actor calls once it has handed `message` to the socket.
pub fn taken(queued: &AtomicUsize, message: &impl Weighed) {
    queued.fetch_sub(message.weight(), Ordering::Relaxed);
}

enum Target<M: Message<Result = ()> + Send> {
    Mailbox(Recipient<M>),
    Queue(Arc<Queue<M>>),
}

/// Messages on their way to one socket actor, from senders on any thread.
struct Queue<M> {
    items: Mutex<VecDeque<M>>,
    /// The socket actor's task, woken by the first message after it took a batch.
    waker: AtomicWaker,
    /// Set when the socket actor is gone: nothing is queued any more.
    closed: AtomicBool,
    capacity: usize,
}

impl<M> Queue<M> {
    fn push(&self, message: M, bounded: bool) -> Result<(), SendError<M>> {
        {
            let mut items = crate::sync::lock(&self.items);
            // Looked at under the lock: nothing is queued after the drain's last clear.
            if self.closed.load(Ordering::Relaxed) {
                return Err(SendError::Closed(message));
            }
            if bounded && items.len() >= self.capacity {
                return Err(SendError::Full(message));
            }
            items.push_back(message);
        }
        self.waker.wake();
        Ok(())
    }
}

/// The socket actor's end of a queue: every message waiting, oldest first, as one batch. It
/// never ends (`add_stream` would stop the actor); dropping it closes the queue.
pub struct Drain<M> {
    queue: Arc<Queue<M>>,
    queued: Arc<AtomicUsize>,
}

impl<M: Weighed> Stream for Drain<M> {
    type Item = VecDeque<M>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Registered before looking: a message pushed after the look wakes this task.
        self.queue.waker.register(cx.waker());
        let batch = std::mem::take(&mut *crate::sync::lock(&self.queue.items));
        if batch.is_empty() {
            return Poll::Pending;
        }
        let weight: usize = batch.iter().map(Weighed::weight).sum();
        self.queued.fetch_sub(weight, Ordering::Relaxed);
        Poll::Ready(Some(batch))
    }
}

impl<M> Drop for Drain<M> {
    fn drop(&mut self) {
        let mut items = crate::sync::lock(&self.queue.items);
        self.queue.closed.store(true, Ordering::Relaxed);
        items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    #[derive(Message, Debug, PartialEq)]
    #[rtype(result = "()")]
    struct Note(usize);

    impl Weighed for Note {
        fn weight(&self) -> usize {
            self.0
        }
    }

    fn next(drain: &mut Drain<Note>) -> Option<Vec<usize>> {
        let mut cx = Context::from_waker(noop_waker_ref());
        match Pin::new(drain).poll_next(&mut cx) {
            Poll::Ready(Some(batch)) => Some(batch.into_iter().map(|note| note.0).collect()),
            Poll::Ready(None) => panic!("a drain never ends"),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_queue_hands_over_everything_waiting_as_one_batch_in_order() {
        let (outlet, mut drain) = Outlet::queue(3, tracing::Span::none());
        assert_eq!(next(&mut drain), None);
        outlet.do_send(Note(10));
        outlet.clone().try_send(Note(20)).unwrap();
        outlet.do_send(Note(30));
        assert_eq!(outlet.queued(), 60);
        assert_eq!(next(&mut drain), Some(vec![10, 20, 30]));
        assert_eq!(outlet.queued(), 0, "taken by the socket actor");
        assert_eq!(next(&mut drain), None);
        outlet.do_send(Note(1));
        assert_eq!(next(&mut drain), Some(vec![1]));
    }

    #[test]
    fn a_full_queue_refuses_try_send_but_not_do_send() {
        let (outlet, mut drain) = Outlet::queue(2, tracing::Span::none());
        outlet.try_send(Note(1)).unwrap();
        outlet.try_send(Note(2)).unwrap();
        assert!(matches!(
            outlet.try_send(Note(3)),
            Err(SendError::Full(Note(3)))
        ));
        assert_eq!(outlet.queued(), 3, "what is refused is not counted");
        assert!(outlet.over(1, 3));
        // What is owed whatever the bound (a close, READY) still goes.
        outlet.do_send(Note(0));
        assert_eq!(next(&mut drain), Some(vec![1, 2, 0]));
    }

    #[test]
    fn nothing_is_queued_once_the_socket_actor_is_gone() {
        let (outlet, drain) = Outlet::queue(8, tracing::Span::none());
        outlet.do_send(Note(5));
        drop(drain);
        assert!(matches!(
            outlet.try_send(Note(6)),
            Err(SendError::Closed(Note(6)))
        ));
        outlet.do_send(Note(7));
        assert_eq!(outlet.queued(), 5, "only what was queued before");
    }
}
