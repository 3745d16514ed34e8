//! End-to-end runs against the mock Gemini API: generated message ids, the request shape (schema
//! conversion, roles, signatures), tools, stop tools and the resilience paths.

mod common;

use std::time::{Duration, Instant};

use agents::ProviderKind;
use common::*;
use mock_llm::word_deltas;
use mock_llm::{Match, Reply, Rule, Script, ToolCallSpec};
use serde_json::json;

#[tokio::test]
async fn plain_answer_has_a_generated_id_and_the_native_request_shape() {
    let mut h = harness(ProviderKind::Gemini, Script::new()).await;
    h.ask("Hello there").await.unwrap();

    let id = h.expect_one_message(&word_deltas("Mock reply: Hello there"));
    assert!(id.starts_with("msg_") && id.len() == 28, "{id}");
    assert_eq!(assistant_text(&h.stored().await[0]), "Mock reply: Hello there");

    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, format!("/v1beta/models/{}:streamGenerateContent", agents::DEFAULT_GEMINI_MODEL));
    assert_eq!(reqs[0].query.as_deref(), Some("alt=sse"));
    assert_eq!(reqs[0].header("x-goog-api-key"), Some(GEMINI_KEY));
    assert_eq!(reqs[0].header("authorization"), None);
    assert_eq!(
        reqs[0].body,
        json!({
            "systemInstruction": {"parts": [{"text": "You are a concierge."}]},
            "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
            "tools": [{"functionDeclarations": [
                {"name": "change_seat", "description": "Move the passenger to a different seat on a flight.",
                 "parameters": {"properties": {"flight_number": {"type": "string"}, "seat": {"type": "string"}},
                                "required": ["flight_number", "seat"], "type": "object"}},
                {"name": "cancel_trip", "description": "Cancel the traveller's upcoming trip and note the refund."},
                {"name": "flight_option_list", "description": "Share specific flight options after collecting destination, dates, and cabin.",
                 "parameters": {"properties": {
                     "destination": {"type": "string"}, "depart_date": {"type": "string"},
                     "return_date": {"type": "string"}, "cabin": {"type": "string"},
                     "origin": {"type": "string", "nullable": true}},
                   "required": ["destination", "depart_date", "return_date", "cabin", "origin"], "type": "object"}}
            ]}],
            "generationConfig": {"temperature": 0.4}
        })
    );
    assert_eq!(reqs[0].body["generationConfig"]["temperature"].to_string(), "0.4");
}

#[tokio::test]
async fn function_calls_replay_their_thought_signature_and_answer_with_function_responses() {
    let calls = vec![
        ToolCallSpec::new("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
        ToolCallSpec::new("cancel_trip", json!({})),
    ];
    let script =
        Script::new().rule(Rule::new(Match::user_text("seat"), Reply::tool_calls(Some("On it.".into()), calls)));
    let mut h = harness(ProviderKind::Gemini, script).await;
    h.ask("Change my seat").await.unwrap();

    let events = h.events();
    let first = item_id(&events[0]);
    let mut expected = text_message_events(&first, &["On", " it."]);
    expected.push(json!({"type":"client_effect","name":"customer_profile/update","data":{"seat":"14C"}}));
    assert_eq!(events[..7], expected[..]);
    let second = item_id(&events[7]);
    assert_ne!(first, second);
    let follow_up_text =
        "Done: {\"result\":\"Seat updated to 14C on flight OA476.\"}\n{\"result\":\"Trip cancelled.\"}";
    assert_eq!(events[7..], text_message_events(&second, &word_deltas(follow_up_text))[..]);
    let follow_up = h.model_requests()[1].clone();

    let seen = h.seen_calls.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let signature = seen[0].provider_data.as_ref().unwrap()["thoughtSignature"].as_str().unwrap().to_string();
    assert_eq!(signature.len(), 64);
    assert_eq!(seen[1].provider_data, None, "only the first call of a step is signed");
    assert!(seen[0].call_id.starts_with("call_"));

    let contents = follow_up.body["contents"].clone();
    assert_eq!(
        contents,
        json!([
            {"role": "user", "parts": [{"text": "Change my seat"}]},
            {"role": "model", "parts": [
                {"text": "On it."},
                {"functionCall": {"name": "change_seat", "args": {"flight_number": "OA476", "seat": "14C"}}, "thoughtSignature": signature},
                {"functionCall": {"name": "cancel_trip", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "change_seat", "response": {"result": "Seat updated to 14C on flight OA476."}}},
                {"functionResponse": {"name": "cancel_trip", "response": {"result": "Trip cancelled."}}}
            ]}
        ])
    );
}

#[tokio::test]
async fn stop_tool_ends_the_run() {
    let call = ToolCallSpec::new(
        "flight_option_list",
        json!({"destination":"JFK","depart_date":"2026-12-01","return_date":"2026-12-08","cabin":"economy","origin":null}),
    );
    let script = Script::new().on(Match::Any, Reply::tool_calls(None, vec![call]));
    let mut h = harness(ProviderKind::Gemini, script).await;
    h.ask("Book").await.unwrap();
    assert_eq!(
        h.events(),
        vec![
            json!({"type":"thread.item.done","item":{"id":"msg_options","thread_id":THREAD,"type":"assistant_message","content":[{"annotations":[],"text":FLIGHT_OPTIONS_TEXT,"type":"output_text"}]}})
        ]
    );
    assert_eq!(h.model_requests().len(), 1);
}

#[tokio::test]
async fn tool_errors_reach_the_model_as_function_responses() {
    let calls = vec![ToolCallSpec::new("change_seat", json!({"flight_number": "OA1", "seat": "99Z"}))];
    let script = Script::new().rule(Rule::new(Match::Any, Reply::tool_calls(None, calls)).times(1));
    let mut h = harness(ProviderKind::Gemini, script).await;
    h.ask("seat").await.unwrap();
    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].body["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "change_seat", "response": {"result": "An error occurred while running the tool. Please try again. Error: Seat 99Z does not exist on flight OA1."}})
    );
    assert!(h.events().iter().all(|e| e["type"] != "client_effect"));
}

#[tokio::test]
async fn retries_429_with_retry_after_then_succeeds() {
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(429, Some(1))).times(1));
    let mut h = harness(ProviderKind::Gemini, script).await;
    let started = Instant::now();
    h.ask("hi").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(h.model_requests().len(), 2);
    h.expect_one_message(&word_deltas("Mock reply: hi"));
}

#[tokio::test]
async fn rejected_key_names_the_gemini_variable() {
    let mut h =
        harness_with(ProviderKind::Gemini, Script::new(), |c| c.gemini.api_key = Some(mock_llm::BAD_KEY.into())).await;
    assert_eq!(
        h.ask_failing("hi").await,
        ("The Gemini API rejected the API key (check the Gemini key).".into(), false)
    );
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn cut_stream_keeps_the_partial_text() {
    let script = Script::new().on(Match::Any, Reply::cut_after("alpha beta gamma", 2));
    let mut h = harness(ProviderKind::Gemini, script).await;
    let (message, allow_retry) = h.ask_failing("hi").await;
    assert!(
        message.starts_with(
            "The answer was interrupted. The connection to the Gemini model service broke off before the answer was complete. Please try again."
        ),
        "{message}"
    );
    assert!(allow_retry);
    h.expect_one_message(&["alpha", " beta"]);
    assert_eq!(assistant_text(&h.stored().await[0]), "alpha beta");
    assert_eq!(h.model_requests().len(), 1);
}

#[tokio::test]
async fn stall_times_out() {
    let script = Script::new().on(Match::Any, Reply::stall("alpha beta gamma", 2, 5_000));
    let mut h = harness_with(ProviderKind::Gemini, script, |c| c.timeouts.idle = Duration::from_millis(300)).await;
    assert_eq!(
        h.ask_failing("hi").await,
        (
            "The answer was interrupted. The Gemini API stopped sending for 0.3s (stalled stream). Please try again."
                .into(),
            true
        )
    );
    h.expect_one_message(&["alpha", " beta"]);
}

#[tokio::test]
async fn error_chunk_is_retried_then_reported() {
    let script = Script::new().on(Match::Any, Reply::stream_error("quota blew up"));
    let h = harness_with(ProviderKind::Gemini, script, |c| c.retry.max_retries = 1).await;
    assert_eq!(h.ask_failing("hi").await, ("The Gemini model failed to answer. Please try again.".into(), true));
    assert_eq!(h.model_requests().len(), 2);
}
