//! Google Gemini provider on the native API:
//! `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse` with the key in `x-goog-api-key`.
//!
//! Request: `systemInstruction`, `contents` (roles `user`/`model`; consecutive items of one role are
//! merged into one content; function calls are `functionCall` parts of model turns with their
//! `thoughtSignature` replayed exactly, outputs are `functionResponse` parts of user turns; images
//! are `inlineData`), `tools[].functionDeclarations` (schemas converted by
//! `gemini_schema`) and `generationConfig.temperature`.
//!
//! Response: Gemini has no message ids, so each response's text parts become one assistant message
//! with a generated `msg_…` id, streamed as deltas. Function calls arrive whole; a call without an
//! id gets a generated `call_…` id (not sent back). Thought parts are skipped.

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::gemini_schema::function_parameters;
use crate::input::{ContentPart, InputItem, Role};
use crate::openai::f32_to_f64;
use crate::provider::{FunctionCall, ModelEvent, ModelRequest, ModelStream, Provider, ProviderError};
use crate::retry::{start_stream, with_retries};
use crate::sse::{EventParser, EventQueue, model_stream};
use crate::transport::Transport;

const PROVIDER: &str = "Gemini";

/// The Gemini provider.
#[derive(Debug, Clone)]
pub struct GeminiProvider {
    transport: Transport,
    base_url: String,
    model: String,
}

impl GeminiProvider {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String) -> Self {
        let model = model.strip_prefix("models/").map(str::to_string).unwrap_or(model);
        GeminiProvider { transport, base_url: base_url.trim_end_matches('/').to_string(), model }
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        let body = serde_json::to_vec(&request_body(&request))
            .map_err(|e| ProviderError::Request { provider: PROVIDER, message: e.to_string() })?;
        let body = bytes::Bytes::from(body);
        let url = format!("{}/v1beta/models/{}:streamGenerateContent?alt=sse", self.base_url, self.model);
        let t = &self.transport;
        with_retries(&t.retry, PROVIDER, |_| {
            let req = post_json(t, &url, body.clone());
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

/// A `POST` of a JSON body to the Gemini API, with the key in `x-goog-api-key` (shared with the
/// Gemini transcriber).
pub(crate) fn post_json(transport: &Transport, url: &str, body: bytes::Bytes) -> reqwest::RequestBuilder {
    transport
        .client
        .post(url)
        .header("x-goog-api-key", transport.secret())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}

/// The `generateContent` request body.
pub(crate) fn request_body(request: &ModelRequest) -> Value {
    let mut body = Map::new();
    if !request.instructions.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": [{"text": request.instructions}]}));
    }
    body.insert("contents".into(), Value::Array(contents(&request.input)));
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), json!(t.name));
                d.insert("description".into(), json!(t.description));
                if let Some(p) = function_parameters(&t.parameters) {
                    d.insert("parameters".into(), p);
                }
                Value::Object(d)
            })
            .collect();
        body.insert("tools".into(), json!([{ "functionDeclarations": declarations }]));
    }
    if let Some(t) = request.temperature {
        body.insert("generationConfig".into(), json!({"temperature": f32_to_f64(t)}));
    }
    Value::Object(body)
}

/// Converts input items to Gemini `contents`, merging consecutive parts of the same role.
pub(crate) fn contents(input: &[InputItem]) -> Vec<Value> {
    let names: HashMap<&str, &str> = input
        .iter()
        .filter_map(|i| match i {
            InputItem::FunctionCall { call_id, name, .. } => Some((call_id.as_str(), name.as_str())),
            _ => None,
        })
        .collect();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for item in input {
        let (role, parts) = match item {
            InputItem::Message { role, content } => {
                let role = if *role == Role::Assistant { "model" } else { "user" };
                (role, content.iter().filter_map(content_part).collect())
            }
            InputItem::FunctionCall { name, arguments, provider_data, .. } => {
                let args: Value =
                    serde_json::from_str(arguments).ok().filter(Value::is_object).unwrap_or_else(|| json!({}));
                let mut call = Map::new();
                if let Some(id) = provider_data.as_ref().and_then(|d| d.get("id")) {
                    call.insert("id".into(), id.clone());
                }
                call.insert("name".into(), json!(name));
                call.insert("args".into(), args);
                let mut part = Map::new();
                part.insert("functionCall".into(), Value::Object(call));
                if let Some(sig) = provider_data.as_ref().and_then(|d| d.get("thoughtSignature")) {
                    part.insert("thoughtSignature".into(), sig.clone());
                }
                ("model", vec![Value::Object(part)])
            }
            InputItem::FunctionCallOutput { call_id, output } => {
                let response = match serde_json::from_str::<Value>(output) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(other) => json!({ "result": other }),
                    Err(_) => json!({ "result": output }),
                };
                let name = names.get(call_id.as_str()).copied().unwrap_or("unknown_tool");
                let mut fr = Map::new();
                if let Some(id) = gemini_call_id(input, call_id) {
                    fr.insert("id".into(), json!(id));
                }
                fr.insert("name".into(), json!(name));
                fr.insert("response".into(), response);
                ("user", vec![json!({ "functionResponse": fr })])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last_role, last_parts)) if *last_role == role => last_parts.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    out.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect()
}

/// The id Gemini gave a call (kept in `provider_data`), if any.
fn gemini_call_id<'a>(input: &'a [InputItem], call_id: &str) -> Option<&'a str> {
    input.iter().find_map(|i| match i {
        InputItem::FunctionCall { call_id: c, provider_data: Some(d), .. } if c == call_id => d.get("id")?.as_str(),
        _ => None,
    })
}

fn content_part(part: &ContentPart) -> Option<Value> {
    match part {
        ContentPart::InputText(text) | ContentPart::OutputText(text) => {
            if text.is_empty() {
                None
            } else {
                Some(json!({ "text": text }))
            }
        }
        ContentPart::InputImage { url } => Some(match parse_data_url(url) {
            Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
            None => json!({ "text": format!("[image: {url}]") }),
        }),
    }
}

/// Splits `data:<mime>;base64,<data>` (re-encoding non-base64 payloads).
fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mut meta_parts = meta.split(';');
    let mime = meta_parts.next().filter(|m| !m.is_empty()).unwrap_or("application/octet-stream").to_string();
    if meta_parts.any(|p| p.eq_ignore_ascii_case("base64")) {
        Some((mime, data.to_string()))
    } else {
        Some((mime, base64::engine::general_purpose::STANDARD.encode(data.as_bytes())))
    }
}

// ---- stream chunks (lenient) ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Chunk {
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<ErrorBody>,
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
#[serde(default)]
struct CallPart {
    id: Option<String>,
    name: String,
    args: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    code: Option<u16>,
    message: Option<String>,
    status: Option<String>,
}

/// Parses Gemini SSE chunks into model events.
#[derive(Default)]
pub(crate) struct Parser {
    /// The message being streamed (id, accumulated text).
    message: Option<(String, String)>,
    finish_reason: Option<String>,
    produced: bool,
    finished: bool,
}

impl Parser {
    fn close_message(&mut self, out: &mut EventQueue) {
        if let Some((id, text)) = self.message.take() {
            out.push_back(Ok(ModelEvent::ContentPartDone { message_id: id.clone(), content_index: 0, text }));
            out.push_back(Ok(ModelEvent::MessageDone { id }));
        }
    }

    fn fail(&mut self, err: ProviderError, out: &mut EventQueue) {
        self.finished = true;
        out.push_back(Err(err));
    }
}

impl EventParser for Parser {
    fn on_data(&mut self, data: &str, out: &mut EventQueue) {
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(provider = PROVIDER, error = %e, "skipping unreadable stream chunk");
                return;
            }
        };
        if let Some(err) = chunk.error {
            let message = err.message.filter(|m| !m.is_empty()).unwrap_or_else(|| "unknown error".into());
            let retryable = matches!(err.code, Some(429 | 500..=599))
                || matches!(err.status.as_deref(), Some("UNAVAILABLE" | "RESOURCE_EXHAUSTED" | "INTERNAL"));
            return self.fail(ProviderError::Failed { provider: PROVIDER, message, retryable }, out);
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            let message = format!("the request was blocked (reason: {reason})");
            return self.fail(ProviderError::Failed { provider: PROVIDER, message, retryable: false }, out);
        }
        let Some(candidate) = chunk.candidates.into_iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return;
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if part.thought == Some(true) {
                continue;
            }
            if let Some(call) = part.function_call {
                self.close_message(out);
                self.produced = true;
                let mut data = Map::new();
                if let Some(sig) = part.thought_signature {
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
                out.push_back(Ok(ModelEvent::FunctionCall(FunctionCall {
                    call_id,
                    name: call.name,
                    arguments,
                    provider_data,
                })));
                continue;
            }
            if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                self.produced = true;
                let (id, acc) = match &mut self.message {
                    Some(m) => m,
                    None => {
                        let id = chatkit::ids::generate(chatkit::ids::MESSAGE);
                        out.push_back(Ok(ModelEvent::MessageStarted { id: id.clone() }));
                        out.push_back(Ok(ModelEvent::ContentPartStarted { message_id: id.clone(), content_index: 0 }));
                        self.message.insert((id, String::new()))
                    }
                };
                acc.push_str(&text);
                out.push_back(Ok(ModelEvent::TextDelta { message_id: id.clone(), content_index: 0, delta: text }));
            }
        }
        if let Some(reason) = candidate.finish_reason {
            self.finish_reason = Some(reason);
        }
    }

    fn on_eof(&mut self, out: &mut EventQueue) {
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
                self.close_message(out);
                self.finished = true;
                if !self.produced {
                    tracing::debug!(provider = PROVIDER, "empty response");
                }
                out.push_back(Ok(ModelEvent::Completed));
            }
            Some(reason) => {
                let message = format!("the response stopped early (finish reason: {reason})");
                self.fail(ProviderError::Failed { provider: PROVIDER, message, retryable: false }, out);
            }
        }
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
#[path = "gemini_tests.rs"]
mod tests;
