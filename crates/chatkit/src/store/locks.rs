//! In-process per-thread locks shared by the single-process stores (memory, SQLite) and used as
//! the first stage of the PostgreSQL lock: a map of thread id → tokio mutex, entries removed
//! again when nobody holds or waits for them, with a bounded wait.
//!
//! Also the mark of requests that write without the lock ([`without_thread_lock`]): a store that fences
//! the writes of a lock holder (PostgreSQL, whose lock can be lost with its database session) must not
//! fence theirs, since they never held it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use super::StoreError;

type Entry = Arc<tokio::sync::Mutex<()>>;

tokio::task_local! {
    static WITHOUT_LOCK: ();
}

/// Runs `work` as a request that takes no thread lock (`threads.update`, `threads.sync_custom_action`
/// and the other non-streaming requests): its writes are never refused because a turn of this process
/// lost the thread's lock, which only says that *that turn* must stop writing.
pub async fn without_thread_lock<F: Future>(work: F) -> F::Output {
    WITHOUT_LOCK.scope((), work).await
}

/// Whether the running task is inside [`without_thread_lock`]. Everything else (a turn, and the writes
/// a streaming request makes before its turn starts) writes as the holder of the thread's lock when this
/// process holds it.
pub fn is_without_thread_lock() -> bool {
    WITHOUT_LOCK.try_with(|()| ()).is_ok()
}

/// A map of per-key async mutexes (keys are thread ids).
#[derive(Debug, Default, Clone)]
pub struct LocalLocks {
    map: Arc<Mutex<HashMap<String, Entry>>>,
}

/// Holds one key of a [`LocalLocks`]; dropping it releases the key (and forgets it when idle).
#[derive(Debug)]
pub struct LocalGuard {
    guard: Option<OwnedMutexGuard<()>>,
    map: Arc<Mutex<HashMap<String, Entry>>>,
    key: String,
}

impl LocalLocks {
    /// An empty lock map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks `key`, waiting at most `wait`; `LockTimeout(key)` when it stays busy.
    pub async fn lock(&self, key: &str, wait: Duration) -> Result<LocalGuard, StoreError> {
        let entry = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        let acquired = tokio::time::timeout(wait, entry.lock_owned()).await;
        match acquired {
            Ok(guard) => Ok(LocalGuard { guard: Some(guard), map: self.map.clone(), key: key.to_string() }),
            Err(_) => {
                // Our clone of the entry is gone (moved into the cancelled future); tidy up.
                let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
                forget_if_idle(&mut map, key);
                Err(StoreError::LockTimeout(key.to_string()))
            }
        }
    }

    /// Number of keys currently tracked (held or waited for); for tests.
    pub fn tracked(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn forget_if_idle(map: &mut HashMap<String, Entry>, key: &str) {
    if map.get(key).is_some_and(|e| Arc::strong_count(e) == 1) {
        map.remove(key);
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        forget_if_idle(&mut map, &self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn excludes_times_out_and_forgets_idle_keys() {
        let locks = LocalLocks::new();
        let g = locks.lock("t", Duration::from_millis(10)).await.unwrap();
        assert_eq!(locks.tracked(), 1);
        let err = locks.lock("t", Duration::from_millis(20)).await.unwrap_err();
        assert!(matches!(err, StoreError::LockTimeout(ref k) if k == "t"));
        let other = locks.lock("u", Duration::from_millis(10)).await.unwrap();
        assert_eq!(locks.tracked(), 2);
        drop(g);
        drop(other);
        assert_eq!(locks.tracked(), 0);
        let again = locks.lock("t", Duration::from_millis(10)).await.unwrap();
        drop(again);
        assert_eq!(locks.tracked(), 0);
    }

    #[tokio::test]
    async fn requests_without_the_lock_are_marked_for_their_task_only() {
        assert!(!is_without_thread_lock());
        assert!(without_thread_lock(async { is_without_thread_lock() }).await);
        // A task spawned from inside is not such a request.
        let spawned = without_thread_lock(async { tokio::spawn(async { is_without_thread_lock() }).await.unwrap() });
        assert!(!spawned.await);
        assert!(!is_without_thread_lock());
    }
}
