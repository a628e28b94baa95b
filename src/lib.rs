//! spacebar: a Discord-compatible chat, voice and video server.
//!
//! `server` wires everything together; `http` holds the REST surfaces (one folder per API area,
//! mirroring the URL), `gateway` the WebSocket entry and what sessions need from the database,
//! `voice` the voice gateway's WebSocket entry,
//! `db` the storage, `wire` the JSON shapes clients see, `credentials` tokens and passwords,
//! `events` what happened and who hears it, `cluster` how several nodes act as one, `rooms`
//! the standalone audio/video rooms service.
//! The actors (sessions, registries, the supervision tree) live in the `spacebar-actors` crate.

pub mod audit;
pub mod cdn;
pub mod cluster;
pub mod config;
pub mod credentials;
pub mod db;
pub mod error;
pub mod events;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod operators;
pub mod request_threads;
pub use spacebar_actors::permissions;
pub mod rights;
pub mod rooms;
pub mod server;
pub mod snowflake;
pub mod state;
pub mod storage;
pub mod tls;
pub mod voice;
pub mod wire;
