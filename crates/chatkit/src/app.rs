//! The [`ChatKitApp`] trait: what a product plugs in behind the protocol (respond, actions, dictation,
//! attachment hooks). The protocol crate calls it; it knows nothing of models or airlines.

use async_trait::async_trait;

use crate::sink::EventSink;
use crate::store::{RequestContext, StoreError};
use crate::types::{
    Action, Attachment, CreateAttachmentParams, FeedbackKind, StreamOptions, ThreadItem, ThreadMetadata,
    ThreadStreamEvent,
};

/// An application failure. Before a stream starts it becomes an HTTP status with `{"detail": …}`;
/// inside a stream it becomes an `error` event ([`AppError::to_event`]).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// Something referenced does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The payload is too large (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A needed service is not configured, e.g. no model key (503).
    #[error("{0}")]
    Unavailable(String),
    /// An upstream (model provider) failed (502).
    #[error("{message}")]
    Upstream {
        /// Clear, secret-free text.
        message: String,
        /// Whether retrying may help.
        allow_retry: bool,
    },
    /// A message shown to the user as is (`code: "custom"`).
    #[error("{message}")]
    Custom {
        /// Shown to the user.
        message: String,
        /// Whether the client offers retry.
        allow_retry: bool,
    },
    /// The client went away; nothing more can be sent.
    #[error("client disconnected")]
    Disconnected,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (500 / `stream.error`).
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// The HTTP status for non-streaming requests.
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::NotFound(_) => 404,
            AppError::PayloadTooLarge(_) => 413,
            AppError::Unavailable(_) => 503,
            AppError::Upstream { .. } => 502,
            AppError::Store(e) if e.is_not_found() => 404,
            AppError::Store(StoreError::LockTimeout(_)) => 409,
            _ => 500,
        }
    }

    /// The `error` event for failures inside a stream.
    pub fn to_event(&self) -> ThreadStreamEvent {
        match self {
            AppError::Custom { message, allow_retry } | AppError::Upstream { message, allow_retry } => {
                ThreadStreamEvent::custom_error(message.clone(), *allow_retry)
            }
            AppError::Unavailable(m)
            | AppError::BadRequest(m)
            | AppError::NotFound(m)
            | AppError::PayloadTooLarge(m) => ThreadStreamEvent::custom_error(m.clone(), false),
            AppError::Store(StoreError::LockTimeout(_)) => ThreadStreamEvent::custom_error(self.to_string(), true),
            _ => ThreadStreamEvent::stream_error(true),
        }
    }
}

/// What an application implements. Only `respond` is required.
#[async_trait]
pub trait ChatKitApp: Send + Sync + 'static {
    /// Produce the response to a user message (`input`), or continue after a client tool output or a
    /// structured input (`input` = `None`). Events go through `sink`, which persists them before sending.
    async fn respond(
        &self,
        thread: &ThreadMetadata,
        input: Option<&ThreadItem>,
        sink: &EventSink,
    ) -> Result<(), AppError>;

    /// Handle a streaming `threads.custom_action`; `sender` is the widget item, if any.
    async fn action(
        &self,
        _thread: &ThreadMetadata,
        _action: &Action,
        _sender: Option<&ThreadItem>,
        _sink: &EventSink,
    ) -> Result<(), AppError> {
        Ok(())
    }

    /// Handle `threads.sync_custom_action`; the returned item is sent as `updated_item`.
    async fn sync_action(
        &self,
        _thread: &ThreadMetadata,
        _action: &Action,
        _sender: Option<&ThreadItem>,
        _ctx: &RequestContext,
    ) -> Result<Option<ThreadItem>, AppError> {
        Ok(None)
    }

    /// Transcribe dictated audio (`input.transcribe`); `mime_type` is the raw type incl. parameters.
    async fn transcribe(&self, _audio: Vec<u8>, _mime_type: &str, _ctx: &RequestContext) -> Result<String, AppError> {
        Err(AppError::Unavailable("dictation is not supported by this server".into()))
    }

    /// Build a new two-phase attachment (the server saves it afterwards).
    async fn create_attachment(
        &self,
        _params: &CreateAttachmentParams,
        _ctx: &RequestContext,
    ) -> Result<Attachment, AppError> {
        Err(AppError::Unavailable("attachments are not supported by this server".into()))
    }

    /// Called when a thread is deleted (e.g. to delete app state kept for it).
    async fn thread_deleted(&self, _thread_id: &str, _ctx: &RequestContext) -> Result<(), AppError> {
        Ok(())
    }

    /// Record feedback on items (`items.feedback`).
    async fn add_feedback(
        &self,
        _thread_id: &str,
        _item_ids: &[String],
        _kind: FeedbackKind,
        _ctx: &RequestContext,
    ) -> Result<(), AppError> {
        Ok(())
    }

    /// Options sent as the first event of every response stream.
    fn stream_options(&self, _thread: &ThreadMetadata) -> StreamOptions {
        StreamOptions { allow_cancel: true }
    }
}
