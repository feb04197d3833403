//! [`RecentIds`]: the last N ids seen, for "was this one just finished?"
//! checks that must not grow with the traffic.

use std::collections::{HashSet, VecDeque};

/// The last `capacity` distinct ids inserted, for membership tests.
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
