//! Fencing of the writes a response makes while it holds a thread's lock.
//!
//! The advisory lock of a thread lives on a lock session; if that session dies (the server restarted,
//! an operator terminated it, the network dropped it), PostgreSQL releases the lock at once and another
//! response, on any replica, may take the thread while the first one is still running. Every grant of
//! the lock therefore also claims a new *fence token* for the thread (a counter in a `kv` row), and
//! every write of the holder to the thread (its items, and the thread row: title, status, metadata)
//! checks, in the same transaction and under a share lock on that row, that the token is still its own. The next holder's claim waits for those checks and, once it has
//! committed, makes every later write of the old holder fail with [`StoreError::LockLost`]: the old
//! response stops instead of writing between the new response's items.
//!
//! Writes are also retried once on a fresh connection when the first attempt failed because its
//! connection was lost (they are upserts and deletes, so a retry cannot apply twice).
//!
//! Requests that take no lock (marked with `chatkit::store::locks::without_thread_lock`) are never
//! fenced, even on a thread whose lock this process holds for a turn: a rename sent while a turn runs
//! is not that turn's write.

use chatkit::store::{StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgPool};
use sqlx::query::Query;
use sqlx::{Executor, PgConnection, Postgres};

use super::db_err;

/// The `kv` namespace of the fence rows (one per thread that ever ran a response; the key is its id).
const NAMESPACE: &str = "chatkit.thread_fence";

/// Takes the next token of a thread: run by the new holder right after it got the advisory lock.
const CLAIM: &str = "INSERT INTO kv (namespace, key, version, value) VALUES ($1, $2, 1, '') \
     ON CONFLICT (namespace, key) DO UPDATE SET version = kv.version + 1 RETURNING version";
/// The current token of a thread, share-locked until the writing transaction ends.
const CURRENT: &str = "SELECT version FROM kv WHERE namespace = $1 AND key = $2 FOR SHARE";
/// Forgets the token of a deleted thread.
const FORGET: &str = "DELETE FROM kv WHERE namespace = $1 AND key = $2";

/// Claims the next fence token of `thread_id`.
pub(super) async fn claim(pool: &PgPool, thread_id: &str) -> StoreResult<i64> {
    with_retry("thread lock", || async {
        sqlx::query_scalar::<_, i64>(CLAIM).bind(NAMESPACE).bind(thread_id).fetch_one(pool).await
    })
    .await
}

/// Deletes the fence row of a deleted thread.
pub(super) async fn forget<'e>(conn: impl Executor<'e, Database = Postgres>, thread_id: &str) -> sqlx::Result<()> {
    sqlx::query(FORGET).bind(NAMESPACE).bind(thread_id).execute(conn).await.map(|_| ())
}

/// Runs the write `make` builds, in one transaction with a check of `token` (when the caller holds the
/// thread's lock), retrying once on a fresh connection if the connection was lost. Returns the number of
/// rows the write affected.
pub(super) async fn write<'q>(
    pool: &PgPool,
    op: &'static str,
    thread_id: &str,
    token: Option<i64>,
    make: impl Fn() -> StoreResult<Query<'q, Postgres, PgArguments>>,
) -> StoreResult<u64> {
    let mut retried = false;
    loop {
        let query = make()?;
        let attempt = async {
            let Some(token) = token else {
                // Not written by a lock holder (e.g. deleting an item outside a response): nothing to fence.
                return Ok(Ok(query.execute(pool).await?.rows_affected()));
            };
            let mut tx = pool.begin().await?;
            if let Err(refused) = check(&mut tx, op, thread_id, token).await? {
                return Ok(Err(refused));
            }
            let done = query.execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Ok(done.rows_affected()))
        };
        match attempt.await {
            Ok(answer) => return answer,
            Err(e) if !retried && connection_lost(&e) => {
                tracing::warn!(op, error = %e, "database connection lost during a write; retrying once");
                retried = true;
            }
            Err(e) => return Err(db_err(op, e)),
        }
    }
}

/// `Ok(())` while `token` is still the fence token of `thread_id`, checked inside the caller's
/// transaction and kept so until it ends (the share lock makes the next holder's claim wait for it).
/// Otherwise the error the write answers: `LockLost` when another holder claimed the thread since, and
/// `ThreadNotFound` when its fence row is gone with the thread (deleted through any replica).
pub(super) async fn check(
    conn: &mut PgConnection,
    op: &'static str,
    thread_id: &str,
    token: i64,
) -> sqlx::Result<StoreResult<()>> {
    let current: Option<i64> =
        sqlx::query_scalar(CURRENT).bind(NAMESPACE).bind(thread_id).fetch_optional(&mut *conn).await?;
    Ok(match current {
        Some(current) if current == token => Ok(()),
        Some(_) => {
            tracing::warn!(thread_id, op, "write refused: this response lost the thread's lock");
            Err(StoreError::LockLost(thread_id.to_string()))
        }
        None => {
            tracing::info!(thread_id, op, "write refused: the thread was deleted while this response ran");
            Err(StoreError::ThreadNotFound(thread_id.to_string()))
        }
    })
}

/// Runs `attempt` again once if it failed because its connection was lost.
async fn with_retry<T, F, Fut>(op: &'static str, attempt: F) -> StoreResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    match attempt().await {
        Err(e) if connection_lost(&e) => {
            tracing::warn!(op, error = %e, "database connection lost; retrying once");
            attempt().await.map_err(|e| db_err(op, e))
        }
        other => other.map_err(|e| db_err(op, e)),
    }
}

/// Whether `e` means the connection died under the statement (so a fresh one may succeed): an I/O or
/// protocol failure, or the server ending the session (`57P01` admin shutdown, `57P02` crash shutdown,
/// `57P03` cannot connect now, class `08` connection exceptions).
pub(super) fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}
