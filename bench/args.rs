//! The command line of `hookrelay-bench trial`: the system under test and
//! the scenario.

use std::path::PathBuf;

#[derive(clap::Args, Clone)]
pub struct TrialArgs {
    /// hookrelay | hookrelay-normal | hookrelay-tmpfs | hookrelay-pg | reference | ceiling | ceiling-durable
    #[arg(long)]
    pub system: String,
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Chat destinations per event.
    #[arg(long, default_value_t = 1)]
    pub destinations: usize,
    /// Alert API latency.
    #[arg(long, default_value_t = 0)]
    pub api_delay_ms: u64,
    /// Chat service latency.
    #[arg(long, default_value_t = 0)]
    pub chat_delay_ms: u64,
    /// Core for the relay under test (the harness should run on another).
    #[arg(long, default_value = "0")]
    pub relay_cpu: String,
    /// The hookrelay binary.
    #[arg(long, default_value = "target/release/hookrelay")]
    pub hookrelay: PathBuf,
    #[command(flatten)]
    pub reference: ReferenceArgs,
    #[command(flatten)]
    pub pg: PgArgs,
    /// Give up waiting for deliveries after this many seconds without progress.
    #[arg(long, default_value_t = 15)]
    pub stall_secs: u64,
    /// Requests in flight per destination in hookrelay's config (default:
    /// 32, or 256 when the chat service is slow).
    #[arg(long)]
    pub dest_concurrency: Option<usize>,
    /// Label for the scenario in reports.
    #[arg(long, default_value = "")]
    pub label: String,
}

/// The reference handler: Sekoia.io's FastAPI sample, a third party's
/// script that is not part of this repository.
#[derive(clap::Args, Clone)]
pub struct ReferenceArgs {
    /// The reference handler's directory (its `main.py`). Without it,
    /// `--system reference` is skipped with a message saying how to
    /// include it.
    #[arg(long)]
    pub reference_dir: Option<PathBuf>,
    /// The Python virtual environment with the handler's requirements
    /// (`uvicorn` in its `bin/`).
    #[arg(long, default_value = "target/bench-venv")]
    pub venv: PathBuf,
}

/// `hookrelay-pg`: several replicas on one PostgreSQL server.
#[derive(clap::Args, Clone)]
pub struct PgArgs {
    /// How many replicas share the database (senders go round-robin over
    /// them).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// A PostgreSQL server URL (an existing database, e.g. `postgres`);
    /// each trial creates and drops its own database there.
    #[arg(long)]
    pub pg_url: Option<String>,
    /// The PostgreSQL server's postmaster PID, to report the server's CPU
    /// per event (its backends included).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// Why the reference handler cannot run, in words that say how to
/// include it; `None` when it can.
pub fn reference_missing(args: &ReferenceArgs) -> Option<String> {
    let how = "it is Sekoia.io's FastAPI sample, not part of this repository: pass --reference-dir DIR (a directory with its main.py) and \
               install its requirements into --venv (scripts/bench.sh does both when \
               REFERENCE_DIR=DIR is set)";
    let Some(dir) = &args.reference_dir else {
        return Some(format!("the reference handler is skipped: {how}"));
    };
    let uvicorn = args.venv.join("bin/uvicorn");
    if !dir.join("main.py").exists() {
        return Some(format!(
            "the reference handler is skipped: no main.py in {}; {how}",
            dir.display()
        ));
    }
    if !uvicorn.exists() {
        return Some(format!(
            "the reference handler is skipped: {} not found; {how}",
            uvicorn.display()
        ));
    }
    None
}
