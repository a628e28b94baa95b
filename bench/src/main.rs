//! `spacebar-bench`: load tools that can be pointed at any Discord-compatible
//! server (ours, the TypeScript Spacebar server, ...).
//!
//! Subcommands:
//! - `gateway`: register users over REST, open many gateway sessions at a fixed
//!   rate, measure IDENTIFY->READY latency, hold the sessions idle (heartbeating)
//!   and report the server's memory per idle session.

mod gateway;
mod rest;
mod session;
mod stats;
mod sys;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gateway(args) => gateway::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
