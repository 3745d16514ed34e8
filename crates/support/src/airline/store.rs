//! [`AirlineStore`]: one [`CustomerProfile`] per thread key, persisted in the ChatKit store's key-value space
//! (namespace [`NAMESPACE`]) so it lives in the same database as the threads and survives restarts.
//!
//! Every change is a read–modify–compare-and-set loop: a writer that lost the race re-reads and re-applies
//! its operation, so each operation is atomic per thread even with several replicas on one database.

use std::sync::Arc;
use std::time::Duration;

use chatkit::store::{Store, StoreError};
use chrono::{DateTime, Utc};

use super::ops::OpError;
use super::profile::CustomerProfile;

/// Key-value namespace of the airline state.
pub const NAMESPACE: &str = "airline";
/// Key used when no thread id is given (the side panel before a conversation exists).
pub(crate) const DEFAULT_THREAD_KEY: &str = "demo_default_thread";

/// How many times a contended update is retried before giving up.
const MAX_ATTEMPTS: u32 = 50;

/// When the thread named by `key` was created, for ids that carry it.
fn key_created_at(key: &str) -> Option<DateTime<Utc>> {
    chatkit::ids::created_at(key).map(DateTime::<Utc>::from)
}

/// Per-thread airline state on top of a ChatKit [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct AirlineStore {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for AirlineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AirlineStore").field("store", &self.store.describe()).finish()
    }
}

impl AirlineStore {
    /// Wraps the store the threads live in.
    pub fn new(store: Arc<dyn Store>) -> Self {
        AirlineStore { store }
    }

    /// Reads the stored profile and its version (`None` when the key is absent).
    async fn load(&self, key: &str) -> Result<Option<(CustomerProfile, i64)>, StoreError> {
        match self.store.kv_get(NAMESPACE, key).await? {
            None => Ok(None),
            Some(v) => {
                let profile = serde_json::from_value(v.value)
                    .map_err(|e| StoreError::Corrupt(format!("airline profile `{key}`: {e}")))?;
                Ok(Some((profile, v.version)))
            }
        }
    }

    fn encode(key: &str, profile: &CustomerProfile) -> Result<serde_json::Value, StoreError> {
        serde_json::to_value(profile).map_err(|e| StoreError::Corrupt(format!("airline profile `{key}`: {e}")))
    }

    /// The profile of `key`.
    ///
    /// A thread whose profile was never changed reads the demo profile as of the thread's creation (the
    /// time in its id, see [`chatkit::ids::created_at`]) without writing anything: the same profile on
    /// every read, and no database write on a thread's first turn. Other keys (the side panel's default
    /// key, ids of another format) have the demo profile created and persisted on first access, so their
    /// timeline is stable too.
    pub async fn profile(&self, key: &str) -> Result<CustomerProfile, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if let Some((profile, _)) = self.load(key).await? {
                return Ok(profile);
            }
            if let Some(created) = key_created_at(key) {
                return Ok(CustomerProfile::demo_at(created));
            }
            let fresh = CustomerProfile::demo();
            if self.store.kv_compare_and_set(NAMESPACE, key, None, &Self::encode(key, &fresh)?).await? {
                return Ok(fresh);
            }
            backoff(attempt).await;
        }
        Err(contention(key))
    }

    /// Whether the profile of `key` records `widget_id` as used. Only reads: a key without a stored
    /// profile has used nothing.
    pub(crate) async fn is_widget_used(&self, key: &str, widget_id: &str) -> Result<bool, StoreError> {
        Ok(self.load(key).await?.is_some_and(|(profile, _)| profile.is_widget_consumed(widget_id)))
    }

    /// Applies `f` atomically to the profile of `key` (created from the default if absent).
    ///
    /// `f` may run several times (once per attempt, each time on a freshly read profile), so it must not have
    /// side effects beyond the profile. When `f` fails nothing is written and its error is returned inside `Ok`.
    pub async fn update<T>(
        &self,
        key: &str,
        mut f: impl FnMut(&mut CustomerProfile) -> Result<T, OpError>,
    ) -> Result<Result<T, OpError>, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let (mut profile, version) = match self.load(key).await? {
                Some((p, v)) => (p, Some(v)),
                None => (key_created_at(key).map_or_else(CustomerProfile::demo, CustomerProfile::demo_at), None),
            };
            let out = match f(&mut profile) {
                Ok(out) => out,
                Err(e) => return Ok(Err(e)),
            };
            if self.store.kv_compare_and_set(NAMESPACE, key, version, &Self::encode(key, &profile)?).await? {
                return Ok(Ok(out));
            }
            tracing::debug!(key, attempt, "airline state changed concurrently; retrying");
            backoff(attempt).await;
        }
        Err(contention(key))
    }

    /// Deletes the state of `key` (no error if absent).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.kv_delete(NAMESPACE, key).await
    }
}

fn contention(key: &str) -> StoreError {
    StoreError::Database(format!("airline state `{key}` is being changed by too many writers at once"))
}

/// No wait for the first retries, then a short growing, jittered pause.
async fn backoff(attempt: u32) {
    if attempt < 2 {
        return;
    }
    let base = u64::from(attempt.min(10)) * 2;
    let jitter = rand::random_range(0..=base);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatkit::store::MemoryStore;

    fn airline() -> (AirlineStore, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        (AirlineStore::new(store.clone()), store)
    }

    #[tokio::test]
    async fn profile_is_created_lazily_and_persisted() {
        let (airline, store) = airline();
        assert!(store.kv_get(NAMESPACE, "thr_1").await.unwrap().is_none());
        let first = airline.profile("thr_1").await.unwrap();
        assert_eq!(first.name, "Jordan Miles");
        let stored = store.kv_get(NAMESPACE, "thr_1").await.unwrap().unwrap();
        assert_eq!(stored.value, first.to_json());
        // Second read returns the same stored profile (same timestamps).
        assert_eq!(airline.profile("thr_1").await.unwrap(), first);
    }

    #[tokio::test]
    async fn generated_thread_ids_read_the_demo_as_of_creation_without_writing() {
        let (airline, store) = airline();
        let id = chatkit::ids::generate(chatkit::ids::THREAD);
        let first = airline.profile(&id).await.unwrap();
        assert!(store.kv_get(NAMESPACE, &id).await.unwrap().is_none(), "a read must not write");
        tokio::time::sleep(Duration::from_millis(3)).await;
        // Every read is the same profile, timestamps included: they come from the id.
        assert_eq!(airline.profile(&id).await.unwrap(), first);
        let created = key_created_at(&id).unwrap();
        let stamps: Vec<_> = first.timeline.iter().map(|t| t.timestamp.clone()).collect();
        let expected: Vec<_> = (0..3)
            .rev()
            .map(|n| crate::airline::timeline_timestamp(created + chrono::Duration::microseconds(n)))
            .collect();
        assert_eq!(stamps, expected);
        // The first change persists that same profile, changed.
        airline.update(&id, |p| p.change_seat("OA476", "2A")).await.unwrap().unwrap();
        let stored: CustomerProfile =
            serde_json::from_value(store.kv_get(NAMESPACE, &id).await.unwrap().unwrap().value).unwrap();
        assert_eq!(stored.segments[0].seat, "2A");
        assert_eq!(stored.timeline[stored.timeline.len() - 3..], first.timeline[..]);
    }

    #[tokio::test]
    async fn update_persists_and_threads_are_isolated() {
        let (airline, _) = airline();
        let text = airline.update("thr_a", |p| p.change_seat("OA476", "14c")).await.unwrap().unwrap();
        assert_eq!(text, "Seat updated to 14C on flight OA476.");
        assert_eq!(airline.profile("thr_a").await.unwrap().segments[0].seat, "14C");
        assert_eq!(airline.profile("thr_b").await.unwrap().segments[0].seat, "14A");
        assert_eq!(airline.profile(DEFAULT_THREAD_KEY).await.unwrap().segments[0].seat, "14A");
    }

    #[tokio::test]
    async fn failed_update_writes_nothing() {
        let (airline, store) = airline();
        let before = airline.profile("thr_a").await.unwrap();
        let version = store.kv_get(NAMESPACE, "thr_a").await.unwrap().unwrap().version;
        let err = airline.update("thr_a", |p| p.change_seat("OA999", "3A")).await.unwrap().unwrap_err();
        assert_eq!(err, OpError::UnknownFlight("OA999".into()));
        assert_eq!(airline.profile("thr_a").await.unwrap(), before);
        assert_eq!(store.kv_get(NAMESPACE, "thr_a").await.unwrap().unwrap().version, version);
    }

    #[tokio::test]
    async fn widget_use_is_read_without_writing() {
        let (airline, store) = airline();
        assert!(!airline.is_widget_used("thr_w", "msg_1").await.unwrap());
        assert!(store.kv_get(NAMESPACE, "thr_w").await.unwrap().is_none(), "a read must not write");
        airline.update("thr_w", |p| p.use_widget("msg_1")).await.unwrap().unwrap();
        assert!(airline.is_widget_used("thr_w", "msg_1").await.unwrap());
        assert!(!airline.is_widget_used("thr_w", "msg_2").await.unwrap());
        assert!(!airline.is_widget_used("thr_other", "msg_1").await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_are_all_applied() {
        let (airline, _) = airline();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let a = airline.clone();
            tasks.push(tokio::spawn(async move { a.update("thr_c", |p| Ok(p.add_bag())).await.unwrap().unwrap() }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let p = airline.profile("thr_c").await.unwrap();
        assert_eq!(p.bags_checked, 20);
        assert_eq!(p.timeline.len(), 23);
        assert_eq!(p.timeline[0].entry, "Added checked bag. Total bags now 20.");
    }

    #[tokio::test]
    async fn delete_resets_to_default() {
        let (airline, store) = airline();
        airline.update("thr_d", |p| Ok(p.add_bag())).await.unwrap().unwrap();
        airline.delete("thr_d").await.unwrap();
        assert!(store.kv_get(NAMESPACE, "thr_d").await.unwrap().is_none());
        assert_eq!(airline.profile("thr_d").await.unwrap().bags_checked, 0);
        airline.delete("never").await.unwrap();
    }
}
