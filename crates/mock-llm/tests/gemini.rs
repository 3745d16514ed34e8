//! Gemini native API behaviour of the mock, over HTTP with reqwest.

mod common;

use common::{client, gemini_chunks, read_until_error};
use mock_llm::{Match, MockServer, Reply, Script, ToolCallSpec};
use serde_json::{Value, json};

const MODEL: &str = "gemini-2.5-flash";

async fn stream(server: &MockServer, key: Option<&str>, body: Value) -> reqwest::Response {
    let url = format!("{}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", server.gemini_base_url());
    let mut req = client().post(url).json(&body);
    if let Some(key) = key {
        req = req.header("x-goog-api-key", key);
    }
    req.send().await.unwrap()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

fn body(contents: Vec<Value>) -> Value {
    json!({"systemInstruction": {"parts": [{"text": "Be nice."}]}, "contents": contents})
}

#[tokio::test]
async fn text_reply_streams_word_chunks_then_stop() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let resp = stream(&server, Some("g-key"), body(vec![user("Hi there")])).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let raw = resp.text().await.unwrap();
    assert!(raw.starts_with("data: {"));
    assert!(raw.ends_with("}\r\n\r\n"));
    let frames = gemini_chunks(&raw);
    assert_eq!(frames.len(), 5);
    let response_id = frames[0]["responseId"].as_str().unwrap().to_owned();
    assert!(!response_id.is_empty());
    let prompt = frames[0]["usageMetadata"]["promptTokenCount"].as_u64().unwrap();
    for (i, word) in ["Mock", " reply:", " Hi", " there"].iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(
            frames[i],
            json!({"candidates": [{"content": {"parts": [{"text": word}], "role": "model"}, "index": 0}],
                   "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": n, "totalTokenCount": prompt + n},
                   "modelVersion": MODEL, "responseId": response_id})
        );
    }
    assert_eq!(
        frames[4]["candidates"],
        json!([{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}])
    );
}

#[tokio::test]
async fn function_calls_carry_a_thought_signature_and_must_be_replayed_with_it() {
    let script = Script::new().on(
        Match::user_text("paris"),
        Reply::tool_calls(
            Some("Looking.".into()),
            vec![
                ToolCallSpec::new("flight_option_list", json!({"destination": "CDG", "origin": null})),
                ToolCallSpec::new("add_checked_bag", json!({})),
            ],
        ),
    );
    let server = MockServer::start(script).await.unwrap();
    let frames = gemini_chunks(&stream(&server, Some("k"), body(vec![user("Book Paris")])).await.text().await.unwrap());
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0]["candidates"][0]["content"]["parts"], json!([{"text": "Looking."}]));
    let last = &frames[1]["candidates"][0];
    assert_eq!(last["finishReason"], "STOP");
    let parts = last["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        parts[0]["functionCall"],
        json!({"name": "flight_option_list", "args": {"destination": "CDG", "origin": null}})
    );
    let signature = parts[0]["thoughtSignature"].as_str().unwrap();
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
    assert_eq!(parts[1], json!({"functionCall": {"name": "add_checked_bag", "args": {}}}));

    // Replaying the call with its signature and the function response → default "Done:" text.
    let model_turn = json!({"role": "model", "parts": parts});
    let responses = json!({"role": "user", "parts": [
        {"functionResponse": {"name": "flight_option_list", "response": {"result": "ok"}}},
        {"functionResponse": {"name": "add_checked_bag", "response": {"result": "bag"}}},
    ]});
    let frames = gemini_chunks(
        &stream(&server, Some("k"), body(vec![user("Book Paris"), model_turn.clone(), responses.clone()]))
            .await
            .text()
            .await
            .unwrap(),
    );
    let text: String =
        frames.iter().map(|f| f["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(text, "Done: {\"result\":\"ok\"}\n{\"result\":\"bag\"}");

    // Without the signature, Gemini 3 answers 400.
    let mut unsigned = model_turn;
    unsigned["parts"][0].as_object_mut().unwrap().remove("thoughtSignature");
    let resp = stream(&server, Some("k"), body(vec![user("Book Paris"), unsigned, responses])).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], 400);
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    assert!(err["error"]["message"].as_str().unwrap().contains("thought_signature"));
}

#[tokio::test]
async fn auth_by_header_or_query_key() {
    let server = MockServer::start(Script::default()).await.unwrap();
    for key in [None, Some("bad-key"), Some("")] {
        let resp = stream(&server, key, body(vec![user("hi")])).await;
        assert_eq!(resp.status(), 401, "{key:?}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], 401);
        assert_eq!(err["error"]["status"], "UNAUTHENTICATED");
    }
    let url = format!("{}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse&key=q-key", server.base_url());
    let resp = client().post(url).json(&body(vec![user("hi")])).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let recorded = server.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, format!("/v1beta/models/{MODEL}:streamGenerateContent"));
    assert_eq!(recorded[0].query.as_deref(), Some("alt=sse&key=q-key"));
}

#[tokio::test]
async fn errors_stream_error_and_cut() {
    let script = Script::new()
        .on(Match::user_text("limit"), Reply::http_error(429, Some(5)))
        .on(Match::user_text("fail"), Reply::stream_error("model exploded"))
        .on(Match::user_text("cut"), Reply::cut_after("a b c d", 1));
    let server = MockServer::start(script).await.unwrap();

    let resp = stream(&server, Some("k"), body(vec![user("limit")])).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "5");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");

    let resp = stream(&server, Some("k"), body(vec![user("fail")])).await;
    assert_eq!(resp.status(), 200);
    let frames = gemini_chunks(&resp.text().await.unwrap());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0], json!({"error": {"code": 500, "message": "model exploded", "status": "INTERNAL"}}));

    let resp = stream(&server, Some("k"), body(vec![user("cut")])).await;
    let (text, failed) = read_until_error(resp).await;
    assert!(failed);
    let frames = gemini_chunks(&text);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["candidates"][0]["content"]["parts"][0]["text"], "a");
}

#[tokio::test]
async fn generate_content_answers_json_and_transcribes_audio() {
    let server = MockServer::start(Script::default().transcript("Seat 14C please.")).await.unwrap();
    let url = format!("{}/v1beta/models/{MODEL}:generateContent", server.base_url());
    let resp = client().post(&url).header("x-goog-api-key", "k").json(&body(vec![user("hello")])).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["candidates"][0]["content"]["parts"], json!([{"text": "Mock reply: hello"}]));
    assert_eq!(json["candidates"][0]["finishReason"], "STOP");

    let audio = json!({"contents": [{"role": "user", "parts": [
        {"text": "Transcribe this audio."},
        {"inlineData": {"mimeType": "audio/webm", "data": "GkXfo59ChoEBQveBAULygQRC84EIQoKEd2VibUKHgQRChYECGFOAZwH/////////"}}
    ]}]});
    let json: Value =
        client().post(&url).header("x-goog-api-key", "k").json(&audio).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["candidates"][0]["content"]["parts"], json!([{"text": "Seat 14C please."}]));
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let server = MockServer::start(Script::new().on(Match::Any, Reply::text("x y"))).await.unwrap();
    let url = format!("{}/v1beta/models/{MODEL}:streamGenerateContent", server.base_url());
    let resp = client().post(url).header("x-goog-api-key", "k").json(&body(vec![user("hi")])).send().await.unwrap();
    let chunks: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[1]["candidates"][0]["content"]["parts"][0]["text"], " y");
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn unknown_method_is_404() {
    let server = MockServer::start(Script::default()).await.unwrap();
    let resp = client()
        .post(format!("{}/v1beta/models/{MODEL}:countTokens", server.base_url()))
        .header("x-goog-api-key", "k")
        .json(&body(vec![user("hi")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "NOT_FOUND");
}

/// Thoughts are counted apart (`thoughtsTokenCount`, one per word) and add to the total, as Gemini
/// reports them; the answer's own count leaves them out.
#[tokio::test]
async fn thought_tokens_are_reported_apart() {
    let script = Script::new().on(Match::Any, Reply::reasoned(&["Thinking hard"], Reply::text("Hi there")));
    let server = MockServer::start(script).await.unwrap();
    let resp = stream(&server, Some("g-key"), body(vec![user("Hello")])).await;
    let frames = gemini_chunks(&resp.text().await.unwrap());
    let last = &frames.last().unwrap()["usageMetadata"];
    let prompt = last["promptTokenCount"].as_u64().unwrap();
    assert_eq!(last["thoughtsTokenCount"], 2);
    assert_eq!(last["candidatesTokenCount"], 2);
    assert_eq!(last["totalTokenCount"].as_u64().unwrap(), prompt + 4);
    assert!(frames[0]["candidates"][0]["content"]["parts"][0]["thought"] == true);
}
