//! End-to-end tests of the non-streaming requests and of every request that is refused before a stream
//! starts (status + `{"detail","code"}`), over real HTTP.

mod protocol_common;

use chatkit::RequestContext;
use chatkit::types::*;
use protocol_common::*;
use serde_json::{Value, json};

fn ids_of(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

async fn expect_error(t: &TestServer, body: impl Into<reqwest::Body>, status: u16, code: &str) -> String {
    let res = t.post_raw(body).await;
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/json");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    v["detail"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn undecodable_bodies_are_400_with_a_clear_detail() {
    let t = TestServer::start().await;
    let detail = expect_error(&t, "{not json", 400, "invalid_json").await;
    assert!(detail.contains("JSON object"), "{detail}");
    expect_error(&t, "", 400, "invalid_json").await;
    // A JSON array is decoded positionally by the envelope and fails on `type`.
    assert_eq!(t.post_raw("[1,2]").await.status(), 400);

    let detail = expect_error(&t, "{}", 400, "invalid_type").await;
    for kind in REQUEST_TYPES {
        assert!(detail.contains(kind), "{detail} lacks {kind}");
    }
    let detail = expect_error(&t, r#"{"type":"threads.nope","params":{}}"#, 400, "invalid_type").await;
    assert!(detail.contains("threads.nope") && detail.contains("threads.sync_custom_action"), "{detail}");
    expect_error(&t, r#"{"type":42}"#, 400, "invalid_type").await;

    let detail = expect_error(&t, r#"{"type":"threads.get_by_id","params":{}}"#, 400, "invalid_params").await;
    assert!(detail.contains("threads.get_by_id") && detail.contains("thread_id"), "{detail}");
    let detail = expect_error(&t, r#"{"type":"threads.create","params":{"input":{}}}"#, 400, "invalid_params").await;
    assert!(detail.contains("content"), "{detail}");
    expect_error(
        &t,
        r#"{"type":"items.feedback","params":{"thread_id":"t","item_ids":[],"kind":"meh"}}"#,
        400,
        "invalid_params",
    )
    .await;
    expect_error(&t, r#"{"type":"threads.list","params":[]}"#, 400, "invalid_params").await;
    // Missing params are lenient for types without required fields.
    let (status, page) = t.json(json!({"type": "threads.list"})).await;
    assert_eq!((status, page), (200, json!({"data": [], "has_more": false})));
}

#[tokio::test]
async fn missing_targets_are_404_before_any_stream() {
    let t = TestServer::start().await;
    let (thread_id, _) = t.create("x").await;
    let missing_thread = [
        json!({"type": "threads.add_user_message", "params": {"thread_id": "thr_missing", "input": input("x")}}),
        json!({"type": "threads.add_client_tool_output", "params": {"thread_id": "thr_missing", "result": null}}),
        json!({"type": "threads.add_structured_input", "params": {"thread_id": "thr_missing", "item_id": "si", "input": {}}}),
        json!({"type": "threads.retry_after_item", "params": {"thread_id": "thr_missing", "item_id": "m"}}),
        json!({"type": "threads.custom_action", "params": {"thread_id": "thr_missing", "action": {"type": "a"}}}),
        json!({"type": "threads.sync_custom_action", "params": {"thread_id": "thr_missing", "action": {"type": "a"}}}),
        json!({"type": "threads.get_by_id", "params": {"thread_id": "thr_missing"}}),
        json!({"type": "threads.update", "params": {"thread_id": "thr_missing", "title": "x"}}),
        json!({"type": "threads.delete", "params": {"thread_id": "thr_missing"}}),
        json!({"type": "items.list", "params": {"thread_id": "thr_missing"}}),
    ];
    for req in missing_thread {
        let detail = expect_error(&t, serde_json::to_vec(&req).unwrap(), 404, "not_found").await;
        assert_eq!(detail, "thread thr_missing not found", "{req}");
    }
    let mut req = add_req(&thread_id, "x");
    req["params"]["input"]["attachments"] = json!(["atc_missing"]);
    let detail = expect_error(&t, serde_json::to_vec(&req).unwrap(), 404, "not_found").await;
    assert_eq!(detail, "attachment atc_missing not found");
    // Nothing was written: still only the first turn.
    assert_eq!(t.items(&thread_id).await.len(), 2);
    // A create with a missing attachment creates no thread.
    let mut req = create_req("x");
    req["params"]["input"]["attachments"] = json!(["atc_missing"]);
    expect_error(&t, serde_json::to_vec(&req).unwrap(), 404, "not_found").await;
    let (_, page) = t.json(json!({"type": "threads.list", "params": {}})).await;
    assert_eq!(ids_of(&page), [thread_id]);
}

#[tokio::test]
async fn threads_list_pages_and_orders() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let mut created = Vec::new();
        for i in 0..3 {
            created.push(t.create(&format!("m{i}")).await.0);
        }
        let list = |params: Value| json!({"type": "threads.list", "params": params});
        let (status, page) = t.json(list(json!({"limit": 2}))).await;
        assert_eq!(status, 200);
        assert_eq!(ids_of(&page), [created[2].clone(), created[1].clone()]);
        assert_eq!((page["has_more"].clone(), page["after"].clone()), (json!(true), json!(created[1])));
        let (_, page2) = t.json(list(json!({"limit": 2, "after": created[1]}))).await;
        assert_eq!(ids_of(&page2), [created[0].clone()]);
        assert_eq!(page2["has_more"], false);
        assert!(page2.get("after").is_none(), "{page2}");
        let (_, asc) = t.json(list(json!({"limit": 0, "order": "asc"}))).await;
        assert_eq!(ids_of(&asc), created);
        let (_, null_limit) = t.json(list(json!({"limit": null}))).await;
        assert_eq!(ids_of(&null_limit).len(), 3);
        // Every thread carries an empty items page and `metadata: {}`; titles omitted when unset.
        let first = &asc["data"][0];
        assert_eq!(first["items"], json!({"data": [], "has_more": false}));
        assert_eq!(first["metadata"], json!({}));
        assert!(first.get("title").is_none());
        // Another owner sees nothing, and cannot read the thread.
        let res = t
            .client
            .post(&t.url)
            .header("x-owner", "mallory")
            .body(serde_json::to_vec(&list(json!({}))).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.json::<Value>().await.unwrap(), json!({"data": [], "has_more": false}));
        let res = t
            .client
            .post(&t.url)
            .header("x-owner", "mallory")
            .body(json!({"type": "threads.get_by_id", "params": {"thread_id": created[0]}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
}

#[tokio::test]
async fn get_by_id_returns_the_oldest_20_and_items_list_pages_newest_first() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, events) = t.create("x").await;
        let user_id = events[1]["item"]["id"].as_str().unwrap().to_string();
        let assistant_id = events[3]["item"]["id"].as_str().unwrap().to_string();
        // 2 items so far; add 23 more with a hidden one at position 5 (index 4) and one at index 21.
        let mut all = vec![user_id, assistant_id];
        for i in 0..23 {
            let id = format!("it_{i:02}");
            let kind = if i == 2 || i == 19 {
                ItemKind::HiddenContextItem(HiddenContextItem { content: json!({"n": i}) })
            } else {
                ItemKind::AssistantMessage(AssistantMessageItem { content: vec![AssistantMessageContent::text("t")] })
            };
            t.add_item(&thread_id, &id, kind).await;
            all.push(id);
        }
        let visible = |ids: &[String]| -> Vec<String> {
            ids.iter().filter(|id| *id != "it_02" && *id != "it_19").cloned().collect()
        };

        let (_, thread) = t.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})).await;
        // Oldest 20 ascending, hidden filtered *after* paging: 19 items, has_more, after = the 20th id.
        assert_eq!(ids_of(&thread["items"]), visible(&all[..20]));
        assert_eq!(thread["items"]["has_more"], true);
        assert_eq!(thread["items"]["after"], json!(all[19]));

        let list = |params: Value| json!({"type": "items.list", "params": params});
        let (_, page) = t.json(list(json!({"thread_id": thread_id, "limit": 3}))).await;
        let newest: Vec<String> = all.iter().rev().cloned().collect();
        assert_eq!(ids_of(&page), visible(&newest[..3]));
        assert_eq!(page["after"], json!(newest[2]));
        // The cursor may point at a hidden item and the page may come out empty.
        let (_, page) = t.json(list(json!({"thread_id": thread_id, "limit": 1, "after": "it_20"}))).await;
        assert_eq!(ids_of(&page), Vec::<String>::new());
        assert_eq!((page["has_more"].clone(), page["after"].clone()), (json!(true), json!("it_19")));
        let (_, page) = t.json(list(json!({"thread_id": thread_id, "after": "it_19"}))).await;
        assert_eq!(ids_of(&page), visible(&newest[4..24]));
        assert_eq!((page["has_more"].clone(), page["after"].clone()), (json!(true), json!(newest[23])));
        let (_, page) = t.json(list(json!({"thread_id": thread_id, "after": newest[23]}))).await;
        assert_eq!(ids_of(&page), [newest[24].clone()]);
        assert_eq!(page["has_more"], false);
        assert!(page.get("after").is_none());
        let (_, page) = t.json(list(json!({"thread_id": thread_id, "order": "asc", "limit": 0}))).await;
        assert_eq!(ids_of(&page), visible(&all[..20]));
    }
}

#[tokio::test]
async fn update_and_delete_threads() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, _) = t.create("x").await;
        let (status, thread) =
            t.json(json!({"type": "threads.update", "params": {"thread_id": thread_id, "title": "Renamed"}})).await;
        assert_eq!(status, 200);
        assert_eq!(thread["title"], "Renamed");
        assert_eq!(thread["items"], json!({"data": [], "has_more": false}));
        let keys: Vec<_> = thread.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["title", "id", "created_at", "status", "metadata", "items"]);
        let stored = t.store.load_thread(&RequestContext::default(), &thread_id).await.unwrap();
        assert_eq!(stored.title.as_deref(), Some("Renamed"));

        let delete = json!({"type": "threads.delete", "params": {"thread_id": thread_id}});
        let (status, body) = t.json(delete.clone()).await;
        assert_eq!((status, body), (200, json!({})));
        assert!(t.app.calls().contains(&Call::Deleted(thread_id.clone())));
        let (status, _) = t.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})).await;
        assert_eq!(status, 404);
        assert_eq!(t.json(delete).await.0, 404);
    }
}

#[tokio::test]
async fn feedback_is_passed_to_the_app() {
    let t = TestServer::start().await;
    // Feedback on a thread the caller does not have is a 404, like every request naming a thread.
    let (status, _) = t
        .json(
            json!({"type": "items.feedback", "params": {"thread_id": "thr_1", "item_ids": ["a"], "kind": "negative"}}),
        )
        .await;
    assert_eq!(status, 404);
    let (thread_id, _) = t.create("hi").await;
    let calls_before = t.app.calls().len();
    let (status, body) = t
        .json(json!({"type": "items.feedback", "params": {"thread_id": thread_id, "item_ids": ["a", "b"], "kind": "negative"}}))
        .await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(t.app.calls()[calls_before..], [Call::Feedback(vec!["a".into(), "b".into()], FeedbackKind::Negative)]);
}

#[tokio::test]
async fn attachments_create_and_delete() {
    let t = TestServer::start().await;
    let (status, att) = t
        .json(json!({"type": "attachments.create", "params": {"name": "a.pdf", "size": 3, "mime_type": "application/pdf"}}))
        .await;
    assert_eq!(status, 200);
    let id = att["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("atc_"));
    assert_eq!(
        att,
        json!({"id": id, "name": "a.pdf", "mime_type": "application/pdf",
            "upload_descriptor": {"url": format!("http://localhost:8000/upload/{id}"), "method": "PUT", "headers": {}},
            "type": "file"})
    );
    let stored = t.store.load_attachment(&RequestContext::default(), &id).await.unwrap();
    assert_eq!(serde_json::to_value(&stored).unwrap(), att);

    // App errors map to their status.
    let detail = expect_error(
        &t,
        json!({"type": "attachments.create", "params": {"name": "big", "size": 5000, "mime_type": "image/png"}})
            .to_string(),
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(detail, "attachment is larger than 1000 bytes");

    let delete = json!({"type": "attachments.delete", "params": {"attachment_id": id}});
    assert_eq!(t.json(delete.clone()).await, (200, json!({})));
    assert!(t.store.load_attachment(&RequestContext::default(), &id).await.is_err());
    assert_eq!(t.json(delete).await.0, 404);
}

#[tokio::test]
async fn transcribe_decodes_base64_leniently() {
    let t = TestServer::start().await;
    let req = |b64: &str| json!({"type": "input.transcribe", "params": {"audio_base64": b64, "mime_type": "audio/webm;codecs=opus"}});
    let (status, body) = t.json(req("aGVs\nbG8=")).await;
    assert_eq!((status, body), (200, json!({"text": "5 bytes of audio/webm;codecs=opus: hello"})));
    assert_eq!(t.json(req("aGVsbG8")).await.1["text"], "5 bytes of audio/webm;codecs=opus: hello");
    let detail = expect_error(&t, req("%%%").to_string(), 400, "bad_request").await;
    assert!(detail.contains("audio_base64"), "{detail}");
    expect_error(&t, req("").to_string(), 400, "bad_request").await;
}

#[tokio::test]
async fn transcribe_without_support_is_503() {
    struct Mute;
    #[async_trait::async_trait]
    impl chatkit::ChatKitApp for Mute {
        async fn respond(
            &self,
            _: &ThreadMetadata,
            _: Option<&ThreadItem>,
            _: &chatkit::EventSink,
        ) -> Result<(), chatkit::AppError> {
            Ok(())
        }
    }
    let server =
        chatkit::ChatKitServer::new(std::sync::Arc::new(chatkit::store::MemoryStore::new()), std::sync::Arc::new(Mute));
    let body =
        json!({"type": "input.transcribe", "params": {"audio_base64": "aGk=", "mime_type": "audio/mp4"}}).to_string();
    let err = server.process(body.as_bytes(), RequestContext::default()).await.unwrap_err();
    assert_eq!((err.status.as_u16(), err.code), (503, "unavailable"));
    assert_eq!(err.detail, "dictation is not supported by this server");
    // A respond that emits nothing still yields a non-empty stream (stream_options at least).
    let body = create_req("x").to_string();
    let chatkit::ChatKitResponse::Stream(stream) =
        server.process(body.as_bytes(), RequestContext::default()).await.unwrap()
    else {
        panic!("expected a stream")
    };
    let events = parse_sse(std::str::from_utf8(&stream.collect_bytes().await).unwrap());
    assert_eq!(types(&events), ["thread.created", "thread.item.done", "stream_options"]);
}

#[tokio::test]
async fn sync_custom_action_returns_and_persists_the_updated_item() {
    let t = TestServer::start().await;
    let (thread_id, events) = t.create("widget").await;
    let widget_id = events[3]["item"]["id"].as_str().unwrap().to_string();
    let user_id = events[1]["item"]["id"].as_str().unwrap().to_string();
    let req = |item: Option<&str>, kind: &str| json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread_id, "item_id": item, "action": {"type": kind}}});
    let (status, body) = t.json(req(Some(&widget_id), "select")).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["updated_item"]);
    assert_eq!(body["updated_item"]["id"], json!(widget_id));
    assert_eq!(body["updated_item"]["widget"], widget_json("selected"));
    let stored = t.store.load_item(&RequestContext::default(), &thread_id, &widget_id).await.unwrap();
    assert_eq!(serde_json::to_value(&stored).unwrap(), body["updated_item"]);
    // Position unchanged.
    assert_eq!(t.items(&thread_id).await[1].id, widget_id);

    assert_eq!(t.json(req(None, "noop")).await, (200, json!({})));
    let (status, body) = t.json(req(Some(&user_id), "select")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("widget"));
    assert_eq!(t.json(req(Some("w_missing"), "select")).await.0, 404);
}
