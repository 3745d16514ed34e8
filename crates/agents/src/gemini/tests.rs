//! Unit tests of the Gemini request conversion and chunk parser.

use serde_json::{Value, json};

use super::request::contents;
use super::stream::Parser;
use crate::error_class::ErrorClass;
use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{FunctionCall, ModelEvent, ProviderError};
use crate::sse::{EventParser, EventQueue};
use crate::usage::Usage;

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
    p.on_data(r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"},{"functionCall":{"name":"t","args":{"a":1}},"thoughtSignature":"S1"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":3,"cachedContentTokenCount":8,"thoughtsTokenCount":2}}"#, &mut q);
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
            ModelEvent::Completed {
                usage: Some(Usage { input_tokens: 12, output_tokens: 5, cached_tokens: 8, reasoning_tokens: 2 })
            },
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
            retryable: true,
            code: Some("503".into())
        }))
    );
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#, &mut q);
    p.on_eof(&mut q);
    let err = q.pop_front().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "The Gemini API refused the request (content_blocked, code SAFETY): the response stopped early (finish reason: SAFETY)"
    );
    assert_eq!(err.class(), ErrorClass::ContentBlocked);
    for (reason, class) in [
        ("PROHIBITED_CONTENT", ErrorClass::ContentBlocked),
        ("MALFORMED_FUNCTION_CALL", ErrorClass::MalformedFunctionCall),
        ("MAX_TOKENS", ErrorClass::ModelFailed),
    ] {
        let mut p = Parser::default();
        let mut q = EventQueue::new();
        p.on_data(&format!(r#"{{"candidates":[{{"finishReason":"{reason}","index":0}}]}}"#), &mut q);
        p.on_eof(&mut q);
        let err = q.pop_front().unwrap().unwrap_err();
        assert_eq!((err.class(), err.code()), (class, Some(reason)));
    }
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5}}"#, &mut q);
    let err = q.pop_front().unwrap().unwrap_err();
    assert_eq!((err.class(), err.code(), err.is_retryable()), (ErrorClass::ContentBlocked, Some("SAFETY"), false));
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"candidates":[{"content":{"parts":[{"text":"par"}]}}]}"#, &mut q);
    p.on_eof(&mut q);
    assert!(matches!(q.pop_back(), Some(Err(ProviderError::StreamCut { .. }))));
}
