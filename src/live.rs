//! The live configuration: one [`Generation`] (a validated config and what
//! is built from it), swapped as a whole by a reload. The composition root
//! (`app`) builds and swaps it; ingress, the pipeline, the workers and the
//! silence watch read it. It lives apart from `app` so that none of them
//! imports the module that composes them.

use crate::config::{Config, ConfigErrors};
use crate::enrich::Enricher;
use crate::render::Destination;
use crate::telemetry::Metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One configuration and what is built from it; replaced as a whole.
pub struct Generation {
    pub config: Arc<Config>,
    pub enricher: Arc<Enricher>,
    /// Each destination with its compiled templates, by name.
    pub destinations: BTreeMap<String, Arc<Destination>>,
}

impl Generation {
    /// Builds what runs from `config`: compiles the destinations' templates
    /// (an error names the key, as a config error does) and the alert API
    /// clients. Template warnings join the config's warnings.
    pub fn build(
        mut config: Config,
        http: &reqwest::Client,
        metrics: &Arc<Metrics>,
    ) -> Result<Generation, ConfigErrors> {
        let (destinations, warnings) = crate::render::destinations(&config)?;
        config.warnings.extend(warnings);
        Ok(Generation {
            enricher: Arc::new(Enricher::new(
                &config.origins,
                http.clone(),
                metrics.clone(),
            )),
            config: Arc::new(config),
            destinations,
        })
    }
}

/// The current [`Generation`], swapped atomically by a reload. Readers take
/// an `Arc` and keep a consistent view for as long as they hold it.
pub struct Live {
    current: RwLock<Arc<Generation>>,
}

impl Live {
    pub fn new(generation: Generation) -> Live {
        Live {
            current: RwLock::new(Arc::new(generation)),
        }
    }

    pub fn get(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set(&self, generation: Generation) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(generation);
    }
}
