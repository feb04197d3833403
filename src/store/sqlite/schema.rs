//! Versioned schema migrations, applied in order at open. The version lives
//! in `PRAGMA user_version`; a database from an older hookrelay is brought
//! forward, one from a newer hookrelay is refused.

pub const MIGRATIONS: &[&str] = &[
    // 1: events, per-destination deliveries, attempts, route dedup windows.
    r#"
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        hook         TEXT    NOT NULL,
        received_at  INTEGER NOT NULL,          -- unix ms
        body_sha256  BLOB    NOT NULL,
        body         BLOB    NOT NULL,          -- the raw webhook body
        kind         TEXT    NOT NULL,
        action       TEXT    NOT NULL,
        short_id     TEXT,
        state        TEXT    NOT NULL,          -- received | routed
        enrichment   TEXT,                      -- ok | n/a | unavailable: <reason>
        alert_json   TEXT,                      -- the alert API's answer
        routes       TEXT,                      -- JSON list of matched route names
        routed_at    INTEGER
    );
    CREATE INDEX events_dedup ON events (hook, body_sha256);
    CREATE INDEX events_received ON events (received_at);
    CREATE INDEX events_unrouted ON events (id) WHERE state = 'received';

    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id        INTEGER NOT NULL,
        route           TEXT    NOT NULL,
        destination     TEXT    NOT NULL,
        payload         TEXT    NOT NULL,       -- the rendered request body
        state           TEXT    NOT NULL,       -- pending | delivered | dead | skipped
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,       -- unix ms (= event accepted)
        next_attempt_at INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        last_status     INTEGER,
        last_error      TEXT
    );
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE INDEX deliveries_due ON deliveries (destination, id) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';

    CREATE TABLE attempts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id  INTEGER NOT NULL,
        at           INTEGER NOT NULL,
        status       INTEGER,
        error        TEXT,
        duration_ms  INTEGER NOT NULL
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id);

    CREATE TABLE route_dedup (
        route        TEXT    NOT NULL,
        destination  TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        until        INTEGER NOT NULL,
        PRIMARY KEY (route, destination, key)
    ) WITHOUT ROWID;
    "#,
    // 2: silence detection clocks, per hook.
    r#"
    CREATE TABLE hook_clocks (
        hook           TEXT PRIMARY KEY,
        last_event_at  INTEGER NOT NULL,   -- unix ms of the last real event (or of the first watch)
        silent_since   INTEGER             -- set while a silence notice is out
    ) WITHOUT ROWID;
    "#,
    // 3: throttle digests: a delivery's one-line summary, held deliveries,
    // digest deliveries (which the throttle does not count).
    r#"
    ALTER TABLE deliveries ADD COLUMN summary TEXT;
    ALTER TABLE deliveries ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX deliveries_held ON deliveries (destination, id) WHERE state = 'held';
    "#,
    // 4: sender retries are recognised by the writer's own record of
    // recent bodies (confirmed against the row); the index on the bodies'
    // random hashes cost a page write per event.
    r#"
    DROP INDEX IF EXISTS events_dedup;
    "#,
    // 5: one conversation per alert (Slack/Mattermost API mode): the
    // alert an event is about, the thread a delivery belongs to (kept in
    // order per alert), what it went to, and each alert's root message.
    r#"
    ALTER TABLE events ADD COLUMN alert_uuid TEXT;
    ALTER TABLE deliveries ADD COLUMN thread_key TEXT;
    ALTER TABLE deliveries ADD COLUMN thread TEXT;
    CREATE INDEX deliveries_thread ON deliveries (destination, thread_key, event_id)
        WHERE state = 'pending' AND thread_key IS NOT NULL;
    CREATE TABLE threads (
        destination  TEXT    NOT NULL,
        alert        TEXT    NOT NULL,
        channel      TEXT    NOT NULL,
        ts           TEXT    NOT NULL,          -- Slack's ts, Mattermost's post id
        status       TEXT,                      -- as the root last showed it
        urgency      INTEGER,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (destination, alert)
    ) WITHOUT ROWID;
    "#,
    // 6: actions taken from the chat (buttons that change an alert's
    // status): who, what, the outcome; a form's nonce is spent once.
    r#"
    CREATE TABLE actions (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        at           INTEGER NOT NULL,
        alert        TEXT    NOT NULL,
        action       TEXT    NOT NULL,
        destination  TEXT    NOT NULL,
        client       TEXT    NOT NULL,
        result       TEXT    NOT NULL,          -- pending | done | already | refused | failed
        detail       TEXT,
        nonce        TEXT    UNIQUE
    );
    CREATE INDEX actions_alert ON actions (alert, id);
    "#,
    // 7: silences (`hookrelay silences`): events matching an active one
    // are stored and recorded, never sent.
    r#"
    CREATE TABLE silences (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at  INTEGER NOT NULL,
        ends_at     INTEGER NOT NULL,
        matcher     TEXT    NOT NULL,          -- the [routes.when] keys, TOML inline
        comment     TEXT    NOT NULL,
        author      TEXT    NOT NULL,
        expired_at  INTEGER                    -- set by `silences expire`
    );
    "#,
    // 8: the console. Who sent an event and how it proved it, sender
    // retries; a narrow row per routed event (what the events page filters
    // and pages through without reading bodies); each attempt's destination,
    // outcome and age (the overview's last hour without joins).
    r#"
    ALTER TABLE events ADD COLUMN client TEXT;
    ALTER TABLE events ADD COLUMN auth TEXT;
    ALTER TABLE events ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE event_facts (
        id           INTEGER PRIMARY KEY,       -- the event's id
        received_at  INTEGER NOT NULL,
        hook         TEXT    NOT NULL,
        kind         TEXT    NOT NULL,
        action       TEXT    NOT NULL,
        short_id     TEXT,
        title        TEXT,
        targets      INTEGER NOT NULL           -- deliveries created at routing
    );
    INSERT INTO event_facts (id, received_at, hook, kind, action, short_id, title, targets)
        SELECT e.id, e.received_at, e.hook, e.kind, e.action, e.short_id,
               CASE WHEN json_valid(e.alert_json) THEN json_extract(e.alert_json, '$.title') END,
               (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id)
        FROM events e WHERE e.state = 'routed';
    ALTER TABLE attempts ADD COLUMN destination TEXT;
    ALTER TABLE attempts ADD COLUMN outcome TEXT;       -- delivered | retry | dead
    ALTER TABLE attempts ADD COLUMN age_ms INTEGER;     -- since the event was accepted
    CREATE INDEX deliveries_muted ON deliveries (event_id) WHERE state = 'muted';
    "#,
    // 9: tenants (the tenants API): each one's document sealed with
    // admin.secrets_key_file (nothing of it readable from the file alone),
    // what can be listed without the key, and every change (who, what).
    r#"
    CREATE TABLE tenants (
        name        TEXT    PRIMARY KEY,
        summary     TEXT    NOT NULL,       -- JSON: hook ids, counts
        sealed      BLOB    NOT NULL,       -- nonce || XChaCha20-Poly1305(document)
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE tenant_changes (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        tenant  TEXT    NOT NULL,
        action  TEXT    NOT NULL,           -- created | replaced | deleted | rotated
        client  TEXT    NOT NULL
    );
    "#,
    // 10: indexes that answer from themselves, so reads over a large
    // spool do not walk its rows:
    // - a pending delivery's due time is in the scan's index: a scan over
    //   a backlog of deliveries not yet due (a destination down) read
    //   every row with its payload (67-200 ms at 100,000 pending; 12 ms);
    // - the bodies' hashes are in the received-time index: the record of
    //   recent bodies is read back at the first insert after a start, and
    //   reading it from the rows held that first 202 (50 ms with the file
    //   in the page cache, over a second without; 10 ms).
    r#"
    DROP INDEX IF EXISTS deliveries_due;
    CREATE INDEX deliveries_due ON deliveries (destination, id, next_attempt_at) WHERE state = 'pending';
    DROP INDEX IF EXISTS events_received;
    CREATE INDEX events_received ON events (received_at, hook, body_sha256);
    "#,
    // 11: console sessions: the salt the session key is derived with
    // (random, made at the first login, the same for every replica) and
    // the session epoch, which a logout bumps so that every cookie issued
    // before it is refused.
    r#"
    CREATE TABLE console_state (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        salt   BLOB,
        epoch  INTEGER NOT NULL DEFAULT 0
    );
    "#,
];
