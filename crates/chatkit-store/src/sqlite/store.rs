//! The [`Store`] trait on [`SqliteStore`]: each operation as a job for the writer thread or a read,
//! with attachment bytes on the reader connections. Opening the database and the helpers the operations
//! share live in the parent module.

use std::time::Duration;

use async_trait::async_trait;
use chatkit::store::{
    ModelUsage, RequestContext, Store, StoreError, StoreResult, ThreadChange, ThreadLock, TurnUsage, UsageTotals,
    Versioned, check_upload_size,
};
use chatkit::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};
use rusqlite::{OptionalExtension as _, params};
use serde_json::Value;

use super::SqliteStore;
use super::conn::atomically;
use super::statements::*;
use crate::rows::{decode, decode_found, decode_rows, encode, fetch_limit, page_from_rows, versioned};

/// What `save_attachment_data` found and did, decided inside one writer job.
enum Upload {
    Stored,
    NoAttachment,
    AlreadyUploaded,
    Refused(StoreError),
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
