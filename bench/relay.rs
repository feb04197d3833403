//! Starting the system under test as child processes pinned with
//! `taskset` to the relay's core: hookrelay (SQLite, on disk or in RAM;
//! or replicas on PostgreSQL), the reference handler, or the ceilings.

use crate::args::TrialArgs;
use crate::common::{free_port, HOOK_ID};
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The relay's processes (several for hookrelay-pg replicas), their hook
/// URLs, and the RAM disk to keep alive while they run.
pub struct Relay {
    pub children: Vec<Child>,
    pub urls: Vec<String>,
    /// hookrelay-tmpfs: the spool's directory in `/dev/shm`, removed on drop.
    pub _ram_dir: Option<tempfile::TempDir>,
}

fn hook_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/hooks/{HOOK_ID}")
}

/// A command pinned to the relay's core, its output discarded.
fn pinned(args: &TrialArgs) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &args.relay_cpu])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Starts the system under test; `database` is the PostgreSQL URL for
/// hookrelay-pg.
pub fn start_relay(
    args: &TrialArgs,
    upstream: SocketAddr,
    dir: &Path,
    database: Option<&str>,
) -> anyhow::Result<Relay> {
    if args.system == "hookrelay-pg" {
        let database = database.context("hookrelay-pg needs --pg-url")?;
        return start_replicas(args, upstream, dir, database);
    }
    let port = free_port()?;
    let mut cmd = pinned(args);
    let ram_dir = match args.system.as_str() {
        "hookrelay" | "hookrelay-normal" | "hookrelay-tmpfs" => {
            hookrelay_sqlite(args, upstream, dir, port, &mut cmd)?
        }
        "reference" => {
            reference(args, upstream, port, &mut cmd)?;
            None
        }
        "ceiling" | "ceiling-durable" => {
            ceiling(args, upstream, dir, port, &mut cmd)?;
            None
        }
        other => bail!("unknown system {other:?}"),
    };
    let child = cmd
        .spawn()
        .context("starting the relay (is taskset installed?)")?;
    Ok(Relay {
        children: vec![child],
        urls: vec![hook_url(port)],
        _ram_dir: ram_dir,
    })
}

/// hookrelay-pg: `--replicas` daemons on one database.
fn start_replicas(
    args: &TrialArgs,
    upstream: SocketAddr,
    dir: &Path,
    database: &str,
) -> anyhow::Result<Relay> {
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for r in 0..args.pg.replicas.max(1) {
        let port = free_port()?;
        let path = dir.join(format!("replica{r}.toml"));
        let store = format!("[store]\nkind = \"postgres\"\nurl = \"{database}\"\n");
        std::fs::write(&path, hookrelay_config(args, upstream, port, &store))?;
        let child = pinned(args)
            .arg(&args.hookrelay)
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .spawn()
            .context("starting a replica (is taskset installed?)")?;
        children.push(child);
        urls.push(hook_url(port));
    }
    Ok(Relay {
        children,
        urls,
        _ram_dir: None,
    })
}

/// hookrelay on SQLite: `sync = "full"` (hookrelay), `"normal"`
/// (hookrelay-normal), or the spool on a RAM disk (hookrelay-tmpfs: the
/// same path with durability taken out, to isolate what the disk costs).
fn hookrelay_sqlite(
    args: &TrialArgs,
    upstream: SocketAddr,
    dir: &Path,
    port: u16,
    cmd: &mut Command,
) -> anyhow::Result<Option<tempfile::TempDir>> {
    let sync = if args.system == "hookrelay" {
        "full"
    } else {
        "normal"
    };
    let mut ram_dir = None;
    let spool_dir = if args.system == "hookrelay-tmpfs" {
        let shm = tempfile::tempdir_in("/dev/shm")?;
        let path = shm.path().to_path_buf();
        ram_dir = Some(shm);
        path
    } else {
        dir.to_path_buf()
    };
    let store = format!(
        "[store]\npath = \"{}\"\nsync = \"{sync}\"\n",
        spool_dir.join("spool.db").display()
    );
    let path = dir.join("hookrelay.toml");
    std::fs::write(&path, hookrelay_config(args, upstream, port, &store))?;
    cmd.arg(&args.hookrelay)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn");
    Ok(ram_dir)
}

/// The reference handler under uvicorn (one process).
fn reference(
    args: &TrialArgs,
    upstream: SocketAddr,
    port: u16,
    cmd: &mut Command,
) -> anyhow::Result<()> {
    if args.destinations != 1 {
        bail!("the reference handler supports one destination");
    }
    if let Some(why) = crate::args::reference_missing(&args.reference) {
        bail!("{why}");
    }
    let dir = args
        .reference
        .reference_dir
        .as_ref()
        .context("--reference-dir")?;
    let up = format!("http://{upstream}");
    cmd.arg(args.reference.venv.join("bin/uvicorn"))
        .args([
            "main:app",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-level",
            "warning",
            "--app-dir",
        ])
        .arg(dir)
        .env("APIKEY", "bench")
        .env("API_URL", format!("{up}/api"))
        .env("TEAMS_WEBHOOK_URL", format!("{up}/chat/0"));
    Ok(())
}

/// The ceilings: this harness itself, `hookrelay-bench ceiling`.
fn ceiling(
    args: &TrialArgs,
    upstream: SocketAddr,
    dir: &Path,
    port: u16,
    cmd: &mut Command,
) -> anyhow::Result<()> {
    let up = format!("http://{upstream}");
    cmd.arg(std::env::current_exe()?).arg("ceiling");
    if args.system == "ceiling-durable" {
        cmd.arg("--spool").arg(dir.join("ceiling.db"));
    }
    cmd.args([
        "--port",
        &port.to_string(),
        "--api",
        &format!("{up}/api"),
        "--chat",
    ]);
    for d in 0..args.destinations {
        cmd.arg(format!("{up}/chat/{d}"));
    }
    Ok(())
}

/// hookrelay's config for a trial, with the given `[store]` section.
fn hookrelay_config(args: &TrialArgs, upstream: SocketAddr, port: u16, store: &str) -> String {
    let up = format!("http://{upstream}");
    let dests: Vec<String> = (0..args.destinations).map(|d| format!("d{d}")).collect();
    let mut config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:0"
{store}
[delivery]
concurrency = {concurrency}
[origins.sekoia]
kind = "sekoia"
base_url = "{up}/api"
api_key = "bench"
concurrency = 256
[hooks.soc]
id = "{HOOK_ID}"
origin = "sekoia"
[[routes]]
name = "all"
to = {dests:?}
"#,
        // Enough requests in flight to cover the chat service's latency.
        concurrency =
            args.dest_concurrency
                .unwrap_or(if args.chat_delay_ms > 0 { 256 } else { 32 }),
    );
    for (d, name) in dests.iter().enumerate() {
        config.push_str(&format!(
            "[destinations.{name}]\nkind = \"teams\"\nurl = \"{up}/chat/{d}\"\n"
        ));
    }
    config
}
