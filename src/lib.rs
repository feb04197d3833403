//! hookrelay: a webhook relay daemon. Sekoia.io-style alert webhooks come
//! in on unguessable `/hooks/<uuid>` URLs, are stored durably, enriched from
//! the origin's alert API, routed by a TOML table and delivered as readable
//! messages to Microsoft Teams, Slack and Mattermost.
//!
//! The modules follow the pipeline (see `ARCHITECTURE.md`):
//!
//! - [`ingress`]: public and admin HTTP listeners; request checks and limits.
//! - [`event`]: the incoming webhook, wire JSON → domain [`event::Event`].
//! - [`store`]: the durable spool (SQLite, one writer with group commit).
//! - [`pipeline`]: accepted event → enrich → route → render → deliveries.
//! - [`enrich`]: the alert API client, cache and coalescing.
//! - [`route`]: which destinations get an event (pure).
//! - [`render`]: the payload for each chat service (pure).
//! - [`delivery`]: per-destination workers, retries, pacing.
//! - [`silence`]: per-hook silence detection (synthetic events).
//! - [`sinks`]: the HTTP request to a destination and its answer's meaning.
//! - [`config`]: the TOML schema, loading and validation.
//! - [`app`]: startup and shutdown; [`cli`]: the command line.
//! - [`secret`], [`telemetry`], [`http`]: cross-cutting helpers.

pub mod app;
pub mod cli;
pub mod config;
pub mod coord;
pub mod delivery;
pub mod enrich;
pub mod event;
pub mod http;
pub mod ingress;
pub mod live;
pub mod pipeline;
pub mod recent;
pub mod render;
pub mod route;
pub mod secret;
pub mod signing;
pub mod silence;
pub mod sinks;
pub mod store;
pub mod telemetry;
