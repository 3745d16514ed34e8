//! Size limits of everything a client sends in request params, checked right after decoding so that no
//! oversized string is stored, logged whole or sent to the model. Without them one `threads.update`
//! with a 15 MB title was stored and then copied into every `threads.list` answer.
//!
//! The limits leave room for any real use (a pasted document, a long thread title) and stay far below
//! the body limit of the HTTP route; README lists them. A value over its limit is a 400 whose message
//! names the field and the limit but never quotes the value.

use serde_json::Value;

use super::requests::{
    Action, AddClientToolOutputParams, AddStructuredInputParams, AddUserMessageParams, CreateAttachmentParams,
    CreateThreadParams, CustomActionParams, DeleteAttachmentParams, FeedbackParams, ListItemsParams, ListThreadsParams,
    RetryAfterItemParams, StructuredInputSubmission, ThreadIdParams, TranscribeParams, UpdateThreadParams,
    UserMessageInput,
};
use super::{InferenceOptions, UserMessageContent};

/// Longest id (thread, item, attachment, cursor, tool, tag), in bytes. Ours are under 40.
pub const MAX_ID_BYTES: usize = 256;
/// Longest thread title, in characters.
pub const MAX_TITLE_CHARS: usize = 1_000;
/// Longest user message: all its text and tag parts together, in characters (about 25,000 tokens).
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// Most parts of one user message.
pub const MAX_MESSAGE_PARTS: usize = 100;
/// Longest "reply to" quote of a user message, in characters.
pub const MAX_QUOTED_TEXT_CHARS: usize = 10_000;
/// Most attachments of one user message.
pub const MAX_MESSAGE_ATTACHMENTS: usize = 20;
/// Longest short name: attachment file name, MIME type, action type, model name, tag group.
pub const MAX_NAME_CHARS: usize = 256;
/// Largest free-form JSON a client attaches (widget action payload, tag data), serialized, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest client tool result, serialized, in bytes (it is stored and shown to the model).
pub const MAX_TOOL_RESULT_BYTES: usize = 256 * 1024;
/// Most items rated by one `items.feedback`.
pub const MAX_FEEDBACK_ITEMS: usize = 100;
/// Most answers in one structured input submission, and most values in one answer.
pub const MAX_ANSWERS: usize = 100;
/// Longest value of a structured input answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 10_000;

/// The message of a field over its limit (never containing the value).
pub type LimitError = String;

/// Checks the sizes of a decoded request's params.
pub(crate) trait CheckLimits {
    /// `Err` names the first field over its limit.
    fn check_limits(&self) -> Result<(), LimitError>;
}

fn id(field: &str, value: &str) -> Result<(), LimitError> {
    if value.len() > MAX_ID_BYTES {
        return Err(format!("`{field}` is longer than {MAX_ID_BYTES} bytes; it is not an id this server issued"));
    }
    Ok(())
}

fn optional_id(field: &str, value: Option<&str>) -> Result<(), LimitError> {
    value.map_or(Ok(()), |v| id(field, v))
}

/// Characters of `value` when over `max` (bytes bound characters from above, so short strings are not
/// counted).
fn chars_over(value: &str, max: usize) -> Option<usize> {
    if value.len() <= max {
        return None;
    }
    let count = value.chars().count();
    (count > max).then_some(count)
}

fn text(field: &str, value: &str, max: usize) -> Result<(), LimitError> {
    match chars_over(value, max) {
        Some(count) => Err(format!("`{field}` is {count} characters long; the limit is {max}")),
        None => Ok(()),
    }
}

fn count(field: &str, len: usize, max: usize) -> Result<(), LimitError> {
    if len > max {
        return Err(format!("`{field}` has {len} entries; the limit is {max}"));
    }
    Ok(())
}

/// Counts the bytes a value serializes to, giving up as soon as they pass the limit.
struct CountingWriter {
    written: usize,
    limit: usize,
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len();
        if self.written > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json<T: serde::Serialize + ?Sized>(field: &str, value: &T, max: usize) -> Result<(), LimitError> {
    let mut writer = CountingWriter { written: 0, limit: max };
    if serde_json::to_writer(&mut writer, value).is_err() {
        return Err(format!("`{field}` is larger than {max} bytes of JSON"));
    }
    Ok(())
}

impl CheckLimits for UserMessageInput {
    fn check_limits(&self) -> Result<(), LimitError> {
        count("input.content", self.content.len(), MAX_MESSAGE_PARTS)?;
        let mut total = 0usize;
        for part in &self.content {
            match part {
                UserMessageContent::InputText { text } => total += text.len(),
                UserMessageContent::InputTag { id: tag_id, text, data, group, interactive: _ } => {
                    id("input.content[].id", tag_id)?;
                    self::text("input.content[].group", group.as_deref().unwrap_or_default(), MAX_NAME_CHARS)?;
                    json("input.content[].data", data, MAX_PAYLOAD_BYTES)?;
                    total += text.len();
                }
            }
        }
        // Bytes first (cheap); characters only when the bytes could be over.
        if total > MAX_MESSAGE_CHARS {
            let chars: usize = self
                .content
                .iter()
                .map(|part| match part {
                    UserMessageContent::InputText { text } | UserMessageContent::InputTag { text, .. } => {
                        text.chars().count()
                    }
                })
                .sum();
            if chars > MAX_MESSAGE_CHARS {
                return Err(format!("the message text is {chars} characters long; the limit is {MAX_MESSAGE_CHARS}"));
            }
        }
        count("input.attachments", self.attachments.len(), MAX_MESSAGE_ATTACHMENTS)?;
        for attachment in &self.attachments {
            id("input.attachments[]", attachment)?;
        }
        text("input.quoted_text", self.quoted_text.as_deref().unwrap_or_default(), MAX_QUOTED_TEXT_CHARS)?;
        self.inference_options.check_limits()
    }
}

impl CheckLimits for InferenceOptions {
    fn check_limits(&self) -> Result<(), LimitError> {
        optional_id("input.inference_options.tool_choice.id", self.tool_choice.as_ref().map(|t| t.id.as_str()))?;
        text("input.inference_options.model", self.model.as_deref().unwrap_or_default(), MAX_NAME_CHARS)
    }
}

impl CheckLimits for Action {
    fn check_limits(&self) -> Result<(), LimitError> {
        text("action.type", &self.kind, MAX_NAME_CHARS)?;
        json("action.payload", &self.payload, MAX_PAYLOAD_BYTES)
    }
}

impl CheckLimits for StructuredInputSubmission {
    fn check_limits(&self) -> Result<(), LimitError> {
        count("input.answers", self.answers.len(), MAX_ANSWERS)?;
        for (question, answer) in &self.answers {
            id("input.answers{} key", question)?;
            count("input.answers{}.values", answer.values.len(), MAX_ANSWERS)?;
            for value in &answer.values {
                text("input.answers{}.values[]", value, MAX_ANSWER_CHARS)?;
            }
        }
        Ok(())
    }
}

impl CheckLimits for CreateThreadParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        self.input.check_limits()
    }
}

impl CheckLimits for AddUserMessageParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        self.input.check_limits()
    }
}

impl CheckLimits for AddClientToolOutputParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        json("result", &self.result, MAX_TOOL_RESULT_BYTES)
    }
}

impl CheckLimits for AddStructuredInputParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        id("item_id", &self.item_id)?;
        self.input.check_limits()
    }
}

impl CheckLimits for RetryAfterItemParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        id("item_id", &self.item_id)
    }
}

impl CheckLimits for CustomActionParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        optional_id("item_id", self.item_id.as_deref())?;
        self.action.check_limits()
    }
}

impl CheckLimits for ThreadIdParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)
    }
}

impl CheckLimits for ListThreadsParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        optional_id("after", self.after.as_deref())
    }
}

impl CheckLimits for UpdateThreadParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        text("title", &self.title, MAX_TITLE_CHARS)
    }
}

impl CheckLimits for ListItemsParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        optional_id("after", self.after.as_deref())
    }
}

impl CheckLimits for FeedbackParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("thread_id", &self.thread_id)?;
        count("item_ids", self.item_ids.len(), MAX_FEEDBACK_ITEMS)?;
        self.item_ids.iter().try_for_each(|item| id("item_ids[]", item))
    }
}

impl CheckLimits for CreateAttachmentParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        text("name", &self.name, MAX_NAME_CHARS)?;
        text("mime_type", &self.mime_type, MAX_NAME_CHARS)
    }
}

impl CheckLimits for DeleteAttachmentParams {
    fn check_limits(&self) -> Result<(), LimitError> {
        id("attachment_id", &self.attachment_id)
    }
}

impl CheckLimits for TranscribeParams {
    // The audio itself is bounded by the body limit of the HTTP route.
    fn check_limits(&self) -> Result<(), LimitError> {
        text("mime_type", &self.mime_type, MAX_NAME_CHARS)
    }
}

/// The envelope's `metadata` (accepted and ignored): at most [`MAX_PAYLOAD_BYTES`] of compact JSON.
pub fn check_metadata(metadata: &Value) -> Result<(), LimitError> {
    json("metadata", metadata, MAX_PAYLOAD_BYTES)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(value: Value) -> UserMessageInput {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn at_the_limit_passes_and_one_more_fails() {
        let title = |n: usize| UpdateThreadParams { thread_id: "thr_1".into(), title: "é".repeat(n) };
        assert_eq!(title(MAX_TITLE_CHARS).check_limits(), Ok(()));
        assert_eq!(
            title(MAX_TITLE_CHARS + 1).check_limits().unwrap_err(),
            "`title` is 1001 characters long; the limit is 1000"
        );
        let ids = |n: usize| ThreadIdParams { thread_id: "t".repeat(n) };
        assert_eq!(ids(MAX_ID_BYTES).check_limits(), Ok(()));
        let e = ids(MAX_ID_BYTES + 1).check_limits().unwrap_err();
        assert!(e.starts_with("`thread_id` is longer than 256 bytes") && !e.contains("ttt"), "{e}");
    }

    #[test]
    fn message_text_counts_every_part() {
        let half = "a".repeat(MAX_MESSAGE_CHARS / 2);
        let parts = |extra: &str| {
            input(json!({"content": [
                {"type": "input_text", "text": half},
                {"type": "input_tag", "id": "t", "text": format!("{half}{extra}"), "data": {}},
            ]}))
        };
        assert_eq!(parts("").check_limits(), Ok(()));
        assert_eq!(
            parts("b").check_limits().unwrap_err(),
            "the message text is 100001 characters long; the limit is 100000"
        );
    }

    #[test]
    fn json_fields_are_measured_serialized() {
        let action = |n: usize| Action { kind: "x".into(), payload: json!({ "k": "v".repeat(n) }) };
        // `{"k":"…"}` is 8 bytes of framing.
        assert_eq!(action(MAX_PAYLOAD_BYTES - 8).check_limits(), Ok(()));
        assert_eq!(
            action(MAX_PAYLOAD_BYTES - 7).check_limits().unwrap_err(),
            "`action.payload` is larger than 65536 bytes of JSON"
        );
        let ids = |n: usize| FeedbackParams {
            thread_id: "t".into(),
            item_ids: vec!["i".into(); n],
            kind: super::super::FeedbackKind::Positive,
        };
        assert_eq!(ids(MAX_FEEDBACK_ITEMS).check_limits(), Ok(()));
        assert_eq!(
            ids(MAX_FEEDBACK_ITEMS + 1).check_limits().unwrap_err(),
            "`item_ids` has 101 entries; the limit is 100"
        );
    }
}
