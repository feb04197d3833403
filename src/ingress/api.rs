//! The tenants API on the admin listener (`/api/v1/`), on when
//! `admin.api_token` is set (404 otherwise): a tenant is a fragment of the
//! configuration, checked like the file, sealed in the spool with
//! `admin.secrets_key_file`, and applied at once (no reload), on every
//! replica within a second.
//!
//! Every answer is JSON; every refusal is `{"errors": [{"key", "message"}]}`
//! with a precise status: 401 (token), 404, 409 (a hook id in use), 413
//! (over 1 MiB), 422 (the document, every problem at once).

use super::IngressState;
use crate::config::tenant::{self, MAX_DOCUMENT};
use crate::live::TenantRefusal;
use crate::store::TenantChange;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type St = State<Arc<IngressState>>;

pub fn router(state: Arc<IngressState>) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/tenants", get(list))
        .route("/api/v1/tenants/{name}", get(show).put(put).delete(delete))
        .route(
            "/api/v1/tenants/{name}/hooks/{hook}/rotate-secret",
            axum::routing::post(rotate),
        )
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(|| async { refuse(StatusCode::NOT_FOUND, "", "no such API path") }),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// One refusal, as every refusal looks.
fn refuse(status: StatusCode, key: &str, message: &str) -> Response {
    errors(status, vec![(key.to_owned(), message.to_owned())])
}

fn config_errors(status: StatusCode, e: crate::config::ConfigErrors) -> Response {
    errors(
        status,
        e.0.into_iter().map(|e| (e.key, e.message)).collect(),
    )
}

fn errors(status: StatusCode, list: Vec<(String, String)>) -> Response {
    let list: Vec<Value> = list
        .into_iter()
        .map(|(key, message)| json!({"key": key, "message": message}))
        .collect();
    (status, Json(json!({ "errors": list }))).into_response()
}

/// 404 while the API is off; the bearer token (compared in constant time)
/// before anything else.
async fn guard(State(state): St, req: Request, next: Next) -> Response {
    let config = state.live.get().config.clone();
    let Some(token) = config.admin.api_token.as_ref() else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if req.uri().path() != "/api/v1/openapi.json" && !bearer_ok(req.headers(), token.expose()) {
        let mut resp = refuse(
            StatusCode::UNAUTHORIZED,
            "authorization",
            "send Authorization: Bearer <admin.api_token>",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    next.run(req).await
}

fn bearer_ok(headers: &HeaderMap, token: &str) -> bool {
    use hmac::Mac;
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Both sides through one HMAC: equal lengths, compared in constant time.
    let mac = |s: &str| {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hookrelay api token")
            .expect("HMAC takes any key length");
        m.update(s.as_bytes());
        m
    };
    let want = mac(token).finalize().into_bytes();
    mac(given.trim()).verify_slice(&want).is_ok()
}

fn store_failed(e: crate::store::StoreError) -> Response {
    tracing::error!(message = "Tenants API: the spool failed.", error = %e);
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "",
        &format!("{e}; nothing was changed, try again"),
    )
}

/// Applies the spool's tenants now and waits for the outcome.
async fn apply(state: &IngressState) -> Result<(), String> {
    use crate::live::{ReloadRefused, ReloadRequest};
    match ReloadRequest::send_and_wait(&state.reload, None, Duration::from_secs(30)).await {
        Ok(()) => Ok(()),
        Err(ReloadRefused::Invalid(e)) => Err(e.to_string()),
        Err(ReloadRefused::NoAnswer) => {
            Err("the change was stored but not applied yet (the daemon is busy or stopping)".into())
        }
    }
}

fn count(state: &IngressState, action: &str) {
    state
        .metrics
        .operator
        .tenant_changes
        .get_or_create(&vec![("action", action.to_owned())])
        .inc();
}

/// `GET /api/v1/tenants`: names, hook ids, counts.
async fn list(State(state): St) -> Response {
    match state.store.tenants().await {
        Ok(ts) => {
            let items: Vec<Value> = ts
                .iter()
                .map(|t| {
                    let mut v: Value = serde_json::from_str(&t.summary).unwrap_or(json!({}));
                    v["name"] = t.name.clone().into();
                    v["updated_at"] = t.updated_at.into();
                    v
                })
                .collect();
            Json(json!({ "tenants": items })).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// `GET /api/v1/tenants/{name}`: the document, every secret redacted.
async fn show(State(state): St, Path(name): Path<String>) -> Response {
    if let Err(e) = tenant::check_name(&name) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.key, &e.message);
    }
    let file = state.live.get().file.clone();
    match crate::live::tenant_document(&state.store, &file, &name).await {
        Ok(Some(doc)) => {
            Json(json!({"name": name, "tenant": tenant::redact(&doc)})).into_response()
        }
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            "name",
            &format!("no tenant {name:?}"),
        ),
        Err(e) => {
            tracing::error!(message = "Tenants API: cannot open a tenant.", tenant = %name, error = %e);
            refuse(StatusCode::SERVICE_UNAVAILABLE, "", &e)
        }
    }
}

/// `PUT /api/v1/tenants/{name}`: create (201) or replace (200).
async fn put(
    State(state): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_DOCUMENT).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "",
                &format!("a tenant document is at most {MAX_DOCUMENT} bytes"),
            )
        }
    };
    let doc: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "",
                &format!("not a JSON document: {e}"),
            )
        }
    };
    let generation = state.live.get();
    let created = match store(&state, &generation, &name, &doc, peer).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    drop(generation);
    let action = if created { "created" } else { "replaced" };
    count(&state, action);
    tracing::info!(message = "Tenant stored.", tenant = %name, action, client = %peer.ip());
    if let Err(e) = apply(&state).await {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "", &e);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"name": name, "tenant": tenant::redact(&doc)})),
    )
        .into_response()
}

/// `DELETE /api/v1/tenants/{name}`: its hooks answer 404 once this is
/// answered; its pending deliveries become dead letters.
async fn delete(
    State(state): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
) -> Response {
    if let Err(e) = tenant::check_name(&name) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.key, &e.message);
    }
    let change = TenantChange {
        tenant: name.clone(),
        action: "deleted".into(),
        client: peer.ip().to_string(),
    };
    match state.store.delete_tenant(change).await {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "name",
                &format!("no tenant {name:?}"),
            )
        }
        Err(e) => return store_failed(e),
    }
    count(&state, "deleted");
    tracing::info!(message = "Tenant deleted.", tenant = %name, client = %peer.ip());
    if let Err(e) = apply(&state).await {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "", &e);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// How long the previous secret stays valid after a rotation, by default.
const OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// `POST /api/v1/tenants/{name}/hooks/{hook}/rotate-secret[?overlap=24h]`:
/// a new `whsec_…` secret, answered once; the previous one stays valid for
/// the overlap so the sender can be updated.
async fn rotate(
    State(state): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((name, hook)): Path<(String, String)>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    use base64::Engine;
    use rand::RngCore;
    if let Err(e) = tenant::check_name(&name) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &e.key, &e.message);
    }
    let overlap = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "overlap")
        .map(|(_, v)| humantime::parse_duration(&v));
    let overlap = match overlap {
        None => OVERLAP,
        Some(Ok(d)) if d <= Duration::from_secs(30 * 86_400) => d,
        Some(_) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "overlap",
                "a duration up to 30d, e.g. 24h",
            )
        }
    };
    let generation = state.live.get();
    let mut doc = match crate::live::tenant_document(&state.store, &generation.file, &name).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "name",
                &format!("no tenant {name:?}"),
            )
        }
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "", &e),
    };
    let Some(h) = doc.pointer_mut(&format!(
        "/hooks/{}",
        hook.replace('~', "~0").replace('/', "~1")
    )) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "hook",
            &format!("tenant {name:?} has no hook {hook:?}"),
        );
    };
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let until = crate::store::now_ms() + overlap.as_millis() as i64;
    if let Some(old) = h.get("secret").cloned() {
        h["previous_secret"] = old;
        h["previous_secret_until"] = until.into();
    }
    h["secret"] = secret.clone().into();
    if let Err(refused) = store(&state, &generation, &name, &doc, peer).await {
        return refused;
    }
    drop(generation);
    count(&state, "rotated");
    tracing::info!(message = "Hook secret rotated.", tenant = %name, hook = %hook, client = %peer.ip());
    if let Err(e) = apply(&state).await {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "", &e);
    }
    Json(json!({
        "hook": hook,
        "secret": secret,
        "previous_valid_until": jiff::Timestamp::from_millisecond(until).map(|t| t.to_string()).unwrap_or_default(),
    }))
    .into_response()
}

/// Stores a tenant's document, checked against `generation`; true when it
/// is new. A refusal is the answer to send: 422 for an invalid document, 409
/// for a hook id taken by the file or another tenant, 503 when the spool
/// cannot store it (nothing changed).
async fn store(
    state: &IngressState,
    generation: &crate::live::Generation,
    name: &str,
    doc: &Value,
    peer: SocketAddr,
) -> Result<bool, Response> {
    crate::live::store_tenant(
        &state.store,
        &generation.file,
        &generation.tenants,
        name,
        doc,
        &peer.ip().to_string(),
    )
    .await
    .map_err(|refusal| match refusal {
        TenantRefusal::Invalid(e) => config_errors(StatusCode::UNPROCESSABLE_ENTITY, e),
        TenantRefusal::Conflict(e) => config_errors(StatusCode::CONFLICT, e),
        TenantRefusal::Unavailable(e) => {
            tracing::error!(message = "Tenants API: cannot store the tenant.", error = %e);
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "",
                &format!("{e}; nothing was changed"),
            )
        }
    })
}

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

const OPENAPI: &str = include_str!("openapi.json");
