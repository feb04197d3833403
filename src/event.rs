//! The incoming webhook: Sekoia.io v2 JSON → domain [`Event`].
//!
//! Parsing is strict about the few fields the relay depends on (`type`,
//! `action`, `attributes`, and a canonical UUID wherever one will be put in
//! a URL) and lenient about everything else: unknown types, actions and
//! fields are kept as they came.

// Outside bytes: no indexing that could panic (see lib.rs).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::OnceLock;
use uuid::Uuid;

/// Why a body was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

/// One webhook event, as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct Event {
    /// `alert`, `content-proposal`, `alert-comment`, … (kept verbatim).
    pub kind: String,
    /// `created`, `updated`, `deleted`, … (kept verbatim).
    pub action: String,
    /// `attributes.uuid`, when present and canonical.
    pub uuid: Option<Uuid>,
    /// The alert to enrich from: `attributes.uuid` for alerts,
    /// `attributes.alert_uuid` for comments (only for events about an
    /// alert: see [`Subject`]).
    pub alert_uuid: Option<Uuid>,
    /// The case to enrich from: `attributes.uuid` for cases,
    /// `attributes.case_uuid` for case comments.
    pub case_uuid: Option<Uuid>,
    /// `attributes.short_id` or `attributes.alert_short_id`, as sent.
    pub short_id: Option<String>,
    /// `attributes.updated` of an `updated` event.
    pub updated: Option<Map<String, Value>>,
    /// `attributes.content` of a comment.
    pub content: Option<String>,
    /// `metadata.version`, when sent.
    pub version: Option<i64>,
    /// `metadata.created_at`, when sent.
    pub created_at: Option<String>,
    /// Whether `metadata` was there at all (documented as always sent).
    pub has_metadata: bool,
    /// The body as sent.
    json: String,
    /// The same as a tree, for templates, webhook destinations and
    /// raw-field conditions: built from `json` the first time one asks
    /// ([`Event::raw`]). Routing and the built-in messages need none.
    raw: OnceLock<Value>,
}

/// What kind of Sekoia.io object an event is about: it decides what is
/// fetched, how the message is titled and linked, and how it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `alert`, `alert-comment`, `alert-…`.
    Alert,
    /// `case`, `case-comment`, `case-…`.
    Case,
    /// Intelligence: `content-proposal` (a report), `report`, `intelligence-…`.
    Intelligence,
    /// The detection rules catalog (`rule` created, deprecated, …).
    Rules,
    /// Platform health: intakes, playbooks, connectors, a rule's rate limit.
    Health,
    /// hookrelay's own events (`hookrelay.silence`, `hookrelay.recovered`).
    Hookrelay,
    /// A type the relay does not know (yet).
    Unknown,
}

impl Subject {
    /// Of an event's `type` and `action`.
    pub fn of(kind: &str, action: &str) -> Subject {
        let kind = kind.to_ascii_lowercase();
        let action = action.to_ascii_lowercase();
        let family = |name: &str| kind == name || kind.starts_with(&format!("{name}-"));
        if kind.starts_with("hookrelay.") {
            Subject::Hookrelay
        } else if family("alert") {
            Subject::Alert
        } else if family("case") {
            Subject::Case
        } else if family("content-proposal") || family("report") || family("intelligence") {
            Subject::Intelligence
        } else if family("intake")
            || family("playbook")
            || family("connector")
            || family("module")
            || (family("rule") && action.contains("rate"))
        {
            Subject::Health
        } else if family("rule") || family("rules-catalog") {
            Subject::Rules
        } else {
            Subject::Unknown
        }
    }

    /// The word the console, `events` and the journey use.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Alert => "alert",
            Subject::Case => "case",
            Subject::Intelligence => "intelligence",
            Subject::Rules => "rules catalog",
            Subject::Health => "platform health",
            Subject::Hookrelay => "hookrelay",
            Subject::Unknown => "unknown",
        }
    }
}

impl Event {
    pub fn is_alert(&self) -> bool {
        self.kind == "alert"
    }

    pub fn is_case(&self) -> bool {
        self.kind == "case"
    }

    /// The conversation the event belongs to on a threaded destination:
    /// its alert, or its case.
    pub fn thread_key(&self) -> Option<Uuid> {
        self.alert_uuid.or(self.case_uuid)
    }

    /// What the event is about.
    pub fn subject(&self) -> Subject {
        Subject::of(&self.kind, &self.action)
    }

    /// The whole body as a tree.
    pub fn raw(&self) -> &Value {
        self.raw.get_or_init(|| {
            // `json` was checked when the event was parsed: it cannot fail now.
            serde_json::from_str(&self.json).unwrap_or(Value::Null)
        })
    }
}

/// Two events are the same when their bodies are (the tree, built or
/// not, is the body's).
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

/// The values of the named members of a JSON object, without building
/// the rest: each one's text, as it stands in `json` (the last one when a
/// name repeats, as a tree would keep it). The whole text is still
/// checked to be valid JSON. A valid text that is not an object is a
/// `Data` error ([`serde_json::Error::is_data`]).
pub fn pick<'a, const N: usize>(
    json: &'a str,
    names: [&str; N],
) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    struct Pick<'n, const N: usize>(&'n [&'n str; N]);
    impl<'de, const N: usize> Visitor<'de> for Pick<'_, N> {
        type Value = [Option<&'de RawValue>; N];
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = [None; N];
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match self.0.iter().position(|n| *n == key) {
                    Some(i) => {
                        let value = map.next_value::<&'de RawValue>()?;
                        if let Some(slot) = out.get_mut(i) {
                            *slot = Some(value);
                        }
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(out)
        }
    }
    impl<'de, const N: usize> DeserializeSeed<'de> for Pick<'_, N> {
        type Value = [Option<&'de RawValue>; N];
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let out = Pick(&names).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

/// A member's value when it is not an object or an array (those are
/// `None`, as is an absent member): a string, number, boolean or null.
pub fn scalar(v: Option<&RawValue>) -> Option<Value> {
    let v = v?;
    if v.get().starts_with(['{', '[']) {
        return None;
    }
    serde_json::from_str(v.get()).ok()
}

/// The members of an object value (`None` for any other value).
pub fn members<'a, const N: usize>(
    v: Option<&'a RawValue>,
    names: [&str; N],
) -> Option<[Option<&'a RawValue>; N]> {
    let v = v?;
    if !v.get().starts_with('{') {
        return None;
    }
    pick(v.get(), names).ok()
}

/// `v`: the member's value, `None` for an object or an array.
fn canonical_uuid(v: Option<Value>, field: &str) -> Result<Uuid, EventError> {
    let Some(Value::String(s)) = v else {
        return Err(EventError(format!(
            "field `{field}` must be a string (a UUID)"
        )));
    };
    // Only the hyphenated 36-character form: braces, URNs and simple forms
    // are refused so that what goes into the API path is exactly a UUID.
    match Uuid::try_parse(&s) {
        Ok(u) if s.len() == 36 => Ok(u),
        _ => Err(EventError(format!(
            "field `{field}` must be a canonical UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))),
    }
}

/// Parses and validates a webhook body. Only the members the relay reads
/// are taken out; the tree of the whole body is built later, if a
/// template or condition asks for it ([`Event::raw`]).
pub fn parse(body: &[u8]) -> Result<Event, EventError> {
    let not_json = |e: &dyn std::fmt::Display| EventError(format!("body is not valid JSON: {e}"));
    let json = std::str::from_utf8(body).map_err(|e| not_json(&e))?;
    let [kind, action, attributes, metadata] =
        pick(json, ["type", "action", "attributes", "metadata"]).map_err(|e| {
            if e.is_data() {
                EventError("body must be a JSON object".into())
            } else {
                not_json(&e)
            }
        })?;
    let kind = string_field("type", kind)?;
    let action = string_field("action", action)?;
    let Some(attributes) = attributes else {
        return Err(EventError("missing required field `attributes`".into()));
    };
    let Some([uuid, alert_uuid, short_id, alert_short_id, updated, content, case_uuid]) = members(
        Some(attributes),
        [
            "uuid",
            "alert_uuid",
            "short_id",
            "alert_short_id",
            "updated",
            "content",
            "case_uuid",
        ],
    ) else {
        return Err(EventError("field `attributes` must be an object".into()));
    };
    let ids = Ids::read(&kind, &action, uuid, alert_uuid, case_uuid)?;
    let text = |v: Option<&RawValue>| match scalar(v) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let short_id = text(short_id).or_else(|| text(alert_short_id));
    let metadata = members(metadata, ["version", "created_at"]);

    Ok(Event {
        kind,
        action,
        uuid: ids.uuid,
        alert_uuid: ids.alert,
        case_uuid: ids.case,
        short_id,
        updated: updated
            .filter(|v| v.get().starts_with('{'))
            .and_then(|v| serde_json::from_str(v.get()).ok()),
        content: text(content),
        version: metadata
            .and_then(|[version, _]| scalar(version))
            .and_then(|v| v.as_i64()),
        created_at: metadata.and_then(|[_, created_at]| text(created_at)),
        has_metadata: metadata.is_some(),
        json: json.to_owned(),
        raw: OnceLock::new(),
    })
}

/// A required top-level string member (`type`, `action`): present,
/// a string, not empty.
fn string_field(name: &str, v: Option<&RawValue>) -> Result<String, EventError> {
    match v.map(|v| scalar(Some(v))) {
        Some(Some(Value::String(s))) if !s.is_empty() => Ok(s),
        Some(Some(Value::String(_))) => {
            Err(EventError(format!("field `{name}` must not be empty")))
        }
        Some(_) => Err(EventError(format!("field `{name}` must be a string"))),
        None => Err(EventError(format!("missing required field `{name}`"))),
    }
}

/// The uuids an event carries, each checked canonical: its own, and the
/// alert and the case it is about (only an event about an alert is
/// enriched from the alert API, only one about a case from the case API).
struct Ids {
    uuid: Option<Uuid>,
    alert: Option<Uuid>,
    case: Option<Uuid>,
}

impl Ids {
    fn read(
        kind: &str,
        action: &str,
        uuid: Option<&RawValue>,
        alert_uuid: Option<&RawValue>,
        case_uuid: Option<&RawValue>,
    ) -> Result<Ids, EventError> {
        let uuid = match uuid.map(|v| scalar(Some(v))) {
            None | Some(Some(Value::Null)) if kind == "alert" => {
                return Err(EventError(
                    "missing required field `attributes.uuid` for an alert".into(),
                ))
            }
            None | Some(Some(Value::Null)) if kind == "case" => {
                return Err(EventError(
                    "missing required field `attributes.uuid` for a case".into(),
                ))
            }
            None | Some(Some(Value::Null)) => None,
            Some(v) => Some(canonical_uuid(v, "attributes.uuid")?),
        };
        let optional = |v: Option<&RawValue>, field: &str| match v.map(|v| scalar(Some(v))) {
            None | Some(Some(Value::Null)) => Ok(None),
            Some(v) => canonical_uuid(v, field).map(Some),
        };
        let comment_alert = optional(alert_uuid, "attributes.alert_uuid")?;
        let subject = Subject::of(kind, action);
        // An unknown type that happens to carry an `alert_uuid` is not an alert.
        let alert = match subject {
            Subject::Alert if kind == "alert" => uuid,
            Subject::Alert => comment_alert,
            _ => None,
        };
        let comment_case = optional(case_uuid, "attributes.case_uuid")?;
        let case = match subject {
            Subject::Case if kind == "case" => uuid,
            Subject::Case => comment_case,
            _ => None,
        };
        Ok(Ids { uuid, alert, case })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expect: Result<(), &str>) {
        match (parse(body.as_bytes()), expect) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(msg)) => assert!(e.0.contains(msg), "{e} does not contain {msg}"),
            (got, want) => panic!("for {body}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn fixtures_parse() {
        for f in [
            include_str!("../tests/fixtures/event-alert-created.json"),
            include_str!("../tests/fixtures/event-alert-updated-status.json"),
            include_str!("../tests/fixtures/event-alert-updated-urgency.json"),
            include_str!("../tests/fixtures/event-content-proposal-created.json"),
            include_str!("../tests/fixtures/event-alert-comment-created.json"),
        ] {
            parse(f.as_bytes()).unwrap();
        }
        let comment =
            parse(include_str!("../tests/fixtures/event-alert-comment-created.json").as_bytes())
                .unwrap();
        assert_eq!(
            comment.alert_uuid.unwrap().to_string(),
            "5696845f-9ecf-4431-9f0f-48ee0ee2eff1"
        );
        assert_eq!(comment.short_id.as_deref(), Some("ALEY4fqz8moo"));
    }

    #[test]
    fn rejections_name_the_field() {
        check("not json", Err("not valid JSON"));
        check("[]", Err("JSON object"));
        check(r#"{"action":"created","attributes":{}}"#, Err("`type`"));
        check(r#"{"type":"alert","attributes":{}}"#, Err("`action`"));
        check(
            r#"{"type":"alert","action":"created"}"#,
            Err("`attributes`"),
        );
        check(
            r#"{"type":"alert","action":"created","attributes":[]}"#,
            Err("`attributes`"),
        );
        check(
            r#"{"type":"alert","action":"created","attributes":{}}"#,
            Err("`attributes.uuid`"),
        );
        check(
            r#"{"type":"alert","action":"created","attributes":{"uuid":"../../v1/admin"}}"#,
            Err("`attributes.uuid` must be a canonical UUID"),
        );
        check(
            r#"{"type":"alert","action":"created","attributes":{"uuid":"5696845f9ecf44319f0f48ee0ee2eff1"}}"#,
            Err("canonical"),
        );
        check(
            r#"{"type":"alert-comment","action":"created","attributes":{"alert_uuid":"x/../y"}}"#,
            Err("`attributes.alert_uuid`"),
        );
        check(
            r#"{"type":1,"action":"created","attributes":{}}"#,
            Err("`type` must be a string"),
        );
    }

    #[test]
    fn the_tree_is_built_only_when_asked_and_is_the_whole_body() {
        let body = include_str!("../tests/fixtures/event-alert-updated-status.json");
        let e = parse(body.as_bytes()).unwrap();
        assert!(e.raw.get().is_none(), "no tree until one is needed");
        let whole: Value = serde_json::from_str(body).unwrap();
        assert_eq!(e.raw(), &whole);
        assert_eq!(
            e.updated.as_ref(),
            whole["attributes"]["updated"].as_object()
        );
        assert_eq!(e.version, whole["metadata"]["version"].as_i64());
    }

    #[test]
    fn members_are_read_as_a_tree_would_read_them() {
        // Escaped names, the last of a repeated name, wrong types as absent.
        let e = parse(
            br#"{"ty\u0070e":"alert","action":"x","action":"created",
                "attributes":{"uuid":"5696845f-9ecf-4431-9f0f-48ee0ee2eff1","short_id":7,
                  "alert_short_id":"ALX","content":{"a":1},"updated":[1]},
                "metadata":{"version":"2","created_at":"2024-01-01T00:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!((e.kind.as_str(), e.action.as_str()), ("alert", "created"));
        assert_eq!(e.short_id.as_deref(), Some("ALX"));
        assert_eq!((e.content, e.updated, e.version), (None, None, None));
        assert_eq!(e.created_at.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert!(e.has_metadata);
        let not_meta =
            parse(br#"{"type":"countermeasure","action":"x","attributes":{},"metadata":[]}"#);
        assert!(!not_meta.unwrap().has_metadata);
        // The whole text is checked, not only the members read.
        check(
            r#"{"type":"countermeasure","action":"x","attributes":{},"other":[1,}"#,
            Err("not valid JSON"),
        );
        check(
            r#"{"type":"countermeasure","action":"x","attributes":{}} x"#,
            Err("not valid JSON"),
        );
        check(r#""text""#, Err("JSON object"));
        check(
            r#"{"type":"countermeasure","action":"x","attributes":{"uuid":{}}}"#,
            Err("must be a string (a UUID)"),
        );
        assert!(parse(b"{\"type\":\"\xff\"}")
            .unwrap_err()
            .0
            .contains("not valid JSON"));
    }

    #[test]
    fn unknown_types_and_fields_are_kept() {
        check(
            r#"{"type":"countermeasure","action":"archived","attributes":{"x":1},"extra":true}"#,
            Ok(()),
        );
        let e = parse(br#"{"type":"countermeasure","action":"x","attributes":{}}"#).unwrap();
        assert!(!e.has_metadata);
        assert_eq!(e.alert_uuid, None);
    }
}
