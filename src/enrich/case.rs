//! Cases: the object `GET /v1/sic/cases/{uuid}` returns, with the names
//! of its status, priority and verdict (the case may carry only their
//! uuids) looked up from `GET /v1/sic/custom_statuses/{uuid}`,
//! `/v1/sic/custom_priorities/{uuid}` and `/v1/sic/custom_verdicts/{uuid}`
//! (each answers `label`), as Sekoia.io's own automation library calls
//! them. Fetched through the same client as alerts: the origin's
//! concurrency bound, retries within `enrich_deadline`, a cache that also
//! coalesces concurrent look-ups.
//!
//! Every field is optional: the API may omit or null any of them, and a
//! wrong type is treated as absent rather than failing the event.

use super::alert::{urgency_display, Alert, Urgency};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a status, priority or verdict name is kept: they are renamed
/// rarely, and every case event names several.
pub(super) const NAME_TTL: Duration = Duration::from_secs(600);

/// Alerts added to a case fetched per event at most (the case lists the
/// rest itself).
pub(super) const ADDED_ALERTS_MAX: usize = 10;

/// What a uuid in a case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameKind {
    Status,
    Priority,
    Verdict,
}

impl NameKind {
    pub(super) fn path(self) -> &'static str {
        match self {
            NameKind::Status => "custom_statuses",
            NameKind::Priority => "custom_priorities",
            NameKind::Verdict => "custom_verdicts",
        }
    }
}

/// One alert a case holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseAlert {
    pub uuid: Option<String>,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub urgency: Option<Urgency>,
}

/// A case, as the relay uses it.
#[derive(Debug, Clone)]
pub struct Case {
    pub uuid: Option<String>,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Names, not uuids.
    pub priority: Option<String>,
    pub status: Option<String>,
    pub verdict: Option<String>,
    /// Its status is in the closed stage (or is named Closed or Rejected).
    pub closed: bool,
    /// As the API gives them: a name, an e-mail, or an avatar uuid.
    pub assignees: Vec<String>,
    pub tags: Vec<String>,
    /// Created by hand (`true`) or by a rule (`false`).
    pub manual: Option<bool>,
    /// The alerts the case holds, then alerts just added that the case
    /// did not list yet (fetched from the alert API).
    pub alerts: Vec<CaseAlert>,
    pub number_of_alerts: Option<u64>,
    /// uuid → name of the statuses, priorities and verdicts the case and
    /// its event name.
    pub names: BTreeMap<String, String>,
    /// What the spool keeps, and the API's object as a tree.
    stored: Stored,
}

/// A case's two forms: what the spool keeps, `{"case": <the API's
/// object>, "names": {…}, "added_alerts": [<alert objects>]}` (see
/// [`Case::json`]), and the API's object as a tree ([`Case::raw`]).
#[derive(Debug, Clone)]
struct Stored {
    json: String,
    raw: Value,
}

/// A member's text: a string that is not blank, or a number.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn label(v: Option<&Value>) -> Option<String> {
    let v = v?.as_object()?;
    text(v.get("label")).or_else(|| text(v.get("name")))
}

fn canonical(s: &str) -> Option<Uuid> {
    Uuid::try_parse(s).ok().filter(|_| s.len() == 36)
}

/// `low` → `Low`.
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A person named in a case: a string as is, or an object's name.
fn person(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Object(o) => [
            "name",
            "display_name",
            "full_name",
            "email",
            "avatar_uuid",
            "uuid",
        ]
        .iter()
        .find_map(|k| text(o.get(*k))),
        _ => None,
    }
}

fn case_alert(v: &Value) -> Option<CaseAlert> {
    let o = v.as_object()?;
    let urgency = o.get("urgency").and_then(Value::as_object).and_then(|u| {
        let value = u.get("value").or(u.get("current_value"))?.as_f64()?;
        let value = value.clamp(0.0, 100.0).round() as u32;
        let display = text(u.get("display")).unwrap_or_else(|| urgency_display(value).to_owned());
        Some(Urgency { value, display })
    });
    Some(CaseAlert {
        uuid: text(o.get("uuid")),
        short_id: text(o.get("short_id")),
        title: text(o.get("title")),
        urgency,
    })
}

impl CaseAlert {
    fn of_alert(a: &Alert) -> CaseAlert {
        CaseAlert {
            uuid: a.uuid.clone(),
            short_id: a.short_id.clone(),
            title: a.title.clone(),
            urgency: a.urgency.clone(),
        }
    }
}

impl Case {
    /// The case object as the API sent it.
    pub fn raw(&self) -> &Value {
        &self.stored.raw
    }

    /// What the spool keeps of the case (see [`Case::from_stored`]).
    pub fn json(&self) -> &str {
        &self.stored.json
    }

    /// The case from the API's object, the names looked up, and alerts
    /// fetched on their own.
    pub fn from_parts(raw: Value, names: BTreeMap<String, String>, added: &[Arc<Alert>]) -> Case {
        let added_json: Vec<Value> = added.iter().map(|a| a.raw().clone()).collect();
        let json = json!({"case": raw, "names": names, "added_alerts": added_json}).to_string();
        Case::read(raw, names, added, json)
    }

    /// Back from the spool's record (see [`Case::json`]).
    pub fn from_stored(json: &str) -> Result<Case, String> {
        let mut v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let raw = v.get_mut("case").map(Value::take).unwrap_or(Value::Null);
        if !raw.is_object() {
            return Err("expected a case object".into());
        }
        let names = v
            .get("names")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let added: Vec<Arc<Alert>> = v
            .get("added_alerts")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|a| Alert::from_value(a.clone()).ok().map(Arc::new))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Case::read(raw, names, &added, json.to_owned()))
    }

    fn read(
        raw: Value,
        names: BTreeMap<String, String>,
        added: &[Arc<Alert>],
        json: String,
    ) -> Case {
        let mut names = names;
        for (uuid, name) in own_names(&raw) {
            names.entry(uuid).or_insert(name);
        }
        let get = |k: &str| raw.get(k);
        let named = |uuid_key: &str| {
            text(get(uuid_key)).and_then(|u| names.get(&u.to_ascii_lowercase()).cloned())
        };
        let priority = label(get("custom_priority"))
            .or_else(|| named("custom_priority_uuid"))
            .or_else(|| text(get("priority")).map(|p| capitalized(&p)));
        let status = label(get("custom_status"))
            .or_else(|| named("custom_status_uuid"))
            .or_else(|| named("status_uuid"))
            .or_else(|| text(get("status")));
        let verdict = label(get("verdict")).or_else(|| named("verdict_uuid"));
        let mut assignees: Vec<String> = get("assignees")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(person).collect())
            .unwrap_or_default();
        if assignees.is_empty() {
            // Older answers: `subscribers` of type `assignee`.
            assignees = get("subscribers")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter(|s| s.get("type").and_then(Value::as_str) == Some("assignee"))
                        .filter_map(person)
                        .collect()
                })
                .unwrap_or_default();
        }
        let tags = get("tags")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(|t| text(Some(t))).collect())
            .unwrap_or_default();
        let mut alerts: Vec<CaseAlert> = get("alerts")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(case_alert).collect())
            .unwrap_or_default();
        for a in added {
            if !alerts.iter().any(|x| x.uuid.is_some() && x.uuid == a.uuid) {
                alerts.push(CaseAlert::of_alert(a));
            }
        }
        let stage = get("custom_status")
            .and_then(|s| s.get("stage"))
            .and_then(Value::as_str);
        let closed = stage.is_some_and(|s| s.eq_ignore_ascii_case("closed"))
            || status.as_deref().is_some_and(|s| {
                s.eq_ignore_ascii_case("closed") || s.eq_ignore_ascii_case("rejected")
            });
        Case {
            closed,
            uuid: text(get("uuid")),
            short_id: text(get("short_id")),
            title: text(get("title")),
            description: text(get("description")),
            priority,
            status,
            verdict,
            assignees,
            tags,
            manual: get("manual").and_then(Value::as_bool),
            alerts,
            number_of_alerts: get("number_of_alerts").and_then(Value::as_u64),
            names,
            stored: Stored { json, raw },
        }
    }

    /// The alert this case holds with uuid `uuid`, if listed.
    pub fn alert(&self, uuid: &str) -> Option<&CaseAlert> {
        self.alerts.iter().find(|a| {
            a.uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
        })
    }

    /// The name of a status, priority or verdict uuid, if known.
    pub fn name_of(&self, uuid: &str) -> Option<&str> {
        self.names
            .get(&uuid.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The uuids an `updated` event names, by what they are.
pub fn updated_refs(updated: Option<&Map<String, Value>>) -> Vec<(NameKind, Uuid)> {
    let Some(u) = updated else {
        return Vec::new();
    };
    [
        ("status_uuid", NameKind::Status),
        ("custom_status_uuid", NameKind::Status),
        ("custom_priority_uuid", NameKind::Priority),
        ("verdict_uuid", NameKind::Verdict),
    ]
    .iter()
    .filter_map(|(k, kind)| Some((*kind, canonical(u.get(*k)?.as_str()?)?)))
    .collect()
}

/// The uuids in `updated.added_alerts_uuid` (and removed ones, under
/// either name Sekoia.io has used).
pub fn alert_changes(updated: Option<&Map<String, Value>>) -> (Vec<Uuid>, Vec<Uuid>) {
    let list = |keys: &[&str]| -> Vec<Uuid> {
        let Some(u) = updated else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| u.get(*k)?.as_array())
            .flatten()
            .filter_map(|v| canonical(v.as_str()?))
            .collect()
    };
    (
        list(&["added_alerts_uuid"]),
        list(&["removed_alerts_uuid", "deleted_alerts_uuid"]),
    )
}

/// The uuids in a case object that need a look-up: those whose name the
/// case does not carry itself.
pub(super) fn case_refs(raw: &Value) -> Vec<(NameKind, Uuid)> {
    let mut out = Vec::new();
    let mut want = |has_name: bool, key: &str, kind: NameKind| {
        if !has_name {
            if let Some(u) = raw.get(key).and_then(Value::as_str).and_then(canonical) {
                out.push((kind, u));
            }
        }
    };
    want(
        label(raw.get("custom_priority")).is_some(),
        "custom_priority_uuid",
        NameKind::Priority,
    );
    let status_named = label(raw.get("custom_status")).is_some();
    want(status_named, "custom_status_uuid", NameKind::Status);
    want(
        status_named || text(raw.get("status")).is_some(),
        "status_uuid",
        NameKind::Status,
    );
    want(
        label(raw.get("verdict")).is_some(),
        "verdict_uuid",
        NameKind::Verdict,
    );
    out
}

/// The names a case object carries itself, by uuid.
pub(super) fn own_names(raw: &Value) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut add = |uuid_key: &str, name: Option<String>| {
        if let (Some(u), Some(n)) = (raw.get(uuid_key).and_then(Value::as_str), name) {
            names.insert(u.to_ascii_lowercase(), n);
        }
    };
    add("custom_priority_uuid", label(raw.get("custom_priority")));
    add("custom_status_uuid", label(raw.get("custom_status")));
    add(
        "status_uuid",
        label(raw.get("custom_status")).or_else(|| text(raw.get("status"))),
    );
    add("verdict_uuid", label(raw.get("verdict")));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        serde_json::from_slice(
            &std::fs::read(format!(
                "{}/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_fixture_reads_with_names_and_alerts() {
        let raw = fixture("case-full.json");
        let c = Case::from_parts(raw.clone(), own_names(&raw), &[]);
        assert_eq!(c.short_id.as_deref(), Some("CA42"));
        assert_eq!(c.priority.as_deref(), Some("High"));
        assert_eq!(c.status.as_deref(), Some("Ongoing"));
        assert_eq!(c.verdict.as_deref(), Some("True positive"));
        assert_eq!(c.tags, vec!["ransomware", "vip"]);
        assert_eq!(c.manual, Some(false));
        assert_eq!(c.alerts.len(), 2);
        assert_eq!(c.alerts[0].short_id.as_deref(), Some("ALEY4fqz8moo"));
        assert_eq!(c.alerts[0].urgency.as_ref().map(|u| u.value), Some(63));
        let back = Case::from_stored(c.json()).unwrap();
        assert_eq!(back.json(), c.json());
        assert_eq!(back.status, c.status);
    }

    /// The look-up endpoints' answers, as the fixtures keep them, name
    /// by `label`.
    #[test]
    fn status_priority_and_verdict_answers_are_read_by_label() {
        for (file, want) in [
            ("custom-status.json", "Closed"),
            ("custom-priority.json", "Critical"),
            ("custom-verdict.json", "True positive"),
        ] {
            assert_eq!(label(Some(&fixture(file))).as_deref(), Some(want), "{file}");
        }
    }

    #[test]
    fn a_sparse_case_takes_names_from_look_ups() {
        let raw = json!({"uuid": "x", "status_uuid": "2e4b4b02-9d4e-4b0e-9f0b-2a3c4d5e6f70",
            "custom_priority_uuid": "7b1f3c2a-1111-4a2b-9c3d-4e5f60718293", "priority": "low",
            "tags": "not a list", "alerts": [1, {"short_id": "AL1"}]});
        let refs = case_refs(&raw);
        assert_eq!(refs.len(), 2, "{refs:?}");
        let mut names = BTreeMap::new();
        names.insert("2e4b4b02-9d4e-4b0e-9f0b-2a3c4d5e6f70".into(), "Open".into());
        let c = Case::from_parts(raw, names, &[]);
        assert_eq!(c.status.as_deref(), Some("Open"));
        // No name for the custom priority: the plain one.
        assert_eq!(c.priority.as_deref(), Some("Low"));
        assert!(c.tags.is_empty());
        assert_eq!(c.alerts.len(), 1);
    }

    #[test]
    fn updated_uuids_and_alert_changes() {
        let u: Map<String, Value> = serde_json::from_value(json!({
            "status_uuid": "2e4b4b02-9d4e-4b0e-9f0b-2a3c4d5e6f70",
            "verdict_uuid": "not-a-uuid",
            "added_alerts_uuid": ["5696845f-9ecf-4431-9f0f-48ee0ee2eff1", 3],
            "deleted_alerts_uuid": ["0b6c1d2e-3f4a-4b5c-8d6e-7f8091a2b3c4"],
        }))
        .unwrap();
        assert_eq!(updated_refs(Some(&u)).len(), 1);
        let (added, removed) = alert_changes(Some(&u));
        assert_eq!((added.len(), removed.len()), (1, 1));
    }
}
