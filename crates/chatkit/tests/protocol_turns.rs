//! End-to-end tests of the turn-shaped streaming requests over real HTTP: client tool output,
//! structured input, retry idempotency, custom actions, cancellation by a client that leaves, and the
//! per-thread turn lock.

mod protocol_common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chatkit::types::*;
use chatkit::{CANCEL_MARKER, RequestContext};
use futures::StreamExt;
use protocol_common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn client_tool_output_completes_the_pending_call_and_resumes() {
    let t = TestServer::start().await;
    let (thread_id, events) = t.create("tool").await;
    let call = &events[3]["item"];
    assert_eq!(call["type"], "client_tool_call");
    assert_eq!(call["status"], "pending");
    assert!(call.get("output").is_none());
    let call_id = call["id"].as_str().unwrap().to_string();

    let events = t
        .stream(
            json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread_id, "result": {"x": 1}}}),
        )
        .await;
    // No event for the completed call itself (the client updates its own copy); the app's answer
    // follows stream_options.
    assert_eq!(types(&events), one_word_answer_after(&["stream_options"]));
    assert_eq!(events[5]["item"]["content"][0]["text"], "continued");
    let stored = t.store.load_item(&RequestContext::default(), &thread_id, &call_id).await.unwrap();
    let v = serde_json::to_value(&stored).unwrap();
    assert_eq!((v["status"].clone(), v["output"].clone()), (json!("completed"), json!({"x": 1})));
    assert_eq!(t.app.calls().last(), Some(&Call::Respond(None)));
}

#[tokio::test]
async fn client_tool_output_finds_the_newest_pending_call_and_sweeps_older_ones() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, _) = t.create("x").await;
        let pending = |call_id: &str| {
            ItemKind::ClientToolCall(ClientToolCallItem {
                status: ClientToolCallStatus::Pending,
                call_id: call_id.into(),
                name: "n".into(),
                arguments: json!({}),
                output: None,
            })
        };
        t.add_item(&thread_id, "tc_old", pending("c1")).await;
        t.add_item(&thread_id, "tc_new", pending("c2")).await;
        // A hidden item after the pending call does not hide it (the Python SDK only looks at the
        // newest item).
        t.add_item(&thread_id, "hc_1", ItemKind::HiddenContextItem(HiddenContextItem { content: json!("ctx") })).await;
        let events = t
            .stream(
                json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread_id, "result": null}}),
            )
            .await;
        assert_eq!(events[0]["type"], "stream_options");
        let ids: Vec<_> = t.items(&thread_id).await.iter().map(|i| i.id.clone()).collect();
        assert!(!ids.contains(&"tc_old".to_string()), "{ids:?}");
        let completed = t.store.load_item(&RequestContext::default(), &thread_id, "tc_new").await.unwrap();
        let v = serde_json::to_value(&completed).unwrap();
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"], Value::Null);

        // Nothing pending: still responds.
        let events = t
            .stream(json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread_id, "result": 1}}))
            .await;
        assert_eq!(events.last().unwrap()["item"]["content"][0]["text"], "continued");
    }
}

fn structured_item() -> ItemKind {
    serde_json::from_value::<StructuredInputItem>(json!({"status": "pending", "inputs": [
        {"id": "q1", "question": "Pick", "type": "multiple_choice", "options": [{"value": "A"}], "multiple": true},
        {"id": "q2", "question": "Why?", "type": "freeform", "description": "d"}]}))
    .map(ItemKind::StructuredInput)
    .unwrap()
}

#[tokio::test]
async fn structured_input_is_answered_replaced_then_responded() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, _) = t.create("x").await;
        t.add_item(&thread_id, "si_1", structured_item()).await;
        let req = json!({"type": "threads.add_structured_input", "params": {"thread_id": thread_id, "item_id": "si_1",
            "input": {"status": "answered", "answers": {"q1": {"values": ["A", "B"]}}}}});
        let raw = t.stream_raw(req.clone()).await;
        let events = parse_sse(&raw);
        assert_eq!(types(&events)[..3], ["stream_options", "thread.item.replaced", "thread.item.added"]);
        let replaced = normalize(raw.split("\n\n").nth(1).unwrap());
        // The Python SDK's bytes for this submission, normalized.
        assert_eq!(
            replaced,
            r#"data: {"type":"thread.item.replaced","item":{"id":"si_1","thread_id":"thr_1","created_at":"<ts>","type":"structured_input","status":"answered","inputs":[{"id":"q1","question":"Pick","answer":{"values":["A","B"],"skipped":false},"type":"multiple_choice","options":[{"value":"A"}],"multiple":true},{"id":"q2","question":"Why?","answer":{"values":[],"skipped":true},"type":"freeform","description":"d"}]}}"#
        );
        assert_eq!(events.last().unwrap()["item"]["content"][0]["text"], "continued");
        let stored = t.store.load_item(&RequestContext::default(), &thread_id, "si_1").await.unwrap();
        assert_eq!(serde_json::to_value(&stored).unwrap(), events[1]["item"]);

        // A second submission is refused before any stream.
        let (status, body) = t.json(req).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("already submitted"), "{body}");
    }
}

#[tokio::test]
async fn structured_input_on_wrong_items_is_refused() {
    let t = TestServer::start().await;
    let (thread_id, events) = t.create("x").await;
    let user_id = events[1]["item"]["id"].as_str().unwrap();
    let req = |item: &str| json!({"type": "threads.add_structured_input", "params": {"thread_id": thread_id, "item_id": item, "input": {}}});
    assert_eq!(t.json(req(user_id)).await.0, 400);
    assert_eq!(t.json(req("si_missing")).await.0, 404);
}

#[tokio::test]
async fn retry_is_idempotent_and_cleans_up_failed_turns() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, events) = t.create("flaky").await;
        let user_id = events[1]["item"]["id"].as_str().unwrap().to_string();
        // The failed turn left a finished widget behind.
        assert_eq!(types(&events)[3..], ["thread.item.done", "error"]);
        assert_eq!(t.items(&thread_id).await.len(), 2);
        // A later user message is deleted as well.
        t.stream(add_req(&thread_id, "later")).await;
        assert_eq!(t.items(&thread_id).await.len(), 4);

        let retry = json!({"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": user_id}});
        for _ in 0..2 {
            let events = t.stream(retry.clone()).await;
            assert_eq!(types(&events), one_word_answer_after(&["stream_options"]));
            assert_eq!(events[5]["item"]["content"][0]["text"], "recovered");
            let stored = t.items(&thread_id).await;
            let kinds: Vec<_> = stored.iter().map(|i| i.type_name()).collect();
            assert_eq!(kinds, ["user_message", "assistant_message"]);
            assert_eq!(stored[0].id, user_id);
        }
        assert_eq!(t.app.calls().last(), Some(&Call::Respond(Some(user_id))));

        // Unknown item → 404, a non-user item → 400, before any stream.
        let (status, body) = t
            .json(
                json!({"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": "msg_nope"}}),
            )
            .await;
        assert_eq!(status, 404, "{body}");
        let assistant_id = t.items(&thread_id).await[1].id.clone();
        let (status, body) = t
            .json(json!({"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": assistant_id}}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("only a user message can be retried"));
    }
}

#[tokio::test]
async fn custom_action_updates_and_persists_the_widget() {
    let t = TestServer::start().await;
    let (thread_id, events) = t.create("widget").await;
    let widget_id = events[3]["item"]["id"].as_str().unwrap().to_string();
    let events = t
        .stream(json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": widget_id,
            "action": {"type": "update_widget", "payload": {"x": 1}}}}))
        .await;
    assert_eq!(types(&events), ["stream_options", "thread.item.updated"]);
    assert_eq!(
        events[1],
        json!({"type": "thread.item.updated", "item_id": widget_id,
            "update": {"type": "widget.root.updated", "widget": widget_json("updated")}})
    );
    let stored = t.store.load_item(&RequestContext::default(), &thread_id, &widget_id).await.unwrap();
    assert_eq!(serde_json::to_value(&stored).unwrap()["widget"], widget_json("updated"));
    assert_eq!(t.app.calls().last(), Some(&Call::Action("update_widget".into(), Some(widget_id))));

    // Without a sender.
    let events = t
        .stream(json!({"type": "threads.custom_action", "params": {"thread_id": thread_id,
            "action": {"type": "effect", "payload": {"n": null}}}}))
        .await;
    assert_eq!(events[1], json!({"type": "client_effect", "name": "confetti", "data": {"n": null}}));
}

#[tokio::test]
async fn custom_action_from_a_non_widget_is_one_error_event() {
    let t = TestServer::start().await;
    let (thread_id, events) = t.create("x").await;
    let user_id = events[1]["item"]["id"].as_str().unwrap();
    let raw = t
        .stream_raw(json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": user_id,
            "action": {"type": "update_widget"}}}))
        .await;
    assert_eq!(raw, "data: {\"type\":\"error\",\"code\":\"stream.error\",\"allow_retry\":false}\n\n");
    assert!(!t.app.calls().iter().any(|c| matches!(c, Call::Action(..))));
    let (status, _) = t
        .json(json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": "w_missing",
            "action": {"type": "x"}}}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn client_disconnect_persists_partial_answer_and_marker() {
    for (_name, store) in stores().await {
        let t = TestServer::start_on(store, |s| s).await;
        let (thread_id, _) = t.create("x").await;
        let res = t.post(add_req(&thread_id, "slow")).await;
        let mut body = res.bytes_stream();
        let mut seen = String::new();
        while seen.matches("text_delta").count() < 3 {
            let chunk = body.next().await.unwrap().unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        drop(body); // the user pressed stop

        let store = t.store.clone();
        let tid = thread_id.clone();
        eventually(|| {
            let (store, tid) = (store.clone(), tid.clone());
            async move {
                let items =
                    store.load_thread_items(&RequestContext::default(), &tid, None, 100, Order::Asc).await.unwrap();
                items.data.last().is_some_and(|i| i.type_name() == "sdk_hidden_context")
            }
        })
        .await;
        let items = t.items(&thread_id).await;
        let kinds: Vec<_> = items.iter().map(|i| i.type_name()).collect();
        assert_eq!(
            kinds,
            ["user_message", "assistant_message", "user_message", "assistant_message", "sdk_hidden_context"]
        );
        let ItemKind::AssistantMessage(partial) = &items[3].kind else { panic!() };
        let text = &partial.content[0].text;
        assert!(text.starts_with("w0 w1 w2 "), "{text}");
        assert!(!text.contains("w199"), "the answer was not cut: {text}");
        let marker = serde_json::to_value(&items[4]).unwrap();
        assert_eq!(marker["content"], CANCEL_MARKER);
        assert_eq!(marker["content"], "The user cancelled the stream. Stop responding to the prior request.");
        assert!(marker["id"].as_str().unwrap().starts_with("shcx_"));
        // The app future was dropped (its model call cancelled), and the turn finished.
        assert_eq!(t.app.slow_dropped.load(Ordering::SeqCst), 1);
        tokio::time::timeout(Duration::from_secs(5), t.server.wait_for_turns()).await.unwrap();
        assert_eq!(t.server.running_turns(), 0);
        // The marker stays hidden from the client.
        let (_, page) = t.json(json!({"type": "items.list", "params": {"thread_id": thread_id}})).await;
        assert_eq!(page["data"].as_array().unwrap().len(), 4);
    }
}

#[tokio::test]
async fn a_busy_thread_answers_a_retryable_error_after_the_lock_wait() {
    let t = TestServer::start_with(|s| s.with_lock_wait(Duration::from_millis(200))).await;
    let (thread_id, _) = t.create("x").await;
    let slow = t.post(add_req(&thread_id, "slow")).await;
    let mut slow_body = slow.bytes_stream();
    // Wait until the slow turn holds the lock (its stream_options was sent).
    let mut seen = String::new();
    while !seen.contains("stream_options") {
        seen.push_str(std::str::from_utf8(&slow_body.next().await.unwrap().unwrap()).unwrap());
    }
    // The lock is taken before the message is stored: a busy thread answers 409 and stores nothing.
    let resp = t.post(add_req(&thread_id, "second")).await;
    assert_eq!(resp.status(), 409);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("busy"), "{body}");
    drop(slow_body);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let texts: Vec<String> = t.items(&thread_id).await.iter().map(|i| serde_json::to_string(i).unwrap()).collect();
    assert!(texts.iter().all(|t| !t.contains("second")), "{texts:?}");
}

#[tokio::test]
async fn turns_on_one_thread_run_one_after_the_other() {
    let t = TestServer::start().await;
    let (thread_id, _) = t.create("x").await;
    let a = t.stream(add_req(&thread_id, "a"));
    let b = t.stream(add_req(&thread_id, "b"));
    let (a, b) = tokio::join!(a, b);
    assert_eq!(a.last().unwrap()["item"]["content"][0]["text"], "echo: a");
    assert_eq!(b.last().unwrap()["item"]["content"][0]["text"], "echo: b");
    let items: Vec<serde_json::Value> =
        t.items(&thread_id).await.iter().map(|i| serde_json::to_value(i).unwrap()).collect();
    assert_eq!(items.len(), 6);
    // No interleaving: every user message is directly followed by its own answer.
    for pair in items[2..].chunks(2) {
        let asked = pair[0]["content"][0]["text"].as_str().unwrap().to_string();
        assert_eq!(pair[0]["type"], "user_message");
        assert_eq!(pair[1]["content"][0]["text"], format!("echo: {asked}"));
    }
}
