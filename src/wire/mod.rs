//! What clients see: the JSON shapes of Discord's API, built from the storage models in `db`.
//! Snowflakes are strings on the wire.

pub mod guild;
pub mod settings;
pub mod user;
