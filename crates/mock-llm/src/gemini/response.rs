//! Gemini's answer object (`GenerateContentResponse`): the whole answer of `generateContent`, and
//! each chunk of `streamGenerateContent`; the error bodies.

use serde_json::{Value, json};

use crate::ids::{ALNUM, BASE64, alphabet_id};
use crate::json_writer::JsonWriter;
use crate::plan::{Answer, word_deltas};

/// Google's content type for JSON answers (the whole answer, or a stream framed as an array).
pub(super) const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// Output tokens counted per function call (the real API reports a few per call).
pub(super) const TOKENS_PER_CALL: u64 = 8;

/// The fields every chunk of one answer repeats.
#[derive(Debug, Clone)]
pub(super) struct ChunkHead {
    /// The model named in the request's path.
    model: String,
    /// Rough prompt size in tokens (a quarter of the body's bytes).
    prompt_tokens: u64,
    /// The `responseId` the chunks of one answer share.
    response_id: String,
}

impl ChunkHead {
    /// The head of an answer to a request to `model` whose body is `body_len` bytes long.
    pub(super) fn new(model: &str, body_len: usize) -> ChunkHead {
        ChunkHead {
            model: model.to_owned(),
            prompt_tokens: (body_len as u64 / 4).max(1),
            response_id: alphabet_id("", 22, ALNUM),
        }
    }
}

/// Writes one `GenerateContentResponse` object whose parts `parts` writes; `finish` adds
/// `finishReason: STOP`, `output_tokens` is the answer's count so far and `thought_tokens` the
/// thoughts' (`thoughtsTokenCount`, left out at zero as Gemini does without thinking).
pub(super) fn write_chunk(
    out: &mut JsonWriter,
    head: &ChunkHead,
    finish: bool,
    output_tokens: u64,
    thought_tokens: u64,
    parts: impl FnOnce(&mut JsonWriter),
) {
    out.raw("{\"candidates\":[{\"content\":{\"parts\":[");
    parts(out);
    out.raw("],\"role\":\"model\"}");
    if finish {
        out.raw(",\"finishReason\":\"STOP\"");
    }
    out.raw(",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":")
        .num(head.prompt_tokens)
        .raw(",\"candidatesTokenCount\":")
        .num(output_tokens)
        .raw(",\"totalTokenCount\":")
        .num(head.prompt_tokens + output_tokens + thought_tokens);
    if thought_tokens > 0 {
        out.raw(",\"thoughtsTokenCount\":").num(thought_tokens);
    }
    out.raw("},\"modelVersion\":").str(&head.model).raw(",\"responseId\":").str(&head.response_id).raw("}");
}

/// The `usageMetadata`, `modelVersion` and `responseId` every chunk ends with, around `fields`.
fn chunk_with(head: &ChunkHead, output_tokens: u64, mut fields: Value) -> String {
    let mut usage =
        json!({"promptTokenCount": head.prompt_tokens, "totalTokenCount": head.prompt_tokens + output_tokens});
    if output_tokens > 0 {
        usage["candidatesTokenCount"] = json!(output_tokens);
    }
    fields["usageMetadata"] = usage;
    fields["modelVersion"] = json!(head.model);
    fields["responseId"] = json!(head.response_id);
    fields.to_string()
}

/// The chunk of a prompt the safety system blocked: `promptFeedback.blockReason`, no candidates (the
/// prompt's tokens are still counted).
pub(super) fn blocked_prompt_chunk(head: &ChunkHead, reason: &str) -> String {
    chunk_with(head, 0, json!({"promptFeedback": {"blockReason": reason}}))
}

/// The last chunk of an answer stopped for `reason`: a candidate without content, with `extra`'s fields
/// (`safetyRatings`, `finishMessage`, `citationMetadata`).
pub(super) fn finish_chunk(head: &ChunkHead, reason: &str, output_tokens: u64, extra: &Value) -> String {
    let mut candidate = json!({"finishReason": reason, "index": 0});
    if let (Some(candidate), Some(extra)) = (candidate.as_object_mut(), extra.as_object()) {
        candidate.extend(extra.clone());
    }
    chunk_with(head, output_tokens, json!({"candidates": [candidate]}))
}

/// Writes the `functionCall` parts of `answer`; the first carries a `thoughtSignature`, as Gemini
/// signs the first call of a step.
pub(super) fn write_calls(out: &mut JsonWriter, answer: &Answer) {
    for (i, call) in answer.calls.iter().enumerate() {
        if i > 0 {
            out.raw(",");
        }
        out.raw("{\"functionCall\":{\"name\":")
            .str(&call.name)
            .raw(",\"args\":")
            .raw(&call.arguments.to_string())
            .raw("}");
        if i == 0 {
            out.raw(",\"thoughtSignature\":").str(&alphabet_id("", 64, BASE64));
        }
        out.raw("}");
    }
}

/// The single answer of `generateContent`: the whole text, then the calls.
pub(super) fn response_json(answer: &Answer, head: &ChunkHead) -> String {
    let mut out = JsonWriter::default();
    let tokens =
        answer.text.as_deref().map_or(0, |t| word_deltas(t).len() as u64) + answer.calls.len() as u64 * TOKENS_PER_CALL;
    write_chunk(&mut out, head, true, tokens, 0, |out| {
        let mut first = true;
        if let Some(text) = &answer.text {
            out.raw("{\"text\":").str(text).raw("}");
            first = false;
        }
        if !answer.calls.is_empty() {
            if !first {
                out.raw(",");
            }
            write_calls(out, answer);
        }
    });
    out.buf
}

/// Google's error body for `status`, with `message` (or the API's usual message for the status).
pub(super) fn error_body(status: u16, message: Option<&str>) -> Value {
    let (default_message, name) = match status {
        400 => ("Request contains an invalid argument.", "INVALID_ARGUMENT"),
        401 => ("API key not valid. Please pass a valid API key.", "UNAUTHENTICATED"),
        403 => ("The caller does not have permission", "PERMISSION_DENIED"),
        404 => ("Requested entity was not found.", "NOT_FOUND"),
        429 => ("Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED"),
        503 => ("The model is overloaded. Please try again later.", "UNAVAILABLE"),
        504 => ("Deadline expired before operation could complete.", "DEADLINE_EXCEEDED"),
        _ => ("An internal error has occurred.", "INTERNAL"),
    };
    json!({"error": {
        "code": status,
        "message": message.unwrap_or(default_message),
        "status": name,
    }})
}
