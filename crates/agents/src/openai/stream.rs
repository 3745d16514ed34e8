//! The OpenAI Responses stream, read leniently into [`ModelEvent`]s (the mapping is described in the
//! parent module): each event's `type` is read first, only the event types the mapping needs are
//! parsed further, each straight into its own payload struct, and unknown types or shapes are skipped.

use std::collections::HashSet;

use chatkit::types::{Annotation, AnnotationType};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PROVIDER;
use crate::error_class::{ErrorBody, ErrorClass};
use crate::provider::{FunctionCall, ModelEvent, ProviderError};
use crate::sse::{EventParser, EventQueue};
use crate::usage::Usage;

/// A stream event, as far as [`Parser`] needs it.
pub(crate) enum StreamEvent {
    OutputItemAdded { item: OutputItem },
    OutputItemDone { item: OutputItem },
    ContentPartAdded { item_id: String, content_index: usize, part: Option<PartHeader> },
    TextDelta { item_id: String, content_index: usize, delta: String },
    AnnotationAdded { item_id: String, content_index: usize, annotation: Value },
    TextDone { item_id: String, content_index: usize, text: String },
    RefusalDone { refusal: String },
    ReasoningDelta { item_id: String, part_index: usize, delta: String },
    ReasoningDone { item_id: String, part_index: usize, text: String },
    Completed { usage: Option<Usage> },
    Failed { response: Value },
    Incomplete { response: Value },
    Error { code: Option<String>, message: Option<String>, error: Option<Value> },
    Unknown,
}

// The payload of each event type, parsed straight into its own struct once the type is known (an
// internally tagged enum would first copy every event into an intermediate tree). The `type` key
// itself is ignored as an unknown field.

#[derive(Deserialize)]
struct ItemPayload {
    item: RawOutputItem,
}

/// An output item with the fields of every type this parser reads, flat (no intermediate tree as an
/// internally tagged enum would build); [`OutputItem::from_raw`] sorts it by `type`.
#[derive(Deserialize)]
struct RawOutputItem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct PartPayload {
    item_id: String,
    #[serde(default)]
    content_index: usize,
    #[serde(default)]
    part: Option<PartHeader>,
}

#[derive(Deserialize)]
struct DeltaPayload {
    item_id: String,
    #[serde(default)]
    content_index: usize,
    #[serde(default)]
    delta: String,
}

#[derive(Deserialize)]
struct AnnotationPayload {
    item_id: String,
    #[serde(default)]
    content_index: usize,
    #[serde(default)]
    annotation: Value,
}

#[derive(Deserialize)]
struct TextDonePayload {
    item_id: String,
    #[serde(default)]
    content_index: usize,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct RefusalDonePayload {
    #[serde(default)]
    refusal: String,
}

/// `response.reasoning_summary_text.*` (`summary_index`) and `response.reasoning_text.*`
/// (`content_index`): which part of which reasoning item, and its delta or final text.
#[derive(Deserialize)]
struct ReasoningPayload {
    item_id: String,
    #[serde(default, alias = "content_index")]
    summary_index: usize,
    #[serde(default)]
    delta: String,
    #[serde(default)]
    text: String,
}

/// An output item kept whole (reasoning items are handed back exactly as they came).
#[derive(Deserialize)]
struct WholeItemPayload {
    item: Value,
}

#[derive(Deserialize)]
struct ResponsePayload {
    #[serde(default)]
    response: Value,
}

#[derive(Deserialize)]
struct ErrorPayload {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

/// The type of a content part (`output_text`, `refusal`, `reasoning_text`…).
#[derive(Deserialize)]
pub(crate) struct PartHeader {
    #[serde(rename = "type", default)]
    kind: String,
}

/// An output item: a message, a function call, reasoning (whole only when done), or another type
/// (ignored).
pub(crate) enum OutputItem {
    Message { id: String, content: Vec<Value> },
    FunctionCall { id: Option<String>, call_id: String, name: String, arguments: String },
    Reasoning { id: String, whole: Option<Value> },
    Other,
}

impl OutputItem {
    /// Sorts a parsed item by type; an item missing a field its type requires is an error.
    fn from_raw(raw: RawOutputItem) -> serde_json::Result<Self> {
        use serde::de::Error as _;
        let missing = |field: &'static str| serde_json::Error::missing_field(field);
        Ok(match raw.kind.as_str() {
            "message" => OutputItem::Message { id: raw.id.ok_or_else(|| missing("id"))?, content: raw.content },
            "function_call" => OutputItem::FunctionCall {
                id: raw.id,
                call_id: raw.call_id.ok_or_else(|| missing("call_id"))?,
                name: raw.name.ok_or_else(|| missing("name"))?,
                arguments: raw.arguments,
            },
            "reasoning" => OutputItem::Reasoning { id: raw.id.unwrap_or_default(), whole: None },
            _ => OutputItem::Other,
        })
    }
}

/// A finished output item; reasoning items are kept whole for the next request.
fn done_item(data: &str) -> serde_json::Result<OutputItem> {
    let item = OutputItem::from_raw(serde_json::from_str::<ItemPayload>(data)?.item)?;
    Ok(match item {
        OutputItem::Reasoning { id, .. } => {
            OutputItem::Reasoning { id, whole: Some(serde_json::from_str::<WholeItemPayload>(data)?.item) }
        }
        other => other,
    })
}

/// Just the `type` of an event (the other fields are skipped without being materialized).
#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: std::borrow::Cow<'a, str>,
}

/// The `type` of an event that starts with it (`{"type":"response.created",…`, as OpenAI and the
/// mock write every event), without reading the rest.
pub(crate) fn leading_type(data: &str) -> Option<&str> {
    let rest = data.strip_prefix("{\"type\":\"")?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

/// Parses one event. The type is read first: `response.created`, `response.in_progress` and
/// `response.completed` carry the whole response object (instructions, tools…), which the
/// tagged-enum parse would copy into an intermediate tree only to ignore it, and even scanning
/// it costs more than the rest of the event handling. Events whose fields are not needed are
/// therefore not parsed further when the type comes first.
pub(crate) fn parse_event(data: &str) -> serde_json::Result<StreamEvent> {
    let kind = match leading_type(data) {
        Some(kind) => std::borrow::Cow::Borrowed(kind),
        None => serde_json::from_str::<EventType<'_>>(data)?.kind,
    };
    use serde_json::from_str;
    Ok(match kind.as_ref() {
        "response.completed" => StreamEvent::Completed { usage: completed_usage(data) },
        "response.output_item.added" => {
            StreamEvent::OutputItemAdded { item: OutputItem::from_raw(from_str::<ItemPayload>(data)?.item)? }
        }
        "response.output_item.done" => StreamEvent::OutputItemDone { item: done_item(data)? },
        "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
            let p: ReasoningPayload = from_str(data)?;
            StreamEvent::ReasoningDelta { item_id: p.item_id, part_index: p.summary_index, delta: p.delta }
        }
        "response.reasoning_summary_text.done" | "response.reasoning_text.done" => {
            let p: ReasoningPayload = from_str(data)?;
            StreamEvent::ReasoningDone { item_id: p.item_id, part_index: p.summary_index, text: p.text }
        }
        "response.content_part.added" => {
            let p: PartPayload = from_str(data)?;
            StreamEvent::ContentPartAdded { item_id: p.item_id, content_index: p.content_index, part: p.part }
        }
        "response.output_text.delta" => {
            let p: DeltaPayload = from_str(data)?;
            StreamEvent::TextDelta { item_id: p.item_id, content_index: p.content_index, delta: p.delta }
        }
        "response.output_text.annotation.added" => {
            let p: AnnotationPayload = from_str(data)?;
            StreamEvent::AnnotationAdded {
                item_id: p.item_id,
                content_index: p.content_index,
                annotation: p.annotation,
            }
        }
        "response.output_text.done" => {
            let p: TextDonePayload = from_str(data)?;
            StreamEvent::TextDone { item_id: p.item_id, content_index: p.content_index, text: p.text }
        }
        "response.refusal.done" => {
            let p: RefusalDonePayload = from_str(data)?;
            StreamEvent::RefusalDone { refusal: p.refusal }
        }
        "response.failed" => StreamEvent::Failed { response: from_str::<ResponsePayload>(data)?.response },
        "response.incomplete" => StreamEvent::Incomplete { response: from_str::<ResponsePayload>(data)?.response },
        "error" => {
            let p: ErrorPayload = from_str(data)?;
            StreamEvent::Error { code: p.code, message: p.message, error: p.error }
        }
        _ => StreamEvent::Unknown,
    })
}

/// Parses Responses stream events into model events.
#[derive(Default)]
pub(crate) struct Parser {
    /// (message id, part index) whose text was streamed (to fill in parts only present in the final item).
    seen_parts: HashSet<(String, usize)>,
    /// Whether the response has a reasoning item: its messages then go back whole.
    reasoning: bool,
    finished: bool,
    /// The model's refusal, reported as an error once the response ends (so its usage is known).
    refused: Option<String>,
}

impl Parser {
    /// A finished message: parts whose text never streamed (only the final item carries it) are
    /// completed from the item, then the message ends.
    fn message_done(&mut self, id: String, content: &[Value], out: &mut EventQueue) {
        for (index, part) in content.iter().enumerate() {
            if self.seen_parts.contains(&(id.clone(), index)) {
                continue;
            }
            if let Some(refused) = part.get("refusal").and_then(Value::as_str) {
                self.refused.get_or_insert_with(|| refused.to_string());
                return;
            }
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                out.push_back(Ok(ModelEvent::ContentPartDone {
                    message_id: id.clone(),
                    content_index: index,
                    text: text.to_string(),
                }));
            }
        }
        out.push_back(Ok(ModelEvent::MessageDone { id }));
    }
}

impl EventParser for Parser {
    fn on_data(&mut self, data: &str, out: &mut EventQueue) {
        let event: StreamEvent = match parse_event(data) {
            Ok(e) => e,
            Err(e) => {
                // A known event type with an unexpected shape; skip it rather than fail the turn.
                tracing::warn!(provider = PROVIDER, error = %e, "skipping unreadable stream event");
                return;
            }
        };
        match event {
            StreamEvent::OutputItemAdded { item: OutputItem::Message { id, .. } } => {
                out.push_back(Ok(ModelEvent::MessageStarted { id }));
            }
            StreamEvent::OutputItemAdded { item: OutputItem::Reasoning { id, .. } } => {
                self.reasoning = true;
                out.push_back(Ok(ModelEvent::ReasoningStarted { item_id: id }));
            }
            StreamEvent::OutputItemAdded { .. } => {}
            StreamEvent::ReasoningDelta { item_id, part_index, delta } => {
                out.push_back(Ok(ModelEvent::ReasoningDelta { item_id, part_index, delta }));
            }
            StreamEvent::ReasoningDone { item_id, part_index, text } => {
                out.push_back(Ok(ModelEvent::ReasoningPartDone { item_id, part_index, text }));
            }
            StreamEvent::OutputItemDone { item: OutputItem::Reasoning { whole: Some(item), .. } } => {
                self.reasoning = true;
                out.push_back(Ok(ModelEvent::ReasoningItem { item }));
            }
            StreamEvent::ContentPartAdded { item_id, content_index, part } => {
                // Reasoning text is not answer text; a refusal ends the response as an error at its `done`.
                if part.as_ref().is_some_and(|p| p.kind == "reasoning_text" || p.kind == "refusal") {
                    return;
                }
                self.seen_parts.insert((item_id.clone(), content_index));
                out.push_back(Ok(ModelEvent::ContentPartStarted { message_id: item_id, content_index }));
            }
            StreamEvent::TextDelta { item_id, content_index, delta } => {
                self.seen_parts.insert((item_id.clone(), content_index));
                out.push_back(Ok(ModelEvent::TextDelta { message_id: item_id, content_index, delta }));
            }
            StreamEvent::AnnotationAdded { item_id, content_index, annotation } => {
                if let Some(annotation) = convert_annotation(&annotation) {
                    out.push_back(Ok(ModelEvent::Annotation { message_id: item_id, content_index, annotation }));
                }
            }
            StreamEvent::RefusalDone { refusal: text } => {
                self.refused.get_or_insert(text);
            }
            StreamEvent::TextDone { item_id, content_index, text } => {
                self.seen_parts.insert((item_id.clone(), content_index));
                out.push_back(Ok(ModelEvent::ContentPartDone { message_id: item_id, content_index, text }));
            }
            StreamEvent::OutputItemDone { item: OutputItem::Message { id, content } } => {
                if self.reasoning
                    && let Ok(whole) = serde_json::from_str::<WholeItemPayload>(data)
                {
                    out.push_back(Ok(ModelEvent::MessageItem { item: whole.item }));
                }
                self.message_done(id, &content, out);
            }
            StreamEvent::OutputItemDone { item: OutputItem::FunctionCall { id, call_id, name, arguments } } => {
                let provider_data = id.map(|id| json!({ "id": id }));
                out.push_back(Ok(ModelEvent::FunctionCall(FunctionCall { call_id, name, arguments, provider_data })));
            }
            StreamEvent::OutputItemDone { .. } => {}
            StreamEvent::Completed { usage } => {
                self.finished = true;
                match self.refused.take() {
                    Some(text) => {
                        out.extend(usage.map(|usage| Ok(ModelEvent::Usage { usage })));
                        out.push_back(Err(refusal(text)));
                    }
                    None => out.push_back(Ok(ModelEvent::Completed { usage })),
                }
            }
            StreamEvent::Failed { response } => {
                out.extend(ended_usage(&response));
                out.push_back(Err(response_failed(&response)));
            }
            StreamEvent::Incomplete { response } => {
                out.extend(ended_usage(&response));
                out.push_back(Err(response_incomplete(&response)));
            }
            StreamEvent::Error { code, message, error } => {
                out.push_back(Err(error_event(code, message, error.as_ref())));
            }
            StreamEvent::Unknown => {}
        }
    }

    fn on_eof(&mut self, out: &mut EventQueue) {
        if let Some(text) = self.refused.take() {
            self.finished = true;
            out.push_back(Err(refusal(text)));
        }
        if !self.finished {
            out.push_back(Err(ProviderError::StreamCut {
                provider: PROVIDER,
                message: "the stream ended before `response.completed`".into(),
            }));
        }
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// The `usage` of a `response.completed` event, read without materializing the rest of the response.
fn completed_usage(data: &str) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Completed {
        response: UsageOnly,
    }
    #[derive(Deserialize)]
    struct UsageOnly {
        #[serde(default)]
        usage: Option<Value>,
    }
    let parsed: Completed = serde_json::from_str(data).ok()?;
    parsed.response.usage.as_ref().and_then(Usage::from_openai)
}

/// The usage a failed or incomplete response object reports, as a [`ModelEvent::Usage`].
fn ended_usage(response: &Value) -> Option<Result<ModelEvent, ProviderError>> {
    let usage = response.get("usage").and_then(Usage::from_openai)?;
    Some(Ok(ModelEvent::Usage { usage }))
}

/// `response.failed`: the error the response object carries.
fn response_failed(response: &Value) -> ProviderError {
    let mut body = response.get("error").map(ErrorBody::from_json).unwrap_or_default();
    if body.message.is_empty() {
        body.message = "the response failed without a message".into();
    }
    ProviderError::in_stream(PROVIDER, &body)
}

/// `response.incomplete`: the response stopped early (at the output token limit, or blocked by the
/// content filter).
fn response_incomplete(response: &Value) -> ProviderError {
    let reason = response.pointer("/incomplete_details/reason").and_then(Value::as_str).unwrap_or("unknown");
    let message = format!("the response is incomplete (reason: {reason})");
    if reason == "content_filter" {
        return ProviderError::Refused {
            provider: PROVIDER,
            class: ErrorClass::ContentBlocked,
            status: None,
            code: Some(reason.to_string()),
            message,
        };
    }
    ProviderError::Failed { provider: PROVIDER, message, retryable: false, code: Some(reason.to_string()) }
}

/// An `error` event, whose code and message sit at the top level or in a nested `error` object.
fn error_event(code: Option<String>, message: Option<String>, error: Option<&Value>) -> ProviderError {
    let mut body = error.map(ErrorBody::from_json).unwrap_or_default();
    if let Some(code) = code {
        body.code = Some(code);
    }
    if let Some(message) = message.filter(|m| !m.trim().is_empty()) {
        body.message = message;
    }
    ProviderError::in_stream(PROVIDER, &body)
}

/// The model refused (a `refusal` content part): the refusal text goes to the log, the user is told the
/// request was declined.
fn refusal(refusal: String) -> ProviderError {
    ProviderError::Refused {
        provider: PROVIDER,
        class: ErrorClass::ContentBlocked,
        status: None,
        code: Some("refusal".into()),
        message: refusal,
    }
}

/// Converts a Responses annotation into ChatKit's `annotation` (a source with a title and the text index
/// it follows); `None` for kinds ChatKit cannot show (e.g. `file_path`).
pub(crate) fn convert_annotation(a: &Value) -> Option<Annotation> {
    let s = |k: &str| a.get(k).and_then(Value::as_str);
    let n = |k: &str| a.get(k).and_then(Value::as_u64);
    let (source, index) = match s("type")? {
        "url_citation" => {
            let url = s("url")?;
            (json!({"title": s("title").unwrap_or(url), "type": "url", "url": url}), n("end_index"))
        }
        "file_citation" => {
            let f = s("filename").filter(|f| !f.is_empty())?;
            (json!({"title": f, "type": "file", "filename": f}), n("index"))
        }
        "container_file_citation" => {
            let f = s("filename").filter(|f| !f.is_empty())?;
            (json!({"title": f, "type": "file", "filename": f}), n("end_index"))
        }
        _ => return None,
    };
    Some(Annotation { kind: AnnotationType::Annotation, source, index })
}
