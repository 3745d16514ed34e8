//! Per-owner counters of one process: open streams and the start times of the last minute's turns, in
//! maps keyed by owner. Idle owners are forgotten: a stream count that falls to zero is removed, and
//! owners without a turn in the last minute are pruned as new owners arrive.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{TURN_WINDOW, UserLimits};

/// Prune idle owners whenever this many are tracked beyond the last pruning.
const PRUNE_STEP: usize = 1024;

/// The counters of one process.
pub(super) struct LocalCounters {
    max_streams: u32,
    max_turns: u32,
    streams: Arc<Mutex<HashMap<String, u32>>>,
    turns: Mutex<TurnLog>,
}

/// When each owner's turns of the last minute started (oldest first).
struct TurnLog {
    starts: HashMap<String, VecDeque<Instant>>,
    prune_at: usize,
}

impl LocalCounters {
    /// Counters enforcing `limits` (a zero limit is not counted at all).
    pub(super) fn new(limits: UserLimits) -> Self {
        LocalCounters {
            max_streams: limits.max_streams,
            max_turns: limits.turns_per_minute,
            streams: Arc::new(Mutex::new(HashMap::new())),
            turns: Mutex::new(TurnLog { starts: HashMap::new(), prune_at: PRUNE_STEP }),
        }
    }

    /// Takes one of `owner`'s stream slots, or `None` when all are in use.
    pub(super) fn take_slot(&self, owner: &str) -> Option<LocalSlot> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let open = streams.entry(owner.to_string()).or_insert(0);
        if *open >= self.max_streams {
            return None;
        }
        *open += 1;
        Some(LocalSlot { streams: self.streams.clone(), owner: owner.to_string() })
    }

    /// Counts one turn of `owner`; `Some(wait)` when `owner` already started the most turns allowed in
    /// the last minute, `wait` being how long until the oldest of them leaves the minute (nothing is
    /// counted then).
    pub(super) fn take_turn(&self, owner: &str) -> Option<Duration> {
        let max = self.max_turns as usize;
        if max == 0 {
            return None;
        }
        let now = Instant::now();
        let mut log = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        if log.starts.len() >= log.prune_at {
            log.starts.retain(|_, starts| starts.back().is_some_and(|t| now.duration_since(*t) < TURN_WINDOW));
            log.prune_at = log.starts.len() + PRUNE_STEP;
        }
        let starts = log.starts.entry(owner.to_string()).or_default();
        while starts.front().is_some_and(|t| now.duration_since(*t) >= TURN_WINDOW) {
            starts.pop_front();
        }
        if starts.len() >= max {
            let oldest = starts[starts.len() - max];
            return Some(TURN_WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        starts.push_back(now);
        None
    }
}
/// One open stream of an owner; gives the slot back when dropped.
#[derive(Debug)]
pub(super) struct LocalSlot {
    streams: Arc<Mutex<HashMap<String, u32>>>,
    owner: String,
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = streams.get_mut(&self.owner) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_owner_and_forgotten_when_free() {
        let counters = LocalCounters::new(UserLimits { max_streams: 2, ..UserLimits::default() });
        let a1 = counters.take_slot("a").unwrap();
        let a2 = counters.take_slot("a").unwrap();
        assert!(counters.take_slot("a").is_none());
        assert!(counters.take_slot("b").is_some());
        drop(a1);
        let a3 = counters.take_slot("a").unwrap();
        drop((a2, a3));
        assert!(counters.streams.lock().unwrap().is_empty());
        // Turns are not counted when off.
        assert_eq!(counters.take_turn("a"), None);
    }

    #[test]
    fn the_turn_after_a_minutes_allowance_waits_for_the_oldest_to_leave_the_minute() {
        let counters = LocalCounters::new(UserLimits { turns_per_minute: 3, ..UserLimits::default() });
        for _ in 0..3 {
            assert_eq!(counters.take_turn("a"), None);
        }
        let wait = counters.take_turn("a").unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= TURN_WINDOW, "{wait:?}");
        assert_eq!(counters.take_turn("b"), None);
    }
}
