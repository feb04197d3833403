//! The PostgreSQL schema and its migrations, and the two background tasks
//! that keep a replica connected: the keeper (connect, migrate, watch,
//! recount pending work) and the `LISTEN hookrelay` listener.

use super::pool::{explain, Inner, CHANNEL};
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

/// The advisory lock key that serializes migrations ("hookrelay").
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7265_6c61;

/// Versioned schema, applied in order; the version lives in
/// `hookrelay_schema`. Mirrors the SQLite schema plus the claim columns
/// and the cluster-wide state.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE events (
        id            BIGSERIAL PRIMARY KEY,
        hook          TEXT    NOT NULL,
        received_at   BIGINT  NOT NULL,
        body_sha256   BYTEA   NOT NULL,
        body          BYTEA   NOT NULL,
        kind          TEXT    NOT NULL,
        action        TEXT    NOT NULL,
        short_id      TEXT,
        state         TEXT    NOT NULL,
        enrichment    TEXT,
        alert_json    TEXT,
        routes        TEXT,
        routed_at     BIGINT,
        claimed_by    TEXT,
        claimed_until BIGINT
    );
    CREATE INDEX events_received ON events (received_at);
    CREATE INDEX events_unrouted ON events (id) WHERE state = 'received';

    CREATE TABLE deliveries (
        id              BIGSERIAL PRIMARY KEY,
        event_id        BIGINT  NOT NULL,
        route           TEXT    NOT NULL,
        destination     TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        state           TEXT    NOT NULL,
        attempts        BIGINT  NOT NULL DEFAULT 0,
        created_at      BIGINT  NOT NULL,
        next_attempt_at BIGINT  NOT NULL,
        updated_at      BIGINT  NOT NULL,
        last_status     BIGINT,
        last_error      TEXT,
        summary         TEXT,
        digest          BOOLEAN NOT NULL DEFAULT FALSE,
        claimed_by      TEXT,
        claimed_until   BIGINT
    );
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE INDEX deliveries_due ON deliveries (destination, id) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';
    CREATE INDEX deliveries_held ON deliveries (destination, id) WHERE state = 'held';

    -- Bodies, alerts and payloads are short-lived JSON: stored out of line
    -- without compression (compressing each costs more CPU than the disk
    -- it saves while they wait to be delivered).
    ALTER TABLE events ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE events ALTER COLUMN alert_json SET STORAGE EXTERNAL;
    ALTER TABLE deliveries ALTER COLUMN payload SET STORAGE EXTERNAL;

    CREATE TABLE attempts (
        id          BIGSERIAL PRIMARY KEY,
        delivery_id BIGINT NOT NULL,
        at          BIGINT NOT NULL,
        status      BIGINT,
        error       TEXT,
        duration_ms BIGINT NOT NULL
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id);

    CREATE TABLE route_dedup (
        route       TEXT   NOT NULL,
        destination TEXT   NOT NULL,
        key         TEXT   NOT NULL,
        until       BIGINT NOT NULL,
        PRIMARY KEY (route, destination, key)
    );

    CREATE TABLE hook_clocks (
        hook          TEXT PRIMARY KEY,
        last_event_at BIGINT NOT NULL,
        silent_since  BIGINT
    );

    CREATE TABLE destination_state (
        destination    TEXT PRIMARY KEY,
        paused_until   BIGINT,
        next_digest_at BIGINT
    );

    CREATE TABLE send_slots (
        destination TEXT   NOT NULL,
        kind        TEXT   NOT NULL,
        at          BIGINT NOT NULL
    );
    CREATE INDEX send_slots_window ON send_slots (destination, kind, at);

    -- Sender-retry windows: one row per (hook, body) while its window is open.
    CREATE TABLE event_dedup (
        hook        TEXT   NOT NULL,
        body_sha256 BYTEA  NOT NULL,
        event_id    BIGINT NOT NULL,
        until       BIGINT NOT NULL,
        PRIMARY KEY (hook, body_sha256)
    );

    CREATE TABLE webhook_ids (
        hook  TEXT   NOT NULL,
        id    TEXT   NOT NULL,
        until BIGINT NOT NULL,
        PRIMARY KEY (hook, id)
    );
    "#,
    // 2: one conversation per alert (see the SQLite migration 5).
    r#"
    ALTER TABLE events ADD COLUMN alert_uuid TEXT;
    ALTER TABLE deliveries ADD COLUMN thread_key TEXT;
    ALTER TABLE deliveries ADD COLUMN thread TEXT;
    CREATE INDEX deliveries_thread ON deliveries (destination, thread_key, event_id)
        WHERE state = 'pending' AND thread_key IS NOT NULL;
    CREATE TABLE threads (
        destination TEXT   NOT NULL,
        alert       TEXT   NOT NULL,
        channel     TEXT   NOT NULL,
        ts          TEXT   NOT NULL,
        status      TEXT,
        urgency     BIGINT,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (destination, alert)
    );
    "#,
    // 3: actions taken from the chat (see the SQLite migration 6).
    r#"
    CREATE TABLE actions (
        id          BIGSERIAL PRIMARY KEY,
        at          BIGINT NOT NULL,
        alert       TEXT   NOT NULL,
        action      TEXT   NOT NULL,
        destination TEXT   NOT NULL,
        client      TEXT   NOT NULL,
        result      TEXT   NOT NULL,
        detail      TEXT,
        nonce       TEXT   UNIQUE
    );
    CREATE INDEX actions_alert ON actions (alert, id);
    "#,
    // 4: silences (see the SQLite migration 7).
    r#"
    CREATE TABLE silences (
        id          BIGSERIAL PRIMARY KEY,
        created_at  BIGINT NOT NULL,
        ends_at     BIGINT NOT NULL,
        matcher     TEXT   NOT NULL,
        comment     TEXT   NOT NULL,
        author      TEXT   NOT NULL,
        expired_at  BIGINT
    );
    "#,
    // 5: the console (see the SQLite migration 8).
    r#"
    ALTER TABLE events ADD COLUMN client TEXT;
    ALTER TABLE events ADD COLUMN auth TEXT;
    ALTER TABLE events ADD COLUMN retries BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE event_facts (
        id           BIGINT PRIMARY KEY,
        received_at  BIGINT NOT NULL,
        hook         TEXT   NOT NULL,
        kind         TEXT   NOT NULL,
        action       TEXT   NOT NULL,
        short_id     TEXT,
        title        TEXT,
        targets      INTEGER NOT NULL
    );
    INSERT INTO event_facts (id, received_at, hook, kind, action, short_id, title, targets)
        SELECT e.id, e.received_at, e.hook, e.kind, e.action, e.short_id, NULL,
               (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id)
        FROM events e WHERE e.state = 'routed';
    CREATE INDEX event_facts_received ON event_facts (received_at);
    ALTER TABLE attempts ADD COLUMN destination TEXT;
    ALTER TABLE attempts ADD COLUMN outcome TEXT;
    ALTER TABLE attempts ADD COLUMN age_ms BIGINT;
    CREATE INDEX attempts_at ON attempts (at);
    CREATE INDEX deliveries_muted ON deliveries (event_id) WHERE state = 'muted';
    "#,
    // 6: tenants (see the SQLite migration 9).
    r#"
    CREATE TABLE tenants (
        name        TEXT   PRIMARY KEY,
        summary     TEXT   NOT NULL,
        sealed      BYTEA  NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE TABLE tenant_changes (
        id      BIGSERIAL PRIMARY KEY,
        at      BIGINT NOT NULL,
        tenant  TEXT   NOT NULL,
        action  TEXT   NOT NULL,
        client  TEXT   NOT NULL
    );
    "#,
    // 7: the due time in the scan's index (see the SQLite migration 10).
    r#"
    DROP INDEX IF EXISTS deliveries_due;
    CREATE INDEX deliveries_due ON deliveries (destination, id) INCLUDE (next_attempt_at) WHERE state = 'pending';
    "#,
    // 8: console sessions (see the SQLite migration 11).
    r#"
    CREATE TABLE console_state (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        salt   BYTEA,
        epoch  BIGINT NOT NULL DEFAULT 0
    );
    "#,
];

/// Connects and migrates (retrying with back-off), then watches the
/// connection and recounts pending work. Stops when the store is dropped.
pub(super) async fn keeper(inner: Weak<Inner>) {
    let mut wait = Duration::from_millis(250);
    loop {
        let Some(me) = inner.upgrade() else { return };
        if !me.migrated.load(Ordering::Relaxed) {
            match migrate(&me).await {
                Ok(version) => {
                    me.migrated.store(true, Ordering::Relaxed);
                    me.healthy.store(true, Ordering::Relaxed);
                    tracing::info!(message = "Connected to PostgreSQL.", database = %me.target, schema_version = version, replica = %me.replica);
                    wait = Duration::from_millis(250);
                }
                Err(e) => {
                    me.failed(&e);
                    tracing::error!(
                        message = "Cannot use the PostgreSQL spool; hooks answer 503 until it answers. Retrying.",
                        database = %me.target, error = %e, retry_in_ms = wait.as_millis() as u64
                    );
                    drop(me);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        // Probe (which also restores readiness after an outage) and recount.
        let was_healthy = me.healthy.load(Ordering::Relaxed);
        let delta_before = me.delta.swap(0, Ordering::Relaxed);
        match count_pending(&me).await {
            Ok(n) => {
                me.counted.store(n, Ordering::Relaxed);
                me.healthy.store(true, Ordering::Relaxed);
                if !was_healthy {
                    tracing::info!(message = "PostgreSQL answers again.", database = %me.target);
                }
            }
            Err(e) => {
                // No new count: keep what this replica knew.
                me.delta.fetch_add(delta_before, Ordering::Relaxed);
                if was_healthy {
                    tracing::error!(message = "Lost the PostgreSQL spool; hooks answer 503 until it is back.", database = %me.target, error = %e);
                }
                me.failed(&e);
            }
        }
        drop(me);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count_pending(me: &Inner) -> Result<u64, String> {
    let client = me.pool.get().await.map_err(|e| explain(&e))?;
    let row = client
        .query_one(
            "SELECT (SELECT COUNT(*) FROM events WHERE state = 'received') + (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')",
            &[],
        )
        .await
        .map_err(|e| explain(&e))?;
    let n: i64 = row.get(0);
    Ok(n.max(0) as u64)
}

/// Applies the missing migrations under a session advisory lock; returns
/// the schema version.
async fn migrate(me: &Inner) -> Result<usize, String> {
    let mut client = me.pool.get().await.map_err(|e| explain(&e))?;
    let text = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => explain(&e),
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(text)?;
    let result = async {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS hookrelay_schema (version INTEGER NOT NULL)")
            .await
            .map_err(text)?;
        let version: i32 = client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM hookrelay_schema", &[])
            .await
            .map_err(text)?
            .get(0);
        let latest = MIGRATIONS.len();
        if version as usize > latest {
            return Err(format!(
                "the database has schema version {version}, newer than this hookrelay understands ({latest}); run the newer binary"
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = client.transaction().await.map_err(text)?;
            tx.batch_execute(sql).await.map_err(text)?;
            tx.execute(
                "INSERT INTO hookrelay_schema (version) VALUES ($1)",
                &[&((i + 1) as i32)],
            )
            .await
            .map_err(text)?;
            tx.commit().await.map_err(text)?;
            tracing::info!(message = "Applied store migration.", version = i + 1);
        }
        Ok(latest)
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

/// Listens for `NOTIFY hookrelay` on a connection of its own and relays
/// the payloads to this replica's workers; reconnects after a failure.
/// Stops when the store is dropped.
pub(super) async fn listener(
    inner: Weak<Inner>,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
) {
    use tokio_postgres::AsyncMessage;
    loop {
        let Some(me) = inner.upgrade() else { return };
        let ready = me.migrated.load(Ordering::Relaxed) && me.healthy.load(Ordering::Relaxed);
        drop(me);
        if !ready {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let Ok((client, mut conn)) = config.connect(tls.clone()).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // The connection must be polled for the LISTEN to complete and for
        // notifications to arrive; both run together.
        let messages = async {
            while let Some(message) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        let Some(me) = inner.upgrade() else { return };
                        let _ = me.wake.send(n.payload().to_owned());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        };
        tokio::pin!(messages);
        let sql = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&sql);
        tokio::select! {
            r = listen => {
                if r.is_ok() {
                    // Wake everyone: anything sent while not listening.
                    if let Some(me) = inner.upgrade() {
                        let _ = me.wake.send(String::new());
                    }
                    (&mut messages).await;
                }
            }
            _ = &mut messages => {}
        }
        drop(client);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
