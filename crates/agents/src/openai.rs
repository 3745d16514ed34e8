//! OpenAI Responses API provider (`POST {base}/responses`, `stream: true`), as a thin reqwest client
//! with lenient serde types: unknown event and item types are skipped, so new OpenAI payloads never
//! break a turn.
//!
//! Event mapping: `output_item.added` (message) → message start; `content_part.added` → part start
//! (refusal parts become text); `output_text.delta` / `refusal.delta` → deltas;
//! `output_text.annotation.added` → converted citations (spec §9.2); `output_text.done` /
//! `refusal.done` → part done; `output_item.done` → message done or a complete function call;
//! `response.completed` → completed; `response.failed` / `response.incomplete` / `error` → an error
//! with the provider's message. The stream side lives in `openai_stream.rs`; this module builds and
//! sends the request.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Serialize, Serializer};
use serde_json::Value;
#[cfg(test)]
use serde_json::json;
use serde_json::value::RawValue;

use crate::input::{ContentPart, InputItem, Role};
use crate::openai_stream::Parser;
use crate::provider::{ModelRequest, ModelStream, Provider, ProviderError, ToolSpec};
use crate::retry::{start_stream, with_retries};
use crate::sse::model_stream;
use crate::transport::Transport;

/// Provider name in errors and logs.
pub(crate) const PROVIDER: &str = "OpenAI";

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

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
