//! The ChatKit protocol through the real support server over HTTP: every one of the 16 request types gets
//! the right kind of answer, a client that disconnects mid-answer leaves the partial answer and the
//! cancellation marker stored, a retry after a failed model call answers once without duplicates, and
//! paging continues after a cursor whose item or thread was deleted.

mod common;

use std::time::Duration;

use common::*;
use mock_llm::{Match, Reply, Rule, Script};
use serde_json::{Value, json};

#[tokio::test]
async fn every_request_type_answers_with_the_right_kind_of_response() {
    let dir = TempDir::new("all16");
    let mock = mock(Script::new()).await;
    let server = TestServer::with_mock(&dir, &mock).await;

    // Streaming types.
    let events = server.stream(create("hello")).await;
    let thread = thread_id_of(&events);
    let user_id = events[1]["item"]["id"].as_str().unwrap().to_string();
    assert_eq!(assistant_texts(&events), vec!["Mock reply: hello".to_string()]);
    let events = server.stream(add_message(&thread, "second")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: second".to_string()]);
    let events = server
        .stream(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": user_id}}))
        .await;
    assert_eq!(kinds(&events)[0], "stream_options");
    assert_eq!(assistant_texts(&events), vec!["Mock reply: hello".to_string()]);
    let items = server.items(&thread).await;
    let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["user_message", "assistant_message"], "retry removed the later turn");
    let events = server.stream(action(&thread, None, json!({"type": "nope", "payload": null}))).await;
    assert_eq!(kinds(&events), vec!["stream_options".to_string()]);
    // No pending client tool call (this app has no client tools): the server responds anyway.
    let events = server
        .stream(json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread, "result": null}}))
        .await;
    assert_eq!(kinds(&events)[0], "stream_options");
    assert!(events.iter().all(|e| e["type"] != "error"), "{events:?}");
    server
        .stream(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": user_id}}))
        .await;
    // No structured input item: answered before any stream.
    let (status, body) = server
        .error(json!({"type": "threads.add_structured_input", "params": {"thread_id": thread, "item_id": "msg_nope", "input": {}}}))
        .await;
    assert_eq!(status, 404, "{body}");

    // JSON types.
    let got = server.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    assert_eq!(got["id"], thread.as_str());
    assert_eq!(got["metadata"], json!({}));
    assert_eq!(got["items"]["data"].as_array().unwrap().len(), 2);
    let list = server.json(json!({"type": "threads.list", "params": {"limit": 1}})).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["items"], json!({"data": [], "has_more": false}));
    let updated =
        server.json(json!({"type": "threads.update", "params": {"thread_id": thread, "title": "Renamed"}})).await;
    assert_eq!(updated["title"], "Renamed");
    let events = server.stream(add_message(&thread, "third")).await;
    assert!(events.iter().all(|e| e["type"] != "thread.updated"), "a user title is never replaced");
    let got = server.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    assert_eq!(got["title"], "Renamed");
    let page = server.json(json!({"type": "items.list", "params": {"thread_id": thread, "limit": 1}})).await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["after"], page["data"][0]["id"]);
    let fb = server
        .json(json!({"type": "items.feedback", "params": {"thread_id": thread, "item_ids": [user_id], "kind": "positive"}}))
        .await;
    assert_eq!(fb, json!({}));
    let sync = server
        .json(
            json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread, "action": {"type": "noop"}}}),
        )
        .await;
    assert_eq!(sync, json!({}));
    let att = server
        .json(json!({"type": "attachments.create", "params": {"name": "a.png", "size": 3, "mime_type": "image/png"}}))
        .await;
    let att_id = att["id"].as_str().unwrap();
    assert_eq!(
        server.json(json!({"type": "attachments.delete", "params": {"attachment_id": att_id}})).await,
        json!({})
    );
    let res = server.client.get(server.content_url(att_id)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let text = server
        .json(json!({"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/ogg"}}))
        .await;
    assert_eq!(text, json!({"text": mock_llm::DEFAULT_TRANSCRIPT}));
    assert_eq!(server.json(json!({"type": "threads.delete", "params": {"thread_id": thread}})).await, json!({}));
    let (status, _) = server.error(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn disconnect_mid_answer_keeps_the_partial_answer_and_the_marker() {
    let dir = TempDir::new("cancel");
    let script = Script::new().on(Match::user_text("slow"), Reply::stall("Let me look into that for you", 2, 60_000));
    let mock = mock(script).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    let mut res = server.post(&create("Please be slow.")).await;
    let mut seen = String::new();
    while seen.matches("content_part.text_delta").count() < 2 {
        let chunk =
            tokio::time::timeout(Duration::from_secs(20), res.chunk()).await.unwrap().unwrap().expect("stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let thread = thread_id_of(&parse_sse(&seen[..seen.rfind("\n\n").unwrap() + 2]));
    drop(res);

    // The turn notices the disconnect, saves what was streamed and the hidden marker.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let page = server
            .state
            .store
            .load_thread_items(&Default::default(), &thread, None, 100, chatkit::types::Order::Asc)
            .await
            .unwrap();
        if page.data.iter().any(|i| i.type_name() == "sdk_hidden_context") {
            break page.data;
        }
        assert!(std::time::Instant::now() < deadline, "no cancellation marker stored: {:?}", page.data);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let types: Vec<&str> = stored.iter().map(|i| i.type_name()).collect();
    assert_eq!(types, vec!["user_message", "assistant_message", "sdk_hidden_context"]);
    let visible = server.items(&thread).await;
    assert_eq!(visible.len(), 2);
    let partial = visible[1]["content"][0]["text"].as_str().unwrap();
    assert!("Let me look into that for you".starts_with(partial) && !partial.is_empty(), "{partial:?}");
    let marker = serde_json::to_value(&stored[2]).unwrap();
    assert_eq!(marker["content"], chatkit::CANCEL_MARKER);
}

#[tokio::test]
async fn retry_after_a_failed_model_call_answers_once() {
    let dir = TempDir::new("retry");
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(503, None)).times(1));
    let mock = mock(script).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    let events = server.stream(create("hello again")).await;
    let thread = thread_id_of(&events);
    let user_id = events[1]["item"]["id"].as_str().unwrap().to_string();
    assert_eq!(events.last().unwrap()["type"], "error");
    assert_eq!(events.last().unwrap()["allow_retry"], true);
    for _ in 0..2 {
        let events = server
            .stream(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": user_id}}))
            .await;
        assert_eq!(assistant_texts(&events), vec!["Mock reply: hello again".to_string()]);
    }
    let items: Vec<Value> = server.items(&thread).await;
    let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["user_message", "assistant_message"]);
    assert_eq!(items[0]["id"], user_id.as_str());
}

/// A page's ids, and its `has_more` and `after`.
fn page_of(page: &Value) -> (Vec<String>, bool, Option<String>) {
    let ids = page["data"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect();
    (ids, page["has_more"].as_bool().unwrap(), page["after"].as_str().map(String::from))
}

#[tokio::test]
async fn paging_continues_after_a_deleted_cursor() {
    let dir = TempDir::new("deleted-cursor");
    let mock = mock(Script::new()).await;
    let server = TestServer::with_mock(&dir, &mock).await;

    // items.list: two turns (4 items); a client pages 2 at a time, newest first, and holds the cursor.
    let thread = thread_id_of(&server.stream(create("one")).await);
    server.stream(add_message(&thread, "two")).await;
    let list = |after: Option<&str>| json!({"type": "items.list", "params": {"thread_id": thread, "limit": 2, "order": "asc", "after": after}});
    let (first, has_more, cursor) = page_of(&server.json(list(None)).await);
    assert!(has_more);
    let cursor = cursor.unwrap();
    assert_eq!(first[1], cursor);
    // A retry of the first message deletes everything after it, the cursor (the first answer) included.
    let first_user = first[0].clone();
    server
        .stream(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread, "item_id": first_user}}))
        .await;
    // Paging after the deleted cursor continues with what follows its place: the new answer.
    let (rest, has_more, _) = page_of(&server.json(list(Some(&cursor))).await);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(!has_more);
    let all = server.items(&thread).await;
    assert_eq!(all.len(), 2);
    assert_eq!(rest[0], all[1]["id"].as_str().unwrap());

    // threads.list: three threads, newest first, one per page; the cursor's thread is deleted.
    let second = thread_id_of(&server.stream(create("three")).await);
    let third = thread_id_of(&server.stream(create("four")).await);
    let threads =
        |after: Option<&str>| json!({"type": "threads.list", "params": {"limit": 1, "order": "desc", "after": after}});
    let (page, has_more, cursor) = page_of(&server.json(threads(None)).await);
    assert_eq!((page, has_more, cursor.as_deref()), (vec![third.clone()], true, Some(third.as_str())));
    server.json(json!({"type": "threads.delete", "params": {"thread_id": third}})).await;
    let (page, has_more, cursor) = page_of(&server.json(threads(Some(&third))).await);
    assert_eq!((page, has_more, cursor.as_deref()), (vec![second.clone()], true, Some(second.as_str())));
    let (page, has_more, _) = page_of(&server.json(threads(Some(&second))).await);
    assert_eq!((page, has_more), (vec![thread.clone()], false));
    // An id that never was a thread is still no cursor: an empty page.
    let (page, has_more, _) = page_of(&server.json(threads(Some("thr_never"))).await);
    assert_eq!((page.len(), has_more), (0, false));
}

#[tokio::test]
async fn deleting_a_thread_stops_the_response_running_on_it() {
    let dir = TempDir::new("delete-running");
    // The model sends one delta of its answer, then stalls for a minute.
    let script =
        Script::new().on(Match::user_text("long story"), Reply::stall("Once upon a time there was", 1, 60_000));
    let mock = mock(script).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    let thread = thread_id_of(&server.stream(create("hello")).await);

    let res = server.post(&add_message(&thread, "long story")).await;
    let mut reader = SseReader::new(res);
    // Wait until the answer is streaming (its first text delta).
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), reader.next()).await.unwrap().expect("stream ended");
        if event["type"] == "thread.item.updated"
            && event["update"]["type"] == "assistant_message.content_part.text_delta"
        {
            break;
        }
    }
    let started = std::time::Instant::now();
    assert_eq!(server.json(json!({"type": "threads.delete", "params": {"thread_id": thread}})).await, json!({}));
    // The stream ends long before the model's minute is over, without writing anything more.
    let mut after_delete = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(30), reader.next()).await.unwrap() {
        after_delete.push(event);
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the response kept running after its thread was deleted");
    assert!(after_delete.iter().all(|e| e["type"] != "thread.item.done"), "{after_delete:?}");
    let (status, body) = server.error(json!({"type": "threads.get_by_id", "params": {"thread_id": thread}})).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server.error(json!({"type": "items.list", "params": {"thread_id": thread}})).await;
    assert_eq!(status, 404);
    // The thread is not listed again (no write of the stopped response recreated it).
    let list = server.json(json!({"type": "threads.list", "params": {}})).await;
    assert!(list["data"].as_array().unwrap().iter().all(|t| t["id"] != thread.as_str()), "{list}");
}
