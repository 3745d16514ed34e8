//! The chunks of a Chat Completions answer (`chat.completion.chunk`), framed as SSE `data:` lines
//! with a keep-alive comment first and `data: [DONE]` last, and the whole `chat.completion` object
//! for requests that do not stream.

use serde_json::{Value, json};

use super::request::ChatRequest;
use crate::frames::Frames;
use crate::ids::{ALNUM, alphabet_id, unix_now};
use crate::openai::error_body;
use crate::plan::{Answer, word_deltas};
use crate::script::{ChatDialect, ToolCallSpec};

/// Writes the chunks of one completion, all with the same id, time and model.
struct ChunkWriter<'a> {
    frames: Frames,
    id: String,
    created: u64,
    model: &'a str,
}

impl<'a> ChunkWriter<'a> {
    fn new(model: &'a str) -> Self {
        let mut frames = Frames::default();
        // Servers behind proxies (OpenRouter) send comments to keep the connection open.
        frames.writer.raw(": keep-alive\n\n");
        frames.end_frame(false);
        ChunkWriter { frames, id: completion_id(), created: unix_now(), model }
    }

    /// One `data:` frame holding `value`.
    fn frame(&mut self, value: &Value, is_delta: bool) {
        self.frames.writer.raw("data: ").raw(&value.to_string()).raw("\n\n");
        self.frames.end_frame(is_delta);
    }

    /// A chunk with one choice.
    fn choice(&mut self, delta: Value, finish_reason: Option<&str>, is_delta: bool) {
        let chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        self.frame(&chunk, is_delta);
    }

    fn done(mut self) -> Frames {
        self.frames.writer.raw("data: [DONE]\n\n");
        self.frames.end_frame(false);
        self.frames
    }
}

/// `chatcmpl-` + 29 alphanumerics, as OpenAI's ids look.
fn completion_id() -> String {
    alphabet_id("chatcmpl-", 29, ALNUM)
}

/// `call_` + 24 alphanumerics.
fn call_id() -> String {
    alphabet_id("call_", 24, ALNUM)
}

/// The usage object for an answer of `completion_tokens`.
fn usage(request: &ChatRequest<'_>, completion_tokens: u64, reasoning_tokens: u64) -> Value {
    json!({
        "prompt_tokens": request.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": request.prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    })
}

fn finish_reason<'a>(answer: &Answer, chat: &'a ChatDialect) -> &'a str {
    match &chat.finish_reason {
        Some(reason) => reason,
        None if answer.calls.is_empty() => "stop",
        None => "tool_calls",
    }
}

/// `s` in two halves split at a character boundary (one piece if shorter than 2 bytes).
fn halves(s: &str) -> Vec<&str> {
    let mut mid = s.len() / 2;
    while mid > 0 && !s.is_char_boundary(mid) {
        mid -= 1;
    }
    if mid == 0 { vec![s] } else { vec![&s[..mid], &s[mid..]] }
}

/// The streamed chunks of `answer`.
pub(super) fn stream_frames(answer: &Answer, request: &ChatRequest<'_>, chat: &ChatDialect) -> Frames {
    let mut out = ChunkWriter::new(request.model);
    out.choice(json!({"role": "assistant", "content": ""}), None, false);
    let mut reasoning_tokens = 0u64;
    if let Some(reasoning) = &chat.reasoning {
        let field = if chat.reasoning_in_reasoning_field { "reasoning" } else { "reasoning_content" };
        for word in word_deltas(reasoning) {
            reasoning_tokens += 1;
            out.choice(json!({ field: word }), None, false);
        }
    }
    let mut tokens = reasoning_tokens;
    if let Some(text) = &answer.text {
        for word in word_deltas(text) {
            tokens += 1;
            out.choice(json!({ "content": word }), None, true);
        }
    }
    let calls: Vec<(String, String, &ToolCallSpec)> =
        answer.calls.iter().map(|c| (call_id(), c.arguments.to_string(), c)).collect();
    // Every call's first chunk (index, id, name, no arguments yet), then the arguments of each in
    // two pieces: parallel calls interleave as they do from real servers.
    for (index, (id, _, call)) in calls.iter().enumerate() {
        let first =
            json!({"index": index, "id": id, "type": "function", "function": {"name": call.name, "arguments": ""}});
        out.choice(json!({ "tool_calls": [first] }), None, false);
    }
    for (index, (_, arguments, _)) in calls.iter().enumerate() {
        for piece in halves(arguments) {
            out.choice(json!({ "tool_calls": [{"index": index, "function": {"arguments": piece}}] }), None, false);
        }
        tokens += (arguments.len() as u64 / 4).max(1);
    }
    out.choice(json!({}), Some(finish_reason(answer, chat)), false);
    if request.include_usage {
        let chunk = json!({
            "id": out.id, "object": "chat.completion.chunk", "created": out.created, "model": out.model,
            "system_fingerprint": null, "choices": [], "usage": usage(request, tokens, reasoning_tokens),
        });
        out.frame(&chunk, false);
    }
    out.done()
}

/// A stream that fails: the role chunk, then an error object (as vLLM and OpenRouter send one).
pub(super) fn stream_error_frames(message: &str, request: &ChatRequest<'_>) -> Frames {
    let mut out = ChunkWriter::new(request.model);
    out.choice(json!({"role": "assistant", "content": ""}), None, false);
    let mut error = error_body(500, Some(message));
    if let Some(e) = error.get_mut("error") {
        e["code"] = json!("server_error");
    }
    out.frame(&error, false);
    out.frames
}

/// The `chat.completion` object of a request that does not stream.
pub(super) fn completion_json(answer: &Answer, request: &ChatRequest<'_>, chat: &ChatDialect) -> String {
    let calls: Vec<Value> = answer
        .calls
        .iter()
        .map(|c| json!({"id": call_id(), "type": "function", "function": {"name": c.name, "arguments": c.arguments.to_string()}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": answer.text, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let tokens = answer.text.as_deref().map_or(0, |t| word_deltas(t).len() as u64) + answer.calls.len() as u64;
    json!({
        "id": completion_id(), "object": "chat.completion", "created": unix_now(), "model": request.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(answer, chat)}],
        "usage": usage(request, tokens, 0),
    })
    .to_string()
}
