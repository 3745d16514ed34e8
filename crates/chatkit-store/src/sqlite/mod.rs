//! [`SqliteStore`]: the default persistent [`Store`] (one process owns the database file).
//!
//! WAL journal with `synchronous=NORMAL` (a committed write survives a process crash), foreign
//! keys on, a busy timeout, and embedded migrations run at open. All writes go through one writer
//! thread that commits whatever is queued in a single transaction (group commit) and acknowledges
//! each write only after that commit; reads run on that thread too, except attachment bytes, which
//! use reader connections in the blocking pool (both in [`conn`]). Every call is one cached prepared
//! statement ([`statements`]). Rows are positioned by `(created_at, seq)` where `seq` is the rowid
//! (insertion order); upserts keep it. `lock_thread` is an in-process per-thread mutex.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatkit::store::locks::LocalLocks;
use chatkit::store::{
    ModelUsage, RequestContext, Store, StoreError, StoreResult, ThreadChange, ThreadLock, TurnUsage, UsageTotals,
    Versioned, check_upload_size,
};
use chatkit::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::Value;

use self::conn::{ConnSettings, Readers, Writer, atomically};
use self::statements::*;
use crate::open::StoreOptions;
use crate::rows::{decode, decode_found, decode_rows, encode, fetch_limit, page_from_rows, versioned};
use crate::write_health::{PROBE_KEY, PROBE_NAMESPACE};

mod checkpoint;
mod conn;
mod migrate;
mod statements;

/// What `save_attachment_data` found and did, decided inside one writer job.
enum Upload {
    Stored,
    NoAttachment,
    AlreadyUploaded,
    Refused(StoreError),
}

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
pub struct SqliteStore {
    writer: Writer,
    /// Reader connections for large reads (`None` for an in-memory database: one connection only).
    readers: Option<Arc<Readers>>,
    locks: LocalLocks,
    label: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("database", &self.label).finish_non_exhaustive()
    }
}

/// `(id, JSON)` rows of a list query.
type Rows = Vec<(String, String)>;

impl SqliteStore {
    /// Opens (creating if needed) the database at `location` and runs pending migrations.
    pub async fn open(location: &SqliteLocation, options: &StoreOptions) -> StoreResult<Self> {
        let settings = ConnSettings { busy_timeout: options.busy_timeout };
        match location {
            SqliteLocation::Memory => {
                let writer = Writer::start(None, settings)
                    .await
                    .map_err(|e| prefix("cannot open in-memory SQLite database", e))?;
                Ok(SqliteStore { writer, readers: None, locks: LocalLocks::new(), label: "sqlite::memory:".into() })
            }
            SqliteLocation::File(path) => Self::open_file(path, options, settings).await,
        }
    }

    async fn open_file(path: &Path, options: &StoreOptions, settings: ConnSettings) -> StoreResult<Self> {
        let shown = path.display().to_string();
        if path.as_os_str().is_empty() {
            return Err(StoreError::Database("SQLite database path is empty".into()));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create folder {} for the SQLite database: {e}", parent.display()))
            })?;
        }
        let writer = Writer::start(Some(path.to_path_buf()), settings)
            .await
            .map_err(|e| prefix(&format!("cannot open SQLite database {shown}"), e))?;
        let readers = Readers::new(path.to_path_buf(), settings, options.max_connections.clamp(1, 16) as usize);
        let label = format!("sqlite://{shown}");
        let store = SqliteStore { writer, readers: Some(Arc::new(readers)), locks: LocalLocks::new(), label };
        // A database that opens but cannot be written (full disk) is refused at start, like one that
        // cannot be opened: the operator learns it at once instead of from failing chats.
        store.probe_write().await.map_err(|e| prefix(&format!("cannot open SQLite database {shown}"), e))?;
        tracing::debug!(database = %store.label, "SQLite store opened");
        Ok(store)
    }

    /// Rewrites the health row: the cheapest write that still goes through the journal and the file.
    async fn probe_write(&self) -> StoreResult<()> {
        let now = chatkit::types::Timestamp::now().micros().to_string();
        self.writer
            .run("health probe", move |c| {
                c.prepare_cached(KV_PROBE)?.execute(params![PROBE_NAMESPACE, PROBE_KEY, now]).map(|_| ())
            })
            .await
    }

    /// Commits the queued writes, moves the write-ahead log into the database file (so the file alone
    /// is the whole database, e.g. for a backup copy) and closes the connections. The store is unusable
    /// afterwards.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        // The writer thread checkpoints once the queued writes are committed.
        self.writer.close().await;
    }

    /// Runs a read on the writer thread: its connection's page cache is always current (a second
    /// connection would have to drop its cache after every commit and re-read the pages), and the
    /// hand-over costs less than those reads. Results are delivered after the batch commits.
    async fn read<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.writer.read(op, work).await
    }

    /// A read whose result may be megabytes (attachment bytes): on a reader connection in the
    /// blocking pool, so it never holds up the writer thread.
    async fn read_large<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        match &self.readers {
            Some(readers) => {
                let readers = readers.clone();
                tokio::task::spawn_blocking(move || readers.with(op, work))
                    .await
                    .map_err(|e| StoreError::Database(format!("{op}: {e}")))?
            }
            None => self.writer.read(op, work).await,
        }
    }

    async fn upsert_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        let row = ItemRow::new(&ctx.owner_id, thread_id, item)?;
        let changed = self.writer.run("save item", move |c| row.upsert(c)).await?;
        if changed == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        Ok(())
    }

    async fn list(&self, op: &'static str, sql: &'static str, args: Vec<rusqlite::types::Value>) -> StoreResult<Rows> {
        self.read(op, move |c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push((row.get(0)?, row.get(1)?));
            }
            Ok(out)
        })
        .await
    }
}

/// Names what failed in front of an opening error (the start-up line shows it).
fn prefix(what: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Database(m) => StoreError::Database(format!("{what}: {m}")),
        unwritable @ StoreError::Unwritable(_) => StoreError::Database(format!("{what}: {unwritable}")),
        other => other,
    }
}

fn text(s: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(s.to_string())
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata> {
        let (tid, owner) = (thread_id.to_string(), ctx.owner_id.clone());
        let row: Option<String> = self
            .read("load thread", move |c| {
                c.prepare_cached(LOAD_THREAD)?.query_row(params![tid, owner], |r| r.get(0)).optional()
            })
            .await?;
        decode_found("thread", row, || StoreError::ThreadNotFound(thread_id.to_string()))
    }

    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()> {
        let row = ThreadRow::new(&ctx.owner_id, thread)?;
        let changed = self.writer.run("save thread", move |c| row.save(c)).await?;
        if changed == 0 {
            return Err(StoreError::ThreadNotFound(thread.id.clone()));
        }
        Ok(())
    }

    async fn create_thread_with_item(
        &self,
        ctx: &RequestContext,
        thread: &ThreadMetadata,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        let (thread_row, item_row) =
            (ThreadRow::new(&ctx.owner_id, thread)?, ItemRow::new(&ctx.owner_id, &thread.id, item)?);
        // One writer job: both statements run under the job's savepoint, so both or neither are kept.
        let (saved, added) =
            self.writer.run("create thread", move |c| Ok((thread_row.save(c)?, item_row.upsert(c)?))).await?;
        if saved == 0 || added == 0 {
            return Err(StoreError::ThreadNotFound(thread.id.clone()));
        }
        Ok(())
    }

    async fn update_thread(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        change: ThreadChange,
    ) -> StoreResult<(ThreadMetadata, bool)> {
        let (tid, owner) = (thread_id.to_string(), ctx.owner_id.clone());
        // Read, change and write in one writer job: nothing else runs on the database in between.
        self.writer
            .run("update thread", move |c| {
                let Some(data) = c
                    .prepare_cached(LOAD_THREAD)?
                    .query_row(params![tid, owner], |r| r.get::<_, String>(0))
                    .optional()?
                else {
                    return Ok(Err(StoreError::ThreadNotFound(tid)));
                };
                let stored: ThreadMetadata = match decode("thread", &data) {
                    Ok(thread) => thread,
                    Err(e) => return Ok(Err(e)),
                };
                let mut thread = stored.clone();
                if !change(&mut thread) {
                    return Ok(Ok((stored, false)));
                }
                match ThreadRow::new(&owner, &thread) {
                    // Saved under the id it was loaded by, whatever `change` did to the metadata.
                    Ok(row) => row.under_id(tid).save(c)?,
                    Err(e) => return Ok(Err(e)),
                };
                Ok(Ok((thread, true)))
            })
            .await?
    }

    async fn load_threads(
        &self,
        ctx: &RequestContext,
        limit: usize,
        after: Option<&str>,
        order: Order,
    ) -> StoreResult<Page<ThreadMetadata>> {
        let sql = LIST_THREADS.pick(order, after.is_some());
        let mut args = vec![text(&ctx.owner_id), rusqlite::types::Value::Integer(fetch_limit(limit))];
        args.extend(after.map(text));
        let rows = self.list("list threads", sql, args).await?;
        Ok(page_from_rows(decode_rows("thread", rows)?, limit))
    }

    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()> {
        let (tid, owner) = (thread_id.to_string(), ctx.owner_id.clone());
        let changed = self
            .writer
            .run("delete thread", move |c| c.prepare_cached(DELETE_THREAD)?.execute(params![tid, owner]))
            .await?;
        if changed == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        Ok(())
    }

    async fn prune_tombstones(&self, retention: Duration) -> StoreResult<u64> {
        let retention = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        let pruned = self
            .writer
            .run("prune tombstones", move |c| {
                let threads = c.prepare_cached(PRUNE_THREAD_TOMBSTONES)?.execute(params![retention])?;
                Ok(threads + c.prepare_cached(PRUNE_ITEM_TOMBSTONES)?.execute(params![retention])?)
            })
            .await?;
        Ok(pruned as u64)
    }

    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        let sql = LIST_ITEMS.pick(order, after.is_some());
        let mut args = vec![text(thread_id), text(&ctx.owner_id), rusqlite::types::Value::Integer(fetch_limit(limit))];
        args.extend(after.map(text));
        let rows = self.list("list items", sql, args).await?;
        Ok(page_from_rows(decode_rows("item", rows)?, limit))
    }

    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item).await
    }

    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item).await
    }

    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem> {
        let (tid, owner, id) = (thread_id.to_string(), ctx.owner_id.clone(), item_id.to_string());
        let row: Option<String> = self
            .read("load item", move |c| {
                c.prepare_cached(LOAD_ITEM)?.query_row(params![tid, owner, id], |r| r.get(0)).optional()
            })
            .await?;
        decode_found("item", row, || StoreError::item_not_found(thread_id, item_id))
    }

    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()> {
        let (tid, owner, id) = (thread_id.to_string(), ctx.owner_id.clone(), item_id.to_string());
        self.writer
            .run("delete item", move |c| c.prepare_cached(DELETE_ITEM)?.execute(params![tid, owner, id]))
            .await?;
        Ok(())
    }

    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64> {
        let (tid, owner, id) = (thread_id.to_string(), ctx.owner_id.clone(), item_id.to_string());
        // `None`: nothing was deleted and the item does not exist (told apart in the same transaction).
        let deleted = self
            .writer
            .run("delete items", move |c| {
                let n = c.prepare_cached(DELETE_ITEMS_AFTER)?.execute(params![tid, owner, id])?;
                if n > 0 {
                    return Ok(Some(n as u64));
                }
                let exists =
                    c.prepare_cached(LOAD_ITEM)?.query_row(params![tid, owner, id], |_| Ok(())).optional()?.is_some();
                Ok(exists.then_some(0))
            })
            .await?;
        deleted.ok_or_else(|| StoreError::item_not_found(thread_id, item_id))
    }

    async fn create_attachment(
        &self,
        ctx: &RequestContext,
        attachment: &Attachment,
        declared_size: u64,
    ) -> StoreResult<()> {
        let data = encode("attachment", attachment)?;
        let (id, owner) = (attachment.id.clone(), ctx.owner_id.clone());
        let size = i64::try_from(declared_size).unwrap_or(i64::MAX);
        let changed = self
            .writer
            .run("create attachment", move |c| {
                c.prepare_cached(CREATE_ATTACHMENT)?.execute(params![id, owner, data, size])
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::AttachmentNotFound(attachment.id.clone()));
        }
        Ok(())
    }

    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()> {
        let data = encode("attachment", attachment)?;
        let (id, owner) = (attachment.id.clone(), ctx.owner_id.clone());
        let changed = self
            .writer
            .run("save attachment", move |c| c.prepare_cached(SAVE_ATTACHMENT)?.execute(params![id, owner, data]))
            .await?;
        if changed == 0 {
            return Err(StoreError::AttachmentNotFound(attachment.id.clone()));
        }
        Ok(())
    }

    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment> {
        let (id, owner) = (attachment_id.to_string(), ctx.owner_id.clone());
        let row: Option<String> = self
            .read("load attachment", move |c| {
                c.prepare_cached(LOAD_ATTACHMENT)?.query_row(params![id, owner], |r| r.get(0)).optional()
            })
            .await?;
        decode_found("attachment", row, || StoreError::AttachmentNotFound(attachment_id.to_string()))
    }

    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()> {
        let (id, owner) = (attachment_id.to_string(), ctx.owner_id.clone());
        self.writer
            .run("delete attachment", move |c| {
                atomically(c, || {
                    for sql in [DELETE_ATTACHMENT, DELETE_ATTACHMENT_DATA] {
                        c.prepare_cached(sql)?.execute(params![id, owner])?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()> {
        let (id, owner, bytes) = (attachment_id.to_string(), ctx.owner_id.clone(), data.to_vec());
        let outcome = self
            .writer
            .run("save attachment data", move |c| {
                let state: Option<(Option<i64>, bool)> = c
                    .prepare_cached(ATTACHMENT_UPLOAD_STATE)?
                    .query_row(params![id, owner], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((declared, uploaded)) = state else { return Ok(Upload::NoAttachment) };
                let declared = declared.and_then(|n| u64::try_from(n).ok());
                if uploaded {
                    return Ok(Upload::AlreadyUploaded);
                }
                if let Err(e) = check_upload_size(&id, declared, bytes.len()) {
                    return Ok(Upload::Refused(e));
                }
                let written = c.prepare_cached(SAVE_ATTACHMENT_DATA)?.execute(params![id, owner, bytes])? > 0;
                Ok(if written { Upload::Stored } else { Upload::AlreadyUploaded })
            })
            .await?;
        match outcome {
            Upload::Stored => Ok(()),
            Upload::NoAttachment => Err(StoreError::AttachmentNotFound(attachment_id.to_string())),
            Upload::AlreadyUploaded => Err(StoreError::AlreadyUploaded(attachment_id.to_string())),
            Upload::Refused(e) => Err(e),
        }
    }

    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let (id, owner) = (attachment_id.to_string(), ctx.owner_id.clone());
        self.read_large("load attachment data", move |c| {
            c.prepare_cached(LOAD_ATTACHMENT_DATA)?.query_row(params![id, owner], |r| r.get(0)).optional()
        })
        .await
    }

    async fn attachment_bytes(&self, ctx: &RequestContext, except: Option<&str>) -> StoreResult<u64> {
        let (owner, except) = (ctx.owner_id.clone(), except.map(str::to_string));
        let total: i64 = self
            .read("sum attachment bytes", move |c| {
                c.prepare_cached(ATTACHMENT_BYTES)?.query_row(params![owner, except], |r| r.get(0))
            })
            .await?;
        Ok(total.max(0) as u64)
    }

    async fn record_usage(&self, ctx: &RequestContext, usage: &TurnUsage) -> StoreResult<()> {
        let owner = ctx.owner_id.clone();
        let u = usage.clone();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.writer
            .run("record usage", move |c| {
                c.prepare_cached(RECORD_USAGE)?.execute(params![
                    owner,
                    u.thread_id,
                    u.provider,
                    u.model,
                    count(u.model_calls),
                    count(u.tokens.input_tokens),
                    count(u.tokens.output_tokens),
                    count(u.tokens.cached_tokens),
                    count(u.tokens.reasoning_tokens),
                    u.created_at.micros(),
                    count(u.tokens.turns),
                ])
            })
            .await?;
        Ok(())
    }

    async fn usage_by_model(&self, ctx: &RequestContext, thread_id: Option<&str>) -> StoreResult<Vec<ModelUsage>> {
        let (owner, thread) = (ctx.owner_id.clone(), thread_id.map(str::to_string));
        self.read("sum usage", move |c| {
            let mut statement = c.prepare_cached(USAGE_BY_MODEL)?;
            let rows = statement.query_map(params![owner, thread], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(ModelUsage {
                    provider: r.get(0)?,
                    model: r.get(1)?,
                    totals: UsageTotals {
                        turns: n(2)?,
                        model_calls: n(3)?,
                        input_tokens: n(4)?,
                        output_tokens: n(5)?,
                        cached_tokens: n(6)?,
                        reasoning_tokens: n(7)?,
                    },
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>> {
        let (ns, k) = (namespace.to_string(), key.to_string());
        let row: Option<(String, i64)> = self
            .read("read state", move |c| {
                c.prepare_cached(KV_GET)?.query_row(params![ns, k], |r| Ok((r.get(0)?, r.get(1)?))).optional()
            })
            .await?;
        versioned("state value", row)
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool> {
        let text = encode("state value", value)?;
        let (ns, k) = (namespace.to_string(), key.to_string());
        let changed = self
            .writer
            .run("write state", move |c| match expected {
                None => c.prepare_cached(KV_INSERT)?.execute(params![ns, k, text]),
                Some(v) => c.prepare_cached(KV_UPDATE)?.execute(params![ns, k, text, v]),
            })
            .await?;
        Ok(changed == 1)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        let (ns, k) = (namespace.to_string(), key.to_string());
        self.writer.run("delete state", move |c| c.prepare_cached(KV_DELETE)?.execute(params![ns, k])).await?;
        Ok(())
    }

    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock> {
        Ok(ThreadLock::new(self.locks.lock(thread_id, wait).await?))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read("ping", |c| c.prepare_cached("SELECT 1")?.query_row([], |_| Ok(()))).await
    }

    async fn check_writable(&self) -> StoreResult<()> {
        match self.writer.recent_write() {
            Some(outcome) => outcome,
            None => self.probe_write().await,
        }
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_urls() {
        let file = |p: &str| Some(SqliteLocation::File(PathBuf::from(p)));
        assert_eq!(SqliteLocation::from_url("sqlite://data/chatkit.db"), file("data/chatkit.db"));
        assert_eq!(SqliteLocation::from_url("sqlite:///tmp/x.db"), file("/tmp/x.db"));
        assert_eq!(SqliteLocation::from_url("sqlite:x.db?mode=rwc"), file("x.db"));
        assert_eq!(SqliteLocation::from_url("sqlite::memory:"), Some(SqliteLocation::Memory));
        assert_eq!(SqliteLocation::from_url("sqlite://:memory:"), Some(SqliteLocation::Memory));
        assert_eq!(SqliteLocation::from_url("postgres://x"), None);
    }
}
