//! The SQLite writer's record of recent bodies, to recognise a sender's
//! retry without an index on random hashes.

use super::StoreError;
use rusqlite::{params, Transaction};

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
/// entry is a fingerprint and an event id, nothing more: 12 bytes (see
/// [`Generation`]). Memory is bounded: a generation rotates early at
/// [`RECENT_CAP`] entries, so past that rate (about 95 events/s sustained
/// with the default 10-minute window) retries are recognised within a
/// shorter window, never less than [`RECENT_CAP`] events back.
/// Fingerprints are keyed per process (the record is rebuilt from the
/// rows at start), so colliding bodies cannot be made offline.
#[derive(Default)]
pub(super) struct RecentBodies {
    keys: std::collections::hash_map::RandomState,
    current: Generation,
    previous: Generation,
    rotated_at: i64,
    /// The longest window asked for so far (ms).
    window_ms: i64,
    /// Read back from the spool once, at the first insert after a start.
    loaded: bool,
}

/// Entries per generation at most: 7/8 of 65,536, the most a table of
/// 65,536 buckets holds (13 bytes each, 0.85 MiB), sized up front so a
/// generation never grows by doubling (65,536 entries took 131,072
/// buckets, twice the memory).
const RECENT_CAP: usize = 57_344;

/// One generation's entries: a fingerprint (its two halves) and the event
/// id as an offset from `base`, 12 bytes where a `(u64, i64)` pair takes
/// 16, in a table hashed by the fingerprint itself (already a keyed hash).
#[derive(Default)]
struct Generation {
    table: hashbrown::HashTable<[u32; 3]>,
    /// The first entry's id minus 2^31: a generation holds the ids within
    /// 2^31 of it, either way (an event id further away starts a new one).
    base: Option<i64>,
}

impl Generation {
    fn fp(entry: &[u32; 3]) -> u64 {
        u64::from(entry[0]) << 32 | u64::from(entry[1])
    }

    fn get(&self, fp: u64) -> Option<i64> {
        let entry = self.table.find(fp, |e| Self::fp(e) == fp)?;
        Some(self.base? + i64::from(entry[2]))
    }

    /// The offset `id` is kept as, when it fits this generation.
    fn offset(&self, id: i64) -> Option<u32> {
        let base = self.base.unwrap_or(id - (1 << 31));
        u32::try_from(id - base).ok()
    }

    /// Keeps `id` as `fp`'s newest event. False when it does not fit.
    fn insert(&mut self, fp: u64, id: i64) -> bool {
        let Some(offset) = self.offset(id) else {
            return false;
        };
        self.base.get_or_insert(id - (1 << 31));
        let entry = [(fp >> 32) as u32, fp as u32, offset];
        match self.table.find_mut(fp, |e| Self::fp(e) == fp) {
            Some(e) => *e = entry,
            None => {
                self.table.insert_unique(fp, entry, Self::fp);
            }
        }
        true
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn clear(&mut self) {
        self.table.clear();
        self.base = None;
    }

    fn reserve(&mut self) {
        if self.table.capacity() < RECENT_CAP {
            self.table.reserve(RECENT_CAP, Self::fp);
        }
    }
}

impl RecentBodies {
    pub(super) fn fingerprint(&self, hook: &str, sha256: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one((hook, sha256))
    }

    /// The stored event this body may repeat (to be confirmed, the window
    /// included): the newest one.
    pub(super) fn candidate(&self, fp: u64) -> Option<i64> {
        self.current.get(fp).or_else(|| self.previous.get(fp))
    }

    pub(super) fn remember(&mut self, fp: u64, id: i64, at: i64) {
        if at - self.rotated_at >= self.window_ms
            || self.current.len() >= RECENT_CAP
            || self.current.offset(id).is_none()
        {
            // The generation dropped lends its table to the new one: a
            // rotation allocates nothing, so the two tables are all the
            // memory this ever holds (a fresh table each time held a
            // third while the allocator kept the freed one).
            std::mem::swap(&mut self.previous, &mut self.current);
            self.current.clear();
            self.rotated_at = at;
        }
        self.current.reserve();
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
        self.previous.reserve();
        for row in rows {
            let (id, hook, sha) = row?;
            let fp = self.fingerprint(&hook, &sha);
            // Newest first: a body's newest event is kept. (An id more
            // than 2^31 older than the newest does not fit the generation
            // and is left out: a retry of its body would be stored again,
            // never lost.)
            if self.previous.get(fp).is_none() {
                self.previous.insert(fp, id);
            }
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
        assert_eq!(r.current.table.capacity(), RECENT_CAP);
        assert_eq!(r.previous.table.capacity(), RECENT_CAP);
        // The newest generation's worth is always there.
        let last = (3 * RECENT_CAP) as u64 - 1;
        assert!(r.candidate(last - RECENT_CAP as u64 + 1).is_some());
        assert_eq!(r.candidate(0), None);
    }

    #[test]
    fn ids_far_apart_start_a_new_generation() {
        let mut r = bodies(i64::MAX / 2);
        let far = 1_i64 << 40;
        r.remember(1, far, 0);
        r.remember(2, far - (1 << 31), 0);
        r.remember(3, far + (1 << 31) - 1, 0);
        assert_eq!(r.candidate(1), Some(far));
        assert_eq!(r.candidate(2), Some(far - (1 << 31)));
        assert_eq!(r.candidate(3), Some(far + (1 << 31) - 1));
        assert_eq!(r.current.len(), 3, "all within 2^31 of the first");
        // Beyond: a rotation, and the earlier ones are still found.
        r.remember(4, far + (1 << 31), 0);
        assert_eq!(r.current.len(), 1);
        assert_eq!(r.candidate(4), Some(far + (1 << 31)));
        assert_eq!(r.candidate(1), Some(far));
        // A repeat keeps the newest id; entries are 12 bytes.
        r.remember(4, far + (1 << 31) + 5, 0);
        assert_eq!(r.candidate(4), Some(far + (1 << 31) + 5));
        assert_eq!(std::mem::size_of::<[u32; 3]>(), 12);
    }

    #[test]
    fn fingerprints_depend_on_the_hook() {
        let sha = [7u8; 32];
        let r = bodies(1_000);
        assert_ne!(r.fingerprint("a", &sha), r.fingerprint("b", &sha));
    }
}
