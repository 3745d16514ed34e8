//! The turns running in this process, by thread, so that `threads.delete` can stop them: a deleted
//! thread's turn ends as if its client had left (its model call is dropped at once), except that it writes
//! nothing more, since there is no thread left to write to. A store shared with other replicas announces
//! the threads deleted through any of them ([`crate::store::Store::deleted_threads`]); from the first turn on, a task
//! stops the turns of those threads here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
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
    /// Whether the store's deletions are watched already (asked once, at the first turn).
    watching: bool,
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

    /// Starts stopping the turns of threads announced as deleted by `subscribe` (the store's
    /// [`crate::store::Store::deleted_threads`]), once: later calls do nothing. The watching task ends with the server
    /// (these turns) or the announcements.
    pub(crate) fn watch_deletions(&self, subscribe: impl FnOnce() -> Option<Receiver<String>>) {
        {
            let mut registry = self.registry();
            if registry.watching {
                return;
            }
            registry.watching = true;
        }
        let Some(mut deleted) = subscribe() else { return };
        let turns = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let thread_id = match deleted.recv().await {
                    Ok(thread_id) => thread_id,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "deleted threads were announced faster than they were handled");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(inner) = turns.upgrade() else { return };
                let stopped = RunningTurns { inner }.thread_deleted(&thread_id);
                if stopped > 0 {
                    tracing::info!(
                        thread_id,
                        stopped,
                        "stopped the responses of a thread deleted through another replica"
                    );
                }
            }
        });
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

    #[tokio::test]
    async fn threads_announced_as_deleted_stop_their_turns() {
        let turns = RunningTurns::default();
        let (announce, receiver) = tokio::sync::broadcast::channel(4);
        turns.watch_deletions(move || Some(receiver));
        // Watching starts once: a second subscription is never asked for.
        turns.watch_deletions(|| panic!("subscribed twice"));
        let stop = CancellationToken::new();
        let a = turns.register("a", stop.clone());
        let b = turns.register("b", CancellationToken::new());
        announce.send("elsewhere".to_string()).unwrap();
        announce.send("a".to_string()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), stop.cancelled()).await.unwrap();
        assert!(a.deleted.is_cancelled());
        assert!(!b.deleted.is_cancelled());
    }
}
