//! `update_thread` of the PostgreSQL store: the stored thread is read `FOR UPDATE`, changed and saved in
//! one transaction, so a concurrent rename is never lost; a response holding the thread's lock checks its
//! fence token in the same transaction first (see `fence`), so a response that lost the lock cannot
//! overwrite the thread (its title or status) any more than its items.

use chatkit::store::{RequestContext, StoreError, StoreResult, ThreadChange};
use chatkit::types::ThreadMetadata;
use sqlx::postgres::PgPool;

use super::statements::{LOAD_THREAD_FOR_UPDATE, save_thread_query};
use super::{db_err, fence};
use crate::rows::decode;

/// Applies `change` to the stored thread; `token` is the caller's fence token when it holds the lock.
/// An attempt whose connection was lost before `change` ran is made once more on a fresh connection
/// (the change may run only once).
pub(super) async fn update_thread(
    pool: &PgPool,
    ctx: &RequestContext,
    thread_id: &str,
    token: Option<i64>,
    change: ThreadChange,
) -> StoreResult<(ThreadMetadata, bool)> {
    let mut change = Some(change);
    let mut retried = false;
    loop {
        match attempt(pool, ctx, thread_id, token, &mut change).await {
            Ok(answer) => return answer,
            Err(e) if !retried && change.is_some() && fence::connection_lost(&e) => {
                tracing::warn!(error = %e, "database connection lost while updating a thread; retrying once");
                retried = true;
            }
            Err(e) => return Err(db_err("update thread", e)),
        }
    }
}

/// One attempt: `Err` only for a database failure; the store's own answers (missing thread, refused by
/// the fence, undecodable row) are inside.
async fn attempt(
    pool: &PgPool,
    ctx: &RequestContext,
    thread_id: &str,
    token: Option<i64>,
    change: &mut Option<ThreadChange>,
) -> sqlx::Result<StoreResult<(ThreadMetadata, bool)>> {
    let mut tx = pool.begin().await?;
    if let Some(token) = token
        && let Err(refused) = fence::check(&mut tx, "update thread", thread_id, token).await?
    {
        return Ok(Err(refused));
    }
    let row: Option<String> =
        sqlx::query_scalar(LOAD_THREAD_FOR_UPDATE).bind(thread_id).bind(&ctx.owner_id).fetch_optional(&mut *tx).await?;
    let Some(data) = row else {
        return Ok(Err(StoreError::ThreadNotFound(thread_id.to_string())));
    };
    let stored: ThreadMetadata = match decode("thread", &data) {
        Ok(thread) => thread,
        Err(e) => return Ok(Err(e)),
    };
    let Some(change) = change.take() else {
        return Ok(Err(StoreError::Database("update thread: the change already ran".into())));
    };
    let mut thread = stored.clone();
    if !change(&mut thread) {
        return Ok(Ok((stored, false)));
    }
    let save = match save_thread_query(thread_id, &ctx.owner_id, &thread) {
        Ok(query) => query,
        Err(e) => return Ok(Err(e)),
    };
    save.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok((thread, true)))
}
