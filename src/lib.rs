//! hookrelay: a webhook relay daemon. Sekoia.io-style alert webhooks come
//! in on unguessable `/hooks/<uuid>` URLs, are stored durably, enriched from
//! the origin's alert API, routed by a TOML table and delivered as readable
//! messages to Microsoft Teams, Slack, Mattermost, Discord, Google Chat,
//! Matrix, ntfy, e-mail and generic webhooks, and pages through PagerDuty
//! and Opsgenie (one incident per alert, following its life).
//!
//! The modules follow the pipeline (see `ARCHITECTURE.md`, which also
//! states the direction of imports that `tests/architecture.rs` checks):
//!
//! - [`ingress`]: public and admin HTTP listeners; request checks and limits.
//! - [`event`]: the incoming webhook, wire JSON → domain [`event::Event`].
//! - [`store`]: the durable spool: SQLite (one writer with group commit) or
//!   PostgreSQL (several replicas).
//! - [`coord`]: what every sender to a destination must agree on (pauses,
//!   send windows, digest turns, clocks, claims), in the process or in the
//!   database.
//! - [`pipeline`]: accepted event → enrich → route → render → deliveries.
//! - [`enrich`]: the alert API client, cache and coalescing.
//! - [`route`]: which destinations get an event (pure).
//! - [`render`]: what every message says and how it is escaped (pure).
//! - [`delivery`]: per-destination workers, retries, back-off.
//! - [`destinations`]: one folder per destination kind: its message, its
//!   request or e-mail, its answers' meaning and what it can do.
//! - [`silence`]: per-hook silence detection (synthetic events).
//! - [`config`]: the TOML schema, loading and validation (plain data).
//! - [`live`]: the current configuration generation, swapped by reloads.
//! - [`app`]: startup, reload and shutdown; [`cli`]: the command line.
//! - [`action_link`]: signed action links (buttons that change an alert's status).
//! - [`secret`], [`signing`], [`telemetry`], [`http`], [`recent`]: helpers.

// Outside text (webhook fields, alert objects, chat answers) is never cut
// by byte offset: a character straddling the offset would panic. Slices
// are taken with `get`, `split_once`, `strip_prefix` and the like; each
// exception says why its offsets are character boundaries.
#![cfg_attr(not(test), deny(clippy::string_slice))]

pub mod action_link;
pub mod app;
pub mod cli;
pub mod config;
pub mod coord;
pub mod delivery;
pub mod destinations;
pub mod enrich;
pub mod event;
pub mod http;
pub mod ingress;
pub mod live;
pub mod pipeline;
pub mod preview;
pub mod recent;
pub mod render;
pub mod route;
pub mod sealed;
pub mod secret;
pub mod signing;
pub mod silence;
pub mod store;
pub mod telemetry;
