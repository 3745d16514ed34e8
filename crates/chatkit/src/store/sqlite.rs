//! [`SqliteStore`]: the default persistent [`Store`] (one process owns the database file).
//!
//! WAL journal with `synchronous=NORMAL` (a committed write survives a process crash), foreign
//! keys on, a busy timeout, and embedded migrations run at open. Writes go through a single
//! writer connection so they never race into `SQLITE_BUSY`; reads use a small pool of their own
//! connections (WAL lets them run beside the writer). Every call is one prepared statement
//! (cached per connection by sqlx). Rows are positioned by `(created_at, seq)` where `seq` is the
//! rowid (insertion order); upserts keep it. `lock_thread` is an in-process per-thread mutex.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

use super::locks::LocalLocks;
use super::open::StoreOptions;
use super::queries::sqlite::*;
use super::sql::{SQLITE_MIGRATIONS, db_err, decode, encode, fetch_limit, page_from_rows};
use super::{RequestContext, Store, StoreError, StoreResult, ThreadLock, Versioned};
use crate::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file (its parent folder is created if missing).
    File(PathBuf),
    /// A private in-memory database (tests); lost when the store is dropped.
    Memory,
}

impl SqliteLocation {
    /// Parses `sqlite://relative/path.db`, `sqlite:///abs/path.db`, `sqlite:path.db`, `sqlite::memory:`
    /// (a query string such as `?mode=rwc` is ignored). `None` if the scheme is not `sqlite:`.
    pub fn from_url(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        if path == ":memory:" || path.is_empty() && rest.starts_with(":memory:") {
            return Some(SqliteLocation::Memory);
        }
        Some(SqliteLocation::File(PathBuf::from(path)))
    }
}

/// A [`Store`] on a SQLite database file.
#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    locks: LocalLocks,
    label: String,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `location` and runs pending migrations.
    pub async fn open(location: &SqliteLocation, options: &StoreOptions) -> StoreResult<Self> {
        match location {
            SqliteLocation::Memory => Self::open_memory(options).await,
            SqliteLocation::File(path) => Self::open_file(path, options).await,
        }
    }

    async fn open_file(path: &Path, options: &StoreOptions) -> StoreResult<Self> {
        let shown = path.display().to_string();
        if path.as_os_str().is_empty() {
            return Err(StoreError::Database("SQLite database path is empty".into()));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create folder {} for the SQLite database: {e}", parent.display()))
            })?;
        }
        let connect = base_options(options).filename(path).create_if_missing(true);
        let open_err = |e: sqlx::Error| StoreError::Database(format!("cannot open SQLite database {shown}: {e}"));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(options.connect_timeout.max(options.busy_timeout))
            .connect_with(connect.clone())
            .await
            .map_err(open_err)?;
        migrate(&writer).await.map_err(|e| prefix(&format!("SQLite database {shown}"), e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 16))
            .acquire_timeout(options.connect_timeout.max(options.busy_timeout))
            .connect_with(connect.create_if_missing(false))
            .await
            .map_err(open_err)?;
        let label = format!("sqlite://{shown}");
        tracing::debug!(database = %label, "SQLite store opened");
        Ok(SqliteStore { writer, reader, locks: LocalLocks::new(), label })
    }

    async fn open_memory(options: &StoreOptions) -> StoreResult<Self> {
        // Every in-memory connection is its own database: use exactly one, kept forever.
        let connect = base_options(options).in_memory(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.connect_timeout.max(options.busy_timeout))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open in-memory SQLite database: {e}")))?;
        migrate(&pool).await?;
        Ok(SqliteStore {
            writer: pool.clone(),
            reader: pool,
            locks: LocalLocks::new(),
            label: "sqlite::memory:".into(),
        })
    }

    /// Closes the connections (waits for running statements). The store is unusable afterwards.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn upsert_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        let data = encode("item", item)?;
        let done = sqlx::query(UPSERT_ITEM)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .bind(&item.id)
            .bind(item.created_at.micros())
            .bind(item.type_name())
            .bind(data)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("save item", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        Ok(())
    }
}

fn base_options(options: &StoreOptions) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true)
        .statement_cache_capacity(64)
}

fn prefix(what: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Database(m) => StoreError::Database(format!("{what}: {m}")),
        other => other,
    }
}

/// Applies the embedded migrations not yet recorded in `chatkit_migrations`, in one
/// `BEGIN IMMEDIATE` transaction (so two processes opening the same file cannot both apply them).
async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(|e| db_err("migrations", e))?;
    run_migrations(&mut conn).await
}

async fn run_migrations(conn: &mut SqliteConnection) -> StoreResult<()> {
    let err = |e| db_err("migrations", e);
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS chatkit_migrations \
         (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(err)?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
    let current: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM chatkit_migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    for m in SQLITE_MIGRATIONS.iter().filter(|m| m.version > current) {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_err(&format!("migration {} ({})", m.version, m.name), e))?;
        sqlx::query("INSERT INTO chatkit_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)")
            .bind(m.version)
            .bind(m.name)
            .bind(crate::types::Timestamp::now().micros())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tracing::info!(version = m.version, name = m.name, "applied SQLite migration");
    }
    tx.commit().await.map_err(err)
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata> {
        let row: Option<String> = sqlx::query_scalar(LOAD_THREAD)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| db_err("load thread", e))?;
        match row {
            Some(data) => decode("thread", &data),
            None => Err(StoreError::ThreadNotFound(thread_id.to_string())),
        }
    }

    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()> {
        let data = encode("thread", thread)?;
        let done = sqlx::query(SAVE_THREAD)
            .bind(&thread.id)
            .bind(&ctx.owner_id)
            .bind(thread.created_at.micros())
            .bind(data)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("save thread", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ThreadNotFound(thread.id.clone()));
        }
        Ok(())
    }

    async fn load_threads(
        &self,
        ctx: &RequestContext,
        limit: usize,
        after: Option<&str>,
        order: Order,
    ) -> StoreResult<Page<ThreadMetadata>> {
        let sql = match (order, after.is_some()) {
            (Order::Asc, false) => THREADS_ASC,
            (Order::Desc, false) => THREADS_DESC,
            (Order::Asc, true) => THREADS_ASC_AFTER,
            (Order::Desc, true) => THREADS_DESC_AFTER,
        };
        let mut q = sqlx::query_as::<_, (String, String)>(sql).bind(&ctx.owner_id).bind(fetch_limit(limit));
        if let Some(cursor) = after {
            q = q.bind(cursor);
        }
        let rows = q.fetch_all(&self.reader).await.map_err(|e| db_err("list threads", e))?;
        let rows =
            rows.into_iter().map(|(id, data)| Ok((id, decode("thread", &data)?))).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_from_rows(rows, limit))
    }

    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()> {
        let done = sqlx::query(DELETE_THREAD)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("delete thread", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        Ok(())
    }

    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        let sql = match (order, after.is_some()) {
            (Order::Asc, false) => ITEMS_ASC,
            (Order::Desc, false) => ITEMS_DESC,
            (Order::Asc, true) => ITEMS_ASC_AFTER,
            (Order::Desc, true) => ITEMS_DESC_AFTER,
        };
        let mut q =
            sqlx::query_as::<_, (String, String)>(sql).bind(thread_id).bind(&ctx.owner_id).bind(fetch_limit(limit));
        if let Some(cursor) = after {
            q = q.bind(cursor);
        }
        let rows = q.fetch_all(&self.reader).await.map_err(|e| db_err("list items", e))?;
        let rows =
            rows.into_iter().map(|(id, data)| Ok((id, decode("item", &data)?))).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_from_rows(rows, limit))
    }

    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item).await
    }

    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item).await
    }

    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem> {
        let row: Option<String> = sqlx::query_scalar(LOAD_ITEM)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .bind(item_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| db_err("load item", e))?;
        match row {
            Some(data) => decode("item", &data),
            None => Err(StoreError::ItemNotFound { thread_id: thread_id.to_string(), item_id: item_id.to_string() }),
        }
    }

    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()> {
        sqlx::query(DELETE_ITEM)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .bind(item_id)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("delete item", e))?;
        Ok(())
    }

    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(DELETE_ITEMS_AFTER)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .bind(item_id)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("delete items", e))?;
        if done.rows_affected() == 0 {
            // Nothing after it, or the item does not exist: tell the two apart.
            self.load_item(ctx, thread_id, item_id).await?;
        }
        Ok(done.rows_affected())
    }

    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()> {
        let data = encode("attachment", attachment)?;
        let done = sqlx::query(SAVE_ATTACHMENT)
            .bind(&attachment.id)
            .bind(&ctx.owner_id)
            .bind(data)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("save attachment", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AttachmentNotFound(attachment.id.clone()));
        }
        Ok(())
    }

    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment> {
        let row: Option<String> = sqlx::query_scalar(LOAD_ATTACHMENT)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| db_err("load attachment", e))?;
        match row {
            Some(data) => decode("attachment", &data),
            None => Err(StoreError::AttachmentNotFound(attachment_id.to_string())),
        }
    }

    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()> {
        let err = |e| db_err("delete attachment", e);
        let mut conn = self.writer.acquire().await.map_err(err)?;
        let mut tx = conn.begin().await.map_err(err)?;
        for sql in [DELETE_ATTACHMENT, DELETE_ATTACHMENT_DATA] {
            sqlx::query(sql).bind(attachment_id).bind(&ctx.owner_id).execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()> {
        let done = sqlx::query(SAVE_ATTACHMENT_DATA)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .bind(data)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("save attachment data", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AttachmentNotFound(attachment_id.to_string()));
        }
        Ok(())
    }

    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar(LOAD_ATTACHMENT_DATA)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| db_err("load attachment data", e))
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>> {
        let row: Option<(String, i64)> = sqlx::query_as(KV_GET)
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| db_err("read state", e))?;
        match row {
            Some((text, version)) => Ok(Some(Versioned { value: decode("state value", &text)?, version })),
            None => Ok(None),
        }
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool> {
        let text = encode("state value", value)?;
        let q = match expected {
            None => sqlx::query(KV_INSERT).bind(namespace).bind(key).bind(text),
            Some(v) => sqlx::query(KV_UPDATE).bind(namespace).bind(key).bind(text).bind(v),
        };
        let done = q.execute(&self.writer).await.map_err(|e| db_err("write state", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        sqlx::query(KV_DELETE)
            .bind(namespace)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(|e| db_err("delete state", e))?;
        Ok(())
    }

    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock> {
        Ok(ThreadLock::new(self.locks.lock(thread_id, wait).await?))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(|e| db_err("ping", e))?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

impl FromStr for SqliteLocation {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SqliteLocation::from_url(s).ok_or_else(|| StoreError::Database(format!("not a sqlite: URL: {s}")))
    }
}
