//! Unit tests of the Gemini request conversion and chunk parser.

use serde_json::{Value, json};

use super::request::contents;
use super::stream::Parser;
use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{FunctionCall, ModelEvent, ProviderError};
use crate::sse::{EventParser, EventQueue};

#[test]
fn contents_merge_roles_and_replay_signatures() {
    let input = vec![
        InputItem::user_text("profile"),
        InputItem::Message {
            role: Role::User,
            content: vec![
                ContentPart::InputText("look".into()),
                ContentPart::InputImage { url: "data:image/png;base64,AAAA".into() },
            ],
        },
        InputItem::assistant_text("ok"),
        InputItem::FunctionCall {
            call_id: "call_1".into(),
            name: "change_seat".into(),
            arguments: r#"{"seat":"14C"}"#.into(),
            provider_data: Some(json!({"thoughtSignature": "sig=="})),
        },
        InputItem::FunctionCallOutput { call_id: "call_1".into(), output: r#"{"result":"done"}"#.into() },
        InputItem::FunctionCallOutput { call_id: "call_x".into(), output: "plain".into() },
    ];
    let expected = json!([
        {"role": "user", "parts": [{"text": "profile"}, {"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
        {"role": "model", "parts": [{"text": "ok"}, {"functionCall": {"name": "change_seat", "args": {"seat": "14C"}}, "thoughtSignature": "sig=="}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "change_seat", "response": {"result": "done"}}},
            {"functionResponse": {"name": "unknown_tool", "response": {"result": "plain"}}}
        ]}
    ]);
    assert_eq!(Value::Array(contents(&input)), expected);
}

#[test]
fn chunks_become_one_message_then_calls() {
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}]}"#, &mut q);
    p.on_data(r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"},{"functionCall":{"name":"t","args":{"a":1}},"thoughtSignature":"S1"}]},"finishReason":"STOP","index":0}],"usageMetadata":{}}"#, &mut q);
    p.on_eof(&mut q);
    let events: Vec<ModelEvent> = q.into_iter().map(Result::unwrap).collect();
    let ModelEvent::MessageStarted { id } = &events[0] else { panic!("{events:?}") };
    assert!(id.starts_with("msg_"));
    let id = id.clone();
    let ModelEvent::FunctionCall(call) = &events[6] else { panic!("{events:?}") };
    assert!(call.call_id.starts_with("call_"));
    assert_eq!(
        events,
        vec![
            ModelEvent::MessageStarted { id: id.clone() },
            ModelEvent::ContentPartStarted { message_id: id.clone(), content_index: 0 },
            ModelEvent::TextDelta { message_id: id.clone(), content_index: 0, delta: "Hel".into() },
            ModelEvent::TextDelta { message_id: id.clone(), content_index: 0, delta: "lo".into() },
            ModelEvent::ContentPartDone { message_id: id.clone(), content_index: 0, text: "Hello".into() },
            ModelEvent::MessageDone { id },
            ModelEvent::FunctionCall(FunctionCall {
                call_id: call.call_id.clone(),
                name: "t".into(),
                arguments: r#"{"a":1}"#.into(),
                provider_data: Some(json!({"thoughtSignature": "S1"})),
            }),
            ModelEvent::Completed,
        ]
    );
}

#[test]
fn errors_and_early_stops() {
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#, &mut q);
    assert_eq!(
        q.pop_front(),
        Some(Err(ProviderError::Failed {
            provider: "Gemini",
            message: "The model is overloaded.".into(),
            retryable: true
        }))
    );
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#, &mut q);
    p.on_eof(&mut q);
    assert_eq!(
        q.pop_front().unwrap().unwrap_err().to_string(),
        "The Gemini model failed: the response stopped early (finish reason: SAFETY)"
    );
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"candidates":[{"content":{"parts":[{"text":"par"}]}}]}"#, &mut q);
    p.on_eof(&mut q);
    assert!(matches!(q.pop_back(), Some(Err(ProviderError::StreamCut { .. }))));
}
