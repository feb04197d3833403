//! Tenants on SQLite, inside the writer's transaction: every change is
//! recorded (who, what) with it. PostgreSQL's twin is `postgres::tenants`.

use crate::store::{now_ms, StoreError, StoredTenant, TenantChange};
use rusqlite::{params, OptionalExtension, Transaction};

fn record_change(tx: &Transaction, c: &TenantChange) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO tenant_changes (at, tenant, action, client) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![now_ms(), c.tenant, c.action, c.client])?;
    Ok(())
}

pub(super) fn put_tenant(
    tx: &Transaction,
    t: &StoredTenant,
    c: &TenantChange,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let existed = tx
        .prepare_cached("SELECT 1 FROM tenants WHERE name = ?1")?
        .query_row([&t.name], |_| Ok(()))
        .optional()?
        .is_some();
    tx.prepare_cached(
        "INSERT INTO tenants (name, summary, sealed, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (name) DO UPDATE SET summary = excluded.summary, sealed = excluded.sealed, updated_at = excluded.updated_at",
    )?
    .execute(params![t.name, t.summary, t.sealed, now])?;
    let action = if existed { "replaced" } else { "created" };
    record_change(
        tx,
        &TenantChange {
            action: action.into(),
            ..c.clone()
        },
    )?;
    Ok(!existed)
}

pub(super) fn delete_tenant(tx: &Transaction, c: &TenantChange) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached("DELETE FROM tenants WHERE name = ?1")?
        .execute([&c.tenant])?;
    if n > 0 {
        record_change(tx, c)?;
    }
    Ok(n > 0)
}
