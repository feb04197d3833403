//! `hookrelay-bench`: the benchmark harness.
//!
//! One `trial` plays the alert API and the chat services on loopback, starts
//! the relay under test as a child process (pinned with `taskset` to its own
//! core), drives Sekoia v2 events at its hook URL with a given count and
//! concurrency, and prints one JSON line: accepted/s, accept latency
//! p50/p99, delivered/s, end-to-end latency p50/p99 (webhook sent → chat
//! service received), lost and duplicated deliveries, the relay's peak RSS.
//!
//! Systems: `hookrelay` (the real daemon, durable spool with sync=full),
//! `hookrelay-normal` (sync=normal), `hookrelay-tmpfs` (the spool on a
//! RAM disk: the same path with durability taken out), `reference` (the FastAPI handler users
//! run today; a third party's script, outside this repository: given with
//! `--reference-dir`, skipped with a message without it) and `ceiling` (`hookrelay-bench ceiling`: a minimal in-memory
//! relay — no durability, no retries, one fixed message — that marks what
//! this machine can do at all).
//!
//! `report` turns the JSON lines into the tables of BENCHMARKS.md.
//! `scripts/bench.sh` runs the whole matrix.

mod args;
mod backlog;
mod ceiling;
mod common;
mod console;
mod fakes;
mod flood;
mod pg;
mod relay;
mod report;
mod storm;
mod trial;

use clap::{Parser, Subcommand};
use serde_json::Value;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hookrelay-bench",
    about = "Benchmark harness for hookrelay and its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one trial against one system and print a JSON line.
    Trial(args::TrialArgs),
    /// The ceiling: a minimal in-memory relay (no durability, no retries).
    Ceiling {
        #[arg(long)]
        port: u16,
        /// Alert API base URL.
        #[arg(long)]
        api: String,
        /// Chat webhook URLs, each gets every event.
        #[arg(long, num_args = 1..)]
        chat: Vec<String>,
        /// The durable ceiling: store each event in this SQLite file
        /// (group commit, fsync) before answering, mark it done after.
        #[arg(long)]
        spool: Option<PathBuf>,
    },
    /// Print the Markdown tables for a results file (JSON lines).
    Report { results: PathBuf },
    /// A connection flood against a running daemon, with a legitimate
    /// sender measured meanwhile (JSON line).
    Flood(flood::FloodArgs),
    /// The web console's pages over a spool of many events (JSON line).
    Console(console::ConsoleArgs),
    /// The chat service down while many events arrive, then a restart with
    /// that backlog (JSON line).
    Backlog(backlog::BacklogArgs),
    /// An alert storm against one rate-limited, digesting Teams
    /// destination whose service answers 429 now and then (JSON line).
    Storm(storm::StormArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Trial(args) => {
            if args.system == "reference" {
                if let Some(why) = args::reference_missing(&args.reference) {
                    eprintln!("{why}");
                    return Ok(());
                }
            }
            let result = rt.block_on(trial::trial(args))?;
            println!("{result}");
            if result["ok"] != Value::Bool(true) {
                eprintln!(
                    "FAILED: lost={} duplicates={} rejected={}",
                    result["lost"], result["duplicates"], result["rejected"]
                );
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Ceiling {
            port,
            api,
            chat,
            spool,
        } => rt.block_on(ceiling::ceiling(port, api, chat, spool)),
        Command::Report { results } => report::report(&results),
        Command::Flood(args) => {
            let result = rt.block_on(flood::flood(args))?;
            println!("{result}");
            Ok(())
        }
        Command::Console(args) => {
            let result = rt.block_on(console::console(args))?;
            println!("{result}");
            Ok(())
        }
        Command::Backlog(args) => {
            let result = rt.block_on(backlog::backlog(args))?;
            println!("{result}");
            Ok(())
        }
        Command::Storm(args) => {
            let result = rt.block_on(storm::storm(args))?;
            println!("{result}");
            Ok(())
        }
    }
}
