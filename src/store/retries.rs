//! The SQLite writer's record of recent bodies, to recognise a sender's
//! retry without an index on random hashes.

use super::StoreError;
use rusqlite::{params, Transaction};
use std::collections::HashMap;

/// Fingerprints of the bodies stored recently, per hook, to recognise a
/// sender's retry (`server.dedup_window`). One writer thread stores every
/// event, so this is authoritative; it replaces an index on the bodies'
/// hashes, whose random keys dirtied a page of the spool per event.
///
/// Two generations: an entry stays at least one window (it is in
/// `current` until the next rotation, then in `previous` until the one
/// after). Every hit is confirmed against the row (its hook, its body's
/// hash, and its receipt within the sender's window), so a fingerprint
/// collision, an entry older than the window, or an entry left by a batch
/// that failed to commit never turns a new event into a "retry". An
/// entry is a fingerprint and an event id, nothing more: 16 bytes. Memory is bounded: a generation
/// rotates early at [`RECENT_CAP`] entries, so past that rate (about 95
/// events/s sustained with the default 10-minute window) retries are
/// recognised within a shorter window, never less than [`RECENT_CAP`]
/// events back. Fingerprints are keyed per process (the record is rebuilt
/// from the rows at start), so colliding bodies cannot be made offline.
#[derive(Default)]
pub(super) struct RecentBodies {
    keys: std::collections::hash_map::RandomState,
    current: HashMap<u64, i64>,
    previous: HashMap<u64, i64>,
    rotated_at: i64,
    /// The longest window asked for so far (ms).
    window_ms: i64,
    /// Read back from the spool once, at the first insert after a start.
    loaded: bool,
}

/// Entries per generation at most: 7/8 of 65,536, the most a table of
/// 65,536 buckets holds (17 bytes each, 1.1 MiB), sized up front so a
/// generation never grows by doubling (65,536 entries took 131,072
/// buckets, twice the memory).
const RECENT_CAP: usize = 57_344;

impl RecentBodies {
    pub(super) fn fingerprint(&self, hook: &str, sha256: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one((hook, sha256))
    }

    /// The stored event this body may repeat (to be confirmed, the window
    /// included): the newest one.
    pub(super) fn candidate(&self, fp: u64) -> Option<i64> {
        self.current
            .get(&fp)
            .or_else(|| self.previous.get(&fp))
            .copied()
    }

    pub(super) fn remember(&mut self, fp: u64, id: i64, at: i64) {
        if at - self.rotated_at >= self.window_ms || self.current.len() >= RECENT_CAP {
            // The generation dropped lends its table to the new one: a
            // rotation allocates nothing, so the two tables are all the
            // memory this ever holds (a fresh table each time held a
            // third while the allocator kept the freed one).
            std::mem::swap(&mut self.previous, &mut self.current);
            self.current.clear();
            self.rotated_at = at;
        }
        if self.current.capacity() < RECENT_CAP {
            self.current.reserve(RECENT_CAP);
        }
        self.current.insert(fp, id);
    }

    /// After a start: the bodies stored within the window, newest first.
    /// Makes the record cover `window_ms` (read back from the spool at
    /// the first insert, and again when a longer window is asked for).
    pub(super) fn ready(
        &mut self,
        tx: &Transaction,
        window_ms: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        if window_ms > self.window_ms {
            self.window_ms = window_ms;
            self.loaded = false;
        }
        if !self.loaded {
            self.load(tx, now)?;
        }
        Ok(())
    }

    fn load(&mut self, tx: &Transaction, now: i64) -> Result<(), StoreError> {
        let mut stmt = tx.prepare(
            "SELECT id, hook, body_sha256 FROM events
             WHERE received_at >= ?1 AND hook != '-' ORDER BY received_at DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now - self.window_ms, RECENT_CAP as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        self.previous.reserve(RECENT_CAP);
        for row in rows {
            let (id, hook, sha) = row?;
            let fp = self.fingerprint(&hook, &sha);
            self.previous.entry(fp).or_insert(id);
        }
        self.rotated_at = now;
        self.loaded = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(window_ms: i64) -> RecentBodies {
        RecentBodies {
            window_ms,
            loaded: true,
            ..RecentBodies::default()
        }
    }

    #[test]
    fn recent_bodies_last_at_least_one_window() {
        let mut r = bodies(1_000);
        let (a, b, c) = (1, 2, 3);
        r.remember(a, 10, 0);
        // A rotation at 1 000 keeps `a` in the previous generation.
        r.remember(b, 11, 1_000);
        assert_eq!(r.candidate(a), Some(10));
        // The next rotation drops it.
        r.remember(c, 12, 2_000);
        assert_eq!(r.candidate(a), None);
        assert_eq!(r.candidate(b), Some(11));
        assert_eq!(r.candidate(c), Some(12));
        // A body stored again: the newest event is the candidate.
        r.remember(b, 13, 2_500);
        assert_eq!(r.candidate(b), Some(13));
    }

    #[test]
    fn recent_bodies_are_bounded() {
        let mut r = bodies(i64::MAX / 2);
        for i in 0..(3 * RECENT_CAP) as u64 {
            r.remember(i, i as i64, 0);
        }
        assert!(r.current.len() + r.previous.len() <= 2 * RECENT_CAP);
        // Two tables of one size, reused from one rotation to the next.
        assert_eq!(r.current.capacity(), RECENT_CAP);
        assert_eq!(r.previous.capacity(), RECENT_CAP);
        // The newest generation's worth is always there.
        let last = (3 * RECENT_CAP) as u64 - 1;
        assert!(r.candidate(last - RECENT_CAP as u64 + 1).is_some());
        assert_eq!(r.candidate(0), None);
    }

    #[test]
    fn fingerprints_depend_on_the_hook() {
        let sha = [7u8; 32];
        let r = bodies(1_000);
        assert_ne!(r.fingerprint("a", &sha), r.fingerprint("b", &sha));
    }
}
