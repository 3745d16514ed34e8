//! Model failures, provider failover and usage accounting, end to end over HTTP on 127.0.0.1 with the
//! mock model scripted with the real providers' error bodies.
//!
//! - `insufficient_quota` (OpenAI's HTTP 429 with that code) is sent once, never retried, and ends the turn
//!   with `allow_retry: false` and a message that says what happened; a plain rate limit is retried and
//!   invites another try; an unknown model is not retried either.
//! - With `MODEL_FALLBACK=gemini`, an OpenAI primary failing before its first token is answered by Gemini
//!   (a second mock), and the usage is recorded for the provider that answered.
//! - Usage totals of two turns add up in `GET /support/usage`, per thread and per owner, and survive a
//!   restart on the same database.

mod common;

use common::*;
use mock_llm::{Match, MockServer, Reply, Script};
use serde_json::{Value, json};
use support::config::{Config, ProviderChoice, Secret};

/// The `error` event that ends a stream.
fn error_event(events: &[Value]) -> &Value {
    let last = events.last().expect("events");
    assert_eq!(last["type"], "error", "{events:?}");
    last
}

/// A script answering every request with `status` and the provider's `body`.
fn failing(status: u16, body: Value) -> Script {
    Script::new().on(Match::Any, Reply::HttpError { status, body, retry_after: None })
}

fn openai_error(message: &str, kind: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

async fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    let res = server.client.get(server.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_quota_is_sent_once_and_says_what_happened() {
    let quota = openai_error(
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
    );
    let dir = TempDir::new("quota");
    let mock = mock(failing(429, quota)).await;
    let server = TestServer::start(Config { model_max_retries: 2, ..config(&dir, Some(&mock)) }).await;
    let events = server.stream(create("Hello")).await;
    let error = error_event(&events);
    assert_eq!(error["allow_retry"], false, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("quota"), "{message}");
    assert!(!message.to_lowercase().contains("try again"), "{message}");
    assert!(!message.contains("billing details"), "our words, not the provider's: {message}");
    assert_eq!(model_requests(&mock).len(), 1, "insufficient_quota is never retried");

    // A plain rate limit (same status, another code) is retried and invites another try.
    mock.clear_requests();
    mock.set_script(failing(429, openai_error("Rate limit reached", "requests", "rate_limit_exceeded")));
    let events = server.stream(create("Hello again")).await;
    assert_eq!(error_event(&events)["allow_retry"], true);
    assert_eq!(model_requests(&mock).len(), 3, "first attempt + 2 retries");

    // An unknown model: not retried, not worth retrying.
    mock.clear_requests();
    let missing = openai_error(
        "The model `gpt-9` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    );
    mock.set_script(failing(404, missing));
    let events = server.stream(create("Hi")).await;
    let error = error_event(&events);
    assert_eq!(error["allow_retry"], false);
    assert!(error["message"].as_str().unwrap().contains("configured model"), "{error}");
    assert_eq!(model_requests(&mock).len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_primary_is_answered_by_the_fallback() {
    let dir = TempDir::new("fallback");
    let primary = mock(failing(503, Value::Null)).await;
    let fallback: MockServer = mock(Script::new()).await;
    let server = TestServer::start(Config {
        gemini_api_key: Some(Secret::new("gemini-test-key")),
        gemini_base_url: fallback.gemini_base_url(),
        model_fallback: Some(ProviderChoice::Gemini),
        ..config(&dir, Some(&primary))
    })
    .await;
    let events = server.stream(create("Hello")).await;
    assert!(events.iter().all(|e| e["type"] != "error"), "{events:?}");
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Hello".to_string()]);
    assert_eq!(model_requests(&primary).len(), 1, "the primary was asked first");
    let gemini = fallback.requests().into_iter().filter(|r| r.path.contains(":streamGenerateContent")).count();
    assert_eq!(gemini, 1, "the fallback answered");

    let (status, usage) = get_json(&server, "/support/usage").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["by_model"][0]["provider"], "Gemini", "{usage}");
    assert_eq!(usage["by_model"][0]["model"], agents::DEFAULT_GEMINI_MODEL);
    assert_eq!(usage["total"]["turns"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_totals_add_up_across_turns_and_a_restart() {
    let dir = TempDir::new("usage");
    let mock = mock(Script::new()).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    let (_, empty) = get_json(&server, "/support/usage").await;
    assert_eq!(empty["total"]["turns"], 0, "{empty}");
    assert_eq!(empty["by_model"], json!([]));

    let first = server.stream(create("Hello")).await;
    let thread = thread_id_of(&first);
    server.stream(add_message(&thread, "And again")).await;
    let other = thread_id_of(&server.stream(create("Another thread")).await);

    let (status, all) = get_json(&server, "/support/usage").await;
    assert_eq!(status, 200, "{all}");
    let total = &all["total"];
    assert_eq!(total["turns"], 3, "{all}");
    assert_eq!(total["model_calls"], 3);
    assert!(total["input_tokens"].as_u64().unwrap() > 0 && total["output_tokens"].as_u64().unwrap() > 0, "{all}");
    assert_eq!(all["by_model"].as_array().unwrap().len(), 1);
    assert_eq!(all["by_model"][0]["provider"], "OpenAI");
    assert_eq!(all["by_model"][0]["input_tokens"], total["input_tokens"]);

    let (_, one) = get_json(&server, &format!("/support/usage?thread_id={thread}")).await;
    let (_, two) = get_json(&server, &format!("/support/usage?thread_id={other}")).await;
    assert_eq!(one["total"]["turns"], 2);
    assert_eq!(two["total"]["turns"], 1);
    for field in ["input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"] {
        let sum = one["total"][field].as_u64().unwrap() + two["total"][field].as_u64().unwrap();
        assert_eq!(sum, total[field].as_u64().unwrap(), "{field}: the threads add up to the owner's total");
    }
    let (status, _) = get_json(&server, "/support/usage?thread_id=thr_unknown").await;
    assert_eq!(status, 404);
    server.stop().await;

    let server = TestServer::with_mock(&dir, &mock).await;
    let (_, after) = get_json(&server, "/support/usage").await;
    assert_eq!(after, all, "stored usage survives a restart");
    server.stop().await;
}
