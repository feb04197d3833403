//! What an event would do, sending nothing: every route's verdict and each
//! destination's exact request. `hookrelay preview` prints it; the
//! console's route tester shows it.

use crate::config::{Config, DestinationConfig};
use crate::destinations::event_payload;
use crate::destinations::Sink;
use crate::enrich::{Alert, Enricher, Enrichment};
use crate::render::context::Target;
use crate::render::Facts;
use crate::route::Decision;
use crate::store::Store;
use std::fmt::Write as _;
use std::sync::Arc;

/// Where the alert's details come from.
pub enum AlertSource<'a> {
    /// Given (a file, a stored event, a pasted document).
    Given(Box<Alert>),
    /// Fetched from the hook's origin, as the daemon would.
    Fetch(&'a Enricher),
}

/// The outcome of a preview.
pub struct Preview {
    pub hook: String,
    pub decisions: Vec<Decision>,
    /// Said before the requests (e.g. the alert could not be fetched).
    pub notes: Vec<String>,
    pub outputs: Vec<Output>,
}

/// One destination's request.
pub struct Output {
    pub destination: String,
    pub kind: &'static str,
    pub route: String,
    /// The request as text (method, URL, headers with credentials hidden,
    /// pretty-printed body), or why it cannot be rendered.
    pub text: String,
    pub failed: bool,
}

/// Routes and renders `body` (a webhook) received on `hook` (default: the
/// first hook); `only` keeps one destination. `store` tells threaded
/// destinations whether a conversation exists (opened from the config when
/// absent). Errors name what is wrong with the input.
pub async fn preview(
    config: &Config,
    body: &[u8],
    alert: AlertSource<'_>,
    hook: Option<&str>,
    only: Option<&str>,
    store: Option<&Store>,
) -> Result<Preview, String> {
    let event = crate::event::parse(body).map_err(|e| format!("event: {e}"))?;
    let hook_name = match hook.or_else(|| config.hooks.keys().next().map(String::as_str)) {
        Some(h) if config.hooks.contains_key(h) => h.to_owned(),
        Some(h) => return Err(format!("hook: no hook named {h:?}")),
        None => return Err("the configuration defines no hook".into()),
    };
    let origin_name = config.hooks[&hook_name].origin.clone();
    let enrichment = enrichment(alert, &event, &origin_name).await;
    let mut notes = Vec::new();
    if let Enrichment::Unavailable(reason) = &enrichment {
        use crate::event::Subject;
        notes.push(format!(
            "{} details unavailable ({reason}); showing the degraded message",
            if event.subject() == Subject::Case {
                "case"
            } else {
                "alert"
            }
        ));
    }
    let clock = crate::route::Clock {
        now: jiff::Timestamp::now(),
        intervals: &config.time_intervals,
    };
    let (targets, decisions) = crate::route::route_explained_with(
        &config.routes,
        &hook_name,
        &event,
        enrichment.alert(),
        enrichment.case(),
        &clock,
    );
    let targets: Vec<_> = targets.into_iter().filter(|t| t.muted.is_none()).collect();
    let mut outputs = Vec::new();
    if targets.is_empty() {
        return Ok(Preview {
            hook: hook_name,
            decisions,
            notes,
            outputs,
        });
    }
    let facts = Facts::build_linked(&event, &enrichment, config.links(&hook_name));
    let destinations = crate::destinations::destinations(config)
        .map_err(|errors| errors.to_string())?
        .0;
    for t in targets {
        if only.is_some_and(|d| d != t.destination) {
            continue;
        }
        let dest = &destinations[&t.destination];
        let target = Target {
            hook: Some(&hook_name),
            route: Some(&t.route),
            destination: &t.destination,
        };
        let mut facts = std::borrow::Cow::Borrowed(&facts);
        if t.mention && !dest.config.mentions.is_empty() {
            facts.to_mut().mentions = dest.config.mentions.clone();
        }
        let (text, failed) = match event_payload(dest, &event, &enrichment, &facts, target) {
            Ok(body) if dest.kind().api_mode(&dest.config) => (
                api_calls(config, store, &t.destination, &dest.config, &body).await,
                false,
            ),
            Ok(body) => (
                request(&Arc::new(dest.config.clone()), "msg_preview", &body),
                false,
            ),
            Err(reason) => (
                format!("cannot render: {reason}\n(the delivery would be kept as a dead letter)\n"),
                true,
            ),
        };
        outputs.push(Output {
            destination: t.destination.clone(),
            kind: dest.config.kind.as_str(),
            route: t.route.clone(),
            text,
            failed,
        });
    }
    Ok(Preview {
        hook: hook_name,
        decisions,
        notes,
        outputs,
    })
}

/// The event's alert or case: the document given, or fetched.
async fn enrichment(
    alert: AlertSource<'_>,
    event: &crate::event::Event,
    origin: &str,
) -> Enrichment {
    use crate::event::Subject;
    match alert {
        // For a case event, the document given is the case object.
        AlertSource::Given(doc) if event.subject() == Subject::Case => Enrichment::Case(Arc::new(
            crate::enrich::Case::from_parts(doc.raw().clone(), Default::default(), &[]),
        )),
        AlertSource::Given(alert) if event.subject() == Subject::Alert => {
            Enrichment::Fetched(Arc::new(*alert))
        }
        AlertSource::Given(_) => Enrichment::NotApplicable,
        AlertSource::Fetch(enricher) => enricher.enrich(origin, event).await,
    }
}

/// The exact request a destination would get: the HTTP request (JSON
/// pretty-printed; the operator's header values hidden, they are often
/// credentials), or the e-mail as MIME.
pub fn request(dest: &Arc<DestinationConfig>, id: &str, body: &str) -> String {
    let sink = Sink::new(dest.clone(), crate::http::client(), 1);
    if sink.kind().smtp() {
        return match sink.email(id, body) {
            Ok(mime) => format!("SMTP {}\n{}\n\n", sink.target(), mime.replace("\r\n", "\n")),
            Err(e) => format!("SMTP {}\ncannot build the e-mail: {e}\n\n", sink.target()),
        };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match sink.http_request(id, body, now) {
        Ok(r) => http(r, &sink.target(), dest),
        Err(e) => format!("cannot build the request: {e}\n"),
    }
}

/// Slack or Mattermost in API mode: the calls the delivery would make. A
/// threaded message is a new root when the spool has no conversation for
/// its alert on that destination yet, else an edit of the root and a reply.
async fn api_calls(
    config: &Config,
    store: Option<&Store>,
    name: &str,
    dest: &DestinationConfig,
    body: &str,
) -> String {
    use crate::destinations::Call;
    use crate::render::thread::{describe, Threaded};
    let sink = Sink::new(Arc::new(dest.clone()), crate::http::client(), 1);
    let mut out = String::new();
    let show = |out: &mut String, call: Call| match sink.api_request(&call) {
        Ok(r) => {
            let url = r.url.to_string();
            out.push_str(&http(r, &url, dest))
        }
        Err(e) => {
            let _ = writeln!(out, "cannot build the request: {e}\n");
        }
    };
    let Some(t) = Threaded::unwrap(body) else {
        out.push_str("-> a channel message (not threaded)\n");
        let message: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        show(
            &mut out,
            Call::Post {
                message: &message,
                thread: None,
                broadcast: false,
            },
        );
        return out;
    };
    let opened;
    let store = match store {
        Some(s) => Some(s),
        None => {
            opened = Store::open_now(&config.store, std::time::Duration::from_secs(2))
                .await
                .ok();
            opened.as_ref()
        }
    };
    let root = match store {
        Some(store) => store.thread_root(name, &t.alert).await.ok().flatten(),
        None => {
            out.push_str("(the spool cannot be read: shown as the alert's first message)\n");
            None
        }
    };
    let seen = root
        .as_ref()
        .map(|r| (r.ts.as_str(), r.status.as_deref(), r.urgency));
    let _ = writeln!(out, "-> {}", describe(seen, &t));
    match &root {
        None => show(
            &mut out,
            Call::Post {
                message: &t.message,
                thread: None,
                broadcast: false,
            },
        ),
        Some(r) => {
            show(
                &mut out,
                Call::Update {
                    channel: &r.channel,
                    ts: &r.ts,
                    message: &t.message,
                },
            );
            let change = t.change(r.status.as_deref(), r.urgency);
            let reply = serde_json::json!({ "text": change.text(crate::destinations::of(dest.kind).markup()) });
            show(
                &mut out,
                Call::Post {
                    message: &reply,
                    thread: Some(&r.ts),
                    broadcast: change.broadcast,
                },
            );
        }
    }
    out
}

/// One HTTP request as text: the operator's header values and any
/// credential hidden, the JSON body pretty-printed.
fn http(
    request: crate::destinations::HttpRequest,
    target: &str,
    dest: &DestinationConfig,
) -> String {
    let mut out = format!("{} {target}\n", request.method);
    // A paging destination's key is in its body: never shown.
    let body = &crate::secret::scrub(&request.body, &dest.secrets());
    for (name, value, private) in request.headers {
        let value = if private {
            "<redacted>".to_owned()
        } else {
            value
        };
        let _ = writeln!(out, "{name}: {value}");
    }
    let _ = writeln!(out, "\n{}\n", pretty(body));
    out
}

/// JSON pretty-printed; anything else as it is.
pub fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| body.to_owned())
}
