//! Where a tenant's requests may go. A tenant is configuration written by
//! someone the operator does not control: its destinations, origins and
//! SMTP hosts must not reach the relay's own network (loopback, link-local
//! and its cloud metadata service, private ranges, CGNAT, the relay's own
//! host) unless the operator lists the host or range in
//! `[admin] tenant_allow_hosts`.
//!
//! The check runs twice: when the tenant is stored (every address its host
//! names resolve to, so the API can refuse by key) and when a connection is
//! made (the HTTP clients of tenants' destinations and origins resolve
//! through [`GuardedResolver`], which drops forbidden addresses, so a name
//! that resolves elsewhere after the check — DNS rebinding — reaches
//! nothing). A literal IP in a URL is never resolved, so the sinks and the
//! enricher check it with [`Egress::check_url`] before each request.
//!
//! Plain data and IO only at the edges: the classification is a pure table
//! ([`classify`]); resolution is `tokio`'s (the system resolver).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Why an address is not for tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Loopback,
    /// 169.254.0.0/16 (cloud metadata services live there), fe80::/10.
    LinkLocal,
    /// RFC 1918, fc00::/7 (and the deprecated site-local fec0::/10).
    Private,
    /// 0.0.0.0/8, `::`: "this host" to most stacks.
    Unspecified,
    /// 100.64.0.0/10, carrier-grade NAT: a provider's internal network.
    SharedNat,
    /// Multicast, broadcast, reserved and special-purpose ranges: nothing
    /// a destination lives at.
    NotUnicast,
    /// An address of the relay's own host (where its listeners are).
    OwnHost,
}

impl Forbidden {
    pub fn as_str(self) -> &'static str {
        match self {
            Forbidden::Loopback => "a loopback address",
            Forbidden::LinkLocal => "a link-local address",
            Forbidden::Private => "a private address",
            Forbidden::Unspecified => "an unspecified address",
            Forbidden::SharedNat => "a carrier-grade NAT address (100.64.0.0/10)",
            Forbidden::NotUnicast => "not a unicast address",
            Forbidden::OwnHost => "an address of the relay's own host",
        }
    }
}

/// The address classes tenants may not reach, by address alone (the
/// relay's own host is [`Egress`]'s business). `None`: a public address.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => Forbidden::Unspecified,
        (127, _, _) => Forbidden::Loopback,
        (169, 254, _) => Forbidden::LinkLocal,
        (10, _, _) | (192, 168, _) => Forbidden::Private,
        (172, 16..=31, _) => Forbidden::Private,
        (100, 64..=127, _) => Forbidden::SharedNat,
        // IETF protocol assignments, benchmarking, multicast, reserved
        // and broadcast.
        (192, 0, 0) | (198, 18..=19, _) | (224..=255, _, _) => Forbidden::NotUnicast,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    if ip.is_unspecified() {
        return Some(Forbidden::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    // IPv4 inside IPv6 reaches the IPv4 address: judged as that one.
    // Mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96).
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return classify_v4(v4);
    }
    // 6to4 (2002::/16) carries its IPv4 relay address in bits 16..48.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        if let Some(f) = classify_v4(v4) {
            return Some(f);
        }
    }
    Some(match s[0] {
        x if x & 0xffc0 == 0xfe80 => Forbidden::LinkLocal,
        x if x & 0xffc0 == 0xfec0 => Forbidden::Private,
        x if x & 0xfe00 == 0xfc00 => Forbidden::Private,
        x if x & 0xff00 == 0xff00 => Forbidden::NotUnicast,
        // 100::/64, discard-only.
        0x0100 if s[1..4] == [0, 0, 0] => Forbidden::NotUnicast,
        _ => return None,
    })
}

/// One entry of `[admin] tenant_allow_hosts`: a host name (its addresses
/// are allowed whatever they are) or an address or range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Host(String),
    Net(IpNet),
}

impl Allowed {
    /// `"mail.internal"`, `"10.0.0.0/8"`, `"127.0.0.1"`, `"::1"`, `"[::1]"`.
    pub fn parse(entry: &str) -> Result<Allowed, String> {
        let s = entry.trim();
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(net) = bare.parse::<IpNet>() {
            return Ok(Allowed::Net(net.trunc()));
        }
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Allowed::Net(IpNet::from(ip)));
        }
        let host = s.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(format!(
                "expected a host name (\"mail.internal\"), an address (\"10.1.2.3\") or a range (\"10.0.0.0/8\"), found {entry:?}"
            ));
        }
        Ok(Allowed::Host(host))
    }
}

/// A refusal by the guard; found in an error's source chain, it tells a
/// refused address from a network failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAllowed(pub String);

/// Where tenants may connect: everything public, plus what the operator
/// lists; never the relay's own host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Egress {
    allow: Vec<Allowed>,
    /// The addresses the relay listens on: its own. An unspecified one
    /// (`0.0.0.0`, `::`) stands for every address of this host.
    listeners: Vec<IpAddr>,
}

/// How long the check at store time waits for DNS; a name that does not
/// resolve by then is left to the check at connect time.
const CHECK_RESOLVE_WAIT: Duration = Duration::from_secs(5);

impl Egress {
    pub fn new(allow: Vec<Allowed>, listeners: Vec<IpAddr>) -> Egress {
        Egress { allow, listeners }
    }

    /// Whether the operator listed this host name.
    fn host_listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allow
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    /// Why `ip` may not be reached by a tenant, or `None`.
    pub fn forbidden(&self, ip: IpAddr) -> Option<Forbidden> {
        let ip = canonical(ip);
        if self
            .allow
            .iter()
            .any(|a| matches!(a, Allowed::Net(n) if n.contains(&ip)))
        {
            return None;
        }
        if let Some(f) = classify(ip) {
            return Some(f);
        }
        let own = self.listeners.iter().any(|l| {
            if l.is_unspecified() {
                is_local(ip)
            } else {
                canonical(*l) == ip
            }
        });
        own.then_some(Forbidden::OwnHost)
    }

    fn refusal(ip: IpAddr, why: Forbidden) -> NotAllowed {
        NotAllowed(format!(
            "{ip} is {}: not reachable by tenants (unless [admin] tenant_allow_hosts lists it)",
            why.as_str()
        ))
    }

    /// A URL whose host is a literal IP is checked here (clients resolve
    /// names only); a name passes (its addresses are checked when they are
    /// resolved).
    pub fn check_url(&self, url: &url::Url) -> Result<(), NotAllowed> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        match self.forbidden(ip) {
            Some(why) => Err(Self::refusal(ip, why)),
            None => Ok(()),
        }
    }

    /// The addresses of `host` a tenant may connect to (`port` is only
    /// carried along): a literal IP checked, a listed name as it resolves,
    /// another name with its forbidden addresses dropped; an error when
    /// nothing remains.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, NotAllowed> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return match self.forbidden(ip) {
                Some(why) => Err(Self::refusal(ip, why)),
                None => Ok(vec![SocketAddr::new(ip, port)]),
            };
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| NotAllowed(format!("{bare} cannot be resolved ({e})")))?
            .collect();
        if self.host_listed(bare) {
            return Ok(found);
        }
        let mut dropped = None;
        let kept: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.forbidden(a.ip()) {
                Some(why) => {
                    dropped.get_or_insert((a.ip(), why));
                    false
                }
                None => true,
            })
            .collect();
        match (kept.is_empty(), dropped) {
            (true, Some((ip, why))) => Err(NotAllowed(format!(
                "{bare} resolves to {ip}, {}: not reachable by tenants (unless [admin] tenant_allow_hosts lists it)",
                why.as_str()
            ))),
            (true, None) => Err(NotAllowed(format!("{bare} resolves to no address"))),
            _ => Ok(kept),
        }
    }

    /// The check when a tenant is stored: `host` must not be, nor resolve
    /// to, a forbidden address (any one of them: the refusal then names
    /// it). A name that cannot be resolved now (no DNS, not yet
    /// published) passes: the check at connect time still holds.
    pub async fn check_host(&self, host: &str, port: u16) -> Result<(), NotAllowed> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return match self.forbidden(ip) {
                Some(why) => Err(Self::refusal(ip, why)),
                None => Ok(()),
            };
        }
        if self.host_listed(bare) {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((bare, port));
        let Ok(Ok(found)) = tokio::time::timeout(CHECK_RESOLVE_WAIT, lookup).await else {
            return Ok(());
        };
        for a in found {
            if let Some(why) = self.forbidden(a.ip()) {
                return Err(NotAllowed(format!(
                    "{bare} resolves to {}, {}: not reachable by tenants (unless [admin] tenant_allow_hosts lists it)",
                    a.ip(),
                    why.as_str()
                )));
            }
        }
        Ok(())
    }

    /// [`Egress::check_host`] for a URL (its host and port).
    pub async fn check_url_host(&self, url: &url::Url) -> Result<(), NotAllowed> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        self.check_host(host, url.port_or_known_default().unwrap_or(443))
            .await
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address (so an allow-list
/// entry and a listener compare with either form).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether `ip` is an address of this host: binding a socket to it works
/// only then. (With `net.ipv4.ip_nonlocal_bind` every address binds, and
/// every public address is then taken for the host's own: the guard fails
/// closed; list what tenants need in `tenant_allow_hosts`.)
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The DNS resolver of tenants' HTTP clients: the system's, with the
/// addresses tenants may not reach dropped; a connection fails when none
/// remain.
pub struct GuardedResolver(pub Arc<Egress>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = egress.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classification table, one address per class and its edges.
    #[test]
    fn addresses_are_classified() {
        use Forbidden::*;
        for (ip, want) in [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("169.254.169.254", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("172.15.255.255", None),
            ("192.168.1.1", Some(Private)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("100.64.0.1", Some(SharedNat)),
            ("100.127.255.255", Some(SharedNat)),
            ("100.128.0.1", None),
            ("100.63.255.255", None),
            ("224.0.0.1", Some(NotUnicast)),
            ("255.255.255.255", Some(NotUnicast)),
            ("240.0.0.1", Some(NotUnicast)),
            ("192.0.0.8", Some(NotUnicast)),
            ("ff02::1", Some(NotUnicast)),
            // IPv4 inside IPv6 is judged as the IPv4 address.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:0808:0808::1", None),
            ("::ffff:8.8.8.8", None),
            // Public.
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("203.0.113.7", None),
            ("2001:4860:4860::8888", None),
            ("2606:4700::1111", None),
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(parsed), want, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_takes_names_addresses_and_ranges() {
        assert_eq!(
            Allowed::parse("10.0.0.0/8").unwrap(),
            Allowed::Net("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            Allowed::parse("10.1.2.3/8").unwrap(),
            Allowed::Net("10.0.0.0/8".parse().unwrap()),
            "a range is its network"
        );
        assert_eq!(
            Allowed::parse("127.0.0.1").unwrap(),
            Allowed::Net("127.0.0.1/32".parse().unwrap())
        );
        assert_eq!(
            Allowed::parse("[::1]").unwrap(),
            Allowed::Net("::1/128".parse().unwrap())
        );
        assert_eq!(
            Allowed::parse("Mail.Internal.").unwrap(),
            Allowed::Host("mail.internal".into())
        );
        for bad in [
            "",
            "http://x",
            "a b",
            "x:25",
            "-x.org",
            "10.0.0.0/33",
            "a..b",
        ] {
            assert!(Allowed::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listed_ranges_and_hosts_are_allowed_and_the_own_host_is_not() {
        let egress = Egress::new(
            vec![
                Allowed::parse("10.0.0.0/8").unwrap(),
                Allowed::parse("127.0.0.1").unwrap(),
            ],
            vec!["203.0.113.9".parse().unwrap()],
        );
        let f = |s: &str| egress.forbidden(s.parse().unwrap());
        assert_eq!(f("10.9.9.9"), None);
        assert_eq!(f("127.0.0.1"), None);
        assert_eq!(f("::ffff:127.0.0.1"), None, "the mapped form too");
        assert_eq!(f("127.0.0.2"), Some(Forbidden::Loopback));
        assert_eq!(f("192.168.0.1"), Some(Forbidden::Private));
        assert_eq!(f("203.0.113.9"), Some(Forbidden::OwnHost));
        assert_eq!(f("203.0.113.10"), None);
        let url = |s: &str| egress.check_url(&url::Url::parse(s).unwrap());
        assert!(url("http://169.254.169.254/latest/meta-data").is_err());
        assert!(url("http://[::1]:8080/x").is_err());
        assert!(url("http://127.0.0.1:9/x").is_ok());
        assert!(
            url("https://anything.example/x").is_ok(),
            "names: at resolution"
        );
    }

    /// The resolver's filter: forbidden addresses are dropped, a name left
    /// with none fails, a listed name keeps what it resolves to.
    #[tokio::test]
    async fn the_resolver_drops_what_tenants_may_not_reach() {
        let strict = Egress::default();
        let e = strict.resolve("localhost", 0).await.unwrap_err();
        assert!(e.0.contains("loopback"), "{e}");
        let e = strict.resolve("169.254.169.254", 80).await.unwrap_err();
        assert!(e.0.contains("link-local"), "{e}");
        let e = strict.check_host("localhost", 25).await.unwrap_err();
        assert!(e.0.contains("localhost resolves to"), "{e}");
        assert!(strict
            .check_url_host(&url::Url::parse("http://10.1.2.3/").unwrap())
            .await
            .is_err());
        // A public literal passes without any DNS.
        let ok = strict.resolve("8.8.8.8", 53).await.unwrap();
        assert_eq!(ok, vec!["8.8.8.8:53".parse().unwrap()]);
        // Listed by name: whatever it resolves to.
        let by_name = Egress::new(vec![Allowed::parse("localhost").unwrap()], Vec::new());
        let addrs = by_name.resolve("localhost", 7).await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(by_name.check_host("localhost", 7).await.is_ok());
        // Listed by range: only that range is kept.
        let v4_only = Egress::new(vec![Allowed::parse("127.0.0.0/8").unwrap()], Vec::new());
        let addrs = v4_only.resolve("localhost", 7).await.unwrap();
        assert!(addrs.iter().all(|a| a.is_ipv4()), "{addrs:?}");
        // A name that cannot be resolved now is left to connect time.
        assert!(strict.check_host("no-such-host.invalid", 443).await.is_ok());
        assert!(strict.resolve("no-such-host.invalid", 443).await.is_err());
    }

    /// An unspecified listener makes every address of this host the
    /// relay's own.
    #[test]
    fn an_unspecified_listener_covers_the_hosts_addresses() {
        let egress = Egress::new(
            vec![Allowed::parse("127.0.0.0/8").unwrap()],
            vec!["0.0.0.0".parse().unwrap()],
        );
        // 127.0.0.1 is listed, but it is still this host's: the own-host
        // rule only applies to what is otherwise allowed, and the listed
        // range wins (the operator said so).
        assert_eq!(egress.forbidden("127.0.0.1".parse().unwrap()), None);
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(!is_local("192.0.2.1".parse().unwrap()));
    }
}
