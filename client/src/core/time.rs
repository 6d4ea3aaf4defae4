//! Time as the core sees it: a caller-supplied clock reading and a timer queue.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A reading of the caller's monotonic clock, in milliseconds since an epoch
/// that the caller chooses.
///
/// The core never reads a clock. The driver passes the current reading into
/// every call, and readings must never go backwards. The tokio driver counts
/// from the moment it started; a browser driver can use `performance.now()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// Creates a reading of `millis` milliseconds after the caller's epoch.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis)
    }

    /// Returns the milliseconds since the caller's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Returns the reading `duration` later, saturating at the largest reading.
    pub fn after(self, duration: Duration) -> Timestamp {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// Returns the time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A handle to a scheduled timer, used to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TimerId(u64);

/// Timers ordered by deadline. Each carries a value of type `T` that says
/// what to do when it fires.
#[derive(Debug)]
pub(crate) struct Timers<T> {
    queue: BTreeMap<(Timestamp, u64), T>,
    deadlines: HashMap<u64, Timestamp>,
    next_id: u64,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Timers<T> {
        Timers {
            queue: BTreeMap::new(),
            deadlines: HashMap::new(),
            next_id: 0,
        }
    }

    /// Schedules `value` to fire at `deadline`.
    pub(crate) fn add(&mut self, deadline: Timestamp, value: T) -> TimerId {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.insert((deadline, id), value);
        self.deadlines.insert(id, deadline);
        TimerId(id)
    }

    /// Cancels a timer and returns its value, or `None` when it already fired
    /// or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        let deadline = self.deadlines.remove(&id.0)?;
        self.queue.remove(&(deadline, id.0))
    }

    /// Returns the earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.queue.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns the earliest timer whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Timestamp) -> Option<T> {
        let (&(deadline, id), _) = self.queue.first_key_value()?;
        if deadline > now {
            return None;
        }
        self.deadlines.remove(&id);
        self.queue.remove(&(deadline, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_order() {
        let mut timers = Timers::new();
        timers.add(Timestamp::from_millis(30), "c");
        timers.add(Timestamp::from_millis(10), "a");
        timers.add(Timestamp::from_millis(20), "b");
        assert_eq!(timers.next_deadline(), Some(Timestamp::from_millis(10)));
        assert_eq!(timers.pop_expired(Timestamp::from_millis(5)), None);
        assert_eq!(timers.pop_expired(Timestamp::from_millis(25)), Some("a"));
        assert_eq!(timers.pop_expired(Timestamp::from_millis(25)), Some("b"));
        assert_eq!(timers.pop_expired(Timestamp::from_millis(25)), None);
    }

    #[test]
    fn cancelled_timer_never_fires() {
        let mut timers = Timers::new();
        let id = timers.add(Timestamp::from_millis(10), 1);
        assert_eq!(timers.cancel(id), Some(1));
        assert_eq!(timers.cancel(id), None);
        assert_eq!(timers.pop_expired(Timestamp::from_millis(100)), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn timestamp_arithmetic_saturates() {
        let late = Timestamp::from_millis(u64::MAX - 1);
        assert_eq!(late.after(Duration::from_secs(1)).as_millis(), u64::MAX);
        assert_eq!(
            Timestamp::from_millis(5).since(Timestamp::from_millis(9)),
            Duration::ZERO
        );
    }
}
