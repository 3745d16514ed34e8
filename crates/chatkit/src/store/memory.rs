//! [`MemoryStore`]: the in-memory [`Store`] used by tests (and `memory://`).
//!
//! It follows exactly the semantics the SQL stores implement, so the conformance suite can run
//! against all three: threads and items are positioned by `(created_at, insertion sequence)`,
//! upserts keep the original position, every thread records its owner and other owners see
//! nothing, an `after` cursor naming a deleted thread or item continues from where it was (deleted rows
//! leave their position behind), a cursor that never existed yields an empty page, and `lock_thread` is an in-process
//! per-thread mutex with a bounded wait. Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::locks::LocalLocks;
use super::{
    ModelUsage, RequestContext, Store, StoreError, StoreResult, ThreadChange, ThreadLock, TurnUsage, Versioned,
    check_upload_size,
};
use crate::types::{Attachment, Order, Page, ThreadItem, ThreadMetadata};

/// Position of a thread or item: `(created_at micros, insertion sequence)`.
type Pos = (i64, u64);

#[derive(Debug)]
struct ThreadRec {
    owner: String,
    pos: Pos,
    meta: ThreadMetadata,
}

#[derive(Debug, Default)]
struct ItemList {
    positions: HashMap<String, Pos>,
    ordered: BTreeMap<Pos, ThreadItem>,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    threads: HashMap<String, ThreadRec>,
    items: HashMap<String, ItemList>,
    attachments: HashMap<String, (String, Attachment)>,
    /// Sizes declared by `attachments.create`, by attachment id.
    declared_sizes: HashMap<String, u64>,
    attachment_data: HashMap<String, (String, Vec<u8>)>,
    kv: HashMap<(String, String), Versioned>,
    /// Where deleted threads were (owner, position, when deleted), so a cursor naming one keeps its place.
    deleted_threads: HashMap<String, (String, Pos, Instant)>,
    /// Where deleted items were (position, when deleted), by thread, for the same reason.
    deleted_items: HashMap<String, HashMap<String, (Pos, Instant)>>,
    /// Turn usage records with their owner, oldest first.
    usage: Vec<(String, TurnUsage)>,
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn owns(&self, ctx: &RequestContext, thread_id: &str) -> bool {
        self.threads.get(thread_id).is_some_and(|t| t.owner == ctx.owner_id)
    }
}

/// A [`Store`] kept in process memory (tests and demos; nothing is persisted).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    locks: LocalLocks,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn upsert_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        let mut st = self.state();
        if !st.owns(ctx, thread_id) {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        let seq = st.next_seq();
        let list = st.items.entry(thread_id.to_string()).or_default();
        match list.positions.get(&item.id) {
            Some(pos) => {
                list.ordered.insert(*pos, item.clone());
            }
            None => {
                let pos = (item.created_at.micros(), seq);
                list.positions.insert(item.id.clone(), pos);
                list.ordered.insert(pos, item.clone());
            }
        }
        Ok(())
    }
}

/// Cuts one page out of `entries` (in ascending position order) per the cursor rules: `after` is the
/// cursor's position (exclusive; `Some(None)` for a cursor that never existed → empty page), `after`
/// of the result = last id when more follow.
fn paginate<T: Clone>(
    entries: Vec<(Pos, &str, &T)>,
    after: Option<Option<Pos>>,
    limit: usize,
    order: Order,
) -> Page<T> {
    let mut entries = entries;
    if order == Order::Desc {
        entries.reverse();
    }
    let start = match after {
        None => 0,
        Some(None) => return Page::default(),
        Some(Some(cursor)) => entries
            .iter()
            .position(|(pos, _, _)| if order == Order::Desc { *pos < cursor } else { *pos > cursor })
            .unwrap_or(entries.len()),
    };
    let rest = &entries[start..];
    let has_more = rest.len() > limit;
    let data: Vec<T> = rest.iter().take(limit).map(|(_, _, v)| (*v).clone()).collect();
    let after = if has_more { rest.get(limit.saturating_sub(1)).map(|(_, id, _)| id.to_string()) } else { None };
    let after = if has_more && limit == 0 { None } else { after };
    Page { data, has_more, after }
}

#[async_trait]
impl Store for MemoryStore {
    async fn load_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<ThreadMetadata> {
        let st = self.state();
        match st.threads.get(thread_id) {
            Some(t) if t.owner == ctx.owner_id => Ok(t.meta.clone()),
            _ => Err(StoreError::ThreadNotFound(thread_id.to_string())),
        }
    }

    async fn update_thread(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        change: ThreadChange,
    ) -> StoreResult<(ThreadMetadata, bool)> {
        // Under the state lock: atomic.
        let mut st = self.state();
        match st.threads.get_mut(thread_id) {
            Some(t) if t.owner == ctx.owner_id => {
                let mut meta = t.meta.clone();
                if !change(&mut meta) {
                    return Ok((t.meta.clone(), false));
                }
                t.meta = meta.clone();
                Ok((meta, true))
            }
            _ => Err(StoreError::ThreadNotFound(thread_id.to_string())),
        }
    }

    async fn save_thread(&self, ctx: &RequestContext, thread: &ThreadMetadata) -> StoreResult<()> {
        let mut st = self.state();
        let seq = st.next_seq();
        match st.threads.get_mut(&thread.id) {
            Some(t) if t.owner == ctx.owner_id => t.meta = thread.clone(),
            Some(_) => return Err(StoreError::ThreadNotFound(thread.id.clone())),
            None => {
                let rec = ThreadRec {
                    owner: ctx.owner_id.clone(),
                    pos: (thread.created_at.micros(), seq),
                    meta: thread.clone(),
                };
                st.threads.insert(thread.id.clone(), rec);
            }
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
        let st = self.state();
        let mut mine: Vec<&ThreadRec> = st.threads.values().filter(|t| t.owner == ctx.owner_id).collect();
        mine.sort_by_key(|t| t.pos);
        let cursor = after.map(|id| match st.threads.get(id) {
            Some(t) if t.owner == ctx.owner_id => Some(t.pos),
            Some(_) => None,
            None => st.deleted_threads.get(id).filter(|(owner, ..)| *owner == ctx.owner_id).map(|(_, pos, _)| *pos),
        });
        let entries = mine.iter().map(|t| (t.pos, t.meta.id.as_str(), &t.meta)).collect();
        Ok(paginate(entries, cursor, limit, order))
    }

    async fn delete_thread(&self, ctx: &RequestContext, thread_id: &str) -> StoreResult<()> {
        let mut st = self.state();
        if !st.owns(ctx, thread_id) {
            return Err(StoreError::ThreadNotFound(thread_id.to_string()));
        }
        if let Some(t) = st.threads.remove(thread_id) {
            st.deleted_threads.insert(thread_id.to_string(), (t.owner, t.pos, Instant::now()));
        }
        st.items.remove(thread_id);
        st.deleted_items.remove(thread_id);
        Ok(())
    }

    async fn prune_tombstones(&self, retention: Duration) -> StoreResult<u64> {
        let mut st = self.state();
        let expired = |at: &Instant| at.elapsed() >= retention;
        let before = st.deleted_threads.len() + st.deleted_items.values().map(HashMap::len).sum::<usize>();
        st.deleted_threads.retain(|_, (_, _, at)| !expired(at));
        for items in st.deleted_items.values_mut() {
            items.retain(|_, (_, at)| !expired(at));
        }
        st.deleted_items.retain(|_, items| !items.is_empty());
        let after = st.deleted_threads.len() + st.deleted_items.values().map(HashMap::len).sum::<usize>();
        Ok((before - after) as u64)
    }

    async fn load_thread_items(
        &self,
        ctx: &RequestContext,
        thread_id: &str,
        after: Option<&str>,
        limit: usize,
        order: Order,
    ) -> StoreResult<Page<ThreadItem>> {
        let st = self.state();
        if !st.owns(ctx, thread_id) {
            return Ok(Page::default());
        }
        let Some(list) = st.items.get(thread_id) else {
            return Ok(Page::default());
        };
        let cursor = after.map(|id| {
            list.positions
                .get(id)
                .or_else(|| st.deleted_items.get(thread_id).and_then(|d| d.get(id)).map(|(pos, _)| pos))
                .copied()
        });
        let entries = list.ordered.iter().map(|(pos, i)| (*pos, i.id.as_str(), i)).collect();
        Ok(paginate(entries, cursor, limit, order))
    }

    async fn add_thread_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item)
    }

    async fn save_item(&self, ctx: &RequestContext, thread_id: &str, item: &ThreadItem) -> StoreResult<()> {
        self.upsert_item(ctx, thread_id, item)
    }

    async fn load_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<ThreadItem> {
        let st = self.state();
        let not_found = || StoreError::item_not_found(thread_id, item_id);
        if !st.owns(ctx, thread_id) {
            return Err(not_found());
        }
        let list = st.items.get(thread_id).ok_or_else(not_found)?;
        let pos = list.positions.get(item_id).ok_or_else(not_found)?;
        list.ordered.get(pos).cloned().ok_or_else(not_found)
    }

    async fn delete_thread_item(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<()> {
        let mut st = self.state();
        if !st.owns(ctx, thread_id) {
            return Ok(());
        }
        if let Some(list) = st.items.get_mut(thread_id)
            && let Some(pos) = list.positions.remove(item_id)
        {
            list.ordered.remove(&pos);
            st.deleted_items
                .entry(thread_id.to_string())
                .or_default()
                .insert(item_id.to_string(), (pos, Instant::now()));
        }
        Ok(())
    }

    async fn delete_items_after(&self, ctx: &RequestContext, thread_id: &str, item_id: &str) -> StoreResult<u64> {
        let mut st = self.state();
        let not_found = || StoreError::item_not_found(thread_id, item_id);
        if !st.owns(ctx, thread_id) {
            return Err(not_found());
        }
        let list = st.items.get_mut(thread_id).ok_or_else(not_found)?;
        let pos = *list.positions.get(item_id).ok_or_else(not_found)?;
        let later: Vec<Pos> = list.ordered.range((pos.0, pos.1 + 1)..).map(|(p, _)| *p).collect();
        let mut removed = Vec::with_capacity(later.len());
        for p in &later {
            if let Some(item) = list.ordered.remove(p) {
                list.positions.remove(&item.id);
                removed.push((item.id, (*p, Instant::now())));
            }
        }
        st.deleted_items.entry(thread_id.to_string()).or_default().extend(removed);
        Ok(later.len() as u64)
    }

    async fn create_attachment(
        &self,
        ctx: &RequestContext,
        attachment: &Attachment,
        declared_size: u64,
    ) -> StoreResult<()> {
        self.save_attachment(ctx, attachment).await?;
        self.state().declared_sizes.insert(attachment.id.clone(), declared_size);
        Ok(())
    }

    async fn save_attachment(&self, ctx: &RequestContext, attachment: &Attachment) -> StoreResult<()> {
        let mut st = self.state();
        match st.attachments.get_mut(&attachment.id) {
            Some((owner, a)) if *owner == ctx.owner_id => *a = attachment.clone(),
            Some(_) => return Err(StoreError::AttachmentNotFound(attachment.id.clone())),
            None => {
                st.attachments.insert(attachment.id.clone(), (ctx.owner_id.clone(), attachment.clone()));
            }
        }
        Ok(())
    }

    async fn load_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Attachment> {
        match self.state().attachments.get(attachment_id) {
            Some((owner, a)) if *owner == ctx.owner_id => Ok(a.clone()),
            _ => Err(StoreError::AttachmentNotFound(attachment_id.to_string())),
        }
    }

    async fn delete_attachment(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<()> {
        let mut st = self.state();
        if st.attachments.get(attachment_id).is_some_and(|(o, _)| *o == ctx.owner_id) {
            st.attachments.remove(attachment_id);
        }
        if st.attachment_data.get(attachment_id).is_some_and(|(o, _)| *o == ctx.owner_id) {
            st.attachment_data.remove(attachment_id);
        }
        if !st.attachments.contains_key(attachment_id) {
            st.declared_sizes.remove(attachment_id);
        }
        Ok(())
    }

    async fn save_attachment_data(&self, ctx: &RequestContext, attachment_id: &str, data: &[u8]) -> StoreResult<()> {
        let mut st = self.state();
        if st.attachments.get(attachment_id).is_none_or(|(owner, _)| *owner != ctx.owner_id) {
            return Err(StoreError::AttachmentNotFound(attachment_id.to_string()));
        }
        if st.attachment_data.contains_key(attachment_id) {
            return Err(StoreError::AlreadyUploaded(attachment_id.to_string()));
        }
        check_upload_size(attachment_id, st.declared_sizes.get(attachment_id).copied(), data.len())?;
        st.attachment_data.insert(attachment_id.to_string(), (ctx.owner_id.clone(), data.to_vec()));
        Ok(())
    }

    async fn load_attachment_data(&self, ctx: &RequestContext, attachment_id: &str) -> StoreResult<Option<Vec<u8>>> {
        match self.state().attachment_data.get(attachment_id) {
            Some((owner, bytes)) if *owner == ctx.owner_id => Ok(Some(bytes.clone())),
            _ => Ok(None),
        }
    }

    async fn attachment_bytes(&self, ctx: &RequestContext, except: Option<&str>) -> StoreResult<u64> {
        let st = self.state();
        let owned =
            st.attachment_data.iter().filter(|(id, (owner, _))| *owner == ctx.owner_id && Some(id.as_str()) != except);
        Ok(owned.map(|(_, (_, bytes))| bytes.len() as u64).sum())
    }

    async fn record_usage(&self, ctx: &RequestContext, usage: &TurnUsage) -> StoreResult<()> {
        self.state().usage.push((ctx.owner_id.clone(), usage.clone()));
        Ok(())
    }

    async fn usage_by_model(&self, ctx: &RequestContext, thread_id: Option<&str>) -> StoreResult<Vec<ModelUsage>> {
        let st = self.state();
        let mut groups: BTreeMap<(String, String), ModelUsage> = BTreeMap::new();
        let records =
            st.usage.iter().filter(|(owner, u)| *owner == ctx.owner_id && thread_id.is_none_or(|t| u.thread_id == t));
        for (_, u) in records {
            let group = groups.entry((u.provider.clone(), u.model.clone())).or_insert_with(|| ModelUsage {
                provider: u.provider.clone(),
                model: u.model.clone(),
                totals: Default::default(),
            });
            group.totals.add(&u.tokens);
        }
        Ok(groups.into_values().collect())
    }

    async fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Versioned>> {
        Ok(self.state().kv.get(&(namespace.to_string(), key.to_string())).cloned())
    }

    async fn kv_compare_and_set(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<i64>,
        value: &Value,
    ) -> StoreResult<bool> {
        let mut st = self.state();
        let k = (namespace.to_string(), key.to_string());
        let current = st.kv.get(&k).map(|v| v.version);
        if current != expected {
            return Ok(false);
        }
        let version = current.unwrap_or(0) + 1;
        st.kv.insert(k, Versioned { value: value.clone(), version });
        Ok(true)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        self.state().kv.remove(&(namespace.to_string(), key.to_string()));
        Ok(())
    }

    async fn lock_thread(&self, thread_id: &str, wait: Duration) -> StoreResult<ThreadLock> {
        Ok(ThreadLock::new(self.locks.lock(thread_id, wait).await?))
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "memory://".to_string()
    }
}
