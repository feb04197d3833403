//! [`Destination`]: a destination's config with its compiled templates,
//! built from a validated configuration (which stays plain data).

use super::{of, trial, Kind};
use crate::config::{Config, ConfigError, ConfigErrors, DestinationConfig};
use crate::render::Templates;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every destination by name, as built from one configuration.
pub type Destinations = BTreeMap<String, Arc<Destination>>;

/// A destination as messages are rendered for it: its settings and its
/// compiled templates. Built from the configuration by [`destinations`];
/// the configuration itself stays plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub config: DestinationConfig,
    /// `template` and `subject`, compiled.
    pub templates: Option<Templates>,
    /// Where people reach the web console (`console.public_url`): digests
    /// link to the list of the alerts they stand for.
    pub console_url: Option<String>,
}

impl Destination {
    /// What its kind does.
    pub fn kind(&self) -> &'static dyn Kind {
        of(self.config.kind)
    }

    /// A destination without templates (built-in messages only).
    pub fn plain(config: DestinationConfig) -> Destination {
        Destination {
            config,
            templates: None,
            console_url: None,
        }
    }
}

/// Every destination of `config`, its templates compiled. A template that
/// does not compile is a config error naming its key; one that compiles but
/// fails on sample messages is a warning (`check` prints it, the daemon
/// logs it).
pub fn destinations(config: &Config) -> Result<(Destinations, Vec<String>), ConfigErrors> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (name, dest) in &config.destinations {
        let key = format!("destinations.{name}");
        match compile(dest) {
            Ok(templates) => {
                let built = Destination {
                    config: dest.clone(),
                    templates,
                    console_url: config
                        .console
                        .as_ref()
                        .filter(|c| c.enabled)
                        .and_then(|c| c.public_url.clone()),
                };
                if built.templates.is_some() {
                    for problem in trial(&built, name) {
                        warnings.push(format!("{key}.template: {problem}"));
                    }
                }
                out.insert(name.clone(), Arc::new(built));
            }
            Err((field, message)) => errors.push(ConfigError {
                key: format!("{key}.{field}"),
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok((out, warnings))
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Compiles a destination's `template` and e-mail `subject`; on error, the
/// field at fault and why.
fn compile(dest: &DestinationConfig) -> Result<Option<Templates>, (&'static str, String)> {
    // A tenant's subject is plain text with placeholders, never a template
    // (`email::plain_subject`); tenants have no `template` either.
    if dest.template.is_none() && (dest.subject.is_none() || dest.tenant.is_some()) {
        return Ok(None);
    }
    let kind = of(dest.kind);
    let escape = kind.template_escape();
    let shown = dest.template.as_ref().map(|p| p.display().to_string());
    let body = shown.as_deref().zip(dest.template_source.as_deref());
    let subject = dest.subject.as_deref().filter(|_| kind.takes_subject());
    Templates::compile(body, subject, escape)
        .map(Some)
        .map_err(|e| {
            let field = if e.starts_with("subject") {
                "subject"
            } else {
                "template"
            };
            (field, e)
        })
}
