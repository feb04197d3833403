//! Outgoing HTTP shared by the enrich client and the sinks: one client
//! (rustls, certificates verified, redirects never followed), response
//! bodies read with a cap, `Retry-After` parsing; `guard`: where tenants'
//! requests may go, and their clients' resolver.

// Outside bytes: no indexing that could panic (see lib.rs).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod guard;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The most of an upstream answer we ever read; the rest is dropped.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A client for talking to upstreams. Redirects are not followed: a webhook
/// URL or API that redirects is misconfigured, and following it could send
/// the bearer key or the payload to another host.
pub fn client() -> reqwest::Client {
    builder()
        .build()
        // Only fails if the TLS backend cannot initialise, which is a
        // build problem, not a runtime condition.
        .expect("building the HTTP client")
}

/// The client for a tenant's destinations and origins: like [`client`],
/// resolving names through [`guard::GuardedResolver`] (what tenants may
/// not reach is dropped at connect time). Literal IPs are not resolved:
/// callers check them with [`guard::Egress::check_url`].
pub fn guarded_client(egress: Arc<guard::Egress>) -> reqwest::Client {
    builder()
        .dns_resolver(Arc::new(guard::GuardedResolver(egress)))
        .build()
        // As in `client`: only a TLS backend that cannot initialise.
        .expect("building the HTTP client")
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
}

/// What went wrong with a request, in a word that is safe to show in a
/// tenant's own messages: no response text, no address, no OS error (the
/// detail goes to the log).
pub fn failure_category(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        return "timeout";
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<guard::NotAllowed>().is_some() {
            return "address not allowed";
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "refused",
                std::io::ErrorKind::TimedOut => return "timeout",
                _ => {}
            }
        }
        cur = err.source();
    }
    if e.is_connect() {
        "unreachable"
    } else {
        "network error"
    }
}

/// Reads at most `limit` bytes of the body; a longer body is cut there.
pub async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(out.len());
        if chunk.len() >= room {
            out.extend_from_slice(chunk.get(..room).unwrap_or_default());
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `Retry-After` as delta-seconds or an HTTP date; capped at one hour so a
/// hostile upstream cannot park a queue forever.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let d = if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(3600.0))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(3600)))
}

/// A short, single-line excerpt of an upstream's error body for logs.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("99999"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
        let future = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(future)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
