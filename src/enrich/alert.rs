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
    pub alert_type_category: Option<String>,
    pub alert_type_value: Option<String>,
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

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
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
    /// Parses the API's answer, keeping its text (the tree is built again
    /// only if asked for).
    pub fn from_slice(body: &[u8]) -> Result<Alert, String> {
        let raw: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        // Valid JSON is valid UTF-8: nothing is replaced.
        let text = String::from_utf8_lossy(body).into_owned();
        Self::with_text(&raw, text)
    }

    /// Reads the API's JSON; only a non-object is an error.
    pub fn from_value(raw: Value) -> Result<Alert, String> {
        let text = raw.to_string();
        let alert = Self::with_text(&raw, text)?;
        let _ = alert.raw.set(raw);
        Ok(alert)
    }

    fn with_text(raw: &Value, json: String) -> Result<Alert, String> {
        if !raw.is_object() {
            return Err("expected a JSON object".into());
        }
        let urgency = raw.get("urgency").and_then(|u| {
            let value = u
                .get("value")
                .or_else(|| u.get("current_value"))
                .and_then(Value::as_f64)?;
            let value = value.clamp(0.0, 100.0).round() as u32;
            let display =
                text(u, &["display"]).unwrap_or_else(|| urgency_display(value).to_owned());
            Some(Urgency { value, display })
        });
        let created_at = raw.get("created_at").and_then(|v| match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => humantime::parse_rfc3339_weak(s)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64),
            _ => None,
        });
        Ok(Alert {
            uuid: text(raw, &["uuid"]),
            short_id: text(raw, &["short_id"]),
            title: text(raw, &["title"]),
            urgency,
            status: text(raw, &["status", "name"]),
            rule: text(raw, &["rule", "name"]),
            entity: text(raw, &["entity", "name"]),
            alert_type_category: text(raw, &["alert_type", "category"]),
            alert_type_value: text(raw, &["alert_type", "value"]),
            created_at,
            source: text(raw, &["source"]),
            target: text(raw, &["target"]),
            details: text(raw, &["details"]),
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
        assert_eq!(a.alert_type_category, None);
        assert_eq!(a.source, None);
        assert_eq!(a.rule.as_deref(), Some("C2 domains"));
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
