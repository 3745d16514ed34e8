//! The `generateContent` request: `systemInstruction`, `contents` (roles `user`/`model`; consecutive
//! items of one role are merged into one content; function calls are `functionCall` parts of model
//! turns with their `thoughtSignature` replayed exactly, outputs are `functionResponse` parts of user
//! turns; images are `inlineData`), `tools[].functionDeclarations` (schemas converted by
//! [`super::schema`]) and `generationConfig` (`temperature`, and `thinkingConfig` when reasoning settings
//! are made).

use std::collections::HashMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::schema::function_parameters;
use crate::input::{ContentPart, InputItem, Role};
use crate::provider::{ModelRequest, f32_to_f64};
use crate::reasoning::Reasoning;

/// The `generateContent` request body.
pub(crate) fn request_body(request: &ModelRequest, reasoning: &Reasoning) -> Value {
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
    let mut generation = Map::new();
    if let Some(t) = request.temperature {
        generation.insert("temperature".into(), json!(f32_to_f64(t)));
    }
    if let Some(thinking) = reasoning.gemini_thinking_config() {
        generation.insert("thinkingConfig".into(), thinking);
    }
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
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
                ("model", vec![function_call_part(name, arguments, provider_data.as_ref())])
            }
            // Only OpenAI produces these; Gemini's reasoning rides on the calls' thought signatures.
            InputItem::Verbatim { .. } => continue,
            InputItem::FunctionCallOutput { call_id, output } => {
                let name = names.get(call_id.as_str()).copied().unwrap_or("unknown_tool");
                ("user", vec![function_response_part(gemini_call_id(input, call_id), name, output)])
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

/// A call the model made earlier, with the id and `thoughtSignature` Gemini gave it replayed as they
/// came (Gemini rejects a replayed call whose signature is missing or altered).
fn function_call_part(name: &str, arguments: &str, provider_data: Option<&Value>) -> Value {
    let args: Value = serde_json::from_str(arguments).ok().filter(Value::is_object).unwrap_or_else(|| json!({}));
    let mut call = Map::new();
    if let Some(id) = provider_data.and_then(|d| d.get("id")) {
        call.insert("id".into(), id.clone());
    }
    call.insert("name".into(), json!(name));
    call.insert("args".into(), args);
    let mut part = Map::new();
    part.insert("functionCall".into(), Value::Object(call));
    if let Some(sig) = provider_data.and_then(|d| d.get("thoughtSignature")) {
        part.insert("thoughtSignature".into(), sig.clone());
    }
    Value::Object(part)
}

/// A tool's output; Gemini takes an object, so other JSON values and plain text go under `result`.
fn function_response_part(id: Option<&str>, name: &str, output: &str) -> Value {
    let response = match serde_json::from_str::<Value>(output) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({ "result": other }),
        Err(_) => json!({ "result": output }),
    };
    let mut fr = Map::new();
    if let Some(id) = id {
        fr.insert("id".into(), json!(id));
    }
    fr.insert("name".into(), json!(name));
    fr.insert("response".into(), response);
    json!({ "functionResponse": fr })
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
