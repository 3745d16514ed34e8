//! Gemini native API wire format: `streamGenerateContent?alt=sse` chunks (`data: <json>`
//! frames ended by CRLF CRLF, as Google sends them), the `generateContent` JSON answer and
//! the error bodies.

use serde_json::{Value, json};

use crate::frames::{ALNUM, BASE64, Frames, Out, alphabet_id};
use crate::plan::{Answer, word_deltas};

/// Request facts echoed in each chunk.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Model named in the path.
    pub model: String,
    /// Rough prompt size in tokens.
    pub prompt_tokens: u64,
    /// `responseId` shared by the chunks of one answer.
    pub response_id: String,
}

impl Ctx {
    /// Facts for a request to `model` with a body of `body_len` bytes.
    pub fn new(model: &str, body_len: usize) -> Ctx {
        Ctx {
            model: model.to_owned(),
            prompt_tokens: (body_len as u64 / 4).max(1),
            response_id: alphabet_id("", 22, ALNUM),
        }
    }
}

/// How chunks are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `data: <json>\r\n\r\n` (`alt=sse`).
    Sse,
    /// A JSON array streamed element by element (no `alt=sse`).
    JsonArray,
}

/// Writes one `GenerateContentResponse` object whose parts are written by `parts`.
fn write_chunk(out: &mut Out, ctx: &Ctx, finish: bool, output_tokens: u64, parts: impl FnOnce(&mut Out)) {
    out.raw("{\"candidates\":[{\"content\":{\"parts\":[");
    parts(out);
    out.raw("],\"role\":\"model\"}");
    if finish {
        out.raw(",\"finishReason\":\"STOP\"");
    }
    out.raw(",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":")
        .num(ctx.prompt_tokens)
        .raw(",\"candidatesTokenCount\":")
        .num(output_tokens)
        .raw(",\"totalTokenCount\":")
        .num(ctx.prompt_tokens + output_tokens)
        .raw("},\"modelVersion\":")
        .str(&ctx.model)
        .raw(",\"responseId\":")
        .str(&ctx.response_id)
        .raw("}");
}

/// Writes the `functionCall` parts of `answer`; the first carries a `thoughtSignature`
/// (Gemini signs the first call of a step).
fn write_calls(out: &mut Out, answer: &Answer) {
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

/// Frame helpers shared by both framings.
struct Framer {
    frames: Frames,
    framing: Framing,
}

impl Framer {
    fn new(framing: Framing) -> Self {
        let mut frames = Frames::default();
        if framing == Framing::JsonArray {
            frames.out.raw("[");
        }
        Framer { frames, framing }
    }

    fn open(&mut self) {
        match self.framing {
            Framing::Sse => {
                self.frames.out.raw("data: ");
            }
            Framing::JsonArray => {
                if !self.frames.is_empty() {
                    self.frames.out.raw(",\r\n");
                }
            }
        }
    }

    fn close(&mut self, is_delta: bool) {
        if self.framing == Framing::Sse {
            self.frames.out.raw("\r\n\r\n");
        }
        self.frames.end_frame(is_delta);
    }

    fn finish(mut self) -> Frames {
        if self.framing == Framing::JsonArray {
            self.frames.out.raw("]");
            self.frames.end_frame(false);
        }
        self.frames
    }
}

/// The streamed chunks of an answer: one per text word, then a final chunk with the
/// function calls (or an empty text part) and `finishReason: STOP`.
pub fn stream_frames(answer: &Answer, ctx: &Ctx, framing: Framing) -> Frames {
    let mut framer = Framer::new(framing);
    let mut tokens = 0u64;
    if let Some(text) = &answer.text {
        for delta in word_deltas(text) {
            tokens += 1;
            framer.open();
            write_chunk(&mut framer.frames.out, ctx, false, tokens, |out| {
                out.raw("{\"text\":").str(delta).raw("}");
            });
            framer.close(true);
        }
    }
    tokens += answer.calls.len() as u64 * 8;
    framer.open();
    write_chunk(&mut framer.frames.out, ctx, true, tokens, |out| {
        if answer.calls.is_empty() {
            out.raw("{\"text\":\"\"}");
        } else {
            write_calls(out, answer);
        }
    });
    framer.close(false);
    framer.finish()
}

/// The stream of a failure: one error chunk.
pub fn stream_error_frames(message: &str, framing: Framing) -> Frames {
    let mut framer = Framer::new(framing);
    framer.open();
    framer.frames.out.raw(&error_body(500, Some(message)).to_string());
    framer.close(false);
    framer.finish()
}

/// The single JSON answer of `generateContent`.
pub fn response_json(answer: &Answer, ctx: &Ctx) -> String {
    let mut out = Out::default();
    let tokens = answer.text.as_deref().map_or(0, |t| word_deltas(t).len() as u64) + answer.calls.len() as u64 * 8;
    write_chunk(&mut out, ctx, true, tokens, |out| {
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

/// Google's error body for `status`, with `message` (or a default for the status).
pub fn error_body(status: u16, message: Option<&str>) -> Value {
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
