//! Hooks' silence-detection clocks on SQLite, inside the writer's
//! transaction (one process: the writer answers cluster-wide questions
//! alone). PostgreSQL's twin is in `postgres::cluster`.

use crate::store::{ClockCheck, HookClock, StoreError};
use rusqlite::{params, OptionalExtension, Transaction};

fn read_clock(tx: &Transaction, hook: &str) -> Result<Option<HookClock>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT last_event_at, silent_since FROM hook_clocks WHERE hook = ?1")?
        .query_row([hook], |r| {
            Ok(HookClock {
                hook: hook.to_owned(),
                last_event_at: r.get(0)?,
                silent_since: r.get(1)?,
            })
        })
        .optional()?)
}

fn write_clock(tx: &Transaction, c: &HookClock) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO hook_clocks (hook, last_event_at, silent_since) VALUES (?1, ?2, ?3)
         ON CONFLICT (hook) DO UPDATE SET last_event_at = excluded.last_event_at, silent_since = excluded.silent_since",
    )?
    .execute(params![c.hook, c.last_event_at, c.silent_since])?;
    Ok(())
}

/// A real event was seen at `seen`; returns the previous last event time
/// when this ends a silence.
pub(super) fn clock_seen(
    tx: &Transaction,
    hook: &str,
    seen: i64,
) -> Result<Option<i64>, StoreError> {
    let old = read_clock(tx, hook)?;
    if old.as_ref().is_some_and(|c| c.last_event_at >= seen) {
        return Ok(None);
    }
    write_clock(
        tx,
        &HookClock {
            hook: hook.to_owned(),
            last_event_at: seen,
            silent_since: None,
        },
    )?;
    Ok(old
        .filter(|c| c.silent_since.is_some())
        .map(|c| c.last_event_at))
}

pub(super) fn clock_check(
    tx: &Transaction,
    hook: &str,
    now: i64,
    within_ms: i64,
) -> Result<ClockCheck, StoreError> {
    let Some(mut clock) = read_clock(tx, hook)? else {
        // Never heard from: the clock starts when the hook is first watched.
        let clock = HookClock {
            hook: hook.to_owned(),
            last_event_at: now,
            silent_since: None,
        };
        write_clock(tx, &clock)?;
        return Ok(ClockCheck {
            clock,
            went_silent: false,
        });
    };
    let went_silent = clock.silent_since.is_none() && now - clock.last_event_at >= within_ms;
    if went_silent {
        clock.silent_since = Some(now);
        write_clock(tx, &clock)?;
    }
    Ok(ClockCheck { clock, went_silent })
}
