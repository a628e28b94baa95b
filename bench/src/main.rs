//! `spacebar-bench`: load tools that can be pointed at any Discord-compatible
//! server (ours, the TypeScript Spacebar server, ...).
//!
//! Subcommands:
//! - `gateway`: register users over REST, open many gateway sessions at a fixed
//!   rate, measure IDENTIFY->READY latency, hold the sessions idle (heartbeating)
//!   and report the server's memory per idle session.
//! - `fanout`: members of a few guilds each hold a gateway session while
//!   messages are posted over REST at a fixed rate; measures the latency from
//!   POST to MESSAGE_CREATE at every recipient.
//! - `ready`: IDENTIFY -> READY latency and READY's size for a user in many
//!   big guilds.
//! - `resume`: a resume storm: every session drops its socket at once while
//!   messages flow, reconnects and RESUMEs; time until all are back, and a
//!   check that no dispatch was missed, repeated or reordered.
//! - `cdn`: requests/s and p99 for a cached avatar variant and a 1 MiB
//!   attachment under concurrent load; resize throughput.
//! - `search`: message search latency in a guild of a million messages (written straight
//!   into the server's PostgreSQL), for several kinds of query.
//! - `presence`: a presence storm: the members of one guild come online; PRESENCE_UPDATEs
//!   received in total, IDENTIFY -> READY while it lasts, memory per idle session.
//! - `register`: registrations per second, sequential and concurrent (password hashing).
//! - `voice`: a voice room of speakers and listeners on real WebRTC peers; the
//!   SFU's forwarded packets/s per core of its CPU, loss, latency, memory.
//! - `rooms`: the same load through the rooms service (`/rooms/ws`): publishers and
//!   subscribers, the same figures, so the two surfaces compare.
//! - `floor`: no server: one thread writes WebSocket frames round-robin over many loopback
//!   TCP connections, one `write` per frame, then `--batch` frames per `writev`; its CPU per
//!   frame is the floor under a server's CPU per gateway delivery on this machine.

mod cdn;
mod fanout;
mod floor;
mod gateway;
mod pool;
mod ready;
mod register;
mod rest;
mod resume;
mod rooms;
mod search;
mod session;
mod setup;
mod stats;
mod storm;
mod sys;
mod target;
mod voice;
mod zlib;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Boxed error type: this is a CLI tool, errors are printed and end the run.
pub type BoxError = Box<dyn std::error::Error>;

#[derive(Parser)]
#[command(
    name = "spacebar-bench",
    version,
    about = "Load tools for Discord-compatible servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open many idle gateway sessions and measure READY latency, heartbeat
    /// acks and the server's memory per idle session.
    Gateway(gateway::GatewayArgs),
    /// Post messages at a fixed rate into guilds whose members all hold a
    /// gateway session; measure POST -> MESSAGE_CREATE latency at every
    /// recipient and the deliveries per second.
    Fanout(fanout::FanoutArgs),
    /// Measure IDENTIFY -> READY and READY's size for a user in many guilds
    /// with many members.
    Ready(ready::ReadyArgs),
    /// Resume storm: every session drops its socket at once while messages
    /// flow, reconnects and RESUMEs; measure the time until all have resumed
    /// and check that no dispatch was missed, repeated or reordered.
    Resume(resume::ResumeArgs),
    /// Serve a cached 128 px avatar and a 1 MiB attachment under concurrent
    /// load (requests/s, p99); resize throughput of a 1024² PNG to 128 px.
    Cdn(cdn::CdnArgs),
    /// Search latency (p50/p99) in one guild filled with a million messages, for a common
    /// word, a rare word, an author, has:file and a word with an author.
    Search(search::SearchArgs),
    /// Presence storm: the members of one guild come online; count the PRESENCE_UPDATEs
    /// received, time IDENTIFY -> READY while it lasts, memory per idle session.
    Presence(storm::StormArgs),
    /// Registrations per second, one at a time and concurrently (password hashing).
    Register(register::RegisterArgs),
    /// A voice room of speakers and listeners (real WebRTC peers): forwarded
    /// RTP packets/s per core of server CPU, loss, latency, memory per participant.
    Voice(voice::VoiceArgs),
    /// The voice run's load through the rooms service (`/rooms/ws`): publishers and
    /// subscribers of one room; the same figures, so the two surfaces compare.
    Rooms(rooms::RoomsArgs),
    /// No server: write WebSocket frames round-robin over many loopback TCP connections,
    /// one write per frame and then several per writev; CPU per frame of the writing thread,
    /// the reading thread and the process (the floor under CPU per delivery).
    Floor(floor::FloorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gateway(args) => gateway::run(args),
        Command::Fanout(args) => fanout::run(args),
        Command::Ready(args) => ready::run(args),
        Command::Resume(args) => resume::run(args),
        Command::Cdn(args) => cdn::run(args),
        Command::Search(args) => search::run(args),
        Command::Presence(args) => storm::run(args),
        Command::Register(args) => register::run(args),
        Command::Voice(args) => voice::run(args),
        Command::Rooms(args) => rooms::run(args),
        Command::Floor(args) => floor::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
