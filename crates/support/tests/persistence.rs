//! Restart persistence, in process: a booking conversation is run, the server is stopped and a new one
//! is started on the same SQLite file; the thread, its items, the airline state, the hidden context and
//! the consumed-widget guard are all still there, and the locked widget is what a reload shows.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn booking_state_survives_a_restart() {
    let dir = TempDir::new("restart");
    let mock = mock(booking_script()).await;

    let server = TestServer::with_mock(&dir, &mock).await;
    let events = server.stream(create("Book a trip to Paris, Nov 3 to Nov 10, business.")).await;
    let thread = thread_id_of(&events);
    let w = events[4]["item"]["id"].as_str().unwrap().to_string();
    let click = events[4]["item"]["widget"]["children"][1]["onClickAction"].clone();
    let events = server.stream(action(&thread, Some(&w), click.clone())).await;
    assert_eq!(events.len(), 6, "{events:?}");
    let locked = events[2]["update"]["widget"].clone();
    let profile_before = server.customer(&thread).await;
    let items_before = server.items(&thread).await;
    let thread_before = server.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    let list_before = server.json(json!({"type": "threads.list", "params": {}})).await;
    server.stop().await;

    let server = TestServer::with_mock(&dir, &mock).await;
    assert_eq!(server.customer(&thread).await, profile_before);
    assert_eq!(server.items(&thread).await, items_before);
    assert_eq!(server.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await, thread_before);
    assert_eq!(server.json(json!({"type": "threads.list", "params": {}})).await, list_before);
    assert_eq!(thread_before["title"], "Book a trip to Paris, Nov 3 to Nov 10, business.");

    // A reload shows the locked widget (the update was persisted), not a clickable list.
    let stored_w: &Value = items_before.iter().find(|i| i["id"] == w.as_str()).unwrap();
    assert_eq!(stored_w["widget"], locked);
    // The guard is persisted: the old click is refused after the restart and books nothing.
    let events = server.stream(action(&thread, Some(&w), click)).await;
    assert_eq!(kinds(&events), vec!["stream_options".to_string(), "error:custom".to_string()]);
    assert_eq!(events[1]["allow_retry"], json!(false), "{events:?}");
    assert!(events[1]["message"].as_str().unwrap_or_default().contains("already made"), "{events:?}");
    assert_eq!(server.customer(&thread).await, profile_before);
    assert_eq!(profile_before["booked_widget_ids"], json!([w]));
    assert_eq!(profile_before["segments"].as_array().unwrap().len(), 3);
    // The hidden context is still stored (and still hidden).
    let stored = server
        .state
        .store
        .load_thread_items(&Default::default(), &thread, None, 100, chatkit::types::Order::Asc)
        .await
        .unwrap();
    assert_eq!(stored.data.iter().filter(|i| i.type_name() == "hidden_context_item").count(), 1);

    // Deleting the thread deletes its airline state too: its profile is gone with it (404, as for any
    // unknown thread), and nothing is written by asking.
    assert_eq!(server.json(json!({"type": "threads.delete", "params": {"thread_id": thread}})).await, json!({}));
    let res = server.client.get(server.url("/support/customer")).query(&[("thread_id", &thread)]).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let profiles = server.state.store.kv_get("airline", &thread).await.unwrap();
    assert!(profiles.is_none(), "{profiles:?}");
    server.stop().await;
}
