//! The command line: argument definitions and one function per command.
//! Exit codes: 0 ok, 1 runtime or config error, 2 usage error (clap).

#[macro_use]
mod output;
mod args;
mod demo;
mod generate;
mod init;
mod inspect;
mod preview;
mod tenants;

pub use args::{
    Cli, Command, ConfigArg, DeadLetterCommand, EventsCommand, GenerateCommand, SilencesCommand,
    TenantsCommand,
};
pub(crate) use output::{fail, output_failed};

use crate::app::App;
use crate::config::{self, Config};
use crate::telemetry::{init_logging, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

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
