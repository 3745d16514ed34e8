//! Reasoning streams recorded in the shape OpenAI sends them (`crates/agents/tests/fixtures`),
//! replayed through the server over HTTP and compared event by event, field by field, with what
//! chatkit-python's `stream_agent_response` makes of the same streams (`scripts/chatkit_reference.py`,
//! run with `CHATKIT_PYTHON`; skipped without it). Ids chatkit-python's store makes up, timestamps
//! and durations are the only fields left out of the comparison.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::*;
use serde_json::{Value, json};
use support::config::{Config, EffortChoice, Secret, SummaryChoice};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agents/tests/fixtures").join(name)
}

/// A Responses endpoint that answers the n-th request with the n-th recorded stream, and keeps the
/// request bodies.
struct Replay {
    streams: Vec<String>,
    requests: Mutex<Vec<Value>>,
}

async fn responses(State(replay): State<Arc<Replay>>, body: Bytes) -> axum::response::Response {
    let n = {
        let mut requests = replay.requests.lock().unwrap();
        requests.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        requests.len() - 1
    };
    let stream = replay.streams.get(n).cloned().unwrap_or_default();
    axum::response::Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(axum::body::Body::from(stream))
        .unwrap()
}

/// Serves `files` in order on a loopback port; returns the base URL and the replay.
async fn serve(files: &[&str]) -> (String, Arc<Replay>) {
    let streams = files.iter().map(|f| std::fs::read_to_string(fixture(f)).unwrap()).collect();
    let replay = Arc::new(Replay { streams, requests: Mutex::new(Vec::new()) });
    let app = axum::Router::new().route("/v1/responses", post(responses)).with_state(replay.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), replay)
}

/// chatkit-python's events for `files` (one model call each), `None` without `CHATKIT_PYTHON`.
fn chatkit_python_events(files: &[&str]) -> Option<Vec<Value>> {
    let python = std::env::var_os("CHATKIT_PYTHON")?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chatkit_reference.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(files.iter().map(|f| fixture(f)))
        .output()
        .expect("CHATKIT_PYTHON runs");
    assert!(out.status.success(), "chatkit_reference.py failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

/// The events a turn's agent run produced: after `stream_options`, without the title, and without
/// the events of the app's tools (chatkit-python gets those from the app, not from the model).
fn run_events(events: &[Value]) -> Vec<Value> {
    let start = events.iter().position(|e| e["type"] == "stream_options").unwrap() + 1;
    events[start..]
        .iter()
        .filter(|e| !matches!(e["type"].as_str(), Some("thread.updated" | "progress_update" | "client_effect")))
        .cloned()
        .collect()
}

/// Replaces ids that are not the provider's by their order of appearance, and drops timestamps and
/// durations (checked to be there first).
fn normalized(events: &[Value]) -> Vec<Value> {
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut rename = |id: &Value| -> Value {
        let id = id.as_str().unwrap().to_string();
        if id.starts_with("msg_") {
            return json!(id);
        }
        let next = format!("local_{}", ids.len());
        json!(ids.entry(id).or_insert(next).clone())
    };
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(item) = e.get_mut("item") {
                item["id"] = rename(&item["id"]);
                let obj = item.as_object_mut().unwrap();
                assert!(obj.remove("created_at").is_some(), "no created_at: {item:?}", item = obj);
                obj.remove("thread_id");
                if let Some(summary) = item.pointer_mut("/workflow/summary") {
                    assert!(summary["duration"].is_u64(), "{summary}");
                    summary["duration"] = json!(0);
                }
            }
            if let Some(id) = e.get("item_id").cloned() {
                e["item_id"] = rename(&id);
            }
            e
        })
        .collect()
}

async fn compare(files: &[&str], summary: Option<SummaryChoice>) -> (Vec<Value>, Vec<Value>) {
    let dir = TempDir::new("reasoning-reference");
    let (base_url, replay) = serve(files).await;
    let config = Config {
        openai_api_key: Some(Secret::new("test-key")),
        openai_base_url: base_url,
        reasoning_effort: Some(EffortChoice::Low),
        reasoning_summary: summary,
        ..config(&dir, None)
    };
    let server = TestServer::start(config).await;
    let events = server.stream(create("Please move my seat to 14C")).await;
    server.stop().await;
    assert!(!events.iter().any(|e| e["type"] == "error"), "{events:#?}");
    assert_eq!(replay.requests.lock().unwrap().len(), files.len());
    let ours = run_events(&events);
    if let Some(reference) = chatkit_python_events(files) {
        let (ours, reference) = (normalized(&ours), normalized(&reference));
        for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
            assert_eq!(a, b, "event {i} differs from chatkit-python's");
        }
        assert_eq!(ours.len(), reference.len(), "ours: {ours:#?}\nchatkit-python: {reference:#?}");
    }
    let requests = replay.requests.lock().unwrap().clone();
    (ours, requests)
}

/// Reasoning with two summary parts, a preamble and a call, then (after the tool ran) reasoning
/// without a summary and the answer: the same events as chatkit-python's, and the second request
/// hands the first response's output items back as they came.
#[tokio::test]
async fn a_recorded_run_with_a_call_matches_chatkit_python() {
    let files = ["openai_reasoning_preamble_call.sse", "openai_reasoning_without_summary.sse"];
    let (ours, requests) = compare(&files, Some(SummaryChoice::Auto)).await;
    assert_eq!(ours.iter().filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "workflow").count(), 2);
    let recorded = std::fs::read_to_string(fixture(files[0])).unwrap();
    let done: Vec<Value> = recorded
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| e["item"].clone())
        .collect();
    let input = requests[1]["input"].as_array().unwrap();
    let rs = input.iter().position(|i| i["type"] == "reasoning").unwrap();
    assert_eq!(input[rs], done[0]);
    assert_eq!(input[rs + 1], done[1]);
    // The call goes back as the Agents SDK sends it: with its item id, without its status.
    let mut call = done[2].clone();
    call.as_object_mut().unwrap().remove("status");
    assert_eq!(input[rs + 2], call);
    assert_eq!(input[rs + 3]["type"], "function_call_output");
}

/// Reasoning without a summary, then the answer: an empty workflow closed by the answer, as
/// chatkit-python shows it.
#[tokio::test]
async fn a_recorded_answer_without_summary_matches_chatkit_python() {
    let (ours, _) = compare(&["openai_reasoning_without_summary.sse"], None).await;
    assert_eq!(ours[0]["item"]["workflow"], json!({"type": "reasoning", "tasks": [], "expanded": false}));
    assert_eq!(ours[1]["type"], "thread.item.done");
}

/// The usual flow of a reasoning model with a tool: reasoning and a call, then (after the tool ran)
/// reasoning with two summary parts and the answer. One workflow spans both model calls, as in
/// chatkit-python: only its first part streams, the later parts are added whole when done, and the
/// answer closes it.
#[tokio::test]
async fn a_recorded_call_then_answer_keeps_one_workflow_like_chatkit_python() {
    let files = ["openai_reasoning_call.sse", "openai_reasoning_answer.sse"];
    let (ours, requests) = compare(&files, Some(SummaryChoice::Detailed)).await;
    let workflows: Vec<&Value> =
        ours.iter().filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "workflow").collect();
    assert_eq!(workflows.len(), 1);
    assert_eq!(workflows[0]["item"]["workflow"]["tasks"].as_array().unwrap().len(), 3);
    let input = requests[1]["input"].as_array().unwrap();
    let rs = input.iter().position(|i| i["type"] == "reasoning").unwrap();
    assert_eq!(input[rs + 1]["type"], "function_call");
    assert_eq!(input[rs + 2]["type"], "function_call_output");
}
