//! The Chat Completions stream (`chat.completion.chunk` objects), read leniently into
//! [`ModelEvent`]s. What real servers send and how it is read:
//!
//! * Text arrives in `choices[0].delta.content` (`null`, empty or absent in role-only and tool-call
//!   chunks): the first non-empty piece opens one assistant message with a generated `msg_…` id
//!   (servers' `chatcmpl-…` ids are not unique enough to name a stored item); `delta.refusal` is
//!   shown as text, as the Responses provider does.
//! * Tool calls arrive in pieces keyed by `index`: the `id` and `function.name` in the first piece,
//!   `function.arguments` spread over many. Several calls may interleave. A piece without `index`
//!   continues the call with its `id`, or the last call. Calls are emitted complete, in index order,
//!   once the response finished; a call without an id gets a generated `call_…` one, a call without
//!   a name is dropped (never run as a tool named "").
//! * `delta.reasoning_content` (DeepSeek, vLLM, llama.cpp) or `delta.reasoning` (OpenRouter,
//!   Ollama) is the model's reasoning: streamed as one reasoning part (a generated `rs_…` item),
//!   closed when the answer text or the calls start; never part of the answer text.
//! * `finish_reason` `stop` / `tool_calls` (and any reason the parser does not know) end normally;
//!   `length` ends normally when only text was cut (the operator's `max_tokens`), but fails when a
//!   tool call was cut or nothing was said; `content_filter` fails as blocked content.
//! * `usage` may come in a last chunk with empty `choices` (after `finish_reason`, before
//!   `[DONE]`), or in the finishing chunk; the last one seen counts.
//! * The stream ends at `data: [DONE]`, or at the end of the body once a finish reason was seen; a
//!   body ending before either was cut off.
//! * An error object (`{"error": {...}}` or `{"error": "..."}`) inside the stream fails the call,
//!   classified like the other providers' (retryable when its code says overload or a server error).

use std::collections::BTreeMap;

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
    choices: Vec<Choice>,
    usage: Option<ChunkUsage>,
    error: Option<Value>,
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
    content: Option<String>,
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
            cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// A tool call being assembled from its pieces.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Parses Chat Completions chunks into model events.
#[derive(Default)]
pub(crate) struct Parser {
    message: SynthesizedMessage,
    /// Calls by their `index`.
    calls: BTreeMap<usize, PartialCall>,
    /// The index the last call piece went to (for pieces without one).
    last_call: Option<usize>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    reasoning: SynthesizedReasoning,
    finished: bool,
}

impl Parser {
    fn push_call(&mut self, piece: CallDelta) {
        let id = piece.id.filter(|id| !id.is_empty());
        let index = piece
            .index
            .or_else(|| {
                let id = id.as_deref()?;
                self.calls.iter().find(|(_, c)| c.id == id).map(|(i, _)| *i)
            })
            .or(if id.is_some() { None } else { self.last_call })
            .unwrap_or_else(|| self.calls.keys().next_back().map_or(0, |i| i + 1));
        self.last_call = Some(index);
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id;
        }
        let Some(function) = piece.function else { return };
        if let Some(name) = function.name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name;
        }
        match function.arguments {
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
        for (_, call) in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                tracing::warn!(provider = PROVIDER, "skipping a tool call without a name");
                continue;
            }
            let call_id = if call.id.is_empty() { chatkit::ids::generate("call") } else { call.id };
            let arguments = if call.arguments.trim().is_empty() { "{}".to_string() } else { call.arguments };
            out.push_back(Ok(ModelEvent::FunctionCall(FunctionCall {
                call_id,
                name: call.name,
                arguments,
                provider_data: None,
            })));
        }
        self.finished = true;
        out.push_back(Ok(ModelEvent::Completed { usage: self.usage }));
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
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return;
        };
        if let Some(delta) = choice.delta {
            let reasoning = delta.reasoning_content.or(delta.reasoning).filter(|r| !r.is_empty());
            if let Some(reasoning) = reasoning {
                self.reasoning.push(reasoning, out);
            }
            for text in [delta.content, delta.refusal].into_iter().flatten().filter(|t| !t.is_empty()) {
                self.reasoning.close(out);
                self.message.push(text, out);
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
