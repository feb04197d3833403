//! `dead-letters` and `events`: read (and replay) the spool directly, so
//! they work whether the daemon runs or not (SQLite WAL lets both open it).

use super::{fail, ConfigArg, DeadLetterCommand, EventsCommand};
use crate::store::{now_ms, Selector, Store};
use std::process::ExitCode;

fn format_ms(ms: i64) -> String {
    crate::store::format_ms(ms)
}

fn one_line(s: &str, max: usize) -> String {
    crate::render::clean(s, max)
}

/// How long a command waits for a PostgreSQL spool to answer.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Loads the config and opens its spool, reporting failures like every
/// command; the runtime runs the spool's queries.
pub(super) fn open_store(config: &ConfigArg) -> Result<(tokio::runtime::Runtime, Store), ExitCode> {
    let cfg = config.load()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let store = rt
        .block_on(Store::open_now(&cfg.store, CONNECT_WAIT))
        .map_err(fail)?;
    Ok((rt, store))
}

pub fn dead_letters(cmd: DeadLetterCommand) -> ExitCode {
    match cmd {
        DeadLetterCommand::List {
            config,
            destination,
        } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match rt.block_on(store.dead_letters(destination)) {
                Ok(rows) => {
                    if rows.is_empty() {
                        eprintln!("no dead letters");
                    }
                    for d in rows {
                        say!(
                            "{}\t{}\t{}/{}\t{}\tattempts={}\t{}",
                            d.id,
                            d.destination,
                            d.kind,
                            d.action,
                            d.short_id.as_deref().unwrap_or("-"),
                            d.attempts,
                            one_line(d.last_error.as_deref().unwrap_or("-"), 300)
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        DeadLetterCommand::Replay {
            config,
            ids,
            all,
            destination,
        } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let selector = if all {
                Selector::All { destination }
            } else {
                Selector::Ids(ids.clone())
            };
            match rt.block_on(store.replay(selector)) {
                Ok(n) => {
                    say!("re-queued {n} dead letter(s)");
                    if !all && n < ids.len() {
                        eprintln!(
                            "{} id(s) were not dead letters (see `hookrelay dead-letters list`)",
                            ids.len() - n
                        );
                        return ExitCode::from(1);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

pub fn events(cmd: EventsCommand) -> ExitCode {
    match cmd {
        EventsCommand::List {
            config,
            since,
            hook,
            status,
            limit,
        } => list_events(config, since, hook, status, limit),
        EventsCommand::Show { config, id } => show_event(config, id),
    }
}

/// `events list`: one line per event received since `since`.
fn list_events(
    config: ConfigArg,
    since: std::time::Duration,
    hook: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
) -> ExitCode {
    let (rt, store) = match open_store(&config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let from = now_ms() - since.as_millis() as i64;
    match rt.block_on(store.events_since(from, hook, if status.is_some() { None } else { limit })) {
        Ok(rows) => {
            let matching = rows
                .into_iter()
                .filter(|e| status.as_deref().is_none_or(|s| s == e.state));
            for e in matching.take(limit.unwrap_or(usize::MAX)) {
                say!(
                    "{}\t{}\t{}\t{}/{}\t{}\t{}",
                    e.id,
                    format_ms(e.received_at),
                    e.hook,
                    e.kind,
                    e.action,
                    e.short_id.as_deref().unwrap_or("-"),
                    e.state
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `events show`: one event's journey as it was recorded.
fn show_event(config: ConfigArg, id: i64) -> ExitCode {
    let (rt, store) = match open_store(&config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match rt.block_on(store.event_detail(id)) {
        Ok(Some(d)) => {
            let s = &d.summary;
            say!(
                "event {} — {}/{} on hook {} at {} — {}",
                s.id,
                s.kind,
                s.action,
                s.hook,
                format_ms(s.received_at),
                s.state
            );
            say!(
                "about: {} {}",
                crate::event::Subject::of(&s.kind, &s.action).as_str(),
                s.short_id.as_deref().unwrap_or("-")
            );
            say!(
                "enrichment: {}",
                d.enrichment.as_deref().unwrap_or("(not yet)")
            );
            if let Some(c) = &d.client {
                say!(
                    "from: {c} ({}){}",
                    d.auth.as_deref().unwrap_or("-"),
                    match d.retries {
                        0 => String::new(),
                        n => format!(", {n} sender retries recognised"),
                    }
                );
            }
            print_journey(d.routes.as_deref());
            say!("body: {}", d.body);
            if let Some(alert) = &d.alert_json {
                say!("alert: {alert}");
            }
            print_deliveries(&d.deliveries);
            // What people did to the alert from the chat.
            let alert = crate::event::parse(d.body.as_bytes())
                .ok()
                .and_then(|e| e.alert_uuid);
            if let Some(alert) = alert {
                match rt.block_on(store.actions_for(&alert.to_string())) {
                    Ok(actions) => {
                        for a in actions {
                            say!(
                                "action on the alert at {}: {} by {} via {} → {}{}",
                                format_ms(a.at),
                                a.action,
                                a.client,
                                a.destination,
                                a.result,
                                a.detail
                                    .map(|d| format!(" ({})", one_line(&d, 300)))
                                    .unwrap_or_default()
                            );
                        }
                    }
                    Err(e) => return fail(e),
                }
            }
            ExitCode::SUCCESS
        }
        Ok(None) => fail(format!("no event {id} in the spool")),
        Err(e) => fail(e),
    }
}

/// Every route's verdict, as recorded with the event.
fn print_journey(routes: Option<&str>) {
    match routes.map(crate::store::console::Journey::parse) {
        None => say!("routes: (not yet routed)"),
        Some(j) => {
            say!("routes: {}", j.matched.join(", "));
            for (route, matched, reason) in &j.decisions {
                let mark = if *matched { "matched" } else { "no" };
                say!("  {mark:<7} {route}: {reason}");
            }
            if let Some(why) = &j.silenced {
                say!("  {why}");
            }
            if let Some(why) = &j.failed {
                say!("  processing failed: {why}");
            }
        }
    }
}

/// Each delivery: its state, thread and attempts.
fn print_deliveries(deliveries: &[crate::store::DeliveryDetail]) {
    for dl in deliveries {
        say!(
            "delivery {} → {} (route {}): {}",
            dl.id,
            dl.destination,
            dl.route,
            dl.state
        );
        if let Some(t) = &dl.thread {
            say!("  thread: {t}");
        }
        if dl.attempts.is_empty() {
            if let Some(e) = &dl.last_error {
                say!("  note: {e}");
            }
        }
        for (at, status, error, ms) in &dl.attempts {
            say!(
                "  attempt at {}: {} in {} ms{}",
                format_ms(*at),
                status.map_or("no answer".to_owned(), |s| format!("HTTP {s}")),
                ms,
                error
                    .as_deref()
                    .map(|e| format!(" — {}", one_line(e, 300)))
                    .unwrap_or_default()
            );
        }
    }
}

pub fn silences(cmd: super::SilencesCommand) -> ExitCode {
    use super::SilencesCommand;
    match cmd {
        SilencesCommand::Add {
            config,
            when,
            duration,
            comment,
            author,
        } => {
            match crate::config::When::from_inline(&when) {
                Ok(m) if m.is_empty() => {
                    return fail("--when: name at least one condition (a silence of everything is a stop: use systemctl)")
                }
                Ok(_) => {}
                Err(e) => return fail(format!("--when: {e}")),
            }
            if duration.is_zero() || duration > std::time::Duration::from_secs(366 * 86_400) {
                return fail("--for: between 1s and a year");
            }
            let comment = comment.trim().to_owned();
            if comment.is_empty() {
                return fail("--comment: say why (it is shown with every silenced event)");
            }
            let author = author
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let now = crate::store::now_ms();
            let silence = crate::store::Silence {
                id: 0,
                created_at: now,
                ends_at: now + duration.as_millis() as i64,
                matcher: when.trim().to_owned(),
                comment: crate::render::clean(&comment, 300),
                author: crate::render::clean(&author, 100),
                expired_at: None,
            };
            match rt.block_on(store.add_silence(silence)) {
                Ok(id) => {
                    say!(
                        "silence {id} added until {} (effective within a second)",
                        format_ms(now + duration.as_millis() as i64)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        SilencesCommand::List { config } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match rt.block_on(store.silences(None)) {
                Ok(list) => {
                    let now = crate::store::now_ms();
                    for s in list {
                        let state = if s.active(now) {
                            "active"
                        } else if s.expired_at.is_some() {
                            "expired"
                        } else {
                            "ended"
                        };
                        say!(
                            "{}\t{state}\tuntil {}\t{}\t{}\t{}",
                            s.id,
                            format_ms(s.expired_at.unwrap_or(s.ends_at)),
                            s.author,
                            s.comment,
                            s.matcher
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        SilencesCommand::Expire { config, id } => {
            let (rt, store) = match open_store(&config) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match rt.block_on(store.expire_silence(id)) {
                Ok(true) => {
                    say!("silence {id} expired (effective within a second)");
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("no active silence {id}")),
                Err(e) => fail(e),
            }
        }
    }
}
