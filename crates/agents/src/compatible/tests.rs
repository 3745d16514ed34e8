//! Unit tests of the Chat Completions request encoding and stream parser, on streams shaped like
//! those of real servers (OpenAI, vLLM, llama.cpp, Ollama, OpenRouter).

use std::collections::VecDeque;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::request::Body;
use super::stream::Parser;
use crate::error_class::{ErrorBody, ErrorClass};
use crate::input::InputItem;
use crate::provider::{FunctionCall, ModelEvent, ModelRequest, ProviderError, ToolSpec};
use crate::sse::{EventParser, EventQueue, SseDecoder, dispatch};
use crate::usage::Usage;

mod servers;

/// Runs a whole body, cut into `chunks`, through the SSE decoder and a parser, as the model stream
/// does; message ids are replaced by `M` and reasoning ids by `R` (they are generated).
fn run_chunks(chunks: &[&[u8]]) -> Vec<Result<ModelEvent, ProviderError>> {
    let mut decoder = SseDecoder::default();
    let mut parser = Parser::default();
    let mut out = EventQueue::new();
    let mut data = VecDeque::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut data).unwrap();
        while let Some(d) = data.pop_front() {
            dispatch(&mut parser, &d, &mut out);
        }
    }
    if !parser.finished() {
        parser.on_eof(&mut out);
    }
    out.into_iter().map(|e| e.map(anonymize)).collect()
}

fn run(body: &str) -> Vec<Result<ModelEvent, ProviderError>> {
    run_chunks(&[body.as_bytes()])
}

fn anonymize(e: ModelEvent) -> ModelEvent {
    let m = || "M".to_string();
    match e {
        ModelEvent::MessageStarted { .. } => ModelEvent::MessageStarted { id: m() },
        ModelEvent::ContentPartStarted { content_index, .. } => {
            ModelEvent::ContentPartStarted { message_id: m(), content_index }
        }
        ModelEvent::TextDelta { content_index, delta, .. } => {
            ModelEvent::TextDelta { message_id: m(), content_index, delta }
        }
        ModelEvent::ContentPartDone { content_index, text, .. } => {
            ModelEvent::ContentPartDone { message_id: m(), content_index, text }
        }
        ModelEvent::MessageDone { .. } => ModelEvent::MessageDone { id: m() },
        ModelEvent::ReasoningStarted { .. } => ModelEvent::ReasoningStarted { item_id: "R".into() },
        ModelEvent::ReasoningDelta { part_index, delta, .. } => {
            ModelEvent::ReasoningDelta { item_id: "R".into(), part_index, delta }
        }
        ModelEvent::ReasoningPartDone { part_index, text, .. } => {
            ModelEvent::ReasoningPartDone { item_id: "R".into(), part_index, text }
        }
        other => other,
    }
}

/// `data: <json>` frames of `chunks`, then `data: [DONE]`.
fn sse(chunks: &[Value]) -> String {
    let mut out: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    out.push_str("data: [DONE]\n\n");
    out
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

fn text_events(deltas: &[&str]) -> Vec<Result<ModelEvent, ProviderError>> {
    let m = || "M".to_string();
    let mut out = vec![
        Ok(ModelEvent::MessageStarted { id: m() }),
        Ok(ModelEvent::ContentPartStarted { message_id: m(), content_index: 0 }),
    ];
    for d in deltas {
        out.push(Ok(ModelEvent::TextDelta { message_id: m(), content_index: 0, delta: d.to_string() }));
    }
    out.push(Ok(ModelEvent::ContentPartDone { message_id: m(), content_index: 0, text: deltas.concat() }));
    out.push(Ok(ModelEvent::MessageDone { id: m() }));
    out
}

/// The events of a response that only streamed `deltas` and completed with `usage`.
fn answered(deltas: &[&str], usage: Option<Usage>) -> Vec<Result<ModelEvent, ProviderError>> {
    let mut out = text_events(deltas);
    out.push(Ok(ModelEvent::Completed { usage }));
    out
}

fn call(id: &str, name: &str, arguments: &str) -> Result<ModelEvent, ProviderError> {
    Ok(ModelEvent::FunctionCall(FunctionCall {
        call_id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        provider_data: None,
    }))
}

/// An OpenAI-style text stream: role-only first chunk, content chunks, a finishing chunk with empty
/// delta, the usage-only chunk with empty choices, `[DONE]`.
fn openai_text_stream() -> String {
    sse(&[
        chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null),
        chunk(json!({"content": "Hello"}), Value::Null),
        chunk(json!({"content": " there"}), Value::Null),
        chunk(json!({}), json!("stop")),
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14,
                         "prompt_tokens_details": {"cached_tokens": 4},
                         "completion_tokens_details": {"reasoning_tokens": 1}}}),
    ])
}

#[test]
fn text_with_role_chunk_usage_chunk_and_done() {
    let usage = Usage { input_tokens: 12, output_tokens: 2, cached_tokens: 4, reasoning_tokens: 1 };
    assert_eq!(run(&openai_text_stream()), answered(&["Hello", " there"], Some(usage)));
}

#[test]
fn null_content_comments_and_crlf_are_skipped() {
    // llama.cpp-like: null content, keep-alive comments, CRLF line ends, no usage.
    let body = ": ping\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\r\n\r\n\
                : keep-alive\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\r\n\r\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\r\n\r\n\
                data: [DONE]\r\n\r\n";
    let usage = Usage { input_tokens: 3, output_tokens: 1, cached_tokens: 0, reasoning_tokens: 0 };
    assert_eq!(run(body), answered(&["Hi"], Some(usage)));
}

#[test]
fn a_stream_recorded_from_llama_cpp_python() {
    // llama-cpp-python 0.3.36 (`python -m llama_cpp.server`): Python's JSON spacing, a role chunk without
    // content, no usage (it ignores `stream_options`), `length` at `max_tokens`, then `[DONE]`.
    let frame = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\": \"chatcmpl-698d1fc3-b46a-4b01-a19a-130ffa70cca6\", \"model\": \"x\", \"created\": 1796215780, \"object\": \"chat.completion.chunk\", \"choices\": [{{\"index\": 0, \"delta\": {delta}, \"logprobs\": null, \"finish_reason\": {finish}}}]}}\r\n\r\n"
        )
    };
    let body = [
        frame("{\"role\": \"assistant\"}", "null"),
        frame("{\"content\": \"Hello\"}", "null"),
        frame("{\"content\": \"!\"}", "null"),
        frame("{\"content\": \" What\"}", "null"),
        frame("{}", "\"length\""),
        "data: [DONE]\r\n\r\n".to_string(),
    ]
    .concat();
    let expected = answered(&["Hello", "!", " What"], None);
    assert_eq!(run(&body), expected);
}

#[test]
fn tool_calls_are_assembled_per_index() {
    // Two calls interleaved; id and name only in the first piece of each; arguments in pieces.
    let body = sse(&[
        chunk(json!({"role": "assistant", "content": null}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "change_seat", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"seat\":"}}]}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "add_checked_bag", "arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"14C\"}"}}]}), Value::Null),
        chunk(json!({}), json!("tool_calls")),
    ]);
    assert_eq!(
        run(&body),
        vec![
            call("call_a", "change_seat", "{\"seat\":\"14C\"}"),
            call("call_b", "add_checked_bag", "{}"),
            Ok(ModelEvent::Completed { usage: None })
        ]
    );
}

#[test]
fn text_then_call_and_odd_call_pieces() {
    // Text before a call; a piece without index continues the last call; a call without id gets one;
    // whole-object arguments (some servers); a nameless call is dropped.
    let body = sse(&[
        chunk(json!({"content": "One moment."}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"name": "cancel_trip"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"function": {"arguments": "{}"}}]}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "change_seat", "arguments": {"seat": "1A"}}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls": [{"index": 2, "id": "c3", "function": {"arguments": "{}"}}]}), json!("tool_calls")),
    ]);
    let events = run(&body);
    let mut expected = text_events(&["One moment."]);
    expected.truncate(expected.len());
    assert_eq!(&events[..5], &expected[..]);
    let Ok(ModelEvent::FunctionCall(first)) = &events[5] else { panic!("{events:?}") };
    assert!(first.call_id.starts_with("call_") && first.call_id.len() > 5, "{first:?}");
    assert_eq!((first.name.as_str(), first.arguments.as_str()), ("cancel_trip", "{}"));
    assert_eq!(events[6], call("c2", "change_seat", "{\"seat\":\"1A\"}"));
    assert_eq!(events[7], Ok(ModelEvent::Completed { usage: None }));
    assert_eq!(events.len(), 8);
}

#[test]
fn reasoning_fields_become_reasoning_events() {
    let body = sse(&[
        chunk(json!({"role": "assistant", "reasoning_content": "Let me think"}), Value::Null),
        chunk(json!({"reasoning": " about it."}), Value::Null),
        chunk(json!({"content": "Answer."}), json!("stop")),
    ]);
    let events = run(&body);
    let Ok(ModelEvent::ReasoningStarted { item_id }) = &events[0] else { panic!("{events:?}") };
    let r =
        |delta: &str| Ok(ModelEvent::ReasoningDelta { item_id: item_id.clone(), part_index: 0, delta: delta.into() });
    let mut expected = vec![
        events[0].clone(),
        r("Let me think"),
        r(" about it."),
        Ok(ModelEvent::ReasoningPartDone {
            item_id: item_id.clone(),
            part_index: 0,
            text: "Let me think about it.".into(),
        }),
    ];
    expected.extend(answered(&["Answer."], None));
    assert_eq!(events, expected);
}

#[test]
fn finish_reasons() {
    // `length` after text: the text stands (the operator's limit).
    let body = sse(&[chunk(json!({"content": "Cut sh"}), json!("length"))]);
    let expected = answered(&["Cut sh"], None);
    assert_eq!(run(&body), expected);
    // `length` in the middle of a call fails.
    let body = sse(&[chunk(
        json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "change_seat", "arguments": "{\"se"}}]}),
        json!("length"),
    )]);
    let events = run(&body);
    assert!(
        matches!(&events[..], [Err(ProviderError::Failed { retryable: false, message, .. })] if message.contains("token limit")),
        "{events:?}"
    );
    // `content_filter` fails after the streamed text.
    let body = sse(&[chunk(json!({"content": "Well"}), json!("content_filter"))]);
    let events = run(&body);
    let last = events.last().unwrap().clone().unwrap_err();
    assert_eq!((last.class(), last.code()), (ErrorClass::ContentBlocked, Some("content_filter")));
    // An unknown reason (e.g. `eos`) ends normally; so does `[DONE]` without any reason.
    let expected = answered(&["x"], None);
    assert_eq!(run(&sse(&[chunk(json!({"content": "x"}), json!("eos"))])), expected);
    assert_eq!(run(&sse(&[chunk(json!({"content": "x"}), Value::Null)])), expected);
}

#[test]
fn end_of_body_without_done() {
    // After a finish reason the end of the body completes the answer.
    let body = format!("data: {}\n\n", chunk(json!({"content": "ok"}), json!("stop")));
    let expected = answered(&["ok"], None);
    assert_eq!(run(&body), expected);
    // Before one, the stream was cut: partial text, then the error.
    let body = format!("data: {}\n\n", chunk(json!({"content": "par"}), Value::Null));
    let events = run(&body);
    assert!(matches!(events.last(), Some(Err(ProviderError::StreamCut { .. }))), "{events:?}");
    assert_eq!(events.len(), 4, "{events:?}");
}

#[test]
fn errors_inside_the_stream() {
    // OpenRouter: an error object with a numeric code, then finish_reason "error".
    let body = sse(&[
        chunk(json!({"content": "Hi"}), Value::Null),
        json!({"id": "x", "object": "chat.completion.chunk", "error": {"code": 502, "message": "Provider returned error"},
               "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}),
    ]);
    let events = run(&body);
    assert_eq!(
        events.last(),
        Some(&Err(ProviderError::Failed {
            provider: "OpenAI-compatible",
            message: "Provider returned error".into(),
            retryable: true,
            code: Some("502".into())
        }))
    );
    // vLLM / llama.cpp: `{"error": {"message", "type", "code"}}`; a plain string error.
    let events =
        run("data: {\"error\":{\"message\":\"context too long\",\"type\":\"invalid_request_error\",\"code\":400}}\n\n");
    assert_eq!(
        events,
        vec![Err(ProviderError::Failed {
            provider: "OpenAI-compatible",
            message: "context too long".into(),
            retryable: false,
            code: Some("invalid_request_error".into())
        })]
    );
    let events = run("data: {\"error\":\"model overloaded\"}\n\n");
    assert!(matches!(&events[..], [Err(ProviderError::Failed { message, .. })] if message == "model overloaded"));
    // Garbage chunks are skipped.
    let body = format!("data: not json\n\n{}", sse(&[chunk(json!({"content": "ok"}), json!("stop"))]));
    assert_eq!(run(&body).len(), 6);
}

#[test]
fn tool_support_errors_are_recognized() {
    let class = |status, message: &str| {
        let body = ErrorBody { message: message.into(), ..ErrorBody::default() };
        ProviderError::from_status("OpenAI-compatible", status, &body, None).class()
    };
    for message in [
        "registry.ollama.ai/library/gemma2:2b does not support tools",
        "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
        "No endpoints found that support tool use. To learn more about provider routing, visit: …",
        "tools param requires --jinja flag",
    ] {
        assert_eq!(class(400, message), ErrorClass::ToolsUnsupported, "{message}");
    }
    assert_eq!(class(404, "No endpoints found that support tool use."), ErrorClass::ToolsUnsupported);
    assert_eq!(class(400, "bad temperature"), ErrorClass::InvalidRequest);
    // llama.cpp's server started without templates for tools: a 500 no retry changes.
    assert_eq!(class(500, "tools param requires --jinja flag"), ErrorClass::ToolsUnsupported);
    assert_eq!(class(500, "internal error"), ErrorClass::ServerError);
}

fn request() -> ModelRequest {
    ModelRequest {
        instructions: "Be brief.".into(),
        input: vec![
            InputItem::user_text("Move me to 14C"),
            InputItem::call("call_1", "change_seat", "{\"seat\":\"14C\"}", None),
            InputItem::call("call_2", "add_checked_bag", "{}", None),
            InputItem::FunctionCallOutput { call_id: "call_1".into(), output: "{\"result\":\"ok\"}".into() },
            InputItem::FunctionCallOutput { call_id: "call_2".into(), output: "done".into() },
            InputItem::assistant_text("Done."),
            InputItem::user_text_and_image("Where is this?", "data:image/png;base64,AAAA"),
        ],
        tools: Arc::from(vec![ToolSpec {
            name: "change_seat".into(),
            description: "Change a seat.".into(),
            parameters: json!({"type": "object", "properties": {"seat": {"type": "string"}}, "required": ["seat"], "additionalProperties": false}),
        }]),
        temperature: Some(0.4),
    }
}

#[test]
fn request_body() {
    let request = request();
    let body = Body { model: "qwen3:8b", request: &request, include_usage: true, max_tokens: Some(256) };
    let text = serde_json::to_string(&body).unwrap();
    let expected = json!({
        "model": "qwen3:8b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Move me to 14C"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "change_seat", "arguments": "{\"seat\":\"14C\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "add_checked_bag", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"result\":\"ok\"}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "done"},
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": [
                {"type": "text", "text": "Where is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]}
        ],
        "tools": [{"type": "function", "function": {"name": "change_seat", "description": "Change a seat.",
                   "parameters": {"type": "object", "properties": {"seat": {"type": "string"}}, "required": ["seat"], "additionalProperties": false}}}],
        "temperature": 0.4,
        "max_tokens": 256,
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    assert_eq!(text, expected.to_string());
    // Without the usage option, tools, temperature and limit.
    let bare =
        ModelRequest { instructions: String::new(), input: vec![InputItem::user_text("hi")], ..Default::default() };
    let body = Body { model: "m", request: &bare, include_usage: false, max_tokens: None };
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true})
    );
}

/// A stream with text, two interleaved calls, reasoning, a comment and usage.
fn rich_stream() -> String {
    let mut body = String::from(": OPENROUTER PROCESSING\n\n");
    body.push_str(&sse(&[
        chunk(json!({"role": "assistant", "content": null, "reasoning": "hm"}), Value::Null),
        chunk(json!({"content": "Sure — é🙂 "}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"x\""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}), json!("tool_calls")),
        json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
    ]));
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    /// However the body is cut into network chunks, the events are the same.
    #[test]
    fn chunk_splits_do_not_change_the_result(cuts in proptest::collection::vec(0usize..10_000, 0..12)) {
        let body = rich_stream();
        let bytes = body.as_bytes();
        let whole = run_chunks(&[bytes]);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for p in points {
            pieces.push(&bytes[start..p]);
            start = p;
        }
        pieces.push(&bytes[start..]);
        let split = run_chunks(&pieces);
        prop_assert_eq!(&split, &whole);
        // Reasoning (started, delta, done), the message (5 events), two calls, completion.
        prop_assert_eq!(whole.len(), 11);
    }
}
