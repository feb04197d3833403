//! Matrix identifiers as an operator writes them: room ids (both forms),
//! server names and user ids. Part of the destination keys' checks.

/// The two forms of a room id, for error messages.
pub(super) const ROOM_ID_FORMS: &str = "\"!<id>\" (room version 12 and later, e.g. \"!Ux1XbP_xbO_laXMihcxHZ2MdRFtKB7YqcITjFvOwWqs\") or \"!<id>:<server>\" (earlier versions, e.g. \"!abcDEF:example.org\"); Room settings → Advanced";

/// What is wrong with `room_id`, `None` when it is a room id the Matrix
/// spec allows: `!` and an opaque id, followed by `:` and the server name
/// that created it in room versions 1–11 (`!opaque:example.org`), without
/// a server part from version 12 on (`!` and the create event's hash).
pub(super) fn room_id_problem(room: &str) -> Option<String> {
    if room.starts_with('#') {
        return Some(format!(
            "a room id, not an alias (an alias starts with \"#\"): {ROOM_ID_FORMS}"
        ));
    }
    if room.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "a room id has no spaces or control characters: {ROOM_ID_FORMS}"
        ));
    }
    let Some(rest) = room.strip_prefix('!') else {
        return Some(format!("a room id starts with \"!\": {ROOM_ID_FORMS}"));
    };
    // The spec caps every identifier, sigil and server included, at 255 bytes.
    if room.len() > 255 {
        return Some(format!(
            "a room id is at most 255 bytes (this one has {})",
            room.len()
        ));
    }
    let (opaque, server) = match rest.split_once(':') {
        Some((opaque, server)) => (opaque, Some(server)),
        None => (rest, None),
    };
    if opaque.is_empty() {
        return Some(format!("a room id has an id after \"!\": {ROOM_ID_FORMS}"));
    }
    match server {
        Some(server) if !server_name(server) => Some(format!(
            "the part after \":\" must be a server name (a host name, an IPv4 address or an [IPv6] address, optionally :port), found {server:?}: {ROOM_ID_FORMS}"
        )),
        _ => None,
    }
}

/// A Matrix server name: `host [":" port]`, the host a DNS name, an IPv4
/// address or a bracketed IPv6 address (the spec's identifier grammar).
pub(super) fn server_name(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(s), None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    });
    port_ok && host_ok
}

/// A Matrix user id as an operator writes it in `mentions`:
/// `@localpart:server`, the localpart in the spec's (historical) character
/// range, 255 bytes at most.
pub(super) fn matrix_user_id(s: &str) -> bool {
    let Some((local, server)) = s.strip_prefix('@').and_then(|r| r.split_once(':')) else {
        return false;
    };
    s.len() <= 255
        && !local.is_empty()
        && local
            .chars()
            .all(|c| matches!(c, '\u{21}'..='\u{39}' | '\u{3B}'..='\u{7E}'))
        && server_name(server)
}

#[cfg(test)]
mod room_id_tests {
    use crate::config::{load_str, test_config_text};
    use std::collections::HashMap;

    /// The config errors of a Matrix destination with `room_id = room`.
    fn check(room: &str) -> String {
        let dest = format!(
            "[destinations.t]\nkind = \"matrix\"\nhomeserver = \"https://matrix.example.org\"\naccess_token = \"syt_secret\"\nroom_id = {}",
            toml_string(room)
        );
        load_str(&test_config_text(&dest), &HashMap::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    fn toml_string(s: &str) -> String {
        serde_json::Value::from(s).to_string()
    }

    #[test]
    fn every_room_id_form_of_the_spec_is_accepted() {
        for room in [
            // Room version 12 (Synapse's default since 1.13x): no server part.
            "!Ux1XbP_xbO_laXMihcxHZ2MdRFtKB7YqcITjFvOwWqs",
            "!fAn0Kc08TOG623Gj-OFnrz2_DRaAEQAu4UHKJ4ts5OA",
            // Versions 1–11: an opaque id and the server that made it.
            "!abcDEFghi:example.org",
            "!abc:matrix.example.org:8448",
            "!abc:127.0.0.1",
            "!abc:[::1]",
            "!abc:[2001:db8::1]:8448",
            "!abc:localhost",
        ] {
            assert_eq!(check(room), "", "{room} must be accepted");
        }
    }

    #[test]
    fn a_bad_room_id_names_the_key_and_the_forms() {
        for (room, says) in [
            ("#soc:example.org", "not an alias"),
            ("soc:example.org", "starts with \"!\""),
            (
                "Ux1XbP_xbO_laXMihcxHZ2MdRFtKB7YqcITjFvOwWqs",
                "starts with \"!\"",
            ),
            (" !abc:example.org", "no spaces"),
            ("!abc:example.org ", "no spaces"),
            ("!abc def:example.org", "no spaces"),
            ("!abc\n:example.org", "no spaces"),
            ("!", "an id after"),
            ("!:example.org", "an id after"),
            ("!abc:", "must be a server name"),
            ("!abc:exa_mple.org", "must be a server name"),
            ("!abc:example.org:port", "must be a server name"),
            ("!abc:example.org:123456", "must be a server name"),
            ("!abc:[::1", "must be a server name"),
            ("!abc:[not-v6]", "must be a server name"),
            ("!abc:example.org/x", "must be a server name"),
        ] {
            let e = check(room);
            assert!(
                e.contains("destinations.t.room_id: ") && e.contains(says),
                "{room:?}: {e}"
            );
            assert!(e.contains("room version 12"), "{room:?}: {e}");
            assert!(!e.contains("syt_secret"), "{e}");
        }
        let long = format!("!{}:example.org", "a".repeat(250));
        assert!(check(&long).contains("at most 255 bytes"));
    }
}
