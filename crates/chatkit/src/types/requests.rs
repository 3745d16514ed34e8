//! Requests (spec §2): the envelope `{"type","params","metadata"}` and the params of all 16 types.
//!
//! Decoding is two-stage so that errors can say exactly what was expected: the envelope first
//! (`type` must be one of [`REQUEST_TYPES`]), then the params of that type.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{InferenceOptions, Order, UserMessageContent};

/// Every request `type`, streaming ones first.
pub const REQUEST_TYPES: [&str; 16] = [
    "threads.create",
    "threads.add_user_message",
    "threads.add_client_tool_output",
    "threads.add_structured_input",
    "threads.retry_after_item",
    "threads.custom_action",
    "threads.get_by_id",
    "threads.list",
    "threads.update",
    "threads.delete",
    "items.list",
    "items.feedback",
    "attachments.create",
    "attachments.delete",
    "input.transcribe",
    "threads.sync_custom_action",
];

/// The message a user sends (`input` of create / add_user_message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMessageInput {
    /// Text and tag parts.
    pub content: Vec<UserMessageContent>,
    /// Attachment ids (lenient: defaults to `[]`).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// "Reply to" snippet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_text: Option<String>,
    /// Composer options (lenient: defaults to `{}`).
    #[serde(default)]
    pub inference_options: InferenceOptions,
}

/// A widget or custom action: `{"type", "payload"}`; other keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// App-defined action name.
    #[serde(rename = "type")]
    pub kind: String,
    /// App data.
    #[serde(default)]
    pub payload: Value,
}

/// One answer of a structured input submission.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StructuredAnswerInput {
    /// Values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Skipped.
    #[serde(default)]
    pub skipped: bool,
}

/// `answered` or `skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    /// Answered.
    #[default]
    Answered,
    /// Skipped.
    Skipped,
}

/// `threads.add_structured_input` `input`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StructuredInputSubmission {
    /// Overall status.
    #[serde(default)]
    pub status: SubmissionStatus,
    /// Answers by question id.
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, StructuredAnswerInput>,
}

/// Feedback kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    /// Thumbs up.
    Positive,
    /// Thumbs down.
    Negative,
}

/// `threads.create`
#[derive(Debug, Clone, Deserialize)]
pub struct CreateThreadParams {
    /// First message.
    pub input: UserMessageInput,
}
/// `threads.add_user_message`
#[derive(Debug, Clone, Deserialize)]
pub struct AddUserMessageParams {
    /// Thread.
    pub thread_id: String,
    /// Message.
    pub input: UserMessageInput,
}
/// `threads.add_client_tool_output`
#[derive(Debug, Clone, Deserialize)]
pub struct AddClientToolOutputParams {
    /// Thread.
    pub thread_id: String,
    /// The client tool's result (may be null).
    #[serde(default)]
    pub result: Value,
}
/// `threads.add_structured_input`
#[derive(Debug, Clone, Deserialize)]
pub struct AddStructuredInputParams {
    /// Thread.
    pub thread_id: String,
    /// The structured_input item.
    pub item_id: String,
    /// Submission.
    #[serde(default)]
    pub input: StructuredInputSubmission,
}
/// `threads.retry_after_item`
#[derive(Debug, Clone, Deserialize)]
pub struct RetryAfterItemParams {
    /// Thread.
    pub thread_id: String,
    /// The user message to answer again.
    pub item_id: String,
}
/// `threads.custom_action` / `threads.sync_custom_action`
#[derive(Debug, Clone, Deserialize)]
pub struct CustomActionParams {
    /// Thread.
    pub thread_id: String,
    /// Widget item that fired the action.
    #[serde(default)]
    pub item_id: Option<String>,
    /// The action.
    pub action: Action,
}
/// `threads.get_by_id` / `threads.delete`
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadIdParams {
    /// Thread.
    pub thread_id: String,
}
/// `threads.list`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListThreadsParams {
    /// Page size (null or 0 → 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Sort order (default desc).
    #[serde(default)]
    pub order: Order,
    /// Cursor (thread id).
    #[serde(default)]
    pub after: Option<String>,
}
/// `threads.update`
#[derive(Debug, Clone, Deserialize)]
pub struct UpdateThreadParams {
    /// Thread.
    pub thread_id: String,
    /// New title.
    pub title: String,
}
/// `items.list`
#[derive(Debug, Clone, Deserialize)]
pub struct ListItemsParams {
    /// Thread.
    pub thread_id: String,
    /// Page size (null or 0 → 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Sort order (default desc).
    #[serde(default)]
    pub order: Order,
    /// Cursor (item id).
    #[serde(default)]
    pub after: Option<String>,
}
/// `items.feedback`
#[derive(Debug, Clone, Deserialize)]
pub struct FeedbackParams {
    /// Thread.
    pub thread_id: String,
    /// Items rated.
    pub item_ids: Vec<String>,
    /// Rating.
    pub kind: FeedbackKind,
}
/// `attachments.create`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAttachmentParams {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime_type: String,
}
/// `attachments.delete`
#[derive(Debug, Clone, Deserialize)]
pub struct DeleteAttachmentParams {
    /// Attachment.
    pub attachment_id: String,
}
/// `input.transcribe`
#[derive(Debug, Clone, Deserialize)]
pub struct TranscribeParams {
    /// Standard base64 of the recorded audio.
    pub audio_base64: String,
    /// Raw MIME type incl. parameters.
    pub mime_type: String,
}

/// A decoded ChatKit request.
#[derive(Debug, Clone)]
pub enum ChatKitRequest {
    /// `threads.create`
    CreateThread(CreateThreadParams),
    /// `threads.add_user_message`
    AddUserMessage(AddUserMessageParams),
    /// `threads.add_client_tool_output`
    AddClientToolOutput(AddClientToolOutputParams),
    /// `threads.add_structured_input`
    AddStructuredInput(AddStructuredInputParams),
    /// `threads.retry_after_item`
    RetryAfterItem(RetryAfterItemParams),
    /// `threads.custom_action`
    CustomAction(CustomActionParams),
    /// `threads.sync_custom_action`
    SyncCustomAction(CustomActionParams),
    /// `threads.get_by_id`
    GetThread(ThreadIdParams),
    /// `threads.list`
    ListThreads(ListThreadsParams),
    /// `threads.update`
    UpdateThread(UpdateThreadParams),
    /// `threads.delete`
    DeleteThread(ThreadIdParams),
    /// `items.list`
    ListItems(ListItemsParams),
    /// `items.feedback`
    Feedback(FeedbackParams),
    /// `attachments.create`
    CreateAttachment(CreateAttachmentParams),
    /// `attachments.delete`
    DeleteAttachment(DeleteAttachmentParams),
    /// `input.transcribe`
    Transcribe(TranscribeParams),
}

/// Why a request body could not be decoded (always a 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestDecodeError {
    /// Not JSON, or not an object.
    #[error("request body must be a JSON object {{\"type\": \"<request type>\", \"params\": {{…}}}}: {0}")]
    InvalidJson(String),
    /// `type` missing or not a string.
    #[error("missing request field `type`; expected one of: {}", REQUEST_TYPES.join(", "))]
    MissingType,
    /// `type` not one of [`REQUEST_TYPES`].
    #[error("unknown request type `{0}`; expected one of: {types}", types = REQUEST_TYPES.join(", "))]
    UnknownType(String),
    /// Params did not match the type.
    #[error("invalid params for `{kind}`: {message}")]
    InvalidParams {
        /// The request type.
        kind: String,
        /// What was wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
}

fn params<T: serde::de::DeserializeOwned>(kind: &str, params: Value) -> Result<T, RequestDecodeError> {
    serde_json::from_value(params)
        .map_err(|e| RequestDecodeError::InvalidParams { kind: kind.to_string(), message: e.to_string() })
}

impl ChatKitRequest {
    /// Decodes a request body. Missing `params` is treated as `{}` (lenient, spec §13.1).
    pub fn decode(body: &[u8]) -> Result<Self, RequestDecodeError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(RequestDecodeError::InvalidJson("the body is not a JSON object".into()));
        }
        let env: Envelope = serde_json::from_slice(body).map_err(|e| RequestDecodeError::InvalidJson(e.to_string()))?;
        let kind = match env.kind {
            Some(Value::String(s)) => s,
            _ => return Err(RequestDecodeError::MissingType),
        };
        // An unknown type is reported as such whatever its params are.
        if !REQUEST_TYPES.contains(&kind.as_str()) {
            return Err(RequestDecodeError::UnknownType(kind));
        }
        let p = match env.params {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => {
                return Err(RequestDecodeError::InvalidParams {
                    kind,
                    message: "`params` must be a JSON object".into(),
                });
            }
        };
        let k = kind.as_str();
        Ok(match k {
            "threads.create" => ChatKitRequest::CreateThread(params(k, p)?),
            "threads.add_user_message" => ChatKitRequest::AddUserMessage(params(k, p)?),
            "threads.add_client_tool_output" => ChatKitRequest::AddClientToolOutput(params(k, p)?),
            "threads.add_structured_input" => ChatKitRequest::AddStructuredInput(params(k, p)?),
            "threads.retry_after_item" => ChatKitRequest::RetryAfterItem(params(k, p)?),
            "threads.custom_action" => ChatKitRequest::CustomAction(params(k, p)?),
            "threads.sync_custom_action" => ChatKitRequest::SyncCustomAction(params(k, p)?),
            "threads.get_by_id" => ChatKitRequest::GetThread(params(k, p)?),
            "threads.list" => ChatKitRequest::ListThreads(params(k, p)?),
            "threads.update" => ChatKitRequest::UpdateThread(params(k, p)?),
            "threads.delete" => ChatKitRequest::DeleteThread(params(k, p)?),
            "items.list" => ChatKitRequest::ListItems(params(k, p)?),
            "items.feedback" => ChatKitRequest::Feedback(params(k, p)?),
            "attachments.create" => ChatKitRequest::CreateAttachment(params(k, p)?),
            "attachments.delete" => ChatKitRequest::DeleteAttachment(params(k, p)?),
            "input.transcribe" => ChatKitRequest::Transcribe(params(k, p)?),
            _ => return Err(RequestDecodeError::UnknownType(kind)),
        })
    }

    /// The request's `type` as it is sent on the wire (one of [`REQUEST_TYPES`]), e.g. `"threads.create"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChatKitRequest::CreateThread(_) => "threads.create",
            ChatKitRequest::AddUserMessage(_) => "threads.add_user_message",
            ChatKitRequest::AddClientToolOutput(_) => "threads.add_client_tool_output",
            ChatKitRequest::AddStructuredInput(_) => "threads.add_structured_input",
            ChatKitRequest::RetryAfterItem(_) => "threads.retry_after_item",
            ChatKitRequest::CustomAction(_) => "threads.custom_action",
            ChatKitRequest::SyncCustomAction(_) => "threads.sync_custom_action",
            ChatKitRequest::GetThread(_) => "threads.get_by_id",
            ChatKitRequest::ListThreads(_) => "threads.list",
            ChatKitRequest::UpdateThread(_) => "threads.update",
            ChatKitRequest::DeleteThread(_) => "threads.delete",
            ChatKitRequest::ListItems(_) => "items.list",
            ChatKitRequest::Feedback(_) => "items.feedback",
            ChatKitRequest::CreateAttachment(_) => "attachments.create",
            ChatKitRequest::DeleteAttachment(_) => "attachments.delete",
            ChatKitRequest::Transcribe(_) => "input.transcribe",
        }
    }

    /// Whether the response is an SSE stream.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            ChatKitRequest::CreateThread(_)
                | ChatKitRequest::AddUserMessage(_)
                | ChatKitRequest::AddClientToolOutput(_)
                | ChatKitRequest::AddStructuredInput(_)
                | ChatKitRequest::RetryAfterItem(_)
                | ChatKitRequest::CustomAction(_)
        )
    }
}
