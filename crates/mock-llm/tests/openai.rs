//! OpenAI Responses API behaviour of the mock, over HTTP with reqwest.

mod common;

use std::time::{Duration, Instant};

use common::{client, openai_events, read_until_error, types, user_item};
use mock_llm::{Match, MockServer, Reply, Rule, Script, ToolCallSpec};
use serde_json::{Value, json};

async fn post(server: &MockServer, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = client().post(format!("{}/responses", server.openai_base_url())).json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

fn stream_body(items: Vec<Value>) -> Value {
    json!({"model": "gpt-4.1-mini", "stream": true, "temperature": 0.4, "input": items})
}

/// Streams a request with one user message `text` and parses the whole SSE body.
async fn stream_frames(server: &MockServer, text: &str) -> Vec<Value> {
    openai_events(&post(server, Some("k"), stream_body(vec![user_item(text)])).await.text().await.unwrap())
}

fn is_hex_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| rest.len() >= 24 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn text_reply_streams_the_exact_event_sequence() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let resp = post(&server, Some("sk-test"), stream_body(vec![user_item("Hello there")])).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    let frames = openai_events(&resp.text().await.unwrap());
    assert_eq!(
        types(&frames),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame["sequence_number"], json!(i));
    }
    let created = &frames[0]["response"];
    let resp_id = created["id"].as_str().unwrap();
    assert!(is_hex_id(resp_id, "resp_"), "{resp_id}");
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["model"], "gpt-4.1-mini");
    assert_eq!(created["temperature"], json!(0.4));
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["usage"], Value::Null);

    let msg_id = frames[2]["item"]["id"].as_str().unwrap().to_owned();
    assert!(is_hex_id(&msg_id, "msg_"), "{msg_id}");
    assert_eq!(
        frames[2],
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
               "item": {"id": msg_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}})
    );
    assert_eq!(
        frames[3],
        json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": msg_id,
               "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})
    );
    let deltas: Vec<&str> = frames[4..8].iter().map(|f| f["delta"].as_str().unwrap()).collect();
    assert_eq!(deltas, ["Mock", " reply:", " Hello", " there"]);
    assert_eq!(
        frames[4],
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": msg_id,
               "output_index": 0, "content_index": 0, "delta": "Mock", "logprobs": []})
    );
    let text = "Mock reply: Hello there";
    assert_eq!(
        frames[8],
        json!({"type": "response.output_text.done", "sequence_number": 8, "item_id": msg_id,
               "output_index": 0, "content_index": 0, "text": text, "logprobs": []})
    );
    let part = json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text});
    assert_eq!(
        frames[9],
        json!({"type": "response.content_part.done", "sequence_number": 9, "item_id": msg_id,
               "output_index": 0, "content_index": 0, "part": part})
    );
    let item = json!({"id": msg_id, "type": "message", "status": "completed", "content": [part], "role": "assistant"});
    assert_eq!(
        frames[10],
        json!({"type": "response.output_item.done", "sequence_number": 10, "output_index": 0, "item": item})
    );
    let done = &frames[11]["response"];
    assert_eq!(done["id"], resp_id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], json!([item]));
    assert_eq!(done["usage"]["output_tokens"], 4);
    assert_eq!(done["usage"]["total_tokens"].as_u64().unwrap(), done["usage"]["input_tokens"].as_u64().unwrap() + 4);
}

#[tokio::test]
async fn tool_calls_stream_text_then_function_calls() {
    let script = Script::new().on(
        Match::user_text("seat"),
        Reply::tool_calls(
            Some("On it.".into()),
            vec![
                ToolCallSpec::new("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
                ToolCallSpec::new("cancel_trip", json!({})),
            ],
        ),
    );
    let server = MockServer::start(script).await.unwrap();
    let frames = stream_frames(&server, "Move my SEAT").await;
    assert_eq!(
        types(&frames),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let added = &frames[9];
    let fc_id = added["item"]["id"].as_str().unwrap().to_owned();
    let call_id = added["item"]["call_id"].as_str().unwrap().to_owned();
    assert!(is_hex_id(&fc_id, "fc_"), "{fc_id}");
    assert!(call_id.starts_with("call_") && call_id.len() == 29, "{call_id}");
    assert_eq!(
        *added,
        json!({"type": "response.output_item.added", "sequence_number": 9, "output_index": 1,
               "item": {"id": fc_id, "type": "function_call", "status": "in_progress", "arguments": "",
                        "call_id": call_id, "name": "change_seat"}})
    );
    let args = r#"{"flight_number":"OA476","seat":"14C"}"#;
    let joined: String = frames[10..12]
        .iter()
        .map(|f| {
            assert_eq!(f["item_id"], fc_id.as_str());
            assert_eq!(f["output_index"], 1);
            f["delta"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(joined, args);
    assert_eq!(
        frames[12],
        json!({"type": "response.function_call_arguments.done", "sequence_number": 12, "item_id": fc_id,
               "output_index": 1, "name": "change_seat", "arguments": args})
    );
    let item = json!({"id": fc_id, "type": "function_call", "status": "completed", "arguments": args,
                      "call_id": call_id, "name": "change_seat"});
    assert_eq!(
        frames[13],
        json!({"type": "response.output_item.done", "sequence_number": 13, "output_index": 1, "item": item})
    );
    let second = &frames[18]["item"];
    assert_eq!(second["name"], "cancel_trip");
    assert_eq!(second["arguments"], "{}");
    assert_eq!(second["output_index"], Value::Null);
    assert_eq!(frames[18]["output_index"], 2);
    assert_ne!(second["call_id"], call_id.as_str());
    assert_ne!(second["id"], fc_id.as_str());
    let output = frames[19]["response"]["output"].as_array().unwrap().clone();
    assert_eq!(output.len(), 3);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["content"][0]["text"], "On it.");
    assert_eq!(output[1], item);

    // Each response gets fresh ids.
    let frames2 = stream_frames(&server, "seat").await;
    assert_ne!(frames2[9]["item"]["call_id"], call_id.as_str());
}

#[tokio::test]
async fn tool_output_gets_the_default_done_reply_and_history_is_checked() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let long = "x".repeat(300);
    let input = vec![
        user_item("seat 14C"),
        json!({"type": "function_call", "call_id": "call_1", "name": "change_seat", "arguments": "{}", "id": "fc_1", "status": "completed"}),
        json!({"type": "function_call_output", "call_id": "call_1", "output": long}),
    ];
    let frames = openai_events(&post(&server, Some("k"), stream_body(input)).await.text().await.unwrap());
    let done = frames.iter().find(|f| f["type"] == "response.output_text.done").unwrap();
    assert_eq!(done["text"], format!("Done: {}", "x".repeat(200)));

    // A function_call_output without its function_call is rejected like the real API.
    let orphan = vec![json!({"type": "function_call_output", "call_id": "call_9", "output": "x"})];
    let resp = post(&server, Some("k"), stream_body(orphan)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "No tool call found for function call output with call_id call_9.",
                          "type": "invalid_request_error", "param": null, "code": null}})
    );
}

#[tokio::test]
async fn non_streaming_request_returns_the_response_object() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let resp = post(&server, Some("k"), json!({"model": "gpt-4.1-mini", "input": "Say hi"})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["output"][0]["content"][0]["text"], "Mock reply: Say hi");
}

#[tokio::test]
async fn auth_is_required_and_bad_key_is_rejected() {
    let server = MockServer::start(Script::default()).await.unwrap();
    for key in [None, Some("bad-key")] {
        let resp = post(&server, key, stream_body(vec![user_item("hi")])).await;
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    // Rejected requests are not recorded.
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn rules_with_times_then_default_and_http_errors() {
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(429, Some(2))).times(1)).rule(
        Rule::new(
            Match::user_text("boom"),
            Reply::HttpError { status: 500, body: json!({"error": {"message": "custom"}}), retry_after: None },
        )
        .times(1),
    );
    let server = MockServer::start(script).await.unwrap();
    let resp = post(&server, Some("k"), stream_body(vec![user_item("boom")])).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let resp = post(&server, Some("k"), stream_body(vec![user_item("boom")])).await;
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"error": {"message": "custom"}}));

    let resp = post(&server, Some("k"), stream_body(vec![user_item("boom")])).await;
    assert_eq!(resp.status(), 200);
    let frames = openai_events(&resp.text().await.unwrap());
    assert_eq!(frames[7]["type"], "response.output_text.done");
    assert_eq!(frames[7]["text"], "Mock reply: boom");
}

#[tokio::test]
async fn stream_error_sends_response_failed() {
    let server = MockServer::start(Script::new().on(Match::Any, Reply::stream_error("overloaded"))).await.unwrap();
    let resp = post(&server, Some("k"), stream_body(vec![user_item("hi")])).await;
    assert_eq!(resp.status(), 200);
    let frames = openai_events(&resp.text().await.unwrap());
    assert_eq!(types(&frames), ["response.created", "response.in_progress", "response.failed"]);
    let failed = &frames[2]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], json!({"code": "server_error", "message": "overloaded"}));
}

#[tokio::test]
async fn cut_stream_sends_n_deltas_then_aborts() {
    let server =
        MockServer::start(Script::new().on(Match::Any, Reply::cut_after("one two three four five", 2))).await.unwrap();
    let resp = post(&server, Some("k"), stream_body(vec![user_item("hi")])).await;
    assert_eq!(resp.status(), 200);
    let (text, failed) = read_until_error(resp).await;
    assert!(failed, "the body must end with an error");
    let frames = openai_events(&text);
    assert_eq!(
        types(&frames),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
        ]
    );
    assert_eq!(frames[5]["delta"], " two");
}

#[tokio::test]
async fn stall_and_delta_delay_pace_the_stream() {
    let server = MockServer::start(
        Script::new().on(Match::user_text("stall"), Reply::stall("a b c", 1, 300)).delta_delay_ms(40),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let resp = post(&server, Some("k"), stream_body(vec![user_item("stall")])).await;
    let mut resp = resp;
    let mut first_delta_at = None;
    let mut body = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&chunk).unwrap());
        if first_delta_at.is_none() && body.contains("output_text.delta") {
            first_delta_at = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let frames = openai_events(&body);
    assert_eq!(frames.len(), 11);
    assert_eq!(frames[10]["type"], "response.completed");
    assert!(first_delta_at.unwrap() < Duration::from_millis(250));
    // 300 ms stall + 2 × 40 ms between deltas.
    assert!(total >= Duration::from_millis(380), "{total:?}");
}

#[tokio::test]
async fn requests_are_recorded_and_script_replaced() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let body = stream_body(vec![user_item("hello")]);
    post(&server, Some("sk-abc"), body.clone()).await.text().await.unwrap();
    let recorded = server.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/v1/responses");
    assert_eq!(recorded[0].body, body);
    assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-abc"));
    assert_eq!(recorded[0].header("Content-Type"), Some("application/json"));

    server.set_script(Script::new().on(Match::Any, Reply::text("replaced")));
    let frames = openai_events(&post(&server, Some("k"), body).await.text().await.unwrap());
    assert_eq!(frames[4]["delta"], "replaced");
    assert_eq!(server.requests().len(), 2);
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn record_cap_keeps_the_latest_requests() {
    let server = MockServer::start_on("127.0.0.1:0".parse().unwrap(), Script::default(), 2).await.unwrap();
    for text in ["one", "two", "three"] {
        post(&server, Some("k"), stream_body(vec![user_item(text)])).await.text().await.unwrap();
    }
    let texts: Vec<Value> =
        server.requests().iter().map(|r| r.body["input"][0]["content"][0]["text"].clone()).collect();
    assert_eq!(texts, [json!("two"), json!("three")]);
}

#[tokio::test]
async fn directives_in_user_text_choose_faults_and_tools() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let resp = post(&server, Some("k"), stream_body(vec![user_item("please mock:error 503 7")])).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "7");
    let resp = post(
        &server,
        Some("k"),
        stream_body(vec![user_item("mock:tool request_assistance {\"note\": \"Wheelchair\"}")]),
    )
    .await;
    let frames = openai_events(&resp.text().await.unwrap());
    assert_eq!(frames[6]["type"], "response.output_item.done");
    let call = &frames[6]["item"];
    assert_eq!(call["name"], "request_assistance");
    assert_eq!(call["arguments"], r#"{"note":"Wheelchair"}"#);
}

#[tokio::test]
async fn control_endpoints_expose_requests_and_script() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let put = client()
        .put(format!("{}/_mock/script", server.base_url()))
        .body(r#"{"rules": [{"when": "any", "reply": {"kind": "text", "text": "from control"}}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let frames = stream_frames(&server, "x").await;
    assert_eq!(frames[4]["delta"], "from");
    let list: Value =
        client().get(format!("{}/_mock/requests", server.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["path"], "/v1/responses");
    let auth = list[0]["headers"].as_array().unwrap().iter().find(|h| h[0] == "authorization").unwrap();
    assert_eq!(auth[1], "[redacted]");
    let bad = client().put(format!("{}/_mock/script", server.base_url())).body("{\"rules\": 3}").send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn recording_can_be_turned_off() {
    let server = MockServer::start(Script::default()).await.unwrap();
    post(&server, Some("k"), stream_body(vec![user_item("one")])).await.text().await.unwrap();
    server.set_record_cap(0);
    assert!(server.requests().is_empty());
    let frames = stream_frames(&server, "two").await;
    assert_eq!(frames.len(), 11);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = MockServer::start(Script::default()).await.unwrap();
    for body in ["not json", "{\"input\": 3}"] {
        let resp = client()
            .post(format!("{}/responses", server.openai_base_url()))
            .bearer_auth("k")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }
}

/// Reasoning counts as output tokens and is reported as `reasoning_tokens` (one per summary word,
/// at least one for a reasoning item without a summary); the reasoning item names the item that
/// follows it in its encrypted content.
#[tokio::test]
async fn reasoning_tokens_are_reported() {
    let script = Script::new()
        .on(Match::user_text("summary"), Reply::reasoned(&["Two words", "three more words"], Reply::text("Hi there")))
        .on(Match::user_text("bare"), Reply::reasoned(&[], Reply::text("Hi there")));
    let server = MockServer::start(script).await.unwrap();
    for (text, reasoning) in [("summary", 5), ("bare", 1)] {
        let frames = stream_frames(&server, text).await;
        let done = &frames.last().unwrap()["response"];
        assert_eq!(done["usage"]["output_tokens_details"]["reasoning_tokens"], reasoning, "{text}");
        assert_eq!(done["usage"]["output_tokens"], reasoning + 2, "{text}");
        let (rs, msg) = (&done["output"][0], &done["output"][1]);
        assert_eq!(rs["type"], "reasoning");
        let expected = format!("mock-enc:{}>{}", rs["id"].as_str().unwrap(), msg["id"].as_str().unwrap());
        assert_eq!(rs["encrypted_content"], expected.as_str());
    }
}
