//! Pruning the tombstones deleted threads and items leave (their positions, for paging cursors).

use std::sync::Arc;
use std::time::Duration;

use chatkit::store::Store;
use chatkit::types::Order;

use super::checks::{ctx, msg, thread};

pub(crate) async fn tombstones_are_pruned_after_the_retention(store: Arc<dyn Store>) {
    let c = ctx("alice");
    for (k, id) in ["t1", "t2", "t3"].into_iter().enumerate() {
        store.save_thread(&c, &thread(id, k as i64 + 1)).await.unwrap();
    }
    for (k, id) in ["a", "b", "c"].into_iter().enumerate() {
        store.add_thread_item(&c, "t1", &msg("t1", id, k as i64 + 1, id)).await.unwrap();
    }
    store.delete_thread_item(&c, "t1", "b").await.unwrap();
    store.delete_thread(&c, "t2").await.unwrap();
    let items_after = |cursor: &'static str| {
        let store = store.clone();
        let c = c.clone();
        async move {
            let page = store.load_thread_items(&c, "t1", Some(cursor), 10, Order::Asc).await.unwrap();
            page.data.into_iter().map(|i| i.id).collect::<Vec<_>>()
        }
    };
    let threads_after = |cursor: &'static str| {
        let store = store.clone();
        let c = c.clone();
        async move {
            let page = store.load_threads(&c, 10, Some(cursor), Order::Asc).await.unwrap();
            page.data.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };

    // Within the retention, nothing is pruned and the deleted cursors keep their place.
    assert_eq!(store.prune_tombstones(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(items_after("b").await, ["c"]);
    assert_eq!(threads_after("t2").await, ["t3"]);

    // Past it, both tombstones go, and their cursors page like cursors that never existed.
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(store.prune_tombstones(Duration::from_millis(10)).await.unwrap(), 2);
    assert!(items_after("b").await.is_empty());
    assert!(threads_after("t2").await.is_empty());
    assert_eq!(store.prune_tombstones(Duration::ZERO).await.unwrap(), 0);

    // Live rows are untouched: their cursors, and the listings themselves.
    assert_eq!(items_after("a").await, ["c"]);
    assert_eq!(threads_after("t1").await, ["t3"]);
    let all = store.load_thread_items(&c, "t1", None, 10, Order::Asc).await.unwrap();
    assert_eq!(all.data.len(), 2);

    // A tombstone left after a pruning is kept until it is old in turn.
    store.delete_thread_item(&c, "t1", "a").await.unwrap();
    assert_eq!(store.prune_tombstones(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(items_after("a").await, ["c"]);
}
