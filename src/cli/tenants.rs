//! `hookrelay tenants apply|list|show|delete` and `check --tenant`: the
//! tenants API's operations through the spool, as `events` and
//! `dead-letters` work (a running daemon applies a change within a second).

use super::{fail, inspect::open_store, ConfigArg, TenantsCommand};
use crate::live::TenantRefusal;
use std::path::Path;
use std::process::ExitCode;

/// A tenant file: the TOML fragment, as the JSON document the API takes.
fn read_fragment(file: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!(
            "{}: invalid TOML: {}",
            file.display(),
            e.to_string().trim_end()
        )
    })?;
    serde_json::to_value(table).map_err(|e| format!("{}: {e}", file.display()))
}

fn print_errors(what: &str, errors: &crate::config::ConfigErrors) -> ExitCode {
    eprintln!("hookrelay: {what}:");
    for e in &errors.0 {
        eprintln!("  {e}");
    }
    ExitCode::from(1)
}

pub fn check_tenant(config: &ConfigArg, file: &Path) -> ExitCode {
    let base = match config.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let doc = match read_fragment(file) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("tenant")
        .to_lowercase();
    let tenant = match crate::config::tenant::parse(&name, &doc) {
        Ok(t) => t,
        Err(e) => return print_errors(&format!("invalid tenant {}", file.display()), &e),
    };
    let reach = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .map(|rt| rt.block_on(crate::live::check_reach(&base, &tenant)));
    match reach {
        Err(e) => return fail(format!("cannot start the resolver: {e}")),
        Ok(Err(e)) => return print_errors(&format!("invalid tenant {}", file.display()), &e),
        Ok(Ok(())) => {}
    }
    if let Err(e) = crate::config::tenant::merge(&base, std::slice::from_ref(&tenant)) {
        return print_errors(
            &format!("tenant {} conflicts with the configuration", file.display()),
            &e,
        );
    }
    say!(
        "{}: OK ({} origins, {} hooks, {} destinations, {} routes)",
        file.display(),
        tenant.origins.len(),
        tenant.hooks.len(),
        tenant.destinations.len(),
        tenant.routes.len()
    );
    ExitCode::SUCCESS
}

pub fn tenants(cmd: TenantsCommand) -> ExitCode {
    let config = match &cmd {
        TenantsCommand::Apply { config, .. }
        | TenantsCommand::List { config }
        | TenantsCommand::Show { config, .. }
        | TenantsCommand::Delete { config, .. } => config,
    };
    let file_config = match config.load() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if file_config.admin.secrets_key.is_none() {
        return fail("tenants need [admin] api_token and secrets_key_file in the configuration");
    }
    let (rt, store) = match open_store(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let who = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    match cmd {
        TenantsCommand::Apply { file, name, .. } => {
            let doc = match read_fragment(&file) {
                Ok(d) => d,
                Err(e) => return fail(e),
            };
            let current = match rt.block_on(crate::live::load_tenants(&store, &file_config)) {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let stored = rt.block_on(crate::live::store_tenant(
                &store,
                &file_config,
                &current,
                &name,
                &doc,
                &who,
            ));
            match stored {
                Ok(created) => {
                    say!(
                        "tenant {name} {}",
                        if created { "created" } else { "replaced" }
                    );
                    ExitCode::SUCCESS
                }
                Err(TenantRefusal::Invalid(e)) => {
                    print_errors(&format!("invalid tenant {}", file.display()), &e)
                }
                Err(TenantRefusal::Conflict(e)) => print_errors(
                    &format!("tenant {} conflicts with the configuration", file.display()),
                    &e,
                ),
                Err(TenantRefusal::Unavailable(e)) => fail(e),
            }
        }
        TenantsCommand::List { .. } => match rt.block_on(store.tenants()) {
            Ok(ts) => {
                for t in ts {
                    say!("{}\t{}", t.name, t.summary);
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        TenantsCommand::Show { name, .. } => {
            match rt.block_on(crate::live::tenant_document(&store, &file_config, &name)) {
                Ok(Some(doc)) => {
                    let shown = crate::config::tenant::redact(&doc);
                    say!(
                        "{}",
                        serde_json::to_string_pretty(&shown).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(None) => fail(format!("no tenant {name:?}")),
                Err(e) => fail(e),
            }
        }
        TenantsCommand::Delete { name, .. } => {
            let change = crate::store::TenantChange {
                tenant: name.clone(),
                action: "deleted".into(),
                client: who,
            };
            match rt.block_on(store.delete_tenant(change)) {
                Ok(true) => {
                    say!("tenant {name} deleted");
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("no tenant {name:?}")),
                Err(e) => fail(e),
            }
        }
    }
}
