//! [`RecentIds`]: the last N ids seen, for "was this one just finished?"
//! checks that must not grow with the traffic.

use std::collections::{HashSet, VecDeque};

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
