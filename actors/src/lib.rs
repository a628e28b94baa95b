//! The supervision tree and the actors of the spacebar server.
//!
//! Nothing here knows HTTP routing or the database: actors get what they need from the server
//! through the small traits they define ([`session::SessionBackend`]) and talk to each other
//! with messages. See `DESIGN.md` for the shape.

pub mod call;
pub mod dispatch;
pub mod event_name;
pub mod expiring;
pub mod guild;
pub mod intents;
pub mod interest;
pub mod outlet;
pub mod permissions;
pub mod presence;
pub mod registry;
pub mod rooms;
pub mod session;
pub mod supervisor;
pub mod sync;
pub mod tree;
pub mod voice;
pub mod websocket;

pub use dispatch::{Deliver, Dispatch};
pub use event_name::EventName;
pub use registry::SessionRegistry;
pub use tree::Tree;
