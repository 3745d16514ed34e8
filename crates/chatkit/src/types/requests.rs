//! Requests: the envelope `{"type", "params", "metadata"}` and the params of each request type.
//!
//! A request either streams its answer as server-sent events ([`StreamingRequest`]: it runs a turn)
//! or answers one JSON body ([`NonStreamingRequest`]). [`ChatKitRequest`] is one or the other. The
//! table in the `requests!` invocation below is the one place a request's wire name, its variant and its
//! kind are written; the decoder, [`REQUEST_TYPES`] and `type_name` are generated from it.
//!
//! Decoding is two-stage so that errors can say exactly what was expected: the envelope first
//! (`type` must be one of [`REQUEST_TYPES`]), then the params of that type. `metadata` is accepted and
//! ignored (within a size limit); a missing or `null` `params` counts as `{}` so that requests without
//! required fields (such as `threads.list`) may omit it. Params are decoded strictly (see
//! [`super::strict_json`]) and then checked against the size limits of [`super::limits`]: that is where
//! every request is validated before anything reads it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::limits::{CheckLimits, check_metadata};
use super::strict_json::{self, UniqueKeys, quote, shorten_message};
use super::{InferenceOptions, Order, UserMessageContent};

/// The message a user sends (`input` of create / add_user_message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserMessageInput {
    /// Text and tag parts, in the order the user wrote them.
    #[serde(deserialize_with = "strict_json::string_tagged")]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub content: Vec<UserMessageContent>,
    /// Ids of attachments uploaded beforehand; `[]` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 20))]
    pub attachments: Vec<String>,
    /// The snippet the user replied to ("reply to" a part of an answer); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub quoted_text: Option<String>,
    /// Composer choices (tool, model); `{}` when absent.
    #[serde(default)]
    pub inference_options: InferenceOptions,
}

/// A widget or custom action: `{"type", "payload"}`; other keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Action {
    /// App-defined action name (the wire's `type`).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub kind: String,
    /// App-defined data; `null` when absent.
    #[serde(default)]
    pub payload: Value,
}

/// One answer of a structured input submission.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StructuredAnswerInput {
    /// The chosen options or the typed text; `[]` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub values: Vec<String>,
    /// Whether the user skipped this question.
    #[serde(default)]
    pub skipped: bool,
}

/// Whether the user answered the form or skipped all of it (`answered` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    /// The answers count (questions may still be skipped one by one).
    #[default]
    Answered,
    /// Every question counts as skipped, whatever the answers say.
    Skipped,
}

/// `threads.add_structured_input` `input`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StructuredInputSubmission {
    /// Answered or skipped as a whole.
    #[serde(default)]
    pub status: SubmissionStatus,
    /// Answers keyed by question id; ids the item does not ask are ignored.
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, StructuredAnswerInput>,
}

/// A thumbs up or down (`items.feedback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    /// `positive`.
    Positive,
    /// `negative`.
    Negative,
}

/// Params of `threads.create`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateThreadParams {
    /// The first user message of the new thread.
    pub input: UserMessageInput,
}
/// Params of `threads.add_user_message`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddUserMessageParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The message to add and answer.
    pub input: UserMessageInput,
}
/// Params of `threads.add_client_tool_output`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddClientToolOutputParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The client tool's result, any JSON; `null` when absent.
    #[serde(default)]
    pub result: Value,
}
/// Params of `threads.add_structured_input`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddStructuredInputParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The `structured_input` item being answered.
    pub item_id: String,
    /// The answers; an empty answered submission when absent.
    #[serde(default)]
    pub input: StructuredInputSubmission,
}
/// Params of `threads.retry_after_item`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryAfterItemParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The user message to answer again.
    pub item_id: String,
}
/// Params of `threads.custom_action` and `threads.sync_custom_action`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomActionParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The widget item that sent the action; absent for actions sent by the client itself.
    #[serde(default)]
    pub item_id: Option<String>,
    /// What to do.
    pub action: Action,
}
/// Params of `threads.get_by_id` and `threads.delete`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadIdParams {
    /// The thread the request is about.
    pub thread_id: String,
}
/// Params of `threads.list`; every field may be absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListThreadsParams {
    /// Page size; absent, `null` or 0 means 20.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 0, maximum = 4294967295_u64))]
    pub limit: Option<u32>,
    /// Sort order by creation time; newest first when absent.
    #[serde(default)]
    pub order: Order,
    /// Answer the threads after this thread id (the previous page's `after`).
    #[serde(default)]
    pub after: Option<String>,
}
/// Params of `threads.update`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateThreadParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The new title.
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub title: String,
}
/// Params of `items.list`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListItemsParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// Page size; absent, `null` or 0 means 20.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 0, maximum = 4294967295_u64))]
    pub limit: Option<u32>,
    /// Sort order by creation time; newest first when absent.
    #[serde(default)]
    pub order: Order,
    /// Answer the items after this item id (the previous page's `after`).
    #[serde(default)]
    pub after: Option<String>,
}
/// Params of `items.feedback`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackParams {
    /// The thread the request is about.
    pub thread_id: String,
    /// The items rated.
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub item_ids: Vec<String>,
    /// Thumbs up or down.
    pub kind: FeedbackKind,
}
/// Params of `attachments.create`: what the client knows of the file before uploading it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateAttachmentParams {
    /// The file's name as the user picked it.
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub name: String,
    /// The file's size in bytes; the support app stores at most 5 MiB and answers a larger size with 413.
    #[cfg_attr(feature = "openapi", schema(maximum = 5242880_u64))]
    pub size: u64,
    /// The file's MIME type, e.g. `image/png`; the support app accepts PNG, JPEG, WebP and GIF images and
    /// refuses any other type with a 400.
    #[cfg_attr(feature = "openapi", schema(pattern = "^image/(?:png|jpeg|webp|gif)(?:;.*)?$", max_length = 256))]
    pub mime_type: String,
}
/// Params of `attachments.delete`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteAttachmentParams {
    /// The attachment to delete.
    pub attachment_id: String,
}
/// Params of `input.transcribe`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscribeParams {
    /// Standard base64 of the recorded audio. The server also decodes unpadded, URL-safe and `data:` URL
    /// forms, but documents only canonical base64 of at least one byte: anything else may be refused with
    /// a 400.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{4})$"
        )
    )]
    pub audio_base64: String,
    /// The recording's MIME type with its parameters, e.g. `audio/webm;codecs=opus`; WebM, MP4 and Ogg
    /// audio are transcribed, any other type is refused with a 400.
    #[cfg_attr(feature = "openapi", schema(pattern = "^audio/(?:webm|mp4|ogg)(?:;.*)?$", max_length = 256))]
    pub mime_type: String,
}

/// Generates, from one table of `Variant(Params) = "wire.name"` rows, the two request enums, their
/// `type_name`, [`REQUEST_TYPES`] (streaming names first, in table order) and the dispatch of
/// [`ChatKitRequest::decode`]. Wire names are matched as `tt` rather than `literal` so that they reach
/// the `serde(rename)` attributes the `openapi` feature's schema derive reads as plain string tokens.
macro_rules! requests {
    (
        streaming { $( $(#[$s_doc:meta])* $s_variant:ident($s_params:ty) = $s_name:tt, )+ }
        non_streaming { $( $(#[$n_doc:meta])* $n_variant:ident($n_params:ty) = $n_name:tt, )+ }
    ) => {
        /// Every request `type`, streaming ones first. The order is the one error messages list them in.
        pub const REQUEST_TYPES: [&str; { [$($s_name,)+ $($n_name,)+].len() }] = [$($s_name,)+ $($n_name,)+];

        /// A request answered by a stream of server-sent events: it runs one turn on a thread.
        #[derive(Debug, Clone)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), serde(tag = "type", content = "params"))]
        pub enum StreamingRequest {
            $( $(#[$s_doc])* #[cfg_attr(feature = "openapi", serde(rename = $s_name))] $s_variant($s_params), )+
        }

        /// A request answered by one JSON body.
        #[derive(Debug, Clone)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), serde(tag = "type", content = "params"))]
        pub enum NonStreamingRequest {
            $( $(#[$n_doc])* #[cfg_attr(feature = "openapi", serde(rename = $n_name))] $n_variant($n_params), )+
        }

        impl StreamingRequest {
            /// The request's `type` as it is sent on the wire, e.g. `"threads.create"`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( StreamingRequest::$s_variant(_) => $s_name, )+
                }
            }
        }

        impl NonStreamingRequest {
            /// The request's `type` as it is sent on the wire, e.g. `"threads.list"`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( NonStreamingRequest::$n_variant(_) => $n_name, )+
                }
            }
        }

        /// Decodes `params` as the params of the known request type `kind`; `None` for an unknown type.
        fn decode_known(kind: &str, params: Value) -> Option<Result<ChatKitRequest, RequestDecodeError>> {
            Some(match kind {
                $( $s_name => decode_params(kind, params)
                    .map(|p| ChatKitRequest::Streaming(StreamingRequest::$s_variant(p))), )+
                $( $n_name => decode_params(kind, params)
                    .map(|p| ChatKitRequest::NonStreaming(NonStreamingRequest::$n_variant(p))), )+
                _ => return None,
            })
        }
    };
}

requests! {
    streaming {
        /// Starts a thread with its first user message.
        CreateThread(CreateThreadParams) = "threads.create",
        /// Adds a user message to a thread and answers it.
        AddUserMessage(AddUserMessageParams) = "threads.add_user_message",
        /// Completes the pending client tool call with the client's result and continues the turn.
        AddClientToolOutput(AddClientToolOutputParams) = "threads.add_client_tool_output",
        /// Answers a pending structured-input item and continues the turn.
        AddStructuredInput(AddStructuredInputParams) = "threads.add_structured_input",
        /// Deletes everything after a user message and answers it again.
        RetryAfterItem(RetryAfterItemParams) = "threads.retry_after_item",
        /// Runs a widget or client action whose answer streams.
        CustomAction(CustomActionParams) = "threads.custom_action",
    }
    non_streaming {
        /// One thread with the oldest page of its items.
        GetThread(ThreadIdParams) = "threads.get_by_id",
        /// A page of the owner's threads (without items).
        ListThreads(ListThreadsParams) = "threads.list",
        /// Renames a thread.
        UpdateThread(UpdateThreadParams) = "threads.update",
        /// Deletes a thread and its items.
        DeleteThread(ThreadIdParams) = "threads.delete",
        /// A page of a thread's visible items.
        ListItems(ListItemsParams) = "items.list",
        /// Records a thumbs up or down on items.
        Feedback(FeedbackParams) = "items.feedback",
        /// Phase one of an upload: registers an attachment and returns where to send the bytes.
        CreateAttachment(CreateAttachmentParams) = "attachments.create",
        /// Deletes an attachment.
        DeleteAttachment(DeleteAttachmentParams) = "attachments.delete",
        /// Turns dictated audio into text for the composer.
        Transcribe(TranscribeParams) = "input.transcribe",
        /// Runs an action whose answer is at most one replaced item, in one JSON body.
        SyncCustomAction(CustomActionParams) = "threads.sync_custom_action",
    }
}

/// A decoded ChatKit request: it either streams its answer or answers one JSON body.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), serde(untagged))]
pub enum ChatKitRequest {
    /// Answered by server-sent events.
    Streaming(StreamingRequest),
    /// Answered by one JSON body.
    NonStreaming(NonStreamingRequest),
}

/// Why a request body could not be decoded (always a 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestDecodeError {
    /// Not JSON, or not an object.
    #[error("request body must be a JSON object {{\"type\": \"<request type>\", \"params\": {{…}}}}: {0}")]
    InvalidJson(String),
    /// `type` missing or not a string.
    #[error("request field `type` is missing or not a string; expected one of: {}", REQUEST_TYPES.join(", "))]
    MissingType,
    /// `type` not one of [`REQUEST_TYPES`] (quoted as a short prefix).
    #[error("unknown request type `{0}`; expected one of: {types}", types = REQUEST_TYPES.join(", "))]
    UnknownType(String),
    /// Params did not match the type.
    #[error("invalid params for `{kind}`: {message}")]
    InvalidParams {
        /// The request type.
        kind: String,
        /// What was wrong, as serde reports it.
        message: String,
    },
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    params: Option<UniqueKeys>,
    /// Ignored, but bounded (measured as compact JSON, whatever the body's formatting).
    #[serde(default)]
    metadata: Option<Value>,
}

/// Decodes and validates the params of one request type: strictly (objects only where objects belong),
/// then within the size limits of [`super::limits`].
fn decode_params<T: serde::de::DeserializeOwned + CheckLimits>(
    kind: &str,
    params: Value,
) -> Result<T, RequestDecodeError> {
    let invalid = |message: String| RequestDecodeError::InvalidParams { kind: kind.to_string(), message };
    let decoded: T = strict_json::from_value(params).map_err(|e| invalid(shorten_message(&e.to_string())))?;
    decoded.check_limits().map_err(invalid)?;
    Ok(decoded)
}

impl ChatKitRequest {
    /// Decodes a request body.
    pub fn decode(body: &[u8]) -> Result<Self, RequestDecodeError> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(RequestDecodeError::InvalidJson("the body is not a JSON object".into()));
        }
        let env: Envelope = serde_json::from_slice(body)
            .map_err(|e| RequestDecodeError::InvalidJson(shorten_message(&e.to_string())))?;
        let kind = match env.kind {
            Some(Value::String(s)) => s,
            _ => return Err(RequestDecodeError::MissingType),
        };
        // An unknown type is reported as such whatever its params are.
        if !REQUEST_TYPES.contains(&kind.as_str()) {
            return Err(RequestDecodeError::UnknownType(quote(&kind)));
        }
        if let Some(metadata) = &env.metadata
            && let Err(message) = check_metadata(metadata)
        {
            return Err(RequestDecodeError::InvalidParams { kind, message });
        }
        let params = match env.params.map(|p| p.0) {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => {
                return Err(RequestDecodeError::InvalidParams {
                    kind,
                    message: "`params` must be a JSON object".into(),
                });
            }
        };
        decode_known(&kind, params).unwrap_or(Err(RequestDecodeError::UnknownType(quote(&kind))))
    }

    /// The request's `type` as it is sent on the wire (one of [`REQUEST_TYPES`]), e.g. `"threads.create"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChatKitRequest::Streaming(req) => req.type_name(),
            ChatKitRequest::NonStreaming(req) => req.type_name(),
        }
    }

    /// Whether the response is an SSE stream.
    pub fn is_streaming(&self) -> bool {
        matches!(self, ChatKitRequest::Streaming(_))
    }

    /// The thread the request names, if it names one (`threads.create`, `threads.list` and the
    /// attachment and dictation requests do not).
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            ChatKitRequest::Streaming(req) => req.thread_id(),
            ChatKitRequest::NonStreaming(req) => req.thread_id(),
        }
    }
}

impl StreamingRequest {
    /// The thread the request names; `None` only for `threads.create`, whose thread does not exist yet.
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            StreamingRequest::CreateThread(_) => None,
            StreamingRequest::AddUserMessage(p) => Some(&p.thread_id),
            StreamingRequest::AddClientToolOutput(p) => Some(&p.thread_id),
            StreamingRequest::AddStructuredInput(p) => Some(&p.thread_id),
            StreamingRequest::RetryAfterItem(p) => Some(&p.thread_id),
            StreamingRequest::CustomAction(p) => Some(&p.thread_id),
        }
    }
}

impl NonStreamingRequest {
    /// The thread the request names, if any.
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            NonStreamingRequest::GetThread(p) | NonStreamingRequest::DeleteThread(p) => Some(&p.thread_id),
            NonStreamingRequest::UpdateThread(p) => Some(&p.thread_id),
            NonStreamingRequest::ListItems(p) => Some(&p.thread_id),
            NonStreamingRequest::Feedback(p) => Some(&p.thread_id),
            NonStreamingRequest::SyncCustomAction(p) => Some(&p.thread_id),
            NonStreamingRequest::ListThreads(_)
            | NonStreamingRequest::CreateAttachment(_)
            | NonStreamingRequest::DeleteAttachment(_)
            | NonStreamingRequest::Transcribe(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_decodes_to_the_kind_and_name_it_was_sent_as() {
        for (index, kind) in REQUEST_TYPES.into_iter().enumerate() {
            // Without params some types decode and others miss a required field; an `InvalidParams`
            // that names the type still shows the type was recognised.
            let body = serde_json::json!({"type": kind}).to_string();
            match ChatKitRequest::decode(body.as_bytes()) {
                Ok(req) => {
                    assert_eq!(req.type_name(), kind);
                    assert_eq!(req.is_streaming(), index < 6, "{kind}");
                }
                Err(RequestDecodeError::InvalidParams { kind: named, .. }) => assert_eq!(named, kind),
                Err(other) => panic!("{kind}: {other}"),
            }
        }
    }

    #[test]
    fn unknown_types_list_every_type_in_order() {
        let err = ChatKitRequest::decode(br#"{"type": "threads.nope", "params": 3}"#).unwrap_err();
        assert_eq!(err, RequestDecodeError::UnknownType("threads.nope".into()));
        assert!(err.to_string().ends_with(
            "expected one of: threads.create, threads.add_user_message, threads.add_client_tool_output, \
             threads.add_structured_input, threads.retry_after_item, threads.custom_action, threads.get_by_id, \
             threads.list, threads.update, threads.delete, items.list, items.feedback, attachments.create, \
             attachments.delete, input.transcribe, threads.sync_custom_action"
        ));
    }
}
