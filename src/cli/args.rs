//! The command line's definitions (clap): the commands, their arguments
//! and the config file argument they share.

use super::init;
use crate::config::{self, Config};
use crate::telemetry::LogFormat;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
    pub(super) fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// Loads the config, printing every error (each naming its key).
    pub(super) fn load(&self) -> Result<Config, ExitCode> {
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
    Generate(GenerateCommand),
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

#[derive(Debug, clap::Subcommand)]
pub enum GenerateCommand {
    /// hookrelay.1 and one page per subcommand (hookrelay-init.1, …) into DIR.
    Man { dir: PathBuf },
    /// The completion script for SHELL into DIR (hookrelay.bash, _hookrelay, hookrelay.fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        dir: PathBuf,
    },
}
