//! The Chat Completions stream (`chat.completion.chunk` objects), read leniently into
//! [`ModelEvent`]s. What real servers send and how it is read:
//!
//! * Text arrives in `choices[0].delta.content` (`null`, empty or absent in role-only and tool-call
//!   chunks; a list of `text` / `thinking` parts from Mistral): the first non-blank piece opens one
//!   assistant message with a generated `msg_…` id (servers' `chatcmpl-…` ids are not unique enough
//!   to name a stored item); blank pieces before it are held back, so a model that says "\n\n" and
//!   then only calls tools leaves no empty message. `delta.refusal` is shown as text, as the
//!   Responses provider does.
//! * Tool calls arrive in pieces keyed by `index`: the `id` and `function.name` in the first piece,
//!   `function.arguments` spread over many (or whole in one, as a string or an object). Several
//!   calls may interleave. A piece goes to the call with its `id`, else to the latest call with its
//!   `index`, else (neither given) to the last call; a named piece for a call that already has its
//!   name and whole arguments, or a piece with another `id` at a known index, starts a new call
//!   (servers that number every parallel call 0, or not at all). Calls are emitted complete, in the
//!   order they started, once the response finished; a call without an id gets a generated `call_…`
//!   one, a call without a name is dropped (never run as a tool named ""). A call's `extra_content`
//!   (Gemini's thought signature) is kept to be sent back with it.
//! * `delta.reasoning_content` (DeepSeek, vLLM, llama.cpp) or `delta.reasoning` (OpenRouter,
//!   Ollama) is the model's reasoning: streamed as one reasoning part (a generated `rs_…` item),
//!   closed when the answer text or the calls start; never part of the answer text.
//! * `finish_reason` `stop` / `tool_calls` (and any reason the parser does not know) end normally,
//!   calls included whatever the reason says; `length` ends normally when only text was cut (the
//!   operator's `max_tokens`), but fails when a tool call was cut or nothing was said;
//!   `content_filter` fails as blocked content.
//! * `usage` may come in a last chunk with empty (or `null`) `choices`, or in the finishing chunk;
//!   the last one seen counts. DeepSeek counts its cache hits in `prompt_cache_hit_tokens`. Without
//!   `usage`, Groq's `x_groq.usage` or llama.cpp's `timings` (`prompt_n` + `cache_n` prompt tokens,
//!   `predicted_n` generated) are the server's counts; a server that reports none leaves the usage
//!   unknown, never estimated.
//! * The stream ends at `data: [DONE]`, or at the end of the body once a finish reason was seen; a
//!   body ending before either was cut off.
//! * An error object (`{"error": {...}}` or `{"error": "..."}`) inside the stream fails the call,
//!   classified like the other providers' (retryable when its code says overload or a server error).

use serde::Deserialize;
use serde_json::Value;

use super::PROVIDER;
use crate::error_class::{ErrorBody, ErrorClass};
use crate::provider::{FunctionCall, ModelEvent, ProviderError};
use crate::sse::{EventParser, EventQueue, read_chunk};
use crate::synthesized::{SynthesizedMessage, SynthesizedReasoning};
use crate::usage::Usage;

// One chunk as far as the parser reads it. Every field defaults, so an unexpected shape is skipped
// rather than failing the turn.

#[derive(Deserialize, Default)]
#[serde(default)]
struct Chunk {
    /// `null` in some servers' usage-only chunk.
    choices: Option<Vec<Choice>>,
    usage: Option<ChunkUsage>,
    /// Groq's own place for the usage, on the finishing chunk.
    x_groq: Option<GroqExtra>,
    /// llama.cpp server's counts, on its last chunk (also when usage was not asked for).
    timings: Option<Timings>,
    error: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GroqExtra {
    usage: Option<ChunkUsage>,
}

/// The token counts among llama.cpp's timings: `prompt_n` prompt tokens evaluated, `cache_n` prompt
/// tokens reused from its cache, `predicted_n` tokens generated.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Timings {
    prompt_n: Option<u64>,
    cache_n: Option<u64>,
    predicted_n: Option<u64>,
}

impl Timings {
    fn usage(&self) -> Option<Usage> {
        let (Some(prompt), Some(output)) = (self.prompt_n, self.predicted_n) else { return None };
        let cached = self.cache_n.unwrap_or(0);
        Some(Usage { input_tokens: prompt + cached, output_tokens: output, cached_tokens: cached, reasoning_tokens: 0 })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Choice {
    index: Option<u32>,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Delta {
    /// A string, or (Mistral) a list of `text` and `thinking` parts.
    content: Option<Value>,
    refusal: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Option<Vec<CallDelta>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CallDelta {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionDelta>,
    /// Vendor data to send back with the call (Gemini's `{"google": {"thought_signature"}}`).
    extra_content: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FunctionDelta {
    name: Option<String>,
    /// A string piece; a few servers send the whole arguments as an object.
    arguments: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChunkUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek's count of the prompt tokens served from its cache (part of `prompt_tokens`).
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl From<ChunkUsage> for Usage {
    fn from(u: ChunkUsage) -> Self {
        Usage {
            input_tokens: u.prompt_tokens.unwrap_or(0),
            output_tokens: u.completion_tokens.unwrap_or(0),
            cached_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .or(u.prompt_cache_hit_tokens)
                .unwrap_or(0),
            reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// A tool call being assembled from its pieces.
#[derive(Debug, Default)]
struct PartialCall {
    /// The server's `index` for it, when it gave one.
    index: Option<usize>,
    id: String,
    name: String,
    arguments: String,
    /// The call's `extra_content`, sent back with it in the next request.
    extra: Option<Value>,
}

/// Whether `text` is a whole JSON object (not a piece of one).
fn is_whole_object(text: &str) -> bool {
    text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Parses Chat Completions chunks into model events.
#[derive(Default)]
pub(crate) struct Parser {
    message: SynthesizedMessage,
    /// Whitespace the answer started with, held back until real text follows (a model that only
    /// calls tools often says "\n\n" first, which must not become an empty message).
    leading_space: String,
    /// Calls in the order they started.
    calls: Vec<PartialCall>,
    /// The position in `calls` the last piece went to (for pieces without index or id).
    last_call: Option<usize>,
    finish_reason: Option<String>,
    /// The `usage` object the server sent.
    usage: Option<Usage>,
    /// Counts found elsewhere (Groq's `x_groq.usage`, llama.cpp's `timings`), used without `usage`.
    other_usage: Option<Usage>,
    reasoning: SynthesizedReasoning,
    finished: bool,
}

impl Parser {
    /// The token counts the server reported, if it did.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage.or(self.other_usage)
    }

    fn push_text(&mut self, text: String, out: &mut EventQueue) {
        if text.is_empty() {
            return;
        }
        if !self.message.is_open() && text.trim().is_empty() {
            self.leading_space.push_str(&text);
            return;
        }
        self.reasoning.close(out);
        let text = if self.leading_space.is_empty() { text } else { std::mem::take(&mut self.leading_space) + &text };
        self.message.push(text, out);
    }

    /// `delta.content`: a string, or a list of parts where `text` parts are answer text and
    /// `thinking` parts (a string or a list of `text` parts) are reasoning.
    fn push_content(&mut self, content: Value, out: &mut EventQueue) {
        let parts = match content {
            Value::String(text) => return self.push_text(text, out),
            Value::Array(parts) => parts,
            _ => return,
        };
        for part in parts {
            match part.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if let Some(text) = part.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                        self.push_text(text.to_string(), out);
                    }
                }
                Some("thinking") => {
                    let thinking = match part.get("thinking") {
                        Some(Value::String(text)) => text.clone(),
                        Some(Value::Array(pieces)) => {
                            pieces.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect()
                        }
                        _ => String::new(),
                    };
                    if !thinking.is_empty() {
                        self.reasoning.push(thinking, out);
                    }
                }
                _ => {}
            }
        }
    }

    /// Where a call piece belongs: the call with its id; else the latest call with its index; a
    /// piece with neither continues the last call. A named piece arriving when that call is already
    /// named and its arguments are whole starts a new call: servers that give every parallel call
    /// the same index (or none) send each call whole, in one piece.
    fn call_slot(&mut self, index: Option<usize>, id: Option<&str>, named: bool) -> usize {
        let by_id = id.and_then(|id| self.calls.iter().rposition(|c| c.id == id));
        let found = by_id.or_else(|| {
            let candidate = match index {
                Some(i) => self.calls.iter().rposition(|c| c.index == Some(i)),
                None if id.is_none() => self.last_call,
                None => None,
            }?;
            let call = &self.calls[candidate];
            let other_id = id.is_some() && !call.id.is_empty();
            let complete = named && !call.name.is_empty() && is_whole_object(&call.arguments);
            (!other_id && !complete).then_some(candidate)
        });
        found.unwrap_or_else(|| {
            self.calls.push(PartialCall { index, ..PartialCall::default() });
            self.calls.len() - 1
        })
    }

    fn push_call(&mut self, piece: CallDelta) {
        let id = piece.id.filter(|id| !id.is_empty());
        let (name, arguments) = piece.function.map_or((None, None), |f| (f.name, f.arguments));
        let name = name.filter(|n| !n.is_empty());
        let slot = self.call_slot(piece.index, id.as_deref(), name.is_some());
        self.last_call = Some(slot);
        let call = &mut self.calls[slot];
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id;
        }
        if let Some(name) = name
            && call.name.is_empty()
        {
            call.name = name;
        }
        if let Some(extra) = piece.extra_content.filter(|e| !e.is_null()) {
            call.extra = Some(extra);
        }
        match arguments {
            // A whole object after whole arguments repeats the call's arguments rather than
            // continuing them (some servers resend them): keep the last.
            Some(Value::String(piece)) if is_whole_object(&piece) && is_whole_object(&call.arguments) => {
                call.arguments = piece
            }
            Some(Value::String(piece)) => call.arguments.push_str(&piece),
            Some(Value::Null) | None => {}
            Some(whole) => call.arguments = whole.to_string(),
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut EventQueue) {
        self.finished = true;
        out.push_back(Err(err));
    }

    /// Ends the response: the open message, then the calls, then completion (or the failure the
    /// finish reason means).
    fn finish(&mut self, out: &mut EventQueue) {
        self.reasoning.close(out);
        let cut_calls = !self.calls.is_empty();
        let said_nothing = !self.message.is_open() && self.calls.is_empty();
        let code = self.finish_reason.clone();
        match self.finish_reason.as_deref() {
            Some("content_filter") => {
                let message = "the provider's content filter stopped the answer".to_string();
                let class = ErrorClass::ContentBlocked;
                return self
                    .fail(ProviderError::Refused { provider: PROVIDER, class, status: None, code, message }, out);
            }
            Some("length") if cut_calls || said_nothing => {
                let message = "the answer reached the output token limit before it was complete".to_string();
                return self.fail(ProviderError::Failed { provider: PROVIDER, message, retryable: false, code }, out);
            }
            Some("length") => {
                tracing::warn!(provider = PROVIDER, "the answer was cut at the output token limit");
            }
            _ => {}
        }
        self.message.close(out);
        for call in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                tracing::warn!(provider = PROVIDER, "skipping a tool call without a name");
                continue;
            }
            let call_id = if call.id.is_empty() { chatkit::ids::generate("call") } else { call.id };
            let arguments = if call.arguments.trim().is_empty() { "{}".to_string() } else { call.arguments };
            let provider_data = call.extra.map(|extra| serde_json::json!({ "extra_content": extra }));
            out.push_back(Ok(ModelEvent::FunctionCall(FunctionCall {
                call_id,
                name: call.name,
                arguments,
                provider_data,
            })));
        }
        self.finished = true;
        out.push_back(Ok(ModelEvent::Completed { usage: self.usage() }));
    }
}

/// An error object sent inside the stream: `{"message", "code", "type"}` or a plain string.
fn stream_error(error: &Value) -> ProviderError {
    let body = match error {
        Value::String(message) => ErrorBody { message: message.clone(), ..ErrorBody::default() },
        other => ErrorBody::from_json(other),
    };
    ProviderError::in_stream(PROVIDER, &body)
}

impl EventParser for Parser {
    fn on_data(&mut self, data: &str, out: &mut EventQueue) {
        let Some(chunk) = read_chunk::<Chunk>(data, PROVIDER) else { return };
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            return self.fail(stream_error(&error), out);
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        let other_usage = chunk.x_groq.and_then(|x| x.usage).map(Usage::from);
        if let Some(usage) = other_usage.or_else(|| chunk.timings.and_then(|t| t.usage())) {
            self.other_usage = Some(usage);
        }
        let choices = chunk.choices.unwrap_or_default();
        let Some(choice) = choices.into_iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return;
        };
        if let Some(delta) = choice.delta {
            let reasoning = delta.reasoning_content.or(delta.reasoning).filter(|r| !r.is_empty());
            if let Some(reasoning) = reasoning {
                self.reasoning.push(reasoning, out);
            }
            if let Some(content) = delta.content {
                self.push_content(content, out);
            }
            if let Some(refusal) = delta.refusal.filter(|t| !t.is_empty()) {
                self.push_text(refusal, out);
            }
            for piece in delta.tool_calls.unwrap_or_default() {
                self.reasoning.close(out);
                self.push_call(piece);
            }
        }
        if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty())
            && self.finish_reason.is_none()
        {
            self.finish_reason = Some(reason);
        }
    }

    fn on_done_marker(&mut self, out: &mut EventQueue) {
        self.finish(out);
    }

    fn on_eof(&mut self, out: &mut EventQueue) {
        if self.finished {
            return;
        }
        if self.finish_reason.is_none() {
            let message = "the stream ended before the answer finished".to_string();
            return self.fail(ProviderError::StreamCut { provider: PROVIDER, message }, out);
        }
        self.finish(out);
    }

    fn finished(&self) -> bool {
        self.finished
    }
}
