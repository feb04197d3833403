//! Property-based fuzzing of what a hostile sender controls: the body
//! (event parser), the signature headers, `X-Forwarded-For`, and what the
//! renderers do with hostile alert text. Runs inside `cargo test` with a
//! bounded number of cases; for a longer pass:
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz`.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hookrelay::config::{DestinationKind, HookConfig, SignatureScheme};
use hookrelay::destinations::render;
use hookrelay::enrich::{Alert, Enrichment};
use hookrelay::ingress::auth::{self, ReplayGuard};
use hookrelay::render::Facts;
use hookrelay::secret::Secret;
use proptest::prelude::*;
use std::sync::Arc;

fn hook(scheme: SignatureScheme, secret: &str) -> HookConfig {
    HookConfig {
        id: uuid::Uuid::nil(),
        origin: "o".into(),
        previous_secret: None,
        previous_secret_until: None,
        secret: Some(Secret::new(secret)),
        signature: Some(scheme),
        allow_from: vec![],
        expect_within: None,
    }
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(
            "5696845f-9ecf-4431-9f0f-48ee0ee2eff1"
        )),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("action".to_owned()),
                    Just("attributes".to_owned()),
                    Just("uuid".to_owned()),
                    Just("alert_uuid".to_owned()),
                    Just("short_id".to_owned()),
                    Just("metadata".to_owned()),
                    Just("updated".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = hookrelay::event::parse(&body);
    }

    #[test]
    fn parser_never_panics_on_json(v in json_value()) {
        if let Ok(e) = hookrelay::event::parse(v.to_string().as_bytes()) {
            // Whatever is accepted carries a canonical alert uuid (safe in a URL path).
            if let Some(u) = e.alert_uuid {
                prop_assert_eq!(u.hyphenated().to_string().len(), 36);
            }
        }
    }

    #[test]
    fn signed_bodies_verify_and_any_change_fails(
        body in prop::collection::vec(any::<u8>(), 0..256),
        flip in any::<prop::sample::Index>(),
        id in "[a-zA-Z0-9_]{1,20}",
    ) {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let sig = auth::standard_webhooks_sign(SECRET, &id, ts, &body).unwrap();
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(&id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from_str(&ts.to_string()).unwrap());
        h.insert("webhook-signature", HeaderValue::from_str(&sig).unwrap());
        let hk = hook(SignatureScheme::StandardWebhooks, SECRET);
        prop_assert!(auth::verify("h", &hk, &h, &body, &ReplayGuard::default()).is_ok());
        if !body.is_empty() {
            let mut tampered = body.clone();
            let i = flip.index(tampered.len());
            tampered[i] ^= 0x01;
            prop_assert!(auth::verify("h", &hk, &h, &tampered, &ReplayGuard::default()).is_err());
        }
    }

    #[test]
    fn signature_headers_never_panic(
        values in prop::collection::vec(("[a-z-]{1,24}", "[ -~]{0,80}"), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut h = HeaderMap::new();
        for (k, v) in &values {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                h.append(k, v);
            }
        }
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature", "x-hub-signature-256", "x-forwarded-for"] {
            if let Some((_, v)) = values.first() {
                if let Ok(v) = HeaderValue::from_str(v) { h.insert(name, v); }
            }
        }
        for scheme in [SignatureScheme::StandardWebhooks, SignatureScheme::GithubSha256] {
            prop_assert!(auth::verify("h", &hook(scheme, SECRET), &h, &body, &ReplayGuard::default()).is_err());
        }
        let trusted = vec!["127.0.0.1/32".parse().unwrap()];
        let _ = auth::client_ip("127.0.0.1".parse().unwrap(), &h, &trusted);
    }

    #[test]
    fn hostile_alert_text_never_goes_live(title in ".{0,300}", rule in ".{0,100}", entity in ".{0,100}") {
        let mut v: serde_json::Value = serde_json::from_str(include_str!("fixtures/alert-full.json")).unwrap();
        let inject = |s: &str| format!("{s} <!channel> @here [x](https://evil.example) <https://evil.example|y>");
        v["title"] = inject(&title).into();
        v["rule"]["name"] = inject(&rule).into();
        v["entity"]["name"] = inject(&entity).into();
        let event = hookrelay::event::parse(include_bytes!("fixtures/event-alert-created.json")).unwrap();
        let e = Enrichment::Fetched(Arc::new(Alert::from_value(v).unwrap()));
        let facts = Facts::build(&event, &e, Some("https://app.sekoia.io/operations/alerts/{short_id}"));
        for kind in [DestinationKind::Teams, DestinationKind::TeamsLegacy, DestinationKind::Slack, DestinationKind::Mattermost, DestinationKind::Discord, DestinationKind::GoogleChat] {
            let out = serde_json::to_string(&render(kind, &facts, &|| serde_json::Value::Null)).unwrap();
            prop_assert!(!out.contains("<!channel>") && !out.contains("@here") && !out.contains("](https://evil"));
            prop_assert!(!out.contains("<https://evil"));
            prop_assert!(out.len() < 24 * 1024);
        }
        let mail = render(DestinationKind::Email, &facts, &|| serde_json::Value::Null);
        let html = mail["html"].as_str().unwrap();
        prop_assert!(!html.contains("<a href=\"https://evil") && !html.contains("<https://evil"));
        prop_assert!(!mail["subject"].as_str().unwrap().contains(['\r', '\n']));
    }
}
