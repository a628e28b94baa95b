//! The integration tests: one binary, so the whole stack links once. Every test starts its own
//! server on its own database (cloned from a migrated template in a throwaway PostgreSQL
//! cluster the harness starts) and talks to it over real HTTP and WebSocket connections.

// A failed unwrap in a test is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod accounts;
mod admin;
mod audit_log;
mod bad_input_sweep;
mod bots;
mod cdn;
mod client_libraries;
mod cluster;
mod cluster_bots;
mod cluster_calls;
mod cluster_chat;
mod cluster_failover;
mod cluster_nodes;
mod cluster_ownership;
mod cluster_presence;
mod cluster_rate_limits;
mod cluster_rooms;
mod cluster_voice;
mod cluster_voice_states;
mod commands;
mod discord_py;
mod discovery;
mod embedded;
mod fermi;
mod gateway;
mod gateway_members;
mod guilds;
mod hostile_cdn;
mod hostile_edge;
mod hostile_input;
mod hostile_pool;
mod hostile_rules;
mod intents;
mod interactions;
mod messages;
mod moderation;
mod operating;
mod presence;
mod rate_limits;
mod rooms_api;
mod rooms_browser;
mod rooms_media;
mod search;
mod social;
mod tls;
mod upgrades;
mod users;
mod voice_media;
mod voice_signalling;
mod webhooks;
