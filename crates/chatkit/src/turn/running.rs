//! The turns running in this process, by thread, so that `threads.delete` can stop them: a deleted
//! thread's turn ends as if its client had left (its model call is dropped at once), except that it writes
//! nothing more, since there is no thread left to write to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Running turns by thread id: each turn's tokens, under a number unique in this process.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunningTurns {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    by_thread: HashMap<String, Vec<(u64, Tokens)>>,
}

/// What stopping a turn cancels: `stop` ends its stream (the sink's token), `deleted` says why.
#[derive(Debug, Clone)]
struct Tokens {
    stop: CancellationToken,
    deleted: CancellationToken,
}

/// A turn's place in [`RunningTurns`]; dropping it (the turn ended) removes it.
#[derive(Debug)]
pub(crate) struct Registered {
    turns: RunningTurns,
    thread_id: String,
    number: u64,
    /// Cancelled when the turn's thread is deleted.
    pub(crate) deleted: CancellationToken,
}

impl RunningTurns {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a turn on `thread_id`; `stop` is cancelled when the thread is deleted.
    pub(crate) fn register(&self, thread_id: &str, stop: CancellationToken) -> Registered {
        let mut registry = self.registry();
        registry.next += 1;
        let number = registry.next;
        let deleted = CancellationToken::new();
        registry
            .by_thread
            .entry(thread_id.to_string())
            .or_default()
            .push((number, Tokens { stop, deleted: deleted.clone() }));
        Registered { turns: self.clone(), thread_id: thread_id.to_string(), number, deleted }
    }

    /// Stops every turn running on `thread_id` (the thread was deleted); returns how many.
    pub(crate) fn thread_deleted(&self, thread_id: &str) -> usize {
        let stopped = self.registry().by_thread.remove(thread_id).unwrap_or_default();
        for (_, tokens) in &stopped {
            tokens.deleted.cancel();
            tokens.stop.cancel();
        }
        stopped.len()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut registry = self.turns.registry();
        if let Some(turns) = registry.by_thread.get_mut(&self.thread_id) {
            turns.retain(|(n, _)| *n != self.number);
            if turns.is_empty() {
                registry.by_thread.remove(&self.thread_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_a_thread_stops_its_turns_only() {
        let turns = RunningTurns::default();
        let stop = CancellationToken::new();
        let a1 = turns.register("a", stop.clone());
        let a2 = turns.register("a", CancellationToken::new());
        let b = turns.register("b", CancellationToken::new());
        drop(a2);
        assert_eq!(turns.thread_deleted("a"), 1);
        assert!(a1.deleted.is_cancelled() && stop.is_cancelled());
        assert!(!b.deleted.is_cancelled());
        assert_eq!(turns.thread_deleted("a"), 0);
        drop(b);
        assert!(turns.registry().by_thread.is_empty());
    }
}
