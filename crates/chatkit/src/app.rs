//! The [`ChatKitApp`] trait: what a product plugs in behind the protocol (answers, actions, dictation,
//! attachments, feedback). The server calls it; this crate knows nothing of models or of any product.

use async_trait::async_trait;

use crate::errors::AppError;
use crate::sink::EventSink;
use crate::store::RequestContext;
use crate::types::{
    Action, Attachment, CreateAttachmentParams, FeedbackKind, StreamOptions, ThreadItem, ThreadMetadata,
};

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

    /// Sets the links of an attachment about to be sent to the client (its upload and preview URLs).
    /// Links depend on who asks and from where (signatures, external host), so they are made each time an
    /// attachment or an item carrying it is sent, never stored. The default leaves the stored values.
    fn present_attachment(&self, _attachment: &mut Attachment, _ctx: &RequestContext) {}

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
