//! The backend-independent checks of the store conformance suite: each takes a fresh store.

use std::sync::Arc;

use chatkit::store::{RequestContext, Store, StoreError};
use chatkit::types::{
    Attachment, AttachmentKind, HiddenContextItem, ItemKind, Order, Page, ThreadItem, ThreadMetadata, Timestamp,
    UserMessageContent, UserMessageItem,
};
use serde_json::json;

pub(crate) fn ctx(owner: &str) -> RequestContext {
    RequestContext { owner_id: owner.into(), base_url: "http://localhost:8000".into() }
}

pub(crate) fn ts(micros: i64) -> Timestamp {
    Timestamp::from_micros(1_790_000_000_000_000 + micros).unwrap()
}

pub(crate) fn thread(id: &str, micros: i64) -> ThreadMetadata {
    let mut t = ThreadMetadata::new(id);
    t.created_at = ts(micros);
    t
}

pub(crate) fn msg(thread_id: &str, id: &str, micros: i64, text: &str) -> ThreadItem {
    let kind = ItemKind::UserMessage(UserMessageItem {
        content: vec![UserMessageContent::InputText { text: text.into() }],
        attachments: vec![],
        quoted_text: None,
        inference_options: Default::default(),
    });
    ThreadItem { id: id.into(), thread_id: thread_id.into(), created_at: ts(micros), kind }
}

pub(crate) fn hidden(thread_id: &str, id: &str, micros: i64) -> ThreadItem {
    let kind = ItemKind::HiddenContextItem(HiddenContextItem { content: json!("secret context") });
    ThreadItem { id: id.into(), thread_id: thread_id.into(), created_at: ts(micros), kind }
}

pub(crate) fn text_of(item: &ThreadItem) -> String {
    match &item.kind {
        ItemKind::UserMessage(m) => m.text(),
        other => format!(
            "<{}>",
            match other {
                ItemKind::HiddenContextItem(_) => "hidden",
                _ => "other",
            }
        ),
    }
}

fn thread_ids(page: &Page<ThreadMetadata>) -> Vec<String> {
    page.data.iter().map(|t| t.id.clone()).collect()
}

fn item_ids(page: &Page<ThreadItem>) -> Vec<String> {
    page.data.iter().map(|i| i.id.clone()).collect()
}

/// Follows `after` cursors with `limit` and returns every id seen, in order.
pub(crate) async fn walk_items(
    store: &dyn Store,
    c: &RequestContext,
    thread: &str,
    limit: usize,
    order: Order,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.load_thread_items(c, thread, after.as_deref(), limit, order).await.unwrap();
        assert!(page.data.len() <= limit);
        out.extend(item_ids(&page));
        if !page.has_more {
            assert_eq!(page.after, None);
            return out;
        }
        assert_eq!(page.after.as_deref(), page.data.last().map(|i| i.id.as_str()));
        after = page.after;
    }
}

pub(crate) async fn thread_crud_and_owner_isolation(store: Arc<dyn Store>) {
    let (alice, bob) = (ctx("alice"), ctx("bob"));
    let mut t = thread("thr_a", 10);
    t.metadata.insert("k".into(), json!({"nested": [1, 2]}));
    store.save_thread(&alice, &t).await.unwrap();
    assert_eq!(store.load_thread(&alice, "thr_a").await.unwrap(), t);

    // Another owner sees nothing and cannot overwrite or delete it.
    assert!(matches!(store.load_thread(&bob, "thr_a").await, Err(StoreError::ThreadNotFound(id)) if id == "thr_a"));
    let mut stolen = t.clone();
    stolen.title = Some("bob was here".into());
    assert!(matches!(store.save_thread(&bob, &stolen).await, Err(StoreError::ThreadNotFound(_))));
    assert!(matches!(store.delete_thread(&bob, "thr_a").await, Err(StoreError::ThreadNotFound(_))));
    assert!(store.load_threads(&bob, 10, None, Order::Desc).await.unwrap().data.is_empty());
    assert!(matches!(
        store.add_thread_item(&bob, "thr_a", &msg("thr_a", "m1", 1, "x")).await,
        Err(StoreError::ThreadNotFound(_))
    ));

    // Update keeps one row.
    t.title = Some("Renamed".into());
    store.save_thread(&alice, &t).await.unwrap();
    assert_eq!(store.load_thread(&alice, "thr_a").await.unwrap().title.as_deref(), Some("Renamed"));
    let page = store.load_threads(&alice, 10, None, Order::Desc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more, page.after), (1, false, None));

    // Items of alice's thread are invisible to bob.
    store.add_thread_item(&alice, "thr_a", &msg("thr_a", "m1", 1, "hi")).await.unwrap();
    assert!(store.load_thread_items(&bob, "thr_a", None, 10, Order::Asc).await.unwrap().data.is_empty());
    assert!(matches!(store.load_item(&bob, "thr_a", "m1").await, Err(StoreError::ItemNotFound { .. })));
    store.delete_thread_item(&bob, "thr_a", "m1").await.unwrap();
    assert_eq!(store.load_item(&alice, "thr_a", "m1").await.unwrap().id, "m1");

    store.delete_thread(&alice, "thr_a").await.unwrap();
    assert!(matches!(store.load_thread(&alice, "thr_a").await, Err(StoreError::ThreadNotFound(_))));
    assert!(matches!(store.delete_thread(&alice, "thr_a").await, Err(StoreError::ThreadNotFound(_))));
}

pub(crate) async fn create_thread_with_first_item(store: Arc<dyn Store>) {
    let (alice, bob) = (ctx("alice"), ctx("bob"));
    let t = thread("thr_new", 10);
    let first = msg("thr_new", "m1", 11, "hello");
    store.create_thread_with_item(&alice, &t, &first).await.unwrap();
    assert_eq!(store.load_thread(&alice, "thr_new").await.unwrap(), t);
    let items = store.load_thread_items(&alice, "thr_new", None, 10, Order::Asc).await.unwrap();
    assert_eq!(items.data, vec![first.clone()]);
    // A later item follows the first one; the thread is an ordinary thread.
    store.add_thread_item(&alice, "thr_new", &msg("thr_new", "m2", 12, "again")).await.unwrap();
    let ids: Vec<_> = store
        .load_thread_items(&alice, "thr_new", None, 10, Order::Asc)
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["m1", "m2"]);
    // Another owner's thread id cannot be taken over, and nothing of the attempt is kept.
    let intruder = msg("thr_new", "m3", 13, "intruder");
    assert!(matches!(
        store.create_thread_with_item(&bob, &t, &intruder).await,
        Err(StoreError::ThreadNotFound(id)) if id == "thr_new"
    ));
    assert!(matches!(store.load_item(&alice, "thr_new", "m3").await, Err(StoreError::ItemNotFound { .. })));
    assert!(store.load_threads(&bob, 10, None, Order::Desc).await.unwrap().data.is_empty());
}

pub(crate) async fn update_thread_applies_changes_to_the_stored_thread(store: Arc<dyn Store>) {
    let (alice, bob) = (ctx("alice"), ctx("bob"));
    let mut t = thread("thr_u", 10);
    store.save_thread(&alice, &t).await.unwrap();
    let set_if_untitled = |title: &'static str| -> chatkit::store::ThreadChange {
        Box::new(move |t| {
            if t.title.is_some() {
                return false;
            }
            t.title = Some(title.into());
            true
        })
    };
    let (stored, changed) = store.update_thread(&alice, "thr_u", set_if_untitled("First")).await.unwrap();
    assert!(changed);
    assert_eq!(stored.title.as_deref(), Some("First"));
    t.title = Some("First".into());
    assert_eq!(store.load_thread(&alice, "thr_u").await.unwrap(), t);
    // The change sees the stored title and declines: nothing is written.
    let (stored, changed) = store.update_thread(&alice, "thr_u", set_if_untitled("Second")).await.unwrap();
    assert!(!changed);
    assert_eq!(stored, t);
    assert_eq!(store.load_thread(&alice, "thr_u").await.unwrap().title.as_deref(), Some("First"));
    // Missing or foreign threads are not found, and the change does not run.
    for (who, id) in [(&bob, "thr_u"), (&alice, "thr_missing")] {
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let change: chatkit::store::ThreadChange = Box::new(move |_| {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            true
        });
        assert!(
            matches!(store.update_thread(who, id, change).await, Err(StoreError::ThreadNotFound(got)) if got == id)
        );
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
    // Concurrent appends of a title word: with an atomic update none is lost.
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                let change: chatkit::store::ThreadChange = Box::new(move |t| {
                    let title = t.title.get_or_insert_with(String::new);
                    title.push_str(&format!(" {n}"));
                    true
                });
                store.update_thread(&alice, "thr_u", change).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let title = store.load_thread(&alice, "thr_u").await.unwrap().title.unwrap();
    let mut words: Vec<_> = title.split_whitespace().skip(1).collect();
    words.sort();
    assert_eq!(words, ["0", "1", "2", "3", "4", "5", "6", "7"], "{title}");
}

pub(crate) async fn thread_pagination(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    // created_at: t1=10, t2=20, t3=20 (tie, inserted later), t4=5 (inserted last, oldest)
    for (id, at) in [("t1", 10), ("t2", 20), ("t3", 20), ("t4", 5)] {
        store.save_thread(&c, &thread(id, at)).await.unwrap();
    }
    store.save_thread(&ctx("other"), &thread("t9", 15)).await.unwrap();
    let all = store.load_threads(&c, 10, None, Order::Asc).await.unwrap();
    assert_eq!(thread_ids(&all), ["t4", "t1", "t2", "t3"]);
    let p1 = store.load_threads(&c, 2, None, Order::Desc).await.unwrap();
    assert_eq!((thread_ids(&p1), p1.has_more, p1.after.as_deref()), (vec!["t3".into(), "t2".into()], true, Some("t2")));
    let p2 = store.load_threads(&c, 2, Some("t2"), Order::Desc).await.unwrap();
    assert_eq!((thread_ids(&p2), p2.has_more, p2.after), (vec!["t1".into(), "t4".into()], false, None));
    let p = store.load_threads(&c, 1, Some("t2"), Order::Asc).await.unwrap();
    assert_eq!((thread_ids(&p), p.has_more, p.after), (vec!["t3".into()], false, None));
    let p = store.load_threads(&c, 3, Some("t4"), Order::Asc).await.unwrap();
    assert_eq!((thread_ids(&p), p.has_more), (vec!["t1".into(), "t2".into(), "t3".into()], false));
    // Unknown cursor (or another owner's thread) → empty page.
    for cursor in ["nope", "t9"] {
        let p = store.load_threads(&c, 10, Some(cursor), Order::Desc).await.unwrap();
        assert_eq!((p.data.len(), p.has_more, p.after), (0, false, None));
    }
}

pub(crate) async fn item_pagination_with_ties_and_hidden(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    // Insertion order: a(100) b(200) h(200, hidden) d(200) e(50) f(300)
    let items = [
        msg("thr", "a", 100, "a"),
        msg("thr", "b", 200, "b"),
        hidden("thr", "h", 200),
        msg("thr", "d", 200, "d"),
        msg("thr", "e", 50, "e"),
        msg("thr", "f", 300, "f"),
    ];
    for it in &items {
        store.add_thread_item(&c, "thr", it).await.unwrap();
    }
    let asc = ["e", "a", "b", "h", "d", "f"];
    let desc: Vec<&str> = asc.iter().rev().copied().collect();
    for limit in 1..=7 {
        assert_eq!(walk_items(&*store, &c, "thr", limit, Order::Asc).await, asc, "asc limit {limit}");
        assert_eq!(walk_items(&*store, &c, "thr", limit, Order::Desc).await, desc, "desc limit {limit}");
    }
    let page = store.load_thread_items(&c, "thr", Some("b"), 2, Order::Asc).await.unwrap();
    assert_eq!(
        (item_ids(&page), page.has_more, page.after.as_deref()),
        (vec!["h".into(), "d".into()], true, Some("d"))
    );
    assert!(page.data[0].is_hidden());
    assert_eq!(page.data[0], items[2]);
    let page = store.load_thread_items(&c, "thr", Some("h"), 10, Order::Desc).await.unwrap();
    assert_eq!(item_ids(&page), ["b", "a", "e"]);
    let page = store.load_thread_items(&c, "thr", None, 6, Order::Asc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more, page.after), (6, false, None));
    let page = store.load_thread_items(&c, "thr", Some("zzz"), 6, Order::Asc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more), (0, false));
    let page = store.load_thread_items(&c, "no_such_thread", None, 6, Order::Asc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more), (0, false));
}

pub(crate) async fn upsert_keeps_position(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    for (id, at) in [("a", 1), ("b", 2), ("c", 3)] {
        store.add_thread_item(&c, "thr", &msg("thr", id, at, id)).await.unwrap();
    }
    // Same id again via add (duplicate `done`) and save, even with a later created_at.
    store.add_thread_item(&c, "thr", &msg("thr", "a", 1, "a2")).await.unwrap();
    store.save_item(&c, "thr", &msg("thr", "b", 99, "b2")).await.unwrap();
    let page = store.load_thread_items(&c, "thr", None, 10, Order::Asc).await.unwrap();
    assert_eq!(item_ids(&page), ["a", "b", "c"]);
    let texts: Vec<String> = page.data.iter().map(text_of).collect();
    assert_eq!(texts, ["a2", "b2", "c"]);
    assert_eq!(store.load_item(&c, "thr", "b").await.unwrap(), msg("thr", "b", 99, "b2"));
    // An item id is scoped to its thread.
    store.save_thread(&c, &thread("thr2", 1)).await.unwrap();
    store.save_item(&c, "thr2", &msg("thr2", "a", 5, "other")).await.unwrap();
    assert_eq!(text_of(&store.load_item(&c, "thr", "a").await.unwrap()), "a2");
    assert_eq!(text_of(&store.load_item(&c, "thr2", "a").await.unwrap()), "other");
    // Saving into a missing thread fails clearly.
    let err = store.save_item(&c, "missing", &msg("missing", "x", 1, "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::ThreadNotFound(ref t) if t == "missing"), "{err:?}");
}

pub(crate) async fn delete_thread_cascades(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    for t in ["keep", "gone"] {
        store.save_thread(&c, &thread(t, 0)).await.unwrap();
        for i in 0..3 {
            store.add_thread_item(&c, t, &msg(t, &format!("{t}_{i}"), i, "x")).await.unwrap();
        }
    }
    store.delete_thread(&c, "gone").await.unwrap();
    assert!(store.load_thread_items(&c, "gone", None, 10, Order::Asc).await.unwrap().data.is_empty());
    assert!(matches!(store.load_item(&c, "gone", "gone_0").await, Err(StoreError::ItemNotFound { .. })));
    assert_eq!(store.load_thread_items(&c, "keep", None, 10, Order::Asc).await.unwrap().data.len(), 3);
    // Recreating the thread starts empty.
    store.save_thread(&c, &thread("gone", 0)).await.unwrap();
    assert!(store.load_thread_items(&c, "gone", None, 10, Order::Asc).await.unwrap().data.is_empty());
}

pub(crate) async fn delete_items(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    for (id, at) in [("u1", 1), ("a1", 2), ("h1", 2), ("u2", 3), ("a2", 4)] {
        store.add_thread_item(&c, "thr", &msg("thr", id, at, id)).await.unwrap();
    }
    store.delete_thread_item(&c, "thr", "a2").await.unwrap();
    store.delete_thread_item(&c, "thr", "a2").await.unwrap(); // absent: no error
    assert!(matches!(store.load_item(&c, "thr", "a2").await, Err(StoreError::ItemNotFound { .. })));
    assert_eq!(store.delete_items_after(&c, "thr", "a1").await.unwrap(), 2);
    assert_eq!(walk_items(&*store, &c, "thr", 10, Order::Asc).await, ["u1", "a1"]);
    assert_eq!(store.delete_items_after(&c, "thr", "a1").await.unwrap(), 0);
    let err = store.delete_items_after(&c, "thr", "nope").await.unwrap_err();
    assert!(matches!(err, StoreError::ItemNotFound { ref item_id, .. } if item_id == "nope"), "{err:?}");
    assert_eq!(store.delete_items_after(&c, "thr", "u1").await.unwrap(), 1);
    assert_eq!(walk_items(&*store, &c, "thr", 10, Order::Desc).await, ["u1"]);
    assert!(store.delete_items_after(&ctx("bob"), "thr", "u1").await.is_err());
}

pub(crate) fn attachment(id: &str, thread_id: Option<&str>) -> Attachment {
    Attachment {
        id: id.into(),
        name: "photo.png".into(),
        mime_type: "image/png".into(),
        upload_descriptor: None,
        thread_id: thread_id.map(Into::into),
        kind: AttachmentKind::Image { preview_url: "http://localhost:8000/preview/x".into() },
    }
}

pub(crate) async fn attachments(store: Arc<dyn Store>) {
    let (c, bob) = (ctx("anonymous"), ctx("bob"));
    assert!(matches!(store.load_attachment(&c, "atc_1").await, Err(StoreError::AttachmentNotFound(_))));
    store.save_attachment(&c, &attachment("atc_1", None)).await.unwrap();
    assert_eq!(store.load_attachment_data(&c, "atc_1").await.unwrap(), None);
    store.save_attachment(&c, &attachment("atc_1", Some("thr"))).await.unwrap();
    assert_eq!(store.load_attachment(&c, "atc_1").await.unwrap(), attachment("atc_1", Some("thr")));
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.save_attachment_data(&c, "atc_1", &bytes).await.unwrap();
    assert_eq!(store.load_attachment_data(&c, "atc_1").await.unwrap().as_deref(), Some(&bytes[..]));
    // Bytes are written once.
    let err = store.save_attachment_data(&c, "atc_1", b"v2").await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyUploaded(ref id) if id == "atc_1"), "{err:?}");
    assert_eq!(store.load_attachment_data(&c, "atc_1").await.unwrap().as_deref(), Some(&bytes[..]));
    // Bytes of an attachment that does not exist are refused.
    let err = store.save_attachment_data(&c, "atc_none", b"x").await.unwrap_err();
    assert!(matches!(err, StoreError::AttachmentNotFound(_)), "{err:?}");
    assert_eq!(store.load_attachment_data(&c, "atc_none").await.unwrap(), None);
    // Other owners see nothing and cannot overwrite.
    assert!(matches!(store.load_attachment(&bob, "atc_1").await, Err(StoreError::AttachmentNotFound(_))));
    assert_eq!(store.load_attachment_data(&bob, "atc_1").await.unwrap(), None);
    assert!(store.save_attachment(&bob, &attachment("atc_1", None)).await.is_err());
    assert!(store.save_attachment_data(&bob, "atc_1", b"evil").await.is_err());
    store.delete_attachment(&bob, "atc_1").await.unwrap();
    assert!(store.load_attachment(&c, "atc_1").await.is_ok());
    store.delete_attachment(&c, "atc_1").await.unwrap();
    assert!(matches!(store.load_attachment(&c, "atc_1").await, Err(StoreError::AttachmentNotFound(_))));
    assert_eq!(store.load_attachment_data(&c, "atc_1").await.unwrap(), None);
    store.delete_attachment(&c, "atc_1").await.unwrap();
}

pub(crate) async fn attachment_bytes_per_owner(store: Arc<dyn Store>) {
    let (alice, bob) = (ctx("alice"), ctx("bob"));
    assert_eq!(store.attachment_bytes(&alice, None).await.unwrap(), 0);
    for (id, len) in [("atc_a1", 70_000usize), ("atc_a2", 3)] {
        store.save_attachment(&alice, &attachment(id, None)).await.unwrap();
        store.save_attachment_data(&alice, id, &vec![7u8; len]).await.unwrap();
    }
    // Metadata without bytes counts nothing.
    store.save_attachment(&alice, &attachment("atc_a3", None)).await.unwrap();
    store.save_attachment(&bob, &attachment("atc_b1", None)).await.unwrap();
    store.save_attachment_data(&bob, "atc_b1", &[1u8; 11]).await.unwrap();
    assert_eq!(store.attachment_bytes(&alice, None).await.unwrap(), 70_003);
    assert_eq!(store.attachment_bytes(&alice, Some("atc_a1")).await.unwrap(), 3);
    assert_eq!(store.attachment_bytes(&alice, Some("atc_missing")).await.unwrap(), 70_003);
    // Another owner's attachment is not left out: it was never counted.
    assert_eq!(store.attachment_bytes(&bob, Some("atc_a1")).await.unwrap(), 11);
    // A refused second upload counts nothing; deleted bytes stop counting.
    assert!(store.save_attachment_data(&alice, "atc_a1", b"v2").await.is_err());
    assert_eq!(store.attachment_bytes(&alice, None).await.unwrap(), 70_003);
    store.delete_attachment(&alice, "atc_a2").await.unwrap();
    assert_eq!(store.attachment_bytes(&alice, None).await.unwrap(), 70_000);
    assert_eq!(store.attachment_bytes(&ctx("nobody"), None).await.unwrap(), 0);
}

pub(crate) async fn attachment_uploads_match_the_declared_size_once(store: Arc<dyn Store>) {
    let (c, bob) = (ctx("anonymous"), ctx("bob"));
    store.create_attachment(&c, &attachment("atc_s", None), 5).await.unwrap();
    assert_eq!(store.load_attachment(&c, "atc_s").await.unwrap(), attachment("atc_s", None));
    // Another size than declared: refused, nothing stored.
    for wrong in [&b"1234"[..], &b"123456"[..], &[0u8; 10_000][..]] {
        let err = store.save_attachment_data(&c, "atc_s", wrong).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UploadSizeMismatch { ref attachment_id, declared: 5, received }
                if attachment_id == "atc_s" && received == wrong.len() as u64),
            "{err:?}"
        );
    }
    assert_eq!(store.load_attachment_data(&c, "atc_s").await.unwrap(), None);
    // The declared size survives metadata updates (the upload clears its descriptor, a message sets the thread).
    store.save_attachment(&c, &attachment("atc_s", Some("thr"))).await.unwrap();
    assert!(matches!(
        store.save_attachment_data(&c, "atc_s", b"123").await,
        Err(StoreError::UploadSizeMismatch { declared: 5, received: 3, .. })
    ));
    // Another owner cannot upload, whatever the size.
    assert!(matches!(
        store.save_attachment_data(&bob, "atc_s", b"12345").await,
        Err(StoreError::AttachmentNotFound(_))
    ));
    store.save_attachment_data(&c, "atc_s", b"12345").await.unwrap();
    // Once uploaded, any further upload is refused and the first bytes stay.
    for again in [&b"abcde"[..], &b"x"[..]] {
        let err = store.save_attachment_data(&c, "atc_s", again).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyUploaded(ref id) if id == "atc_s"), "{err:?}");
    }
    assert_eq!(store.load_attachment_data(&c, "atc_s").await.unwrap().as_deref(), Some(&b"12345"[..]));
    // Deleted and made again under the same id: a new declared size and a new upload.
    store.delete_attachment(&c, "atc_s").await.unwrap();
    store.create_attachment(&c, &attachment("atc_s", None), 2).await.unwrap();
    store.save_attachment_data(&c, "atc_s", b"ok").await.unwrap();
    assert_eq!(store.load_attachment_data(&c, "atc_s").await.unwrap().as_deref(), Some(&b"ok"[..]));
}

pub(crate) async fn paging_continues_after_a_deleted_cursor(store: Arc<dyn Store>) {
    let c = ctx("anonymous");
    store.save_thread(&c, &thread("thr", 0)).await.unwrap();
    // b and c tie on created_at: their insertion order decides.
    for (id, at) in [("a", 1), ("b", 2), ("c", 2), ("d", 3), ("e", 4), ("f", 5)] {
        store.add_thread_item(&c, "thr", &msg("thr", id, at, id)).await.unwrap();
    }
    // A client holds the cursor "b" (asc) and "e" (desc); both items are then deleted.
    let page = store.load_thread_items(&c, "thr", None, 2, Order::Asc).await.unwrap();
    assert_eq!(page.after.as_deref(), Some("b"));
    store.delete_thread_item(&c, "thr", "b").await.unwrap();
    store.delete_thread_item(&c, "thr", "e").await.unwrap();
    let page = store.load_thread_items(&c, "thr", Some("b"), 2, Order::Asc).await.unwrap();
    assert_eq!(
        (item_ids(&page), page.has_more, page.after.as_deref()),
        (vec!["c".into(), "d".into()], true, Some("d"))
    );
    let page = store.load_thread_items(&c, "thr", Some("e"), 10, Order::Desc).await.unwrap();
    assert_eq!((item_ids(&page), page.has_more), (vec!["d".into(), "c".into(), "a".into()], false));
    // Items removed by a retry (everything after an item) keep their places too.
    assert_eq!(store.delete_items_after(&c, "thr", "c").await.unwrap(), 2);
    store.add_thread_item(&c, "thr", &msg("thr", "g", 6, "g")).await.unwrap();
    let page = store.load_thread_items(&c, "thr", Some("d"), 10, Order::Asc).await.unwrap();
    assert_eq!(item_ids(&page), ["g"]);
    let page = store.load_thread_items(&c, "thr", Some("f"), 10, Order::Desc).await.unwrap();
    assert_eq!(item_ids(&page), ["c", "a"]);
    // An item added again under a deleted id is found where it is now.
    store.add_thread_item(&c, "thr", &msg("thr", "b", 7, "b again")).await.unwrap();
    let page = store.load_thread_items(&c, "thr", Some("b"), 10, Order::Desc).await.unwrap();
    assert_eq!(item_ids(&page), ["g", "c", "a"]);
    // A cursor that never existed still yields an empty page.
    let page = store.load_thread_items(&c, "thr", Some("never"), 10, Order::Asc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more), (0, false));

    // Threads: the same, and another owner's deleted thread is no cursor.
    let bob = ctx("bob");
    for (id, at) in [("t1", 10), ("t2", 20), ("t3", 30), ("t4", 40)] {
        store.save_thread(&c, &thread(id, at)).await.unwrap();
    }
    store.save_thread(&bob, &thread("tb", 25)).await.unwrap();
    store.delete_thread(&c, "t2").await.unwrap();
    store.delete_thread(&bob, "tb").await.unwrap();
    let page = store.load_threads(&c, 10, Some("t2"), Order::Asc).await.unwrap();
    assert_eq!(thread_ids(&page), ["t3", "t4"]);
    let page = store.load_threads(&c, 1, Some("t2"), Order::Desc).await.unwrap();
    assert_eq!((thread_ids(&page), page.has_more, page.after.as_deref()), (vec!["t1".into()], true, Some("t1")));
    let page = store.load_threads(&c, 10, Some("tb"), Order::Asc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more), (0, false));
    // A deleted thread's items are gone with it: listing them finds nothing, whatever the cursor.
    store.delete_thread(&c, "thr").await.unwrap();
    let page = store.load_thread_items(&c, "thr", Some("b"), 10, Order::Asc).await.unwrap();
    assert_eq!((page.data.len(), page.has_more), (0, false));
}
