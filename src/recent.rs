//! [`RecentIds`]: the last N ids seen, for "was this one just finished?"
//! checks that must not grow with the traffic; [`Underway`]: the events
//! being processed and those routed recently.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// The last `capacity` distinct ids inserted, for membership tests.
///
/// Memory: its set's buckets are a power of two, 7/8 of them usable, and
/// each removal leaves a tombstone that uses one up until the set is
/// rehashed. It rehashes in place only while it is at most half full;
/// past that it doubles. So a capacity of 7/8 of a power of two (14,336)
/// settles at 32,768 buckets, and one just past it (16,384) at 65,536:
/// twice the memory for 14 % more ids.
#[derive(Debug, Clone)]
pub struct RecentIds {
    set: HashSet<i64>,
    order: VecDeque<i64>,
    capacity: usize,
}

impl RecentIds {
    pub fn new(capacity: usize) -> RecentIds {
        RecentIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Remembers `id`, forgetting the oldest beyond the capacity.
    pub fn insert(&mut self, id: i64) {
        if self.set.contains(&id) {
            return;
        }
        // The oldest goes first: the queue never holds more than
        // `capacity`, so it never doubles past it.
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id);
        self.order.push_back(id);
    }

    pub fn contains(&self, id: i64) -> bool {
        self.set.contains(&id)
    }

    /// Takes on `older`'s ids (oldest first) behind the ones already here
    /// are kept: a worker that replaces another remembers what it finished.
    pub fn absorb(&mut self, older: RecentIds) {
        let mine = std::mem::replace(self, RecentIds::new(self.capacity));
        for id in older.order.into_iter().chain(mine.order) {
            self.insert(id);
        }
    }
}

/// Events being processed, and those routed recently: a spool sweep that
/// reads an event another pass is processing, or has just routed, leaves
/// it alone (a second pass would ask the alert API again, and a message
/// its worker may send before the routing is recorded would go out twice).
pub struct Underway {
    in_progress: Mutex<HashSet<i64>>,
    finished: Mutex<RecentIds>,
}

/// One event being processed, until its routing is recorded ([`Claim::routed`])
/// or its processing stops (dropped: a later pass may take it up).
pub struct Claim {
    id: i64,
    underway: Arc<Underway>,
    routed: bool,
}

impl Underway {
    /// Remembers `finished` routed ids at most.
    pub fn new(finished: usize) -> Arc<Underway> {
        Arc::new(Underway {
            in_progress: Mutex::new(HashSet::new()),
            finished: Mutex::new(RecentIds::new(finished)),
        })
    }

    /// Claims event `id`, unless it is in progress or was routed recently.
    pub fn claim(self: &Arc<Self>, id: i64) -> Option<Claim> {
        if !self.in_progress().insert(id) {
            return None;
        }
        // Checked after claiming: a pass that finished has already
        // recorded the id here before it let go of `in_progress`.
        let claim = Claim {
            id,
            underway: self.clone(),
            routed: false,
        };
        if self.routed(id) {
            return None;
        }
        Some(claim)
    }

    /// Whether event `id` is being processed.
    pub fn in_progress_now(&self, id: i64) -> bool {
        self.in_progress().contains(&id)
    }

    /// The events being processed.
    pub fn ids(&self) -> Vec<i64> {
        self.in_progress().iter().copied().collect()
    }

    /// Remembers event `id` as routed (by a path that held no claim).
    pub fn remember_routed(&self, id: i64) {
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
    }

    fn routed(&self, id: i64) -> bool {
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    fn in_progress(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.in_progress.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Claim {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The event's routing is recorded (by this pass or another).
    pub fn routed(mut self) {
        self.routed = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Remembered before it leaves `in_progress`: never in neither.
        if self.routed {
            self.underway.remember_routed(self.id);
        }
        self.underway.in_progress().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut r = RecentIds::new(1 << 12);
        for id in 0..3 * (1 << 12) {
            r.insert(id);
        }
        assert_eq!(r.order.len(), 1 << 12);
        assert_eq!(r.order.capacity(), 1 << 12, "the queue did not double");
        assert!(r.contains(3 * (1 << 12) - 1) && !r.contains((2 << 12) - 1));
    }

    #[test]
    fn seven_eighths_of_a_power_of_two_settles_at_twice_its_buckets() {
        let mut r = RecentIds::new(14_336);
        for id in 0..10 * 14_336 {
            r.insert(id);
            // 32,768 buckets hold 28,672, tombstones included: rehashed
            // in place, never doubled to 65,536.
            assert!(r.set.capacity() <= 28_672, "at {id}: {}", r.set.capacity());
        }
        assert_eq!(r.set.len(), 14_336);
    }

    #[test]
    fn keeps_the_last_n() {
        let mut r = RecentIds::new(2);
        for id in [1, 2, 2, 3] {
            r.insert(id);
        }
        assert!(!r.contains(1));
        assert!(r.contains(2) && r.contains(3));
    }

    #[test]
    fn absorbing_keeps_the_newest() {
        let mut old = RecentIds::new(3);
        for id in [1, 2, 3] {
            old.insert(id);
        }
        let mut new = RecentIds::new(3);
        new.insert(4);
        new.absorb(old);
        assert!(!new.contains(1));
        assert!(new.contains(2) && new.contains(3) && new.contains(4));
    }
}
