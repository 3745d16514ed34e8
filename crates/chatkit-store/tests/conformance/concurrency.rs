//! Conformance checks about concurrency, size and randomized sequences.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chatkit::store::{Store, StoreError, Versioned};
use chatkit::types::Order;
use serde_json::json;

use super::checks::{attachment, ctx, msg, text_of, thread, walk_items};

pub(crate) async fn kv_compare_and_set(store: Arc<dyn Store>) {
    assert_eq!(store.kv_get("airline", "thr_1").await.unwrap(), None);
    assert!(!store.kv_compare_and_set("airline", "thr_1", Some(1), &json!({"a": 1})).await.unwrap());
    assert!(store.kv_compare_and_set("airline", "thr_1", None, &json!({"a": 1})).await.unwrap());
    assert!(!store.kv_compare_and_set("airline", "thr_1", None, &json!({"a": 2})).await.unwrap());
    assert_eq!(store.kv_get("airline", "thr_1").await.unwrap(), Some(Versioned { value: json!({"a": 1}), version: 1 }));
    assert!(store.kv_compare_and_set("airline", "thr_1", Some(1), &json!({"a": 3})).await.unwrap());
    assert!(!store.kv_compare_and_set("airline", "thr_1", Some(1), &json!({"a": 4})).await.unwrap());
    assert_eq!(store.kv_get("airline", "thr_1").await.unwrap(), Some(Versioned { value: json!({"a": 3}), version: 2 }));
    assert_eq!(store.kv_get("other", "thr_1").await.unwrap(), None);
    store.kv_delete("airline", "thr_1").await.unwrap();
    store.kv_delete("airline", "thr_1").await.unwrap();
    assert_eq!(store.kv_get("airline", "thr_1").await.unwrap(), None);

    // 20 concurrent increments with CAS retry: none lost.
    assert!(store.kv_compare_and_set("n", "counter", None, &json!(0)).await.unwrap());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                loop {
                    let cur = s.kv_get("n", "counter").await.unwrap().unwrap();
                    let next = json!(cur.value.as_i64().unwrap() + 1);
                    if s.kv_compare_and_set("n", "counter", Some(cur.version), &next).await.unwrap() {
                        return;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.kv_get("n", "counter").await.unwrap(), Some(Versioned { value: json!(20), version: 21 }));
}

pub(crate) async fn concurrent_appends(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (s, c) = (store.clone(), c.clone());
            tokio::spawn(async move {
                s.add_thread_item(&c, "thr", &msg("thr", &format!("m{i:02}"), 7, "same time")).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = walk_items(&*store, &c, "thr", 100, Order::Asc).await;
    assert_eq!(all.len(), 50);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 50);
    assert_eq!(walk_items(&*store, &c, "thr", 7, Order::Asc).await, all);
    let mut rev = walk_items(&*store, &c, "thr", 9, Order::Desc).await;
    rev.reverse();
    assert_eq!(rev, all);
}

pub(crate) async fn large_items(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    let big = "é🙂x\"\\\n".repeat(1024 * 1024 / 10 + 1);
    assert!(big.len() >= 1024 * 1024);
    let item = msg("thr", "big", 1, &big);
    store.add_thread_item(&c, "thr", &item).await.unwrap();
    assert_eq!(store.load_item(&c, "thr", "big").await.unwrap(), item);
    let page = store.load_thread_items(&c, "thr", None, 5, Order::Desc).await.unwrap();
    assert_eq!(page.data, vec![item]);
    let bytes = vec![0xA5u8; 1024 * 1024 + 3];
    store.create_attachment(&c, &attachment("atc_big", None), bytes.len() as u64).await.unwrap();
    store.save_attachment_data(&c, "atc_big", &bytes).await.unwrap();
    assert_eq!(store.load_attachment_data(&c, "atc_big").await.unwrap(), Some(bytes));
}

pub(crate) async fn lock_thread(store: Arc<dyn Store>) {
    let held = store.lock_thread("thr_1", Duration::from_secs(1)).await.unwrap();
    let start = Instant::now();
    let err = store.lock_thread("thr_1", Duration::from_millis(150)).await.unwrap_err();
    assert!(matches!(err, StoreError::LockTimeout(ref t) if t == "thr_1"), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(140), "{:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    let other = store.lock_thread("thr_2", Duration::from_millis(500)).await.unwrap();
    drop(held);
    let again = store.lock_thread("thr_1", Duration::from_secs(2)).await.unwrap();
    drop((again, other));

    // Mutual exclusion among 10 contenders.
    let busy = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (s, busy, done) = (store.clone(), busy.clone(), done.clone());
            tokio::spawn(async move {
                let _g = s.lock_thread("thr_x", Duration::from_secs(10)).await.unwrap();
                assert!(!busy.swap(true, Ordering::SeqCst), "two holders at once");
                tokio::time::sleep(Duration::from_millis(5)).await;
                busy.store(false, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 10);

    // A cancelled waiter leaves nothing behind.
    let held = store.lock_thread("thr_c", Duration::from_secs(1)).await.unwrap();
    let waiter = store.lock_thread("thr_c", Duration::from_secs(10));
    assert!(tokio::time::timeout(Duration::from_millis(50), waiter).await.is_err());
    drop(held);
    let g = store.lock_thread("thr_c", Duration::from_secs(2)).await.unwrap();
    drop(g);
}

/// xorshift64*: a tiny deterministic generator for the randomized check.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Random adds/upserts/deletes/truncations compared with a simple model after every step.
pub(crate) async fn randomized_sequence(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    // Model: (created_at, insertion counter, id, text), kept sorted.
    let mut model: Vec<(i64, u64, String, String)> = Vec::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for step in 0..120u64 {
        let op = rng.below(10);
        if op < 5 || model.is_empty() {
            let (id, at) = (format!("i{step}"), rng.below(4) as i64);
            store.add_thread_item(&c, "thr", &msg("thr", &id, at, &id)).await.unwrap();
            model.push((at, step, id.clone(), id));
        } else if op < 7 {
            let k = rng.below(model.len() as u64) as usize;
            let entry = &mut model[k];
            entry.3 = format!("v{step}");
            let item = msg("thr", &entry.2, entry.0, &entry.3);
            store.save_item(&c, "thr", &item).await.unwrap();
        } else if op < 9 {
            let k = rng.below(model.len() as u64) as usize;
            let id = model.remove(k).2;
            store.delete_thread_item(&c, "thr", &id).await.unwrap();
        } else {
            let k = rng.below(model.len() as u64) as usize;
            let n = store.delete_items_after(&c, "thr", &model[k].2).await.unwrap();
            assert_eq!(n as usize, model.len() - k - 1);
            model.truncate(k + 1);
        }
        model.sort();
        let expected: Vec<String> = model.iter().map(|e| e.2.clone()).collect();
        let limit = 1 + rng.below(6) as usize;
        let order = if rng.below(2) == 0 { Order::Asc } else { Order::Desc };
        let mut got = walk_items(&*store, &c, "thr", limit, order).await;
        if order == Order::Desc {
            got.reverse();
        }
        assert_eq!(got, expected, "step {step} limit {limit} {order:?}");
    }
    let page = store.load_thread_items(&c, "thr", None, 1000, Order::Asc).await.unwrap();
    let texts: Vec<String> = page.data.iter().map(text_of).collect();
    assert_eq!(texts, model.iter().map(|e| e.3.clone()).collect::<Vec<_>>());
}
