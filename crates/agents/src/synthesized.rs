//! The answer text and the reasoning of a response whose stream names no items (Gemini, Chat
//! Completions): the parser opens each under a generated id at its first piece, streams the pieces as
//! deltas and sends the whole text when it closes. Both have exactly one part (index 0), since those
//! streams carry no part boundaries either.

use crate::provider::ModelEvent;
use crate::sse::EventQueue;

/// An item being streamed: its generated id and its text so far.
struct OpenText {
    id: String,
    text: String,
}

/// Appends `delta` to the item in `slot`, first opening one with a `prefix` id (announced by `start`)
/// when none is open; returns the item's id.
fn append<'a>(slot: &'a mut Option<OpenText>, prefix: &str, delta: &str, start: impl FnOnce(&str)) -> &'a str {
    let open = slot.get_or_insert_with(|| {
        let id = chatkit::ids::generate(prefix);
        start(&id);
        OpenText { id, text: String::new() }
    });
    open.text.push_str(delta);
    &open.id
}

/// The one assistant message of a response.
#[derive(Default)]
pub(crate) struct SynthesizedMessage(Option<OpenText>);

impl SynthesizedMessage {
    /// Streams `delta`, starting the message and its part first if needed.
    pub(crate) fn push(&mut self, delta: String, out: &mut EventQueue) {
        let message_id = append(&mut self.0, chatkit::ids::MESSAGE, &delta, |id| {
            out.push_back(Ok(ModelEvent::MessageStarted { id: id.to_string() }));
            out.push_back(Ok(ModelEvent::ContentPartStarted { message_id: id.to_string(), content_index: 0 }));
        })
        .to_string();
        out.push_back(Ok(ModelEvent::TextDelta { message_id, content_index: 0, delta }));
    }

    /// Ends the message, if one was started.
    pub(crate) fn close(&mut self, out: &mut EventQueue) {
        if let Some(OpenText { id, text }) = self.0.take() {
            out.push_back(Ok(ModelEvent::ContentPartDone { message_id: id.clone(), content_index: 0, text }));
            out.push_back(Ok(ModelEvent::MessageDone { id }));
        }
    }

    /// Whether text has been streamed and the message not yet closed.
    pub(crate) fn is_open(&self) -> bool {
        self.0.is_some()
    }
}

/// The reasoning of a response, as one reasoning item with one part.
#[derive(Default)]
pub(crate) struct SynthesizedReasoning(Option<OpenText>);

impl SynthesizedReasoning {
    /// Streams `delta`, starting the reasoning item first if needed.
    pub(crate) fn push(&mut self, delta: String, out: &mut EventQueue) {
        let item_id = append(&mut self.0, "rs", &delta, |id| {
            out.push_back(Ok(ModelEvent::ReasoningStarted { item_id: id.to_string() }));
        })
        .to_string();
        out.push_back(Ok(ModelEvent::ReasoningDelta { item_id, part_index: 0, delta }));
    }

    /// Ends the reasoning part, if one was started (answer text or a call follows it).
    pub(crate) fn close(&mut self, out: &mut EventQueue) {
        if let Some(OpenText { id, text }) = self.0.take() {
            out.push_back(Ok(ModelEvent::ReasoningPartDone { item_id: id, part_index: 0, text }));
        }
    }
}
