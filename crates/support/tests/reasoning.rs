//! Reasoning models end to end over HTTP, with the mock model: the reasoning summary streams as
//! chatkit-python's reasoning workflow (every event readable as a ChatKit event), the reasoning item
//! goes back with its `encrypted_content` in the next request of the turn (the mock answers 400
//! without it), the workflow is stored and listed after a restart, and its thoughts never reach the
//! model on later turns. Also: a tool shows its progress, and Gemini's thoughts show the same way.

mod common;

use common::*;
use mock_llm::{Match, Reply, Rule, Script};
use serde_json::{Value, json};
use support::config::{Config, EffortChoice, Secret, SummaryChoice};

const THOUGHT_1: &str = "Checking the seat map for OA476";
const THOUGHT_2: &str = "Seat 14C is free";

fn script() -> Script {
    Script::new().rule(
        Rule::new(
            Match::user_text("seat"),
            Reply::reasoned(
                &[THOUGHT_1, THOUGHT_2],
                Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": "14C"})),
            ),
        )
        .times(1),
    )
}

fn reasoning_config(dir: &TempDir, mock: &mock_llm::MockServer) -> Config {
    Config {
        reasoning_effort: Some(EffortChoice::Low),
        reasoning_summary: Some(SummaryChoice::Auto),
        tool_progress_delay_ms: 0,
        ..config(dir, Some(mock))
    }
}

fn thought(content: &str) -> Value {
    json!({"status_indicator": "none", "type": "thought", "content": content})
}

/// Every event must read as one of our ChatKit event types, and write back the same; with
/// `CHATKIT_PYTHON` set (a Python with `openai-chatkit==1.6.5` installed) they must also validate
/// against chatkit-python's own types.
fn assert_chatkit_events(events: &[Value]) {
    for e in events {
        let typed: chatkit::types::ThreadStreamEvent =
            serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{err}: {e}"));
        assert_eq!(&serde_json::to_value(&typed).unwrap(), e);
    }
    validate_with_chatkit_python("ThreadStreamEvent", events);
}

#[tokio::test]
async fn openai_reasoning_shows_as_a_workflow_is_replayed_within_the_turn_and_stored() {
    let dir = TempDir::new("reasoning");
    let mock = mock(script()).await;
    let server = TestServer::start(reasoning_config(&dir, &mock)).await;
    let events = server.stream(create("Please move my seat to 14C")).await;
    assert_chatkit_events(&events);
    let thread_id = thread_id_of(&events);
    let words = |t: &str| word_count(t);
    let mut expected = create_prefix();
    expected.push("thread.item.added:workflow".into());
    expected.push("thread.item.updated:workflow.task.added".into());
    expected.extend(std::iter::repeat_n("thread.item.updated:workflow.task.updated".to_string(), words(THOUGHT_1)));
    expected.push("thread.item.updated:workflow.task.added".into());
    expected.push("progress_update".into());
    expected.push(PROFILE_UPDATE.into());
    expected.push("thread.item.done:workflow".into());
    let got = kinds(&events);
    assert_eq!(got[..expected.len()], expected[..], "{got:#?}");
    assert!(got[expected.len()..].iter().all(|k| !k.contains("workflow") && k != "error"), "{got:#?}");

    let workflow = events.iter().find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "workflow").unwrap();
    assert_eq!(workflow["item"]["workflow"]["type"], "reasoning");
    assert_eq!(workflow["item"]["workflow"]["tasks"], json!([thought(THOUGHT_1), thought(THOUGHT_2)]));
    assert_eq!(workflow["item"]["workflow"]["expanded"], false);
    assert!(workflow["item"]["workflow"]["summary"]["duration"].is_u64());
    let progress = events.iter().find(|e| e["type"] == "progress_update").unwrap();
    assert_eq!(progress["text"], "Moving you to seat 14C…");
    assert!(assistant_texts(&events).last().unwrap().starts_with("Done: "), "{got:#?}");

    // The settings went out, and the reasoning item came back whole before the call it led to.
    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["reasoning"], json!({"effort": "low", "summary": "auto"}));
    assert_eq!(requests[0]["include"], json!(["reasoning.encrypted_content"]));
    let input = requests[1]["input"].as_array().unwrap();
    let rs = input.iter().position(|i| i["type"] == "reasoning").expect("reasoning item replayed");
    assert!(input[rs]["encrypted_content"].as_str().unwrap().starts_with("mock-enc:"));
    assert_eq!(input[rs + 1]["type"], "function_call");
    assert!(input[rs + 1]["id"].as_str().unwrap().starts_with("fc_"));

    // Stored, and listed after a restart.
    server.stop().await;
    let server = TestServer::start(reasoning_config(&dir, &mock)).await;
    let items = server.items(&thread_id).await;
    validate_with_chatkit_python("ThreadItem", &items);
    let stored = items.iter().find(|i| i["type"] == "workflow").expect("workflow listed");
    assert_eq!(stored["workflow"], workflow["item"]["workflow"]);

    // The next turn sends neither the thoughts nor the reasoning item to the model.
    let events = server.stream(add_message(&thread_id, "Thanks!")).await;
    assert_chatkit_events(&events);
    let last = model_requests(&mock).pop().unwrap();
    let text = last["input"].to_string();
    assert!(!text.contains(THOUGHT_1) && !text.contains(THOUGHT_2) && !text.contains("\"reasoning\""), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn without_reasoning_settings_the_request_and_events_are_unchanged() {
    let dir = TempDir::new("reasoning-off");
    let mock = mock(Script::new()).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    let events = server.stream(create("hello")).await;
    assert!(kinds(&events).iter().all(|k| !k.contains("workflow") && k != "progress_update"));
    let request = model_requests(&mock).pop().unwrap();
    assert_eq!(request["include"], json!([]));
    assert!(request.get("reasoning").is_none());
    server.stop().await;
}

#[tokio::test]
async fn gemini_thoughts_show_as_one_thought() {
    let dir = TempDir::new("reasoning-gemini");
    let mock =
        mock(Script::new().on(Match::Any, Reply::reasoned(&["Reading", "the question"], Reply::text("Hi there"))))
            .await;
    let config = Config {
        openai_api_key: None,
        gemini_api_key: Some(Secret::new("test-key")),
        gemini_base_url: mock.gemini_base_url(),
        reasoning_summary: Some(SummaryChoice::Auto),
        ..config(&dir, None)
    };
    let server = TestServer::start(config).await;
    let events = server.stream(create("hello")).await;
    assert_chatkit_events(&events);
    let done = events.iter().find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "workflow").unwrap();
    assert_eq!(done["item"]["workflow"]["tasks"], json!([thought("Reading\n\nthe question")]));
    let k = kinds(&events);
    let wf_done = k.iter().position(|k| k == "thread.item.done:workflow").unwrap();
    let msg_added = k.iter().position(|k| k == "thread.item.added:assistant_message").unwrap();
    assert!(wf_done < msg_added, "{k:#?}");
    let request = mock.requests().into_iter().find(|r| r.path.contains("streamGenerateContent")).unwrap();
    assert_eq!(request.body["generationConfig"]["thinkingConfig"], json!({"includeThoughts": true}));
    server.stop().await;
}

const PREAMBLE: &str = "Let me move you to 14C.";
const THOUGHT_3: &str = "The seat change went through";
const FINAL: &str = "You are now in seat 14C.";

/// The labels of a reasoning workflow streamed from its first part (`first` words) followed by
/// `later` parts shown whole, then closed.
fn workflow_kinds(first: &str, later: usize) -> Vec<String> {
    let mut out = strings(&["thread.item.added:workflow", "thread.item.updated:workflow.task.added"]);
    // Each further word updates the task, then the part's final text updates it once more.
    out.extend(std::iter::repeat_n("thread.item.updated:workflow.task.updated".to_string(), word_count(first)));
    out.extend(std::iter::repeat_n("thread.item.updated:workflow.task.added".to_string(), later));
    out.push("thread.item.done:workflow".into());
    out
}

/// Reasoning, a preamble message and a call in one response, then reasoning and the answer in the
/// next: the preamble closes the first workflow (chatkit-python closes a workflow when a message
/// starts), the next reasoning opens a new one, and the preamble goes back to the model whole, with
/// its own id, right after its reasoning item (the mock, like the API, answers 400 otherwise).
#[tokio::test]
async fn a_preamble_closes_the_workflow_and_goes_back_with_its_id() {
    let dir = TempDir::new("reasoning-preamble");
    let script = Script::new()
        .rule(
            Rule::new(
                Match::user_text("seat"),
                Reply::reasoned(
                    &[THOUGHT_1, THOUGHT_2],
                    Reply::tool_calls(
                        Some(PREAMBLE.into()),
                        vec![mock_llm::ToolCallSpec::new(
                            "change_seat",
                            json!({"flight_number": "OA476", "seat": "14C"}),
                        )],
                    ),
                ),
            )
            .times(1),
        )
        .rule(Rule::new(Match::AfterToolOutput, Reply::reasoned(&[THOUGHT_3], Reply::text(FINAL))).times(1));
    let mock = mock(script).await;
    let server = TestServer::start(reasoning_config(&dir, &mock)).await;
    let events = server.stream(create("Please move my seat to 14C")).await;
    assert_chatkit_events(&events);
    let expected = concat(&[
        create_prefix(),
        workflow_kinds(THOUGHT_1, 1),
        text_message_kinds(word_count(PREAMBLE)),
        strings(&["progress_update", PROFILE_UPDATE]),
        workflow_kinds(THOUGHT_3, 0),
        text_message_kinds(word_count(FINAL)),
        strings(&["thread.updated"]),
    ]);
    assert_eq!(kinds(&events), expected);
    let workflows: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "workflow").collect();
    assert_eq!(workflows[0]["item"]["workflow"]["tasks"], json!([thought(THOUGHT_1), thought(THOUGHT_2)]));
    assert_eq!(workflows[1]["item"]["workflow"]["tasks"], json!([thought(THOUGHT_3)]));
    assert_ne!(workflows[0]["item"]["id"], workflows[1]["item"]["id"]);
    assert_eq!(assistant_texts(&events), [PREAMBLE, FINAL]);

    // The second request hands back the first response's items unchanged and in order, the message
    // with the id the user's client saw, then the tool output.
    let requests = model_requests(&mock);
    assert_eq!(requests.len(), 2);
    let input = requests[1]["input"].as_array().unwrap();
    let rs = input.iter().position(|i| i["type"] == "reasoning").expect("reasoning item replayed");
    let preamble_id = events
        .iter()
        .find(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message")
        .map(|e| e["item"]["id"].clone())
        .unwrap();
    assert_eq!(input[rs + 1]["id"], preamble_id);
    assert_eq!(input[rs + 1]["status"], "completed");
    assert_eq!(input[rs + 1]["content"][0]["text"], PREAMBLE);
    assert_eq!(input[rs + 2]["type"], "function_call");
    assert_eq!(input[rs + 3]["type"], "function_call_output");
    assert_eq!(input.len(), rs + 4);
    server.stop().await;
}

/// Reasoning without a summary (a reasoning effort but no summary asked for): chatkit-python still
/// shows an empty reasoning workflow, closed with its duration when the answer starts.
#[tokio::test]
async fn reasoning_without_a_summary_shows_an_empty_closed_workflow() {
    let dir = TempDir::new("reasoning-no-summary");
    let mock = mock(Script::new().on(Match::Any, Reply::reasoned(&[], Reply::text(FINAL)))).await;
    let config = Config { reasoning_summary: None, ..reasoning_config(&dir, &mock) };
    let server = TestServer::start(config).await;
    let events = server.stream(create("hello")).await;
    assert_chatkit_events(&events);
    let expected = concat(&[
        create_prefix(),
        strings(&["thread.item.added:workflow", "thread.item.done:workflow"]),
        text_message_kinds(word_count(FINAL)),
        strings(&["thread.updated"]),
    ]);
    assert_eq!(kinds(&events), expected);
    let done = &events[4]["item"]["workflow"];
    assert_eq!(done["tasks"], json!([]));
    assert_eq!(done["expanded"], false);
    assert!(done["summary"]["duration"].is_u64());
    let request = model_requests(&mock).pop().unwrap();
    assert_eq!(request["reasoning"], json!({"effort": "low"}));
    // The reasoning the model reported (the mock counts one token for a reasoning item without a
    // summary) is in the turn's usage.
    let res = server.client.get(server.url("/support/usage")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let usage: Value = res.json().await.unwrap();
    assert_eq!(usage["total"]["reasoning_tokens"], 1, "{usage}");
    server.stop().await;
}

/// Tool progress through the real timer over HTTP: a tool held up (here by a lock on the SQLite
/// file, taken while the model still streams its reasoning) shows its progress text once it has run
/// for `TOOL_PROGRESS_DELAY_MS`, while the reasoning workflow stays open; the same tool without the
/// lock finishes first and shows nothing.
#[tokio::test]
async fn a_slow_tool_shows_progress_and_a_fast_one_does_not() {
    let dir = TempDir::new("reasoning-progress");
    let call = |seat: &str| Reply::tool_call("change_seat", json!({"flight_number": "OA476", "seat": seat}));
    let thinking = "one two three four five six";
    let script = Script::new()
        .rule(Rule::new(Match::user_text("slow"), Reply::reasoned(&[thinking], call("14C"))))
        .rule(Rule::new(Match::user_text("fast"), call("15D")))
        .delta_delay_ms(60);
    let mock = mock(script).await;
    let server = TestServer::start(Config { tool_progress_delay_ms: 150, ..reasoning_config(&dir, &mock) }).await;

    let res = server.post(&create("slow seat change please")).await;
    let mut reader = SseReader::new(res);
    let mut events = Vec::new();
    let mut lock: Option<rusqlite::Connection> = None;
    let started = std::time::Instant::now();
    while let Some(event) = tokio::time::timeout(std::time::Duration::from_secs(20), reader.next()).await.unwrap() {
        let kind = kinds(std::slice::from_ref(&event)).remove(0);
        if kind == "thread.item.updated:workflow.task.added" && lock.is_none() {
            // The model is still streaming its reasoning; the tool's write will wait for this lock.
            let conn = rusqlite::Connection::open(dir.db_file()).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            lock = Some(conn);
        }
        if kind == "progress_update" {
            // Shown while the tool waits: release it.
            let conn = lock.take().expect("the lock was taken before the tool ran");
            conn.execute_batch("COMMIT").unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "the tool never showed progress");
        events.push(event);
    }
    assert!(lock.is_none(), "no progress shown: {:#?}", kinds(&events));
    assert_chatkit_events(&events);
    let k = kinds(&events);
    let progress = k.iter().position(|k| k == "progress_update").unwrap();
    assert_eq!(k[progress + 1], PROFILE_UPDATE, "{k:#?}");
    assert_eq!(events[progress], json!({"type": "progress_update", "text": "Moving you to seat 14C…"}));
    // The workflow stays open while the tool runs: progress does not close it.
    let wf_done = k.iter().position(|k| k == "thread.item.done:workflow").unwrap();
    assert!(wf_done > progress, "{k:#?}");

    let thread_id = thread_id_of(&events);
    let events = server.stream(add_message(&thread_id, "fast seat change please")).await;
    let k = kinds(&events);
    assert!(k.contains(&PROFILE_UPDATE.to_string()), "{k:#?}");
    assert!(!k.contains(&"progress_update".to_string()), "{k:#?}");
    server.stop().await;
}
