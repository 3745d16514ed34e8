//! Persistence: the [`Store`] trait every backend implements, the per-request [`RequestContext`],
//! the in-memory store and the in-process thread locks. The persistent backends (SQLite, PostgreSQL)
//! live in the `chatkit-store` crate.
//!
//! What every store guarantees: item writes are upserts that keep the item's original position, lists
//! are ordered by `(created_at, insertion sequence)` so cursors stay stable while items are added,
//! and every call carries the request context so threads are isolated per owner. An id a backend
//! cannot hold (PostgreSQL text cannot contain NUL) is an id that does not exist: reads find nothing
//! and the call answers exactly as for any other missing id, never with a database error.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};

pub mod locks;
pub mod memory;
mod usage;

pub use memory::MemoryStore;
pub use usage::{ModelUsage, TurnUsage, UsageTotals, sum_usage};

/// Who is asking, and from where. Built by the HTTP layer for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Owner of the threads this request may see (one anonymous owner by default).
    pub owner_id: String,
    /// `scheme://host[:port]` the client used, for absolute URLs (uploads, previews).
    pub base_url: String,
}

/// The owner used when no authentication is configured.
pub const ANONYMOUS_OWNER: &str = "anonymous";

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext { owner_id: ANONYMOUS_OWNER.into(), base_url: "http://localhost:8000".into() }
    }
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thread does not exist (or belongs to another owner).
    #[error("thread {0} not found")]
    ThreadNotFound(String),
    /// The item does not exist in that thread.
    #[error("item {item_id} not found in thread {thread_id}")]
    ItemNotFound {
        /// The thread that was searched.
        thread_id: String,
        /// The missing item.
        item_id: String,
    },
    /// The attachment does not exist.
    #[error("attachment {0} not found")]
    AttachmentNotFound(String),
    /// Waiting for the per-thread lock took too long.
    #[error("thread {0} is busy with another response; try again shortly")]
    LockTimeout(String),
    /// The response holding the thread's lock lost it (its database session died) and another response
    /// may now run on the thread, so this one's writes are refused: it stops, and what it had saved stays.
    #[error(
        "this response on thread {0} was stopped: its database connection was lost and another response \
         took over the thread; send the message again"
    )]
    LockLost(String),
    /// The attachment's bytes were uploaded already: an attachment's bytes are written once, so what a
    /// message sent cannot be replaced afterwards.
    #[error("attachment {0} is uploaded already; its bytes cannot be replaced (create a new attachment)")]
    AlreadyUploaded(String),
    /// The uploaded bytes are not as many as `attachments.create` declared.
    #[error(
        "the upload is {received} bytes but attachment {attachment_id} was created with size {declared}; \
         upload the file that was declared (or create a new attachment)"
    )]
    UploadSizeMismatch {
        /// The attachment.
        attachment_id: String,
        /// The size `attachments.create` declared.
        declared: u64,
        /// The size of the upload.
        received: u64,
    },
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database refuses writes: the disk is full, the file or file system is read-only, or writing
    /// failed with an I/O error. Reads may still work; writes work again once the cause is gone. The text
    /// is one of the [`UnwritableReason`] phrases, never the database's own message.
    #[error("the database cannot be written: {0}")]
    Unwritable(UnwritableReason),
    /// The database failed otherwise (connection lost, server down, unexpected error). The text is for
    /// the log only: it may name hosts or statements.
    #[error("database error: {0}")]
    Database(String),
}

/// Why the database refuses writes, in words a client may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwritableReason {
    /// No space left on the device (or a quota was reached).
    DiskFull,
    /// The database file, its folder or the file system is read-only, or the server refuses writes.
    ReadOnly,
    /// The operating system reported an I/O error while writing.
    IoError,
}

impl std::fmt::Display for UnwritableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnwritableReason::DiskFull => "the disk is full",
            UnwritableReason::ReadOnly => "it is read-only",
            UnwritableReason::IoError => "an I/O error occurred while writing",
        })
    }
}

impl StoreError {
    /// The answer for an item that is not in the thread (or a thread the caller does not own).
    pub fn item_not_found(thread_id: &str, item_id: &str) -> Self {
        StoreError::ItemNotFound { thread_id: thread_id.to_string(), item_id: item_id.to_string() }
    }

    /// Whether this is one of the not-found errors (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::ThreadNotFound(_) | StoreError::ItemNotFound { .. } | StoreError::AttachmentNotFound(_)
        )
    }

    /// Whether the database itself failed (it cannot be written, or does not answer): a condition of the
    /// server's storage that clears without the client changing anything (HTTP 503).
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, StoreError::Unwritable(_) | StoreError::Database(_))
    }

    /// The text a client is shown for a storage failure: it says what is wrong with the storage without
    /// quoting the database (whose messages may name hosts, users or statements).
    pub fn storage_detail(&self) -> String {
        match self {
            StoreError::Unwritable(reason) => {
                format!("the database cannot be written: {reason}; try again once storage is writable")
            }
            _ => "the database is unavailable; try again shortly".to_string(),
        }
    }
}

/// The size rule of an upload: `UploadSizeMismatch` unless `received` bytes are what was declared (an
/// attachment without a declared size, stored before sizes were kept, takes any size).
pub fn check_upload_size(attachment_id: &str, declared: Option<u64>, received: usize) -> StoreResult<()> {
    match declared {
        Some(declared) if declared != received as u64 => Err(StoreError::UploadSizeMismatch {
            attachment_id: attachment_id.to_string(),
            declared,
            received: received as u64,
        }),
        _ => Ok(()),
    }
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A change to a stored thread for [`Store::update_thread`]: receives the stored metadata and returns
/// whether it changed it (only then is it saved; when it returns `false` whatever it did is discarded).
pub type ThreadChange = Box<dyn FnOnce(&mut ThreadMetadata) -> bool + Send>;

/// Held while a response runs on a thread; dropping it releases the per-thread lock.
pub struct ThreadLock {
    _guard: Box<dyn Send + Sync>,
}

impl ThreadLock {
    /// Wraps whatever keeps the lock held (a mutex guard, a database connection…).
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        ThreadLock { _guard: Box::new(guard) }
    }
}

impl std::fmt::Debug for ThreadLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadLock")
    }
}

/// A versioned JSON value of the app's key-value state (see [`Store::kv_get`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The value.
    pub value: Value,
    /// Incremented on every successful write; used for compare-and-swap.
    pub version: i64,
}

/// Persistent storage of threads, items, attachments (metadata and bytes) and app state.
///
/// A store that wraps another (`chatkit-store`'s `InstrumentedStore`) must forward every method, the ones
/// with a default included, or the wrapped store's own implementation is silently bypassed.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads a thread; `ThreadNotFound` if absent or owned by someone else.
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata>;
    /// Inserts or updates a thread (owner = `ctx.owner_id` on insert).
    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()>;
    /// Saves a new thread together with its first item (`threads.create`), as one commit where the store
    /// can: a turn then waits for one durable write instead of two. The default saves the thread, then
    /// adds the item.
    async fn create_thread_with_item(
        &self,
        ctx: &RequestContext,
        thread: &ThreadMetadata,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        self.save_thread(ctx, thread).await?;
        self.add_thread_item(ctx, &thread.id, item).await
    }
    /// Applies `change` to the stored thread and saves it if `change` says it changed it; returns the
    /// thread as stored afterwards and whether it changed. Atomic where the store can (SQLite: one writer
    /// job; PostgreSQL: `SELECT … FOR UPDATE` in a transaction), so a concurrent rename is never lost;
    /// the default loads, changes and saves. Missing thread → `ThreadNotFound`.
    async fn update_thread(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        change: ThreadChange,
    ) -> StoreResult<(ThreadMetadata, bool)> {
        let stored = self.load_thread(ctx, thread_id).await?;
        let mut thread = stored.clone();
        if !change(&mut thread) {
            return Ok((stored, false));
        }
        self.save_thread(ctx, &thread).await?;
        Ok((thread, true))
    }
    /// Lists the owner's threads by `created_at`; `after` is an exclusive thread-id cursor.
    async fn load_threads(
        &self,
        ctx: &RequestContext,
        limit: usize,
        after: Option<&str>,
        order: Order,
    ) -> StoreResult<Page<ThreadMetadata>>;
    /// Deletes a thread and all its items (attachments untouched). Missing thread → `ThreadNotFound`.
    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()>;

    /// Forgets the tombstones of threads and items deleted at least `retention` ago, returning how many.
    /// A tombstone keeps a deleted row's position so that a paging cursor naming it continues after it;
    /// once pruned, such a cursor pages like one that never existed (an empty page).
    async fn prune_tombstones(&self, retention: Duration) -> StoreResult<u64>;

    /// Lists a thread's items (hidden ones included) by `(created_at, insertion order)`.
    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>>;
    /// Adds an item; an existing id in the thread is replaced in place (keeps its position).
    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()>;
    /// Upserts an item by id (replaces content, keeps position).
    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()>;
    /// Loads one item; `ItemNotFound` if absent.
    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem>;
    /// Deletes one item (no error if absent).
    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()>;
    /// Deletes every item positioned after `item_id` in the thread (retry); returns how many.
    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64>;

    /// Saves a new attachment (`attachments.create`) with the size its bytes must have; the size stays
    /// with the attachment when [`Store::save_attachment`] later updates it.
    async fn create_attachment(
        &self,
        ctx: &RequestContext,
        attachment: &Attachment,
        declared_size: u64,
    ) -> StoreResult<()>;
    /// Upserts attachment metadata.
    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()>;
    /// Loads attachment metadata; `AttachmentNotFound` if absent.
    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment>;
    /// Deletes attachment metadata and bytes (no error if absent).
    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()>;
    /// Stores the uploaded bytes of an existing attachment, once: `AttachmentNotFound` without the
    /// attachment, `AlreadyUploaded` when bytes are stored already (they stay as they are),
    /// `UploadSizeMismatch` when they are not the size [`Store::create_attachment`] declared.
    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()>;
    /// Loads the uploaded bytes; `None` if not uploaded yet.
    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// How many uploaded attachment bytes the owner has stored, leaving out the attachment `except` (one
    /// about to be replaced), for per-owner storage quotas.
    async fn attachment_bytes(&self, ctx: &RequestContext, except: Option<&str>) -> StoreResult<u64>;

    /// Records the model usage of one turn for the request's owner.
    async fn record_usage(&self, ctx: &RequestContext, usage: &TurnUsage) -> StoreResult<()>;
    /// The owner's recorded usage, summed per provider and model (ordered by provider, then model);
    /// with `thread_id`, only that thread's turns.
    async fn usage_by_model(&self, ctx: &RequestContext, thread_id: Option<&str>) -> StoreResult<Vec<ModelUsage>>;

    /// Reads a value of the app's key-value state (e.g. the airline profile of a thread).
    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>>;
    /// Writes `value` if the current version is `expected` (`None` = key must not exist).
    /// Returns `false` when another writer got there first (caller re-reads and retries).
    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool>;
    /// Deletes a key (no error if absent).
    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()>;

    /// Serializes responses on one thread (across replicas for shared databases).
    /// Waits at most `wait`, then fails with `LockTimeout`.
    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock>;

    /// The ids of threads as they are deleted, through any process sharing the database, so that a turn
    /// running here on a thread another replica deleted stops at once (its model call dropped) instead
    /// of at its next write. `None` for a store only this process uses (memory, SQLite), where
    /// `threads.delete` stops the turns itself. Called from inside the runtime.
    fn deleted_threads(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    /// Checks the database answers (start-up, and the default of [`Store::check_writable`]).
    async fn ping(&self) -> StoreResult<()>;
    /// Checks the database accepts writes, for health checks: a store that can fail to write (full disk,
    /// read-only file) answers from its recent write outcomes and probes with a tiny write when it has not
    /// written for a while, so calling this often costs next to nothing. `Unwritable` while writes fail.
    async fn check_writable(&self) -> StoreResult<()> {
        self.ping().await
    }
    /// Finishes the queued writes and releases the database at shutdown (SQLite: the WAL is
    /// checkpointed into the database file; PostgreSQL: the pool is closed). The store must not be used
    /// afterwards. The default does nothing (nothing to release).
    async fn close(&self) {}
    /// A short human name for logs and banners, e.g. `sqlite://data/chatkit.db` (no secrets).
    fn describe(&self) -> String;
    /// How busy the store's connection pool is, for metrics; `None` for a store without a pool.
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
}

/// A snapshot of a store's connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections currently lent out to operations.
    pub in_use: u32,
    /// Open connections waiting to be used.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}
