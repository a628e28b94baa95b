//! What clients see: the JSON shapes of Discord's API, built from the storage models in `db`.
//! Snowflakes are strings on the wire.

pub mod application;
pub mod expression;
pub mod guild;
pub mod invite;
pub mod message;
pub mod settings;
pub mod user;
pub mod webhook;
