//! The streamed form of a Responses API answer (`stream: true`): SSE frames
//! `event: <type>\ndata: <json>\n\n`, each with a `sequence_number`, in the order the real API
//! sends them: the response's lifecycle events around the events of each output item.

use serde_json::json;

use super::response::{
    Ending, ItemKind, OutputItem, OutputTokens, RequestEcho, ResponseHead, output_items, response_id, write_response,
};
use crate::frames::Frames;
use crate::ids::hex_id;
use crate::json_writer::JsonWriter;
use crate::plan::{Answer, word_deltas};
use crate::presets::OpenAiStream;

/// Writes the events of one stream, numbering them.
#[derive(Default)]
struct EventWriter {
    frames: Frames,
    next_sequence_number: u64,
}

impl EventWriter {
    /// Writes one event of type `ty`; `fields` writes the JSON fields after `type` and
    /// `sequence_number`, each preceded by a comma.
    fn event(&mut self, ty: &str, is_delta: bool, fields: impl FnOnce(&mut JsonWriter)) {
        let out = &mut self.frames.writer;
        out.raw("event: ")
            .raw(ty)
            .raw("\ndata: {\"type\":\"")
            .raw(ty)
            .raw("\",\"sequence_number\":")
            .num(self.next_sequence_number);
        self.next_sequence_number += 1;
        fields(out);
        out.raw("}\n\n");
        self.frames.end_frame(is_delta);
    }

    /// A lifecycle event carrying the whole response object.
    fn response_event(
        &mut self,
        ty: &str,
        head: &ResponseHead<'_>,
        status: &str,
        output: &[OutputItem<'_>],
        usage: Option<OutputTokens>,
        ending: Ending<'_>,
    ) {
        self.event(ty, false, |out| {
            out.raw(",\"response\":");
            write_response(out, head, status, output, usage, ending);
        });
    }

    /// `response.created` and `response.in_progress`, which open every stream.
    fn response_started(&mut self, head: &ResponseHead<'_>) {
        self.response_event("response.created", head, "in_progress", &[], None, Ending::Normal);
        self.response_event("response.in_progress", head, "in_progress", &[], None, Ending::Normal);
    }
}

/// Writes the fields that tie an event to its item: `item_id` and `output_index`.
fn item_ref(out: &mut JsonWriter, id: &str, index: u64) {
    out.raw(",\"item_id\":").str(id).raw(",\"output_index\":").num(index);
}

/// The SSE frames of a streamed answer.
pub(crate) fn stream_frames(answer: &Answer, echo: &RequestEcho) -> Frames {
    let id = response_id();
    let head = ResponseHead::new(&id, echo);
    let (items, tokens) = output_items(answer);
    let mut events = EventWriter::default();
    events.response_started(&head);
    for (index, item) in items.iter().enumerate() {
        let index = index as u64;
        match &item.kind {
            ItemKind::Reasoning { id, summary } => reasoning_events(&mut events, index, id, summary),
            ItemKind::Message { id, text } => message_events(&mut events, index, id, text),
            ItemKind::Call { id, call_id, name, arguments } => {
                call_events(&mut events, index, id, call_id, name, arguments);
            }
        }
        events.event("response.output_item.done", false, |out| {
            out.raw(",\"output_index\":").num(index).raw(",\"item\":").raw(&item.json);
        });
    }
    events.response_event("response.completed", &head, "completed", &items, Some(tokens), Ending::Normal);
    events.frames
}

/// The events of a reasoning item up to its completion: the item added, then per summary part the
/// part added, one delta per word, the text and the part done.
fn reasoning_events(events: &mut EventWriter, index: u64, id: &str, summary: &[String]) {
    events.event("response.output_item.added", false, |out| {
        out.raw(",\"output_index\":")
            .num(index)
            .raw(",\"item\":{\"id\":")
            .str(id)
            .raw(",\"type\":\"reasoning\",\"summary\":[]}");
    });
    for (part, text) in summary.iter().enumerate() {
        let part = part as u64;
        events.event("response.reasoning_summary_part.added", false, |out| {
            item_ref(out, id, index);
            out.raw(",\"summary_index\":").num(part).raw(",\"part\":{\"type\":\"summary_text\",\"text\":\"\"}");
        });
        for delta in word_deltas(text) {
            events.event("response.reasoning_summary_text.delta", true, |out| {
                item_ref(out, id, index);
                out.raw(",\"summary_index\":").num(part).raw(",\"delta\":").str(delta);
            });
        }
        events.event("response.reasoning_summary_text.done", false, |out| {
            item_ref(out, id, index);
            out.raw(",\"summary_index\":").num(part).raw(",\"text\":").str(text);
        });
        events.event("response.reasoning_summary_part.done", false, |out| {
            item_ref(out, id, index);
            out.raw(",\"summary_index\":")
                .num(part)
                .raw(",\"part\":{\"type\":\"summary_text\",\"text\":")
                .str(text)
                .raw("}");
        });
    }
}

/// The events of a text message up to its completion: the item and its content part added, one
/// delta per word, the text and the part done.
fn message_events(events: &mut EventWriter, index: u64, id: &str, text: &str) {
    events.event("response.output_item.added", false, |out| {
        out.raw(",\"output_index\":")
            .num(index)
            .raw(",\"item\":{\"id\":")
            .str(id)
            .raw(",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}");
    });
    events.event("response.content_part.added", false, |out| {
        item_ref(out, id, index);
        out.raw(
            ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}",
        );
    });
    for delta in word_deltas(text) {
        events.event("response.output_text.delta", true, |out| {
            item_ref(out, id, index);
            out.raw(",\"content_index\":0,\"delta\":").str(delta).raw(",\"logprobs\":[]");
        });
    }
    events.event("response.output_text.done", false, |out| {
        item_ref(out, id, index);
        out.raw(",\"content_index\":0,\"text\":").str(text).raw(",\"logprobs\":[]");
    });
    events.event("response.content_part.done", false, |out| {
        item_ref(out, id, index);
        out.raw(",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":")
            .str(text)
            .raw("}");
    });
}

/// The events of a function call up to its completion: the item added, its arguments in two
/// deltas, the arguments done.
fn call_events(events: &mut EventWriter, index: u64, id: &str, call_id: &str, name: &str, arguments: &str) {
    events.event("response.output_item.added", false, |out| {
        out.raw(",\"output_index\":")
            .num(index)
            .raw(",\"item\":{\"id\":")
            .str(id)
            .raw(",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":")
            .str(call_id)
            .raw(",\"name\":")
            .str(name)
            .raw("}");
    });
    for delta in split_in_two(arguments) {
        events.event("response.function_call_arguments.delta", false, |out| {
            item_ref(out, id, index);
            out.raw(",\"delta\":").str(delta);
        });
    }
    events.event("response.function_call_arguments.done", false, |out| {
        item_ref(out, id, index);
        out.raw(",\"name\":").str(name).raw(",\"arguments\":").str(arguments);
    });
}

/// `s` in two halves split at a character boundary (one piece if shorter than 2 bytes).
fn split_in_two(s: &str) -> Vec<&str> {
    let mut mid = s.len() / 2;
    while mid > 0 && !s.is_char_boundary(mid) {
        mid -= 1;
    }
    if mid == 0 { vec![s] } else { vec![&s[..mid], &s[mid..]] }
}

/// The frames of a stream that fails: `response.created`, `response.in_progress`, then
/// `response.failed` with `error: {code: "server_error", message}`.
pub(crate) fn stream_error_frames(message: &str, echo: &RequestEcho) -> Frames {
    let id = response_id();
    let head = ResponseHead::new(&id, echo);
    let mut events = EventWriter::default();
    events.response_started(&head);
    let error = json!({"code": "server_error", "message": message});
    events.response_event("response.failed", &head, "failed", &[], None, Ending::Failed(&error));
    events.frames
}

/// The SSE frames of a preset failure: the response starts, then ends in the failure.
pub(crate) fn preset_frames(failure: &OpenAiStream, echo: &RequestEcho) -> Frames {
    let id = response_id();
    let head = ResponseHead::new(&id, echo);
    let mut events = EventWriter::default();
    events.response_started(&head);
    match failure {
        OpenAiStream::ErrorEvent(error) => {
            // The service nests the error object, unlike the documented flat event.
            events.event("error", false, |out| {
                out.raw(",\"error\":").raw(&error.to_string());
            });
        }
        OpenAiStream::Failed(error) => {
            events.response_event("response.failed", &head, "failed", &[], None, Ending::Failed(error));
        }
        OpenAiStream::Incomplete { reason, text } => {
            let answer = Answer { text: text.map(str::to_owned), ..Default::default() };
            let (mut items, tokens) = output_items(&answer);
            for (index, item) in items.iter_mut().enumerate() {
                if let ItemKind::Message { id, text } = &item.kind {
                    message_events(&mut events, index as u64, id, text);
                }
                item.json = item.json.replacen("\"status\":\"completed\"", "\"status\":\"incomplete\"", 1);
                events.event("response.output_item.done", false, |out| {
                    out.raw(",\"output_index\":").num(index as u64).raw(",\"item\":").raw(&item.json);
                });
            }
            let ending = Ending::Incomplete(reason);
            events.response_event("response.incomplete", &head, "incomplete", &items, Some(tokens), ending);
        }
        OpenAiStream::Refusal(text) => refusal_events(&mut events, &head, text),
    }
    events.frames
}

/// A message whose only part is a refusal, streamed word by word, then `response.completed`.
fn refusal_events(events: &mut EventWriter, head: &ResponseHead<'_>, text: &str) {
    let id = hex_id("msg_", 48);
    events.event("response.output_item.added", false, |out| {
        out.raw(",\"output_index\":0,\"item\":{\"id\":")
            .str(&id)
            .raw(",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}");
    });
    events.event("response.content_part.added", false, |out| {
        item_ref(out, &id, 0);
        out.raw(",\"content_index\":0,\"part\":{\"type\":\"refusal\",\"refusal\":\"\"}");
    });
    for delta in word_deltas(text) {
        events.event("response.refusal.delta", true, |out| {
            item_ref(out, &id, 0);
            out.raw(",\"content_index\":0,\"delta\":").str(delta);
        });
    }
    events.event("response.refusal.done", false, |out| {
        item_ref(out, &id, 0);
        out.raw(",\"content_index\":0,\"refusal\":").str(text);
    });
    events.event("response.content_part.done", false, |out| {
        item_ref(out, &id, 0);
        out.raw(",\"content_index\":0,\"part\":{\"type\":\"refusal\",\"refusal\":").str(text).raw("}");
    });
    let mut item = JsonWriter::default();
    item.raw("{\"id\":")
        .str(&id)
        .raw(",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":\"refusal\",\"refusal\":")
        .str(text)
        .raw("}],\"role\":\"assistant\"}");
    events.event("response.output_item.done", false, |out| {
        out.raw(",\"output_index\":0,\"item\":").raw(&item.buf);
    });
    let tokens = OutputTokens { output: word_deltas(text).len() as u64, reasoning: 0 };
    let output = [OutputItem { json: item.buf, kind: ItemKind::Message { id, text } }];
    events.response_event("response.completed", head, "completed", &output, Some(tokens), Ending::Normal);
}
