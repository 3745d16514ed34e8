//! Reading a Gemini `generateContent` request body: what the rules look at (last user text, last
//! tool output, last assistant text) in `contents`, whether it carries audio, and the
//! `thoughtSignature` check Gemini 3 makes on replayed function calls.

use serde_json::Value;

use crate::script::InputSummary;

/// What the rules look at in the body's `contents`.
pub(super) fn summary(body: &Value) -> InputSummary {
    let mut summary = InputSummary::default();
    let Some(contents) = body.get("contents").and_then(Value::as_array) else {
        return summary;
    };
    let parts_of = |c: &Value| c.get("parts").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(last) = contents.last() {
        let outputs: Vec<String> = parts_of(last)
            .iter()
            .filter_map(|p| p.get("functionResponse"))
            .map(|r| match r.get("response") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect();
        if !outputs.is_empty() {
            summary.tool_output = Some(outputs.join("\n"));
        }
    }
    for content in contents.iter().rev() {
        let role = content.get("role").and_then(Value::as_str).unwrap_or("user");
        let texts: Vec<String> =
            parts_of(content).iter().filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned)).collect();
        if texts.is_empty() {
            continue;
        }
        if role == "model" {
            if summary.assistant_text.is_none() {
                summary.assistant_text = Some(texts.join("\n"));
            }
        } else if summary.user_text.is_none() {
            // Gemini merges consecutive user messages (app context, then the user's words) into one
            // content; the user's own message is its last text part, as in OpenAI's last user message.
            summary.user_text = texts.last().cloned();
        }
        if summary.user_text.is_some() && summary.assistant_text.is_some() {
            break;
        }
    }
    summary
}

/// Whether a Gemini request carries inline audio (an `inlineData` part with an `audio/*` type).
pub(super) fn has_audio(body: &Value) -> bool {
    body.get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("parts").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("inlineData").or_else(|| p.get("inline_data")))
        .any(|d| {
            d.get("mimeType")
                .or_else(|| d.get("mime_type"))
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("audio/"))
        })
}

/// Gemini 3 check: in each model turn, the first `functionCall` part must carry the
/// `thoughtSignature` the model sent. Returns the API's error message.
pub(super) fn validate(body: &Value) -> Result<(), String> {
    let contents = body.get("contents").and_then(Value::as_array);
    for (i, content) in contents.into_iter().flatten().enumerate() {
        let parts = content.get("parts").and_then(Value::as_array);
        let first_call = parts.into_iter().flatten().find(|p| p.get("functionCall").is_some());
        if let Some(part) = first_call {
            let signed = part
                .get("thoughtSignature")
                .or_else(|| part.get("thought_signature"))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !signed {
                return Err(format!(
                    "Function call is missing a thought_signature in functionCall parts. \
                     This is required for tools to work correctly, and missing \
                     thought_signature may lead to degraded model performance. Additional \
                     data, function call `default_api:{}` , position {}.",
                    part.pointer("/functionCall/name").and_then(Value::as_str).unwrap_or(""),
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemini_contents() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "book Paris"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"result": "ok"}}}]},
        ]});
        let s = summary(&body);
        assert_eq!(s.tool_output.as_deref(), Some("{\"result\":\"ok\"}"));
        assert_eq!(s.user_text.as_deref(), Some("book Paris"));
        assert_eq!(s.assistant_text, None);
        assert_eq!(validate(&body), Ok(()));
        assert!(!has_audio(&body));

        let unsigned = json!({"contents": [
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        ]});
        assert!(validate(&unsigned).unwrap_err().contains("thought_signature"));
        let audio = json!({"contents": [{"parts": [{"text": "Transcribe"}, {"inlineData": {"mimeType": "audio/webm", "data": "AAAA"}}]}]});
        assert!(has_audio(&audio));
    }

    #[test]
    fn merged_user_content_matches_on_its_last_text_part() {
        let body = json!({"contents": [
            {"role": "user", "parts": [{"text": "<CUSTOMER_PROFILE>Checked Bags: 0</CUSTOMER_PROFILE>"}, {"text": "Book Paris"}]},
        ]});
        assert_eq!(summary(&body).user_text.as_deref(), Some("Book Paris"));
    }
}
