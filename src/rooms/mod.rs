//! Rooms: the standalone audio/video rooms service — tokens for applications and guests, the
//! rooms API and the `/rooms/ws` signalling socket — on the SFU that serves voice. The room
//! actors live in `spacebar_actors::rooms`. Protocol: docs/rooms.md.

pub mod directory;
pub mod empty;
pub mod events;
pub mod keys;
pub mod page;
pub mod token;
pub mod webhooks;
pub mod ws;

pub use events::EventLog;
pub use token::{RoomClaims, RoomTokens};
pub use webhooks::Webhooks;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    ws::configure(cfg);
    page::configure(cfg);
}
