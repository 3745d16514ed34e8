//! Unit tests of the OpenAI stream parser and request encoding.

use std::sync::Arc;

use chatkit::types::{Annotation, AnnotationType};
use serde_json::{Value, json};

use super::OpenAiProvider;
use super::request::{Body, FixedParts};
use super::stream::{Parser, StreamEvent, convert_annotation, leading_type, parse_event};
use crate::error_class::ErrorClass;
use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{FunctionCall, ModelEvent, ModelRequest, ProviderError, ToolSpec, f32_to_f64};
use crate::reasoning::{Reasoning, ReasoningEffort, ReasoningSummary};
use crate::sse::{EventParser, EventQueue};
use crate::transport::Transport;
use crate::usage::Usage;

/// The request body built as a JSON value: the reference [`Body`] must serialize to, byte for byte.
fn request_body(model: &str, request: &ModelRequest) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("include".into(), json!([]));
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(f32_to_f64(t)));
    }
    body.insert("instructions".into(), json!(request.instructions));
    body.insert("input".into(), Value::Array(request.input.iter().map(input_item).collect()));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters, "strict": true})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

/// One input item as a JSON value.
fn input_item(item: &InputItem) -> Value {
    match item {
        InputItem::Message { role, content } => {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let parts: Vec<Value> = content
                .iter()
                .map(|p| match p {
                    ContentPart::InputText(text) => json!({"type": "input_text", "text": text}),
                    ContentPart::InputImage { url } => {
                        json!({"type": "input_image", "image_url": url, "detail": "auto"})
                    }
                    ContentPart::OutputText(text) => {
                        json!({"type": "output_text", "text": text, "annotations": []})
                    }
                })
                .collect();
            json!({"type": "message", "role": role, "content": parts})
        }
        InputItem::FunctionCall { call_id, name, arguments, .. } => {
            json!({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})
        }
        InputItem::FunctionCallOutput { call_id, output } => {
            json!({"type": "function_call_output", "call_id": call_id, "output": output})
        }
        InputItem::Verbatim { item } => item.clone(),
    }
}

fn parse(events: &[Value]) -> Vec<Result<ModelEvent, ProviderError>> {
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    for e in events {
        p.on_data(&e.to_string(), &mut q);
    }
    p.on_eof(&mut q);
    q.into_iter().collect()
}

#[test]
fn maps_text_annotations_calls_and_skips_unknown() {
    let out = parse(&[
        json!({"type":"response.created","response":{}}),
        json!({"type":"response.brand_new_event","x":1}),
        json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_1","content":[],"role":"assistant"}}),
        json!({"type":"response.content_part.added","item_id":"msg_1","content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}),
        json!({"type":"response.output_text.delta","item_id":"msg_1","content_index":0,"delta":"Hi"}),
        json!({"type":"response.output_text.annotation.added","item_id":"msg_1","content_index":0,"annotation_index":0,"annotation":{"type":"url_citation","url":"https://ex.com","title":"Ex","start_index":0,"end_index":2}}),
        json!({"type":"response.output_text.annotation.added","item_id":"msg_1","content_index":0,"annotation_index":1,"annotation":{"type":"file_path","file_id":"f"}}),
        json!({"type":"response.output_text.done","item_id":"msg_1","content_index":0,"text":"Hi"}),
        json!({"type":"response.output_item.done","item":{"type":"message","id":"msg_1","content":[]}}),
        json!({"type":"response.output_item.added","item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"t","arguments":""}}),
        json!({"type":"response.output_item.done","item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"t","arguments":"{\"a\":1}"}}),
        json!({"type":"response.output_item.done","item":{"type":"reasoning","id":"rs_1"}}),
        json!({"type":"response.completed","response":{"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":20},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4}}}}),
    ]);
    let m = |s: &str| s.to_string();
    let expected = vec![
        ModelEvent::MessageStarted { id: m("msg_1") },
        ModelEvent::ContentPartStarted { message_id: m("msg_1"), content_index: 0 },
        ModelEvent::TextDelta { message_id: m("msg_1"), content_index: 0, delta: m("Hi") },
        ModelEvent::Annotation {
            message_id: m("msg_1"),
            content_index: 0,
            annotation: Annotation {
                kind: AnnotationType::Annotation,
                source: json!({"title":"Ex","type":"url","url":"https://ex.com"}),
                index: Some(2),
            },
        },
        ModelEvent::ContentPartDone { message_id: m("msg_1"), content_index: 0, text: m("Hi") },
        ModelEvent::MessageDone { id: m("msg_1") },
        ModelEvent::FunctionCall(FunctionCall {
            call_id: m("call_1"),
            name: m("t"),
            arguments: m("{\"a\":1}"),
            provider_data: Some(json!({"id":"fc_1"})),
        }),
        // A reasoning item is kept whole, to go back in the next request of the run.
        ModelEvent::ReasoningItem { item: json!({"type":"reasoning","id":"rs_1"}) },
        ModelEvent::Completed {
            usage: Some(Usage { input_tokens: 30, output_tokens: 9, cached_tokens: 20, reasoning_tokens: 4 }),
        },
    ];
    assert_eq!(out, expected.into_iter().map(Ok).collect::<Vec<_>>());
}

#[test]
fn failures_carry_the_provider_message() {
    let out = parse(&[json!({"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}})]);
    assert_eq!(
        out[0],
        Err(ProviderError::Failed {
            provider: "OpenAI",
            message: "boom".into(),
            retryable: true,
            code: Some("server_error".into())
        })
    );
    let out = parse(&[json!({"type":"error","code":"invalid_prompt","message":"bad prompt"})]);
    let err = out[0].as_ref().unwrap_err();
    assert_eq!((err.class(), err.code()), (ErrorClass::ContentBlocked, Some("invalid_prompt")));
    let out = parse(&[
        json!({"type":"response.failed","response":{"error":{"code":"insufficient_quota","message":"You exceeded your current quota."}}}),
    ]);
    assert_eq!(out[0].as_ref().unwrap_err().class(), ErrorClass::QuotaExhausted);
    let out =
        parse(&[json!({"type":"response.incomplete","response":{"incomplete_details":{"reason":"content_filter"}}})]);
    assert_eq!(out[0].as_ref().unwrap_err().class(), ErrorClass::ContentBlocked);
    let out = parse(&[
        json!({"type":"response.incomplete","response":{"incomplete_details":{"reason":"max_output_tokens"}}}),
    ]);
    assert_eq!(
        out[0].as_ref().unwrap_err().to_string(),
        "The OpenAI model failed, code max_output_tokens: the response is incomplete (reason: max_output_tokens)"
    );
    let out = parse(&[json!({"type":"response.output_text.delta","item_id":"m","content_index":0,"delta":"x"})]);
    assert!(matches!(out.last(), Some(Err(ProviderError::StreamCut { .. }))));
}

#[test]
fn a_refusal_is_a_content_blocked_error_not_answer_text() {
    let out = parse(&[
        json!({"type":"response.output_item.added","item":{"type":"message","id":"m","content":[]}}),
        json!({"type":"response.content_part.added","item_id":"m","content_index":0,"part":{"type":"refusal","refusal":""}}),
        json!({"type":"response.refusal.delta","item_id":"m","content_index":0,"delta":"I can't"}),
        json!({"type":"response.refusal.done","item_id":"m","content_index":0,"refusal":"I can't help with that."}),
    ]);
    assert_eq!(out[0], Ok(ModelEvent::MessageStarted { id: "m".into() }));
    let err = out[1].as_ref().unwrap_err();
    assert_eq!((err.class(), err.code()), (ErrorClass::ContentBlocked, Some("refusal")));
    assert!(!err.client_message().contains("can't help"), "the refusal text stays in the log");
    assert_eq!(out.len(), 2);
}

#[test]
fn stopped_and_refused_responses_report_what_they_cost() {
    let usage = json!({"input_tokens": 40, "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}});
    let spent = Usage { input_tokens: 40, output_tokens: 3, ..Usage::default() };
    let out = parse(&[json!({"type":"response.incomplete",
        "response":{"incomplete_details":{"reason":"max_output_tokens"},"usage":usage}})]);
    assert_eq!(out[0], Ok(ModelEvent::Usage { usage: spent }));
    assert_eq!(out[1].as_ref().unwrap_err().code(), Some("max_output_tokens"));
    // The refusal waits for the end of the response, whose usage counts.
    let out = parse(&[
        json!({"type":"response.output_item.added","item":{"type":"message","id":"m","content":[]}}),
        json!({"type":"response.content_part.added","item_id":"m","content_index":0,"part":{"type":"refusal","refusal":""}}),
        json!({"type":"response.refusal.done","item_id":"m","content_index":0,"refusal":"No."}),
        json!({"type":"response.output_item.done","item":{"type":"message","id":"m","content":[{"type":"refusal","refusal":"No."}]}}),
        json!({"type":"response.completed","response":{"usage":usage}}),
    ]);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[1], Ok(ModelEvent::Usage { usage: spent }));
    assert_eq!(out[2].as_ref().unwrap_err().code(), Some("refusal"));
}

#[test]
fn final_item_fills_parts_without_deltas() {
    let out = parse(&[
        json!({"type":"response.output_item.added","item":{"type":"message","id":"m","content":[]}}),
        json!({"type":"response.output_item.done","item":{"type":"message","id":"m","content":[{"type":"output_text","text":"whole","annotations":[]}]}}),
        json!({"type":"response.completed","response":{}}),
    ]);
    assert_eq!(
        out[1],
        Ok(ModelEvent::ContentPartDone { message_id: "m".into(), content_index: 0, text: "whole".into() })
    );
}

#[test]
fn annotation_conversion() {
    let file =
        convert_annotation(&json!({"type":"file_citation","file_id":"f1","filename":"a.pdf","index":7})).unwrap();
    assert_eq!(
        serde_json::to_value(&file).unwrap(),
        json!({"type":"annotation","source":{"title":"a.pdf","type":"file","filename":"a.pdf"},"index":7})
    );
    assert!(convert_annotation(&json!({"type":"file_citation","file_id":"f1","index":7})).is_none());
    let c =
        convert_annotation(&json!({"type":"container_file_citation","filename":"b.csv","start_index":1,"end_index":4}))
            .unwrap();
    assert_eq!(c.index, Some(4));
}

#[test]
fn temperature_is_not_widened() {
    assert_eq!(json!(f32_to_f64(0.4)).to_string(), "0.4");
}

#[test]
fn streamed_body_equals_the_json_value_body() {
    let request = ModelRequest {
        instructions: "Be \"helpful\".\n".into(),
        input: vec![
            InputItem::user_text_and_image("hi é", "data:image/png;base64,AA=="),
            InputItem::Message { role: Role::Assistant, content: vec![ContentPart::OutputText("yo".into())] },
            InputItem::call("call_1", "t", "{\"a\":1}", Some(json!({"id": "fc_1"}))),
            InputItem::FunctionCallOutput { call_id: "call_1".into(), output: "done".into() },
        ],
        tools: vec![ToolSpec {
            name: "t".into(),
            description: "d".into(),
            parameters: json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}),
        }]
        .into(),
        temperature: Some(0.4),
    };
    let fixed = FixedParts::of(&request).unwrap();
    let streamed = serde_json::to_string(&Body::new("gpt-x", &request, &fixed, &Reasoning::default())).unwrap();
    assert_eq!(streamed, request_body("gpt-x", &request).to_string());
    let bare = ModelRequest { instructions: "i".into(), ..ModelRequest::default() };
    let fixed = FixedParts::of(&bare).unwrap();
    let streamed = serde_json::to_string(&Body::new("m", &bare, &fixed, &Reasoning::default())).unwrap();
    assert_eq!(streamed, r#"{"include":[],"model":"m","stream":true,"instructions":"i","input":[]}"#);
    assert_eq!(streamed, request_body("m", &bare).to_string());
}

#[test]
fn event_type_is_read_first() {
    assert_eq!(leading_type(r#"{"type":"response.created","response":{}}"#), Some("response.created"));
    assert_eq!(leading_type(r#"{"sequence_number":1,"type":"x"}"#), None);
    assert_eq!(leading_type(r#"{"type":"a\"b"}"#), None);
    // Not first: still recognised (through the full parse).
    assert!(matches!(
        parse_event(r#"{"sequence_number":3,"type":"response.completed"}"#),
        Ok(StreamEvent::Completed { .. })
    ));
    assert!(matches!(
        parse_event(r#"{"type":"response.in_progress","response":{"x":[1,2]}}"#),
        Ok(StreamEvent::Unknown)
    ));
    assert!(matches!(
        parse_event(r#"{"type":"response.output_text.delta","item_id":"m","content_index":0,"delta":"x"}"#),
        Ok(StreamEvent::TextDelta { .. })
    ));
    assert!(parse_event("not json").is_err());
}

#[test]
fn fixed_parts_are_encoded_once_per_agent() {
    let transport = Transport::for_test("OpenAI", "sk-test");
    let provider = OpenAiProvider::new(transport, "http://127.0.0.1:1/v1", "m".into(), Reasoning::default());
    let tools: Arc<[ToolSpec]> =
        vec![ToolSpec { name: "t".into(), description: "d".into(), parameters: json!({}) }].into();
    let first = ModelRequest { instructions: "i".into(), tools: tools.clone(), ..ModelRequest::default() };
    let a = provider.fixed_parts(&first).unwrap();
    // Same agent, next call (other input): the same encoding is reused.
    let next = ModelRequest { input: vec![InputItem::user_text("hi".to_string())], ..first.clone() };
    assert!(Arc::ptr_eq(&a, &provider.fixed_parts(&next).unwrap()));
    // An equal tool list built for the next run: reused too.
    let rebuilt = ModelRequest { tools: tools.to_vec().into(), ..first.clone() };
    assert!(Arc::ptr_eq(&a, &provider.fixed_parts(&rebuilt).unwrap()));
    // Other instructions or other tools are encoded again, correctly.
    let other = ModelRequest { instructions: "j".into(), ..first.clone() };
    let b = provider.fixed_parts(&other).unwrap();
    assert!(!Arc::ptr_eq(&a, &b));
    let body = serde_json::to_string(&Body::new("m", &other, &b, &Reasoning::default())).unwrap();
    assert_eq!(body, request_body("m", &other).to_string());
    let mut changed = tools.to_vec();
    changed[0].description = "changed".into();
    let changed = ModelRequest { tools: changed.into(), ..other.clone() };
    let c = provider.fixed_parts(&changed).unwrap();
    assert!(!Arc::ptr_eq(&b, &c));
    let body = serde_json::to_string(&Body::new("m", &changed, &c, &Reasoning::default())).unwrap();
    assert_eq!(body, request_body("m", &changed).to_string());
}

/// The default body, byte for byte: no reasoning setting adds nothing to what was sent before.
#[test]
fn default_body_is_pinned() {
    let request = ModelRequest {
        instructions: "i".into(),
        input: vec![
            InputItem::user_text("seat 2A"),
            InputItem::call("call_1", "change_seat", "{}", Some(json!({"id": "fc_1"}))),
            InputItem::FunctionCallOutput { call_id: "call_1".into(), output: "ok".into() },
        ],
        tools: Arc::from(vec![]),
        temperature: Some(0.4),
    };
    let fixed = FixedParts::of(&request).unwrap();
    let body = serde_json::to_string(&Body::new("gpt-4.1-mini", &request, &fixed, &Reasoning::default())).unwrap();
    assert_eq!(
        body,
        concat!(
            r#"{"include":[],"model":"gpt-4.1-mini","stream":true,"temperature":0.4,"instructions":"i","input":["#,
            r#"{"type":"message","role":"user","content":[{"type":"input_text","text":"seat 2A"}]},"#,
            r#"{"type":"function_call","call_id":"call_1","name":"change_seat","arguments":"{}"},"#,
            r#"{"type":"function_call_output","call_id":"call_1","output":"ok"}]}"#
        )
    );
}

/// With reasoning on: the encrypted reasoning is asked for, the settings are sent, and a reasoning
/// item of the run goes back unchanged, with the following call's item id.
#[test]
fn reasoning_body() {
    let reasoning_item = json!({"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "enc"});
    let request = ModelRequest {
        instructions: "i".into(),
        input: vec![
            InputItem::user_text("hi"),
            InputItem::Verbatim { item: reasoning_item.clone() },
            InputItem::call("call_1", "t", "{}", Some(json!({"id": "fc_1"}))),
            InputItem::FunctionCallOutput { call_id: "call_1".into(), output: "ok".into() },
        ],
        ..ModelRequest::default()
    };
    let fixed = FixedParts::of(&request).unwrap();
    let reasoning = Reasoning { effort: Some(ReasoningEffort::High), summary: Some(ReasoningSummary::Concise) };
    let body: Value =
        serde_json::from_str(&serde_json::to_string(&Body::new("gpt-5", &request, &fixed, &reasoning)).unwrap())
            .unwrap();
    assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(body["reasoning"], json!({"effort": "high", "summary": "concise"}));
    assert_eq!(body["input"][1], reasoning_item);
    assert_eq!(
        body["input"][2],
        json!({"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "t", "arguments": "{}"})
    );
    assert!(body.get("store").is_none());
}

/// A message that followed a reasoning item goes back whole, with its id, between the reasoning
/// item and the call.
#[test]
fn reasoning_body_replays_the_message_whole() {
    let rs = json!({"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "enc"});
    let msg = json!({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Checking."}]});
    let request = ModelRequest {
        instructions: "i".into(),
        input: vec![
            InputItem::user_text("hi"),
            InputItem::Verbatim { item: rs.clone() },
            InputItem::Verbatim { item: msg.clone() },
            InputItem::call("call_1", "t", "{}", Some(json!({"id": "fc_1"}))),
            InputItem::FunctionCallOutput { call_id: "call_1".into(), output: "ok".into() },
        ],
        ..ModelRequest::default()
    };
    let fixed = FixedParts::of(&request).unwrap();
    let reasoning = Reasoning { effort: Some(ReasoningEffort::Low), summary: None };
    let body: Value =
        serde_json::from_str(&serde_json::to_string(&Body::new("gpt-5", &request, &fixed, &reasoning)).unwrap())
            .unwrap();
    assert_eq!(body["input"].as_array().unwrap()[1..3], [rs, msg]);
    assert_eq!(body["input"][3]["id"], "fc_1");
}

#[test]
fn reasoning_events_are_parsed() {
    let item = json!({"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Plan"}], "encrypted_content": "enc"});
    let events = parse(&[
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
        json!({"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "Pl"}),
        json!({"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "summary_index": 0, "text": "Plan"}),
        json!({"type": "response.reasoning_text.delta", "item_id": "rs_1", "content_index": 1, "delta": "raw"}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        json!({"type": "response.completed", "response": {}}),
    ]);
    let events: Vec<ModelEvent> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events,
        vec![
            ModelEvent::ReasoningStarted { item_id: "rs_1".into() },
            ModelEvent::ReasoningDelta { item_id: "rs_1".into(), part_index: 0, delta: "Pl".into() },
            ModelEvent::ReasoningPartDone { item_id: "rs_1".into(), part_index: 0, text: "Plan".into() },
            ModelEvent::ReasoningDelta { item_id: "rs_1".into(), part_index: 1, delta: "raw".into() },
            ModelEvent::ReasoningItem { item },
            ModelEvent::Completed { usage: None },
        ]
    );
}

/// Runs an SSE body, as the API sends it (`event:` and `data:` lines), through the SSE decoder and
/// the parser.
fn parse_sse(body: &str) -> Vec<ModelEvent> {
    let mut decoder = crate::sse::SseDecoder::default();
    let mut data = std::collections::VecDeque::new();
    decoder.feed(body.as_bytes(), &mut data).unwrap();
    assert!(decoder.is_between_events());
    let mut p = Parser::default();
    let mut q = EventQueue::new();
    for d in data {
        p.on_data(&d, &mut q);
    }
    p.on_eof(&mut q);
    q.into_iter().map(|e| e.unwrap()).collect()
}

/// The finished items of a recorded stream (`response.output_item.done`), in output order.
fn done_items(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| e["item"].clone())
        .collect()
}

/// A reasoning model's stream in the shape gpt-5-mini sends it with `reasoning.summary` on: a
/// reasoning item with two summary parts (deltas with `obfuscation`), a preamble message, then a
/// function call. Every part streams; the reasoning item and the message come back whole (the
/// message because a reasoning item must be followed by its own following item, id and all).
#[test]
fn recorded_reasoning_stream_with_preamble_and_call() {
    let body = include_str!("../../tests/fixtures/openai_reasoning_preamble_call.sse");
    let items = done_items(body);
    let (rs, msg, fc) = (&items[0], &items[1], &items[2]);
    let rs_id = rs["id"].as_str().unwrap().to_string();
    let msg_id = msg["id"].as_str().unwrap().to_string();
    let parts: Vec<String> =
        rs["summary"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_string()).collect();
    let events = parse_sse(body);

    assert_eq!(events[0], ModelEvent::ReasoningStarted { item_id: rs_id.clone() });
    // Per part: its deltas, which add up to its final text, then the final text.
    let mut i = 1;
    for (index, text) in parts.iter().enumerate() {
        let mut streamed = String::new();
        while let ModelEvent::ReasoningDelta { item_id, part_index, delta } = &events[i] {
            assert_eq!((item_id, *part_index), (&rs_id, index));
            streamed.push_str(delta);
            i += 1;
        }
        assert_eq!(&streamed, text);
        assert_eq!(
            events[i],
            ModelEvent::ReasoningPartDone { item_id: rs_id.clone(), part_index: index, text: text.clone() }
        );
        i += 1;
    }
    assert_eq!(events[i], ModelEvent::ReasoningItem { item: rs.clone() });
    assert!(rs["encrypted_content"].as_str().unwrap().starts_with("gAAAA"));
    assert_eq!(events[i + 1], ModelEvent::MessageStarted { id: msg_id.clone() });
    assert_eq!(events[i + 2], ModelEvent::ContentPartStarted { message_id: msg_id.clone(), content_index: 0 });
    let text = msg["content"][0]["text"].as_str().unwrap();
    let tail = &events[i + 3..];
    let deltas: String = tail
        .iter()
        .map_while(|e| match e {
            ModelEvent::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, text);
    let n = tail.iter().take_while(|e| matches!(e, ModelEvent::TextDelta { .. })).count();
    assert_eq!(
        tail[n..],
        [
            ModelEvent::ContentPartDone { message_id: msg_id.clone(), content_index: 0, text: text.to_string() },
            ModelEvent::MessageItem { item: msg.clone() },
            ModelEvent::MessageDone { id: msg_id },
            ModelEvent::FunctionCall(FunctionCall {
                call_id: fc["call_id"].as_str().unwrap().to_string(),
                name: "change_seat".into(),
                arguments: r#"{"flight_number":"OA476","seat":"14C"}"#.into(),
                provider_data: Some(json!({"id": fc["id"]})),
            }),
            ModelEvent::Completed {
                usage: Some(Usage {
                    input_tokens: 1893,
                    output_tokens: 214,
                    cached_tokens: 1664,
                    reasoning_tokens: 128
                }),
            },
        ]
    );
}

/// Reasoning without a summary (what a reasoning model streams when no summary is asked for, or
/// when it has none to give): the reasoning starts and its item comes back whole, with no text.
#[test]
fn recorded_reasoning_stream_without_summary() {
    let body = include_str!("../../tests/fixtures/openai_reasoning_without_summary.sse");
    let items = done_items(body);
    let events = parse_sse(body);
    let rs_id = items[0]["id"].as_str().unwrap().to_string();
    assert_eq!(items[0]["summary"], json!([]));
    assert_eq!(events[0], ModelEvent::ReasoningStarted { item_id: rs_id });
    assert_eq!(events[1], ModelEvent::ReasoningItem { item: items[0].clone() });
    assert!(matches!(&events[2], ModelEvent::MessageStarted { id } if *id == items[1]["id"]));
    assert!(
        !events.iter().any(|e| matches!(e, ModelEvent::ReasoningDelta { .. } | ModelEvent::ReasoningPartDone { .. }))
    );
    assert!(events.contains(&ModelEvent::MessageItem { item: items[1].clone() }));
}

/// A response without reasoning keeps its messages as text only (the default requests are unchanged).
#[test]
fn messages_without_reasoning_are_not_kept_whole() {
    let events = parse(&[
        json!({"type":"response.output_item.added","output_index":0,"item":{"type":"message","id":"msg_1","content":[],"role":"assistant"}}),
        json!({"type":"response.output_item.done","output_index":0,"item":{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]}}),
        json!({"type":"response.completed","response":{}}),
    ]);
    assert!(!events.iter().any(|e| matches!(e, Ok(ModelEvent::MessageItem { .. }))), "{events:?}");
}
