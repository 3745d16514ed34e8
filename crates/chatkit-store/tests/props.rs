//! Property test of store pagination: after any sequence of thread and item appends, re-saves
//! (upserts) and deletes — with colliding and out-of-order `created_at` values — paging with any limit
//! lists exactly the live ids, in `(created_at, insertion)` order ascending and its reverse
//! descending, with consistent `has_more`/`after` cursors. Runs against `MemoryStore` and a fresh
//! SQLite file per case (`open_store("sqlite://…")`).
//!
//! Each property runs a small number of cases so CI stays fast; run it longer with
//! `PROPTEST_CASES=100000 cargo test --release -p chatkit-store --test props`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use chatkit::store::MemoryStore;
use chatkit::types::{
    AssistantMessageContent, AssistantMessageItem, ItemKind, Order, Page, ThreadItem, ThreadMetadata, Timestamp,
};
use chatkit::{RequestContext, Store};
use chatkit_store::{StoreOptions, open_store};
use proptest::prelude::*;

/// Cases per property: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A shared current-thread runtime for the async store calls.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime"))
}

/// One store operation; indexes pick among the live threads/items (modulo their count).
#[derive(Debug, Clone)]
enum Op {
    NewThread { at: u8 },
    ResaveThread { thread: usize },
    DeleteThread { thread: usize },
    NewItem { thread: usize, at: u8 },
    ResaveItem { thread: usize, item: usize },
    DeleteItem { thread: usize, item: usize },
}

fn op() -> impl Strategy<Value = Op> {
    // Few distinct times so that equal `created_at` values (ties) are common.
    let at = 0u8..6;
    let ix = 0usize..64;
    prop_oneof![
        3 => at.clone().prop_map(|at| Op::NewThread { at }),
        1 => ix.clone().prop_map(|thread| Op::ResaveThread { thread }),
        1 => ix.clone().prop_map(|thread| Op::DeleteThread { thread }),
        5 => (ix.clone(), at).prop_map(|(thread, at)| Op::NewItem { thread, at }),
        1 => (ix.clone(), ix.clone()).prop_map(|(thread, item)| Op::ResaveItem { thread, item }),
        2 => (ix.clone(), ix).prop_map(|(thread, item)| Op::DeleteItem { thread, item }),
    ]
}

/// A live entry of the model: id, `created_at` and the insertion sequence that positions it.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    at: Timestamp,
    seq: u64,
    text: String,
}

/// What the store should contain.
#[derive(Debug, Default)]
struct Model {
    seq: u64,
    threads: Vec<Entry>,
    items: HashMap<String, Vec<Entry>>,
}

impl Model {
    fn ordered(entries: &[Entry]) -> Vec<String> {
        let mut v = entries.to_vec();
        v.sort_by_key(|e| (e.at, e.seq));
        v.into_iter().map(|e| e.id).collect()
    }
}

fn time(at: u8) -> Timestamp {
    Timestamp::from_micros(1_800_000_000_000_000 + i64::from(at) * 1_000_000).unwrap()
}

fn thread_meta(e: &Entry, title: Option<String>) -> ThreadMetadata {
    let mut t = ThreadMetadata::new(e.id.clone());
    t.created_at = e.at;
    t.title = title;
    t
}

fn item(thread_id: &str, e: &Entry) -> ThreadItem {
    let mut it = ThreadItem::new(
        e.id.clone(),
        thread_id,
        ItemKind::AssistantMessage(AssistantMessageItem { content: vec![AssistantMessageContent::text(&e.text)] }),
    );
    it.created_at = e.at;
    it
}

/// Applies `ops` to the store and the model.
async fn apply(store: &dyn Store, ctx: &RequestContext, ops: &[Op]) -> Model {
    let mut m = Model::default();
    for (n, op) in ops.iter().enumerate() {
        m.seq += 1;
        match *op {
            Op::NewThread { at } => {
                let e = Entry { id: format!("thr_{n:04}"), at: time(at), seq: m.seq, text: String::new() };
                store.save_thread(ctx, &thread_meta(&e, None)).await.unwrap();
                m.items.insert(e.id.clone(), Vec::new());
                m.threads.push(e);
            }
            Op::ResaveThread { thread } if !m.threads.is_empty() => {
                let e = &m.threads[thread % m.threads.len()];
                store.save_thread(ctx, &thread_meta(e, Some(format!("title {n}")))).await.unwrap();
            }
            Op::DeleteThread { thread } if !m.threads.is_empty() => {
                let e = m.threads.remove(thread % m.threads.len());
                store.delete_thread(ctx, &e.id).await.unwrap();
                m.items.remove(&e.id);
            }
            Op::NewItem { thread, at } if !m.threads.is_empty() => {
                let tid = m.threads[thread % m.threads.len()].id.clone();
                let e = Entry { id: format!("msg_{n:04}"), at: time(at), seq: m.seq, text: format!("text {n}") };
                store.add_thread_item(ctx, &tid, &item(&tid, &e)).await.unwrap();
                m.items.entry(tid).or_default().push(e);
            }
            Op::ResaveItem { thread, item: i } if !m.threads.is_empty() => {
                let tid = m.threads[thread % m.threads.len()].id.clone();
                let items = m.items.entry(tid.clone()).or_default();
                if !items.is_empty() {
                    let len = items.len();
                    let e = &mut items[i % len];
                    e.text = format!("resaved {n}");
                    // Upserts keep the position; alternate both entry points.
                    if n % 2 == 0 {
                        store.add_thread_item(ctx, &tid, &item(&tid, e)).await.unwrap();
                    } else {
                        store.save_item(ctx, &tid, &item(&tid, e)).await.unwrap();
                    }
                }
            }
            Op::DeleteItem { thread, item: i } if !m.threads.is_empty() => {
                let tid = m.threads[thread % m.threads.len()].id.clone();
                let items = m.items.entry(tid.clone()).or_default();
                if !items.is_empty() {
                    let e = items.remove(i % items.len());
                    store.delete_thread_item(ctx, &tid, &e.id).await.unwrap();
                }
            }
            _ => {}
        }
    }
    m
}

/// Pages through a list with `limit`, checking the page invariants; returns the ids in order.
async fn page_all<F, Fut, T>(
    limit: usize,
    total: usize,
    id: impl Fn(&T) -> String,
    mut load: F,
) -> Result<Vec<String>, TestCaseError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Page<T>>,
{
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = load(after.clone()).await;
        prop_assert!(page.data.len() <= limit, "page of {} > limit {limit}", page.data.len());
        out.extend(page.data.iter().map(&id));
        prop_assert_eq!(page.has_more, out.len() < total, "has_more wrong after {} of {}", out.len(), total);
        if !page.has_more {
            prop_assert_eq!(page.after, None);
            return Ok(out);
        }
        prop_assert_eq!(page.data.len(), limit, "short page with has_more");
        let last = page.data.last().map(&id);
        prop_assert_eq!(&page.after, &last, "after is not the last id");
        prop_assert!(out.len() <= total + limit, "pagination does not end");
        after = page.after;
    }
}

async fn check(store: &dyn Store, ops: &[Op], limit: usize) -> Result<(), TestCaseError> {
    let ctx = RequestContext::default();
    let model = apply(store, &ctx, ops).await;
    let expected = Model::ordered(&model.threads);
    let n = expected.len();
    for order in [Order::Asc, Order::Desc] {
        let got = page_all(
            limit,
            n,
            |t: &ThreadMetadata| t.id.clone(),
            |after| {
                let ctx = ctx.clone();
                async move { store.load_threads(&ctx, limit, after.as_deref(), order).await.unwrap() }
            },
        )
        .await?;
        let mut want = expected.clone();
        if order == Order::Desc {
            want.reverse();
        }
        prop_assert_eq!(got, want, "threads {:?} limit {}", order, limit);
    }
    for (tid, entries) in &model.items {
        let expected = Model::ordered(entries);
        let n = expected.len();
        for order in [Order::Asc, Order::Desc] {
            let got = page_all(
                limit,
                n,
                |i: &ThreadItem| i.id.clone(),
                |after| {
                    let ctx = ctx.clone();
                    async move { store.load_thread_items(&ctx, tid, after.as_deref(), limit, order).await.unwrap() }
                },
            )
            .await?;
            let mut want = expected.clone();
            if order == Order::Desc {
                want.reverse();
            }
            prop_assert_eq!(got, want, "items of {} {:?} limit {}", tid, order, limit);
        }
        // Re-saved items keep their position but carry the new content.
        let all = store.load_thread_items(&ctx, tid, None, n + 1, Order::Asc).await.unwrap();
        let texts: HashMap<&str, &str> = entries.iter().map(|e| (e.id.as_str(), e.text.as_str())).collect();
        for it in &all.data {
            prop_assert_eq!(&it.thread_id, tid);
            prop_assert_eq!(
                it,
                &item(
                    tid,
                    &Entry { id: it.id.clone(), at: it.created_at, seq: 0, text: texts[it.id.as_str()].to_string() }
                )
            );
        }
    }
    Ok(())
}

static DB_SEQ: AtomicUsize = AtomicUsize::new(0);

async fn sqlite_store() -> (Arc<dyn Store>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "chatkit-store-props-{}-{}",
        std::process::id(),
        DB_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("props.db").display());
    let store = open_store(&url, StoreOptions { max_connections: 2, ..StoreOptions::default() }).await.unwrap();
    (store, dir)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_pages_consistently(ops in prop::collection::vec(op(), 0..40), limit in 1usize..8) {
        let store = MemoryStore::new();
        rt().block_on(check(&store, &ops, limit))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_store_pages_consistently(ops in prop::collection::vec(op(), 0..40), limit in 1usize..8) {
        rt().block_on(async {
            let (store, dir) = sqlite_store().await;
            let result = check(store.as_ref(), &ops, limit).await;
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
            result
        })?;
    }
}

#[test]
fn an_unknown_cursor_gives_an_empty_page_in_both_stores() {
    rt().block_on(async {
        let ctx = RequestContext::default();
        let (sqlite, dir) = sqlite_store().await;
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for store in [&memory, &sqlite] {
            let ops = [Op::NewThread { at: 1 }, Op::NewItem { thread: 0, at: 1 }, Op::NewItem { thread: 0, at: 0 }];
            let m = apply(store.as_ref(), &ctx, &ops).await;
            assert_eq!(Model::ordered(&m.items["thr_0000"]), vec!["msg_0002", "msg_0001"]);
            for order in [Order::Asc, Order::Desc] {
                let page = store.load_threads(&ctx, 5, Some("thr_gone"), order).await.unwrap();
                assert_eq!((page.data.len(), page.has_more, page.after), (0, false, None), "{}", store.describe());
                let page = store.load_thread_items(&ctx, "thr_0000", Some("msg_gone"), 5, order).await.unwrap();
                assert_eq!((page.data.len(), page.has_more, page.after), (0, false, None), "{}", store.describe());
            }
        }
        drop(sqlite);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
