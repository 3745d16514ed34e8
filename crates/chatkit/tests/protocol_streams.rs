//! End-to-end tests of the message-shaped streaming requests over real HTTP: exact SSE frames and
//! their order for `threads.create` and `threads.add_user_message`, hidden items, attachments and the
//! error events that end a failed turn.

mod protocol_common;

use chatkit::RequestContext;
use protocol_common::*;
use serde_json::json;

/// The Python SDK's bytes for a `threads.create` whose app answers "Hi" and sets the title, with ids
/// and timestamps normalized.
const GOLDEN_CREATE: &str = concat!(
    r#"data: {"type":"thread.created","thread":{"id":"thr_1","created_at":"<ts>","status":{"type":"active"},"metadata":{},"items":{"data":[],"has_more":false}}}"#,
    "\n\n",
    r#"data: {"type":"thread.item.done","item":{"id":"msg_1","thread_id":"thr_1","created_at":"<ts>","type":"user_message","content":[{"type":"input_text","text":"hello"}],"attachments":[],"inference_options":{}}}"#,
    "\n\n",
    r#"data: {"type":"stream_options","stream_options":{"allow_cancel":true}}"#,
    "\n\n",
    r#"data: {"type":"thread.item.added","item":{"id":"msg_2","thread_id":"thr_1","created_at":"<ts>","type":"assistant_message","content":[]}}"#,
    "\n\n",
    r#"data: {"type":"thread.item.updated","item_id":"msg_2","update":{"type":"assistant_message.content_part.added","content_index":0,"content":{"annotations":[],"text":"","type":"output_text"}}}"#,
    "\n\n",
    r#"data: {"type":"thread.item.updated","item_id":"msg_2","update":{"type":"assistant_message.content_part.text_delta","content_index":0,"delta":"Hi"}}"#,
    "\n\n",
    r#"data: {"type":"thread.item.updated","item_id":"msg_2","update":{"type":"assistant_message.content_part.done","content_index":0,"content":{"annotations":[],"text":"Hi","type":"output_text"}}}"#,
    "\n\n",
    r#"data: {"type":"thread.item.done","item":{"id":"msg_2","thread_id":"thr_1","created_at":"<ts>","type":"assistant_message","content":[{"annotations":[],"text":"Hi","type":"output_text"}]}}"#,
    "\n\n",
    r#"data: {"type":"thread.updated","thread":{"title":"T","id":"thr_1","created_at":"<ts>","status":{"type":"active"},"metadata":{},"items":{"data":[],"has_more":false}}}"#,
    "\n\n",
);

/// The Python SDK's `threads.get_by_id` answer for that thread, normalized.
const GOLDEN_GET: &str = concat!(
    r#"{"title":"T","id":"thr_1","created_at":"<ts>","status":{"type":"active"},"metadata":{},"items":{"data":["#,
    r#"{"id":"msg_1","thread_id":"thr_1","created_at":"<ts>","type":"user_message","content":[{"type":"input_text","text":"hello"}],"attachments":[],"inference_options":{}},"#,
    r#"{"id":"msg_2","thread_id":"thr_1","created_at":"<ts>","type":"assistant_message","content":[{"annotations":[],"text":"Hi","type":"output_text"}]}"#,
    r#"],"has_more":false}}"#,
);

#[tokio::test]
async fn golden_create_stream_and_get_by_id() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let raw = t.stream_raw(create_req("hello")).await;
        assert_eq!(normalize(&raw), GOLDEN_CREATE);
        let thread_id = parse_sse(&raw)[0]["thread"]["id"].as_str().unwrap().to_string();
        assert!(thread_id.starts_with("thr_") && thread_id.len() == 28, "{thread_id}");

        let res = t.post(json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/json");
        // The same normalization numbering: thread first, then the user message, then the answer.
        assert_eq!(normalize(&res.text().await.unwrap()), GOLDEN_GET);
    }
}

#[tokio::test]
async fn add_user_message_keeps_every_input_field() {
    let t = TestServer::start().await;
    let (thread_id, _) = t.create("hello").await;
    let body = json!({"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": {
        "content": [{"type": "input_text", "text": "Hi "}, {"type": "input_tag", "id": "e1", "text": "Harry", "data": {"k": "v"}, "group": "People"}],
        "attachments": [], "quoted_text": "q", "inference_options": {"tool_choice": {"id": "search"}, "model": "gpt-x"}}}});
    let raw = t.stream_raw(body).await;
    let events = parse_sse(&raw);
    assert_eq!(types(&events), one_word_answer_after(&["thread.item.done", "stream_options"]));
    let first = normalize(raw.split("\n\n").next().unwrap());
    assert_eq!(
        first,
        r#"data: {"type":"thread.item.done","item":{"id":"msg_1","thread_id":"thr_1","created_at":"<ts>","type":"user_message","content":[{"type":"input_text","text":"Hi "},{"type":"input_tag","id":"e1","text":"Harry","data":{"k":"v"},"group":"People","interactive":false}],"attachments":[],"quoted_text":"q","inference_options":{"tool_choice":{"id":"search"},"model":"gpt-x"}}}"#
    );
    assert_eq!(events[6]["item"]["content"][0]["text"], "echo: Hi @Harry");
    assert_eq!(t.items(&thread_id).await.len(), 4);
}

#[tokio::test]
async fn hidden_items_are_stored_not_sent() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, events) = t.create("hidden").await;
        assert_eq!(
            types(&events),
            one_word_answer_after(&["thread.created", "thread.item.done", "stream_options", "progress_update"])
        );
        assert_eq!(events[3], json!({"type": "progress_update", "icon": "search", "text": "working"}));
        let stored = t.items(&thread_id).await;
        let kinds: Vec<_> = stored.iter().map(|i| i.type_name()).collect();
        assert_eq!(kinds, ["user_message", "hidden_context_item", "assistant_message"]);

        // get_by_id and items.list filter the hidden item out.
        let (_, thread) = t.json(json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}})).await;
        let ids: Vec<_> = thread["items"]["data"].as_array().unwrap().iter().map(|i| i["type"].clone()).collect();
        assert_eq!(ids, [json!("user_message"), json!("assistant_message")]);
        let (_, page) = t.json(json!({"type": "items.list", "params": {"thread_id": thread_id}})).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["data"][0]["type"], "assistant_message");
    }
}

#[tokio::test]
async fn widget_item_is_streamed_and_stored() {
    let t = TestServer::start().await;
    let (thread_id, events) = t.create("widget").await;
    assert_eq!(types(&events), ["thread.created", "thread.item.done", "stream_options", "thread.item.done"]);
    let widget = &events[3]["item"];
    assert_eq!(widget["type"], "widget");
    assert_eq!(widget["widget"], widget_json("hi"));
    assert_eq!(widget["copy_text"], "copy");
    let stored = t.items(&thread_id).await;
    assert_eq!(serde_json::to_value(&stored[1]).unwrap(), *widget);
}

#[tokio::test]
async fn create_resolves_attachments_and_sets_their_thread() {
    let t = TestServer::start().await;
    let (status, att) = t
        .json(json!({"type": "attachments.create", "params": {"name": "a.png", "size": 10, "mime_type": "image/png"}}))
        .await;
    assert_eq!(status, 200);
    let att_id = att["id"].as_str().unwrap().to_string();
    let mut req = create_req("hello");
    req["params"]["input"]["attachments"] = json!([att_id]);
    let (thread_id, events) = {
        let events = t.stream(req).await;
        (events[0]["thread"]["id"].as_str().unwrap().to_string(), events)
    };
    let mut expected = att.clone();
    expected.as_object_mut().unwrap().insert("thread_id".into(), json!(thread_id));
    assert_eq!(events[1]["item"]["attachments"], json!([expected]));
    let stored = t.store.load_attachment(&RequestContext::default(), &att_id).await.unwrap();
    assert_eq!(stored.thread_id.as_deref(), Some(thread_id.as_str()));
    // Key order of an image attachment with a thread: id, name, mime_type, upload_descriptor, thread_id, type, preview_url.
    let raw = serde_json::to_string(&events[1]["item"]["attachments"][0]).unwrap();
    let keys: Vec<_> = [
        "\"id\"",
        "\"name\"",
        "\"mime_type\"",
        "\"upload_descriptor\"",
        "\"thread_id\"",
        "\"type\"",
        "\"preview_url\"",
    ]
    .iter()
    .map(|k| raw.find(k).unwrap())
    .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{raw}");
}

#[tokio::test]
async fn app_failures_end_with_one_error_event() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let cases = [
            ("fail custom", json!({"type": "error", "code": "custom", "message": "Nope!", "allow_retry": true})),
            ("fail internal", json!({"type": "error", "code": "stream.error", "allow_retry": true})),
            (
                "fail unavailable",
                json!({"type": "error", "code": "custom", "message": "Set OPENAI_API_KEY in .env", "allow_retry": false}),
            ),
            ("panic", json!({"type": "error", "code": "stream.error", "allow_retry": true})),
        ];
        for (text, expected) in cases {
            let raw = t.stream_raw(create_req(text)).await;
            assert!(!raw.contains("hunter2"), "secret leaked: {raw}");
            let events = parse_sse(&raw);
            assert_eq!(types(&events), ["thread.created", "thread.item.done", "stream_options", "error"], "{text}");
            assert_eq!(events[3], expected, "{text}");
            // The thread and the user's message stay stored and usable.
            let thread_id = events[0]["thread"]["id"].as_str().unwrap();
            let stored = t.items(thread_id).await;
            assert_eq!(stored.len(), 1);
            let events = t.stream(add_req(thread_id, "again")).await;
            assert_eq!(events.last().unwrap()["item"]["content"][0]["text"], "echo: again");
        }
        // The same frame for add_user_message: an error never leaves an empty 200 stream.
        let (thread_id, _) = t.create("x").await;
        let events = t.stream(add_req(&thread_id, "panic")).await;
        assert_eq!(types(&events), ["thread.item.done", "stream_options", "error"]);
    }
}
