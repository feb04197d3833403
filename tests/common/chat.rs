//! Stateful fakes of Slack's Web API (`chat.postMessage`, `chat.update`)
//! and Mattermost's REST API (`POST /api/v4/posts`, `PUT
//! /api/v4/posts/{id}/patch`, `GET /api/v4/users/{id}`) on loopback: they check the token and the
//! channel as the services do, keep every message with its thread and its
//! edits, answer in the services' own shapes (`{"ok": true, "ts": …}`,
//! `{"ok": false, "error": …}`, Mattermost's post object and status
//! codes), and can be scripted to fail (429 with Retry-After, 5xx, garbage).

use super::Reply;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub const SLACK_TOKEN: &str = "xoxb-1111-2222-secretslacktoken";
pub const SLACK_CHANNEL: &str = "C0SOCALERTS";
pub const MM_TOKEN: &str = "mmsecrettoken0000000000000a";
pub const MM_CHANNEL: &str = "4xp9fdt77pncbef59f4k1qe83o";
/// The Mattermost users the fake knows: (user id, user name).
pub const MM_USERS: &[(&str, &str)] = &[("u1", "bob"), ("8dwkuhtxkbbgmfzpgy6h3dhpxh", "carol")];

/// One message as the channel shows it.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub channel: String,
    /// The root's ts / post id, for a reply.
    pub thread: Option<String>,
    /// The body as posted, then as each edit left it.
    pub versions: Vec<Value>,
    pub broadcast: bool,
    pub deleted: bool,
}

impl Message {
    pub fn current(&self) -> &Value {
        self.versions.last().unwrap()
    }
    /// The message's text and attachments, as one string to search.
    pub fn shown(&self) -> String {
        self.current().to_string()
    }
}

/// One call, as it arrived.
#[derive(Debug, Clone)]
pub struct Call {
    /// `chat.postMessage`, `chat.update`, `posts`, `patch`.
    pub name: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct ChatState {
    messages: Mutex<Vec<Message>>,
    calls: Mutex<Vec<Call>>,
    /// Scripted answers per call name, before the normal behaviour.
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    next_id: Mutex<u64>,
    changed: Notify,
}

#[derive(Clone)]
pub struct ChatApi {
    pub addr: SocketAddr,
    state: Arc<ChatState>,
}

async fn handle(
    State(state): State<Arc<ChatState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let name = match (method.as_str(), path.as_str()) {
        ("POST", "/slack/api/chat.postMessage") => "chat.postMessage",
        ("POST", "/slack/api/chat.update") => "chat.update",
        ("POST", "/mm/api/v4/posts") => "posts",
        ("PUT", p) if p.starts_with("/mm/api/v4/posts/") && p.ends_with("/patch") => "patch",
        ("GET", p) if p.starts_with("/mm/api/v4/users/") => "users",
        _ => return (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    };
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.calls.lock().unwrap().push(Call {
        name: name.into(),
        body: parsed.clone(),
        authorization: authorization.clone(),
    });
    let scripted = state
        .script
        .lock()
        .unwrap()
        .get_mut(name)
        .and_then(|q| q.pop_front());
    let resp = match scripted {
        Some(reply) => {
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let mut r = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
            if let Some(ra) = reply.retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        None if name.starts_with("chat.") => slack(&state, name, authorization, parsed),
        None => mattermost(&state, name, &path, authorization, parsed),
    };
    state.changed.notify_waiters();
    resp
}

fn new_id(state: &ChatState, slack: bool) -> String {
    let mut n = state.next_id.lock().unwrap();
    *n += 1;
    if slack {
        format!("1700000000.{:06}", *n)
    } else {
        format!("{:0>26}", format!("post{}", *n))
    }
}

fn slack_error(code: &str) -> Response {
    Json(json!({"ok": false, "error": code}))
}

#[allow(non_snake_case)]
fn Json(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

fn slack(state: &ChatState, name: &str, auth: Option<String>, body: Value) -> Response {
    if auth.as_deref() != Some(&format!("Bearer {SLACK_TOKEN}")) {
        return slack_error(if auth.is_none() {
            "not_authed"
        } else {
            "invalid_auth"
        });
    }
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    if channel != SLACK_CHANNEL {
        return slack_error("channel_not_found");
    }
    if body.get("text").is_none()
        && body.get("blocks").is_none()
        && body.get("attachments").is_none()
    {
        return slack_error("no_text");
    }
    let mut messages = state.messages.lock().unwrap();
    if name == "chat.update" {
        let ts = body["ts"].as_str().unwrap_or_default();
        let Some(m) = messages.iter_mut().find(|m| m.id == ts && !m.deleted) else {
            return slack_error("message_not_found");
        };
        m.versions.push(body.clone());
        return Json(json!({"ok": true, "channel": channel, "ts": ts, "text": body["text"]}));
    }
    let thread = body["thread_ts"].as_str().map(str::to_owned);
    if let Some(t) = &thread {
        if !messages.iter().any(|m| &m.id == t && !m.deleted) {
            // Slack accepts a reply to a deleted parent but nobody sees it;
            // a relay must never rely on that.
            return slack_error("thread_not_found");
        }
    }
    let ts = new_id(state, true);
    messages.push(Message {
        id: ts.clone(),
        channel: channel.clone(),
        thread,
        broadcast: body["reply_broadcast"].as_bool().unwrap_or(false),
        versions: vec![body],
        deleted: false,
    });
    Json(json!({"ok": true, "channel": channel, "ts": ts, "message": {"ts": ts}}))
}

fn mm_error(status: u16, id: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        json!({"id": id, "message": message, "status_code": status}).to_string(),
    )
        .into_response()
}

fn mattermost(
    state: &ChatState,
    name: &str,
    path: &str,
    auth: Option<String>,
    body: Value,
) -> Response {
    if auth.as_deref() != Some(&format!("Bearer {MM_TOKEN}")) {
        return mm_error(
            401,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        );
    }
    if name == "users" {
        // Mattermost's user object (the fields hookrelay reads).
        let id = path.trim_start_matches("/mm/api/v4/users/");
        return match MM_USERS.iter().find(|(u, _)| *u == id) {
            Some((id, name)) => (
                StatusCode::OK,
                [("content-type", "application/json")],
                json!({"id": id, "username": name, "first_name": "", "last_name": ""}).to_string(),
            )
                .into_response(),
            None => mm_error(
                404,
                "app.user.missing_account.const",
                "Unable to find the user.",
            ),
        };
    }
    let mut messages = state.messages.lock().unwrap();
    if name == "patch" {
        let id = path
            .trim_start_matches("/mm/api/v4/posts/")
            .trim_end_matches("/patch");
        let Some(m) = messages.iter_mut().find(|m| m.id == id && !m.deleted) else {
            return mm_error(404, "app.post.get.app_error", "Unable to get the post.");
        };
        let mut next = m.current().clone();
        for (k, v) in body.as_object().unwrap() {
            next[k] = v.clone();
        }
        m.versions.push(next.clone());
        let mut answer = next;
        answer["id"] = json!(id);
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            answer.to_string(),
        )
            .into_response();
    }
    let channel = body["channel_id"].as_str().unwrap_or_default().to_owned();
    if channel != MM_CHANNEL {
        return mm_error(
            403,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        );
    }
    let thread = body["root_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(t) = &thread {
        if !messages.iter().any(|m| &m.id == t && !m.deleted) {
            return mm_error(
                400,
                "api.post.create_post.root_id.app_error",
                "Invalid RootId parameter.",
            );
        }
    }
    let id = new_id(state, false);
    messages.push(Message {
        id: id.clone(),
        channel: channel.clone(),
        thread: thread.clone(),
        broadcast: false,
        versions: vec![body.clone()],
        deleted: false,
    });
    let mut answer = body;
    answer["id"] = json!(id);
    answer["create_at"] = json!(1_700_000_000_000u64);
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}

impl ChatApi {
    pub async fn start() -> ChatApi {
        let state = Arc::new(ChatState::default());
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        ChatApi { addr, state }
    }

    pub fn slack_api(&self) -> String {
        format!("http://{}/slack/api", self.addr)
    }

    pub fn mattermost_server(&self) -> String {
        format!("http://{}/mm", self.addr)
    }

    /// Answers the next `name` calls (`chat.postMessage`, `chat.update`,
    /// `posts`, `patch`) with `replies` instead.
    pub fn script(&self, name: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .script
            .lock()
            .unwrap()
            .entry(name.into())
            .or_default()
            .extend(replies);
    }

    pub fn messages(&self) -> Vec<Message> {
        self.state.messages.lock().unwrap().clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Root messages (not replies), in the order they were posted.
    pub fn roots(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread.is_none())
            .collect()
    }

    /// The replies in `root`'s thread, in order.
    pub fn replies(&self, root: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread.as_deref() == Some(root))
            .collect()
    }

    /// Deletes a message, as a user in the channel would.
    pub fn delete(&self, id: &str) {
        for m in self.state.messages.lock().unwrap().iter_mut() {
            if m.id == id {
                m.deleted = true;
            }
        }
    }

    /// Waits until `done` holds for the messages, or panics after `timeout`.
    pub async fn wait(&self, timeout: Duration, what: &str, done: impl Fn(&[Message]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            if done(&self.messages()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; messages: {:#?}",
                    self.messages()
                );
            }
        }
    }

    /// Waits until at least `n` calls named `name` arrived.
    pub async fn wait_calls(&self, name: &str, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            if self.calls().iter().filter(|c| c.name == name).count() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {n} {name} calls; calls: {:#?}",
                    self.calls()
                );
            }
        }
    }
}
