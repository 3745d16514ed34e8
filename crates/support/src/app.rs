//! [`SupportApp`]: the OpenSkies implementation of [`ChatKitApp`] — model turns through the concierge agent,
//! widget actions, dictation, image attachments, per-thread state clean-up and model-free thread titles.
//!
//! Attachment previews stay plain URLs (`{base}/support/attachments/{id}/content`) instead of the sample's
//! multi-megabyte `data:` URLs, so later events and thread loads stay small; the model still gets the image
//! bytes as a data URL when the turn's input is built. Attachments are stored with host-free paths; the
//! signed absolute links are made for each request in [`ChatKitApp::present_attachment`].

use std::sync::Arc;

use agents::{Agent, Provider, Transcriber};
use async_trait::async_trait;
use chatkit::EventSink;
use chatkit::ids;
use chatkit::store::{RequestContext, Store};
use chatkit::types::{
    Action, Attachment, AttachmentKind, CreateAttachmentParams, ThreadItem, ThreadMetadata, UploadDescriptor,
};
use chatkit::{AppError, ChatKitApp};

use crate::actions::handle_action;
use crate::agent::{DEFAULT_TEMPERATURE, build_agent, input_from_history, load_history};
use crate::airline::AirlineStore;
use crate::signed_urls::UrlSigner;
use crate::titles::maybe_set_title;
use crate::turn_usage::UsageRecorder;

/// Largest accepted attachment (5 MiB; exactly 5 MiB is accepted).
pub(crate) const MAX_ATTACHMENT_BYTES: u64 = 5 * 1024 * 1024;
/// Image types accepted as attachments.
pub(crate) const ACCEPTED_IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/webp", "image/gif"];
/// Error text for too-large attachments (HTTP 413).
pub(crate) const TOO_LARGE_MESSAGE: &str = "Attachments are limited to 5 MB in this demo.";
/// Error text for non-image attachments (HTTP 400).
pub(crate) const NOT_AN_IMAGE_MESSAGE: &str = "Only image attachments are supported in this demo.";
/// Error text for unsupported dictation formats (HTTP 400).
pub(crate) const BAD_AUDIO_MESSAGE: &str = "Unexpected audio format";
/// Error text when dictation has no transcription provider (HTTP 503).
pub(crate) const NO_TRANSCRIBER_MESSAGE: &str = "Dictation is not available: no transcription model is configured. Set \
     OPENAI_API_KEY (or GEMINI_API_KEY) in .env and restart the server.";

/// The answer to every chat turn while no model key is configured.
pub(crate) const NO_PROVIDER_MESSAGE: &str =
    "No AI model is configured on this server: set OPENAI_API_KEY or GEMINI_API_KEY in .env and restart it.";

/// Tunables of the app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSettings {
    /// Model sampling temperature (`DEFAULT_TEMPERATURE` by default).
    pub temperature: f32,
    /// Whether untitled threads get a title from their first message.
    pub thread_titles: bool,
    /// Maximum model calls per turn ([`agents::DEFAULT_MAX_MODEL_CALLS`] by default).
    pub max_model_calls: usize,
    /// How long a tool call may take before the chat shows what it is doing.
    pub tool_progress_delay: std::time::Duration,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            temperature: DEFAULT_TEMPERATURE,
            thread_titles: true,
            max_model_calls: agents::DEFAULT_MAX_MODEL_CALLS,
            tool_progress_delay: agents::DEFAULT_PROGRESS_DELAY,
        }
    }
}

/// The OpenSkies customer-support application.
pub struct SupportApp {
    store: Arc<dyn Store>,
    airline: AirlineStore,
    provider: Option<Arc<dyn Provider>>,
    transcriber: Option<Arc<dyn Transcriber>>,
    settings: AppSettings,
    agent: Agent,
    urls: Option<Arc<UrlSigner>>,
}

impl std::fmt::Debug for SupportApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupportApp")
            .field("store", &self.store.describe())
            .field("provider", &self.provider.as_ref().map(|p| format!("{} {}", p.name(), p.model())))
            .field("transcriber", &self.transcriber.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

impl SupportApp {
    /// Builds the app. Without a provider every turn ends with a clear error event; without a transcriber
    /// dictation answers 503.
    pub fn new(
        store: Arc<dyn Store>,
        airline: AirlineStore,
        provider: Option<Arc<dyn Provider>>,
        transcriber: Option<Arc<dyn Transcriber>>,
        settings: AppSettings,
    ) -> Self {
        let mut agent = build_agent(&airline, settings.temperature, settings.max_model_calls);
        agent.progress_delay = settings.tool_progress_delay;
        SupportApp { store, airline, provider, transcriber, settings, agent, urls: None }
    }

    /// Signs the attachment links sent to clients with `urls` (without it they stay the stored paths).
    pub(crate) fn with_url_signer(mut self, urls: Arc<UrlSigner>) -> Self {
        self.urls = Some(urls);
        self
    }

    /// The airline state the app works on.
    pub fn airline(&self) -> &AirlineStore {
        &self.airline
    }

    /// The settings.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// Runs the agent; `whole_thread` receives the thread's items (oldest first) when the history loaded
    /// for the model is the whole thread, so the title step need not load them again.
    async fn run_agent(
        &self,
        thread: &ThreadMetadata,
        sink: &EventSink,
        whole_thread: &mut Option<Vec<ThreadItem>>,
    ) -> Result<(), AppError> {
        let Some(provider) = &self.provider else {
            tracing::warn!(thread_id = %thread.id, "no model provider configured; ending the turn with an error");
            return Err(AppError::Custom { message: NO_PROVIDER_MESSAGE.into(), allow_retry: false });
        };
        let store = sink.store().as_ref();
        // Both reads at once: with SQLite they share one trip to the store's thread.
        let (profile, history) =
            tokio::join!(self.airline.profile(&thread.id), load_history(store, sink.context(), &thread.id));
        let (profile, history) = (profile?, history?);
        let input = input_from_history(&history.items, store, sink.context(), &profile).await?;
        if history.complete {
            *whole_thread = Some(history.items);
        }
        let usage = UsageRecorder::new(sink.store().clone(), sink.context().clone(), thread.id.clone());
        let result = agents::run_recorded(&self.agent, provider.as_ref(), input, sink, usage.report()).await;
        usage.finish(result.is_ok()).await;
        result
    }
}

/// The dictation file name for a MIME type (parameters ignored), or `None` if the format is not accepted.
pub(crate) fn audio_file_name(mime_type: &str) -> Option<&'static str> {
    let media_type = mime_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media_type.as_str() {
        "audio/webm" => Some("audio.webm"),
        "audio/mp4" => Some("audio.m4a"),
        "audio/ogg" => Some("audio.ogg"),
        _ => None,
    }
}

/// Whether a declared MIME type is an accepted image type (parameters and case ignored).
pub(crate) fn is_accepted_image(mime_type: &str) -> bool {
    let media_type = mime_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    ACCEPTED_IMAGE_TYPES.contains(&media_type.as_str())
}

#[async_trait]
impl ChatKitApp for SupportApp {
    async fn respond(
        &self,
        thread: &ThreadMetadata,
        _input: Option<&ThreadItem>,
        sink: &EventSink,
    ) -> Result<(), AppError> {
        let mut whole_thread = None;
        let result = self.run_agent(thread, sink, &mut whole_thread).await;
        if matches!(result, Err(AppError::Disconnected)) || !self.settings.thread_titles {
            return result;
        }
        // Last, so `thread.updated` ends a successful stream (and precedes the error event of a failed one).
        // The items loaded before the run still decide the title: the run only appends assistant output.
        if let Err(e) = maybe_set_title(sink, whole_thread.as_deref()).await {
            tracing::warn!(thread_id = %thread.id, error = %e, "could not set the thread title");
        }
        result
    }

    async fn action(
        &self,
        thread: &ThreadMetadata,
        action: &Action,
        sender: Option<&ThreadItem>,
        sink: &EventSink,
    ) -> Result<(), AppError> {
        handle_action(&self.airline, thread, action, sender, sink).await
    }

    async fn transcribe(&self, audio: Vec<u8>, mime_type: &str, _ctx: &RequestContext) -> Result<String, AppError> {
        let Some(file_name) = audio_file_name(mime_type) else {
            return Err(AppError::BadRequest(BAD_AUDIO_MESSAGE.into()));
        };
        let Some(transcriber) = &self.transcriber else {
            return Err(AppError::Unavailable(NO_TRANSCRIBER_MESSAGE.into()));
        };
        let media_type = mime_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        transcriber.transcribe(audio, &media_type, file_name).await.map_err(|e| {
            tracing::warn!(error = %e, "transcription failed");
            AppError::Upstream { message: e.client_message(), allow_retry: e.is_retryable() }
        })
    }

    async fn create_attachment(
        &self,
        params: &CreateAttachmentParams,
        _ctx: &RequestContext,
    ) -> Result<Attachment, AppError> {
        if params.size > MAX_ATTACHMENT_BYTES {
            return Err(AppError::PayloadTooLarge(TOO_LARGE_MESSAGE.into()));
        }
        if !is_accepted_image(&params.mime_type) {
            return Err(AppError::BadRequest(NOT_AN_IMAGE_MESSAGE.into()));
        }
        let id = ids::generate(ids::ATTACHMENT);
        // Stored without host or signature: [`Self::present_attachment`] makes the links per request.
        Ok(Attachment {
            id: id.clone(),
            name: params.name.clone(),
            mime_type: params.mime_type.clone(),
            upload_descriptor: Some(UploadDescriptor {
                url: format!("/support/attachments/{id}/upload"),
                method: "POST".into(),
                headers: Default::default(),
            }),
            thread_id: None,
            kind: AttachmentKind::Image { preview_url: format!("/support/attachments/{id}/content") },
        })
    }

    fn present_attachment(&self, attachment: &mut Attachment, ctx: &RequestContext) {
        let Some(urls) = &self.urls else { return };
        if !crate::routes::attachments::valid_attachment_id(&attachment.id) {
            return;
        }
        if let Some(upload) = &mut attachment.upload_descriptor {
            upload.url = urls.upload_url(&ctx.base_url, &attachment.id, &ctx.owner_id);
        }
        if let AttachmentKind::Image { preview_url } = &mut attachment.kind {
            *preview_url = urls.preview_url(&ctx.base_url, &attachment.id, &ctx.owner_id);
        }
    }

    async fn thread_deleted(&self, thread_id: &str, _ctx: &RequestContext) -> Result<(), AppError> {
        self.airline.delete(thread_id).await.map_err(AppError::from)
    }
}

#[cfg(test)]
mod tests;
