//! The deadlines of our in-flight requests, as a queue in the order they were set.
//!
//! Every request gets `now + request_timeout` and time does not go back, so deadlines are set
//! in order and the queue stays sorted with a push at the back (a deadline earlier than the
//! last, from a clock that went back, is put in its place). An answered or cancelled request
//! is not looked up in the queue: its entry is dropped at once if it is the first (answers
//! mostly come in the order of the requests), otherwise it goes stale and is dropped when it
//! reaches the front, or by a compaction once stale entries outnumber live ones, so the queue
//! holds at most about twice the requests in flight. Whether an entry is live is asked of the owner
//! (the request must still be in flight with that deadline); ids are never reused, so a stale
//! entry is never taken for a live one.

use std::collections::VecDeque;

use super::CoreId;
use crate::timer::Timestamp;

/// One request's deadline.
pub(crate) type Entry = (Timestamp, CoreId, u64);

/// Stale entries tolerated beyond the live ones before a compaction.
const SLACK: usize = 64;

/// See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    queue: VecDeque<Entry>,
    /// Entries still in flight (as the owner reports with [`Deadlines::done`]).
    live: usize,
}

impl Deadlines {
    /// Adds a request's deadline; `is_live` is used to drop stale entries if there are many.
    pub(crate) fn insert(&mut self, entry: Entry, is_live: impl Fn(&Entry) -> bool) {
        match self.queue.back() {
            Some(last) if last.0 > entry.0 => {
                let at = self.queue.partition_point(|e| e.0 <= entry.0);
                self.queue.insert(at, entry);
            }
            _ => self.queue.push_back(entry),
        }
        self.live += 1;
        if self.queue.len() > 2 * self.live + SLACK {
            self.queue.retain(|e| is_live(e));
            self.live = self.queue.len();
        }
    }

    /// Counts `n` requests as answered, cancelled or dropped (their entries went stale).
    pub(crate) fn done(&mut self, n: usize) {
        self.live = self.live.saturating_sub(n);
    }

    /// Counts the request of `entry` as answered or cancelled. Its entry is dropped if it is
    /// the first (otherwise it goes stale, see the [module docs](self)), and so are stale
    /// entries then in front: while all entries are live (answers in the order of the
    /// requests), that costs no `is_live` call.
    pub(crate) fn end(&mut self, entry: &Entry, is_live: impl Fn(&Entry) -> bool) {
        if self.queue.front() == Some(entry) {
            self.queue.pop_front();
        }
        self.live = self.live.saturating_sub(1);
        while self.queue.len() > self.live
            && let Some(front) = self.queue.front()
            && !is_live(front)
        {
            self.queue.pop_front();
        }
    }

    /// Whether no request is counted in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.live == 0
    }

    /// The earliest live deadline, after dropping the stale entries in front of it.
    pub(crate) fn first(&mut self, is_live: impl Fn(&Entry) -> bool) -> Option<Entry> {
        while let Some(front) = self.queue.front() {
            if is_live(front) {
                return Some(*front);
            }
            self.queue.pop_front();
        }
        self.live = 0;
        None
    }

    /// Removes the front entry (after [`Deadlines::first`] returned it); the caller takes the
    /// request out of flight.
    pub(crate) fn pop_first(&mut self) {
        if self.queue.pop_front().is_some() {
            self.live = self.live.saturating_sub(1);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from(Duration::from_millis(ms))
    }

    #[test]
    fn answers_in_order_need_no_liveness_checks_and_stale_ones_leave_from_the_front() {
        let live: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
        let checks = std::cell::Cell::new(0u32);
        let is_live = |e: &Entry| {
            checks.set(checks.get() + 1);
            live.borrow().contains(&e.2)
        };
        let mut d = Deadlines::default();
        let core = CoreId(1);
        for id in 0..8u64 {
            live.borrow_mut().insert(id);
            d.insert((at(id), core, id), is_live);
        }
        // In order: each answer is the first entry.
        for id in 0..3u64 {
            live.borrow_mut().remove(&id);
            d.end(&(at(id), core, id), is_live);
        }
        assert_eq!(checks.get(), 0);
        assert_eq!(d.len(), 5);
        // 4 before 3: the entry of 4 goes stale in the middle.
        live.borrow_mut().remove(&4);
        d.end(&(at(4), core, 4), is_live);
        assert_eq!(d.len(), 5);
        // 3 is first; after it, the stale 4 leaves too, and 5 is found live.
        live.borrow_mut().remove(&3);
        d.end(&(at(3), core, 3), is_live);
        assert_eq!(d.len(), 3);
        assert_eq!(d.first(is_live), Some((at(5), core, 5)));
        // Nothing stale left: no more checks for in-order answers.
        let before = checks.get();
        live.borrow_mut().remove(&5);
        d.end(&(at(5), core, 5), is_live);
        assert_eq!(checks.get(), before);
        assert!(!d.is_idle());
        for id in 6..8u64 {
            live.borrow_mut().remove(&id);
            d.end(&(at(id), core, id), is_live);
        }
        assert!(d.is_idle());
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn earliest_live_first_and_bounded() {
        let live: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
        let is_live = |e: &Entry| live.borrow().contains(&e.2);
        let mut d = Deadlines::default();
        let core = CoreId(1);
        // One request that never gets an answer, then many answered ones.
        live.borrow_mut().insert(0);
        d.insert((at(0), core, 0), is_live);
        for id in 1..10_000u64 {
            live.borrow_mut().insert(id);
            d.insert((at(id), core, id), is_live);
            live.borrow_mut().remove(&id);
            d.done(1);
            // Two live at most (the stuck one and the newest), and the slack.
            assert!(d.len() <= 2 * 2 + SLACK + 1, "{} entries", d.len());
        }
        assert_eq!(d.first(is_live), Some((at(0), core, 0)));
        // A deadline from a clock that went back goes in its place.
        live.borrow_mut().insert(20_000);
        live.borrow_mut().insert(20_001);
        d.insert((at(50_000), core, 20_000), is_live);
        d.insert((at(40_000), core, 20_001), is_live);
        d.pop_first();
        live.borrow_mut().remove(&0);
        assert_eq!(d.first(is_live), Some((at(40_000), core, 20_001)));
        d.pop_first();
        live.borrow_mut().remove(&20_001);
        assert_eq!(d.first(is_live), Some((at(50_000), core, 20_000)));
        live.borrow_mut().remove(&20_000);
        d.done(1);
        assert_eq!(d.first(is_live), None);
        assert_eq!(d.len(), 0);
    }
}
