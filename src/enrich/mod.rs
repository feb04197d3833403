//! Enrichment: fetch the alert (or the case, `case.rs`) an event is about
//! from its origin's API.
//!
//! Owns the per-origin HTTP concurrency bound, the short TTL cache and the
//! coalescing of concurrent look-ups of one alert (both through `moka`), and
//! the retry-within-a-deadline policy. It never fails an event: when the
//! alert cannot be had, the result says so and the event goes on degraded.
//!
//! A tenant's origins are untrusted: their requests go through the egress
//! guard (`crate::http::guard`), what their messages say of a failure is a
//! short category (never the API's words or a connection's details), and
//! [`Enricher::admit`] bounds how many of a tenant's events are in
//! enrichment at once, so one slow origin cannot hold the whole pipeline.

mod alert;
mod alerts;
mod case;
mod cases;
mod origin;
mod outcome;
mod workflow;

pub use alert::{Alert, AlertType, Asset, Urgency};
pub use case::{alert_changes, updated_refs, Case, CaseAlert, NameKind};
pub use origin::{error_chain, Admission, Enricher, ORIGIN_SHARE, TENANT_SHARE};
pub use outcome::{EnrichError, Enrichment};
pub use workflow::WorkflowError;

use crate::event::Event;

impl Enricher {
    /// Enriches one event from `origin`. Never fails: see [`Enrichment`].
    pub async fn enrich(&self, origin: &str, event: &Event) -> Enrichment {
        self.enrich_traced(origin, event).await.0
    }

    /// Like [`Enricher::enrich`]; also says whether the alert came from the
    /// cache (for the console's journey).
    pub async fn enrich_traced(&self, origin: &str, event: &Event) -> (Enrichment, bool) {
        let Some(uuid) = event.alert_uuid else {
            return match (event.case_uuid, self.origins.get(origin)) {
                (Some(case), Some(client)) => self.enrich_case(client, event, case).await,
                (Some(_), None) => (
                    Enrichment::Unavailable(format!("origin {origin:?} is no longer configured")),
                    false,
                ),
                (None, _) => (Enrichment::NotApplicable, false),
            };
        };
        let Some(client) = self.origins.get(origin) else {
            // Validation ties every hook to an origin; a reload may have
            // removed it since the event was accepted.
            return (
                Enrichment::Unavailable(format!(
                    "not configured (origin {origin:?} is no longer configured)"
                )),
                false,
            );
        };
        self.enrich_alert(client, event, uuid).await
    }
}

#[cfg(test)]
mod tests {
    use super::origin::*;
    use super::*;
    use crate::config::OriginConfig;
    use crate::secret::Secret;
    use crate::telemetry::Metrics;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn alert_urls_extend_the_base_path() {
        let uuid = "5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e";
        for (base, want) in [
            (
                "https://api.sekoia.io",
                "https://api.sekoia.io/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
            (
                "http://127.0.0.1:9/api",
                "http://127.0.0.1:9/api/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
            (
                "http://h/a/b/",
                "http://h/a/b/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
            // A query or fragment in the base (refused by validation) never
            // swallows the path.
            (
                "http://h/a?x=1#f",
                "http://h/a/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
        ] {
            let base = reqwest::Url::parse(base).unwrap();
            assert_eq!(
                api_url(&base, &["v1", "sic", "alerts", uuid]).as_str(),
                want
            );
        }
        // A segment is one segment, whatever it holds.
        let base = reqwest::Url::parse("https://api.sekoia.io").unwrap();
        assert_eq!(
            api_url(&base, &["v2", "assets", "x?y=1#z/../w"]).as_str(),
            "https://api.sekoia.io/v2/assets/x%3Fy=1%23z%2F..%2Fw"
        );
    }

    /// Messages say a category, never the API's words or the connection's
    /// details; older records (a replayed dead letter) get one too.
    #[test]
    fn shown_reasons_are_categories() {
        let shown = |r: &str| Enrichment::Unavailable(r.into()).shown_reason();
        for (reason, want) in [
            ("timeout (gave up after 3 attempts within the enrich deadline; last error: operation timed out)", Some("timeout")),
            ("refused (gave up after 2 attempts; last error: tcp connect error: Connection refused (os error 111))", Some("refused")),
            ("HTTP 503 (gave up after 4 attempts; last error: HTTP 503 <html>internal secret page</html>)", Some("HTTP 503")),
            ("HTTP 404 (alert API answered 404 (Not Found))", Some("HTTP 404")),
            ("address not allowed (10.0.0.1 is a private address)", Some("address not allowed")),
            ("alert API answered 403 (Forbidden)", Some("HTTP 403")),
            ("hook \"x\" is no longer configured", None),
            ("tcp connect error: Connection refused (os error 111)", None),
            ("HTTP 50x (x)", None),
        ] {
            assert_eq!(shown(reason).as_deref(), want, "{reason}");
        }
        assert_eq!(Enrichment::NotApplicable.shown_reason(), None);
    }

    /// A tenant's events hold at most its share; the file's origins theirs.
    #[tokio::test]
    async fn admission_is_bounded_per_tenant() {
        let origin = |tenant: Option<&str>| OriginConfig {
            kind: crate::config::OriginKind::Sekoia,
            region: None,
            base_url: Some("https://api.sekoia.io".into()),
            api_key: Some(Secret::new("k")),
            alert_link: None,
            case_link: None,
            timeout: Duration::from_secs(1),
            concurrency: 1,
            cache_ttl: Duration::from_secs(1),
            enrich_deadline: Duration::from_secs(1),
            tenant: tenant.map(|t| crate::config::TenantMark {
                name: t.into(),
                egress: Arc::new(Default::default()),
            }),
        };
        let origins = std::collections::BTreeMap::from([
            ("acme/a".to_owned(), origin(Some("acme"))),
            ("acme/b".to_owned(), origin(Some("acme"))),
            ("beta/a".to_owned(), origin(Some("beta"))),
            ("file".to_owned(), origin(None)),
        ]);
        let e = Enricher::new(&origins, reqwest::Client::new(), Arc::new(Metrics::new()));
        // acme's two origins share one budget.
        let mut held: Vec<Admission> = (0..TENANT_SHARE)
            .map(|i| {
                e.admit(if i % 2 == 0 { "acme/a" } else { "acme/b" })
                    .unwrap()
            })
            .collect();
        assert!(e.admit("acme/a").is_none());
        assert!(e.admit("acme/b").is_none());
        // Others are not affected.
        assert!(e.admit("beta/a").is_some());
        assert!(e.admit("file").is_some());
        assert!(e.admit("gone").is_some(), "an unknown origin is admitted");
        // A routed event gives its place back.
        held.pop();
        assert!(e.admit("acme/b").is_some());
    }

    /// What the spool records is enough to rebuild the enrichment when a
    /// message is rendered again (a replayed dead letter).
    #[test]
    fn the_stored_form_reads_back() {
        let alert =
            Alert::from_slice(include_bytes!("../../tests/fixtures/alert-full.json")).unwrap();
        for e in [
            Enrichment::Fetched(Arc::new(alert)),
            Enrichment::NotApplicable,
            Enrichment::Unavailable("alert API answered 404 (Not Found)".into()),
        ] {
            let (note, json) = e.stored();
            let back = Enrichment::from_stored(Some(&note), json.as_deref());
            assert_eq!(back.stored(), (note, json));
        }
        assert!(matches!(
            Enrichment::from_stored(Some("ok"), Some("[1]")),
            Enrichment::Unavailable(r) if r.starts_with("unreadable (the stored alert is unreadable")
        ));
    }
}
