//! Per-owner counters shared by every replica of one PostgreSQL database, kept in the store's versioned
//! key-value state and changed only by compare-and-set, so two replicas never both take the last slot.
//!
//! * `streams:<owner>` holds the owner's stream leases, `{"leases": {"<lease id>": <expiry>}}` (µs since
//!   the epoch). The replica serving a response renews its lease every [`RENEW_EVERY`] and removes it when
//!   the response ends; a lease whose replica stopped renewing it (crashed, cut off) expires after
//!   [`LEASE_TTL`] and is dropped by the next replica that looks.
//! * `turns:<owner>` holds when the owner's turns of the last minute started, `{"starts_us": [...]}`
//!   (at most `TURNS_PER_MINUTE` of them).
//!
//! Times are the replicas' wall clocks, so replicas are expected to keep them in sync (NTP); a skew
//! shifts a lease's expiry or the rate by that much, never more.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatkit::Store;
use chatkit::store::{StoreError, StoreResult};
use rand::Rng as _;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::TURN_WINDOW;

/// Namespace of the counters in the key-value state.
const NAMESPACE: &str = "user_limits";
/// How long a stream lease lives without renewal.
pub(super) const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often a running response renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// Compare-and-set attempts before giving up on a counter that other requests keep changing.
const MAX_ATTEMPTS: usize = 64;

/// Counters in the shared database.
pub(super) struct SharedCounters {
    store: Arc<dyn Store>,
}

/// Microseconds since the epoch on this replica's clock.
fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or_default()
}

/// Applies `change` to the value under `key` by compare-and-set, re-reading after a lost race.
/// `change` answers the value to write (`None`: write nothing) and the result.
async fn update<T>(
    store: &dyn Store,
    key: &str,
    mut change: impl FnMut(Option<&Value>) -> (Option<Value>, T),
) -> StoreResult<T> {
    for attempt in 0..MAX_ATTEMPTS {
        let current = store.kv_get(NAMESPACE, key).await?;
        let (new, out) = change(current.as_ref().map(|v| &v.value));
        let Some(new) = new else { return Ok(out) };
        if store.kv_compare_and_set(NAMESPACE, key, current.map(|v| v.version), &new).await? {
            return Ok(out);
        }
        // Lost to a concurrent request of the same owner: back off a little, with jitter, so a burst of
        // them does not keep colliding.
        let most = 2 + 2 * attempt.min(10) as u64;
        let pause = Duration::from_millis(rand::rng().random_range(1..=most));
        tokio::time::sleep(pause).await;
    }
    Err(StoreError::Database(format!(
        "the per-user counter `{NAMESPACE}` kept changing; gave up after {MAX_ATTEMPTS} attempts"
    )))
}

/// The live leases of a `streams:` value at `now` (expired ones left out).
fn live_leases(value: Option<&Value>, now: i64) -> Map<String, Value> {
    let mut leases = value.and_then(|v| v.get("leases")).and_then(Value::as_object).cloned().unwrap_or_default();
    leases.retain(|_, expiry| expiry.as_i64().is_some_and(|e| e > now));
    leases
}

impl SharedCounters {
    /// Counters in `store`'s key-value state.
    pub(super) fn new(store: Arc<dyn Store>) -> Self {
        SharedCounters { store }
    }

    /// Takes one of `owner`'s `max` stream slots as a lease renewed until the returned [`Lease`] drops;
    /// `None` when all are in use.
    pub(super) async fn take_slot(&self, owner: &str, max: u32) -> StoreResult<Option<Lease>> {
        let key = format!("streams:{owner}");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let ttl = LEASE_TTL.as_micros() as i64;
        let taken = update(self.store.as_ref(), &key, |value| {
            let now = now_us();
            let mut leases = live_leases(value, now);
            if leases.len() >= max as usize {
                return (None, false);
            }
            leases.insert(id.clone(), json!(now + ttl));
            (Some(json!({ "leases": leases })), true)
        })
        .await?;
        if !taken {
            return Ok(None);
        }
        let renewal = tokio::spawn(renew(self.store.clone(), key.clone(), id.clone()));
        Ok(Some(Lease { store: self.store.clone(), key, id, renewal }))
    }

    /// Counts one turn of `owner` against `per_minute`; `Some(wait)` when the last minute's allowance is
    /// used up, `wait` being how long until its oldest turn leaves the minute (nothing counted then).
    pub(super) async fn take_turn(&self, owner: &str, per_minute: u32) -> StoreResult<Option<Duration>> {
        let max = per_minute.max(1) as usize;
        let window = TURN_WINDOW.as_micros() as i64;
        update(self.store.as_ref(), &format!("turns:{owner}"), |value| {
            let now = now_us();
            let mut starts: Vec<i64> = value
                .and_then(|v| v.get("starts_us"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).filter(|t| now - t < window).collect())
                .unwrap_or_default();
            starts.sort_unstable();
            if starts.len() >= max {
                let oldest = starts[starts.len() - max];
                return (None, Some(Duration::from_micros((oldest + window - now).max(0) as u64)));
            }
            starts.push(now);
            (Some(json!({ "starts_us": starts })), None)
        })
        .await
    }
}

/// Keeps a lease alive while its response runs.
async fn renew(store: Arc<dyn Store>, key: String, id: String) {
    let ttl = LEASE_TTL.as_micros() as i64;
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let renewed = update(store.as_ref(), &key, |value| {
            let now = now_us();
            let mut leases = live_leases(value, now);
            // Also when it had expired meanwhile (the database did not answer for a while): the response
            // is still running, so it still holds its slot.
            leases.insert(id.clone(), json!(now + ttl));
            (Some(json!({ "leases": leases })), ())
        })
        .await;
        if let Err(e) = renewed {
            tracing::warn!(error = %e, "could not renew a stream lease; it expires unless a later renewal works");
        }
    }
}

/// A stream slot held in the database; renewed in the background, released when dropped.
pub(super) struct Lease {
    store: Arc<dyn Store>,
    key: String,
    id: String,
    renewal: JoinHandle<()>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Longest wait for the release at the end of a response; past it the lease expires on its own.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

impl Lease {
    /// Gives the slot back and waits until the database has it, so that a client that saw its response
    /// end can start the next one at once on any replica.
    pub(super) async fn release(mut self) {
        self.renewal.abort();
        let (store, key, id) = (self.store.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        if tokio::time::timeout(RELEASE_WAIT, remove_lease(store, key, id)).await.is_err() {
            tracing::warn!("releasing a stream lease took too long; it expires on its own");
        }
    }
}

/// Removes lease `id` from the owner's leases (a lease already gone is fine).
async fn remove_lease(store: Arc<dyn Store>, key: String, id: String) {
    let released = update(store.as_ref(), &key, |value| {
        let mut leases = live_leases(value, now_us());
        if leases.remove(&id).is_none() {
            return (None, ());
        }
        (Some(json!({ "leases": leases })), ())
    })
    .await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "could not release a stream lease; it expires on its own");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        // Already released at the end of its response.
        if self.id.is_empty() {
            return;
        }
        let (store, key, id) = (self.store.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        // Without a runtime (process exit) the lease simply expires.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(remove_lease(store, key, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatkit::store::MemoryStore;

    fn store_of(counters: &SharedCounters) -> &dyn Store {
        counters.store.as_ref()
    }

    #[tokio::test]
    async fn leases_are_limited_released_and_expire() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let counters = SharedCounters::new(store.clone());
        let a = counters.take_slot("alice", 2).await.unwrap().unwrap();
        let _b = counters.take_slot("alice", 2).await.unwrap().unwrap();
        assert!(counters.take_slot("alice", 2).await.unwrap().is_none());
        assert!(counters.take_slot("bob", 2).await.unwrap().is_some());
        drop(a);
        // The release runs in the background.
        let mut freed = None;
        for _ in 0..100 {
            freed = counters.take_slot("alice", 2).await.unwrap();
            if freed.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed.is_some());
        // A lease left behind by a replica that stopped renewing it does not count once expired.
        let stale = json!({"leases": {"dead1": now_us() - 1, "dead2": now_us() - 1}});
        store.kv_compare_and_set(NAMESPACE, "streams:carol", None, &stale).await.unwrap();
        assert!(counters.take_slot("carol", 2).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn at_most_the_allowance_of_turns_start_in_any_minute() {
        let counters = SharedCounters::new(Arc::new(MemoryStore::new()));
        for _ in 0..3 {
            assert_eq!(counters.take_turn("alice", 3).await.unwrap(), None);
        }
        let wait = counters.take_turn("alice", 3).await.unwrap().unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= TURN_WINDOW, "{wait:?}");
        // Turns older than a minute no longer count.
        let old = json!({"starts_us": [now_us() - 61_000_000, now_us() - 61_000_000, now_us() - 1_000]});
        let current = store_of(&counters).kv_get(NAMESPACE, "turns:carol").await.unwrap();
        assert!(current.is_none());
        store_of(&counters).kv_compare_and_set(NAMESPACE, "turns:carol", None, &old).await.unwrap();
        assert_eq!(counters.take_turn("carol", 2).await.unwrap(), None);
        assert!(counters.take_turn("carol", 2).await.unwrap().is_some());
        assert_eq!(counters.take_turn("bob", 3).await.unwrap(), None);
    }
}
