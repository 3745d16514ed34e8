//! Reading a Responses API request body. Only the fields the mock needs are decoded (model,
//! stream, temperature, and per input item its type, role, text, call id and output);
//! `instructions`, `tools` and every other field are skipped without allocating, which keeps the
//! mock cheap next to the server it is benchmarked with.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::response::{REASONED_CALL_PREFIX, decode_encrypted_content};
use crate::script::InputSummary;

/// The reasoning item a call made by the mock after reasoning (`call_rs_…_<n>`) depends on.
fn reasoned_call(call_id: &str) -> Option<&str> {
    let rest = call_id.strip_prefix(REASONED_CALL_PREFIX)?;
    let (rs, _n) = rest.rsplit_once('_')?;
    rs.starts_with("rs_").then_some(rs)
}

/// The parts of a Responses request the mock uses.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponsesRequest {
    /// Echoed in the response object.
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// Whether to answer with SSE events rather than one JSON object.
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    /// Echoed in the response object, as written in the request.
    #[serde(default)]
    pub(crate) temperature: Option<serde_json::Number>,
    /// The conversation the rules look at.
    #[serde(default)]
    input: Input,
}

/// The request's `input`: a plain string or a list of items.
#[derive(Debug, Default)]
enum Input {
    /// No `input` (or `null`).
    #[default]
    Empty,
    /// A string input (one user message).
    Text(String),
    /// The list form: messages, function calls and their outputs.
    Items(Vec<Item>),
}

/// One input item (only the fields the mock reads).
#[derive(Debug, Default, Deserialize)]
struct Item {
    /// `type` (absent on easy-form messages).
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// `role` of a message.
    #[serde(default)]
    role: Option<String>,
    /// Text of a message's `content`.
    #[serde(default)]
    content: Option<Text>,
    /// `call_id` of a function call or output.
    #[serde(default)]
    call_id: Option<String>,
    /// `output` of a function call output.
    #[serde(default)]
    output: Option<Text>,
    /// `id` of an output item handed back (reasoning, message, function call).
    #[serde(default)]
    id: Option<String>,
    /// `encrypted_content` of a reasoning item.
    #[serde(default)]
    encrypted_content: Option<String>,
}

impl Item {
    /// The item's type; items with a `role` and no `type` are messages.
    fn kind(&self) -> &str {
        match (&self.kind, &self.role) {
            (Some(kind), _) => kind,
            (None, Some(_)) => "message",
            (None, None) => "",
        }
    }
}

/// A string, or the `text` of a list of content parts joined by newlines.
#[derive(Debug, Default, Clone, PartialEq)]
struct Text(String);

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Input;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of input items")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Input, E> {
                Ok(Input::Text(v.to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Input, E> {
                Ok(Input::Empty)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                while let Some(item) = seq.next_element::<Item>()? {
                    items.push(item);
                }
                Ok(Input::Items(items))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Part {
            #[serde(default)]
            text: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text::default())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
                let mut out = String::new();
                while let Some(part) = seq.next_element::<Part>()? {
                    if let Some(text) = part.text {
                        if !out.is_empty() {
                            out.push('\n');
                        }
                        out.push_str(&text);
                    }
                }
                Ok(Text(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl ResponsesRequest {
    /// Decodes a request body; the error is the body's JSON syntax or shape.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// What the rules look at: last user text, last tool output, last assistant text.
    pub(crate) fn summary(&self) -> InputSummary {
        let mut summary = InputSummary::default();
        let items = match &self.input {
            Input::Empty => return summary,
            Input::Text(text) => {
                summary.user_text = Some(text.clone());
                return summary;
            }
            Input::Items(items) => items,
        };
        if let Some(last) = items.last()
            && last.kind() == "function_call_output"
        {
            summary.tool_output = Some(last.output.clone().unwrap_or_default().0);
        }
        for item in items.iter().rev() {
            if item.kind() != "message" {
                continue;
            }
            let text = || item.content.clone().unwrap_or_default().0;
            match item.role.as_deref() {
                Some("user") if summary.user_text.is_none() => summary.user_text = Some(text()),
                Some("assistant") if summary.assistant_text.is_none() => {
                    summary.assistant_text = Some(text());
                }
                _ => {}
            }
            if summary.user_text.is_some() && summary.assistant_text.is_some() {
                break;
            }
        }
        summary
    }

    /// The real API's checks: every `function_call_output` follows a `function_call` with its
    /// `call_id`; a call the mock made after reasoning follows that reasoning item with its
    /// `encrypted_content` (the mock stores nothing, so the item must come back whole); and a
    /// reasoning item is directly followed by the item that followed it in its response, with that
    /// item's `id` (the API's "required following item"). Returns the API's error message.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let Input::Items(items) = &self.input else {
            return Ok(());
        };
        let mut seen: Vec<&str> = Vec::new();
        // Reasoning items handed back with the mock's own encrypted content.
        let mut reasoning: Vec<&str> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let id = item.call_id.as_deref().unwrap_or("");
            match item.kind() {
                "reasoning" => {
                    let item_id = item.id.as_deref().unwrap_or("");
                    let decoded = item.encrypted_content.as_deref().and_then(decode_encrypted_content);
                    let Some((rs, following)) = decoded.filter(|(rs, _)| *rs == item_id) else { continue };
                    if let Some(following) = following
                        && items.get(index + 1).and_then(|next| next.id.as_deref()) != Some(following)
                    {
                        return Err(format!(
                            "Item '{rs}' of type 'reasoning' was provided without its required following item."
                        ));
                    }
                    reasoning.push(rs);
                }
                "function_call" => {
                    if let Some(rs) = reasoned_call(id)
                        && !reasoning.contains(&rs)
                    {
                        return Err(format!(
                            "Item of type 'function_call' with call_id {id} was provided without its required 'reasoning' item: '{rs}' (with its encrypted_content)."
                        ));
                    }
                    seen.push(id);
                }
                "function_call_output" if !seen.contains(&id) => {
                    return Err(format!("No tool call found for function call output with call_id {id}."));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> ResponsesRequest {
        ResponsesRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn user_assistant_and_tool_output() {
        let req = parse(json!({"model": "m", "tools": [{"type": "function", "name": "x"}],
            "instructions": "long", "temperature": 0.4, "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "cancel my trip"}, {"type": "input_image", "image_url": "data:"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Confirm cancel?", "annotations": []}]},
            {"role": "user", "content": "yes"},
        ]}));
        assert_eq!(req.model.as_deref(), Some("m"));
        assert_eq!(req.temperature.as_ref().map(ToString::to_string).as_deref(), Some("0.4"));
        let s = req.summary();
        assert_eq!(s.user_text.as_deref(), Some("yes"));
        assert_eq!(s.assistant_text.as_deref(), Some("Confirm cancel?"));
        assert_eq!(s.tool_output, None);

        let req = parse(json!({"input": [
            {"role": "user", "content": [{"type": "input_text", "text": "seat 14C"}]},
            {"type": "function_call", "call_id": "call_1", "name": "change_seat", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "{\"result\":\"ok\"}"},
        ]}));
        let s = req.summary();
        assert_eq!(s.tool_output.as_deref(), Some("{\"result\":\"ok\"}"));
        assert_eq!(s.user_text.as_deref(), Some("seat 14C"));
        assert_eq!(req.validate(), Ok(()));

        let bad = parse(
            json!({"input": [{"type": "function_call_output", "call_id": "call_9", "output": [{"type": "input_text", "text": "x"}]}]}),
        );
        assert_eq!(bad.summary().tool_output.as_deref(), Some("x"));
        assert_eq!(bad.validate(), Err("No tool call found for function call output with call_id call_9.".into()));
        assert_eq!(parse(json!({"input": "hi"})).summary().user_text.as_deref(), Some("hi"));

        // A call made after reasoning needs that reasoning item, with its encrypted content, first.
        let call = json!({"type": "function_call", "call_id": "call_rs_ab_0", "name": "t", "arguments": "{}"});
        let output = json!({"type": "function_call_output", "call_id": "call_rs_ab_0", "output": "ok"});
        let without = parse(json!({"input": [call, output]}));
        assert!(without.validate().unwrap_err().contains("required 'reasoning' item: 'rs_ab'"));
        let wrong = json!({"type": "reasoning", "id": "rs_ab", "summary": [], "encrypted_content": "x"});
        assert!(parse(json!({"input": [wrong, call, output]})).validate().is_err());
        let right = json!({"type": "reasoning", "id": "rs_ab", "summary": [], "encrypted_content": "mock-enc:rs_ab"});
        assert_eq!(parse(json!({"input": [right, call, output]})).validate(), Ok(()));

        // A reasoning item must be followed by the item that followed it, by id.
        let rs =
            json!({"type": "reasoning", "id": "rs_ab", "summary": [], "encrypted_content": "mock-enc:rs_ab>msg_1"});
        let with_id = json!({"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]});
        let without_id = json!({"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]});
        assert_eq!(parse(json!({"input": [rs, with_id, call, output]})).validate(), Ok(()));
        assert_eq!(
            parse(json!({"input": [rs, without_id, call, output]})).validate(),
            Err("Item 'rs_ab' of type 'reasoning' was provided without its required following item.".into())
        );
        assert!(parse(json!({"input": [rs]})).validate().is_err());
        assert_eq!(parse(json!({})).summary(), InputSummary::default());
        assert!(ResponsesRequest::parse(b"{\"input\": 3}").is_err());
    }
}
