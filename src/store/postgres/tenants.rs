//! Tenants on PostgreSQL (see `store::reads::tenants`): every change is
//! also announced with `NOTIFY hookrelay, 'tenants'` so every replica
//! applies it at once (the periodic check covers a missed notification).

use super::*;
use crate::store::{StoredTenant, TenantChange};

impl Postgres {
    pub async fn put_tenant(&self, t: &StoredTenant, c: &TenantChange) -> Result<bool, StoreError> {
        let now = now_ms();
        let rows = self
            .query(
                "WITH old AS (SELECT 1 FROM tenants WHERE name = $1),
                      up AS (INSERT INTO tenants (name, summary, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                             ON CONFLICT (name) DO UPDATE SET summary = excluded.summary, sealed = excluded.sealed,
                             updated_at = excluded.updated_at),
                      ch AS (INSERT INTO tenant_changes (at, tenant, action, client)
                             VALUES ($4, $1, CASE WHEN EXISTS (SELECT 1 FROM old) THEN 'replaced' ELSE 'created' END, $5))
                 SELECT (SELECT COUNT(*) FROM old) = 0",
                &[&t.name, &t.summary, &t.sealed, &now, &c.client],
            )
            .await?;
        self.query("SELECT pg_notify('hookrelay', 'tenants')", &[])
            .await?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or(false))
    }

    pub async fn delete_tenant(&self, c: &TenantChange) -> Result<bool, StoreError> {
        let now = now_ms();
        let rows = self
            .query(
                "WITH d AS (DELETE FROM tenants WHERE name = $1 RETURNING 1),
                      ch AS (INSERT INTO tenant_changes (at, tenant, action, client)
                             SELECT $2, $1, $3, $4 WHERE EXISTS (SELECT 1 FROM d))
                 SELECT (SELECT COUNT(*) FROM d) > 0",
                &[&c.tenant, &now, &c.action, &c.client],
            )
            .await?;
        self.query("SELECT pg_notify('hookrelay', 'tenants')", &[])
            .await?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or(false))
    }

    pub async fn tenants(&self) -> Result<Vec<StoredTenant>, StoreError> {
        Ok(self
            .query(
                "SELECT name, summary, sealed, updated_at FROM tenants ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(|r| StoredTenant {
                name: r.get(0),
                summary: r.get(1),
                sealed: r.get(2),
                updated_at: r.get(3),
            })
            .collect())
    }

    pub async fn tenants_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .query("SELECT COALESCE(MAX(id), 0) FROM tenant_changes", &[])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0))
    }
}
