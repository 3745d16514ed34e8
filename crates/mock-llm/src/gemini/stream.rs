//! The streamed form of a Gemini answer (`streamGenerateContent`): one chunk per word of the
//! thoughts (`thought: true`) and of the text, then a final chunk with the function calls and `finishReason: STOP`. With `alt=sse` the
//! chunks are SSE frames `data: <json>` ended by CRLF CRLF, as Google sends them; without it, the
//! elements of one JSON array.

use super::response::{
    ChunkHead, JSON_CONTENT_TYPE, TOKENS_PER_CALL, blocked_prompt_chunk, error_body, finish_chunk, write_calls,
    write_chunk,
};
use crate::frames::Frames;
use crate::plan::{Answer, word_deltas};
use crate::presets::GeminiStream;

/// How the chunks of a stream are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `data: <json>\r\n\r\n` (`alt=sse`).
    Sse,
    /// A JSON array streamed element by element (no `alt=sse`).
    JsonArray,
}

impl Framing {
    /// The content type Google sends with this framing.
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::JsonArray => JSON_CONTENT_TYPE,
        }
    }
}

/// Writes the chunks of one stream with the punctuation its framing puts around them.
struct ChunkWriter {
    frames: Frames,
    framing: Framing,
}

impl ChunkWriter {
    fn new(framing: Framing) -> Self {
        let mut frames = Frames::default();
        if framing == Framing::JsonArray {
            frames.writer.raw("[");
        }
        ChunkWriter { frames, framing }
    }

    /// Starts a chunk: `data: ` for SSE, the separating comma inside the array.
    fn open(&mut self) {
        match self.framing {
            Framing::Sse => {
                self.frames.writer.raw("data: ");
            }
            Framing::JsonArray => {
                if !self.frames.is_empty() {
                    self.frames.writer.raw(",\r\n");
                }
            }
        }
    }

    /// Ends a chunk (one frame of the body).
    fn close(&mut self, is_delta: bool) {
        if self.framing == Framing::Sse {
            self.frames.writer.raw("\r\n\r\n");
        }
        self.frames.end_frame(is_delta);
    }

    /// Closes the array, when there is one.
    fn finish(mut self) -> Frames {
        if self.framing == Framing::JsonArray {
            self.frames.writer.raw("]");
            self.frames.end_frame(false);
        }
        self.frames
    }
}

/// The chunks of a streamed answer: one per text word, then a final chunk with the function
/// calls (or an empty text part) and `finishReason: STOP`.
pub(super) fn stream_frames(answer: &Answer, head: &ChunkHead, framing: Framing) -> Frames {
    let mut chunks = ChunkWriter::new(framing);
    let mut tokens = 0u64;
    let mut thought_tokens = 0u64;
    // Thought summaries first, one chunk per word (parts are separated by a blank line, as Gemini's
    // headed thought sections are).
    for (i, part) in answer.reasoning.iter().flatten().enumerate() {
        let part = if i == 0 { part.clone() } else { format!("\n\n{part}") };
        for delta in word_deltas(&part) {
            thought_tokens += 1;
            chunks.open();
            write_chunk(&mut chunks.frames.writer, head, false, tokens, thought_tokens, |out| {
                out.raw("{\"text\":").str(delta).raw(",\"thought\":true}");
            });
            chunks.close(true);
        }
    }
    if let Some(text) = &answer.text {
        for delta in word_deltas(text) {
            tokens += 1;
            chunks.open();
            write_chunk(&mut chunks.frames.writer, head, false, tokens, thought_tokens, |out| {
                out.raw("{\"text\":").str(delta).raw("}");
            });
            chunks.close(true);
        }
    }
    tokens += answer.calls.len() as u64 * TOKENS_PER_CALL;
    chunks.open();
    write_chunk(&mut chunks.frames.writer, head, true, tokens, thought_tokens, |out| {
        if answer.calls.is_empty() {
            out.raw("{\"text\":\"\"}");
        } else {
            write_calls(out, answer);
        }
    });
    chunks.close(false);
    chunks.finish()
}

/// The stream of a failure: one chunk holding Google's error body.
pub(super) fn stream_error_frames(message: &str, framing: Framing) -> Frames {
    let mut chunks = ChunkWriter::new(framing);
    chunks.open();
    chunks.frames.writer.raw(&error_body(500, Some(message)).to_string());
    chunks.close(false);
    chunks.finish()
}

/// The stream of a preset failure: an error chunk, a blocked prompt, or some words then a candidate
/// that stops for another reason than `STOP`.
pub(super) fn preset_frames(failure: &GeminiStream, head: &ChunkHead, framing: Framing) -> Frames {
    let mut chunks = ChunkWriter::new(framing);
    match failure {
        GeminiStream::Error(body) => {
            chunks.open();
            chunks.frames.writer.raw(&body.to_string());
            chunks.close(false);
        }
        GeminiStream::PromptBlocked(reason) => {
            chunks.open();
            chunks.frames.writer.raw(&blocked_prompt_chunk(head, reason));
            chunks.close(false);
        }
        GeminiStream::Finish { reason, text, extra } => {
            let mut tokens = 0u64;
            for delta in text.map(word_deltas).unwrap_or_default() {
                tokens += 1;
                chunks.open();
                write_chunk(&mut chunks.frames.writer, head, false, tokens, 0, |out| {
                    out.raw("{\"text\":").str(delta).raw("}");
                });
                chunks.close(true);
            }
            chunks.open();
            chunks.frames.writer.raw(&finish_chunk(head, reason, tokens, extra));
            chunks.close(false);
        }
    }
    chunks.finish()
}
