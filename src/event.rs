//! The incoming webhook: Sekoia.io v2 JSON → domain [`Event`].
//!
//! Parsing is strict about the few fields the relay depends on (`type`,
//! `action`, `attributes`, and a canonical UUID wherever one will be put in
//! a URL) and lenient about everything else: unknown types, actions and
//! fields are kept as they came.

use serde_json::{Map, Value};
use uuid::Uuid;

/// Why a body was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventError(pub String);

/// One webhook event, as the pipeline sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `alert`, `content-proposal`, `alert-comment`, … (kept verbatim).
    pub kind: String,
    /// `created`, `updated`, `deleted`, … (kept verbatim).
    pub action: String,
    /// `attributes.uuid`, when present and canonical.
    pub uuid: Option<Uuid>,
    /// The alert to enrich from: `attributes.uuid` for alerts,
    /// `attributes.alert_uuid` for comments.
    pub alert_uuid: Option<Uuid>,
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
    /// The whole body, for templates and history.
    pub raw: Value,
}

impl Event {
    pub fn is_alert(&self) -> bool {
        self.kind == "alert"
    }
}

fn canonical_uuid(v: &Value, field: &str) -> Result<Uuid, EventError> {
    let s = v
        .as_str()
        .ok_or_else(|| EventError(format!("field `{field}` must be a string (a UUID)")))?;
    // Only the hyphenated 36-character form: braces, URNs and simple forms
    // are refused so that what goes into the API path is exactly a UUID.
    match Uuid::try_parse(s) {
        Ok(u) if s.len() == 36 => Ok(u),
        _ => Err(EventError(format!(
            "field `{field}` must be a canonical UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))),
    }
}

/// Parses and validates a webhook body.
pub fn parse(body: &[u8]) -> Result<Event, EventError> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| EventError(format!("body is not valid JSON: {e}")))?;
    let obj = raw
        .as_object()
        .ok_or_else(|| EventError("body must be a JSON object".into()))?;
    let string_field = |name: &str| -> Result<String, EventError> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(EventError(format!("field `{name}` must not be empty"))),
            Some(_) => Err(EventError(format!("field `{name}` must be a string"))),
            None => Err(EventError(format!("missing required field `{name}`"))),
        }
    };
    let kind = string_field("type")?;
    let action = string_field("action")?;
    let attributes = match obj.get("attributes") {
        Some(Value::Object(a)) => a,
        Some(_) => return Err(EventError("field `attributes` must be an object".into())),
        None => return Err(EventError("missing required field `attributes`".into())),
    };

    let uuid = match attributes.get("uuid") {
        None | Some(Value::Null) if kind == "alert" => {
            return Err(EventError(
                "missing required field `attributes.uuid` for an alert".into(),
            ))
        }
        None | Some(Value::Null) => None,
        Some(v) => Some(canonical_uuid(v, "attributes.uuid")?),
    };
    let comment_alert = match attributes.get("alert_uuid") {
        None | Some(Value::Null) => None,
        Some(v) => Some(canonical_uuid(v, "attributes.alert_uuid")?),
    };
    let alert_uuid = if kind == "alert" { uuid } else { comment_alert };

    let text = |name: &str| {
        attributes
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let short_id = text("short_id").or_else(|| text("alert_short_id"));
    let metadata = obj.get("metadata").and_then(Value::as_object);

    Ok(Event {
        kind,
        action,
        uuid,
        alert_uuid,
        short_id,
        updated: attributes
            .get("updated")
            .and_then(Value::as_object)
            .cloned(),
        content: text("content"),
        version: metadata
            .and_then(|m| m.get("version"))
            .and_then(Value::as_i64),
        created_at: metadata
            .and_then(|m| m.get("created_at"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        has_metadata: metadata.is_some(),
        raw,
    })
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
    fn unknown_types_and_fields_are_kept() {
        check(
            r#"{"type":"case","action":"archived","attributes":{"x":1},"extra":true}"#,
            Ok(()),
        );
        let e = parse(br#"{"type":"case","action":"x","attributes":{}}"#).unwrap();
        assert!(!e.has_metadata);
        assert_eq!(e.alert_uuid, None);
    }
}
