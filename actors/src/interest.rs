//! What this node wants to hear of from the others. In cluster mode a node hears a guild's or a
//! user's events only while it holds a session that needs them (the guild's actor, the user's
//! sessions say so); on one node every event is local already and none of this does anything.

use futures_util::future::BoxFuture;

/// A stream of events a node can hear: a guild's, or one user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Guild(i64),
    User(i64),
}

/// Where a node says what it wants to hear (the server's cluster bus implements it).
pub trait Interest: Send + Sync + 'static {
    /// Whether events come from other nodes at all; a single process answers false.
    fn shared(&self) -> bool;

    /// Starts hearing `topic`; resolves once its events arrive (so state read after it misses
    /// nothing), or once hearing it has failed and been left to the bus to recover.
    fn watch(&self, topic: Topic) -> BoxFuture<'static, ()>;

    /// Stops hearing `topic`.
    fn unwatch(&self, topic: Topic);
}

/// One process: every event is local.
pub struct Alone;

impl Interest for Alone {
    fn shared(&self) -> bool {
        false
    }

    fn watch(&self, _: Topic) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }

    fn unwatch(&self, _: Topic) {}
}
