//! Configuration: the TOML schema (`schema`), how a file becomes a
//! [`Config`] (`load`: environment overrides, `${VAR}` expansion, `*_file`
//! secrets) and the cross-reference checks (`validate`).
//!
//! A [`Config`] that exists is valid: every route names existing hooks and
//! destinations, every hook an existing origin, every secret is present. The
//! running daemon never meets a dangling name.

mod actions;
mod console;
mod destination;
mod destination_keys;
mod error;
mod intervals;
mod load;
mod matrix_ids;
mod rate;
mod schema;
mod sections;
pub mod tenant;
mod tenant_mark;
mod validate;
mod when;

pub use actions::{ActionKind, ActionsConfig};
pub use console::ConsoleConfig;
pub use destination::{DestinationConfig, DestinationKind, Mention, SmtpTls, TeamsShape};
pub use error::{ConfigError, ConfigErrors};
pub use intervals::{TimeInterval, TimeIntervalConfig};
pub use load::{load_file, load_str};
pub use rate::Rate;
#[cfg(test)]
pub(crate) use schema::test_config_text;
pub use schema::{constant_time_eq, AdminConfig, Config, DedupField, DeliveryConfig, HookConfig};
pub use schema::{Links, OriginConfig, OriginKind, RouteConfig, SecretsKey, ServerConfig};
pub use schema::{SignatureScheme, StoreConfig, StoreKind, SyncMode};
pub(crate) use sections::REGIONS;
pub use tenant_mark::TenantMark;
pub use when::{CaseWhen, When};
