//! The secret type: API keys, webhook URLs and hook secrets live in a
//! [`Secret`] whose `Debug` and `Display` never show the value, so a stray
//! `{:?}` in a log line, an error or a panic cannot leak it.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A string that must never be printed. Use [`Secret::expose`] at the single
/// place the value is needed (an HTTP header, a URL handed to the client).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A printable stand-in: for a URL, its scheme and host followed by `…`
    /// (webhook URLs carry their token in the path or query); otherwise
    /// `[redacted]`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0).unwrap_or_else(|| "[redacted]".to_owned())
    }
}

/// `https://host/…` for a URL, `None` for anything that does not parse as one.
pub fn redact_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{}:{}/…", url.scheme(), host, port),
        None => format!("{}://{}/…", url.scheme(), host),
    })
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Removes every occurrence of the given secrets from a text that came from
/// elsewhere (an error message from the HTTP client quotes the URL it failed
/// on, for instance).
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        let raw = s.expose();
        // HTTP clients print a URL as parsed, not as written: scheme and
        // host lower-cased, a default port dropped, a trailing slash added.
        let parsed = url::Url::parse(raw).ok().map(String::from);
        let forms = [Some(raw), parsed.as_deref()];
        for form in forms.into_iter().flatten() {
            for text in [form, form.trim_end_matches('/')] {
                if text.len() >= 4 && out.contains(text) {
                    out = out.replace(text, &s.redacted());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn url_is_redacted_to_host() {
        let s = Secret::new("https://hooks.slack.com/services/T0/B0/XYZ");
        assert_eq!(s.redacted(), "https://hooks.slack.com/…");
        let s = Secret::new("http://127.0.0.1:8080/x?sig=1");
        assert_eq!(s.redacted(), "http://127.0.0.1:8080/…");
    }

    #[test]
    fn scrub_replaces_url() {
        let s = Secret::new("https://hooks.slack.com/services/T0/B0/XYZ");
        let msg = "error sending request for url (https://hooks.slack.com/services/T0/B0/XYZ)";
        assert_eq!(
            scrub(msg, &[&s]),
            "error sending request for url (https://hooks.slack.com/…)"
        );
    }

    #[test]
    fn scrub_replaces_the_url_as_a_client_prints_it() {
        let s = Secret::new("HTTPS://Hooks.Slack.com:443/services/T0/B0/XYZ");
        let msg = "error sending request for url (https://hooks.slack.com/services/T0/B0/XYZ)";
        let out = scrub(msg, &[&s]);
        assert!(!out.contains("XYZ"), "{out}");
        assert!(out.contains("https://hooks.slack.com/…"), "{out}");
    }
}
