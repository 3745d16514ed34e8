//! The model-event → ChatKit-event mapping of the run loop, driven by an in-process scripted
//! provider (annotations, several parts, missing start events, malformed arguments, failures).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use agents::{
    FunctionCall, InputItem, ModelEvent, ModelRequest, ModelStream, Provider, ProviderError, ProviderKind, run,
};
use async_trait::async_trait;
use chatkit::AppError;
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
    let err = run(&support_agent(), fake.as_ref(), user_input("hi"), &h.sink).await.unwrap_err();
    let AppError::Custom { message, allow_retry } = err else { panic!("{err:?}") };
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
