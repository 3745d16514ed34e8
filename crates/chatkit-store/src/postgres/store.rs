//! The [`Store`] trait on [`PostgresStore`]: each operation as its prepared statements, fenced writes
//! for a locked thread, and the pool's health. Opening the database and the helpers the operations
//! share live in the parent module.

use std::time::Duration;

use async_trait::async_trait;
use chatkit::store::{
    ModelUsage, PoolStatus, RequestContext, Store, StoreError, StoreResult, ThreadChange, ThreadLock, TurnUsage,
    UsageTotals, Versioned, check_upload_size,
};
use chatkit::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};
use serde_json::Value;

use super::statements::*;
use super::{PostgresStore, db_err, deletions, fence, require_storable, unstorable, update};
use crate::rows::{decode_found, decode_rows, encode, fetch_limit, page_from_rows, versioned};
use crate::write_health::{PROBE_KEY, PROBE_NAMESPACE};

#[async_trait]
impl Store for PostgresStore {
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata> {
        require_storable(&[&ctx.owner_id, thread_id], || StoreError::ThreadNotFound(thread_id.to_string()))?;
        let row: Option<String> = sqlx::query_scalar(LOAD_THREAD)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("load thread", e))?;
        decode_found("thread", row, || StoreError::ThreadNotFound(thread_id.to_string()))
    }

    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, &thread.id], || StoreError::ThreadNotFound(thread.id.clone()))?;
        let token = self.holder_token(&thread.id);
        let rows = fence::write(&self.pool, "save thread", &thread.id, token, || {
            save_thread_query(&thread.id, &ctx.owner_id, thread)
        })
        .await?;
        if rows == 0 {
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
        require_storable(&[&ctx.owner_id, &thread.id, &item.id], || StoreError::ThreadNotFound(thread.id.clone()))?;
        let save = save_thread_query(&thread.id, &ctx.owner_id, thread)?;
        let add = upsert_item_query(&ctx.owner_id, &thread.id, item)?;
        let mut tx = self.pool.begin().await.map_err(|e| db_err("create thread", e))?;
        let saved = save.execute(&mut *tx).await.map_err(|e| db_err("create thread", e))?;
        let added = add.execute(&mut *tx).await.map_err(|e| db_err("create thread", e))?;
        if saved.rows_affected() == 0 || added.rows_affected() == 0 {
            return Err(StoreError::ThreadNotFound(thread.id.clone()));
        }
        tx.commit().await.map_err(|e| db_err("create thread", e))
    }

    async fn update_thread(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        change: ThreadChange,
    ) -> StoreResult<(ThreadMetadata, bool)> {
        require_storable(&[&ctx.owner_id, thread_id], || StoreError::ThreadNotFound(thread_id.to_string()))?;
        update::update_thread(&self.pool, ctx, thread_id, self.holder_token(thread_id), change).await
    }

    async fn load_threads(
        &self,
        ctx: &RequestContext,
        limit: usize,
        after: Option<&str>,
        order: Order,
    ) -> StoreResult<Page<ThreadMetadata>> {
        if unstorable(&[&ctx.owner_id, after.unwrap_or_default()]) {
            return Ok(Page::default());
        }
        let sql = LIST_THREADS.pick(order, after.is_some());
        let mut q = sqlx::query_as::<_, (String, String)>(sql).bind(&ctx.owner_id).bind(fetch_limit(limit));
        if let Some(cursor) = after {
            q = q.bind(cursor);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(|e| db_err("list threads", e))?;
        Ok(page_from_rows(decode_rows("thread", rows)?, limit))
    }

    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, thread_id], || StoreError::ThreadNotFound(thread_id.to_string()))?;
        let deleted: i64 = sqlx::query_scalar(DELETE_THREAD)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .bind(deletions::CHANNEL)
            .bind(deletions::payload(self.locks.namespace(), thread_id))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_err("delete thread", e))?;
        if deleted == 0 {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        if let Err(e) = fence::forget(&self.pool, thread_id).await {
            // A leftover fence row is a few bytes and harmless; the thread is gone either way.
            tracing::debug!(error = %e, "could not delete the fence row of a deleted thread");
        }
        Ok(())
    }

    async fn prune_tombstones(&self, retention: Duration) -> StoreResult<u64> {
        let retention = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        let mut pruned = 0;
        for sql in [PRUNE_THREAD_TOMBSTONES, PRUNE_ITEM_TOMBSTONES] {
            let done = sqlx::query(sql)
                .bind(retention)
                .execute(&self.pool)
                .await
                .map_err(|e| db_err("prune tombstones", e))?;
            pruned += done.rows_affected();
        }
        Ok(pruned)
    }

    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        if unstorable(&[&ctx.owner_id, thread_id, after.unwrap_or_default()]) {
            return Ok(Page::default());
        }
        let sql = LIST_ITEMS.pick(order, after.is_some());
        let mut q =
            sqlx::query_as::<_, (String, String)>(sql).bind(thread_id).bind(&ctx.owner_id).bind(fetch_limit(limit));
        if let Some(cursor) = after {
            q = q.bind(cursor);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(|e| db_err("list items", e))?;
        Ok(page_from_rows(decode_rows("item", rows)?, limit))
    }

    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item).await
    }

    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item).await
    }

    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem> {
        require_storable(&[&ctx.owner_id, thread_id, item_id], || StoreError::item_not_found(thread_id, item_id))?;
        let row: Option<String> = sqlx::query_scalar(LOAD_ITEM)
            .bind(thread_id)
            .bind(&ctx.owner_id)
            .bind(item_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("load item", e))?;
        decode_found("item", row, || StoreError::item_not_found(thread_id, item_id))
    }

    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()> {
        if unstorable(&[&ctx.owner_id, thread_id, item_id]) {
            return Ok(());
        }
        let token = self.holder_token(thread_id);
        fence::write(&self.pool, "delete item", thread_id, token, || {
            Ok(sqlx::query(DELETE_ITEM).bind(thread_id).bind(&ctx.owner_id).bind(item_id))
        })
        .await?;
        Ok(())
    }

    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64> {
        require_storable(&[&ctx.owner_id, thread_id, item_id], || StoreError::item_not_found(thread_id, item_id))?;
        let token = self.holder_token(thread_id);
        let rows = fence::write(&self.pool, "delete items", thread_id, token, || {
            Ok(sqlx::query(DELETE_ITEMS_AFTER).bind(thread_id).bind(&ctx.owner_id).bind(item_id))
        })
        .await?;
        if rows == 0 {
            // Nothing after it, or the item does not exist: tell the two apart.
            self.load_item(ctx, thread_id, item_id).await?;
        }
        Ok(rows)
    }

    async fn create_attachment(
        &self,
        ctx: &RequestContext,
        attachment: &Attachment,
        declared_size: u64,
    ) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, &attachment.id], || StoreError::AttachmentNotFound(attachment.id.clone()))?;
        let data = encode("attachment", attachment)?;
        let done = sqlx::query(CREATE_ATTACHMENT)
            .bind(&attachment.id)
            .bind(&ctx.owner_id)
            .bind(data)
            .bind(i64::try_from(declared_size).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("create attachment", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AttachmentNotFound(attachment.id.clone()));
        }
        Ok(())
    }

    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, &attachment.id], || StoreError::AttachmentNotFound(attachment.id.clone()))?;
        let data = encode("attachment", attachment)?;
        let done = sqlx::query(SAVE_ATTACHMENT)
            .bind(&attachment.id)
            .bind(&ctx.owner_id)
            .bind(data)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("save attachment", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AttachmentNotFound(attachment.id.clone()));
        }
        Ok(())
    }

    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment> {
        require_storable(&[&ctx.owner_id, attachment_id], || {
            StoreError::AttachmentNotFound(attachment_id.to_string())
        })?;
        let row: Option<String> = sqlx::query_scalar(LOAD_ATTACHMENT)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("load attachment", e))?;
        decode_found("attachment", row, || StoreError::AttachmentNotFound(attachment_id.to_string()))
    }

    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()> {
        if unstorable(&[&ctx.owner_id, attachment_id]) {
            return Ok(());
        }
        sqlx::query(DELETE_ATTACHMENT)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("delete attachment", e))?;
        Ok(())
    }

    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, attachment_id], || {
            StoreError::AttachmentNotFound(attachment_id.to_string())
        })?;
        let state: Option<(Option<i64>, bool)> = sqlx::query_as(ATTACHMENT_UPLOAD_STATE)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("save attachment data", e))?;
        let Some((declared, uploaded)) = state else {
            return Err(StoreError::AttachmentNotFound(attachment_id.to_string()));
        };
        if uploaded {
            return Err(StoreError::AlreadyUploaded(attachment_id.to_string()));
        }
        check_upload_size(attachment_id, declared.and_then(|n| u64::try_from(n).ok()), data.len())?;
        let done = sqlx::query(SAVE_ATTACHMENT_DATA)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .bind(data)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("save attachment data", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyUploaded(attachment_id.to_string()));
        }
        Ok(())
    }

    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>> {
        if unstorable(&[&ctx.owner_id, attachment_id]) {
            return Ok(None);
        }
        sqlx::query_scalar(LOAD_ATTACHMENT_DATA)
            .bind(attachment_id)
            .bind(&ctx.owner_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("load attachment data", e))
    }

    async fn attachment_bytes(&self, ctx: &RequestContext, except: Option<&str>) -> StoreResult<u64> {
        if unstorable(&[&ctx.owner_id]) {
            return Ok(0);
        }
        // An id PostgreSQL cannot hold is no stored attachment: nothing to leave out.
        let except = except.filter(|id| !id.contains('\0'));
        let total: i64 = sqlx::query_scalar(ATTACHMENT_BYTES)
            .bind(&ctx.owner_id)
            .bind(except)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_err("sum attachment bytes", e))?;
        Ok(total.max(0) as u64)
    }

    async fn record_usage(&self, ctx: &RequestContext, usage: &TurnUsage) -> StoreResult<()> {
        require_storable(&[&ctx.owner_id, &usage.thread_id, &usage.provider, &usage.model], || {
            StoreError::ThreadNotFound(usage.thread_id.clone())
        })?;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query(RECORD_USAGE)
            .bind(&ctx.owner_id)
            .bind(&usage.thread_id)
            .bind(&usage.provider)
            .bind(&usage.model)
            .bind(count(usage.model_calls))
            .bind(count(usage.tokens.input_tokens))
            .bind(count(usage.tokens.output_tokens))
            .bind(count(usage.tokens.cached_tokens))
            .bind(count(usage.tokens.reasoning_tokens))
            .bind(usage.created_at.micros())
            .bind(count(usage.tokens.turns))
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("record usage", e))?;
        Ok(())
    }

    async fn usage_by_model(&self, ctx: &RequestContext, thread_id: Option<&str>) -> StoreResult<Vec<ModelUsage>> {
        if unstorable(&[&ctx.owner_id, thread_id.unwrap_or_default()]) {
            return Ok(Vec::new());
        }
        type Row = (String, String, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = sqlx::query_as(USAGE_BY_MODEL)
            .bind(&ctx.owner_id)
            .bind(thread_id)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_err("sum usage", e))?;
        let n = |v: i64| v.max(0) as u64;
        Ok(rows
            .into_iter()
            .map(|(provider, model, turns, calls, input, output, cached, reasoning)| ModelUsage {
                provider,
                model,
                totals: UsageTotals {
                    turns: n(turns),
                    model_calls: n(calls),
                    input_tokens: n(input),
                    output_tokens: n(output),
                    cached_tokens: n(cached),
                    reasoning_tokens: n(reasoning),
                },
            })
            .collect())
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>> {
        if unstorable(&[namespace, key]) {
            return Ok(None);
        }
        let row: Option<(String, i64)> = sqlx::query_as(KV_GET)
            .bind(namespace)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_err("read state", e))?;
        versioned("state value", row)
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool> {
        if unstorable(&[namespace, key]) {
            // The key never exists, so no version matches, and it cannot be created.
            return Ok(false);
        }
        let text = encode("state value", value)?;
        let q = match expected {
            None => sqlx::query(KV_INSERT).bind(namespace).bind(key).bind(text),
            Some(v) => sqlx::query(KV_UPDATE).bind(namespace).bind(key).bind(text).bind(v),
        };
        let done = q.execute(&self.pool).await.map_err(|e| db_err("write state", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        if unstorable(&[namespace, key]) {
            return Ok(());
        }
        sqlx::query(KV_DELETE)
            .bind(namespace)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(|e| db_err("delete state", e))?;
        Ok(())
    }

    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock> {
        // A spawned task: if the caller is cancelled, the finished guard is dropped (and released).
        let task = tokio::spawn(self.locks.clone().acquire(thread_id.to_string(), wait));
        match task.await {
            Ok(guard) => Ok(ThreadLock::new(guard?)),
            Err(e) => Err(StoreError::Database(format!("thread lock task failed: {e}"))),
        }
    }

    fn deleted_threads(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.deletions.subscribe()
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| db_err("ping", e))?;
        Ok(())
    }

    /// Pings every time (a lost server must show at once), then answers from the last write probe while
    /// it is recent, else rewrites the health row. Only the probe is noted: PostgreSQL refuses writes for
    /// reasons that are rarely momentary (full disk, standby).
    async fn check_writable(&self) -> StoreResult<()> {
        self.ping().await?;
        if let Some(outcome) = self.write_health.recent() {
            return outcome;
        }
        let now = chatkit::types::Timestamp::now().micros().to_string();
        let probed = sqlx::query(KV_PROBE)
            .bind(PROBE_NAMESPACE)
            .bind(PROBE_KEY)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| db_err("health probe", e));
        self.write_health.record(&probed);
        probed
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX).min(size);
        Some(PoolStatus { in_use: size - idle, idle, max: self.pool.options().get_max_connections() })
    }
}
