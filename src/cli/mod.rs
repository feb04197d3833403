//! The command line: argument definitions and one function per command.
//! Exit codes: 0 ok, 1 runtime or config error, 2 usage error (clap).

/// `println!` for what a command prints: when the reader has gone away (a
/// listing piped into `head`), the command ends quietly with exit 0, as
/// other command-line tools do, instead of panicking on the failed print.
/// Any other failure to write is an error (exit 1).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::output_failed(e)
        }
    }};
}

mod demo;
mod generate;
mod init;
mod inspect;
mod preview;
mod tenants;

use crate::app::App;
use crate::config::{self, Config};
use crate::telemetry::{init_logging, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

const DEFAULT_CONFIG: &str = "/etc/hookrelay/hookrelay.toml";

/// `0.1.0 (git 1a2b3c4d5e6f)`.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("BUILD_GIT_REV"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay",
    version = VERSION,
    about = "Relay Sekoia.io alert webhooks to Teams, Slack and Mattermost, enriched and durable."
)]
pub struct Cli {
    /// Log format: human-readable on a terminal, JSON otherwise (auto).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "HOOKRELAY_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--config PATH`, defaulting to $HOOKRELAY_CONFIG, then /etc/hookrelay/hookrelay.toml.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Configuration file [default: $HOOKRELAY_CONFIG, else /etc/hookrelay/hookrelay.toml]
    #[arg(long, short = 'c', env = "HOOKRELAY_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// Loads the config, printing every error (each naming its key).
    fn load(&self) -> Result<Config, ExitCode> {
        let path = self.path();
        // Templates are compiled here too, so their errors and warnings
        // are the configuration's.
        let loaded = config::load_file(&path).and_then(|mut config| {
            let (_, warnings) = crate::destinations::destinations(&config)?;
            config.warnings.extend(warnings);
            Ok(config)
        });
        loaded.map_err(|errors| {
            eprintln!("hookrelay: invalid configuration {}:", path.display());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            ExitCode::from(1)
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(ConfigArg),
    /// Write a first working configuration (one origin, hook, destination
    /// and route) and its credential files; never overwrites anything.
    Init(init::InitArgs),
    /// Validate the configuration (or, with --tenant, a tenant file against
    /// it): exit 0, or 1 with every error on stderr.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// A tenant fragment (TOML: origins, hooks, destinations, routes).
        #[arg(long)]
        tenant: Option<PathBuf>,
    },
    /// Tenants (with [admin] api_token and secrets_key_file): fragments of
    /// the configuration kept in the spool, applied without a reload.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Show hookrelay working, with no config and no network: a real daemon
    /// on loopback with a stub alert API and stub chat services.
    Demo {
        /// Port for the demo's hook listener (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Send the sample events, print what the chat services got, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Route an event and print each destination's request; sends nothing.
    Preview {
        #[command(flatten)]
        config: ConfigArg,
        /// The webhook body (JSON file).
        #[arg(long)]
        event: PathBuf,
        /// The alert object; without it the alert is fetched from the origin.
        #[arg(long)]
        alert: Option<PathBuf>,
        /// Evaluate routes as if the event came to this hook [default: the first hook].
        #[arg(long)]
        hook: Option<String>,
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
    },
    /// Send one test message to a destination and report the outcome.
    SendTest {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        destination: String,
    },
    /// Inspect and replay deliveries that failed permanently.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// The history: what arrived and what was sent where.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Silences: events matching one are stored and recorded, never sent
    /// (effective within a second, on every replica, daemon running or not).
    #[command(subcommand)]
    Silences(SilencesCommand),
    /// Exit 0 if the daemon's /healthz answers (for container healthchecks).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:9091/healthz")]
        url: String,
    },
    /// Apply spool migrations (also done at start).
    Migrate(ConfigArg),
    /// Tell the running daemon to reload its config (SIGHUP) and wait for
    /// its answer on the admin listener: exit 0 once applied, 1 if it
    /// rejected the file (its log says why; it keeps the previous one).
    /// For `ExecReload=` (systemd passes `$MAINPID`); needs no procps.
    Reload {
        #[command(flatten)]
        config: ConfigArg,
        /// The daemon's process id.
        #[arg(long, env = "MAINPID")]
        pid: i32,
        /// How long to wait for the daemon's answer.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        wait: std::time::Duration,
    },
    /// The man pages and shell completions, from these definitions
    /// (scripts/package.sh puts them in the Debian package).
    #[command(hide = true, subcommand)]
    Generate(generate::GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// One line per dead letter: id, destination, event type/action, alert short id, attempts, last error.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        destination: Option<String>,
    },
    /// Re-queue dead letters (by id, or --all); works while the daemon runs.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        /// Dead letter ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Replay every dead letter (of --destination, if given).
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        destination: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create or replace tenant NAME from a TOML fragment (origins, hooks,
    /// destinations, routes); a running daemon applies it within a second.
    Apply {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        file: PathBuf,
        name: String,
    },
    /// One line per tenant: name, hook ids, counts.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// A tenant's fragment, every secret redacted (JSON).
    Show {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
    /// Delete a tenant: its hooks answer 404, its pending deliveries become
    /// dead letters.
    Delete {
        #[command(flatten)]
        config: ConfigArg,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SilencesCommand {
    /// Add a silence, e.g. --when 'rule = ["Noisy rule"], entity = ["Lab"]' --for 2h --comment "tuning".
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// The [routes.when] keys, as the contents of a TOML inline table.
        #[arg(long)]
        when: String,
        /// How long (humantime: 30m, 2h, 1d).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Why (shown in the history of every silenced event).
        #[arg(long)]
        comment: String,
        /// Who (default: $USER).
        #[arg(long)]
        author: Option<String>,
    },
    /// The silences, newest first (active, expired or ended).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// End a silence now.
    Expire {
        #[command(flatten)]
        config: ConfigArg,
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// One line per event, newest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// How far back (humantime, e.g. 1h, 7d).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        #[arg(long)]
        hook: Option<String>,
        /// Only events in this state (received, unrouted, pending, delivered, failed, skipped).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Everything about one event: body, alert, routes, each attempt.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        id: i64,
    },
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime")
}

/// Runs a parsed command line.
pub fn main(cli: Cli) -> ExitCode {
    let format = cli.log_format;
    match cli.command {
        Command::Run(c) => {
            init_logging(format);
            let config = match c.load() {
                Ok(c) => c,
                Err(code) => return code,
            };
            runtime().block_on(run(config, c.path()))
        }
        Command::Init(args) => init::init(args),
        Command::Generate(what) => generate::generate(what),
        Command::Check { config, tenant } => match tenant {
            None => check(&config),
            Some(file) => tenants::check_tenant(&config, &file),
        },
        Command::Tenants(cmd) => tenants::tenants(cmd),
        Command::Demo { port, once } => runtime().block_on(demo::run(port, once)),
        Command::Preview {
            config,
            event,
            alert,
            hook,
            destination,
        } => {
            init_logging(LogFormat::Text);
            match config.load() {
                Ok(cfg) => runtime().block_on(preview::preview(
                    cfg,
                    &event,
                    alert.as_deref(),
                    hook,
                    destination,
                )),
                Err(code) => code,
            }
        }
        Command::SendTest {
            config,
            destination,
        } => match config.load() {
            Ok(cfg) => runtime().block_on(preview::send_test(cfg, &destination)),
            Err(code) => code,
        },
        Command::DeadLetters(cmd) => inspect::dead_letters(cmd),
        Command::Events(cmd) => inspect::events(cmd),
        Command::Silences(cmd) => inspect::silences(cmd),
        Command::Health { url } => runtime().block_on(health(&url)),
        Command::Reload { config, pid, wait } => {
            runtime().block_on(reload(admin_address(&config.path()), pid, wait))
        }
        Command::Migrate(c) => match inspect::open_store(&c) {
            Ok((_rt, store)) => {
                match store.path() {
                    Some(path) => say!("spool {} is at the latest schema", path.display()),
                    None => say!("PostgreSQL spool is at the latest schema"),
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

/// A command's output could not be written (see `say!`).
pub(crate) fn output_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("hookrelay: cannot write the output: {e}");
    std::process::exit(1);
}

pub(crate) fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("hookrelay: {e}");
    ExitCode::from(1)
}

fn check(c: &ConfigArg) -> ExitCode {
    let config = match c.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    say!(
        "{}: OK ({} origins, {} hooks, {} destinations, {} routes)",
        c.path().display(),
        config.origins.len(),
        config.hooks.len(),
        config.destinations.len(),
        config.routes.len()
    );
    ExitCode::SUCCESS
}

async fn run(config: Config, path: PathBuf) -> ExitCode {
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(message = "Cannot start.", error = %e);
            return fail(e);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone(), app.reloader(), path));
    match app.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// SIGTERM and SIGINT start a graceful shutdown; SIGHUP re-reads the
/// config file and hands it (or its errors) to the running app.
async fn signals(
    shutdown: CancellationToken,
    reload: tokio::sync::mpsc::UnboundedSender<crate::app::ReloadRequest>,
    path: PathBuf,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(message = "Cannot install signal handlers.");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!(message = "SIGTERM received."); break; }
            _ = int.recv() => { tracing::info!(message = "SIGINT received."); break; }
            _ = hup.recv() => {
                tracing::info!(message = "SIGHUP received: reloading the configuration.", path = %path.display());
                let p = path.clone();
                let loaded = tokio::task::spawn_blocking(move || config::load_file(&p)).await;
                if let Ok(request) = loaded {
                    let _ = reload.send(request.into());
                }
            }
        }
    }
    shutdown.cancel();
}

/// Where the daemon's admin listener is, from `[admin] listen` in the file
/// (or `HOOKRELAY_ADMIN__LISTEN`), read without loading the rest: secrets
/// may not be readable here (systemd hands `LoadCredential=` files to the
/// main process, not to `ExecReload=`), and the daemon validates the file
/// itself.
fn admin_address(path: &std::path::Path) -> std::net::SocketAddr {
    let configured = std::env::var("HOOKRELAY_ADMIN__LISTEN").ok().or_else(|| {
        let table: toml::Table = std::fs::read_to_string(path).ok()?.parse().ok()?;
        Some(table.get("admin")?.get("listen")?.as_str()?.to_owned())
    });
    let mut admin = configured
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| crate::config::AdminConfig::default().listen);
    if admin.ip().is_unspecified() {
        admin.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    admin
}

/// `hookrelay reload`: SIGHUP to `pid`, then the daemon's reload counters
/// on its admin listener say whether the new configuration was applied.
async fn reload(admin: std::net::SocketAddr, pid: i32, wait: std::time::Duration) -> ExitCode {
    let url = format!("http://{admin}/metrics");
    let client = crate::http::client();
    let counts = || async {
        let text = client
            .get(&url)
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let count = |result: &str| -> f64 {
            let needle = format!("hookrelay_config_reloads_total{{result=\"{result}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&needle)?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Some((count("ok"), count("error")))
    };
    // kill(2) with 0 or a negative pid signals a whole process group, or
    // every process this user may signal: never that.
    if pid <= 1 {
        return fail(format!(
            "--pid {pid}: not a daemon's process id (under systemd, $MAINPID is empty when the service is not running)"
        ));
    }
    let before = counts().await;
    // SAFETY: kill(2) with a pid and a signal number; no memory involved.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return fail(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let Some((ok0, err0)) = before else {
        say!("signalled process {pid}; its admin listener ({admin}) did not answer, so the outcome is in its log");
        return ExitCode::SUCCESS;
    };
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        match counts().await {
            Some((ok, _)) if ok > ok0 => {
                say!("configuration reloaded by process {pid}");
                return ExitCode::SUCCESS;
            }
            Some((_, err)) if err > err0 => {
                return fail(format!(
                    "process {pid} rejected the configuration (see its log); it keeps the previous one"
                ));
            }
            _ => {}
        }
    }
    fail(format!(
        "process {pid} did not report a reload within {}",
        humantime::format_duration(wait)
    ))
}

async fn health(url: &str) -> ExitCode {
    let client = crate::http::client();
    match client
        .get(url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
        Ok(r) => fail(format!("{url} answered {}", r.status())),
        Err(e) => fail(format!("{url}: {}", crate::enrich::error_chain(&e))),
    }
}
