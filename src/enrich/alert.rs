//! The alert object returned by `GET /v1/sic/alerts/{uuid}`, as the core
//! uses it. Every field is optional: the API may omit or null any of them,
//! and a wrong type is treated as absent rather than failing the event.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Urgency {
    /// 0–100.
    pub value: u32,
    /// Low, Moderate, High, Major, Urgent (or whatever the API said).
    pub display: String,
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub uuid: Option<String>,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub urgency: Option<Urgency>,
    pub status: Option<String>,
    pub rule: Option<String>,
    pub entity: Option<String>,
    /// `alert_type`: its category and value.
    pub alert_type: AlertType,
    /// Epoch seconds.
    pub created_at: Option<i64>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub details: Option<String>,
    /// The object as the API sent it (kept in the spool's history).
    pub json: String,
    /// The same as a tree, for operator templates, raw-field conditions
    /// and actions: built from `json` the first time one asks ([`Alert::raw`]).
    /// Most events need none, and a cached alert without its tree is a
    /// third of the size.
    raw: std::sync::OnceLock<Value>,
    /// Its assets as the asset API described them (fetched only when a
    /// route needs their criticality); empty otherwise.
    pub assets: Vec<Asset>,
}

/// An alert's type, as the API gives it: a category and a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertType {
    pub category: Option<String>,
    pub value: Option<String>,
}

/// One of an alert's assets, from `GET /v2/asset-management/assets/{uuid}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Asset {
    pub uuid: String,
    /// `None`: the asset could not be fetched (unknown).
    pub name: Option<String>,
    /// 0–100, when the asset has one.
    pub criticality: Option<u32>,
}

impl Alert {
    /// The whole object as a tree.
    pub fn raw(&self) -> &Value {
        self.raw.get_or_init(|| {
            // `json` parsed when the alert was made; it cannot fail now.
            serde_json::from_str(&self.json).unwrap_or(Value::Null)
        })
    }

    /// The uuids of the alert's assets (`assets`: a list of uuids).
    pub fn asset_uuids(&self) -> Vec<String> {
        self.raw()
            .get("assets")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str())
                    .filter(|s| uuid::Uuid::try_parse(s).is_ok() && s.len() == 36)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A member's text: a string that is not blank, or a number.
fn text(v: Option<&serde_json::value::RawValue>) -> Option<String> {
    match crate::event::scalar(v)? {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Sekoia's display names by urgency value.
pub fn urgency_display(value: u32) -> &'static str {
    match value {
        0..=19 => "Low",
        20..=39 => "Moderate",
        40..=59 => "High",
        60..=79 => "Major",
        _ => "Urgent",
    }
}

impl Alert {
    /// Parses the API's answer, keeping its text. Only the fields the
    /// relay reads are taken out: the tree is built if something asks
    /// for it ([`Alert::raw`]).
    pub fn from_slice(body: &[u8]) -> Result<Alert, String> {
        let json = std::str::from_utf8(body).map_err(|e| e.to_string())?;
        Self::from_text(json.to_owned())
    }

    /// Reads the API's JSON; only a non-object is an error.
    pub fn from_value(raw: Value) -> Result<Alert, String> {
        let alert = Self::from_text(raw.to_string())?;
        let _ = alert.raw.set(raw);
        Ok(alert)
    }

    /// The alert in `json`, its fields read from the text.
    fn from_text(json: String) -> Result<Alert, String> {
        use crate::event::{members, pick, scalar};
        let [uuid, short_id, title, urgency, status, rule, entity, alert_type, created_at, source, target, details] =
            pick(
                &json,
                [
                    "uuid",
                    "short_id",
                    "title",
                    "urgency",
                    "status",
                    "rule",
                    "entity",
                    "alert_type",
                    "created_at",
                    "source",
                    "target",
                    "details",
                ],
            )
            .map_err(|e| {
                if e.is_data() {
                    "expected a JSON object".to_owned()
                } else {
                    e.to_string()
                }
            })?;
        let name = |v| members(v, ["name"]).and_then(|[name]| text(name));
        let urgency = members(urgency, ["value", "current_value", "display"]).and_then(
            |[value, current, display]| {
                let value = scalar(value.or(current))?.as_f64()?;
                let value = value.clamp(0.0, 100.0).round() as u32;
                let display = text(display).unwrap_or_else(|| urgency_display(value).to_owned());
                Some(Urgency { value, display })
            },
        );
        let created_at = scalar(created_at).and_then(|v| match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => humantime::parse_rfc3339_weak(&s)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64),
            _ => None,
        });
        let alert_type = members(alert_type, ["category", "value"]);
        Ok(Alert {
            uuid: text(uuid),
            short_id: text(short_id),
            title: text(title),
            urgency,
            status: name(status),
            rule: name(rule),
            entity: name(entity),
            alert_type: AlertType {
                category: alert_type.and_then(|[c, _]| text(c)),
                value: alert_type.and_then(|[_, v]| text(v)),
            },
            created_at,
            source: text(source),
            target: text(target),
            details: text(details),
            raw: std::sync::OnceLock::new(),
            json,
            assets: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_sparse_fixtures() {
        let full: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/alert-full.json")).unwrap();
        let a = Alert::from_value(full).unwrap();
        assert_eq!(
            a.title.as_deref(),
            Some("Suspicious PowerShell download cradle")
        );
        assert_eq!(
            a.urgency,
            Some(Urgency {
                value: 63,
                display: "Major".into()
            })
        );
        assert_eq!(a.entity.as_deref(), Some("Headquarters"));
        assert_eq!(a.created_at, Some(1642172817));

        let sparse: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/alert-sparse.json")).unwrap();
        let a = Alert::from_value(sparse).unwrap();
        assert_eq!(a.entity, None);
        assert_eq!(a.alert_type.category, None);
        assert_eq!(a.source, None);
        assert_eq!(a.rule.as_deref(), Some("C2 domains"));
    }

    #[test]
    fn fields_are_read_without_the_tree_as_the_tree_has_them() {
        let body = include_bytes!("../../tests/fixtures/alert-full.json");
        let a = Alert::from_slice(body).unwrap();
        assert!(a.raw.get().is_none(), "no tree until one is needed");
        let b = Alert::from_value(serde_json::from_slice(body).unwrap()).unwrap();
        assert_eq!(
            (
                &a.uuid,
                &a.short_id,
                &a.title,
                &a.urgency,
                &a.status,
                &a.rule
            ),
            (
                &b.uuid,
                &b.short_id,
                &b.title,
                &b.urgency,
                &b.status,
                &b.rule
            )
        );
        assert_eq!(
            (
                &a.entity,
                &a.alert_type.category,
                &a.alert_type.value,
                &a.created_at
            ),
            (
                &b.entity,
                &b.alert_type.category,
                &b.alert_type.value,
                &b.created_at
            )
        );
        assert_eq!(
            (&a.source, &a.target, &a.details),
            (&b.source, &b.target, &b.details)
        );
        assert_eq!(a.raw(), b.raw());
        assert_eq!(a.json.as_bytes(), body);
        // A repeated name: the last, as in the tree.
        let a = Alert::from_slice(
            br#"{"title":"a","title":"b","urgency":{"value":null,"current_value":9}}"#,
        )
        .unwrap();
        assert_eq!(a.title.as_deref(), Some("b"));
        assert_eq!(
            a.urgency, None,
            "a null value is not replaced by current_value"
        );
        assert_eq!(
            Alert::from_slice(b"[1]").unwrap_err(),
            "expected a JSON object"
        );
        assert!(Alert::from_slice(br#"{"title":"a""#).is_err());
    }

    #[test]
    fn wrong_types_are_absent() {
        let a = Alert::from_value(serde_json::json!({"title": 5, "urgency": "high", "status": []}))
            .unwrap();
        assert_eq!(a.title.as_deref(), Some("5"));
        assert_eq!(a.urgency, None);
        assert_eq!(a.status, None);
        assert!(Alert::from_value(serde_json::json!([1])).is_err());
    }

    #[test]
    fn the_tree_is_built_from_the_text_when_asked_for() {
        let body = include_bytes!("../../tests/fixtures/alert-full.json");
        let a = Alert::from_slice(body).unwrap();
        assert!(a.raw.get().is_none(), "no tree until one is needed");
        let expected: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(a.raw(), &expected);
        assert_eq!(a.json.as_bytes(), body);
    }
}
