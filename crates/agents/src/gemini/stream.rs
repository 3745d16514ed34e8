//! The response chunks, read leniently. Gemini has no message ids, so each response's text parts become
//! one assistant message with a generated `msg_…` id, streamed as deltas. Thought parts (`thought:
//! true`, sent when thought summaries are asked for) become one reasoning part, done when the first
//! other part arrives. Function calls usually arrive whole; Vertex may stream one in pieces
//! (`partialArgs` with `willContinue`, ending with an empty `functionCall`), which are assembled into
//! one call. A call without a name is never run. A call without an id gets a generated `call_…` id
//! (not sent back).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::PROVIDER;
use crate::error_class::{ErrorBody, ErrorClass};
use crate::provider::{FunctionCall, ModelEvent, ProviderError};
use crate::sse::{EventParser, EventQueue, read_chunk};
use crate::synthesized::{SynthesizedMessage, SynthesizedReasoning};
use crate::usage::Usage;

// One streamed chunk as far as the parser reads it. Every field defaults, so an unexpected shape is
// skipped rather than failing the turn.

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Chunk {
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<Value>,
    usage_metadata: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
    index: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Content {
    parts: Vec<Part>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Part {
    text: Option<String>,
    thought: Option<bool>,
    function_call: Option<CallPart>,
    thought_signature: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CallPart {
    id: Option<String>,
    name: String,
    args: Option<Value>,
    partial_args: Vec<PartialArg>,
    will_continue: Option<bool>,
}

/// One piece of a streamed call's arguments: the value at `jsonPath` (strings may come in several
/// pieces, appended in order).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PartialArg {
    json_path: String,
    string_value: Option<String>,
    number_value: Option<serde_json::Number>,
    bool_value: Option<bool>,
}

/// A call whose arguments are still streaming.
struct PendingCall {
    call: CallPart,
    thought_signature: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// Parses Gemini SSE chunks into model events.
#[derive(Default)]
pub(crate) struct Parser {
    message: SynthesizedMessage,
    finish_reason: Option<String>,
    /// The latest `usageMetadata` (each chunk repeats the running totals).
    usage: Option<Usage>,
    /// The usage last streamed as [`ModelEvent::Usage`].
    reported: Option<Usage>,
    produced: bool,
    finished: bool,
    /// The thoughts (`thought: true` parts).
    thought: SynthesizedReasoning,
    /// A call streamed in pieces, until its last piece.
    pending_call: Option<PendingCall>,
}

impl Parser {
    /// Handles a `functionCall` part: a whole call is emitted; the pieces of a streamed one are
    /// gathered until its last piece; a nameless part that continues nothing is ignored.
    fn on_call(&mut self, call: CallPart, thought_signature: Option<String>, out: &mut EventQueue) {
        if let Some(pending) = self.pending_call.as_mut() {
            let CallPart { id, name, args, partial_args, will_continue } = call;
            if pending.call.name.is_empty() && !name.is_empty() {
                pending.call.name = name;
            }
            if pending.call.id.is_none() {
                pending.call.id = id;
            }
            if let Some(args) = args.filter(Value::is_object) {
                pending.call.args = Some(args);
            }
            apply_partial_args(&mut pending.call, &partial_args);
            if pending.thought_signature.is_none() {
                pending.thought_signature = thought_signature;
            }
            if will_continue != Some(true) {
                self.finish_pending_call(out);
            }
            return;
        }
        if call.will_continue == Some(true) {
            let mut call = call;
            let partial_args = std::mem::take(&mut call.partial_args);
            apply_partial_args(&mut call, &partial_args);
            self.pending_call = Some(PendingCall { call, thought_signature });
            return;
        }
        if call.name.is_empty() {
            tracing::warn!(provider = PROVIDER, "ignoring a function call part without a name");
            return;
        }
        let mut call = call;
        let partial_args = std::mem::take(&mut call.partial_args);
        apply_partial_args(&mut call, &partial_args);
        self.emit_call(call, thought_signature, out);
    }

    fn finish_pending_call(&mut self, out: &mut EventQueue) {
        let Some(PendingCall { call, thought_signature }) = self.pending_call.take() else { return };
        if call.name.is_empty() {
            tracing::warn!(provider = PROVIDER, "ignoring a streamed function call that never named its function");
            return;
        }
        self.emit_call(call, thought_signature, out);
    }

    fn emit_call(&mut self, call: CallPart, thought_signature: Option<String>, out: &mut EventQueue) {
        self.thought.close(out);
        self.message.close(out);
        self.produced = true;
        out.push_back(Ok(ModelEvent::FunctionCall(function_call(call, thought_signature))));
    }

    /// Ends the stream with `err`, after what the call consumed so far (Gemini bills a blocked prompt or
    /// a stopped answer all the same).
    fn fail(&mut self, err: ProviderError, out: &mut EventQueue) {
        self.finished = true;
        self.report_usage(out);
        out.push_back(Err(err));
    }

    /// Streams the running total when it differs from the last one streamed. Chunks repeat the same
    /// `usageMetadata` while the answer streams, and each report costs the run a lock to store it, so
    /// an unchanged total is not sent again; the last report always holds the latest total.
    fn report_usage(&mut self, out: &mut EventQueue) {
        if self.usage.is_some() && self.usage != self.reported {
            self.reported = self.usage;
            out.extend(self.usage.map(|usage| Ok(ModelEvent::Usage { usage })));
        }
    }
}

/// A complete call; its id (generated when Gemini gave none) and `thoughtSignature` are kept in
/// `provider_data` so the next request can replay them.
fn function_call(call: CallPart, thought_signature: Option<String>) -> FunctionCall {
    let mut data = Map::new();
    if let Some(sig) = thought_signature {
        data.insert("thoughtSignature".into(), json!(sig));
    }
    let call_id = match call.id.filter(|i| !i.is_empty()) {
        Some(id) => {
            data.insert("id".into(), json!(id));
            id
        }
        None => chatkit::ids::generate("call"),
    };
    let arguments = call.args.filter(|a| !a.is_null()).unwrap_or_else(|| json!({})).to_string();
    let provider_data = if data.is_empty() { None } else { Some(Value::Object(data)) };
    FunctionCall { call_id, name: call.name, arguments, provider_data }
}

/// The error of a response that stopped for `reason` instead of `STOP`.
fn finish_error(reason: &str) -> ProviderError {
    let message = format!("the response stopped early (finish reason: {reason})");
    let code = Some(reason.to_string());
    let class = match reason {
        "SAFETY" | "PROHIBITED_CONTENT" | "BLOCKLIST" | "SPII" | "RECITATION" | "IMAGE_SAFETY" => {
            ErrorClass::ContentBlocked
        }
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => ErrorClass::MalformedFunctionCall,
        _ => return ProviderError::Failed { provider: PROVIDER, message, retryable: false, code },
    };
    ProviderError::Refused { provider: PROVIDER, class, status: None, code, message }
}

/// Writes the pieces' values into the call's `args` object (`$.a.b` paths; strings for the same
/// path are appended). Paths of another form are skipped.
fn apply_partial_args(call: &mut CallPart, pieces: &[PartialArg]) {
    if pieces.is_empty() {
        return;
    }
    let args = call.args.get_or_insert_with(|| json!({}));
    if !args.is_object() {
        *args = json!({});
    }
    for piece in pieces {
        let Some(keys) = piece.json_path.strip_prefix("$.").map(|p| p.split('.').collect::<Vec<_>>()) else {
            tracing::debug!(provider = PROVIDER, "skipping a partial argument with an unsupported path");
            continue;
        };
        let Some(slot) = slot_at(args, &keys) else { continue };
        match (&piece.string_value, slot.as_str()) {
            (Some(more), Some(before)) => *slot = Value::String(format!("{before}{more}")),
            (Some(text), None) => *slot = Value::String(text.clone()),
            (None, _) => {
                *slot = match (&piece.number_value, piece.bool_value) {
                    (Some(n), _) => Value::Number(n.clone()),
                    (None, Some(b)) => Value::Bool(b),
                    (None, None) => Value::Null,
                };
            }
        }
    }
}

/// The value at `keys` below `node`, creating objects on the way (`None` where a non-object is in
/// the way).
fn slot_at<'a>(node: &'a mut Value, keys: &[&str]) -> Option<&'a mut Value> {
    let (first, rest) = keys.split_first()?;
    let child = node
        .as_object_mut()?
        .entry(first.to_string())
        .or_insert_with(|| if rest.is_empty() { Value::Null } else { json!({}) });
    if rest.is_empty() { Some(child) } else { slot_at(child, rest) }
}

impl EventParser for Parser {
    fn on_data(&mut self, data: &str, out: &mut EventQueue) {
        let Some(chunk) = read_chunk::<Chunk>(data, PROVIDER) else { return };
        if let Some(err) = chunk.error {
            return self.fail(ProviderError::in_stream(PROVIDER, &ErrorBody::from_json(&err)), out);
        }
        if let Some(usage) = chunk.usage_metadata.as_ref().and_then(Usage::from_gemini) {
            self.usage = Some(usage);
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            let message = format!("the request was blocked (reason: {reason})");
            let class = ErrorClass::ContentBlocked;
            let err = ProviderError::Refused { provider: PROVIDER, class, status: None, code: Some(reason), message };
            return self.fail(err, out);
        }
        if let Some(candidate) = chunk.candidates.into_iter().find(|c| c.index.unwrap_or(0) == 0) {
            self.on_candidate(candidate, out);
        }
        // The running total, so a call cut short (or whose client left) still counts what it cost.
        self.report_usage(out);
    }

    fn on_eof(&mut self, out: &mut EventQueue) {
        self.end(out);
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

impl Parser {
    /// The parts and finish reason of the first candidate of a chunk.
    fn on_candidate(&mut self, candidate: Candidate, out: &mut EventQueue) {
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if part.thought == Some(true) {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    self.thought.push(text, out);
                }
                continue;
            }
            if let Some(call) = part.function_call {
                self.on_call(call, part.thought_signature, out);
            } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                self.thought.close(out);
                self.produced = true;
                self.message.push(text, out);
            }
        }
        if let Some(reason) = candidate.finish_reason {
            self.finish_reason = Some(reason);
        }
    }

    /// The end of the stream: the answer completes, or fails for its finish reason.
    fn end(&mut self, out: &mut EventQueue) {
        if self.finished {
            return;
        }
        match self.finish_reason.as_deref() {
            None => self.fail(
                ProviderError::StreamCut {
                    provider: PROVIDER,
                    message: "the stream ended before a finish reason".into(),
                },
                out,
            ),
            Some("STOP" | "FINISH_REASON_UNSPECIFIED") => {
                self.finish_pending_call(out);
                self.thought.close(out);
                self.message.close(out);
                self.finished = true;
                if !self.produced {
                    tracing::debug!(provider = PROVIDER, "empty response");
                }
                out.push_back(Ok(ModelEvent::Completed { usage: self.usage }));
            }
            Some(reason) => {
                let err = finish_error(reason);
                self.fail(err, out);
            }
        }
    }
}
