//! End-to-end runs against the mock OpenAI Responses API: exact ChatKit event sequences, tools,
//! stop tools, the call budget, request bodies, and every resilience path.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agents::{Agent, ProviderKind, Tool, run};
use chatkit::AppError;
use common::*;
use mock_llm::word_deltas;
use mock_llm::{Match, Reply, Rule, Script, ToolCallSpec};
use serde_json::json;

#[tokio::test]
async fn plain_answer_streams_exact_events_and_sends_the_expected_body() {
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    h.ask("Hello there").await.unwrap();

    let id = h.expect_one_message(&word_deltas("Mock reply: Hello there"));
    assert!(id.starts_with("msg_"), "{id}");
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id.as_str(), assistant_text(&stored[0]).as_str()), (id.as_str(), "Mock reply: Hello there"));

    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/responses");
    assert_eq!(reqs[0].header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    let body = reqs[0].body.as_object().unwrap();
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(keys, ["include", "model", "stream", "temperature", "instructions", "input", "tools"]);
    assert_eq!(body["include"], json!([]));
    assert_eq!(body["model"], json!(agents::DEFAULT_OPENAI_MODEL));
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["temperature"].to_string(), "0.4");
    assert_eq!(body["instructions"], json!("You are a concierge."));
    assert_eq!(
        body["input"],
        json!([{"type":"message","role":"user","content":[{"type":"input_text","text":"Hello there"}]}])
    );
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 3);
    assert_eq!(
        tools[0],
        json!({"type":"function","name":"change_seat","description":"Move the passenger to a different seat on a flight.","parameters":ChangeSeat.parameters(),"strict":true})
    );
    assert_eq!(tools[2]["parameters"], FlightOptions.parameters(), "strict schemas are sent as is");
}

#[tokio::test]
async fn tool_effects_stream_before_the_follow_up_and_outputs_go_back() {
    let script = Script::new().on(
        Match::user_text("seat"),
        Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
    );
    let mut h = harness(ProviderKind::OpenAi, script).await;
    h.ask("Move my seat please").await.unwrap();

    let events = h.events();
    assert_eq!(events[0], json!({"type":"client_effect","name":"customer_profile/update","data":{"seat":"14C"}}));
    let id = item_id(&events[1]);
    let output = r#"{"result":"Seat updated to 14C on flight OA476."}"#;
    let mut expected = vec![events[0].clone()];
    expected.extend(text_message_events(&id, &word_deltas(&format!("Done: {output}"))));
    assert_eq!(events, expected);

    let calls = h.seen_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].call_id.starts_with("call_"));
    assert_eq!(calls[0].provider_data.as_ref().unwrap()["id"].as_str().unwrap()[..3], *"fc_");
    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 2);
    let input = reqs[1].body["input"].as_array().unwrap().clone();
    assert_eq!(
        input,
        vec![
            json!({"type":"message","role":"user","content":[{"type":"input_text","text":"Move my seat please"}]}),
            json!({"type":"function_call","call_id":calls[0].call_id,"name":"change_seat","arguments":"{\"flight_number\":\"OA476\",\"seat\":\"14C\"}"}),
            json!({"type":"function_call_output","call_id":calls[0].call_id,"output":output}),
        ]
    );
}

#[tokio::test]
async fn stop_tool_ends_the_run_after_its_step() {
    let call = ToolCallSpec::new(
        "flight_option_list",
        json!({"destination":"JFK","depart_date":"2026-12-01","return_date":"2026-12-08","cabin":"economy","origin":null}),
    );
    let script = Script::new().on(Match::Any, Reply::tool_calls(Some("Let me check.".into()), vec![call]));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    h.ask("Book a trip").await.unwrap();

    let events = h.events();
    let id = item_id(&events[0]);
    let mut expected = text_message_events(&id, &["Let", " me", " check."]);
    expected.push(json!({"type":"thread.item.done","item":{"id":"msg_options","thread_id":THREAD,"type":"assistant_message","content":[{"annotations":[],"text":FLIGHT_OPTIONS_TEXT,"type":"output_text"}]}}));
    assert_eq!(events, expected);
    assert_eq!(h.model_requests().len(), 1, "no model call after a stop tool");
    let stored: Vec<String> = h.stored().await.iter().map(assistant_text).collect();
    assert_eq!(stored, ["Let me check.", FLIGHT_OPTIONS_TEXT]);
}

#[tokio::test]
async fn tool_errors_invalid_arguments_and_unknown_tools_go_back_as_text() {
    let calls = vec![
        ToolCallSpec::new("change_seat", json!({"flight_number": "OA1", "seat": "99Z"})),
        ToolCallSpec::new("change_seat", json!({"flight_number": "OA1", "seat": 5})),
        ToolCallSpec::new("book_hotel", json!({"city": "Paris"})),
    ];
    let script = Script::new().rule(Rule::new(Match::Any, Reply::tool_calls(None, calls)).times(1));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    h.ask("Do things").await.unwrap();

    let events = h.events();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"thread.item.added"), "no effect from failed tools: {types:?}");
    assert_eq!(types.last(), Some(&"thread.item.done"));

    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 2);
    let outputs: Vec<String> = reqs[1].body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| i["output"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outputs,
        [
            "An error occurred while running the tool. Please try again. Error: Seat 99Z does not exist on flight OA1.",
            "An error occurred while running the tool. Please try again. Error: Invalid JSON input for tool change_seat: invalid type: integer `5`, expected a string",
            "An error occurred while running the tool. Please try again. Error: Tool book_hotel not found in agent OpenSkies Concierge",
        ]
    );
}

#[tokio::test]
async fn calls_of_one_step_run_concurrently_and_outputs_keep_call_order() {
    let calls = vec![
        ToolCallSpec::new("rendezvous", json!({"name": "a"})),
        ToolCallSpec::new("rendezvous", json!({"name": "b"})),
    ];
    let script = Script::new().rule(Rule::new(Match::Any, Reply::tool_calls(None, calls)).times(1));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    let agent = Agent::new("A", "i").with_tool(Arc::new(Rendezvous(Arc::new(tokio::sync::Barrier::new(2)))));
    run(&agent, h.provider.as_ref(), user_input("meet"), &h.sink).await.unwrap();

    let events = h.events();
    let mut progress: Vec<&str> = events[..2].iter().map(|e| e["text"].as_str().unwrap()).collect();
    progress.sort();
    assert_eq!(progress, ["arrived a", "arrived b"]);
    let seen = h.seen_calls.lock().unwrap().clone();
    let input = h.model_requests()[1].body["input"].as_array().unwrap().clone();
    assert_eq!(input[3], json!({"type":"function_call_output","call_id":seen[0].call_id,"output":"met a"}));
    assert_eq!(input[4], json!({"type":"function_call_output","call_id":seen[1].call_id,"output":"met b"}));
}

#[tokio::test]
async fn exceeding_max_model_calls_is_a_clear_error() {
    let script = Script::new().on(Match::Any, Reply::tool_call("cancel_trip", json!({})));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    let mut agent = support_agent();
    agent.max_model_calls = 3;
    let err = run(&agent, h.provider.as_ref(), user_input("loop"), &h.sink).await.unwrap_err();
    assert_eq!(
        custom(err),
        (
            "The assistant stopped after 3 model calls without finishing its answer. Please rephrase or try again."
                .into(),
            true
        )
    );
    assert_eq!(h.model_requests().len(), 3);
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn retries_429_after_retry_after_then_succeeds() {
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(429, Some(1))).times(1));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    let started = Instant::now();
    h.ask("hi").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    assert_eq!(h.model_requests().len(), 2);
    h.expect_one_message(&word_deltas("Mock reply: hi"));
}

#[tokio::test]
async fn retries_500_twice_then_succeeds() {
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(500, None)).times(2));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    h.ask("hi").await.unwrap();
    assert_eq!(h.model_requests().len(), 3);
    h.expect_one_message(&word_deltas("Mock reply: hi"));
}

#[tokio::test]
async fn persistent_503_gives_up_after_the_retries_with_the_provider_message() {
    let script = Script::new().on(Match::Any, Reply::http_error(503, None));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    assert_eq!(
        h.ask_failing("hi").await,
        ("The OpenAI model service failed to answer (HTTP 503). Please try again.".into(), true)
    );
    assert_eq!(h.model_requests().len(), 3, "first attempt + 2 retries");
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn rejected_key_is_reported_clearly_without_retry_or_secret() {
    let mut h =
        harness_with(ProviderKind::OpenAi, Script::new(), |c| c.openai.api_key = Some(mock_llm::BAD_KEY.into())).await;
    assert_eq!(
        h.ask_failing("hi").await,
        ("The OpenAI API rejected the API key (check the OpenAI key).".into(), false)
    );
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn cut_stream_keeps_the_partial_text_and_ends_with_an_error() {
    let script = Script::new().on(Match::Any, Reply::cut_after("one two three four", 2));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    let (message, allow_retry) = h.ask_failing("hi").await;
    assert!(
        message.starts_with(
            "The answer was interrupted. The connection to the OpenAI model service broke off before the answer was complete. Please try again."
        ),
        "{message}"
    );
    assert!(message.ends_with("Please try again."), "{message}");
    assert!(allow_retry);
    h.expect_one_message(&["one", " two"]);
    let stored = h.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(assistant_text(&stored[0]), "one two");
    assert_eq!(h.model_requests().len(), 1, "no retry once text was streamed");
    // The events are pinned above; the message must not carry the key either.
    assert!(!message.contains("SECRET"));
}

#[tokio::test]
async fn stalled_stream_times_out_and_keeps_the_partial_text() {
    let script = Script::new().on(Match::Any, Reply::stall("one two three", 1, 5_000));
    let mut h = harness_with(ProviderKind::OpenAi, script, |c| c.timeouts.idle = Duration::from_millis(300)).await;
    let started = Instant::now();
    let err = h.ask("hi").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        custom(err),
        (
            "The answer was interrupted. The OpenAI API stopped sending for 0.3s (stalled stream). Please try again."
                .into(),
            true
        )
    );
    h.expect_one_message(&["one"]);
    assert_eq!(assistant_text(&h.stored().await[0]), "one");
}

#[tokio::test]
async fn response_failed_before_output_is_retried_then_reported() {
    let script = Script::new().on(Match::Any, Reply::stream_error("engine exploded"));
    let mut h = harness(ProviderKind::OpenAi, script).await;
    assert_eq!(h.ask_failing("hi").await, ("The OpenAI model failed to answer. Please try again.".into(), true));
    assert_eq!(h.model_requests().len(), 3, "server_error before any output is transient");
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn client_disconnect_stops_the_run() {
    let long: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
    let script = Script::new().on(Match::Any, Reply::text(long.join(" "))).delta_delay_ms(50);
    let mut h = harness(ProviderKind::OpenAi, script).await;
    let (_tx, dummy) = tokio::sync::mpsc::channel(1);
    let mut rx = std::mem::replace(&mut h.rx, dummy);
    let consumer = async move {
        for _ in 0..3 {
            rx.recv().await.unwrap();
        }
        drop(rx);
    };
    let agent = support_agent();
    let started = Instant::now();
    let (result, ()) = tokio::join!(run(&agent, h.provider.as_ref(), user_input("hi"), &h.sink), consumer);
    assert!(matches!(result, Err(AppError::Disconnected)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "stopped long before the 2 s answer ended");
}
