//! `hookrelay init`: a first working configuration from a few flags — one
//! Sekoia.io origin, one hook with a fresh id and signing secret, one chat
//! destination, one route — and the credential files it reads through
//! `${CREDENTIALS_DIRECTORY}`, as the systemd unit's `LoadCredential=`
//! lines hand them over.
//!
//! Everything is checked before anything is written; each file is written
//! to a temporary name and linked into place (which fails rather than
//! replace a file), so an interrupted or refused `init` leaves nothing
//! half-written, and a failure part-way removes what this run wrote.

use crate::config::REGIONS;
use base64::Engine as _;
use rand::RngCore as _;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The example configuration the package installs as
/// `/etc/hookrelay/hookrelay.toml`: `init` replaces that file while it is
/// byte for byte the shipped example (nothing of the operator's is lost),
/// and refuses any other existing file.
const SHIPPED_EXAMPLE: &str = include_str!("../../config/hookrelay.toml");

/// Write a first working configuration and its credential files.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("chat")
        .required(true)
        .args(["teams_url_file", "slack_url_file", "mattermost_url_file"])
))]
pub struct InitArgs {
    /// Where to write hookrelay.toml and credentials/ (created if missing).
    #[arg(long, default_value = "/etc/hookrelay")]
    pub dir: PathBuf,
    /// A file holding the Sekoia.io API key (permission SIC_READ_ALERT).
    #[arg(long)]
    pub api_key_file: PathBuf,
    /// A file holding a Teams Workflows webhook URL.
    #[arg(long)]
    pub teams_url_file: Option<PathBuf>,
    /// A file holding a Slack incoming-webhook URL.
    #[arg(long)]
    pub slack_url_file: Option<PathBuf>,
    /// A file holding a Mattermost incoming-webhook URL.
    #[arg(long)]
    pub mattermost_url_file: Option<PathBuf>,
    /// The Sekoia.io region: fra1, fra2, mco1, uae1, usa1 or sgp1.
    #[arg(long, alias = "origin-region", default_value = "fra1", value_parser = region)]
    pub region: String,
    /// The address Sekoia.io reaches this host at (e.g. https://relay.example.org),
    /// for the hook URL printed at the end [default: http://HOSTNAME:8080].
    #[arg(long)]
    pub public_url: Option<String>,
}

fn region(name: &str) -> Result<String, String> {
    if REGIONS.iter().any(|(r, _, _)| *r == name) {
        Ok(name.to_owned())
    } else {
        let names: Vec<&str> = REGIONS.iter().map(|(r, _, _)| *r).collect();
        Err(format!(
            "not a Sekoia.io region (one of {})",
            names.join(", ")
        ))
    }
}

/// A refusal: the flag it is about and why (exit 1).
struct Refused(String);

fn refused(flag: &str, path: &Path, why: impl std::fmt::Display) -> Refused {
    Refused(format!("{flag} {}: {why}", path.display()))
}

pub fn init(args: InitArgs) -> ExitCode {
    match plan(&args).and_then(Plan::write) {
        Ok(done) => {
            report(&args, &done);
            ExitCode::SUCCESS
        }
        Err(Refused(why)) => super::fail(why),
    }
}

/// What `init` will write: file name → (contents, mode).
struct Plan {
    dir: PathBuf,
    credentials: PathBuf,
    /// Credential files, written first.
    secrets: Vec<(&'static str, String)>,
    config: String,
    /// The existing hookrelay.toml is the shipped example (replaced).
    replaces_example: bool,
    /// The destination's name, for the printed send-test line.
    destination: &'static str,
    hook_id: uuid::Uuid,
}

/// Reads and checks every input; writes nothing.
fn plan(args: &InitArgs) -> Result<Plan, Refused> {
    let api_key = read_secret("--api-key-file", &args.api_key_file)?;
    if api_key.contains(char::is_whitespace) {
        return Err(refused(
            "--api-key-file",
            &args.api_key_file,
            "the key must be one word on one line",
        ));
    }
    let chat = [
        ("--teams-url-file", &args.teams_url_file, "teams"),
        ("--slack-url-file", &args.slack_url_file, "slack"),
        (
            "--mattermost-url-file",
            &args.mattermost_url_file,
            "mattermost",
        ),
    ]
    .into_iter()
    .find_map(|(flag, path, kind)| Some((flag, path.as_ref()?, kind)));
    // clap's "chat" group already requires one.
    let Some((flag, path, kind)) = chat else {
        return Err(Refused(
            "one of --teams-url-file, --slack-url-file or --mattermost-url-file is required".into(),
        ));
    };
    let chat_url = read_secret(flag, path)?;
    check_url(&chat_url).map_err(|why| refused(flag, path, why))?;
    if let Some(public) = &args.public_url {
        check_url(public).map_err(|why| Refused(format!("--public-url {public}: {why}")))?;
    }

    let config_path = args.dir.join("hookrelay.toml");
    let replaces_example = match std::fs::read(&config_path) {
        Ok(existing) if existing == SHIPPED_EXAMPLE.as_bytes() => true,
        Ok(_) => {
            return Err(refused(
                "--dir",
                &args.dir,
                "hookrelay.toml already exists; init never overwrites a configuration (move it away first)",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(refused("--dir", &args.dir, format!("cannot read hookrelay.toml: {e}"))),
    };
    if args.dir.exists() && !args.dir.is_dir() {
        return Err(refused("--dir", &args.dir, "not a directory"));
    }
    let credentials = args.dir.join("credentials");
    let url_name = match kind {
        "teams" => "teams-url",
        "slack" => "slack-url",
        _ => "mattermost-url",
    };
    let secrets = vec![
        ("sekoia-api-key", api_key),
        (url_name, chat_url),
        ("hook-secret", fresh_secret()),
    ];
    for (name, _) in &secrets {
        let path = credentials.join(name);
        if path.symlink_metadata().is_ok() {
            return Err(refused(
                "--dir",
                &args.dir,
                format!("credentials/{name} already exists; init never overwrites a credential"),
            ));
        }
    }
    let hook_id = uuid::Uuid::new_v4();
    let config = config_text(&args.region, hook_id, kind, url_name);
    Ok(Plan {
        dir: args.dir.clone(),
        credentials,
        secrets,
        config,
        replaces_example,
        destination: kind,
        hook_id,
    })
}

/// A file's contents, trailing newline removed (as `*_file` keys read it);
/// an unreadable or empty file is refused, naming the flag.
fn read_secret(flag: &str, path: &Path) -> Result<String, Refused> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| refused(flag, path, format!("cannot read: {e}")))?;
    let value = text.trim_end_matches(['\n', '\r']).trim().to_owned();
    if value.is_empty() {
        return Err(refused(flag, path, "the file is empty"));
    }
    Ok(value)
}

/// An http(s) URL with a host. The URL itself is never shown: webhook URLs
/// carry their token.
fn check_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("does not hold a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(()),
        "http" | "https" => Err("the URL has no host".into()),
        other => Err(format!(
            "the URL's scheme must be http or https, found {other:?}"
        )),
    }
}

/// A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes.
fn fresh_secret() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn config_text(region: &str, hook_id: uuid::Uuid, kind: &str, url_name: &str) -> String {
    format!(
        r#"# hookrelay — written by `hookrelay init`. Every key is described in the
# reference configuration (/usr/share/doc/hookrelay/examples/hookrelay.toml
# from the package, config/hookrelay.toml in the source).
#
# Check it:  CREDENTIALS_DIRECTORY=<this directory>/credentials hookrelay check --config <this file>
# Secrets are read from the credentials directory: the systemd unit hands
# /etc/hookrelay/credentials/* to the service there (LoadCredential=).

[server]
listen = "0.0.0.0:8080"

[admin]
listen = "127.0.0.1:9091"

[store]
kind = "sqlite"
# StateDirectory=hookrelay (DynamicUser: the files live in /var/lib/private/hookrelay).
path = "/var/lib/hookrelay/hookrelay.db"

[origins.sekoia]
kind = "sekoia"
region = "{region}"
api_key_file = "${{CREDENTIALS_DIRECTORY}}/sekoia-api-key"

[hooks.sekoia]
# POST https://<this host>/hooks/{hook_id}
id = "{hook_id}"
origin = "sekoia"
# Requests must carry Standard Webhooks signatures made with this secret.
secret_file = "${{CREDENTIALS_DIRECTORY}}/hook-secret"

[destinations.{kind}]
kind = "{kind}"
url_file = "${{CREDENTIALS_DIRECTORY}}/{url_name}"

[[routes]]
name = "everything"
to = ["{kind}"]
"#
    )
}

impl Plan {
    /// Writes the credentials, then the config; on a failure, removes what
    /// this run wrote.
    fn write(self) -> Result<Done, Refused> {
        let mut written = Written::default();
        // On an error, `written` removes its files when dropped.
        self.write_all(&mut written)?;
        Ok(Done {
            paths: written.keep(),
            hook_id: self.hook_id,
            destination: self.destination,
            replaced_example: self.replaces_example,
        })
    }

    fn write_all(&self, written: &mut Written) -> Result<(), Refused> {
        if !self.dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&self.dir)
                .map_err(|e| refused("--dir", &self.dir, format!("cannot create: {e}")))?;
            written.dirs.push(self.dir.clone());
        }
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.credentials)
        {
            Ok(()) => written.dirs.push(self.credentials.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(refused(
                    "--dir",
                    &self.dir,
                    format!("cannot create credentials/: {e}"),
                ))
            }
        }
        // The credentials directory is the service's secrets: 0700 even if
        // it existed (e.g. created by hand with the default umask).
        std::fs::set_permissions(&self.credentials, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| {
                refused(
                    "--dir",
                    &self.dir,
                    format!("cannot restrict credentials/: {e}"),
                )
            })?;
        for (name, value) in &self.secrets {
            let path = self.credentials.join(name);
            write_new(&path, value.as_bytes(), 0o600).map_err(|e| {
                refused(
                    "--dir",
                    &self.dir,
                    format!("cannot write credentials/{name}: {e}"),
                )
            })?;
            written.paths.push(path);
        }
        let config = self.dir.join("hookrelay.toml");
        if self.replaces_example {
            replace(&config, self.config.as_bytes(), 0o644)
        } else {
            write_new(&config, self.config.as_bytes(), 0o644)
        }
        .map_err(|e| {
            refused(
                "--dir",
                &self.dir,
                format!("cannot write hookrelay.toml: {e}"),
            )
        })?;
        written.paths.push(config);
        Ok(())
    }
}

/// What a successful run wrote.
struct Done {
    paths: Vec<PathBuf>,
    hook_id: uuid::Uuid,
    destination: &'static str,
    replaced_example: bool,
}

/// What a run wrote so far, removed unless kept (a failure part-way).
#[derive(Default)]
struct Written {
    paths: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Written {
    fn keep(&mut self) -> Vec<PathBuf> {
        self.dirs.clear();
        std::mem::take(&mut self.paths)
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        for p in self.paths.iter().rev() {
            let _ = std::fs::remove_file(p);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A temporary file beside `path` with `contents`, flushed to disk.
fn write_temp(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = path.with_file_name(format!(".{name}.init-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)?;
    let done = file
        .write_all(contents)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| file.sync_all());
    if let Err(e) = done {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

/// Writes `path`, which must not exist: the complete file appears at once
/// (a hard link of a finished temporary file fails if `path` exists).
fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let temp = write_temp(path, contents, mode)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    linked
}

/// Replaces `path` at once (rename of a finished temporary file).
fn replace(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let temp = write_temp(path, contents, mode)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

fn report(args: &InitArgs, done: &Done) {
    let dir = args.dir.display();
    let config = args.dir.join("hookrelay.toml");
    let (hook_id, plan_dest) = (done.hook_id, done.destination);
    let public = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}:8080", hostname()));
    say!("hookrelay init: wrote");
    for p in &done.paths {
        say!("  {}", p.display());
    }
    if done.replaced_example {
        say!("  (hookrelay.toml replaced the package's unmodified example; the reference stays in /usr/share/doc/hookrelay/examples/)");
    }
    say!();
    say!("Paste this URL into Sekoia.io (a webhook notification), signing with the secret in {dir}/credentials/hook-secret:");
    say!("  {}/hooks/{hook_id}", public.trim_end_matches('/'));
    say!();
    say!("Check it, and send a test message to the chat:");
    say!(
        "  CREDENTIALS_DIRECTORY={dir}/credentials hookrelay check --config {}",
        config.display()
    );
    say!(
        "  CREDENTIALS_DIRECTORY={dir}/credentials hookrelay send-test --config {} --destination {plan_dest}",
        config.display()
    );
    say!();
    say!("Then start the service: systemctl enable --now hookrelay");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_is_valid_with_its_credentials() {
        let dir = std::env::temp_dir().join(format!("hookrelay-init-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sekoia-api-key"), "KEY").unwrap();
        std::fs::write(dir.join("teams-url"), "https://example.org/hook").unwrap();
        std::fs::write(dir.join("hook-secret"), fresh_secret()).unwrap();
        let text = config_text("usa1", uuid::Uuid::new_v4(), "teams", "teams-url");
        let env = [(
            "CREDENTIALS_DIRECTORY".to_owned(),
            dir.display().to_string(),
        )]
        .into_iter()
        .collect();
        let config = crate::config::load_str(&text, &env).unwrap();
        assert_eq!(config.destinations.len(), 1);
        assert_eq!(config.routes.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_are_fresh_standard_webhooks_keys() {
        let (a, b) = (fresh_secret(), fresh_secret());
        assert_ne!(a, b);
        let key = base64::engine::general_purpose::STANDARD
            .decode(a.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert!(key.len() >= 24);
    }

    #[test]
    fn regions_are_sekoias() {
        assert!(region("fra1").is_ok());
        assert!(region("mars1").unwrap_err().contains("usa1"));
    }
}
