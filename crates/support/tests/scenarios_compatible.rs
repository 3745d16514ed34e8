//! The OpenSkies scenarios through `MODEL_PROVIDER=openai-compatible` end to end over HTTP: the real
//! server, a temporary SQLite database, and the mock model speaking Chat Completions. Each scenario runs
//! once through the Responses provider and once through the Chat Completions one, with the same script;
//! the ChatKit events must be the same (ids and times aside), and so must the app's state. Failures end
//! with a clear error event and leave a usable thread.

#![recursion_limit = "256"]

mod common;

use std::collections::HashMap;

use common::*;
use mock_llm::{Match, MockServer, NoToolsServer, Reply, Script};
use serde_json::{Value, json};
use support::compatible::CompatibleServerSettings;
use support::config::{Config, ProviderChoice};

/// The server's configuration with the mock as an OpenAI-compatible server (no key, no OpenAI key).
fn compatible_config(dir: &TempDir, mock: &MockServer) -> Config {
    Config {
        model_provider: Some(ProviderChoice::OpenaiCompatible),
        model: Some("qwen3:8b".into()),
        compatible: CompatibleServerSettings {
            compatible_base_url: Some(mock.openai_base_url()),
            ..Default::default()
        },
        ..config(dir, None)
    }
}

/// One server per provider, each with its own mock running `script`.
struct Pair {
    _dirs: (TempDir, TempDir),
    responses_mock: MockServer,
    responses: TestServer,
    compatible_mock: MockServer,
    compatible: TestServer,
}

async fn pair(script: Script) -> Pair {
    let (d1, d2) = (TempDir::new("compat-responses"), TempDir::new("compat-chat"));
    let responses_mock = mock(script.clone()).await;
    let compatible_mock = mock(script).await;
    let responses = TestServer::with_mock(&d1, &responses_mock).await;
    let compatible = TestServer::start(compatible_config(&d2, &compatible_mock)).await;
    Pair { _dirs: (d1, d2), responses_mock, responses, compatible_mock, compatible }
}

/// The events with every id replaced by its order of first appearance (`id#1`, …) and every time by `T`,
/// so two runs that made the same events compare equal, and an id reused where it should not be does not.
fn normalized(events: &[Value]) -> Vec<Value> {
    fn walk(v: &mut Value, ids: &mut HashMap<String, usize>) {
        match v {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match (key.as_str(), &*value) {
                        ("id" | "item_id" | "thread_id" | "call_id", Value::String(s)) => {
                            let next = ids.len() + 1;
                            let n = *ids.entry(s.clone()).or_insert(next);
                            *value = json!(format!("id#{n}"));
                        }
                        ("created_at" | "updated_at" | "timestamp", Value::String(_)) => *value = json!("T"),
                        _ => walk(value, ids),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, ids)),
            _ => {}
        }
    }
    let mut ids = HashMap::new();
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            walk(&mut e, &mut ids);
            e
        })
        .collect()
}

fn chat_requests(mock: &MockServer) -> Vec<Value> {
    mock.requests().into_iter().filter(|r| r.path == "/v1/chat/completions").map(|r| r.body).collect()
}

#[tokio::test]
async fn seat_change_gives_the_same_events_and_state() {
    let script = Script::new()
        .on(
            Match::user_text("seat 14C"),
            Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": "14c"})),
        )
        .after_tool_reply(Reply::text("Done: seat 14C on OA476."));
    let p = pair(script).await;
    let expected = p.responses.stream(create("Move me to seat 14C on flight OA476.")).await;
    let events = p.compatible.stream(create("Move me to seat 14C on flight OA476.")).await;
    assert_eq!(normalized(&events), normalized(&expected));
    assert_eq!(kinds(&events), new_thread_kinds(&[PROFILE_UPDATE], "Done: seat 14C on OA476."));
    let (thread_r, thread) = (thread_id_of(&expected), thread_id_of(&events));
    let profile = p.compatible.customer(&thread).await;
    assert_eq!(profile["segments"][0]["seat"], "14C");
    // The stored thread is the same too.
    assert_eq!(normalized(&p.compatible.items(&thread).await), normalized(&p.responses.items(&thread_r).await));
    assert!(model_requests(&p.compatible_mock).is_empty(), "only Chat Completions was used");
    let requests = chat_requests(&p.compatible_mock);
    assert_eq!(requests.len(), 2);
    assert_eq!(model_requests(&p.responses_mock).len(), 2, "both providers made the same model calls");
    let names: Vec<&str> =
        requests[0]["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["change_seat", "cancel_trip", "add_checked_bag", "flight_option_list", "request_assistance"]);
    let last = requests[1]["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "tool");
    assert_eq!(last["content"], r#"{"result":"Seat updated to 14C on flight OA476."}"#);
}

#[tokio::test]
async fn checked_bag_after_confirmation_gives_the_same_events() {
    let ask = "I can add one checked bag to your reservation. Reply yes to confirm.";
    let done = "Added: you now have 1 checked bag.";
    let script = Script::new()
        .on(
            Match::AllOf(vec![Match::user_text("yes"), Match::assistant_text("checked bag")]),
            Reply::tool_call("add_checked_bag", json!({})),
        )
        .on(Match::user_text("checked bag"), Reply::text(ask))
        .after_tool_reply(Reply::text(done));
    let p = pair(script).await;
    let first_r = p.responses.stream(create("Add one more checked bag to the reservation.")).await;
    let first_c = p.compatible.stream(create("Add one more checked bag to the reservation.")).await;
    assert_eq!(normalized(&first_c), normalized(&first_r));
    let (thread_r, thread_c) = (thread_id_of(&first_r), thread_id_of(&first_c));
    assert_eq!(p.compatible.customer(&thread_c).await["bags_checked"], 0);
    let second_r = p.responses.stream(add_message(&thread_r, "Yes")).await;
    let second_c = p.compatible.stream(add_message(&thread_c, "Yes")).await;
    assert_eq!(normalized(&second_c), normalized(&second_r));
    assert_eq!(kinds(&second_c), next_turn_kinds(&[PROFILE_UPDATE], done));
    assert_eq!(p.compatible.customer(&thread_c).await["bags_checked"], 1);
    // The second turn's model input carries the first answer as an assistant message.
    let requests = chat_requests(&p.compatible_mock);
    let messages = requests[1]["messages"].as_array().unwrap();
    assert!(messages.iter().any(|m| m["role"] == "assistant" && m["content"] == ask), "{messages:?}");
}

#[tokio::test]
async fn flight_options_widget_gives_the_same_events() {
    let script = Script::new().on(
        Match::user_text("Book a trip to Paris"),
        Reply::tool_call(
            "flight_option_list",
            json!({"destination": "CDG", "depart_date": "2025-11-03", "return_date": "2025-11-10", "cabin": "business", "origin": null}),
        ),
    );
    let p = pair(script).await;
    let expected = p.responses.stream(create("Book a trip to Paris, Nov 3 to Nov 10, business.")).await;
    let events = p.compatible.stream(create("Book a trip to Paris, Nov 3 to Nov 10, business.")).await;
    assert_eq!(normalized(&events), normalized(&expected));
    assert!(kinds(&events).iter().any(|k| k == "thread.item.done:widget"), "{:?}", kinds(&events));
    assert_eq!(chat_requests(&p.compatible_mock).len(), 1, "the widget tool ends the turn");
}

#[tokio::test]
async fn failures_end_with_a_clear_error_and_a_usable_thread() {
    let mock = mock(Script::new()).await;
    let dir = TempDir::new("compat-failures");
    let server = TestServer::start(compatible_config(&dir, &mock)).await;
    // A model without tool support: one clear error, not retried.
    let unsupported = json!({"error": {"message": "registry.ollama.ai/library/gemma2:2b does not support tools"}});
    mock.set_script(
        Script::new().on(Match::Any, Reply::HttpError { status: 400, body: unsupported, retry_after: None }),
    );
    let events = server.stream(create("Hello")).await;
    let thread = thread_id_of(&events);
    let error = events.iter().find(|e| e["type"] == "error").expect("an error event");
    assert_eq!(
        error["message"],
        "The OpenAI-compatible model does not support tool calls, which this assistant needs; the server's model setting needs changing."
    );
    assert_eq!(error["allow_retry"], false);
    assert_eq!(chat_requests(&mock).len(), 1);
    // A server failing with 503 (retries are off in tests): an error the user may retry.
    mock.set_script(Script::new().on(Match::Any, Reply::http_error(503, None)));
    let events = server.stream(add_message(&thread, "Still there?")).await;
    let error = events.iter().find(|e| e["type"] == "error").expect("an error event");
    assert_eq!(error["allow_retry"], true);
    // The thread still works once the server answers again.
    mock.set_script(Script::new());
    let events = server.stream(add_message(&thread, "Hello again")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Hello again".to_string()]);
    let items = server.items(&thread).await;
    let users = items.iter().filter(|i| i["type"] == "user_message").count();
    assert_eq!(users, 3, "every user message was kept");
}

#[tokio::test]
async fn each_server_refusing_tools_gives_one_clear_error() {
    // The mock answers as each server does for a model or setup without tool support (llama.cpp with a
    // 500); retries are on, and none is made: one request, one clear error, the thread still usable.
    let mock = mock(Script::new()).await;
    let dir = TempDir::new("compat-no-tools");
    let config = Config { model_max_retries: 2, ..compatible_config(&dir, &mock) };
    let server = TestServer::start(config).await;
    let mut thread: Option<String> = None;
    for preset in [NoToolsServer::Ollama, NoToolsServer::LlamaCpp, NoToolsServer::Vllm, NoToolsServer::Openrouter] {
        let mut script = Script::new();
        script.chat.tools_unsupported = Some(preset);
        mock.set_script(script);
        mock.clear_requests();
        let request = match thread.as_deref() {
            None => create("Hello"),
            Some(id) => add_message(id, "Hello"),
        };
        let events = server.stream(request).await;
        thread.get_or_insert_with(|| thread_id_of(&events));
        let errors: Vec<&Value> = events.iter().filter(|e| e["type"] == "error").collect();
        assert_eq!(errors.len(), 1, "{preset:?}: {events:#?}");
        assert_eq!(
            errors[0]["message"],
            "The OpenAI-compatible model does not support tool calls, which this assistant needs; the server's model setting needs changing.",
            "{preset:?}"
        );
        assert_eq!(errors[0]["allow_retry"], false, "{preset:?}");
        assert_eq!(chat_requests(&mock).len(), 1, "{preset:?}: not retried");
    }
    mock.set_script(Script::new());
    let thread = thread.expect("a thread");
    let events = server.stream(add_message(&thread, "Hello again")).await;
    assert_eq!(assistant_texts(&events), vec!["Mock reply: Hello again".to_string()]);
}
