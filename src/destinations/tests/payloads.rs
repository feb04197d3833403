//! Payloads of destinations with templates, threads, mentions, and the
//! size limits of each chat service.

use super::*;

fn with_template(kind: DestinationKind, text: &str) -> (Destination, ()) {
    let escape = if kind == DestinationKind::Email {
        Escape::Html
    } else {
        Escape::Json
    };
    let templates = Templates::compile(Some(("t", text)), None, escape).unwrap();
    let dest: DestinationConfig = serde_json::from_value(serde_json::json!({
        "kind": kind.as_str(), "url": "https://example.com/x", "template": "t"
    }))
    .unwrap();
    (
        Destination {
            config: dest,
            templates: Some(templates),
            console_url: None,
        },
        (),
    )
}

#[test]
fn templates_render_with_the_message_document() {
    let f = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    );
    let (dest, _file) = with_template(
        DestinationKind::Slack,
        r#"{"text": {{ ("*" ~ message.headline|slack_escape ~ "* " ~ route.name)|truncate(60) }}}"#,
    );
    let out = payload(&dest, &f, &|| f.doc()).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with('*') && text.chars().count() <= 60,
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");
}

#[test]
fn a_template_that_renders_invalid_json_is_an_error() {
    let f = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let (dest, _file) = with_template(
        DestinationKind::Webhook,
        "{\"text\": {{ message.headline|safe }}}",
    );
    let e = payload(&dest, &f, &|| f.doc()).unwrap_err();
    assert!(matches!(e, RenderError::InvalidJson { .. }), "{e}");
    assert!(e.to_string().contains("rendered invalid JSON"), "{e}");
}

#[test]
fn shipped_templates_compile_and_render_valid_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let kind = match name.split('.').next().unwrap() {
            "teams" => DestinationKind::Teams,
            "teams-legacy" => DestinationKind::TeamsLegacy,
            "slack" => DestinationKind::Slack,
            "mattermost" => DestinationKind::Mattermost,
            "discord" => DestinationKind::Discord,
            "google-chat" => DestinationKind::GoogleChat,
            "email" => DestinationKind::Email,
            "webhook" => DestinationKind::Webhook,
            other => panic!("unexpected template {other}"),
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let (dest, _file) = with_template(kind, &text);
        for alert in ["alert-full.json", "alert-sparse.json", "alert-hostile.json"] {
            let f = facts("event-alert-created.json", &enrichment(alert));
            let out = payload(&dest, &f, &|| f.doc()).unwrap_or_else(|e| panic!("{name}: {e}"));
            if is_chat(kind) {
                assert!(out.contains("Open in Sekoia.io"), "{name}: {out}");
            }
            if is_chat(kind) {
                assert!(
                    !out.contains("<!channel>") && !out.contains("](https://evil"),
                    "{name}: {out}"
                );
            }
        }
        let degraded = facts(
            "event-alert-created.json",
            &Enrichment::Unavailable("down".into()),
        );
        payload(&dest, &degraded, &|| degraded.doc()).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} templates in config/templates");
}

/// A destination of `kind` with no template, as configured in TOML.
fn destination(kind: &str, extra: serde_json::Value) -> Destination {
    let mut v = serde_json::json!({"kind": kind, "url": "https://chat.example.org/hook"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    if v.get("token").is_some() {
        v.as_object_mut().unwrap().remove("url");
    }
    Destination::plain(serde_json::from_value::<DestinationConfig>(v).unwrap())
}

/// Channels that cannot thread get a compact card for an update: the
/// alert, what changed and where it stands, not the first card again.
#[test]
fn an_update_is_a_compact_card_where_there_are_no_threads() {
    let c = facts(
        "event-alert-updated-status.json",
        &enrichment("alert-full.json"),
    );
    let (event, e) = c.source.as_ref().unwrap();
    for kind in chat_kinds() {
        let dest = destination(kind.as_str(), serde_json::json!({}));
        let body = event_payload(&dest, event, e, &c.facts, TARGET).unwrap();
        assert!(body.contains("Acknowledged"), "{kind:?}: {body}");
        assert!(body.contains("ALEY4fqz8moo"), "{kind:?}: {body}");
        assert!(
            !body.contains("Headquarters"),
            "{kind:?}: the entity repeated: {body}"
        );
        assert!(
            !body.contains("PowerShell Download From URL"),
            "{kind:?}: the rule repeated: {body}"
        );
        if kind == DestinationKind::Teams {
            let v: Value = serde_json::from_str(&body).unwrap();
            insta::assert_json_snapshot!("updated-compact-teams", v);
        }
    }
    // The creation is the full card.
    let created = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let (event, e) = created.source.as_ref().unwrap();
    let dest = destination("teams", serde_json::json!({}));
    let body = event_payload(&dest, event, e, &created.facts, TARGET).unwrap();
    assert!(body.contains("Headquarters"));
}

/// On a threaded destination the stored payload is the full message (the
/// root) with what a reply needs; a closed alert's root says so.
#[test]
fn a_threaded_delivery_keeps_the_full_message_and_the_change() {
    let dest = destination(
        "slack",
        serde_json::json!({"token": "xoxb-1", "channel": "C0123ABCD"}),
    );
    let mut alert: Value = serde_json::from_slice(&fixture("alert-full.json")).unwrap();
    alert["status"]["name"] = "Closed".into();
    let e = Enrichment::Fetched(Arc::new(Alert::from_value(alert).unwrap()));
    let mut event = crate::event::parse(&fixture("event-alert-updated-status.json")).unwrap();
    event.updated.as_mut().unwrap()["status_name"] = "Closed".into();
    let f = Facts::build(&event, &e, Some(LINK));
    let body = event_payload(&dest, &event, &e, &f, TARGET).unwrap();
    let t = thread::Threaded::unwrap(&body).expect("threaded");
    assert_eq!(t.alert, "5696845f-9ecf-4431-9f0f-48ee0ee2eff1");
    assert_eq!(t.status.as_deref(), Some("Closed"));
    assert_eq!(t.urgency, Some(63));
    let root = t.message.to_string();
    assert!(
        root.contains("[Closed] Suspicious PowerShell download cradle"),
        "{root}"
    );
    assert!(
        root.contains("Headquarters"),
        "the root is the full message: {root}"
    );
    let change = t.change(Some("Acknowledged"), Some(63));
    assert!(change.broadcast);
    assert_eq!(
        change.text(crate::render::thread::Markup::Slack),
        "*Status:* Acknowledged → *Closed*"
    );
}

/// `mention = true` routes: each kind notifies exactly the operator's
/// people or groups, in its own form (golden files); the hostile alert's
/// own mentions stay inert.
#[test]
fn mentions_are_the_operators_and_only_theirs() {
    use crate::config::Mention;
    let base = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    );
    for (kind, mentions) in [
        (
            DestinationKind::Teams,
            vec![Mention::Named {
                id: "29:1a2b3c-soc-oncall".into(),
                name: "SOC on-call".into(),
            }],
        ),
        (
            DestinationKind::Slack,
            vec![
                Mention::Text("<!subteam^S0123ABC>".into()),
                Mention::Text("<@U0123ABC>".into()),
            ],
        ),
        (
            DestinationKind::Mattermost,
            vec![Mention::Text("@soc-oncall".into())],
        ),
        (
            DestinationKind::Discord,
            vec![Mention::Text("123456789012345678".into())],
        ),
    ] {
        let mut f = base.facts.clone();
        f.mentions = mentions;
        let v = render(kind, &f, &|| Value::Null);
        insta::assert_json_snapshot!(format!("mentions-{}", kind.as_str()), v);
        let text = v.to_string();
        match kind {
            DestinationKind::Teams => {
                assert_eq!(
                    v["attachments"][0]["content"]["msteams"]["entities"][0]["text"],
                    "<at>SOC on-call</at>"
                );
                assert_eq!(
                    text.matches("<at>").count(),
                    2,
                    "the block and the entity: {text}"
                );
            }
            DestinationKind::Slack => {
                assert!(v["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("<!subteam^S0123ABC> <@U0123ABC> "));
                assert!(
                    !text.contains("<!channel>"),
                    "the alert's own mention is inert"
                );
            }
            DestinationKind::Mattermost => {
                assert!(v["text"].as_str().unwrap().starts_with("@soc-oncall **"));
            }
            _ => {
                assert_eq!(
                    v["allowed_mentions"],
                    serde_json::json!({"parse": [], "roles": ["123456789012345678"]})
                );
                assert!(v["content"]
                    .as_str()
                    .unwrap()
                    .starts_with("<@&123456789012345678> "));
            }
        }
    }
}

/// Matrix (golden files `matrix-*`): every message carries `m.mentions`,
/// empty unless the route mentions the operator's user ids, which are then
/// exactly its list; alert text, hostile or naming a member, adds nobody.
/// (An `m.mentions` turns off the legacy push rules that match display
/// names and user names in the body; tests/matrix.rs checks that on a real
/// Synapse.)
#[test]
fn matrix_mentions_only_the_operators_user_ids() {
    use crate::config::Mention;
    let e = Enrichment::Unavailable("alert API answered 403 (Forbidden)".into());
    let cases = [
        (
            "full",
            facts("event-alert-created.json", &enrichment("alert-full.json")),
        ),
        (
            "hostile",
            facts(
                "event-alert-created.json",
                &enrichment("alert-hostile.json"),
            ),
        ),
        (
            "updated",
            facts(
                "event-alert-updated-status.json",
                &enrichment("alert-full.json"),
            ),
        ),
        ("comment", facts("event-alert-comment-created.json", &e)),
    ];
    for (name, case) in &cases {
        let v = case.render(DestinationKind::Matrix);
        insta::assert_json_snapshot!(format!("matrix-{name}"), v);
        assert_eq!(v["m.mentions"], serde_json::json!({}), "{name}");
        let html = v["formatted_body"].as_str().unwrap();
        assert_eq!(
            html.matches("<a ").count(),
            1,
            "{name}: only the alert link: {html}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{name}: {html}"
        );
    }
    let mut f = cases[1].1.facts.clone();
    f.mentions = vec![
        Mention::Text("@alice:example.org".into()),
        Mention::Text("@soc/oncall:[::1]:8448".into()),
    ];
    let v = render(DestinationKind::Matrix, &f, &|| Value::Null);
    insta::assert_json_snapshot!("matrix-mentions", v);
    assert_eq!(
        v["m.mentions"],
        serde_json::json!({"user_ids": ["@alice:example.org", "@soc/oncall:[::1]:8448"]})
    );
    assert!(v["body"]
        .as_str()
        .unwrap()
        .starts_with("@alice:example.org @soc/oncall:[::1]:8448 "));
    let html = v["formatted_body"].as_str().unwrap();
    assert!(
        html.starts_with(
            "<a href=\"https://matrix.to/#/@alice:example.org\">@alice:example.org</a> \
             <a href=\"https://matrix.to/#/@soc%2Foncall:%5B::1%5D:8448\">@soc/oncall:[::1]:8448</a> <b>"
        ),
        "{html}"
    );
}

/// Messages that always fit: an alert with a 100 KB title, 500 assets and
/// 10,000 comments' worth of text (full of characters that escaping makes
/// longer), and a digest of 10,000 alerts, rendered for every kind, stay
/// within each service's limits and keep the title, urgency, status and
/// the link.
#[test]
fn every_message_fits_its_channel() {
    let mut alert: Value = serde_json::from_slice(&fixture("alert-full.json")).unwrap();
    alert["title"] = Value::String(format!("Huge <title> & {}", "x&<".repeat(34_000)));
    let assets: Vec<Value> = (0..500)
        .map(|i| Value::String(format!("0f8e8d7c-6b5a-4c3d-2e1f-{i:012}")))
        .collect();
    alert["assets"] = Value::Array(assets);
    let mut parsed = Alert::from_value(alert).unwrap();
    parsed.assets = (0..500)
        .map(|i| crate::enrich::Asset {
            uuid: format!("0f8e8d7c-6b5a-4c3d-2e1f-{i:012}"),
            name: Some(format!("host-{i}-&<>")),
            criticality: Some(i % 101),
        })
        .collect();
    let e = Enrichment::Fetched(Arc::new(parsed));
    let mut event: Value =
        serde_json::from_slice(&fixture("event-alert-comment-created.json")).unwrap();
    event["attributes"]["content"] = Value::String("A comment & <b>more</b>\n".repeat(10_000));
    let event = crate::event::parse(event.to_string().as_bytes()).unwrap();
    let big = Case::of_event(event, &e);
    let many: Vec<Summary> = (0..10_000)
        .map(|i| Summary {
            headline: format!("Alert {i} {}", "&<".repeat(100)),
            urgency: Some("Major".into()),
            short_id: Some(format!("AL{i:010}")),
            link: Some(format!("https://app.sekoia.io/operations/alerts/AL{i:010}")),
        })
        .collect();
    let digest = Case::of_facts(Facts::digest(
        &many,
        std::time::Duration::from_secs(60),
        None,
    ));
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for (what, case) in [("big alert", &big), ("digest", &digest)] {
        for kind in KINDS {
            let dest = Destination::plain(
                serde_json::from_value(
                    serde_json::json!({"kind": kind.as_str(), "url": "https://x.example.org/h"}),
                )
                .unwrap(),
            );
            let body = payload(&dest, &case.facts, &|| case.doc()).unwrap();
            let v: Value = serde_json::from_str(&body).unwrap();
            let name = format!("{what} / {}", kind.as_str());
            match kind {
                DestinationKind::Slack => {
                    let blocks = v["attachments"][0]["blocks"].as_array().unwrap();
                    assert!(blocks.len() <= slack::fit::SLACK_BLOCKS, "{name}");
                    let mut total = 0;
                    for b in blocks {
                        assert!(
                            chars(&b["text"]["text"]) <= slack::fit::SLACK_SECTION,
                            "{name}"
                        );
                        total += chars(&b["text"]["text"]);
                        for f in b["fields"].as_array().into_iter().flatten() {
                            assert!(chars(&f["text"]) <= slack::fit::SLACK_FIELD, "{name}");
                            total += chars(&f["text"]);
                        }
                    }
                    assert!(total <= slack::fit::SLACK_BLOCKS_TEXT, "{name}: {total}");
                    assert!(chars(&v["text"]) <= slack::fit::SLACK_SECTION, "{name}");
                }
                DestinationKind::Teams | DestinationKind::TeamsLegacy => {
                    assert!(body.len() <= 28 * 1024, "{name}: {} bytes", body.len());
                }
                DestinationKind::Discord => {
                    let e = &v["embeds"][0];
                    let fields = e["fields"].as_array().unwrap();
                    let total = chars(&e["title"])
                        + chars(&e["description"])
                        + chars(&e["footer"]["text"])
                        + fields
                            .iter()
                            .map(|f| chars(&f["name"]) + chars(&f["value"]))
                            .sum::<usize>();
                    assert!(
                        total <= discord::fit::DISCORD_EMBED && fields.len() <= 25,
                        "{name}: {total}"
                    );
                    assert!(
                        chars(&v["content"]) <= 2000 && chars(&e["description"]) <= 4096,
                        "{name}"
                    );
                }
                DestinationKind::Mattermost => {
                    let total = chars(&v["text"]) + v["attachments"][0].to_string().chars().count();
                    assert!(total <= mattermost::fit::MATTERMOST_POST, "{name}: {total}");
                }
                DestinationKind::GoogleChat => assert!(body.len() <= 32_000, "{name}"),
                _ => {}
            }
            if what == "big alert" && kind != DestinationKind::Webhook {
                for must in ["Huge", "Major (63)", "Acknowledged", "ALEY4fqz8moo"] {
                    let shown = if kind == DestinationKind::Email {
                        v.to_string()
                    } else {
                        body.clone()
                    };
                    assert!(
                        shown.contains(must) || must == "Acknowledged" && shown.contains("Pending"),
                        "{name}: {must} missing"
                    );
                }
            }
        }
    }
}

/// `shape = "card"`: a bare Adaptive Card for flows that want one.
#[test]
fn teams_can_post_a_bare_card() {
    let c = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let dest = destination("teams", serde_json::json!({"shape": "card"}));
    let (event, e) = c.source.as_ref().unwrap();
    let v: Value =
        serde_json::from_str(&event_payload(&dest, event, e, &c.facts, TARGET).unwrap()).unwrap();
    assert_eq!(v["type"], "AdaptiveCard");
    assert_eq!(
        v["body"][1]["text"],
        "Suspicious PowerShell download cradle"
    );
}

/// A message within its channel's limits is left exactly as rendered.
#[test]
fn fitting_leaves_a_message_that_fits_alone() {
    for case in [
        facts("event-alert-created.json", &enrichment("alert-full.json")),
        facts(
            "event-alert-created.json",
            &enrichment("alert-hostile.json"),
        ),
    ] {
        for kind in KINDS {
            let v = case.render(kind);
            let mut fitted = v.clone();
            super::super::fit(kind, &mut fitted);
            assert_eq!(fitted, v, "{}", kind.as_str());
        }
    }
}
