//! The keys each destination kind takes: required ones present and well
//! formed, a key meant for another kind refused by name. Part of
//! [`super::validate`].

use super::destination::{DestinationConfig, DestinationKind, Mention};
use super::error::{err, http_url, ConfigError};
use super::matrix_ids::{matrix_user_id, room_id_problem};

/// Checks `dest`'s keys for its kind; for the API kinds (PagerDuty,
/// Opsgenie, Matrix) also sets the `url` their sink posts to.
pub(super) fn check(dest: &mut DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    api_destination(dest, key, errors);
    chat_api(dest, key, errors);
    kind_keys(dest, key, errors);
    mentions(dest, key, errors);
}

/// Each kind's form of a mention; anything else is refused by index.
fn mentions(dest: &DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    let ok_text = |s: &str| -> bool {
        let word = |w: &str, extra: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        match dest.kind {
            DestinationKind::Slack => {
                s.strip_prefix("<@")
                    .and_then(|r| r.strip_suffix('>'))
                    .is_some_and(|id| word(id, ""))
                    || s.strip_prefix("<!subteam^")
                        .and_then(|r| r.strip_suffix('>'))
                        .is_some_and(|id| word(id, ""))
                    || s == "<!here>"
                    || s == "<!channel>"
            }
            DestinationKind::Mattermost => s.strip_prefix('@').is_some_and(|n| word(n, "._-")),
            DestinationKind::Discord => {
                s.len() <= 20 && word(s, "") && s.chars().all(|c| c.is_ascii_digit())
            }
            DestinationKind::Matrix => matrix_user_id(s),
            _ => false,
        }
    };
    let form = match dest.kind {
        DestinationKind::Teams => "a table { id = \"<user or tag id>\", name = \"<shown name>\" }",
        DestinationKind::Slack => "\"<@U0123ABC>\" (a user), \"<!subteam^S0123ABC>\" (a user group), \"<!here>\" or \"<!channel>\"",
        DestinationKind::Mattermost => "\"@name\" (a user or a group)",
        DestinationKind::Discord => "a role id (digits), e.g. \"123456789012345678\"",
        DestinationKind::Matrix => "a user id, e.g. \"@alice:example.org\"",
        _ => {
            if !dest.mentions.is_empty() {
                errors.push(err(
                    format!("{key}.mentions"),
                    "only for kind = \"teams\", \"slack\", \"mattermost\", \"discord\" or \"matrix\"",
                ));
            }
            return;
        }
    };
    for (i, m) in dest.mentions.iter().enumerate() {
        let fine = match m {
            Mention::Named { id, name } => {
                dest.kind == DestinationKind::Teams
                    && !id.trim().is_empty()
                    && !name.trim().is_empty()
            }
            Mention::Text(s) => dest.kind != DestinationKind::Teams && ok_text(s),
        };
        if !fine {
            errors.push(err(
                format!("{key}.mentions[{i}]"),
                format!("expected {form}"),
            ));
        }
    }
}

/// Whether a Slack or Mattermost destination is configured for API mode
/// (any of its keys set), complete or not.
fn wants_api(dest: &DestinationConfig) -> bool {
    match dest.kind {
        DestinationKind::Slack => {
            dest.token.is_some()
                || dest.channel.is_some()
                || dest.api_url.is_some()
                || dest.thread.is_some()
        }
        DestinationKind::Mattermost => {
            dest.token.is_some()
                || dest.server_url.is_some()
                || dest.channel_id.is_some()
                || dest.thread.is_some()
        }
        _ => false,
    }
}

/// Slack and Mattermost in API mode (a token instead of an incoming
/// webhook URL): checks the channel and server keys and sets the `url`
/// the sink calls (Slack's Web API base, the Mattermost server).
fn chat_api(dest: &mut DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    let slack = match dest.kind {
        DestinationKind::Slack => true,
        DestinationKind::Mattermost => false,
        _ => return,
    };
    if !wants_api(dest) {
        return; // webhook mode
    }
    let (server_key, channel_key) = if slack {
        ("api_url", "channel")
    } else {
        ("server_url", "channel_id")
    };
    if dest.url.is_some() {
        errors.push(err(
            format!("{key}.url"),
            format!(
                "not with token: set either url (an incoming webhook) or token and {channel_key} (API mode, one thread per alert)"
            ),
        ));
        return;
    }
    if dest
        .token
        .as_ref()
        .is_none_or(|t| t.expose().trim().is_empty())
    {
        errors.push(err(
            format!("{key}.token"),
            if slack {
                "missing: API mode needs a bot token (xoxb-…; set token or token_file)"
            } else {
                "missing: API mode needs a bot or personal access token (set token or token_file)"
            },
        ));
    }
    let channel = if slack {
        &dest.channel
    } else {
        &dest.channel_id
    };
    match channel.as_deref().map(str::trim) {
        None | Some("") => errors.push(err(
            format!("{key}.{channel_key}"),
            if slack {
                "missing: the channel's id (C0123ABCD: channel details → About), which the app has joined"
            } else {
                "missing: the channel's id (26 characters: channel menu → View Info)"
            },
        )),
        Some(c) if slack && (!c.chars().all(|ch| ch.is_ascii_alphanumeric()) || c.len() < 9) => {
            errors.push(err(
                format!("{key}.channel"),
                "a channel id such as C0123ABCD (channel details → About), not a #name",
            ))
        }
        Some(c) if !slack && (c.len() != 26 || !c.chars().all(|ch| ch.is_ascii_alphanumeric())) => {
            errors.push(err(
                format!("{key}.channel_id"),
                "a channel id: 26 letters and digits (channel menu → View Info), not a name",
            ))
        }
        Some(_) => {}
    }
    let server = if slack {
        dest.api_url.as_deref().unwrap_or("https://slack.com/api")
    } else {
        match dest.server_url.as_deref() {
            Some(s) => s,
            None => {
                errors.push(err(
                    format!("{key}.server_url"),
                    "missing: the Mattermost server's URL, e.g. https://chat.example.org",
                ));
                return;
            }
        }
    };
    match http_url(server) {
        Err(e) => errors.push(err(format!("{key}.{server_key}"), e)),
        Ok(_) => dest.url = Some(crate::secret::Secret::new(server.trim_end_matches('/'))),
    }
}

/// PagerDuty, Opsgenie and Matrix are addressed by their own keys, not a
/// `url`: checks them and sets the `url` the sink posts to (PagerDuty's
/// events endpoint, Opsgenie's API base, the Matrix room's send endpoint
/// without its transaction id).
fn api_destination(dest: &mut DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    let (default_api, secret_key) = match dest.kind {
        DestinationKind::Pagerduty => ("https://events.pagerduty.com/v2/enqueue", "routing_key"),
        DestinationKind::Opsgenie => ("https://api.opsgenie.com", "api_key"),
        DestinationKind::Matrix => ("", "access_token"),
        _ => return,
    };
    if dest.url.is_some() {
        errors.push(err(
            format!("{key}.url"),
            format!(
                "not for kind = \"{}\" (set {})",
                dest.kind.as_str(),
                if dest.kind == DestinationKind::Matrix {
                    "homeserver, room_id and access_token"
                } else {
                    "api_url to change the endpoint"
                }
            ),
        ));
        return;
    }
    let secret = match dest.kind {
        DestinationKind::Pagerduty => &dest.routing_key,
        DestinationKind::Opsgenie => &dest.api_key,
        _ => &dest.access_token,
    };
    if secret.as_ref().is_none_or(|s| s.expose().trim().is_empty()) {
        errors.push(err(
            format!("{key}.{secret_key}"),
            format!("missing (set {secret_key} or {secret_key}_file)"),
        ));
    }
    let url = if dest.kind == DestinationKind::Matrix {
        let Some(home) = dest.homeserver.as_deref() else {
            errors.push(err(
                format!("{key}.homeserver"),
                "missing: the homeserver's URL, e.g. https://matrix.example.org",
            ));
            return;
        };
        if let Err(e) = http_url(home) {
            errors.push(err(format!("{key}.homeserver"), e));
            return;
        }
        let room = match dest.room_id.as_deref() {
            Some(r) => match room_id_problem(r) {
                None => r,
                Some(problem) => {
                    errors.push(err(format!("{key}.room_id"), problem));
                    return;
                }
            },
            None => {
                errors.push(err(format!("{key}.room_id"), "missing: the room's id"));
                return;
            }
        };
        let room: String = url::form_urlencoded::byte_serialize(room.as_bytes()).collect();
        format!(
            "{}/_matrix/client/v3/rooms/{room}/send/m.room.message/",
            home.trim_end_matches('/')
        )
    } else {
        let api = dest.api_url.as_deref().unwrap_or(default_api);
        if let Err(e) = http_url(api) {
            errors.push(err(format!("{key}.api_url"), e));
            return;
        }
        api.trim_end_matches('/').to_owned()
    };
    dest.url = Some(crate::secret::Secret::new(url));
}

/// The keys each destination kind takes; a key meant for another kind is
/// an error rather than silently ignored.
fn kind_keys(dest: &DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    foreign_keys(dest, key, errors);
    match dest.kind {
        DestinationKind::Email => email_keys(dest, key, errors),
        _ => url_keys(dest, key, errors),
    }
}

/// A key meant for another kind is refused, naming the kind that takes it.
fn foreign_keys(dest: &DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    let kind = dest.kind;
    let email = kind == DestinationKind::Email;
    let webhook = kind == DestinationKind::Webhook;
    let mut only = |set: bool, field: &str, for_kind: &str| {
        if set {
            errors.push(err(
                format!("{key}.{field}"),
                format!(
                    "only for kind = \"{for_kind}\" (this destination is {:?})",
                    kind.as_str()
                ),
            ));
        }
    };
    only(!email && dest.host.is_some(), "host", "email");
    only(!email && dest.port.is_some(), "port", "email");
    only(!email && dest.tls.is_some(), "tls", "email");
    let ntfy = kind == DestinationKind::Ntfy;
    only(
        !email && !ntfy && dest.username.is_some(),
        "username",
        "email\" or \"ntfy",
    );
    only(
        !email && !ntfy && dest.password.is_some(),
        "password",
        "email\" or \"ntfy",
    );
    let pagerduty = kind == DestinationKind::Pagerduty;
    let opsgenie = kind == DestinationKind::Opsgenie;
    let matrix = kind == DestinationKind::Matrix;
    only(
        !pagerduty && dest.routing_key.is_some(),
        "routing_key",
        "pagerduty",
    );
    only(!opsgenie && dest.api_key.is_some(), "api_key", "opsgenie");
    let slack = kind == DestinationKind::Slack;
    let mattermost = kind == DestinationKind::Mattermost;
    only(
        !pagerduty && !opsgenie && !slack && dest.api_url.is_some(),
        "api_url",
        "pagerduty\", \"opsgenie\" or \"slack",
    );
    only(!slack && dest.channel.is_some(), "channel", "slack");
    only(
        !slack && !mattermost && dest.thread.is_some(),
        "thread",
        "slack\" or \"mattermost",
    );
    only(
        !mattermost && dest.server_url.is_some(),
        "server_url",
        "mattermost",
    );
    only(
        !mattermost && dest.channel_id.is_some(),
        "channel_id",
        "mattermost",
    );
    only(!matrix && dest.homeserver.is_some(), "homeserver", "matrix");
    only(
        !matrix && dest.access_token.is_some(),
        "access_token",
        "matrix",
    );
    only(!matrix && dest.room_id.is_some(), "room_id", "matrix");
    only(
        !ntfy && !slack && !mattermost && dest.token.is_some(),
        "token",
        "ntfy\", \"slack\" or \"mattermost",
    );
    only(!email && dest.from.is_some(), "from", "email");
    only(!email && !dest.to.is_empty(), "to", "email");
    only(!email && dest.subject.is_some(), "subject", "email");
    only(!webhook && !dest.headers.is_empty(), "headers", "webhook");
    only(!webhook && dest.secret.is_some(), "secret", "webhook");
    only(
        kind != DestinationKind::Teams && dest.shape.is_some(),
        "shape",
        "teams",
    );
}

/// An e-mail destination's SMTP server, sender and recipients.
fn email_keys(dest: &DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    if dest.url.is_some() {
        errors.push(err(
            format!("{key}.url"),
            "an email destination has no url; set host, from and to",
        ));
    }
    match dest.host.as_deref().map(str::trim) {
        None | Some("") => errors.push(err(
            format!("{key}.host"),
            "missing: the SMTP server's host name",
        )),
        Some(h) if h.contains(['/', ' ', ':']) => errors.push(err(
            format!("{key}.host"),
            "a host name only (set the port with port = …)",
        )),
        Some(_) => {}
    }
    if dest.port == Some(0) {
        errors.push(err(format!("{key}.port"), "must be 1–65535"));
    }
    if dest.password.is_some() && dest.username.is_none() {
        errors.push(err(format!("{key}.password"), "needs username"));
    }
    match dest.from.as_deref() {
        None => errors.push(err(format!("{key}.from"), "missing: the sender address")),
        Some(from) => {
            if let Err(e) = from.parse::<lettre::message::Mailbox>() {
                errors.push(err(
                    format!("{key}.from"),
                    format!("invalid address {from:?} ({e})"),
                ));
            }
        }
    }
    if dest.to.is_empty() {
        errors.push(err(
            format!("{key}.to"),
            "missing: list at least one recipient",
        ));
    }
    for (i, to) in dest.to.iter().enumerate() {
        if let Err(e) = to.parse::<lettre::message::Mailbox>() {
            errors.push(err(
                format!("{key}.to[{i}]"),
                format!("invalid address {to:?} ({e})"),
            ));
        }
    }
}

/// The `url` of the other kinds (unless their API keys stand for it), a
/// webhook's headers and signing secret.
fn url_keys(dest: &DestinationConfig, key: &str, errors: &mut Vec<ConfigError>) {
    let kind = dest.kind;
    let pagerduty = kind == DestinationKind::Pagerduty;
    let opsgenie = kind == DestinationKind::Opsgenie;
    let matrix = kind == DestinationKind::Matrix;
    let ntfy = kind == DestinationKind::Ntfy;
    match &dest.url {
        // api_destination() said what is missing.
        None if pagerduty || opsgenie || matrix || wants_api(dest) => {}
        None => errors.push(err(format!("{key}.url"), "missing (set url or url_file)")),
        Some(url) => {
            // The message never quotes the URL: it is a secret.
            match http_url(url.expose()) {
                Err(e) => errors.push(err(format!("{key}.url"), e)),
                Ok(u)
                    if ntfy
                        && u.path_segments()
                            .and_then(|mut p| p.next_back())
                            .is_none_or(str::is_empty) =>
                {
                    errors.push(err(
                        format!("{key}.url"),
                        "the server and the topic: https://ntfy.example.org/<topic>",
                    ))
                }
                Ok(_) => {}
            }
        }
    }
    for (name, value) in &dest.headers {
        let hkey = format!("{key}.headers.{name}");
        match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
            Err(_) => errors.push(err(hkey, "not a valid HTTP header name")),
            Ok(h) if RESERVED_HEADERS.contains(&h.as_str()) => errors.push(err(
                hkey,
                "set by hookrelay itself (content-type, content-length, host and the webhook-* signature headers)",
            )),
            Ok(_) => {
                // Never quote the value: it is often a credential.
                if reqwest::header::HeaderValue::from_str(value.expose()).is_err() {
                    errors.push(err(hkey, "not a valid HTTP header value (control characters?)"));
                }
            }
        }
    }
    if let Some(secret) = &dest.secret {
        if let Some(problem) = crate::signing::secret_problem(secret.expose()) {
            errors.push(err(format!("{key}.secret"), problem));
        }
    }
}

/// Headers a webhook destination may not set.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

#[cfg(test)]
mod tests {
    use crate::config::{load_str, test_config_text};
    use std::collections::HashMap;

    /// The config errors for `dest` (a destination named `t`), as one text.
    fn errors(dest: &str) -> String {
        let text = test_config_text(&format!("[destinations.t]\n{dest}"));
        match load_str(&text, &HashMap::new()) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn chat_api_mode_keys_are_checked_by_name() {
        let ok = errors("kind = \"slack\"\ntoken = \"xoxb-1\"\nchannel = \"C0123ABCD\"");
        assert_eq!(ok, "");
        let both = errors(
            "kind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\ntoken = \"xoxb-1\"\nchannel = \"C0123ABCD\"",
        );
        assert!(
            both.contains("destinations.t.url: not with token"),
            "{both}"
        );
        assert!(
            !both.contains("xoxb-1"),
            "the token is never quoted: {both}"
        );
        let no_channel = errors("kind = \"slack\"\ntoken = \"xoxb-1\"");
        assert!(
            no_channel.contains("destinations.t.channel: missing"),
            "{no_channel}"
        );
        let name = errors("kind = \"slack\"\ntoken = \"xoxb-1\"\nchannel = \"#soc\"");
        assert!(
            name.contains("destinations.t.channel: a channel id"),
            "{name}"
        );
        let no_token = errors("kind = \"slack\"\nchannel = \"C0123ABCD\"");
        assert!(
            no_token.contains("destinations.t.token: missing"),
            "{no_token}"
        );
        assert!(!no_token.contains(".url"), "{no_token}");
        let mm = errors(
            "kind = \"mattermost\"\ntoken = \"t\"\nchannel_id = \"4xp9fdt77pncbef59f4k1qe83o\"",
        );
        assert!(mm.contains("destinations.t.server_url: missing"), "{mm}");
        let mm_channel = errors(
            "kind = \"mattermost\"\nserver_url = \"https://chat.example.org\"\ntoken = \"t\"\nchannel_id = \"town-square\"",
        );
        assert!(
            mm_channel.contains("destinations.t.channel_id: a channel id"),
            "{mm_channel}"
        );
        let wrong_kind = errors("kind = \"teams\"\nurl = \"https://x.example.org/\"\nchannel = \"C0123ABCD\"\nthread = true");
        assert!(
            wrong_kind.contains("destinations.t.channel: only for kind = \"slack\""),
            "{wrong_kind}"
        );
        assert!(
            wrong_kind.contains("destinations.t.thread: only for"),
            "{wrong_kind}"
        );
    }
}

#[cfg(test)]
mod mention_tests {
    use crate::config::{load_str, test_config_text};
    use std::collections::HashMap;

    fn errors(dest: &str) -> String {
        let text = test_config_text(&format!("[destinations.t]\n{dest}"));
        load_str(&text, &HashMap::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn mentions_take_each_kinds_form() {
        assert_eq!(errors("kind = \"teams\"\nurl = \"https://x.example.org/\"\nmentions = [{ id = \"29:1\", name = \"SOC\" }]"), "");
        assert_eq!(errors("kind = \"slack\"\nurl = \"https://x.example.org/\"\nmentions = [\"<!subteam^S0123>\", \"<@U01>\"]"), "");
        assert_eq!(errors("kind = \"mattermost\"\nurl = \"https://x.example.org/\"\nmentions = [\"@soc-oncall\"]"), "");
        assert_eq!(errors("kind = \"discord\"\nurl = \"https://x.example.org/\"\nmentions = [\"123456789012345678\"]"), "");
        let e = errors("kind = \"teams\"\nurl = \"https://x.example.org/\"\nmentions = [\"@soc\"]");
        assert!(
            e.contains("destinations.t.mentions[0]: expected a table { id"),
            "{e}"
        );
        let e = errors("kind = \"slack\"\nurl = \"https://x.example.org/\"\nmentions = [\"@here\", \"<@U01>\"]");
        assert!(
            e.contains("destinations.t.mentions[0]: expected") && !e.contains("mentions[1]"),
            "{e}"
        );
        let e =
            errors("kind = \"discord\"\nurl = \"https://x.example.org/\"\nmentions = [\"<@&1>\"]");
        assert!(
            e.contains("destinations.t.mentions[0]: expected a role id"),
            "{e}"
        );
        let matrix = "kind = \"matrix\"\nhomeserver = \"https://m.example.org\"\naccess_token = \"t\"\nroom_id = \"!r:example.org\"";
        assert_eq!(
            errors(&format!(
                "{matrix}\nmentions = [\"@alice:example.org\", \"@oncall.bot=2:[::1]:8448\"]"
            )),
            ""
        );
        for bad in [
            "alice",
            "@alice",
            "@:example.org",
            "@al ice:example.org",
            "@alice:exa mple.org",
            "@room",
        ] {
            let e = errors(&format!(
                "{matrix}\nmentions = [{}]",
                serde_json::Value::from(bad)
            ));
            assert!(
                e.contains(
                    "destinations.t.mentions[0]: expected a user id, e.g. \"@alice:example.org\""
                ),
                "{bad}: {e}"
            );
        }
        let e = errors("kind = \"webhook\"\nurl = \"https://x.example.org/\"\nmentions = [\"x\"]");
        assert!(e.contains("destinations.t.mentions: only for"), "{e}");
        let e = errors("kind = \"slack\"\nurl = \"https://x.example.org/\"\nmentions = [42]");
        assert!(e.contains("destinations.t.mentions"), "{e}");
    }
}
