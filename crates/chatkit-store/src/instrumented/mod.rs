//! [`InstrumentedStore`]: wraps any [`Store`] and instruments every operation in one place. Each one is
//! timed, and its failures counted, through the `metrics` facade (a no-op until the application installs
//! a recorder); with [`StoreOptions::trace_operations`] each one also runs in a `store <operation>` span
//! (`db.system.name`, `db.operation.name`), so a trace shows where a turn waited for the database. Spans
//! carry the operation's name only, never ids of rows, keys or values. [`open_store`] wraps every store it
//! opens, so each backend is measured the same way, at the same place.
//!
//! Each store keeps the histogram of each operation once it made it, so an operation does not look its
//! series up by name and labels in the recorder every time. It is made on the operation's first run,
//! not when the store is built: a handle made before the application installed its recorder would
//! record nothing, so the recorder must be installed before the store's first operation.
//!
//! [`open_store`]: crate::open_store
//! [`StoreOptions::trace_operations`]: crate::StoreOptions::trace_operations

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatkit::store::{
    ModelUsage, PoolStatus, RequestContext, Store, StoreError, StoreResult, ThreadChange, ThreadLock, TurnUsage,
    Versioned,
};
use chatkit::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};
use metrics::Histogram;
use serde_json::Value;
use tracing::Instrument as _;

use self::operation::Operation;

mod operation;

/// Histogram of store operation durations by `operation` (the [`Store`] method, e.g. `add_thread_item`)
/// and `backend` (`sqlite`, `postgres`, `memory`). `lock_thread` includes the wait for a busy thread.
pub const STORE_OPERATION_DURATION: &str = "store_operation_duration_seconds";
/// Counter of failed store operations by `operation`, `backend` and `error` (`not_found`,
/// `lock_timeout`, `lock_lost`, `corrupt`, `unwritable`, `database`, `already_uploaded`,
/// `upload_size_mismatch`).
pub const STORE_OPERATION_ERRORS: &str = "store_operation_errors_total";

/// Registers the help text of the store metrics with the installed recorder.
pub fn describe() {
    metrics::describe_histogram!(
        STORE_OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Store operation durations by operation and backend."
    );
    metrics::describe_counter!(STORE_OPERATION_ERRORS, "Failed store operations by operation, backend and error.");
}

/// A [`Store`] that measures, and optionally traces, the store it wraps.
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    backend: &'static str,
    /// The `db.system.name` of the spans (OpenTelemetry's name of the database), `None` when not traced.
    traced_as: Option<&'static str>,
    /// The duration histogram of each operation, by [`Operation`] index, made on its first run.
    timers: [OnceLock<Histogram>; Operation::COUNT],
}

impl InstrumentedStore {
    /// Measures `inner`, labelled as `backend` (`sqlite`, `postgres` or `memory`); with `trace`, every
    /// operation also runs in a span of its own.
    pub fn new(inner: Arc<dyn Store>, backend: &'static str, trace: bool) -> Self {
        let traced_as = trace.then(|| if backend == "postgres" { "postgresql" } else { backend });
        InstrumentedStore { inner, backend, traced_as, timers: std::array::from_fn(|_| OnceLock::new()) }
    }

    async fn run<T>(&self, operation: Operation, work: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let started = Instant::now();
        let result = match self.traced_as {
            Some(system) => work.instrument(span(operation.name(), system)).await,
            None => work.await,
        };
        self.record(operation, started.elapsed(), result.as_ref().err());
        result
    }

    /// The duration histogram of `operation`, made with the recorder installed at its first run.
    fn timer(&self, operation: Operation) -> &Histogram {
        self.timers[operation as usize].get_or_init(|| {
            metrics::histogram!(STORE_OPERATION_DURATION, "operation" => operation.name(), "backend" => self.backend)
        })
    }

    fn record(&self, operation: Operation, took: Duration, error: Option<&StoreError>) {
        self.timer(operation).record(took.as_secs_f64());
        // Failures are rare and labelled by their kind too: they look their counter up each time.
        if let Some(e) = error {
            let (operation, backend) = (operation.name(), self.backend);
            metrics::counter!(
                STORE_OPERATION_ERRORS, "operation" => operation, "backend" => backend, "error" => error_label(e)
            )
            .increment(1);
        }
    }
}

fn span(operation: &'static str, system: &'static str) -> tracing::Span {
    tracing::info_span!(
        "store",
        otel.name = format!("store {operation}"),
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = operation,
    )
}

fn error_label(e: &StoreError) -> &'static str {
    match e {
        StoreError::ThreadNotFound(_) | StoreError::ItemNotFound { .. } | StoreError::AttachmentNotFound(_) => {
            "not_found"
        }
        StoreError::LockTimeout(_) => "lock_timeout",
        StoreError::LockLost(_) => "lock_lost",
        StoreError::Corrupt(_) => "corrupt",
        StoreError::Unwritable(_) => "unwritable",
        StoreError::Database(_) => "database",
        StoreError::AlreadyUploaded(_) => "already_uploaded",
        StoreError::UploadSizeMismatch { .. } => "upload_size_mismatch",
    }
}

impl std::fmt::Debug for InstrumentedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedStore")
            .field("store", &self.inner.describe())
            .field("backend", &self.backend)
            .field("traced", &self.traced_as.is_some())
            .finish()
    }
}

// Every method is forwarded, the ones the trait gives a default too: left to its default, a method would
// bypass the wrapped store's own implementation (its single-commit `create_thread_with_item`, …). The
// tests below fail when one is missing.
#[async_trait]
impl Store for InstrumentedStore {
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata> {
        self.run(Operation::LoadThread, self.inner.load_thread(ctx, thread_id)).await
    }

    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()> {
        self.run(Operation::SaveThread, self.inner.save_thread(ctx, thread)).await
    }

    async fn create_thread_with_item(
        &self,
        ctx: &RequestContext,
        thread: &ThreadMetadata,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        self.run(Operation::CreateThreadWithItem, self.inner.create_thread_with_item(ctx, thread, item)).await
    }

    async fn update_thread(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        change: ThreadChange,
    ) -> StoreResult<(ThreadMetadata, bool)> {
        self.run(Operation::UpdateThread, self.inner.update_thread(ctx, thread_id, change)).await
    }

    async fn load_threads(
        &self,
        ctx: &RequestContext,
        limit: usize,
        after: Option<&str>,
        order: Order,
    ) -> StoreResult<Page<ThreadMetadata>> {
        self.run(Operation::LoadThreads, self.inner.load_threads(ctx, limit, after, order)).await
    }

    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()> {
        self.run(Operation::DeleteThread, self.inner.delete_thread(ctx, thread_id)).await
    }

    async fn prune_tombstones(&self, retention: Duration) -> StoreResult<u64> {
        self.run(Operation::PruneTombstones, self.inner.prune_tombstones(retention)).await
    }

    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        self.run(Operation::LoadThreadItems, self.inner.load_thread_items(ctx, thread_id, after, limit, order)).await
    }

    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.run(Operation::AddThreadItem, self.inner.add_thread_item(ctx, thread_id, item)).await
    }

    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.run(Operation::SaveItem, self.inner.save_item(ctx, thread_id, item)).await
    }

    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem> {
        self.run(Operation::LoadItem, self.inner.load_item(ctx, thread_id, item_id)).await
    }

    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()> {
        self.run(Operation::DeleteThreadItem, self.inner.delete_thread_item(ctx, thread_id, item_id)).await
    }

    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64> {
        self.run(Operation::DeleteItemsAfter, self.inner.delete_items_after(ctx, thread_id, item_id)).await
    }

    async fn create_attachment(
        &self,
        ctx: &RequestContext,
        attachment: &Attachment,
        declared_size: u64,
    ) -> StoreResult<()> {
        self.run(Operation::CreateAttachment, self.inner.create_attachment(ctx, attachment, declared_size)).await
    }

    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()> {
        self.run(Operation::SaveAttachment, self.inner.save_attachment(ctx, attachment)).await
    }

    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment> {
        self.run(Operation::LoadAttachment, self.inner.load_attachment(ctx, attachment_id)).await
    }

    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()> {
        self.run(Operation::DeleteAttachment, self.inner.delete_attachment(ctx, attachment_id)).await
    }

    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()> {
        self.run(Operation::SaveAttachmentData, self.inner.save_attachment_data(ctx, attachment_id, data)).await
    }

    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.run(Operation::LoadAttachmentData, self.inner.load_attachment_data(ctx, attachment_id)).await
    }

    async fn attachment_bytes(&self, ctx: &RequestContext, except: Option<&str>) -> StoreResult<u64> {
        self.run(Operation::AttachmentBytes, self.inner.attachment_bytes(ctx, except)).await
    }

    async fn record_usage(&self, ctx: &RequestContext, usage: &TurnUsage) -> StoreResult<()> {
        self.run(Operation::RecordUsage, self.inner.record_usage(ctx, usage)).await
    }

    async fn usage_by_model(&self, ctx: &RequestContext, thread_id: Option<&str>) -> StoreResult<Vec<ModelUsage>> {
        self.run(Operation::UsageByModel, self.inner.usage_by_model(ctx, thread_id)).await
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>> {
        self.run(Operation::KvGet, self.inner.kv_get(namespace, key)).await
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool> {
        self.run(Operation::KvCompareAndSet, self.inner.kv_compare_and_set(namespace, key, expected, value)).await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        self.run(Operation::KvDelete, self.inner.kv_delete(namespace, key)).await
    }

    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock> {
        self.run(Operation::LockThread, self.inner.lock_thread(thread_id, wait)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(Operation::Ping, self.inner.ping()).await
    }

    async fn check_writable(&self) -> StoreResult<()> {
        self.run(Operation::CheckWritable, self.inner.check_writable()).await
    }

    // Measured but not traced: it runs once, at shutdown and outside any request, so its span would only
    // be a lone trace of its own.
    async fn close(&self) {
        let started = Instant::now();
        self.inner.close().await;
        self.record(Operation::Close, started.elapsed(), None);
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        self.inner.pool_status()
    }

    fn deleted_threads(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.inner.deleted_threads()
    }
}

#[cfg(test)]
mod tests;
