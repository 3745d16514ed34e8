//! The SQL text of [`super::PostgresStore`], one prepared statement per store call, and the bound
//! queries of its thread and item writes (built in one place because several calls run them).
//!
//! Rows are positioned by `(created_at, seq)`; an `after` cursor is resolved to that pair inside the
//! statement: the live row's, else the tombstone a deleted row left (so paging continues after a
//! deleted cursor), and a cursor that never existed matches nothing (an empty page). Item statements check the
//! thread's owner in the same statement.

use chatkit::store::StoreResult;
use chatkit::types::{ThreadItem, ThreadMetadata};

use crate::rows::{ListStatements, encode};

pub(super) const LOAD_THREAD: &str = "SELECT data FROM threads WHERE id = $1 AND owner_id = $2";
pub(super) const LOAD_THREAD_FOR_UPDATE: &str = "SELECT data FROM threads WHERE id = $1 AND owner_id = $2 FOR UPDATE";
pub(super) const SAVE_THREAD: &str = "INSERT INTO threads (id, owner_id, created_at, data) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE threads.owner_id = excluded.owner_id";
pub(super) const LIST_THREADS: ListStatements = ListStatements {
    asc: "SELECT id, data FROM threads WHERE owner_id = $1 \
     ORDER BY created_at ASC, seq ASC LIMIT $2",
    desc: "SELECT id, data FROM threads WHERE owner_id = $1 \
     ORDER BY created_at DESC, seq DESC LIMIT $2",
    asc_after: "SELECT id, data FROM threads WHERE owner_id = $1 AND (created_at, seq) > \
     (SELECT p.created_at, p.seq FROM \
     (SELECT 0 AS k, c.created_at, c.seq FROM threads c WHERE c.id = $3 AND c.owner_id = $1 UNION ALL \
     SELECT 1, d.created_at, d.seq FROM deleted_threads d WHERE d.id = $3 AND d.owner_id = $1) p ORDER BY p.k LIMIT 1) \
     ORDER BY created_at ASC, seq ASC LIMIT $2",
    desc_after: "SELECT id, data FROM threads WHERE owner_id = $1 AND (created_at, seq) < \
     (SELECT p.created_at, p.seq FROM \
     (SELECT 0 AS k, c.created_at, c.seq FROM threads c WHERE c.id = $3 AND c.owner_id = $1 UNION ALL \
     SELECT 1, d.created_at, d.seq FROM deleted_threads d WHERE d.id = $3 AND d.owner_id = $1) p ORDER BY p.k LIMIT 1) \
     ORDER BY created_at DESC, seq DESC LIMIT $2",
};
/// Deletes a thread and, only if it did, announces it to every replica (`$3` the channel, `$4` the
/// payload; PostgreSQL delivers the notification when the statement commits). Returns how many it deleted.
pub(super) const DELETE_THREAD: &str = "WITH d AS (DELETE FROM threads WHERE id = $1 AND owner_id = $2 RETURNING id) \
     SELECT COUNT(*) FROM (SELECT pg_notify($3, $4) FROM d) n";
/// Tombstones left at least `$1` microseconds ago (by the database's clock, which stamped them).
pub(super) const PRUNE_THREAD_TOMBSTONES: &str = "DELETE FROM deleted_threads \
     WHERE deleted_at <= (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT - $1";
pub(super) const PRUNE_ITEM_TOMBSTONES: &str = "DELETE FROM deleted_items \
     WHERE deleted_at <= (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT - $1";

pub(super) const LIST_ITEMS: ListStatements = ListStatements {
    asc: "SELECT id, data FROM items WHERE thread_id = $1 \
     AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) \
     ORDER BY created_at ASC, seq ASC LIMIT $3",
    desc: "SELECT id, data FROM items WHERE thread_id = $1 \
     AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) \
     ORDER BY created_at DESC, seq DESC LIMIT $3",
    asc_after: "SELECT id, data FROM items WHERE thread_id = $1 \
     AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) AND (created_at, seq) > \
     (SELECT p.created_at, p.seq FROM \
     (SELECT 0 AS k, c.created_at, c.seq FROM items c WHERE c.thread_id = $1 AND c.id = $4 UNION ALL \
     SELECT 1, d.created_at, d.seq FROM deleted_items d WHERE d.thread_id = $1 AND d.id = $4) p ORDER BY p.k LIMIT 1) \
     ORDER BY created_at ASC, seq ASC LIMIT $3",
    desc_after: "SELECT id, data FROM items WHERE thread_id = $1 \
     AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) AND (created_at, seq) < \
     (SELECT p.created_at, p.seq FROM \
     (SELECT 0 AS k, c.created_at, c.seq FROM items c WHERE c.thread_id = $1 AND c.id = $4 UNION ALL \
     SELECT 1, d.created_at, d.seq FROM deleted_items d WHERE d.thread_id = $1 AND d.id = $4) p ORDER BY p.k LIMIT 1) \
     ORDER BY created_at DESC, seq DESC LIMIT $3",
};
pub(super) const UPSERT_ITEM: &str = "INSERT INTO items (thread_id, id, created_at, type, data) \
     SELECT $1, $3, $4, $5, $6 FROM threads t WHERE t.id = $1 AND t.owner_id = $2 \
     ON CONFLICT (thread_id, id) DO UPDATE SET type = excluded.type, data = excluded.data";
pub(super) const LOAD_ITEM: &str = "SELECT i.data FROM items i JOIN threads t ON t.id = i.thread_id \
     WHERE i.thread_id = $1 AND t.owner_id = $2 AND i.id = $3";
pub(super) const DELETE_ITEM: &str = "DELETE FROM items WHERE thread_id = $1 AND id = $3 \
     AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2)";
pub(super) const DELETE_ITEMS_AFTER: &str = "DELETE FROM items WHERE thread_id = $1 \
     AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) AND (created_at, seq) > \
     (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = $1 AND c.id = $3)";

pub(super) const SAVE_ATTACHMENT: &str = "INSERT INTO attachments (id, owner_id, data) VALUES ($1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE attachments.owner_id = excluded.owner_id";
pub(super) const LOAD_ATTACHMENT: &str = "SELECT data FROM attachments WHERE id = $1 AND owner_id = $2";
pub(super) const DELETE_ATTACHMENT: &str = "WITH d AS (DELETE FROM attachment_data WHERE id = $1 AND owner_id = $2) \
     DELETE FROM attachments WHERE id = $1 AND owner_id = $2";
pub(super) const CREATE_ATTACHMENT: &str = "INSERT INTO attachments (id, owner_id, data, declared_size) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET data = excluded.data, declared_size = excluded.declared_size \
     WHERE attachments.owner_id = excluded.owner_id";
/// The declared size of an attachment and whether its bytes are stored already.
pub(super) const ATTACHMENT_UPLOAD_STATE: &str = "SELECT a.declared_size, \
     EXISTS (SELECT 1 FROM attachment_data d WHERE d.id = a.id) FROM attachments a WHERE a.id = $1 AND a.owner_id = $2";
/// Bytes are written once: a second upload changes nothing (0 rows).
pub(super) const SAVE_ATTACHMENT_DATA: &str = "INSERT INTO attachment_data (id, owner_id, bytes) VALUES ($1, $2, $3) \
     ON CONFLICT (id) DO NOTHING";
pub(super) const LOAD_ATTACHMENT_DATA: &str = "SELECT bytes FROM attachment_data WHERE id = $1 AND owner_id = $2";
pub(super) const ATTACHMENT_BYTES: &str = "SELECT COALESCE(SUM(octet_length(bytes)), 0)::BIGINT FROM attachment_data \
     WHERE owner_id = $1 AND id IS DISTINCT FROM $2";

pub(super) const RECORD_USAGE: &str = "INSERT INTO turn_usage (owner_id, thread_id, provider, model, model_calls, \
     input_tokens, output_tokens, cached_tokens, reasoning_tokens, created_at, turns) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// `$2` NULL sums every thread of the owner.
pub(super) const USAGE_BY_MODEL: &str = "SELECT provider, model, SUM(turns)::BIGINT, SUM(model_calls)::BIGINT, \
     SUM(input_tokens)::BIGINT, SUM(output_tokens)::BIGINT, SUM(cached_tokens)::BIGINT, SUM(reasoning_tokens)::BIGINT \
     FROM turn_usage WHERE owner_id = $1 AND ($2::TEXT IS NULL OR thread_id = $2) \
     GROUP BY provider, model ORDER BY provider, model";

pub(super) const KV_GET: &str = "SELECT value, version FROM kv WHERE namespace = $1 AND key = $2";
pub(super) const KV_INSERT: &str = "INSERT INTO kv (namespace, key, version, value) VALUES ($1, $2, 1, $3) \
     ON CONFLICT (namespace, key) DO NOTHING";
pub(super) const KV_UPDATE: &str = "UPDATE kv SET value = $3, version = version + 1 \
     WHERE namespace = $1 AND key = $2 AND version = $4";
pub(super) const KV_DELETE: &str = "DELETE FROM kv WHERE namespace = $1 AND key = $2";
/// The health probe: rewrites one row, creating it the first time.
pub(super) const KV_PROBE: &str = "INSERT INTO kv (namespace, key, version, value) VALUES ($1, $2, 1, $3) \
     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = kv.version + 1";

/// A query with its arguments bound (encoded when bound: it borrows nothing).
pub(super) type BoundQuery = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `SAVE_THREAD` for `thread`, saved under `id` (its own id, or the one it was loaded by).
pub(super) fn save_thread_query(id: &str, owner: &str, thread: &ThreadMetadata) -> StoreResult<BoundQuery> {
    let data = encode("thread", thread)?;
    Ok(sqlx::query(SAVE_THREAD).bind(id).bind(owner).bind(thread.created_at.micros()).bind(data))
}

/// `UPSERT_ITEM` for `item` in thread `thread_id`.
pub(super) fn upsert_item_query(owner: &str, thread_id: &str, item: &ThreadItem) -> StoreResult<BoundQuery> {
    let data = encode("item", item)?;
    Ok(sqlx::query(UPSERT_ITEM)
        .bind(thread_id)
        .bind(owner)
        .bind(&item.id)
        .bind(item.created_at.micros())
        .bind(item.type_name())
        .bind(data))
}
