//! Which `Host` names the console answers: its defence against DNS
//! rebinding. A page of attacker.example whose name was made to resolve
//! to 127.0.0.1 reaches the loopback admin listener from the operator's
//! browser, but its requests carry `Host: attacker.example`, which is none
//! of the names the console is served under.

use crate::config::ConsoleConfig;
use std::net::{IpAddr, SocketAddr};

/// `name` and `port` of a `Host` value (`name`, `name:port`, `[v6]`,
/// `[v6]:port`); the name lower-cased, without a trailing dot and, for
/// IPv6, without brackets. `None` when it is none of these.
fn split(host: &str) -> Option<(String, Option<u16>)> {
    let host = host.trim();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') => (n, Some(p)),
            Some(_) => return None,
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some((name, port))
}

/// Whether a request with this `Host` value may see the console: a
/// loopback name or address (any port: an SSH tunnel forwards a port of
/// its own), the admin listener's own address, `public_url`'s host (with
/// its port, or none), or an entry of `allowed_hosts` (with its port, if
/// it names one).
pub fn allowed(console: &ConsoleConfig, admin: SocketAddr, host: Option<&str>) -> bool {
    let Some((name, port)) = host.and_then(split) else {
        return false;
    };
    if name == "localhost" {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        if ip.is_loopback() || (ip == admin.ip() && !ip.is_unspecified()) {
            return true;
        }
    }
    let public = console
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| {
            let h = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
            Some((
                h.trim_end_matches('.').to_ascii_lowercase(),
                u.port_or_known_default(),
            ))
        });
    if let Some((h, p)) = public {
        if h == name && (port.is_none() || port == p) {
            return true;
        }
    }
    console
        .allowed_hosts
        .iter()
        .any(|entry| split(entry).is_some_and(|(h, p)| h == name && (p.is_none() || p == port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(public_url: Option<&str>, allowed: &[&str]) -> ConsoleConfig {
        ConsoleConfig {
            enabled: true,
            username: "admin".into(),
            password: None,
            secure_cookies: None,
            session_ttl: std::time::Duration::from_secs(3600),
            public_url: public_url.map(str::to_owned),
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_console_answers_its_own_names_only() {
        let admin: SocketAddr = "127.0.0.1:9091".parse().unwrap();
        let c = console(
            Some("https://Relay.Example.org/ops"),
            &["console.internal", "10.1.2.3:8443"],
        );
        let check = |host: &str| allowed(&c, admin, Some(host));
        for ok in [
            "localhost",
            "LOCALHOST:9091",
            "localhost.:9000",
            "127.0.0.1",
            "127.0.0.1:9091",
            "127.0.0.1:12345",
            "[::1]",
            "[::1]:9091",
            "relay.example.org",
            "relay.example.org:443",
            "RELAY.example.org.",
            "console.internal",
            "console.internal:8080",
            "10.1.2.3:8443",
        ] {
            assert!(check(ok), "{ok} is the console's");
        }
        for refused in [
            "attacker.example",
            "attacker.example:9091",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "relay.example.org:8080",
            "10.1.2.3",
            "10.1.2.3:9091",
            "",
            "[::1",
            "::1",
            "localhost:notaport",
            "0.0.0.0:9091",
        ] {
            assert!(!check(refused), "{refused:?} is not the console's");
        }
        assert!(!allowed(&c, admin, None), "no Host at all");
        // The admin listener's own (specific) address.
        let wide: SocketAddr = "192.0.2.10:9091".parse().unwrap();
        assert!(allowed(&c, wide, Some("192.0.2.10:9091")));
        let any: SocketAddr = "0.0.0.0:9091".parse().unwrap();
        assert!(!allowed(&c, any, Some("0.0.0.0:9091")));
    }
}
