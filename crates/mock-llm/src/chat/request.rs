//! Reading a Chat Completions request: what the rules look at (last user text, last tool output,
//! last assistant text), the options that shape the answer, and the API's check of tool messages.

use serde_json::Value;

use crate::script::InputSummary;

/// The model named when the request names none.
const DEFAULT_MODEL: &str = "mock-chat-model";

/// The parts of a request the mock uses.
#[derive(Debug)]
pub(super) struct ChatRequest<'a> {
    pub(super) model: &'a str,
    pub(super) stream: bool,
    /// `stream_options.include_usage`.
    pub(super) include_usage: bool,
    /// Rough prompt size in tokens (a quarter of the body's bytes).
    pub(super) prompt_tokens: u64,
    messages: &'a [Value],
}

impl<'a> ChatRequest<'a> {
    pub(super) fn new(json: &'a Value, body_len: usize) -> Self {
        ChatRequest {
            model: json.get("model").and_then(Value::as_str).unwrap_or(DEFAULT_MODEL),
            stream: json.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: json.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false),
            prompt_tokens: (body_len as u64 / 4).max(1),
            messages: json.get("messages").and_then(Value::as_array).map_or(&[], Vec::as_slice),
        }
    }

    /// Last user text, the tool outputs if the conversation ends with `tool` messages, last
    /// assistant text.
    pub(super) fn summary(&self) -> InputSummary {
        let role = |m: &Value| m.get("role").and_then(Value::as_str).unwrap_or("").to_owned();
        let mut summary = InputSummary::default();
        let trailing_tools: Vec<String> = self
            .messages
            .iter()
            .rev()
            .take_while(|m| role(m) == "tool")
            .map(|m| content_text(m.get("content")))
            .collect();
        if !trailing_tools.is_empty() {
            summary.tool_output = Some(trailing_tools.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        for message in self.messages.iter().rev() {
            match role(message).as_str() {
                "user" if summary.user_text.is_none() => summary.user_text = Some(content_text(message.get("content"))),
                "assistant" if summary.assistant_text.is_none() => {
                    let text = content_text(message.get("content"));
                    if !text.is_empty() {
                        summary.assistant_text = Some(text);
                    }
                }
                _ => {}
            }
        }
        summary
    }

    /// The API's check: every `tool` message answers a `tool_calls` id of an earlier assistant
    /// message. Returns OpenAI's error message.
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut call_ids: Vec<&str> = Vec::new();
        for message in self.messages {
            match message.get("role").and_then(Value::as_str) {
                Some("assistant") => {
                    let calls = message.get("tool_calls").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                    call_ids.extend(calls.iter().filter_map(|c| c.get("id").and_then(Value::as_str)));
                }
                Some("tool") => {
                    let id = message.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                    if !call_ids.contains(&id) {
                        return Err(format!(
                            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls' (tool_call_id {id})."
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A message's `content`: a string, or the `text` of its parts joined by newlines.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_and_validation() {
        let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": [
            {"role": "system", "content": "instructions"},
            {"role": "user", "content": "Confirm cancel?"},
            {"role": "assistant", "content": "Shall I cancel?"},
            {"role": "user", "content": [{"type": "text", "text": "yes"}, {"type": "image_url", "image_url": {"url": "data:"}}]},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "cancel_trip", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"result\":\"ok\"}"},
        ]});
        let r = ChatRequest::new(&body, 400);
        assert!(r.stream && r.include_usage);
        let s = r.summary();
        assert_eq!(s.user_text.as_deref(), Some("yes"));
        assert_eq!(s.assistant_text.as_deref(), Some("Shall I cancel?"));
        assert_eq!(s.tool_output.as_deref(), Some("{\"result\":\"ok\"}"));
        assert_eq!(r.validate(), Ok(()));
        let orphan = json!({"messages": [{"role": "tool", "tool_call_id": "c9", "content": "x"}]});
        assert!(ChatRequest::new(&orphan, 10).validate().unwrap_err().contains("c9"));
    }
}
