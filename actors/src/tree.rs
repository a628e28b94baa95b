//! The root of the supervision tree: starts the long-lived actors under `actix::Supervisor`
//! and hands out their addresses. Gateway sessions are started per WebSocket by the server
//! and find these through the addresses given here.

use actix::{Addr, Supervisor};

use crate::registry::SessionRegistry;

#[derive(Clone)]
pub struct Tree {
    pub sessions: Addr<SessionRegistry>,
}

impl Tree {
    /// Starts the tree on the current actix system.
    pub fn start() -> Self {
        Self {
            sessions: Supervisor::start(|_| SessionRegistry::default()),
        }
    }
}
