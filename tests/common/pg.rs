//! A real PostgreSQL server for the tests: one throw-away cluster per test
//! binary, started on first use from the Debian `postgresql` package's
//! binaries (`initdb`, `postgres`), on a free loopback port, in a temporary
//! directory. Each test gets its own database.
//!
//! PostgreSQL refuses to run as root: when the tests run as root the
//! cluster runs as the `postgres` user. The server is killed with the test
//! process (parent-death signal), so nothing is left running.
//!
//! When no server can be started, the tests that need one are skipped with
//! a loud message — unless `TESTS_REQUIRE_POSTGRES=1` (set by
//! `scripts/test.sh`, which CI runs), where that is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    /// The test CA that signed the server's certificate (TLS is on; plain
    /// connections are accepted too).
    pub ca_file: PathBuf,
}

static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The shared server, or `None` (after saying why) when the tests that
/// need it should be skipped.
pub fn server() -> Option<&'static PgServer> {
    match SERVER.get_or_init(start) {
        Ok(s) => Some(s),
        Err(why) => {
            if std::env::var("TESTS_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("PostgreSQL is required (TESTS_REQUIRE_POSTGRES=1) but cannot start: {why}");
            }
            eprintln!(
                "\n*** SKIPPED: this test needs a PostgreSQL server and none could be started: {why}\n\
                 *** Install Debian's `postgresql` package (scripts/test.sh does) to run it.\n"
            );
            None
        }
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("TESTS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    // Debian keeps the server binaries out of PATH, per major version.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists() && p.join("postgres").exists());
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versions.pop() {
        return Ok(dir);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return Ok(dir);
        }
    }
    Err("no initdb/postgres binaries (looked in /usr/lib/postgresql/*/bin and PATH)".into())
}

/// The user to run the server as: ourselves, or `postgres` when we are root.
fn run_as() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: getpwnam with a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err("running as root and there is no `postgres` user to run the server as".into());
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some((uid, gid)))
}

fn command(path: &Path, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(path);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes clusters left by earlier test runs (their server is gone).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("hookrelay-pg-"));
        if !is_ours {
            continue;
        }
        let pid = std::fs::read_to_string(path.join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = match pid {
            Some(p) => (unsafe { libc::kill(p, 0) }) == 0,
            // Still being set up by another test binary, unless old.
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < Duration::from_secs(600)),
        };
        if !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn start() -> Result<PgServer, String> {
    let bin = bin_dir()?;
    remove_stale();
    let user = run_as()?;
    let dir = tempfile::Builder::new()
        .prefix("hookrelay-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let out = command(&bin.join("initdb"), user)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let ca_file = write_tls_files(&dir, user)?;
    let port = free_port();
    let postgres = bin.join("postgres");
    let socket_dir = dir.clone();
    let log = dir.join("postgres.log");
    // The parent-death signal fires when the thread that started the child
    // ends, so the server is started from a thread that never does.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::unix::process::CommandExt;
        let log_file = match std::fs::File::create(&log) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        let mut c = command(&postgres, user);
        c.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&socket_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=64MB",
                "-c",
                "ssl=on",
            ])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                socket_dir.join("server.crt").display()
            ))
            .arg("-c")
            .arg(format!(
                "ssl_key_file={}",
                socket_dir.join("server.key").display()
            ))
            .stdout(Stdio::null())
            .stderr(log_file);
        // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        match c.spawn() {
            Ok(child) => {
                let _ = tx.send(Ok(()));
                let _keep = child;
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(format!("cannot start postgres: {e}")));
            }
        }
    });
    rx.recv().map_err(|e| e.to_string())??;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "postgres did not listen within 30 s: {}",
                std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(PgServer { port, dir, ca_file })
}

/// A test CA and a server certificate for 127.0.0.1 and localhost signed
/// by it, in `dir` (the key readable only by the server's user); returns
/// the CA's file.
fn write_tls_files(dir: &Path, user: Option<(u32, u32)>) -> Result<PathBuf, String> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).map_err(e)?;
    let key = KeyPair::generate().map_err(e)?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(e)?
        .signed_by(&key, &ca, &ca_key)
        .map_err(e)?;
    let write = |name: &str, text: String, mode: u32| -> Result<PathBuf, String> {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        Ok(path)
    };
    write("server.crt", cert.pem(), 0o644)?;
    write("server.key", key.serialize_pem(), 0o600)?;
    write("ca.crt", ca.pem(), 0o644)
}

impl PgServer {
    /// Plain TCP (`sslmode=disable`); the TLS test asks for `require`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:pw@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Creates a fresh database; returns its URL.
    pub async fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.create(&name).await;
        self.url(&name)
    }

    /// Creates the database `name` (the server may still be starting).
    pub async fn create(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    client
                        .batch_execute(&format!("CREATE DATABASE {name}"))
                        .await
                        .unwrap();
                    return;
                }
                Err(e) if Instant::now() > deadline => panic!(
                    "cannot connect to the test PostgreSQL: {e}; log: {}",
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// A connection to database `url`, for assertions.
    pub async fn client(&self, url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }
}

/// Switches a config written by `write_config` to the PostgreSQL spool at
/// `url`, with a short lease so takeovers happen within a test.
pub fn use_postgres(config: &Path, url: &str, lease: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let start = text.find("[store]\npath = ").expect("a [store] section");
    let end = start + text[start..].find("[delivery]").unwrap();
    let store = format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\nlease = \"{lease}\"\n");
    std::fs::write(config, format!("{}{store}{}", &text[..start], &text[end..])).unwrap();
}
