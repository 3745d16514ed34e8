//! [`TracedStore`]: every store operation in a span of its own (`db.operation.name`, `db.system.name`),
//! so a trace shows where a turn waited for the database. Installed only while traces are exported: the
//! default configuration keeps the store unwrapped. Spans carry the operation's name only, never ids of
//! rows, keys or values.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatkit::Store;
use chatkit::store::{ModelUsage, RequestContext, StoreResult, ThreadChange, ThreadLock, TurnUsage, Versioned};
use chatkit::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};
use serde_json::Value;
use tracing::Instrument as _;

/// A [`Store`] that runs each operation of the wrapped store in a span.
pub(crate) struct TracedStore {
    inner: Arc<dyn Store>,
    /// `sqlite`, `postgresql` or `memory`.
    system: &'static str,
}

impl TracedStore {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        let described = inner.describe();
        let system = if described.starts_with("sqlite") {
            "sqlite"
        } else if described.starts_with("postgres") {
            "postgresql"
        } else {
            "memory"
        };
        TracedStore { inner, system }
    }

    fn span(&self, operation: &'static str) -> tracing::Span {
        tracing::info_span!(
            target: "support::store",
            "store",
            otel.name = format!("store {operation}"),
            otel.kind = "client",
            db.system.name = self.system,
            db.operation.name = operation,
        )
    }
}

#[async_trait]
impl Store for TracedStore {
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata> {
        self.inner.load_thread(ctx, thread_id).instrument(self.span("load_thread")).await
    }
    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()> {
        self.inner.save_thread(ctx, thread).instrument(self.span("save_thread")).await
    }
    async fn create_thread_with_item(
        &self,
        ctx: &RequestContext,
        thread: &ThreadMetadata,
        item: &ThreadItem,
    ) -> StoreResult<()> {
        self.inner.create_thread_with_item(ctx, thread, item).instrument(self.span("create_thread_with_item")).await
    }
    async fn update_thread(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        change: ThreadChange,
    ) -> StoreResult<(ThreadMetadata, bool)> {
        self.inner.update_thread(ctx, thread_id, change).instrument(self.span("update_thread")).await
    }
    async fn load_threads(
        &self,
        ctx: &RequestContext,
        limit: usize,
        after: Option<&str>,
        order: Order,
    ) -> StoreResult<Page<ThreadMetadata>> {
        self.inner.load_threads(ctx, limit, after, order).instrument(self.span("load_threads")).await
    }
    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()> {
        self.inner.delete_thread(ctx, thread_id).instrument(self.span("delete_thread")).await
    }
    async fn prune_tombstones(&self, retention: Duration) -> StoreResult<u64> {
        self.inner.prune_tombstones(retention).instrument(self.span("prune_tombstones")).await
    }
    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        self.inner
            .load_thread_items(ctx, thread_id, after, limit, order)
            .instrument(self.span("load_thread_items"))
            .await
    }
    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.inner.add_thread_item(ctx, thread_id, item).instrument(self.span("add_thread_item")).await
    }
    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.inner.save_item(ctx, thread_id, item).instrument(self.span("save_item")).await
    }
    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem> {
        self.inner.load_item(ctx, thread_id, item_id).instrument(self.span("load_item")).await
    }
    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()> {
        self.inner.delete_thread_item(ctx, thread_id, item_id).instrument(self.span("delete_thread_item")).await
    }
    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64> {
        self.inner.delete_items_after(ctx, thread_id, item_id).instrument(self.span("delete_items_after")).await
    }
    async fn create_attachment(
        &self,
        ctx: &RequestContext,
        attachment: &Attachment,
        declared_size: u64,
    ) -> StoreResult<()> {
        self.inner.create_attachment(ctx, attachment, declared_size).instrument(self.span("create_attachment")).await
    }
    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()> {
        self.inner.save_attachment(ctx, attachment).instrument(self.span("save_attachment")).await
    }
    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment> {
        self.inner.load_attachment(ctx, attachment_id).instrument(self.span("load_attachment")).await
    }
    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()> {
        self.inner.delete_attachment(ctx, attachment_id).instrument(self.span("delete_attachment")).await
    }
    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()> {
        self.inner.save_attachment_data(ctx, attachment_id, data).instrument(self.span("save_attachment_data")).await
    }
    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.load_attachment_data(ctx, attachment_id).instrument(self.span("load_attachment_data")).await
    }
    async fn attachment_bytes(&self, ctx: &RequestContext, except: Option<&str>) -> StoreResult<u64> {
        self.inner.attachment_bytes(ctx, except).instrument(self.span("attachment_bytes")).await
    }
    async fn record_usage(&self, ctx: &RequestContext, usage: &TurnUsage) -> StoreResult<()> {
        self.inner.record_usage(ctx, usage).instrument(self.span("record_usage")).await
    }
    async fn usage_by_model(&self, ctx: &RequestContext, thread_id: Option<&str>) -> StoreResult<Vec<ModelUsage>> {
        self.inner.usage_by_model(ctx, thread_id).instrument(self.span("usage_by_model")).await
    }
    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>> {
        self.inner.kv_get(namespace, key).instrument(self.span("kv_get")).await
    }
    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool> {
        self.inner.kv_compare_and_set(namespace, key, expected, value).instrument(self.span("kv_compare_and_set")).await
    }
    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        self.inner.kv_delete(namespace, key).instrument(self.span("kv_delete")).await
    }
    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock> {
        self.inner.lock_thread(thread_id, wait).instrument(self.span("lock_thread")).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().instrument(self.span("ping")).await
    }
    async fn check_writable(&self) -> StoreResult<()> {
        self.inner.check_writable().instrument(self.span("check_writable")).await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn pool_status(&self) -> Option<chatkit::store::PoolStatus> {
        self.inner.pool_status()
    }
    fn deleted_threads(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.inner.deleted_threads()
    }
}
