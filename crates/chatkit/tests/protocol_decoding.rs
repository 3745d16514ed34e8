//! Exactness of request decoding over real HTTP: every tag and enum value is a JSON string naming a
//! variant (never a number, a boolean, `null` or serde's one-key object form), and integers are read as
//! JSON Schema counts them (`20.0` is 20; `20.5`, `"20"` and `true` are not integers). Each refusal is a
//! 400 `invalid_params` whose detail names what was wrong, and nothing reaches the app or the store.

mod protocol_common;

use chatkit::RequestContext;
use protocol_common::*;
use serde_json::{Value, json};

/// Sends `body`, expects 400 `invalid_params` and returns the detail.
async fn refused(t: &TestServer, body: Value) -> String {
    let (status, answer) = t.json(body.clone()).await;
    assert_eq!(status, 400, "{body} -> {answer}");
    assert_eq!(answer["code"], "invalid_params", "{body} -> {answer}");
    answer["detail"].as_str().unwrap().to_string()
}

/// Tags that are not strings, as JSON values with what the detail calls them.
fn non_string_tags() -> [(Value, &'static str); 7] {
    [
        (json!(0), "integer `0`"),
        (json!(1), "integer `1`"),
        (json!(-1), "integer `-1`"),
        (json!(0.0), "floating point `0.0`"),
        (json!(true), "boolean `true`"),
        (json!(null), "null"),
        (json!({"input_text": null}), "map"),
    ]
}

#[tokio::test]
async fn content_part_tags_are_strings_only() {
    let t = TestServer::start().await;
    for (tag, found) in non_string_tags() {
        let input = json!({"content": [{"type": tag, "text": "hi", "id": "x"}]});
        let detail = refused(&t, json!({"type": "threads.create", "params": {"input": input}})).await;
        assert_eq!(
            detail,
            format!(
                "invalid params for `threads.create`: element 0: invalid type: {found} for `type`, expected a string"
            ),
        );
    }
    // A part written as an array (tag first, then fields) is not a part.
    let input = json!({"content": [["input_text", "hi"]]});
    let detail = refused(&t, json!({"type": "threads.create", "params": {"input": input}})).await;
    assert!(detail.ends_with("invalid type: sequence, expected a map"), "{detail}");
    let detail =
        refused(&t, json!({"type": "threads.create", "params": {"input": {"content": [{"text": "hi"}]}}})).await;
    assert!(detail.ends_with("element 0: missing field `type`"), "{detail}");
    let input = json!({"content": [{"type": "input_text", "text": "a"}, {"type": "INPUT_TEXT", "text": "b"}]});
    let detail = refused(&t, json!({"type": "threads.create", "params": {"input": input}})).await;
    assert!(
        detail.contains("element 1: unknown variant `INPUT_TEXT`, expected `input_text` or `input_tag`"),
        "{detail}"
    );

    assert!(t.app.calls().is_empty(), "{:?}", t.app.calls());
    let threads =
        t.store.load_threads(&RequestContext::default(), 10, None, chatkit::types::Order::Desc).await.unwrap();
    assert!(threads.data.is_empty());

    // The same parts with string tags are accepted.
    let input = json!({"content": [{"type": "input_text", "text": "hi"},
        {"type": "input_tag", "id": "e1", "text": "Ada", "data": {}, "interactive": false}]});
    let events = t.stream(json!({"type": "threads.create", "params": {"input": input}})).await;
    assert_eq!(events[0]["type"], "thread.created");
    let (thread_id, _) = t.create("another").await;
    let add = json!({"type": "threads.add_user_message",
        "params": {"thread_id": thread_id, "input": {"content": [{"type": 0, "text": "x"}]}}});
    let detail = refused(&t, add).await;
    assert!(detail.starts_with("invalid params for `threads.add_user_message`: element 0: invalid type"), "{detail}");
}

#[tokio::test]
async fn enum_values_are_their_string_names_only() {
    let t = TestServer::start().await;
    let (thread_id, _) = t.create("hello").await;
    for (kind, found) in non_string_tags() {
        let kind = if found == "map" { json!({"positive": null}) } else { kind };
        let feedback =
            json!({"type": "items.feedback", "params": {"thread_id": thread_id, "item_ids": [], "kind": kind}});
        let detail = refused(&t, feedback).await;
        assert_eq!(
            detail,
            format!("invalid params for `items.feedback`: invalid type: {found}, expected enum FeedbackKind")
        );

        let order = if found == "map" { json!({"asc": null}) } else { kind.clone() };
        for list in [
            json!({"type": "threads.list", "params": {"order": order}}),
            json!({"type": "items.list", "params": {"thread_id": thread_id, "order": order}}),
        ] {
            let detail = refused(&t, list).await;
            assert!(detail.ends_with(&format!("invalid type: {found}, expected enum Order")), "{detail}");
        }
    }
    let status = json!({"status": {"skipped": null}});
    let structured = json!({"type": "threads.add_structured_input",
        "params": {"thread_id": thread_id, "item_id": "si_1", "input": status}});
    let detail = refused(&t, structured).await;
    assert!(detail.ends_with("invalid type: map, expected enum SubmissionStatus"), "{detail}");
    let structured = json!({"type": "threads.add_structured_input",
        "params": {"thread_id": thread_id, "item_id": "si_1", "input": {"status": 1}}});
    let detail = refused(&t, structured).await;
    assert!(detail.ends_with("invalid type: integer `1`, expected enum SubmissionStatus"), "{detail}");

    // The string names still work, and the refusals reached nothing.
    let feedback =
        json!({"type": "items.feedback", "params": {"thread_id": thread_id, "item_ids": [], "kind": "negative"}});
    assert_eq!(t.json(feedback).await.0, 200);
    let (status, page) = t.json(json!({"type": "threads.list", "params": {"order": "asc"}})).await;
    assert_eq!((status, page["data"].as_array().map(Vec::len)), (200, Some(1)));
    let feedback_calls = t.app.calls().into_iter().filter(|c| matches!(c, Call::Feedback(..))).count();
    assert_eq!(feedback_calls, 1);
}

#[tokio::test]
async fn action_and_request_types_are_strings_only() {
    let t = TestServer::start().await;
    let (thread_id, _) = t.create("hello").await;
    for (kind, found) in non_string_tags() {
        let action = json!({"type": kind, "payload": {}});
        for request in ["threads.custom_action", "threads.sync_custom_action"] {
            let body = json!({"type": request, "params": {"thread_id": thread_id, "item_id": null, "action": action}});
            let detail = refused(&t, body).await;
            assert_eq!(detail, format!("invalid params for `{request}`: invalid type: {found}, expected a string"));
        }
        // The envelope's own `type` is refused as such, with the list of types.
        let (status, answer) = t.json(json!({"type": kind, "params": {}})).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("invalid_type")), "{answer}");
        assert!(answer["detail"].as_str().unwrap().starts_with("request field `type` is missing or not a string"));
    }
    let tool =
        json!({"content": [{"type": "input_text", "text": "x"}], "inference_options": {"tool_choice": {"id": 7}}});
    let detail = refused(&t, json!({"type": "threads.create", "params": {"input": tool}})).await;
    assert!(detail.ends_with("invalid type: integer `7`, expected a string"), "{detail}");
    assert!(!t.app.calls().iter().any(|c| matches!(c, Call::Action(..))), "{:?}", t.app.calls());
}

#[tokio::test]
async fn integers_are_json_schema_integers() {
    let t = TestServer::start().await;
    for n in 0..3 {
        t.create(&format!("thread {n}")).await;
    }
    // A whole number written as a float is that integer, in any notation.
    for limit in [json!(2.0), json!(2), json!(2e0), json!(0.2e1)] {
        let (status, page) = t.json(json!({"type": "threads.list", "params": {"limit": limit}})).await;
        assert_eq!(status, 200, "{limit}: {page}");
        assert_eq!((page["data"].as_array().unwrap().len(), &page["has_more"]), (2, &json!(true)), "{limit}");
    }
    let (status, att) = t
        .json(json!({"type": "attachments.create", "params": {"name": "a.png", "size": 3.0, "mime_type": "image/png"}}))
        .await;
    assert_eq!(status, 200, "{att}");

    for (limit, error) in [
        (json!(2.5), "invalid type: floating point `2.5`, expected u32"),
        (json!("2"), "invalid type: string \"2\", expected u32"),
        (json!(true), "invalid type: boolean `true`, expected u32"),
        (json!(-1.0), "invalid value: integer `-1`, expected u32"),
        (json!(1e300), "invalid type: floating point `1e+300`, expected u32"),
        (json!([2]), "invalid type: sequence, expected u32"),
    ] {
        let detail = refused(&t, json!({"type": "threads.list", "params": {"limit": limit}})).await;
        assert_eq!(detail, format!("invalid params for `threads.list`: {error}"), "{limit}");
    }
    let detail = refused(
        &t,
        json!({"type": "attachments.create", "params": {"name": "a.png", "size": 3.5, "mime_type": "image/png"}}),
    )
    .await;
    assert!(detail.ends_with("invalid type: floating point `3.5`, expected u64"), "{detail}");
}
