//! Routing: (hook, event, alert, routes, clock) → which destinations get
//! it. Pure: no IO, and the time is given ([`Clock`]), never read. Dedup
//! windows are applied by the store, which owns the state they need.

mod case;
mod conditions;
mod values;

pub use conditions::{explain, explain_with, matches, matches_with};

use values::{list, update_status};

use crate::config::{DedupField, RouteConfig, TimeIntervalConfig};
use crate::enrich::{Alert, Case};
use crate::event::Event;
use std::collections::BTreeMap;
use std::time::Duration;

/// One (route, destination) pair an event is to be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub route: String,
    pub destination: String,
    /// The route's dedup window, if any.
    pub dedup: Option<Duration>,
    /// What identifies "the same notification" within that window.
    pub dedup_key: Vec<DedupField>,
    /// Set when the route matched but was muted or inactive at the time
    /// (`muted_during`, `active_during`): recorded, not sent.
    pub muted: Option<String>,
    /// The route says `mention = true`.
    pub mention: bool,
}

/// When a routing happens, and the named intervals routes refer to.
pub struct Clock<'a> {
    pub now: jiff::Timestamp,
    pub intervals: &'a BTreeMap<String, TimeIntervalConfig>,
}

impl Clock<'_> {
    /// Whether the instant is in the interval `name` (`"!name"`: outside).
    fn holds(&self, name: &str) -> bool {
        let (negated, bare) = match name.strip_prefix('!') {
            Some(b) => (true, b),
            None => (false, name),
        };
        let inside = self
            .intervals
            .get(bare)
            .and_then(|i| i.parsed.as_ref())
            .is_some_and(|i| i.contains(self.now));
        inside != negated
    }

    /// Whether route `r` is on duty now: `Err` says why not, naming the
    /// interval.
    pub fn on_duty(&self, r: &RouteConfig) -> Result<(), String> {
        if let Some(m) = r.muted_during.iter().find(|m| self.holds(m)) {
            return Err(format!("muted: muted_during {m:?} holds now"));
        }
        if !r.active_during.is_empty() && !r.active_during.iter().any(|a| self.holds(a)) {
            return Err(format!(
                "inactive: active_during {} does not hold now",
                list(&r.active_during)
            ));
        }
        Ok(())
    }
}

/// The dedup key of an event for a route's `dedup_key` fields.
pub fn dedup_key(fields: &[DedupField], event: &Event, alert: Option<&Alert>) -> String {
    let mut parts = Vec::with_capacity(fields.len());
    for f in fields {
        parts.push(match f {
            DedupField::Alert => event
                .alert_uuid
                .or(event.uuid)
                .map(|u| u.to_string())
                .or_else(|| event.short_id.clone())
                .unwrap_or_default(),
            DedupField::Action => event.action.clone(),
            DedupField::Type => event.kind.clone(),
            DedupField::Status => update_status(event)
                .map(str::to_owned)
                .or_else(|| alert.and_then(|a| a.status.clone()))
                .unwrap_or_default()
                .to_lowercase(),
        });
    }
    parts.join(":")
}

/// One route's verdict for an event, in order: whether it matched and why
/// (or why not), and whether evaluation stopped there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub route: String,
    pub matched: bool,
    pub reason: String,
}

/// Every route's verdict, as [`route`] evaluates them: routes after the
/// first match without `continue` are reported as not evaluated.
pub fn decisions(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    clock: &Clock,
) -> Vec<Decision> {
    route_explained(routes, hook, event, alert, clock).1
}

/// Evaluates routes in order: the first match wins unless it says
/// `continue = true`. A destination named by several matching routes gets
/// the event once (from the first of them).
///
/// A route muted or inactive at the clock's time does not match (the
/// next route is tried); the destinations it would have reached are
/// returned with `muted` set, unless a later route reaches them.
pub fn route(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    clock: &Clock,
) -> Vec<Target> {
    route_explained(routes, hook, event, alert, clock).0
}

/// [`route`] and [`decisions`] in one pass (the pipeline records both):
/// each route's conditions are evaluated once.
pub fn route_explained(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    clock: &Clock,
) -> (Vec<Target>, Vec<Decision>) {
    route_explained_with(routes, hook, event, alert, None, clock)
}

/// [`route_explained`] for an event that may be about a case.
pub fn route_explained_with(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    case: Option<&Case>,
    clock: &Clock,
) -> (Vec<Target>, Vec<Decision>) {
    let mut out: Vec<Target> = Vec::new();
    let mut verdicts = Vec::with_capacity(routes.len());
    let mut stopped: Option<&str> = None;
    for r in routes {
        let mut verdict = |matched, reason: String| {
            verdicts.push(Decision {
                route: r.name.clone(),
                matched,
                reason,
            })
        };
        if let Some(by) = stopped {
            verdict(
                false,
                format!("not evaluated: route {by:?} matched first (without continue = true)"),
            );
            continue;
        }
        if let Some(hooks) = &r.hooks {
            if !hooks.iter().any(|h| h == hook) {
                verdict(
                    false,
                    format!("hooks = {}: the event came in on {hook:?}", list(hooks)),
                );
                continue;
            }
        }
        let why = match explain_with(&r.when, event, alert, case) {
            Ok(why) => why,
            Err(why) => {
                verdict(false, why);
                continue;
            }
        };
        let off = clock.on_duty(r).err();
        match &off {
            None => verdict(true, why),
            Some(off) => verdict(false, format!("{why}, but {off}")),
        }
        let muted = off.map(|why| format!("route {:?} {why}", r.name));
        for d in &r.to {
            let target = Target {
                route: r.name.clone(),
                destination: d.clone(),
                dedup: r.dedup,
                dedup_key: r
                    .dedup_key
                    .clone()
                    .unwrap_or_else(|| vec![DedupField::Alert, DedupField::Action]),
                muted: muted.clone(),
                mention: r.mention,
            };
            match out.iter_mut().find(|t| &t.destination == d) {
                None => out.push(target),
                // A route on duty reaches what a muted one could not.
                Some(t) if t.muted.is_some() && muted.is_none() => *t = target,
                Some(_) => {}
            }
        }
        if muted.is_none() && !r.continue_ {
            stopped = Some(&r.name);
        }
    }
    (out, verdicts)
}

#[cfg(test)]
mod tests;
