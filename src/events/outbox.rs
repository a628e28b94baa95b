//! One change's outbox: what a write owes others once it has committed. A handler validates,
//! makes a [`Change`], says what it will tell ([`Change::emit`]), record
//! ([`Change::audit`]) and throw away ([`Change::remove_files`]), and runs its writes with
//! [`Change::commit`]. The writes and the audit entries commit in one transaction; then the
//! audit entries' events, the events and the file removals happen, in that order. If the
//! transaction fails, or the handler returns before committing, none of them happen.
//!
//! Events made from what the writes returned are emitted after the commit and go out at once.

use std::future::Future;

use diesel_async::AsyncConnection;

use super::Event;
use crate::audit::Entry;
use crate::db::Connection;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::storage::Key;

/// What one transaction owes others.
#[must_use = "a change tells no one until it commits or is published"]
pub struct Change<'a> {
    state: &'a AppState,
    events: Vec<Event>,
    audits: Vec<Entry>,
    files: Vec<Key>,
    committed: bool,
}

impl<'a> Change<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Self {
            state,
            events: Vec::new(),
            audits: Vec::new(),
            files: Vec::new(),
            committed: false,
        }
    }

    /// A change that writes `entry` to the audit log with it (see [`Change::audit`]).
    pub fn audited(state: &'a AppState, entry: Entry) -> Self {
        let mut change = Self::new(state);
        change.audit(entry);
        change
    }

    /// Tells this event after the commit (at once, if it already committed).
    pub fn emit(&mut self, event: Event) {
        if self.committed {
            self.state.publish(&event);
        } else {
            self.events.push(event);
        }
    }

    /// Writes this audit log entry with the change, and tells it after.
    pub fn audit(&mut self, entry: Entry) {
        debug_assert!(!self.committed, "an audit entry is written with its change");
        self.audits.push(entry);
    }

    /// Removes these stored files once the change committed (they belonged to what it deleted).
    pub fn remove_files(&mut self, keys: impl IntoIterator<Item = Key>) {
        debug_assert!(!self.committed, "files are named before the commit");
        self.files.extend(keys);
    }

    /// Runs `writes` and writes the audit entries in one transaction; once it committed, tells
    /// the audit entries, the events, and removes the files.
    pub async fn commit<T, F>(&mut self, conn: &mut Connection, writes: F) -> Result<T, ApiError>
    where
        T: Send,
        for<'r> F: AsyncFnOnce(&'r mut Connection) -> Result<T, ApiError>
            + Writes<&'r mut Connection, Result<T, ApiError>, Fut: Send>
            + Send,
    {
        let audits = &self.audits;
        let done = conn
            .transaction(async |conn| {
                let done = writes(conn).await?;
                Entry::write_all(audits, conn).await?;
                Ok::<_, ApiError>(done)
            })
            .await?;
        self.published().await;
        Ok(done)
    }

    /// For a change with nothing to write (TYPING_START, a change the actors alone hold):
    /// tells the events now.
    pub async fn publish(mut self) {
        self.published().await;
    }

    async fn published(&mut self) {
        self.committed = true;
        for entry in self.audits.drain(..) {
            self.state.publish(&entry.event());
        }
        for event in self.events.drain(..) {
            self.state.publish(&event);
        }
        for key in self.files.drain(..) {
            self.state.cdn.remove(&key).await;
        }
    }
}

/// The writes of a [`Change`]: an async closure over the connection whose future is `Send`
/// (named this way, as diesel-async does, because a bound on an async closure's future cannot
/// be written directly yet).
pub trait Writes<C, R>: AsyncFnOnce(C) -> R + FnOnce(C) -> <Self as Writes<C, R>>::Fut {
    type Fut: Future<Output = R>;
}

impl<F, C, Fut, R> Writes<C, R> for F
where
    F: AsyncFnOnce(C) -> R + FnOnce(C) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}
