//! Unit tests of the Gemini request conversion and chunk parser.

use serde_json::{Value, json};

use super::request::{contents, request_body};
use super::stream::Parser;
use crate::error_class::ErrorClass;
use crate::input::InputItem;
use crate::provider::{FunctionCall, ModelEvent, ProviderError};
use crate::sse::{EventParser, EventQueue};
use crate::usage::Usage;

#[test]
fn contents_merge_roles_and_replay_signatures() {
    let input = vec![
        InputItem::user_text("profile"),
        InputItem::user_text_and_image("look", "data:image/png;base64,AAAA"),
        InputItem::assistant_text("ok"),
        InputItem::call("call_1", "change_seat", r#"{"seat":"14C"}"#, Some(json!({"thoughtSignature": "sig=="}))),
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
            ModelEvent::Usage {
                usage: Usage { input_tokens: 12, output_tokens: 5, cached_tokens: 8, reasoning_tokens: 2 }
            },
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
            code: Some("UNAVAILABLE".into())
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
    let spent = Usage { input_tokens: 5, ..Usage::default() };
    assert_eq!(q.pop_front(), Some(Ok(ModelEvent::Usage { usage: spent })), "the blocked prompt's tokens count");
    let err = q.pop_front().unwrap().unwrap_err();
    assert_eq!((err.class(), err.code(), err.is_retryable()), (ErrorClass::ContentBlocked, Some("SAFETY"), false));
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    p.on_data(r#"{"candidates":[{"content":{"parts":[{"text":"par"}]}}]}"#, &mut q);
    p.on_eof(&mut q);
    assert!(matches!(q.pop_back(), Some(Err(ProviderError::StreamCut { .. }))));
}

fn parse_chunks(chunks: &[Value]) -> Vec<ModelEvent> {
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    for c in chunks {
        p.on_data(&c.to_string(), &mut q);
    }
    p.on_eof(&mut q);
    q.into_iter().map(Result::unwrap).collect()
}

#[test]
fn thoughts_become_one_reasoning_part_before_the_answer() {
    let events = parse_chunks(&[
        json!({"candidates": [{"content": {"parts": [{"text": "**Plan**", "thought": true}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": " more", "thought": true}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}]}),
    ]);
    let ModelEvent::ReasoningStarted { item_id } = &events[0] else { panic!("{events:?}") };
    assert_eq!(
        events[1..4],
        [
            ModelEvent::ReasoningDelta { item_id: item_id.clone(), part_index: 0, delta: "**Plan**".into() },
            ModelEvent::ReasoningDelta { item_id: item_id.clone(), part_index: 0, delta: " more".into() },
            ModelEvent::ReasoningPartDone { item_id: item_id.clone(), part_index: 0, text: "**Plan** more".into() },
        ]
    );
    assert!(matches!(events[4], ModelEvent::MessageStarted { .. }));
    assert_eq!(events.last(), Some(&ModelEvent::Completed { usage: None }));
}

#[test]
fn streamed_call_pieces_are_assembled_and_nameless_calls_ignored() {
    let events = parse_chunks(&[
        json!({"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"thoughtSignature": "S", "functionCall": {"name": "change_seat", "partialArgs": [{"jsonPath": "$.seat", "stringValue": "1", "willContinue": true}], "willContinue": true}}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"functionCall": {"partialArgs": [{"jsonPath": "$.seat", "stringValue": "4C"}, {"jsonPath": "$.n", "numberValue": 2}, {"jsonPath": "$.o.ok", "boolValue": true}], "willContinue": true}}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"functionCall": {}}]}, "finishReason": "STOP"}]}),
    ]);
    let calls: Vec<&FunctionCall> = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::FunctionCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(calls[0].name, "change_seat");
    let args: Value = serde_json::from_str(&calls[0].arguments).unwrap();
    assert_eq!(args, json!({"seat": "14C", "n": 2, "o": {"ok": true}}));
    assert_eq!(calls[0].provider_data, Some(json!({"thoughtSignature": "S"})));
}

#[test]
fn thinking_config_only_when_set() {
    use crate::provider::ModelRequest;
    use crate::reasoning::{Reasoning, ReasoningEffort, ReasoningSummary};
    let request = ModelRequest { temperature: Some(0.4), ..ModelRequest::default() };
    let body = request_body(&request, &Reasoning::default());
    assert_eq!(body["generationConfig"], json!({"temperature": 0.4}));
    let bare = request_body(&ModelRequest::default(), &Reasoning::default());
    assert!(bare.get("generationConfig").is_none());
    let on = Reasoning { effort: Some(ReasoningEffort::Medium), summary: Some(ReasoningSummary::Auto) };
    let body = request_body(&request, &on);
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.4, "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 8192}})
    );
}

/// A Gemini 2.5 stream in the shape Google sends it with `includeThoughts` (SSE frames ended by
/// CRLF CRLF, thought summaries in `thought: true` parts, the call signed with a `thoughtSignature`,
/// `thoughtsTokenCount` in the last `usageMetadata`): the thoughts stream as one reasoning part done
/// before the call, the signature goes with the call, and the thinking tokens are counted.
#[test]
fn recorded_thoughts_then_a_signed_call() {
    let body = include_str!("../../tests/fixtures/gemini_thoughts_call.sse");
    let mut decoder = crate::sse::SseDecoder::default();
    let mut data = std::collections::VecDeque::new();
    decoder.feed(body.as_bytes(), &mut data).unwrap();
    assert!(decoder.is_between_events());
    let chunks: Vec<Value> = data.iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let thoughts: Vec<String> = chunks[..3]
        .iter()
        .map(|c| c.pointer("/candidates/0/content/parts/0/text").and_then(Value::as_str).unwrap().to_string())
        .collect();
    let signature = chunks[3].pointer("/candidates/0/content/parts/0/thoughtSignature").unwrap().clone();
    // The running usage of each chunk is reported as it comes (a call cut short still counts it).
    let (reports, events): (Vec<ModelEvent>, Vec<ModelEvent>) =
        parse_chunks(&chunks).into_iter().partition(|e| matches!(e, ModelEvent::Usage { .. }));
    let ModelEvent::ReasoningStarted { item_id } = &events[0] else { panic!("{events:?}") };
    let deltas: Vec<ModelEvent> = thoughts
        .iter()
        .map(|t| ModelEvent::ReasoningDelta { item_id: item_id.clone(), part_index: 0, delta: t.clone() })
        .collect();
    assert_eq!(events[1..4], deltas[..]);
    assert_eq!(
        events[4],
        ModelEvent::ReasoningPartDone { item_id: item_id.clone(), part_index: 0, text: thoughts.concat() }
    );
    let ModelEvent::FunctionCall(call) = &events[5] else { panic!("{events:?}") };
    assert_eq!(call.name, "change_seat");
    assert_eq!(
        serde_json::from_str::<Value>(&call.arguments).unwrap(),
        json!({"flight_number": "OA476", "seat": "14C"})
    );
    assert_eq!(call.provider_data.as_ref().and_then(|d| d.get("thoughtSignature")), Some(&signature));
    let Some(ModelEvent::Completed { usage: Some(usage) }) = events.last() else { panic!("{events:?}") };
    assert_eq!(usage.reasoning_tokens, 141);
    assert_eq!(reports.last(), Some(&ModelEvent::Usage { usage: *usage }), "the last report is the final usage");
    assert!(!events.iter().any(|e| matches!(e, ModelEvent::MessageStarted { .. })), "{events:?}");
}

/// Gemini repeats the running `usageMetadata` in chunk after chunk: a total is reported once, when it
/// changes, and a failure does not repeat one already reported; the completion carries the final one.
#[test]
fn repeated_usage_is_reported_once() {
    let usage = json!({"promptTokenCount": 7, "candidatesTokenCount": 2});
    let text = |t: &str| json!({"candidates": [{"content": {"parts": [{"text": t}]}}], "usageMetadata": usage});
    let spent = Usage { input_tokens: 7, output_tokens: 2, ..Usage::default() };
    let mut done = text("c");
    done["candidates"][0]["finishReason"] = json!("STOP");
    let events = parse_chunks(&[text("a"), text("b"), done]);
    let reports: Vec<&ModelEvent> = events.iter().filter(|e| matches!(e, ModelEvent::Usage { .. })).collect();
    assert_eq!(reports, [&ModelEvent::Usage { usage: spent }]);
    assert_eq!(events.last(), Some(&ModelEvent::Completed { usage: Some(spent) }));

    let more = Usage { output_tokens: 3, ..spent };
    let mut grown = text("c");
    grown["usageMetadata"]["candidatesTokenCount"] = json!(3);
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    for chunk in [text("a"), text("b"), grown] {
        p.on_data(&chunk.to_string(), &mut q);
    }
    p.on_eof(&mut q);
    let reports: Vec<ModelEvent> =
        q.iter().filter_map(|e| e.as_ref().ok().cloned()).filter(|e| matches!(e, ModelEvent::Usage { .. })).collect();
    assert_eq!(reports, [ModelEvent::Usage { usage: spent }, ModelEvent::Usage { usage: more }]);
    assert!(matches!(q.back(), Some(Err(ProviderError::StreamCut { .. }))), "{q:?}");
}
