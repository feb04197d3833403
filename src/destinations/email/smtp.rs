//! `kind = "email"`: the spooled `{"subject", "text", "html"}` becomes a
//! multipart/alternative message sent over SMTP (lettre, rustls).
//!
//! 4xx replies and connection failures are worth retrying; 5xx replies are
//! permanent (the server refuses this message: a dead letter).

use crate::config::{DestinationConfig, SmtpTls};
use crate::destinations::Outcome;
use crate::secret::{scrub, Secret};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    password: Option<Secret>,
    timeout: Duration,
    /// `smtp://host:port` for messages (no credentials).
    pub target: String,
    /// A tenant's: where it may connect, and the host and port to check
    /// before each send.
    egress: Option<(std::sync::Arc<crate::http::guard::Egress>, String, u16)>,
}

#[derive(serde::Deserialize)]
struct Spooled {
    subject: String,
    text: String,
    html: String,
}

impl Smtp {
    /// Validation has checked host, from and to; what can still fail is
    /// the TLS set-up for an odd host name.
    pub fn new(dest: &DestinationConfig, timeout: Duration, pool: usize) -> Result<Smtp, String> {
        let host = dest.host.as_deref().unwrap_or_default().trim();
        let tls = dest.tls.unwrap_or_default();
        let port = dest.port.unwrap_or(tls.default_port());
        let builder = match tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))?;
        let mut builder = builder
            .port(port)
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(pool.clamp(1, 64) as u32));
        if let Some(user) = &dest.username {
            let password = dest
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let parse = |s: &str| s.parse::<Mailbox>().map_err(|e| format!("{s:?}: {e}"));
        Ok(Smtp {
            transport: builder.build(),
            from: parse(dest.from.as_deref().unwrap_or_default())?,
            to: dest.to.iter().map(|t| parse(t)).collect::<Result<_, _>>()?,
            password: dest.password.clone(),
            timeout,
            target: format!("smtp://{host}:{port}"),
            egress: dest
                .tenant
                .as_ref()
                .map(|m| (m.egress.clone(), host.to_owned(), port)),
        })
    }

    /// The MIME message for one delivery. `id` makes its Message-ID, so a
    /// retried delivery carries the same one.
    pub fn message(&self, id: &str, payload: &str) -> Result<Message, String> {
        let mail: Spooled = serde_json::from_str(payload)
            .map_err(|e| format!("the spooled e-mail is unreadable ({e})"))?;
        let domain = self.from.email.domain().to_owned();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject)
            .message_id(Some(format!("<{id}@{domain}>")))
            .user_agent(format!("hookrelay/{}", env!("CARGO_PKG_VERSION")));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html),
                    ),
            )
            .map_err(|e| format!("cannot build the e-mail: {e}"))
    }

    pub async fn send(&self, id: &str, payload: &str) -> Outcome {
        let message = match self.message(id, payload) {
            Ok(m) => m,
            Err(error) => {
                return Outcome::Permanent {
                    status: None,
                    error,
                }
            }
        };
        // A tenant's SMTP host: resolved and checked just before lettre
        // connects (lettre resolves it again itself: a name whose DNS
        // answer changes within that moment — a rebinding with a zero TTL —
        // is the window that remains; the HTTP kinds have none, their
        // client connects to what the guard kept).
        if let Some((egress, host, port)) = &self.egress {
            if let Err(e) = egress.check_host(host, *port).await {
                return Outcome::Retry {
                    status: None,
                    error: format!("not sent: {e}"),
                    retry_after: None,
                    throttled: false,
                };
            }
        }
        // The destination's own list (its password among them).
        let secrets: Vec<&Secret> = self.password.iter().collect();
        // Each SMTP command has `timeout`; the whole dialogue gets twice that.
        let sent = tokio::time::timeout(self.timeout * 2, self.transport.send(message)).await;
        match sent {
            Err(_) => Outcome::Retry {
                status: None,
                error: format!(
                    "timed out: no answer from {} within {:?}",
                    self.target,
                    self.timeout * 2
                ),
                retry_after: None,
                throttled: false,
            },
            Ok(Ok(response)) => Outcome::Delivered {
                status: u16::from(response.code()),
            },
            Ok(Err(e)) => {
                let status = e.status().map(u16::from);
                let what = if e.is_timeout() { "timed out: " } else { "" };
                let chain = crate::enrich::error_chain(&e);
                let error = scrub(
                    &format!(
                        "SMTP {}{what}{chain}{}",
                        status.map(|s| format!("{s} ")).unwrap_or_default(),
                        tls_hint(&chain)
                    ),
                    &secrets,
                );
                if e.is_permanent() {
                    Outcome::Permanent { status, error }
                } else {
                    // 4xx, connection refused or reset, TLS trouble:
                    // the normal retry machinery takes over.
                    Outcome::Retry {
                        status,
                        error,
                        retry_after: None,
                        throttled: false,
                    }
                }
            }
        }
    }
}

/// What to check when the TLS mode does not match the server.
fn tls_hint(error: &str) -> &'static str {
    if error.contains("STARTTLS is not supported") {
        " (the server does not offer STARTTLS: use tls = \"implicit\" for SMTPS on port 465, or tls = \"none\" only for a relay on a trusted network)"
    } else if error.contains("InvalidContentType") || error.contains("corrupt message") {
        " (the server did not answer in TLS: check tls and port; implicit TLS is usually port 465, STARTTLS port 587)"
    } else {
        ""
    }
}
