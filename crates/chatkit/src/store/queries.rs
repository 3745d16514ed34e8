//! The SQL text of the stores, one prepared statement per store call: [`sqlite`] with `?N`
//! placeholders, [`postgres`] with `$N`. Both position rows by `(created_at, seq)` and resolve an
//! `after` cursor to that pair (an unknown cursor matches nothing: empty page). Item statements
//! check the thread's owner in the same statement.

/// Statements for [`crate::store::SqliteStore`].
///
/// `LIMIT ?N + 0` instead of `LIMIT ?N`: SQLite (3.51, as bundled) specializes a statement on the value bound to
/// a bare `LIMIT` parameter and therefore re-compiles it on every new binding (measured: two full
/// re-prepares per chat turn, ~10% of the server's instructions); an expression is not specialized.
pub(crate) mod sqlite {
    pub(crate) const LOAD_THREAD: &str = "SELECT data FROM threads WHERE id = ?1 AND owner_id = ?2";
    pub(crate) const SAVE_THREAD: &str = "INSERT INTO threads (id, owner_id, created_at, data) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE threads.owner_id = excluded.owner_id";
    pub(crate) const THREADS_ASC: &str = "SELECT id, data FROM threads WHERE owner_id = ?1 \
         ORDER BY created_at ASC, seq ASC LIMIT ?2 + 0";
    pub(crate) const THREADS_DESC: &str = "SELECT id, data FROM threads WHERE owner_id = ?1 \
         ORDER BY created_at DESC, seq DESC LIMIT ?2 + 0";
    pub(crate) const THREADS_ASC_AFTER: &str = "SELECT id, data FROM threads WHERE owner_id = ?1 AND (created_at, seq) > \
         (SELECT c.created_at, c.seq FROM threads c WHERE c.id = ?3 AND c.owner_id = ?1) \
         ORDER BY created_at ASC, seq ASC LIMIT ?2 + 0";
    pub(crate) const THREADS_DESC_AFTER: &str = "SELECT id, data FROM threads WHERE owner_id = ?1 AND (created_at, seq) < \
         (SELECT c.created_at, c.seq FROM threads c WHERE c.id = ?3 AND c.owner_id = ?1) \
         ORDER BY created_at DESC, seq DESC LIMIT ?2 + 0";
    pub(crate) const DELETE_THREAD: &str = "DELETE FROM threads WHERE id = ?1 AND owner_id = ?2";

    pub(crate) const ITEMS_ASC: &str = "SELECT id, data FROM items WHERE thread_id = ?1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2) \
         ORDER BY created_at ASC, seq ASC LIMIT ?3 + 0";
    pub(crate) const ITEMS_DESC: &str = "SELECT id, data FROM items WHERE thread_id = ?1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2) \
         ORDER BY created_at DESC, seq DESC LIMIT ?3 + 0";
    pub(crate) const ITEMS_ASC_AFTER: &str = "SELECT id, data FROM items WHERE thread_id = ?1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2) AND (created_at, seq) > \
         (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = ?1 AND c.id = ?4) \
         ORDER BY created_at ASC, seq ASC LIMIT ?3 + 0";
    pub(crate) const ITEMS_DESC_AFTER: &str = "SELECT id, data FROM items WHERE thread_id = ?1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2) AND (created_at, seq) < \
         (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = ?1 AND c.id = ?4) \
         ORDER BY created_at DESC, seq DESC LIMIT ?3 + 0";
    pub(crate) const UPSERT_ITEM: &str = "INSERT INTO items (thread_id, id, created_at, type, data) \
         SELECT ?1, ?3, ?4, ?5, ?6 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2 \
         ON CONFLICT (thread_id, id) DO UPDATE SET type = excluded.type, data = excluded.data";
    pub(crate) const LOAD_ITEM: &str = "SELECT i.data FROM items i JOIN threads t ON t.id = i.thread_id \
         WHERE i.thread_id = ?1 AND t.owner_id = ?2 AND i.id = ?3";
    pub(crate) const DELETE_ITEM: &str = "DELETE FROM items WHERE thread_id = ?1 AND id = ?3 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2)";
    pub(crate) const DELETE_ITEMS_AFTER: &str = "DELETE FROM items WHERE thread_id = ?1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = ?1 AND t.owner_id = ?2) AND (created_at, seq) > \
         (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = ?1 AND c.id = ?3)";

    pub(crate) const SAVE_ATTACHMENT: &str = "INSERT INTO attachments (id, owner_id, data) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE attachments.owner_id = excluded.owner_id";
    pub(crate) const LOAD_ATTACHMENT: &str = "SELECT data FROM attachments WHERE id = ?1 AND owner_id = ?2";
    pub(crate) const DELETE_ATTACHMENT: &str = "DELETE FROM attachments WHERE id = ?1 AND owner_id = ?2";
    pub(crate) const DELETE_ATTACHMENT_DATA: &str = "DELETE FROM attachment_data WHERE id = ?1 AND owner_id = ?2";
    pub(crate) const SAVE_ATTACHMENT_DATA: &str = "INSERT INTO attachment_data (id, owner_id, bytes) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes \
         WHERE attachment_data.owner_id = excluded.owner_id";
    pub(crate) const LOAD_ATTACHMENT_DATA: &str = "SELECT bytes FROM attachment_data WHERE id = ?1 AND owner_id = ?2";

    pub(crate) const KV_GET: &str = "SELECT value, version FROM kv WHERE namespace = ?1 AND key = ?2";
    pub(crate) const KV_INSERT: &str = "INSERT INTO kv (namespace, key, version, value) VALUES (?1, ?2, 1, ?3) \
         ON CONFLICT (namespace, key) DO NOTHING";
    pub(crate) const KV_UPDATE: &str = "UPDATE kv SET value = ?3, version = version + 1 \
         WHERE namespace = ?1 AND key = ?2 AND version = ?4";
    pub(crate) const KV_DELETE: &str = "DELETE FROM kv WHERE namespace = ?1 AND key = ?2";
}

/// Statements for [`crate::store::PostgresStore`].
pub(crate) mod postgres {
    pub(crate) const LOAD_THREAD: &str = "SELECT data FROM threads WHERE id = $1 AND owner_id = $2";
    pub(crate) const LOAD_THREAD_FOR_UPDATE: &str =
        "SELECT data FROM threads WHERE id = $1 AND owner_id = $2 FOR UPDATE";
    pub(crate) const SAVE_THREAD: &str = "INSERT INTO threads (id, owner_id, created_at, data) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE threads.owner_id = excluded.owner_id";
    pub(crate) const THREADS_ASC: &str = "SELECT id, data FROM threads WHERE owner_id = $1 \
         ORDER BY created_at ASC, seq ASC LIMIT $2";
    pub(crate) const THREADS_DESC: &str = "SELECT id, data FROM threads WHERE owner_id = $1 \
         ORDER BY created_at DESC, seq DESC LIMIT $2";
    pub(crate) const THREADS_ASC_AFTER: &str = "SELECT id, data FROM threads WHERE owner_id = $1 AND (created_at, seq) > \
         (SELECT c.created_at, c.seq FROM threads c WHERE c.id = $3 AND c.owner_id = $1) \
         ORDER BY created_at ASC, seq ASC LIMIT $2";
    pub(crate) const THREADS_DESC_AFTER: &str = "SELECT id, data FROM threads WHERE owner_id = $1 AND (created_at, seq) < \
         (SELECT c.created_at, c.seq FROM threads c WHERE c.id = $3 AND c.owner_id = $1) \
         ORDER BY created_at DESC, seq DESC LIMIT $2";
    pub(crate) const DELETE_THREAD: &str = "DELETE FROM threads WHERE id = $1 AND owner_id = $2";

    pub(crate) const ITEMS_ASC: &str = "SELECT id, data FROM items WHERE thread_id = $1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) \
         ORDER BY created_at ASC, seq ASC LIMIT $3";
    pub(crate) const ITEMS_DESC: &str = "SELECT id, data FROM items WHERE thread_id = $1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) \
         ORDER BY created_at DESC, seq DESC LIMIT $3";
    pub(crate) const ITEMS_ASC_AFTER: &str = "SELECT id, data FROM items WHERE thread_id = $1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) AND (created_at, seq) > \
         (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = $1 AND c.id = $4) \
         ORDER BY created_at ASC, seq ASC LIMIT $3";
    pub(crate) const ITEMS_DESC_AFTER: &str = "SELECT id, data FROM items WHERE thread_id = $1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) AND (created_at, seq) < \
         (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = $1 AND c.id = $4) \
         ORDER BY created_at DESC, seq DESC LIMIT $3";
    pub(crate) const UPSERT_ITEM: &str = "INSERT INTO items (thread_id, id, created_at, type, data) \
         SELECT $1, $3, $4, $5, $6 FROM threads t WHERE t.id = $1 AND t.owner_id = $2 \
         ON CONFLICT (thread_id, id) DO UPDATE SET type = excluded.type, data = excluded.data";
    pub(crate) const LOAD_ITEM: &str = "SELECT i.data FROM items i JOIN threads t ON t.id = i.thread_id \
         WHERE i.thread_id = $1 AND t.owner_id = $2 AND i.id = $3";
    pub(crate) const DELETE_ITEM: &str = "DELETE FROM items WHERE thread_id = $1 AND id = $3 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2)";
    pub(crate) const DELETE_ITEMS_AFTER: &str = "DELETE FROM items WHERE thread_id = $1 \
         AND EXISTS (SELECT 1 FROM threads t WHERE t.id = $1 AND t.owner_id = $2) AND (created_at, seq) > \
         (SELECT c.created_at, c.seq FROM items c WHERE c.thread_id = $1 AND c.id = $3)";

    pub(crate) const SAVE_ATTACHMENT: &str = "INSERT INTO attachments (id, owner_id, data) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE attachments.owner_id = excluded.owner_id";
    pub(crate) const LOAD_ATTACHMENT: &str = "SELECT data FROM attachments WHERE id = $1 AND owner_id = $2";
    pub(crate) const DELETE_ATTACHMENT: &str = "WITH d AS (DELETE FROM attachment_data WHERE id = $1 AND owner_id = $2) \
         DELETE FROM attachments WHERE id = $1 AND owner_id = $2";
    pub(crate) const SAVE_ATTACHMENT_DATA: &str = "INSERT INTO attachment_data (id, owner_id, bytes) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes \
         WHERE attachment_data.owner_id = excluded.owner_id";
    pub(crate) const LOAD_ATTACHMENT_DATA: &str = "SELECT bytes FROM attachment_data WHERE id = $1 AND owner_id = $2";

    pub(crate) const KV_GET: &str = "SELECT value, version FROM kv WHERE namespace = $1 AND key = $2";
    pub(crate) const KV_INSERT: &str = "INSERT INTO kv (namespace, key, version, value) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (namespace, key) DO NOTHING";
    pub(crate) const KV_UPDATE: &str = "UPDATE kv SET value = $3, version = version + 1 \
         WHERE namespace = $1 AND key = $2 AND version = $4";
    pub(crate) const KV_DELETE: &str = "DELETE FROM kv WHERE namespace = $1 AND key = $2";
}
