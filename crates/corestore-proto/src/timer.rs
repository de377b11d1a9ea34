//! Time as an argument: [`Timestamp`], and the small `TimerTable` every state machine keeps.
//!
//! The crate never reads a clock. Callers pass `now` as a [`Timestamp`]: the time elapsed since an
//! origin of their choosing (a driver typically keeps one `Instant` taken at start-up and passes
//! `Timestamp::from(instant - origin)`). Simulations start at [`Timestamp::ZERO`] and advance a
//! virtual clock, so tests never sleep.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, measured from a caller-chosen origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The origin.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The time elapsed since the origin.
    #[must_use]
    pub fn since_origin(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<Duration> for Timestamp {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(rhs))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Self;
    fn sub(self, rhs: Duration) -> Self {
        Self(self.0.saturating_sub(rhs))
    }
}

/// The timers of one state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Send an empty message when nothing was written for the keep-alive interval.
    KeepAlive,
    /// Fail the handshake when it has not completed in time.
    HandshakeDeadline,
    /// The earliest deadline of an inflight request.
    RequestTimeout,
}

impl Timer {
    const COUNT: usize = 3;

    fn slot(self) -> usize {
        match self {
            Self::KeepAlive => 0,
            Self::HandshakeDeadline => 1,
            Self::RequestTimeout => 2,
        }
    }

    fn all() -> [Self; Self::COUNT] {
        [
            Self::KeepAlive,
            Self::HandshakeDeadline,
            Self::RequestTimeout,
        ]
    }
}

/// Deadlines indexed by [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Timestamp>; Timer::COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Timestamp) {
        self.deadlines[timer.slot()] = Some(at);
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Timestamp> {
        self.deadlines[timer.slot()]
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    /// The earliest armed deadline.
    pub(crate) fn next_timeout(&self) -> Option<Timestamp> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the timers whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) -> impl Iterator<Item = Timer> + use<> {
        let mut fired = Vec::new();
        for t in Timer::all() {
            if self.get(t).is_some_and(|d| d <= now) {
                self.stop(t);
                fired.push(t);
            }
        }
        fired.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_orders_and_expires() {
        let mut t = TimerTable::default();
        let s = |n| Timestamp::ZERO + Duration::from_secs(n);
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::KeepAlive, s(5));
        t.set(Timer::RequestTimeout, s(2));
        assert_eq!(t.next_timeout(), Some(s(2)));
        assert_eq!(t.expire(s(1)).count(), 0);
        assert_eq!(
            t.expire(s(3)).collect::<Vec<_>>(),
            vec![Timer::RequestTimeout]
        );
        assert_eq!(t.next_timeout(), Some(s(5)));
        assert_eq!(s(5).saturating_duration_since(s(7)), Duration::ZERO);
        assert_eq!(
            (s(5) - Duration::from_secs(9)).since_origin(),
            Duration::ZERO
        );
    }
}
