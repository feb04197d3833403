//! `hookrelay init` as an operator runs it: the files it writes and their
//! modes, `check` passing on them, the lines it prints, refusing to
//! overwrite, and each bad flag named with nothing left half-written.

mod common;

use common::bin;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const API_KEY: &str = "SECRET-API-KEY-init";
const TEAMS_URL: &str = "https://example.webhook.office.com/workflows/SECRET-TEAMS-TOKEN";

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("HOOKRELAY_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The operator's inputs: a key file and chat URL files.
struct Inputs {
    tmp: tempfile::TempDir,
}

impl Inputs {
    fn new() -> Inputs {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("key"), format!("{API_KEY}\n")).unwrap();
        std::fs::write(tmp.path().join("teams"), format!("{TEAMS_URL}\n")).unwrap();
        std::fs::write(
            tmp.path().join("slack"),
            "https://hooks.slack.com/services/T0/B0/SECRET-SLACK",
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("mattermost"),
            "https://chat.example.org/hooks/SECRET-MM",
        )
        .unwrap();
        Inputs { tmp }
    }
    fn path(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }
    fn dir(&self) -> PathBuf {
        self.tmp.path().join("etc-hookrelay")
    }
    fn init(&self, extra: &[&str]) -> Run {
        let dir = self.dir().display().to_string();
        let key = self.path("key");
        let mut args = vec!["init", "--dir", &dir, "--api-key-file", &key];
        args.extend_from_slice(extra);
        run(&args, &[])
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn check(dir: &Path) -> Run {
    let config = dir.join("hookrelay.toml").display().to_string();
    let creds = dir.join("credentials").display().to_string();
    run(
        &["check", "--config", &config],
        &[("CREDENTIALS_DIRECTORY", &creds)],
    )
}

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn init_writes_a_config_that_check_passes_with_private_credentials() {
    let inputs = Inputs::new();
    let teams = inputs.path("teams");
    let r = inputs.init(&["--teams-url-file", &teams, "--region", "usa1"]);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.out, r.err);
    let dir = inputs.dir();
    assert_eq!(
        listing(&dir),
        [
            "credentials",
            "credentials/hook-secret",
            "credentials/sekoia-api-key",
            "credentials/teams-url",
            "hookrelay.toml"
        ]
    );
    assert_eq!(mode(&dir.join("credentials")), 0o700);
    for name in ["hook-secret", "sekoia-api-key", "teams-url"] {
        assert_eq!(mode(&dir.join("credentials").join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&dir.join("hookrelay.toml")), 0o644);
    // The secrets are copied, read through ${CREDENTIALS_DIRECTORY}.
    let creds = dir.join("credentials");
    assert_eq!(
        std::fs::read_to_string(creds.join("sekoia-api-key")).unwrap(),
        API_KEY
    );
    assert_eq!(
        std::fs::read_to_string(creds.join("teams-url")).unwrap(),
        TEAMS_URL
    );
    let secret = std::fs::read_to_string(creds.join("hook-secret")).unwrap();
    let key = secret
        .strip_prefix("whsec_")
        .expect("a Standard Webhooks secret");
    use base64::Engine;
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap()
            .len()
            >= 24
    );
    let config = std::fs::read_to_string(dir.join("hookrelay.toml")).unwrap();
    for line in [
        "api_key_file = \"${CREDENTIALS_DIRECTORY}/sekoia-api-key\"",
        "url_file = \"${CREDENTIALS_DIRECTORY}/teams-url\"",
        "secret_file = \"${CREDENTIALS_DIRECTORY}/hook-secret\"",
        "region = \"usa1\"",
        "kind = \"teams\"",
    ] {
        assert!(config.contains(line), "{line} in:\n{config}");
    }
    // No secret in the config, nor in what init printed.
    for s in [API_KEY, TEAMS_URL, key] {
        assert!(!config.contains(s));
        assert!(!r.out.contains(s) && !r.err.contains(s));
    }
    // The hook URL to paste, and the lines to try it.
    let id = config
        .lines()
        .find_map(|l| l.strip_prefix("id = \"")?.strip_suffix('"'))
        .expect("a hook id");
    assert!(uuid::Uuid::parse_str(id).unwrap().get_version_num() == 4);
    assert!(r.out.contains(&format!("/hooks/{id}")), "{}", r.out);
    assert!(r.out.contains("send-test --config"), "{}", r.out);
    assert!(r.out.contains("--destination teams"), "{}", r.out);

    let c = check(&dir);
    assert_eq!(c.code, 0, "check: {}{}", c.out, c.err);
    assert!(
        c.out
            .contains("1 origins, 1 hooks, 1 destinations, 1 routes"),
        "{}",
        c.out
    );
}

#[test]
fn each_chat_kind_and_a_fresh_hook_every_time() {
    let mut ids = Vec::new();
    for (flag, file, kind) in [
        ("--slack-url-file", "slack", "slack"),
        ("--mattermost-url-file", "mattermost", "mattermost"),
        ("--teams-url-file", "teams", "teams"),
    ] {
        let inputs = Inputs::new();
        let path = inputs.path(file);
        // --origin-region: the name for --region.
        let r = inputs.init(&[flag, &path, "--origin-region", "fra2"]);
        assert_eq!(r.code, 0, "{flag}: {}", r.err);
        let dir = inputs.dir();
        assert!(dir.join(format!("credentials/{kind}-url")).exists());
        let config = std::fs::read_to_string(dir.join("hookrelay.toml")).unwrap();
        assert!(config.contains(&format!("kind = \"{kind}\"")));
        assert!(config.contains("region = \"fra2\""));
        let c = check(&dir);
        assert_eq!(c.code, 0, "{flag}: check: {}", c.err);
        ids.push(
            config
                .lines()
                .find(|l| l.starts_with("id = "))
                .unwrap()
                .to_owned(),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "hook ids must be fresh: {ids:?}");
}

#[test]
fn init_refuses_to_overwrite_anything() {
    let inputs = Inputs::new();
    let teams = inputs.path("teams");
    assert_eq!(inputs.init(&["--teams-url-file", &teams]).code, 0);
    let dir = inputs.dir();
    let before = std::fs::read(dir.join("hookrelay.toml")).unwrap();
    let secret_before = std::fs::read(dir.join("credentials/hook-secret")).unwrap();
    let r = inputs.init(&["--teams-url-file", &teams]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("--dir") && r.err.contains("already exists"),
        "{}",
        r.err
    );
    assert_eq!(r.err.trim().lines().count(), 1, "{}", r.err);
    assert_eq!(std::fs::read(dir.join("hookrelay.toml")).unwrap(), before);
    assert_eq!(
        std::fs::read(dir.join("credentials/hook-secret")).unwrap(),
        secret_before
    );

    // A credential left from before (no config): refused, nothing written.
    let inputs = Inputs::new();
    let dir = inputs.dir();
    std::fs::create_dir_all(dir.join("credentials")).unwrap();
    std::fs::write(dir.join("credentials/sekoia-api-key"), "OLD").unwrap();
    let r = inputs.init(&["--teams-url-file", &teams]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("credentials/sekoia-api-key"), "{}", r.err);
    assert_eq!(listing(&dir), ["credentials", "credentials/sekoia-api-key"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("credentials/sekoia-api-key")).unwrap(),
        "OLD"
    );
}

#[test]
fn the_packages_untouched_example_is_replaced_but_an_edited_one_is_not() {
    let example = format!("{}/config/hookrelay.toml", env!("CARGO_MANIFEST_DIR"));
    let inputs = Inputs::new();
    let teams = inputs.path("teams");
    let dir = inputs.dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&example, dir.join("hookrelay.toml")).unwrap();
    let r = inputs.init(&["--teams-url-file", &teams]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("unmodified example"), "{}", r.out);
    assert_eq!(check(&dir).code, 0);

    let inputs = Inputs::new();
    let dir = inputs.dir();
    std::fs::create_dir_all(&dir).unwrap();
    let edited = std::fs::read_to_string(&example).unwrap() + "\n# edited\n";
    std::fs::write(dir.join("hookrelay.toml"), &edited).unwrap();
    let r = inputs.init(&["--teams-url-file", &teams]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert_eq!(
        std::fs::read_to_string(dir.join("hookrelay.toml")).unwrap(),
        edited
    );
    assert!(!dir.join("credentials").exists());
}

#[test]
fn each_bad_flag_is_named_in_one_line_and_nothing_is_written() {
    let inputs = Inputs::new();
    let teams = inputs.path("teams");
    std::fs::write(inputs.path("not-a-url"), "teams webhook goes here\n").unwrap();
    std::fs::write(inputs.path("ftp"), "ftp://example.org/x\n").unwrap();
    std::fs::write(inputs.path("empty"), "\n").unwrap();
    let unreadable = inputs.path("unreadable");
    std::fs::create_dir(&unreadable).unwrap(); // reading a directory fails, even as root
    let missing = inputs.path("missing");
    let dir = inputs.dir().display().to_string();
    let key = inputs.path("key");
    let bad_url = inputs.path("not-a-url");
    let ftp = inputs.path("ftp");
    let empty = inputs.path("empty");
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec!["--api-key-file", &missing, "--teams-url-file", &teams],
            "--api-key-file",
            1,
        ),
        (
            vec!["--api-key-file", &unreadable, "--teams-url-file", &teams],
            "--api-key-file",
            1,
        ),
        (
            vec!["--api-key-file", &empty, "--teams-url-file", &teams],
            "--api-key-file",
            1,
        ),
        (
            vec!["--api-key-file", &key, "--teams-url-file", &bad_url],
            "--teams-url-file",
            1,
        ),
        (
            vec!["--api-key-file", &key, "--slack-url-file", &ftp],
            "--slack-url-file",
            1,
        ),
        (
            vec!["--api-key-file", &key, "--mattermost-url-file", &missing],
            "--mattermost-url-file",
            1,
        ),
        (
            vec![
                "--api-key-file",
                &key,
                "--teams-url-file",
                &teams,
                "--region",
                "mars1",
            ],
            "--region",
            2,
        ),
        (
            vec![
                "--api-key-file",
                &key,
                "--teams-url-file",
                &teams,
                "--public-url",
                "relay",
            ],
            "--public-url",
            1,
        ),
        // No chat destination, or two: usage errors.
        (vec!["--api-key-file", &key], "--teams-url-file", 2),
        (
            vec![
                "--api-key-file",
                &key,
                "--teams-url-file",
                &teams,
                "--slack-url-file",
                &teams,
            ],
            "--slack-url-file",
            2,
        ),
    ];
    for (flags, named, code) in cases {
        let mut args = vec!["init", "--dir", &dir];
        args.extend(flags.iter().copied());
        let r = run(&args, &[]);
        assert_eq!(r.code, code, "{flags:?}: {}", r.err);
        if code == 1 {
            // Refusals: one line, naming the flag.
            assert_eq!(r.err.trim().lines().count(), 1, "{flags:?}: {}", r.err);
            assert!(
                r.err.starts_with(&format!("hookrelay: {named} ")),
                "{flags:?}: {}",
                r.err
            );
        } else {
            // Usage errors: clap's message, as for every command.
            assert!(r.err.starts_with("error: "), "{flags:?}: {}", r.err);
            assert!(r.err.contains(named), "{flags:?}: {}", r.err);
        }
        assert!(!r.err.contains("SECRET"), "{flags:?}: {}", r.err);
        assert!(
            !inputs.dir().exists(),
            "{flags:?} wrote {:?}",
            listing(&inputs.dir())
        );
    }
}

#[test]
fn man_pages_and_completions_come_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let man = tmp.path().join("man");
    let r = run(&["generate", "man", man.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{}", r.err);
    let page = std::fs::read_to_string(man.join("hookrelay.1")).unwrap();
    assert!(page.contains(".TH hookrelay"), "{page}");
    let init = std::fs::read_to_string(man.join("hookrelay-init.1")).unwrap();
    assert!(init.contains("api\\-key\\-file"), "{init}");
    // The hidden generator documents nothing of itself.
    assert!(!man.join("hookrelay-generate.1").exists());
    for (shell, file, needle) in [
        ("bash", "hookrelay.bash", "--teams-url-file"),
        ("zsh", "_hookrelay", "--teams-url-file"),
        ("fish", "hookrelay.fish", "teams-url-file"),
    ] {
        let dir = tmp.path().join(shell);
        let r = run(
            &["generate", "completions", shell, dir.to_str().unwrap()],
            &[],
        );
        assert_eq!(r.code, 0, "{shell}: {}", r.err);
        let script = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(script.contains(needle), "{shell}");
    }
}
