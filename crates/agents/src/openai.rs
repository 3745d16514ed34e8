//! OpenAI Responses API provider (`POST {base}/responses`, `stream: true`), as a thin reqwest client
//! with lenient serde types: unknown event and item types are skipped, so new OpenAI payloads never
//! break a turn.
//!
//! Event mapping: `output_item.added` (message) → message start; `content_part.added` → part start
//! (refusal parts become text); `output_text.delta` / `refusal.delta` → deltas;
//! `output_text.annotation.added` → converted citations (spec §9.2); `output_text.done` /
//! `refusal.done` → part done; `output_item.done` → message done or a complete function call;
//! `response.completed` → completed; `response.failed` / `response.incomplete` / `error` → an error
//! with the provider's message.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chatkit::types::{Annotation, AnnotationType};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{FunctionCall, ModelEvent, ModelRequest, ModelStream, Provider, ProviderError, ToolSpec};
use crate::retry::{start_stream, with_retries};
use crate::sse::{EventParser, EventQueue, model_stream};
use crate::transport::Transport;

const PROVIDER: &str = "OpenAI";

/// The OpenAI Responses provider.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    transport: Transport,
    base_url: String,
    /// `{base_url}/responses`, parsed once (`None` if it does not parse: the request reports it).
    responses_url: Option<reqwest::Url>,
    model: String,
    /// The encoded instructions and tools of the last request (reused while they stay the same).
    fixed: Arc<Mutex<Option<Arc<FixedParts>>>>,
}

impl OpenAiProvider {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let responses_url = reqwest::Url::parse(&format!("{base_url}/responses")).ok();
        OpenAiProvider { transport, base_url, responses_url, model, fixed: Arc::default() }
    }

    /// The encoded fixed parts for `request`, from the cache when they are the same as last time.
    fn fixed_parts(&self, request: &ModelRequest) -> serde_json::Result<Arc<FixedParts>> {
        let cached = self.fixed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(parts) = cached.filter(|parts| parts.matches(request)) {
            return Ok(parts);
        }
        let parts = Arc::new(FixedParts::of(request)?);
        *self.fixed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(parts.clone());
        Ok(parts)
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        let encode_error = |e: serde_json::Error| ProviderError::Request { provider: PROVIDER, message: e.to_string() };
        let fixed = self.fixed_parts(&request).map_err(encode_error)?;
        let body = serde_json::to_vec(&Body::new(&self.model, &request, &fixed)).map_err(encode_error)?;
        let body = bytes::Bytes::from(body);
        let t = &self.transport;
        with_retries(&t.retry, PROVIDER, |_| {
            let post = match &self.responses_url {
                Some(url) => t.client.post(url.clone()),
                None => t.client.post(format!("{}/responses", self.base_url)),
            };
            let req = post
                .bearer_auth(t.secret())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .body(body.clone());
            async move {
                let response = t.send(req).await?;
                start_stream(t.redact_stream(model_stream(response, PROVIDER, t.timeouts, Parser::default())), PROVIDER)
                    .await
            }
        })
        .await
    }

    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.model
    }
}

/// The request body, serialized straight from the request (no intermediate JSON tree), with the
/// keys in the order the Python sample sends them. [`request_body`] builds the same JSON as a value.
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    include: [u8; 0],
    model: &'a str,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    instructions: &'a RawValue,
    #[serde(serialize_with = "serialize_input")]
    input: &'a [InputItem],
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a RawValue>,
}

impl<'a> Body<'a> {
    /// The body of `request`, whose instructions and tools are already encoded in `fixed`.
    pub(crate) fn new(model: &'a str, request: &'a ModelRequest, fixed: &'a FixedParts) -> Self {
        Body {
            include: [],
            model,
            stream: true,
            temperature: request.temperature.map(f32_to_f64),
            instructions: &fixed.instructions_json,
            input: &request.input,
            tools: fixed.tools_json.as_deref(),
        }
    }
}

/// The parts of a request body that are the same on every call of an agent (the instructions and the
/// tool schemas, ~6 KB for the support agent), encoded once: re-encoding them was ~6% of a turn's
/// instructions.
#[derive(Debug)]
pub(crate) struct FixedParts {
    instructions: String,
    tools: Arc<[ToolSpec]>,
    instructions_json: Box<RawValue>,
    /// `None` when there are no tools (the key is then left out).
    tools_json: Option<Box<RawValue>>,
}

impl FixedParts {
    /// Encodes the instructions and tools of `request`.
    pub(crate) fn of(request: &ModelRequest) -> serde_json::Result<Self> {
        let instructions_json = serde_json::value::to_raw_value(&request.instructions)?;
        let tools_json = if request.tools.is_empty() {
            None
        } else {
            let wire: Vec<WireTool<'_>> = request
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                    strict: true,
                })
                .collect();
            Some(serde_json::value::to_raw_value(&wire)?)
        };
        Ok(FixedParts {
            instructions: request.instructions.clone(),
            tools: request.tools.clone(),
            instructions_json,
            tools_json,
        })
    }

    /// Whether these are the instructions and tools of `request` (comparing is much cheaper than
    /// encoding; the calls of one run share their tool list, so most comparisons are by identity).
    fn matches(&self, request: &ModelRequest) -> bool {
        self.instructions == request.instructions
            && (Arc::ptr_eq(&self.tools, &request.tools) || *self.tools == *request.tools)
    }
}

fn serialize_input<S: Serializer>(input: &&[InputItem], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(input.iter().map(WireItem))
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
    strict: bool,
}

/// One input item in the Responses wire format (same shapes as [`input_item`]).
struct WireItem<'a>(&'a InputItem);

impl Serialize for WireItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            InputItem::Message { role, content } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "message")?;
                m.serialize_entry(
                    "role",
                    match role {
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    },
                )?;
                m.serialize_entry("content", &WireParts(content))?;
                m.end()
            }
            InputItem::FunctionCall { call_id, name, arguments, .. } => {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("type", "function_call")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("arguments", arguments)?;
                m.end()
            }
            InputItem::FunctionCallOutput { call_id, output } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "function_call_output")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("output", output)?;
                m.end()
            }
        }
    }
}

struct WireParts<'a>(&'a [ContentPart]);

impl Serialize for WireParts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WirePart))
    }
}

struct WirePart<'a>(&'a ContentPart);

impl Serialize for WirePart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            ContentPart::InputText(text) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "input_text")?;
                m.serialize_entry("text", text)?;
                m.end()
            }
            ContentPart::InputImage { url } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "input_image")?;
                m.serialize_entry("image_url", url)?;
                m.serialize_entry("detail", "auto")?;
                m.end()
            }
            ContentPart::OutputText(text) => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "output_text")?;
                m.serialize_entry("text", text)?;
                m.serialize_entry("annotations", &[(); 0])?;
                m.end()
            }
        }
    }
}

/// The request body as a JSON value (the reference for [`Body`], used by tests).
#[cfg(test)]
pub(crate) fn request_body(model: &str, request: &ModelRequest) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("include".into(), json!([]));
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(f32_to_f64(t)));
    }
    body.insert("instructions".into(), json!(request.instructions));
    body.insert("input".into(), Value::Array(request.input.iter().map(input_item).collect()));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters, "strict": true})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

/// `0.4f32` as `0.4` (not `0.4000000059604645`).
pub(crate) fn f32_to_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

#[cfg(test)]
fn input_item(item: &InputItem) -> Value {
    match item {
        InputItem::Message { role, content } => {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            let parts: Vec<Value> = content
                .iter()
                .map(|p| match p {
                    ContentPart::InputText(text) => json!({"type": "input_text", "text": text}),
                    ContentPart::InputImage { url } => {
                        json!({"type": "input_image", "image_url": url, "detail": "auto"})
                    }
                    ContentPart::OutputText(text) => {
                        json!({"type": "output_text", "text": text, "annotations": []})
                    }
                })
                .collect();
            json!({"type": "message", "role": role, "content": parts})
        }
        InputItem::FunctionCall { call_id, name, arguments, .. } => {
            json!({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})
        }
        InputItem::FunctionCallOutput { call_id, output } => {
            json!({"type": "function_call_output", "call_id": call_id, "output": output})
        }
    }
}

// ---- stream events (lenient) ----

/// A stream event, as far as [`Parser`] needs it.
enum StreamEvent {
    OutputItemAdded { item: OutputItem },
    OutputItemDone { item: OutputItem },
    ContentPartAdded { item_id: String, content_index: usize, part: Option<PartHeader> },
    TextDelta { item_id: String, content_index: usize, delta: String },
    AnnotationAdded { item_id: String, content_index: usize, annotation: Value },
    TextDone { item_id: String, content_index: usize, text: String },
    RefusalDone { item_id: String, content_index: usize, refusal: String },
    Completed,
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
/// internally tagged enum would build); [`OutputItem::from`] sorts it by `type`.
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
    item_id: String,
    #[serde(default)]
    content_index: usize,
    #[serde(default)]
    refusal: String,
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

#[derive(Deserialize)]
struct PartHeader {
    #[serde(rename = "type", default)]
    kind: String,
}

/// An output item: a message, a function call, or another type (ignored).
enum OutputItem {
    Message { id: String, content: Vec<Value> },
    FunctionCall { id: Option<String>, call_id: String, name: String, arguments: String },
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
            _ => OutputItem::Other,
        })
    }
}

/// Just the `type` of an event (the other fields are skipped without being materialized).
#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: std::borrow::Cow<'a, str>,
}

/// The `type` of an event that starts with it (`{"type":"response.created",…`, as OpenAI and the
/// mock write every event), without reading the rest.
fn leading_type(data: &str) -> Option<&str> {
    let rest = data.strip_prefix("{\"type\":\"")?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

/// Parses one event. The type is read first: `response.created`, `response.in_progress` and
/// `response.completed` carry the whole response object (instructions, tools…), which the
/// tagged-enum parse would copy into an intermediate tree only to ignore it, and even scanning
/// it costs more than the rest of the event handling. Events whose fields are not needed are
/// therefore not parsed further when the type comes first.
fn parse_event(data: &str) -> serde_json::Result<StreamEvent> {
    let kind = match leading_type(data) {
        Some(kind) => std::borrow::Cow::Borrowed(kind),
        None => serde_json::from_str::<EventType<'_>>(data)?.kind,
    };
    use serde_json::from_str;
    Ok(match kind.as_ref() {
        "response.completed" => StreamEvent::Completed,
        "response.output_item.added" => {
            StreamEvent::OutputItemAdded { item: OutputItem::from_raw(from_str::<ItemPayload>(data)?.item)? }
        }
        "response.output_item.done" => {
            StreamEvent::OutputItemDone { item: OutputItem::from_raw(from_str::<ItemPayload>(data)?.item)? }
        }
        "response.content_part.added" => {
            let p: PartPayload = from_str(data)?;
            StreamEvent::ContentPartAdded { item_id: p.item_id, content_index: p.content_index, part: p.part }
        }
        "response.output_text.delta" | "response.refusal.delta" => {
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
            StreamEvent::RefusalDone { item_id: p.item_id, content_index: p.content_index, refusal: p.refusal }
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
    finished: bool,
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
            StreamEvent::OutputItemAdded { .. } => {}
            StreamEvent::ContentPartAdded { item_id, content_index, part } => {
                if part.as_ref().is_some_and(|p| p.kind == "reasoning_text") {
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
            StreamEvent::TextDone { item_id, content_index, text }
            | StreamEvent::RefusalDone { item_id, content_index, refusal: text } => {
                self.seen_parts.insert((item_id.clone(), content_index));
                out.push_back(Ok(ModelEvent::ContentPartDone { message_id: item_id, content_index, text }));
            }
            StreamEvent::OutputItemDone { item: OutputItem::Message { id, content } } => {
                for (index, part) in content.iter().enumerate() {
                    if self.seen_parts.contains(&(id.clone(), index)) {
                        continue;
                    }
                    let text = part.get("text").or_else(|| part.get("refusal")).and_then(Value::as_str);
                    if let Some(text) = text {
                        out.push_back(Ok(ModelEvent::ContentPartDone {
                            message_id: id.clone(),
                            content_index: index,
                            text: text.to_string(),
                        }));
                    }
                }
                out.push_back(Ok(ModelEvent::MessageDone { id }));
            }
            StreamEvent::OutputItemDone { item: OutputItem::FunctionCall { id, call_id, name, arguments } } => {
                let provider_data = id.map(|id| json!({ "id": id }));
                out.push_back(Ok(ModelEvent::FunctionCall(FunctionCall { call_id, name, arguments, provider_data })));
            }
            StreamEvent::OutputItemDone { .. } => {}
            StreamEvent::Completed => {
                self.finished = true;
                out.push_back(Ok(ModelEvent::Completed));
            }
            StreamEvent::Failed { response } => {
                let code = response.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string();
                let message = response
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                    .unwrap_or("the response failed without a message")
                    .to_string();
                out.push_back(Err(failed(message, &code)));
            }
            StreamEvent::Incomplete { response } => {
                let reason =
                    response.pointer("/incomplete_details/reason").and_then(Value::as_str).unwrap_or("unknown");
                out.push_back(Err(ProviderError::Failed {
                    provider: PROVIDER,
                    message: format!("the response is incomplete (reason: {reason})"),
                    retryable: false,
                }));
            }
            StreamEvent::Error { code, message, error } => {
                let message = message
                    .or_else(|| {
                        error.as_ref().and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_string)
                    })
                    .unwrap_or_else(|| "unknown error".into());
                let code = code
                    .or_else(|| error.as_ref().and_then(|e| e.get("code")).and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                out.push_back(Err(failed(message, &code)));
            }
            StreamEvent::Unknown => {}
        }
    }

    fn on_eof(&mut self, out: &mut EventQueue) {
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

fn failed(message: String, code: &str) -> ProviderError {
    let retryable = matches!(code, "server_error" | "rate_limit_exceeded" | "server_is_overloaded" | "slow_down");
    ProviderError::Failed { provider: PROVIDER, message, retryable }
}

/// Converts a Responses annotation into the ChatKit shape (spec §9.2); `None` for unsupported kinds.
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

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
