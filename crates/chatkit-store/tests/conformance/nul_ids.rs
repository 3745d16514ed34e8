//! Ids, cursors and keys containing NUL: PostgreSQL cannot store them, so every store must treat
//! them as ids that simply do not exist (clients can send them; the answer is a plain 404, never a
//! database error).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chatkit::store::{Store, StoreError, ThreadChange};
use chatkit::types::Order;
use serde_json::json;

use super::checks::{ctx, msg, thread};

pub(crate) async fn ids_with_nul_do_not_exist(store: Arc<dyn Store>) {
    let c = ctx("alice");
    store.save_thread(&c, &thread("thr", 1)).await.unwrap();
    store.add_thread_item(&c, "thr", &msg("thr", "m1", 1, "hello")).await.unwrap();
    store.add_thread_item(&c, "thr", &msg("thr", "m2", 2, "again")).await.unwrap();
    assert!(store.kv_compare_and_set("ns", "k", None, &json!(1)).await.unwrap());

    for bad in ["x\0", "thr\0", "\0", "t\0hr"] {
        let is_missing_thread =
            |r: Result<_, StoreError>| matches!(r, Err(StoreError::ThreadNotFound(id)) if id == bad);
        assert!(is_missing_thread(store.load_thread(&c, bad).await.map(|_| ())), "{bad:?}");
        assert!(is_missing_thread(store.delete_thread(&c, bad).await), "{bad:?}");
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let change: ThreadChange = Box::new(move |_| {
            flag.store(true, Ordering::SeqCst);
            true
        });
        assert!(is_missing_thread(store.update_thread(&c, bad, change).await.map(|_| ())), "{bad:?}");
        assert!(!ran.load(Ordering::SeqCst));
        assert!(is_missing_thread(store.add_thread_item(&c, bad, &msg(bad, "m9", 9, "x")).await), "{bad:?}");

        // Unknown threads and cursors give empty pages, in both orders.
        for order in [Order::Asc, Order::Desc] {
            let page = store.load_threads(&c, 10, Some(bad), order).await.unwrap();
            assert_eq!((page.data.len(), page.has_more, page.after), (0, false, None), "{bad:?}");
            let page = store.load_thread_items(&c, bad, None, 10, order).await.unwrap();
            assert_eq!((page.data.len(), page.has_more, page.after), (0, false, None), "{bad:?}");
            let page = store.load_thread_items(&c, "thr", Some(bad), 10, order).await.unwrap();
            assert_eq!((page.data.len(), page.has_more, page.after), (0, false, None), "{bad:?}");
        }

        // Items: not found in a real thread or in a missing one; deleting one deletes nothing.
        let is_missing_item =
            |r: Result<_, StoreError>| matches!(r, Err(StoreError::ItemNotFound { ref item_id, .. }) if item_id == bad);
        assert!(is_missing_item(store.load_item(&c, "thr", bad).await.map(|_| ())), "{bad:?}");
        assert!(is_missing_item(store.delete_items_after(&c, "thr", bad).await.map(|_| ())), "{bad:?}");
        assert!(matches!(store.load_item(&c, bad, "m1").await, Err(StoreError::ItemNotFound { .. })), "{bad:?}");
        assert!(matches!(store.delete_items_after(&c, bad, "m1").await, Err(StoreError::ItemNotFound { .. })));
        store.delete_thread_item(&c, "thr", bad).await.unwrap();
        store.delete_thread_item(&c, bad, "m1").await.unwrap();

        // Attachments: not found, no bytes, deleting is a no-op.
        assert!(matches!(store.load_attachment(&c, bad).await, Err(StoreError::AttachmentNotFound(id)) if id == bad));
        assert_eq!(store.load_attachment_data(&c, bad).await.unwrap(), None);
        store.delete_attachment(&c, bad).await.unwrap();

        // State keys and namespaces: absent, so no version matches; deleting is a no-op.
        assert_eq!(store.kv_get("ns", bad).await.unwrap(), None);
        assert_eq!(store.kv_get(bad, "k").await.unwrap(), None);
        assert!(!store.kv_compare_and_set("ns", bad, Some(1), &json!(2)).await.unwrap());
        store.kv_delete("ns", bad).await.unwrap();
        store.kv_delete(bad, "k").await.unwrap();
    }

    // An owner id with NUL owns nothing.
    let odd = ctx("ali\0ce");
    assert!(matches!(store.load_thread(&odd, "thr").await, Err(StoreError::ThreadNotFound(_))));
    assert!(store.load_threads(&odd, 10, None, Order::Desc).await.unwrap().data.is_empty());
    assert!(store.load_thread_items(&odd, "thr", None, 10, Order::Asc).await.unwrap().data.is_empty());
    assert!(matches!(store.load_item(&odd, "thr", "m1").await, Err(StoreError::ItemNotFound { .. })));
    assert!(matches!(store.delete_thread(&odd, "thr").await, Err(StoreError::ThreadNotFound(_))));

    // Nothing real was touched.
    let page = store.load_thread_items(&c, "thr", None, 10, Order::Asc).await.unwrap();
    assert_eq!(page.data.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
    assert_eq!(store.kv_get("ns", "k").await.unwrap().map(|v| v.value), Some(json!(1)));
    assert_eq!(store.load_thread(&c, "thr").await.unwrap().id, "thr");
}
