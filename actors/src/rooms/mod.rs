//! Rooms: the standalone audio/video rooms service (no Discord accounts), on the same SFU as
//! voice. A participant joins with a room token whose [`Grants`] say what they may do.

pub mod grants;

pub use grants::{Grants, Source};
