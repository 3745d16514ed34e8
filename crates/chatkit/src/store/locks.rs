//! In-process per-thread locks shared by the single-process stores (memory, SQLite) and used as
//! the first stage of the PostgreSQL lock: a map of thread id → tokio mutex, entries removed
//! again when nobody holds or waits for them, with a bounded wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use super::StoreError;

type Entry = Arc<tokio::sync::Mutex<()>>;

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
}
