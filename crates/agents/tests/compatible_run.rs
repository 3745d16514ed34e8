//! End-to-end runs against the mock's Chat Completions dialect (an OpenAI-compatible server): the
//! same ChatKit event sequences as the Responses provider, the request body, tool calls in pieces
//! and in parallel, reasoning shown as a workflow (never as answer text), usage negotiation, and every failure mode.

mod common;

use std::sync::Arc;

use agents::{Agent, ProviderKind, Tool, run};
use common::*;
use mock_llm::{ChatDialect, Match, Reply, Rule, Script, ToolCallSpec, word_deltas};
use serde_json::{Value, json};

#[tokio::test]
async fn plain_answer_streams_the_same_events_as_the_responses_provider() {
    let mut h = harness(ProviderKind::Compatible, Script::new()).await;
    h.ask("Hello there").await.unwrap();

    let id = h.expect_one_message(&word_deltas("Mock reply: Hello there"));
    assert!(id.starts_with("msg_"), "{id}");
    let stored = h.stored().await;
    assert_eq!(assistant_text(&stored[0]), "Mock reply: Hello there");

    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].header("authorization"), None, "no key, no bearer");
    let body = reqs[0].body.as_object().unwrap();
    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
    assert_eq!(keys, ["model", "messages", "tools", "temperature", "stream", "stream_options"]);
    assert_eq!(body["model"], json!(COMPATIBLE_MODEL));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["temperature"].to_string(), "0.4");
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "You are a concierge."}, {"role": "user", "content": "Hello there"}])
    );
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 3);
    assert_eq!(
        tools[0],
        json!({"type": "function", "function": {"name": "change_seat", "description": "Move the passenger to a different seat on a flight.", "parameters": ChangeSeat.parameters()}})
    );
}

#[tokio::test]
async fn usage_of_every_call_is_summed() {
    let script = Script::new()
        .rule(Rule::new(Match::Any, Reply::tool_call("cancel_trip", json!({}))).times(1))
        .after_tool_reply(Reply::text("Cancelled."));
    let h = harness(ProviderKind::Compatible, script).await;
    let (result, report) =
        agents::run_with_report(&support_agent(), h.provider.as_ref(), user_input("cancel"), &h.sink).await;
    result.unwrap();
    assert_eq!(report.model_calls, 2);
    // The mock counts a quarter of the body's bytes as prompt tokens, one token per word or call.
    let prompt: u64 = h.model_requests().iter().map(|r| (r.body.to_string().len() as u64 / 4).max(1)).sum();
    assert!(report.usage.input_tokens > 0 && report.usage.input_tokens.abs_diff(prompt) < 40, "{report:?} vs {prompt}");
    assert_eq!(report.usage.output_tokens, 1 + 1);
    assert_eq!((report.provider, report.model.as_str()), ("OpenAI-compatible", COMPATIBLE_MODEL));
}

#[tokio::test]
async fn key_and_extra_headers_are_sent() {
    let mut h = harness_with(ProviderKind::Compatible, Script::new(), |c| {
        c.compatible.access.api_key = Some("local-key-123".into());
        c.compatible.headers =
            vec![("HTTP-Referer".into(), "https://support.example".into()), ("X-Title".into(), "OpenSkies".into())];
    })
    .await;
    h.ask("hi").await.unwrap();
    let req = &h.model_requests()[0];
    assert_eq!(req.header("authorization"), Some("Bearer local-key-123"));
    assert_eq!(req.header("http-referer"), Some("https://support.example"));
    assert_eq!(req.header("x-title"), Some("OpenSkies"));
    assert!(!h.events().is_empty());
}

#[tokio::test]
async fn tool_calls_in_pieces_run_and_their_outputs_go_back_as_tool_messages() {
    let script = Script::new().rule(
        Rule::new(
            Match::user_text("seat"),
            Reply::tool_calls(
                Some("Let me do that.".into()),
                vec![
                    ToolCallSpec::new("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
                    ToolCallSpec::new("change_seat", json!({"flight_number": "OA477", "seat": "99Z"})),
                ],
            ),
        )
        .times(1),
    );
    let mut h = harness(ProviderKind::Compatible, script).await;
    h.ask("Move my seat please").await.unwrap();

    let events = h.events();
    let first = item_id(&events[0]);
    let mut expected = text_message_events(&first, &word_deltas("Let me do that."));
    expected.push(json!({"type":"client_effect","name":"customer_profile/update","data":{"seat":"14C"}}));
    let seen = h.seen_calls.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|c| c.call_id.starts_with("call_") && c.provider_data.is_none()));
    assert_eq!(seen[0].arguments, r#"{"flight_number":"OA476","seat":"14C"}"#);
    let ok = r#"{"result":"Seat updated to 14C on flight OA476."}"#;
    let failed =
        "An error occurred while running the tool. Please try again. Error: Seat 99Z does not exist on flight OA477.";
    let second = item_id(&events[expected.len()]);
    expected.extend(text_message_events(&second, &word_deltas(&format!("Done: {ok}\n{failed}"))));
    assert_eq!(events, expected);

    let reqs = h.model_requests();
    assert_eq!(reqs.len(), 2);
    let messages = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(
        messages[2..],
        [
            json!({"role": "assistant", "content": "Let me do that.", "tool_calls": [
                {"id": seen[0].call_id, "type": "function", "function": {"name": "change_seat", "arguments": seen[0].arguments}},
                {"id": seen[1].call_id, "type": "function", "function": {"name": "change_seat", "arguments": seen[1].arguments}},
            ]}),
            json!({"role": "tool", "tool_call_id": seen[0].call_id, "content": ok}),
            json!({"role": "tool", "tool_call_id": seen[1].call_id, "content": failed}),
        ]
    );
}

#[tokio::test]
async fn parallel_calls_run_concurrently() {
    let calls = vec![
        ToolCallSpec::new("rendezvous", json!({"name": "a"})),
        ToolCallSpec::new("rendezvous", json!({"name": "b"})),
    ];
    let script = Script::new().rule(Rule::new(Match::Any, Reply::tool_calls(None, calls)).times(1));
    let h = harness(ProviderKind::Compatible, script).await;
    let agent = Agent::new("A", "i").with_tool(Arc::new(Rendezvous(Arc::new(tokio::sync::Barrier::new(2)))));
    run(&agent, h.provider.as_ref(), user_input("meet"), &h.sink).await.unwrap();
    let seen = h.seen_calls.lock().unwrap().clone();
    let messages = h.model_requests()[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": seen[0].call_id, "content": "met a"}));
    assert_eq!(messages[4], json!({"role": "tool", "tool_call_id": seen[1].call_id, "content": "met b"}));
}

#[tokio::test]
async fn reasoning_in_either_field_shows_as_a_reasoning_workflow_not_as_answer_text() {
    for in_reasoning_field in [false, true] {
        let dialect = ChatDialect {
            reasoning: Some("The user greets me.".into()),
            reasoning_in_reasoning_field: in_reasoning_field,
            ..Default::default()
        };
        let mut h = harness(ProviderKind::Compatible, Script::new().chat(dialect)).await;
        h.ask("hi").await.unwrap();
        let events = h.events();
        assert_eq!(events[0]["item"]["type"], "workflow", "{events:?}");
        let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "thread.item.done").collect();
        assert_eq!(done.len(), 2, "{events:?}");
        assert_eq!(done[0]["item"]["workflow"]["type"], "reasoning");
        assert_eq!(done[0]["item"]["workflow"]["tasks"][0]["content"], "The user greets me.");
        assert_eq!(done[1]["item"]["content"][0]["text"], "Mock reply: hi");
        let wf = item_id(&events[0]);
        let answer_events: Vec<Value> =
            events.iter().filter(|e| e["item_id"] != wf && e["item"]["id"] != wf).cloned().collect();
        assert_eq!(answer_events, text_message_events(&item_id(&answer_events[0]), &word_deltas("Mock reply: hi")));
    }
}

#[tokio::test]
async fn a_server_rejecting_stream_options_is_asked_without_them_from_then_on() {
    let dialect = ChatDialect { reject_stream_options: true, ..Default::default() };
    let h = harness(ProviderKind::Compatible, Script::new().chat(dialect)).await;
    h.ask("hi").await.unwrap();
    h.ask("again").await.unwrap();
    let reqs = h.model_requests();
    let with_options: Vec<bool> = reqs.iter().map(|r| r.body.get("stream_options").is_some()).collect();
    assert_eq!(with_options, [true, false, false]);
    let texts: Vec<String> = h.stored().await.iter().map(assistant_text).collect();
    assert_eq!(texts, ["Mock reply: hi", "Mock reply: again"]);
}

#[tokio::test]
async fn a_model_without_tool_support_is_a_clear_error_without_retry() {
    let body = json!({"error": {"message": "registry.ollama.ai/library/gemma2:2b does not support tools", "type": "api_error", "param": null, "code": null}});
    let script = Script::new().on(Match::Any, Reply::HttpError { status: 400, body, retry_after: None });
    let mut h = harness(ProviderKind::Compatible, script).await;
    assert_eq!(
        h.ask_failing("hi").await,
        (
            "The OpenAI-compatible model does not support tool calls, which this assistant needs; the server's model setting needs changing."
                .into(),
            false
        )
    );
    assert_eq!(h.model_requests().len(), 1);
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn http_failures_are_retried_then_reported() {
    let script = Script::new().rule(Rule::new(Match::Any, Reply::http_error(500, None)).times(2));
    let h = harness(ProviderKind::Compatible, script).await;
    h.ask("hi").await.unwrap();
    assert_eq!(h.model_requests().len(), 3);

    let script = Script::new().on(Match::Any, Reply::http_error(503, None));
    let h = harness(ProviderKind::Compatible, script).await;
    assert_eq!(
        h.ask_failing("hi").await,
        ("The OpenAI-compatible model service failed to answer (HTTP 503). Please try again.".into(), true)
    );
    assert_eq!(h.model_requests().len(), 3);

    let h = harness_with(ProviderKind::Compatible, Script::new(), |c| {
        c.compatible.access.api_key = Some(mock_llm::BAD_KEY.into())
    })
    .await;
    assert_eq!(
        h.ask_failing("hi").await,
        ("The OpenAI-compatible API rejected the API key (check the compatible key).".into(), false)
    );
    assert_eq!(h.model_requests().len(), 1);
}

#[tokio::test]
async fn in_stream_errors_cuts_and_finish_reasons() {
    // An error object before any output: retried (server_error), then reported.
    let script = Script::new().on(Match::Any, Reply::stream_error("engine exploded"));
    let h = harness(ProviderKind::Compatible, script).await;
    assert_eq!(
        h.ask_failing("hi").await,
        ("The OpenAI-compatible model failed to answer. Please try again.".into(), true)
    );
    assert_eq!(h.model_requests().len(), 3);

    // A cut after two words: the partial text is kept, then the error.
    let script = Script::new().on(Match::Any, Reply::cut_after("one two three four", 2));
    let h = harness(ProviderKind::Compatible, script).await;
    let (message, allow_retry) = h.ask_failing("hi").await;
    assert!(
        message
            .starts_with("The answer was interrupted. The connection to the OpenAI-compatible model service broke off"),
        "{message}"
    );
    assert!(allow_retry);
    assert_eq!(assistant_text(&h.stored().await[0]), "one two");

    // `length` after text: the text stands; `content_filter`: the text is kept and the turn fails.
    let dialect = ChatDialect { finish_reason: Some("length".into()), ..Default::default() };
    let h = harness(ProviderKind::Compatible, Script::new().chat(dialect)).await;
    h.ask("hi").await.unwrap();
    assert_eq!(assistant_text(&h.stored().await[0]), "Mock reply: hi");
    let dialect = ChatDialect { finish_reason: Some("content_filter".into()), ..Default::default() };
    let h = harness(ProviderKind::Compatible, Script::new().chat(dialect)).await;
    assert_eq!(
        h.ask_failing("hi").await,
        (
            "The answer was interrupted. The OpenAI-compatible model declined to answer: its safety system blocked this request or the answer."
                .into(),
            false
        )
    );
    // `length` in the middle of a tool call fails without running it.
    let dialect = ChatDialect { finish_reason: Some("length".into()), ..Default::default() };
    let script = Script::new().on(Match::Any, Reply::tool_call("cancel_trip", json!({})));
    let mut h = harness(ProviderKind::Compatible, script.chat(dialect)).await;
    assert!(h.ask_failing("cancel").await.0.contains("failed to answer"));
    assert!(h.events().is_empty(), "the cut call did not run");
}
