//! The model-event → ChatKit-event mapping of the run loop, driven by an in-process scripted
//! provider (annotations, several parts, missing start events, malformed arguments, failures).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use agents::{
    FunctionCall, InputItem, ModelEvent, ModelRequest, ModelStream, Provider, ProviderError, ProviderKind, run,
};
use async_trait::async_trait;
use chatkit::types::{Annotation, AnnotationType};
use common::*;
use mock_llm::Script;
use serde_json::json;

type Response = Vec<Result<ModelEvent, ProviderError>>;

struct Fake {
    responses: Mutex<VecDeque<Response>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl Fake {
    fn new(responses: Vec<Response>) -> Arc<Self> {
        Arc::new(Fake { responses: Mutex::new(responses.into()), requests: Mutex::new(Vec::new()) })
    }
}

#[async_trait]
impl Provider for Fake {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        self.requests.lock().unwrap().push(request);
        let events = self
            .responses
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| vec![Ok(ModelEvent::Completed { usage: None })]);
        Ok(Box::pin(futures::stream::iter(events)))
    }
    fn name(&self) -> &'static str {
        "Fake"
    }
    fn model(&self) -> &str {
        "fake-1"
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

fn url_annotation() -> Annotation {
    Annotation {
        kind: AnnotationType::Annotation,
        source: json!({"title":"Ex","type":"url","url":"https://ex.com"}),
        index: Some(5),
    }
}

#[tokio::test]
async fn annotations_and_several_parts_map_exactly() {
    let file = Annotation {
        kind: AnnotationType::Annotation,
        source: json!({"title":"a.pdf","type":"file","filename":"a.pdf"}),
        index: Some(11),
    };
    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::MessageStarted { id: s("msg_resp1") }),
        Ok(ModelEvent::ContentPartStarted { message_id: s("msg_resp1"), content_index: 0 }),
        Ok(ModelEvent::TextDelta { message_id: s("msg_resp1"), content_index: 0, delta: s("Hello world") }),
        Ok(ModelEvent::Annotation { message_id: s("msg_resp1"), content_index: 0, annotation: url_annotation() }),
        Ok(ModelEvent::Annotation { message_id: s("msg_resp1"), content_index: 0, annotation: file.clone() }),
        Ok(ModelEvent::ContentPartDone { message_id: s("msg_resp1"), content_index: 0, text: s("Hello world") }),
        Ok(ModelEvent::ContentPartStarted { message_id: s("msg_resp1"), content_index: 1 }),
        Ok(ModelEvent::TextDelta { message_id: s("msg_resp1"), content_index: 1, delta: s("No.") }),
        Ok(ModelEvent::ContentPartDone { message_id: s("msg_resp1"), content_index: 1, text: s("No.") }),
        Ok(ModelEvent::MessageDone { id: s("msg_resp1") }),
        Ok(ModelEvent::Completed { usage: None }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap();
    let id = "msg_resp1";
    let upd = |u: serde_json::Value| json!({"type":"thread.item.updated","item_id":id,"update":u});
    let url = serde_json::to_value(url_annotation()).unwrap();
    let file = serde_json::to_value(file).unwrap();
    assert_eq!(
        h.events(),
        vec![
            json!({"type":"thread.item.added","item":{"id":id,"thread_id":THREAD,"type":"assistant_message","content":[]}}),
            upd(
                json!({"type":"assistant_message.content_part.added","content_index":0,"content":{"annotations":[],"text":"","type":"output_text"}})
            ),
            upd(json!({"type":"assistant_message.content_part.text_delta","content_index":0,"delta":"Hello world"})),
            upd(
                json!({"type":"assistant_message.content_part.annotation_added","content_index":0,"annotation_index":0,"annotation":url})
            ),
            upd(
                json!({"type":"assistant_message.content_part.annotation_added","content_index":0,"annotation_index":1,"annotation":file})
            ),
            upd(
                json!({"type":"assistant_message.content_part.done","content_index":0,"content":{"annotations":[],"text":"Hello world","type":"output_text"}})
            ),
            upd(
                json!({"type":"assistant_message.content_part.added","content_index":1,"content":{"annotations":[],"text":"","type":"output_text"}})
            ),
            upd(json!({"type":"assistant_message.content_part.text_delta","content_index":1,"delta":"No."})),
            upd(
                json!({"type":"assistant_message.content_part.done","content_index":1,"content":{"annotations":[],"text":"No.","type":"output_text"}})
            ),
            json!({"type":"thread.item.done","item":{"id":id,"thread_id":THREAD,"type":"assistant_message","content":[
                {"annotations":[url, file],"text":"Hello world","type":"output_text"},
                {"annotations":[],"text":"No.","type":"output_text"}]}}),
        ]
    );
    let stored = h.stored().await;
    assert_eq!(serde_json::to_value(&stored[0]).unwrap()["content"][0]["annotations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn missing_start_events_are_synthesized() {
    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::TextDelta { message_id: s("m1"), content_index: 0, delta: s("Hi") }),
        Ok(ModelEvent::MessageDone { id: s("m1") }),
        Ok(ModelEvent::Completed { usage: None }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap();
    assert_eq!(h.events(), text_message_events("m1", &["Hi"]));
}

#[tokio::test]
async fn malformed_and_empty_arguments_and_the_follow_up_request() {
    let call = |id: &str, name: &str, args: &str| {
        Ok(ModelEvent::FunctionCall(FunctionCall {
            call_id: s(id),
            name: s(name),
            arguments: s(args),
            provider_data: None,
        }))
    };
    let fake = Fake::new(vec![
        vec![
            call("c1", "change_seat", "{not json"),
            call("c2", "cancel_trip", ""),
            Ok(ModelEvent::Completed { usage: None }),
        ],
        vec![Ok(ModelEvent::MessageStarted { id: s("m2") }), Ok(ModelEvent::MessageDone { id: s("m2") })],
    ]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap();
    let requests = fake.requests.lock().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].temperature, Some(0.4));
    assert_eq!(requests[0].tools.len(), 3);
    assert_eq!(
        requests[1].input[1..],
        [
            InputItem::FunctionCall {
                call_id: s("c1"),
                name: s("change_seat"),
                arguments: s("{not json"),
                provider_data: None
            },
            InputItem::FunctionCall { call_id: s("c2"), name: s("cancel_trip"), arguments: s(""), provider_data: None },
            InputItem::FunctionCallOutput {
                call_id: s("c1"),
                output: s(
                    "An error occurred while running the tool. Please try again. Error: Invalid JSON input for tool change_seat: key must be a string at line 1 column 2"
                ),
            },
            InputItem::FunctionCallOutput { call_id: s("c2"), output: s(r#"{"result":"Trip cancelled."}"#) },
        ]
    );
    // An empty message (no parts) still completes as an item with empty content.
    let events = h.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["item"]["content"], json!([]));
}

#[tokio::test]
async fn failure_before_any_text_removes_the_started_message() {
    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::MessageStarted { id: s("m1") }),
        Err(ProviderError::StreamCut { provider: "Fake", message: s("reset") }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    let (message, allow_retry) =
        custom(run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap_err());
    assert_eq!(
        message,
        "The connection to the Fake model service broke off before the answer was complete. Please try again."
    );
    assert!(allow_retry);
    assert_eq!(
        h.events(),
        vec![
            json!({"type":"thread.item.added","item":{"id":"m1","thread_id":THREAD,"type":"assistant_message","content":[]}}),
            json!({"type":"thread.item.removed","item_id":"m1"}),
        ]
    );
    assert!(h.stored().await.is_empty());
}

#[tokio::test]
async fn assistant_text_of_the_step_is_sent_back_before_the_calls() {
    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::MessageStarted { id: s("m1") }),
        Ok(ModelEvent::TextDelta { message_id: s("m1"), content_index: 0, delta: s("Checking.") }),
        Ok(ModelEvent::ContentPartDone { message_id: s("m1"), content_index: 0, text: s("Checking.") }),
        Ok(ModelEvent::MessageDone { id: s("m1") }),
        Ok(ModelEvent::FunctionCall(FunctionCall {
            call_id: s("c1"),
            name: s("cancel_trip"),
            arguments: s("{}"),
            provider_data: Some(json!({"thoughtSignature": "sig"})),
        })),
        Ok(ModelEvent::Completed { usage: None }),
    ]]);
    let h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("cancel"), &h.sink).await.unwrap();
    let requests = fake.requests.lock().unwrap();
    assert_eq!(
        requests[1].input[1..3],
        [
            InputItem::assistant_text("Checking."),
            InputItem::FunctionCall {
                call_id: s("c1"),
                name: s("cancel_trip"),
                arguments: s("{}"),
                provider_data: Some(json!({"thoughtSignature": "sig"})),
            },
        ]
    );
}

fn reasoning(item: &str, part: usize, delta: &str) -> Result<ModelEvent, ProviderError> {
    Ok(ModelEvent::ReasoningDelta { item_id: s(item), part_index: part, delta: s(delta) })
}

fn reasoning_done(item: &str, part: usize, text: &str) -> Result<ModelEvent, ProviderError> {
    Ok(ModelEvent::ReasoningPartDone { item_id: s(item), part_index: part, text: s(text) })
}

fn thought(content: &str) -> serde_json::Value {
    json!({"status_indicator": "none", "type": "thought", "content": content})
}

/// chatkit-python's sequence: workflow added empty, the first part streamed into task 0, a later
/// part added whole when done, closed with a duration before the answer starts; the reasoning item
/// goes back in the next request of the run, ahead of the call, and the workflow stays open across
/// the tool call.
#[tokio::test]
async fn reasoning_streams_a_workflow_closed_by_the_answer() {
    let item = json!({"id": "rs_1", "type": "reasoning", "encrypted_content": "enc"});
    let fake = Fake::new(vec![
        vec![
            Ok(ModelEvent::ReasoningStarted { item_id: s("rs_1") }),
            reasoning("rs_1", 0, "Look"),
            reasoning("rs_1", 0, "ing"),
            reasoning_done("rs_1", 0, "Looking"),
            reasoning("rs_1", 1, "ignored while streaming"),
            reasoning_done("rs_1", 1, "Second"),
            Ok(ModelEvent::ReasoningItem { item: item.clone() }),
            Ok(ModelEvent::FunctionCall(FunctionCall {
                call_id: s("c1"),
                name: s("cancel_trip"),
                arguments: s("{}"),
                provider_data: Some(json!({"id": "fc_1"})),
            })),
            Ok(ModelEvent::Completed { usage: None }),
        ],
        vec![
            Ok(ModelEvent::ReasoningStarted { item_id: s("rs_2") }),
            reasoning_done("rs_2", 0, "Third"),
            Ok(ModelEvent::MessageStarted { id: s("m1") }),
            Ok(ModelEvent::TextDelta { message_id: s("m1"), content_index: 0, delta: s("Done") }),
            Ok(ModelEvent::MessageDone { id: s("m1") }),
            Ok(ModelEvent::Completed { usage: None }),
        ],
    ]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("cancel"), &h.sink).await.unwrap();
    let events = h.events();
    let wf = events[0]["item"]["id"].as_str().unwrap().to_string();
    assert!(wf.starts_with("wf_"), "{wf}");
    let upd = |u: serde_json::Value| json!({"type":"thread.item.updated","item_id":wf,"update":u});
    let tasks = [thought("Looking"), thought("Second"), thought("Third")];
    assert_eq!(
        events[..7],
        [
            json!({"type":"thread.item.added","item":{"id":wf,"thread_id":THREAD,"type":"workflow","workflow":{"type":"reasoning","tasks":[],"expanded":false}}}),
            upd(json!({"type":"workflow.task.added","task_index":0,"task":thought("Look")})),
            upd(json!({"type":"workflow.task.updated","task_index":0,"task":thought("Looking")})),
            upd(json!({"type":"workflow.task.updated","task_index":0,"task":thought("Looking")})),
            upd(json!({"type":"workflow.task.added","task_index":1,"task":thought("Second")})),
            upd(json!({"type":"workflow.task.added","task_index":2,"task":thought("Third")})),
            json!({"type":"thread.item.done","item":{"id":wf,"thread_id":THREAD,"type":"workflow","workflow":{"type":"reasoning","tasks":tasks,"summary":{"duration":0},"expanded":false}}}),
        ]
    );
    assert_eq!(events[7..], text_message_events("m1", &["Done"])[..]);
    let stored = h.stored().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(serde_json::to_value(&stored[0]).unwrap()["workflow"]["tasks"], json!(tasks));
    let requests = fake.requests.lock().unwrap();
    assert_eq!(requests[1].input[1], InputItem::Verbatim { item });
    assert!(matches!(requests[1].input[2], InputItem::FunctionCall { .. }));
}

/// In a response with reasoning, a message goes back whole (the provider's item, id included)
/// between its reasoning item and the call that followed, in output order; the user sees the same
/// message events as without reasoning.
#[tokio::test]
async fn a_message_after_reasoning_goes_back_whole() {
    let rs = json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "enc"});
    let msg = json!({"id": "m1", "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Checking."}]});
    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::ReasoningStarted { item_id: s("rs_1") }),
        Ok(ModelEvent::ReasoningItem { item: rs.clone() }),
        Ok(ModelEvent::MessageStarted { id: s("m1") }),
        Ok(ModelEvent::TextDelta { message_id: s("m1"), content_index: 0, delta: s("Checking.") }),
        Ok(ModelEvent::ContentPartDone { message_id: s("m1"), content_index: 0, text: s("Checking.") }),
        Ok(ModelEvent::MessageItem { item: msg.clone() }),
        Ok(ModelEvent::MessageDone { id: s("m1") }),
        Ok(ModelEvent::FunctionCall(FunctionCall {
            call_id: s("c1"),
            name: s("cancel_trip"),
            arguments: s("{}"),
            provider_data: Some(json!({"id": "fc_1"})),
        })),
        Ok(ModelEvent::Completed { usage: None }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("cancel"), &h.sink).await.unwrap();
    let events = h.events();
    // Workflow added, closed by the message, then the message exactly as without reasoning.
    assert_eq!(events[0]["item"]["workflow"]["tasks"], json!([]));
    assert_eq!(events[1]["type"], "thread.item.done");
    assert_eq!(events[1]["item"]["workflow"]["tasks"], json!([]));
    assert_eq!(events[2..7], text_message_events("m1", &["Checking."])[..]);
    let requests = fake.requests.lock().unwrap();
    assert_eq!(requests[1].input[1..3], [InputItem::Verbatim { item: rs }, InputItem::Verbatim { item: msg }]);
    assert!(matches!(&requests[1].input[3], InputItem::FunctionCall { call_id, .. } if call_id == "c1"));
}

/// A tool that shows an item closes the workflow first; a run that fails before any thought removes
/// its empty workflow.
#[tokio::test]
async fn a_tool_item_closes_the_workflow_and_a_failed_run_removes_an_empty_one() {
    let fake = Fake::new(vec![vec![
        reasoning("rs_1", 0, "Options"),
        Ok(ModelEvent::FunctionCall(FunctionCall {
            call_id: s("c1"),
            name: s("flight_option_list"),
            arguments: s("{}"),
            provider_data: None,
        })),
        Ok(ModelEvent::Completed { usage: None }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("fly"), &h.sink).await.unwrap();
    let kinds: Vec<String> = h
        .events()
        .iter()
        .map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["item"]["type"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            "thread.item.added workflow",
            "thread.item.updated ",
            "thread.item.done workflow",
            "thread.item.done assistant_message"
        ]
    );

    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::ReasoningStarted { item_id: s("rs_1") }),
        Err(ProviderError::StreamCut { provider: "Fake", message: s("gone") }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap_err();
    let events = h.events();
    assert_eq!(events[0]["type"], "thread.item.added");
    assert_eq!(events[1], json!({"type":"thread.item.removed","item_id":events[0]["item"]["id"]}));
    assert!(h.stored().await.is_empty());
}

/// Events naming an id that never started continue the open message instead of splitting it.
#[tokio::test]
async fn a_changing_item_id_stays_one_message() {
    let fake = Fake::new(vec![vec![
        Ok(ModelEvent::MessageStarted { id: s("m1") }),
        Ok(ModelEvent::TextDelta { message_id: s("m2"), content_index: 0, delta: s("Hi") }),
        Ok(ModelEvent::TextDelta { message_id: s("m3"), content_index: 0, delta: s(" there") }),
        Ok(ModelEvent::ContentPartDone { message_id: s("m4"), content_index: 0, text: s("Hi there") }),
        Ok(ModelEvent::MessageDone { id: s("m5") }),
        Ok(ModelEvent::Completed { usage: None }),
    ]]);
    let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
    run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap();
    assert_eq!(h.events(), text_message_events("m1", &["Hi", " there"]));
    assert_eq!(h.stored().await.len(), 1);
}

/// Waits `0` ms, then answers; shows `Working on {0}…` when slow.
struct Slow(u64);

#[async_trait]
impl agents::Tool for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn description(&self) -> &str {
        "Takes its time."
    }
    fn parameters(&self) -> serde_json::Value {
        json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false})
    }
    fn progress_text(&self, _arguments: &serde_json::Value) -> Option<String> {
        Some(format!("Working on {}…", self.0))
    }
    async fn call(
        &self,
        _arguments: serde_json::Value,
        _ctx: &agents::ToolContext,
    ) -> Result<serde_json::Value, agents::ToolError> {
        tokio::time::sleep(std::time::Duration::from_millis(self.0)).await;
        Ok(json!("ok"))
    }
}

/// A tool slower than the agent's progress delay shows its progress text; a fast one shows nothing.
#[tokio::test]
async fn slow_tools_show_progress_and_fast_ones_do_not() {
    for (sleep_ms, delay_ms, shown) in [(400, 20, true), (0, 5_000, false), (0, 0, true)] {
        let fake = Fake::new(vec![vec![
            Ok(ModelEvent::FunctionCall(FunctionCall {
                call_id: s("c1"),
                name: s("slow"),
                arguments: s("{}"),
                provider_data: None,
            })),
            Ok(ModelEvent::Completed { usage: None }),
        ]]);
        let mut agent = agents::Agent::new("a", "i").with_tool(Arc::new(Slow(sleep_ms)));
        agent.progress_delay = std::time::Duration::from_millis(delay_ms);
        let mut h = harness(ProviderKind::OpenAi, Script::new()).await;
        run(&agent, fake.as_ref(), user_input("go"), &h.sink).await.unwrap();
        let progress: Vec<serde_json::Value> =
            h.events().into_iter().filter(|e| e["type"] == "progress_update").collect();
        let expected = if shown {
            vec![json!({"type": "progress_update", "text": format!("Working on {sleep_ms}…")})]
        } else {
            vec![]
        };
        assert_eq!(progress, expected, "sleep {sleep_ms} ms, delay {delay_ms} ms");
    }
}
