//! Model events → ChatKit events, for one model response, in the order ChatKit clients expect them.
//!
//! Per assistant message: `thread.item.added` (content `[]`, id = the provider's message id) →
//! `content_part.added` (`{"annotations":[],"text":"","type":"output_text"}`) → `text_delta`s →
//! `annotation_added` (index = running count of emitted annotations of that part) →
//! `content_part.done` (final text, annotations `[]`) → `thread.item.done` (fresh `created_at`, all
//! parts with their annotations). Missing start events are synthesized so every provider yields the
//! same sequence; an event naming a message that never started continues the open message (some
//! proxies change the item id within one message). Function calls produce no ChatKit event.
//! Reasoning goes to the run's [`ReasoningWorkflow`], which a starting message closes.

use chatkit::types::{
    AssistantMessageContent, AssistantMessageItem, ItemKind, ItemUpdate, ThreadItem, ThreadStreamEvent,
};
use chatkit::{EventSink, SinkError};

use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{FunctionCall, ModelEvent};
use crate::usage::Usage;
use crate::workflow::ReasoningWorkflow;

/// What one model response produced for the conversation.
#[derive(Debug, Default)]
pub(crate) struct StepOutput {
    /// Reasoning items, assistant messages and function calls, in output order (appended to the next
    /// request).
    pub(crate) items: Vec<InputItem>,
    /// The function calls to execute, in output order.
    pub(crate) calls: Vec<FunctionCall>,
    /// What the call consumed, as its completion event reported.
    pub(crate) usage: Option<Usage>,
}

struct OpenPart {
    content: AssistantMessageContent,
    started: bool,
    done: bool,
}

struct OpenMessage {
    id: String,
    parts: Vec<OpenPart>,
}

impl OpenMessage {
    fn content(&self) -> Vec<AssistantMessageContent> {
        self.parts.iter().map(|p| p.content.clone()).collect()
    }

    fn has_text(&self) -> bool {
        self.parts.iter().any(|p| !p.content.text.trim().is_empty())
    }
}

/// Maps one response's model events to ChatKit events through the sink.
pub(crate) struct EventMapper<'a> {
    sink: &'a EventSink,
    workflow: &'a ReasoningWorkflow,
    thread_id: String,
    open: Vec<OpenMessage>,
    /// Messages finished in this response (for error wording).
    pub(crate) finished_messages: usize,
    /// What the response produced.
    pub(crate) output: StepOutput,
    /// Messages as the provider sent them whole ([`ModelEvent::MessageItem`]), by id, until they
    /// finish.
    whole_messages: Vec<(String, serde_json::Value)>,
}

impl<'a> EventMapper<'a> {
    pub(crate) fn new(sink: &'a EventSink, workflow: &'a ReasoningWorkflow) -> Self {
        EventMapper {
            sink,
            workflow,
            thread_id: sink.thread_id(),
            open: Vec::new(),
            finished_messages: 0,
            output: StepOutput::default(),
            whole_messages: Vec::new(),
        }
    }

    async fn send_update(&self, item_id: &str, update: ItemUpdate) -> Result<(), SinkError> {
        self.sink.send(ThreadStreamEvent::ItemUpdated { item_id: item_id.to_string(), update }).await
    }

    /// The id events about message `id` apply to: `id` itself when it is open or when no message is
    /// open, else the most recent open message (the provider changed the id within the message).
    fn canonical(&self, id: String) -> String {
        match self.open.last() {
            Some(last) if !self.open.iter().any(|m| m.id == id) => last.id.clone(),
            _ => id,
        }
    }

    /// Index of the open message `id`, starting it (`thread.item.added`, after closing the reasoning
    /// workflow) if needed.
    async fn message(&mut self, id: &str) -> Result<usize, SinkError> {
        if let Some(i) = self.open.iter().position(|m| m.id == id) {
            return Ok(i);
        }
        self.workflow.close(self.sink).await?;
        let item = ThreadItem::new(id, &self.thread_id, ItemKind::AssistantMessage(AssistantMessageItem::default()));
        self.sink.send(ThreadStreamEvent::ItemAdded { item }).await?;
        self.open.push(OpenMessage { id: id.to_string(), parts: Vec::new() });
        Ok(self.open.len() - 1)
    }

    /// Ensures part `index` of message `m` exists and was announced (`content_part.added`).
    async fn part(&mut self, m: usize, index: usize) -> Result<(), SinkError> {
        while self.open[m].parts.len() <= index {
            self.open[m].parts.push(OpenPart {
                content: AssistantMessageContent::text(""),
                started: false,
                done: false,
            });
        }
        if !self.open[m].parts[index].started {
            self.open[m].parts[index].started = true;
            let id = self.open[m].id.clone();
            let update =
                ItemUpdate::ContentPartAdded { content_index: index, content: AssistantMessageContent::text("") };
            self.send_update(&id, update).await?;
        }
        Ok(())
    }

    async fn finish_part(&mut self, m: usize, index: usize) -> Result<(), SinkError> {
        let part = &mut self.open[m].parts[index];
        if part.done {
            return Ok(());
        }
        part.done = true;
        let content = AssistantMessageContent::text(part.content.text.clone());
        let id = self.open[m].id.clone();
        self.send_update(&id, ItemUpdate::ContentPartDone { content_index: index, content }).await
    }

    /// Closes every part, then emits `thread.item.done` and records the message for the next request.
    async fn finish_message(&mut self, m: usize) -> Result<(), SinkError> {
        for index in 0..self.open[m].parts.len() {
            if self.open[m].parts[index].started {
                self.finish_part(m, index).await?;
            }
        }
        let msg = self.open.remove(m);
        let content = msg.content();
        let whole = self.whole_messages.iter().position(|(id, _)| *id == msg.id);
        self.output.items.push(match whole {
            Some(i) => InputItem::Verbatim { item: self.whole_messages.swap_remove(i).1 },
            None => InputItem::Message {
                role: Role::Assistant,
                content: content.iter().map(|c| ContentPart::OutputText(c.text.clone())).collect(),
            },
        });
        let item =
            ThreadItem::new(msg.id, &self.thread_id, ItemKind::AssistantMessage(AssistantMessageItem { content }));
        self.finished_messages += 1;
        self.sink.send(ThreadStreamEvent::ItemDone { item }).await
    }

    /// Applies one model event.
    pub(crate) async fn handle(&mut self, event: ModelEvent) -> Result<(), SinkError> {
        match event {
            ModelEvent::MessageStarted { id } => {
                self.message(&id).await?;
            }
            ModelEvent::ContentPartStarted { message_id, content_index } => {
                let message_id = self.canonical(message_id);
                let m = self.message(&message_id).await?;
                self.part(m, content_index).await?;
            }
            ModelEvent::TextDelta { message_id, content_index, delta } => {
                let message_id = self.canonical(message_id);
                let m = self.message(&message_id).await?;
                self.part(m, content_index).await?;
                self.open[m].parts[content_index].content.text.push_str(&delta);
                self.send_update(&message_id, ItemUpdate::TextDelta { content_index, delta }).await?;
            }
            ModelEvent::Annotation { message_id, content_index, annotation } => {
                let message_id = self.canonical(message_id);
                let m = self.message(&message_id).await?;
                self.part(m, content_index).await?;
                let anns = &mut self.open[m].parts[content_index].content.annotations;
                let annotation_index = anns.len();
                anns.push(annotation.clone());
                let update = ItemUpdate::AnnotationAdded { content_index, annotation_index, annotation };
                self.send_update(&message_id, update).await?;
            }
            ModelEvent::ContentPartDone { message_id, content_index, text } => {
                let message_id = self.canonical(message_id);
                let m = self.message(&message_id).await?;
                self.part(m, content_index).await?;
                self.open[m].parts[content_index].content.text = text;
                self.finish_part(m, content_index).await?;
            }
            ModelEvent::MessageDone { id } => {
                let id = self.canonical(id);
                let m = self.message(&id).await?;
                self.finish_message(m).await?;
            }
            ModelEvent::FunctionCall(call) => {
                self.output.items.push(InputItem::FunctionCall {
                    call_id: call.call_id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    provider_data: call.provider_data.clone(),
                });
                self.output.calls.push(call);
            }
            ModelEvent::Completed { usage } => self.output.usage = usage,
            ModelEvent::Usage { usage } => self.output.usage = Some(usage),
            ModelEvent::ReasoningStarted { .. } => self.workflow.start(self.sink).await?,
            ModelEvent::ReasoningDelta { item_id, part_index, delta } => {
                self.workflow.delta(self.sink, &item_id, part_index, &delta).await?;
            }
            ModelEvent::ReasoningPartDone { item_id, part_index, text } => {
                self.workflow.part_done(self.sink, &item_id, part_index, &text).await?;
            }
            ModelEvent::ReasoningItem { item } => self.output.items.push(InputItem::Verbatim { item }),
            ModelEvent::MessageItem { item } => {
                if let Some(id) = item.get("id").and_then(serde_json::Value::as_str) {
                    let id = self.canonical(id.to_string());
                    self.whole_messages.push((id, item));
                }
            }
        }
        Ok(())
    }

    /// Ends messages left open by a stream that ended or failed: non-empty ones are finished and
    /// stored with their partial text (`content_part.done` + `thread.item.done`), empty ones are
    /// removed (`thread.item.removed`). Returns whether partial text was kept.
    pub(crate) async fn finish_open(&mut self) -> Result<bool, SinkError> {
        let mut kept = false;
        while !self.open.is_empty() {
            if self.open[0].has_text() {
                kept = true;
                self.finish_message(0).await?;
            } else {
                let msg = self.open.remove(0);
                self.sink.send(ThreadStreamEvent::ItemRemoved { item_id: msg.id }).await?;
            }
        }
        Ok(kept)
    }
}
