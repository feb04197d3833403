//! PagerDuty Events API v2: one incident per alert (`dedup_key` = its
//! uuid), triggered, acknowledged and resolved with it. The stored payload
//! carries no routing key: the request adds it when it sends.

use crate::render::paging::{alert_uuid, assets, details, lifecycle, source, title, Lifecycle};
use crate::render::{Facts, Level};
use serde_json::{json, Value};

/// PagerDuty Events API v2 (without `routing_key`, added by the sink).
pub fn pagerduty(f: &Facts, doc: &Value) -> Value {
    let dedup = alert_uuid(doc);
    let action = match lifecycle(doc) {
        Lifecycle::Acknowledged if dedup.is_some() => "acknowledge",
        Lifecycle::Resolved if dedup.is_some() => "resolve",
        // A new alert, and any other update: PagerDuty folds a trigger with
        // the same dedup_key into the open incident.
        _ => "trigger",
    };
    let mut out = json!({"event_action": action});
    if let Some(key) = &dedup {
        out["dedup_key"] = json!(key);
    }
    if action != "trigger" {
        return out;
    }
    let severity = match f.level {
        Level::Urgent => "critical",
        Level::Major => "error",
        Level::High => "warning",
        _ => "info",
    };
    let mut custom = details(f);
    custom.insert("event".into(), json!(f.summary));
    if let Some(a) = assets(doc) {
        custom.insert("assets".into(), a);
    }
    if let Some(body) = &f.body {
        custom.insert("comment".into(), json!(body));
    }
    out["payload"] = json!({
        "summary": title(f, 1024),
        "source": source(doc),
        "severity": severity,
        "custom_details": custom,
    });
    out["client"] = json!("hookrelay");
    if let Some(link) = &f.link {
        out["links"] = json!([{"href": link, "text": f.link_label}]);
        out["client_url"] = json!(link);
    }
    out
}
