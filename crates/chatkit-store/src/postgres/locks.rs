//! Thread locks of the PostgreSQL store: session advisory locks held on a few dedicated
//! *lock sessions* (never on pooled connections), after an in-process per-thread mutex.
//!
//! `pg_try_advisory_lock` is polled (2 ms doubling to 50 ms) until the wait elapses. Release runs
//! `pg_advisory_unlock` in a spawned task when the guard drops, then frees the local mutex. A
//! lock session whose query fails is discarded — PostgreSQL drops its locks with the session —
//! and reconnected on next use.
//!
//! Because a session can die while its lock is held, each grant also claims the thread's fence token
//! (see `fence`); the holder's token is kept here, by thread, for the store's item writes to check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, PgConnection};
use tokio::time::Instant;

use chatkit::store::locks::{LocalGuard, LocalLocks};
use chatkit::store::{StoreError, StoreResult};

use super::{db_err, fence};

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";
const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
/// Dedicated connections holding the advisory locks of `lock_thread` (threads are spread by hash).
const LOCK_SESSIONS: usize = 2;
const POLL_START: Duration = Duration::from_millis(2);
const POLL_MAX: Duration = Duration::from_millis(50);

/// 64-bit FNV-1a of `s` as a signed integer, the key of an advisory lock: stable across builds and
/// processes, so replicas agree on the key of a thread.
pub(super) fn advisory_key(s: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// Opens one connection, giving up after `timeout`; the error is a plain message.
pub(super) async fn connect_once(options: &PgConnectOptions, timeout: Duration) -> Result<PgConnection, String> {
    match tokio::time::timeout(timeout, PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f32())),
    }
}

/// The advisory-lock side of [`super::PostgresStore`]'s `lock_thread`.
pub(super) struct PgLocks {
    connect: PgConnectOptions,
    connect_timeout: Duration,
    namespace: String,
    sessions: Vec<tokio::sync::Mutex<Option<PgConnection>>>,
    local: LocalLocks,
    /// Pooled connections, for claiming fence tokens.
    pool: PgPool,
    /// The fence token of each thread whose lock this process holds.
    tokens: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for PgLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLocks").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

impl PgLocks {
    /// Lock sessions connecting with `connect` (lazily); keys are namespaced by `namespace`.
    pub(super) fn new(connect: PgConnectOptions, connect_timeout: Duration, namespace: String, pool: PgPool) -> Self {
        PgLocks {
            connect,
            connect_timeout,
            namespace,
            sessions: (0..LOCK_SESSIONS).map(|_| tokio::sync::Mutex::new(None)).collect(),
            local: LocalLocks::new(),
            pool,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The schema the locks are namespaced by (`public` without one).
    pub(super) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The fence token of `thread_id` if this process holds its lock.
    pub(super) fn token(&self, thread_id: &str) -> Option<i64> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(thread_id).copied()
    }

    /// Closes the lock sessions (PostgreSQL drops every lock they hold).
    pub(super) async fn close(&self) {
        for session in &self.sessions {
            if let Some(conn) = session.lock().await.take() {
                let _ = conn.close().await;
            }
        }
    }

    /// Runs `SELECT <fn>($key)` on lock session `shard`, (re)connecting it if needed.
    ///
    /// A failed query discards the session (PostgreSQL then drops every lock it held). When the
    /// failing session was an old one (e.g. the server restarted) and `retry` is set, the call
    /// is repeated once on a fresh session: that is safe for `pg_try_advisory_lock`, since the
    /// dead session holds nothing any more.
    async fn call(&self, shard: usize, sql: &'static str, key: i64, retry: bool) -> StoreResult<bool> {
        let Some(session) = self.sessions.get(shard) else {
            return Err(StoreError::Database(format!("no lock session {shard}")));
        };
        let mut slot = session.lock().await;
        let mut attempts = if retry { 2 } else { 1 };
        loop {
            attempts -= 1;
            let fresh = slot.is_none();
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => {
                    let conn = connect_once(&self.connect, self.connect_timeout)
                        .await
                        .map_err(|e| StoreError::Database(format!("thread lock: cannot connect: {e}")))?;
                    slot.insert(conn)
                }
            };
            match sqlx::query_scalar::<_, bool>(sql).bind(key).fetch_one(conn).await {
                Ok(value) => return Ok(value),
                Err(e) => {
                    *slot = None;
                    tracing::warn!(error = %e, "PostgreSQL lock session failed; the locks it held are released");
                    if fresh || attempts == 0 {
                        return Err(db_err("thread lock", e));
                    }
                }
            }
        }
    }

    /// Takes the local mutex, then polls the advisory lock until `wait` elapses.
    pub(super) async fn acquire(self: Arc<Self>, thread_id: String, wait: Duration) -> StoreResult<PgThreadGuard> {
        let deadline = Instant::now() + wait;
        let local = self.local.lock(&thread_id, wait).await?;
        let key = advisory_key(&format!("chatkit-thread:{}:{thread_id}", self.namespace));
        let shard = usize::try_from(key.unsigned_abs() % LOCK_SESSIONS as u64).unwrap_or(0);
        let mut delay = POLL_START;
        loop {
            if self.call(shard, TRY_LOCK, key, true).await? {
                let guard = PgThreadGuard { locks: self.clone(), key, shard, thread_id, local: Some(local) };
                // On failure the guard drops, which releases the advisory lock again.
                let token = fence::claim(&self.pool, &guard.thread_id).await?;
                self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(guard.thread_id.clone(), token);
                return Ok(guard);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::LockTimeout(thread_id));
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(POLL_MAX);
        }
    }
}

/// Holds one thread's advisory lock (and the in-process mutex); released by a task on drop.
pub(super) struct PgThreadGuard {
    locks: Arc<PgLocks>,
    key: i64,
    shard: usize,
    thread_id: String,
    local: Option<LocalGuard>,
}

impl Drop for PgThreadGuard {
    fn drop(&mut self) {
        // Before the local mutex is freed: the next holder in this process stores its own token.
        self.locks.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.thread_id);
        let local = self.local.take();
        let (locks, key, shard) = (self.locks.clone(), self.key, self.shard);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    match locks.call(shard, UNLOCK, key, false).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("thread lock was already released (lock session was reset)"),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not release a thread lock; its session was dropped")
                        }
                    }
                    drop(local);
                });
            }
            Err(_) => {
                // No runtime to run the unlock: drop the session so PostgreSQL releases the lock.
                if let Some(session) = locks.sessions.get(shard)
                    && let Ok(mut slot) = session.try_lock()
                {
                    slot.take();
                }
                drop(local);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::advisory_key;

    #[test]
    fn advisory_keys_are_fnv1a() {
        assert_eq!(advisory_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(advisory_key("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_ne!(advisory_key("thr_1"), advisory_key("thr_2"));
    }
}
