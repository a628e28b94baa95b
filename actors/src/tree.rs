//! The root of the supervision tree: starts the long-lived actors under `actix::Supervisor`
//! and hands out their addresses. Gateway sessions are started per WebSocket by the server
//! and find these through the addresses given here.

use std::sync::Arc;

use actix::{Addr, Supervisor};

use crate::guild::{GuildRegistry, GuildStore};
use crate::registry::SessionRegistry;
use crate::voice::{Admissions, Media, Voice};

#[derive(Clone)]
pub struct Tree {
    pub sessions: Addr<SessionRegistry>,
    pub guilds: Addr<GuildRegistry>,
    /// Who may connect to which voice room: written by the gateway, read by the voice gateway.
    pub admissions: Admissions,
    /// The voice gateway's rooms and the media runtime.
    pub voice: Voice,
}

impl Tree {
    /// Starts the tree on the current actix system; guild actors get `guild_threads` arbiters,
    /// voice rooms use `media`.
    pub fn start(store: Arc<dyn GuildStore>, guild_threads: usize, media: Media) -> Self {
        let admissions = Admissions::default();
        let guild_admissions = admissions.clone();
        let guilds =
            Supervisor::start(move |_| GuildRegistry::new(store, guild_threads, guild_admissions));
        let registry_guilds = guilds.clone();
        Self {
            sessions: Supervisor::start(move |_| {
                SessionRegistry::with_guilds(registry_guilds.clone())
            }),
            guilds,
            admissions,
            voice: Voice::start(media),
        }
    }
}
