//! [`ChatKitServer`]: decodes a request body and answers it, as one JSON body or as a stream
//! ([`ChatKitResponse`]). Non-streaming requests are answered here; a streaming request starts a turn
//! (`crate::turn`).
//!
//! Where the answers differ from the Python SDK's, on purpose:
//! * failures are HTTP statuses with `{"detail", "code"}` instead of bare 500s (`crate::errors`);
//! * a thread that does not exist is a 404 for every request naming one, including `threads.delete`
//!   (the SDK's sample store answers `{}`) and `items.list` (the SDK answers an empty page);
//! * `attachments.delete` of an unknown id is a 404;
//! * `threads.sync_custom_action` saves the item it returns, so a reload shows what the client shows,
//!   and a sender that is not a widget is a 400 (the SDK leaves saving to the integrator and answers
//!   500);
//! * when the app's `thread_deleted` hook fails, the failure is logged and `threads.delete` still
//!   answers `{}`: the thread is gone either way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::app::ChatKitApp;
use crate::errors::ChatKitError;
use crate::http::ChatKitResponse;
use crate::store::locks::without_thread_lock;
use crate::store::{RequestContext, Store};
use crate::types::{
    ChatKitRequest, CustomActionParams, ItemKind, ListItemsParams, ListThreadsParams, NonStreamingRequest, Page,
    ThreadItem, TranscribeParams,
};

/// Default bound on waiting for a thread that is busy with another response.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);
/// Default number of SSE frames buffered between a turn and a slow client.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 64;
/// Page size used when a list request's `limit` is absent or 0, and of the items `threads.get_by_id`
/// returns.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 20;

/// Protocol dispatch over a [`Store`] and a [`ChatKitApp`]. Cheap to clone (shared handles inside).
#[derive(Clone)]
pub struct ChatKitServer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) app: Arc<dyn ChatKitApp>,
    pub(crate) lock_wait: Duration,
    pub(crate) channel_capacity: usize,
    pub(crate) stall_timeout: Duration,
    pub(crate) tasks: TaskTracker,
    /// Cancelled by [`ChatKitServer::stop_turns`]; every turn's sink watches it.
    pub(crate) shutdown: CancellationToken,
    /// The turns running in this process, stopped when their thread is deleted.
    pub(crate) running: crate::turn::running::RunningTurns,
}

impl std::fmt::Debug for ChatKitServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatKitServer")
            .field("store", &self.store.describe())
            .field("lock_wait", &self.lock_wait)
            .field("channel_capacity", &self.channel_capacity)
            .field("stall_timeout", &self.stall_timeout)
            .field("running_turns", &self.tasks.len())
            .finish()
    }
}

/// Serializes a response body (our own types cannot fail to serialize).
pub(crate) fn json<T: Serialize>(value: &T) -> Result<ChatKitResponse, ChatKitError> {
    serde_json::to_vec(value).map(|v| ChatKitResponse::Json(Bytes::from(v))).map_err(|e| ChatKitError::internal(&e))
}

fn empty_object() -> ChatKitResponse {
    ChatKitResponse::Json(Bytes::from_static(b"{}"))
}

fn page_size(limit: Option<u32>) -> usize {
    match limit {
        None | Some(0) => DEFAULT_PAGE_SIZE,
        Some(n) => n as usize,
    }
}

/// Hidden items are removed *after* paging, as the Python SDK does: a page may hold fewer items than
/// asked, and `has_more`/`after` stay as the store computed them.
fn without_hidden(mut page: Page<ThreadItem>) -> Page<ThreadItem> {
    page.data.retain(|item| !item.is_hidden());
    page
}

impl ChatKitServer {
    /// A server with the default lock wait (30 s) and channel capacity (64 frames).
    pub fn new(store: Arc<dyn Store>, app: Arc<dyn ChatKitApp>) -> Self {
        ChatKitServer {
            store,
            app,
            lock_wait: DEFAULT_LOCK_WAIT,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            stall_timeout: crate::sink::DEFAULT_STALL_TIMEOUT,
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            running: Default::default(),
        }
    }

    /// How long a streaming request waits for a thread busy with another response before it answers
    /// an `error` event (`custom`, `allow_retry: true`).
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// How many SSE frames may be buffered for a slow client before the turn waits (minimum 1).
    pub fn with_channel_capacity(mut self, capacity: usize) -> Self {
        self.channel_capacity = capacity.max(1);
        self
    }

    /// How long a turn may wait on a client that stopped reading its stream (every buffered frame
    /// unread) before it is cancelled as on a disconnect: the partial answer is kept and the thread's lock
    /// released.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// The store every request reads and writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The application the server answers for.
    pub fn app(&self) -> &Arc<dyn ChatKitApp> {
        &self.app
    }

    /// How many streaming turns are still running (including ones whose client has left).
    pub fn running_turns(&self) -> usize {
        self.tasks.len()
    }

    /// Waits until every running turn has finished (e.g. during graceful shutdown; wrap it in a timeout).
    /// New turns may still start afterwards.
    pub async fn wait_for_turns(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    /// Starts following the threads the store announces as deleted through other replicas (a store
    /// shared between replicas; others announce nothing), so that a turn running here on such a thread
    /// stops at once. Call it at start-up: listening takes a moment to begin, and a deletion announced
    /// before it began is missed (that turn then stops at its next write). The first turn starts it
    /// otherwise; calling it again does nothing.
    pub fn watch_store(&self) {
        self.running.watch_deletions(|| self.store.deleted_threads());
    }

    /// Stops every running turn as a client leaving would (the app's work is dropped, the partial
    /// answer saved with the hidden cancel marker, the thread's lock released), then tells each client
    /// still reading that the server is stopping (a retryable error event) and ends its stream. Used
    /// when the shutdown grace time is over; turns started afterwards end the same way at once. Wait for
    /// the turns to finish with [`ChatKitServer::wait_for_turns`].
    pub fn stop_turns(&self) {
        self.shutdown.cancel();
    }

    /// Handles one request body. Streaming requests are validated before the stream starts, so every
    /// `Err` here is an HTTP status with `{"detail": …}`; failures after that are `error` events.
    pub async fn process(&self, body: &[u8], ctx: RequestContext) -> Result<ChatKitResponse, ChatKitError> {
        let started = Instant::now();
        let req = match ChatKitRequest::decode(body) {
            Ok(req) => req,
            Err(e) => {
                tracing::info!(error = %e, "chatkit request rejected: undecodable body");
                let e = ChatKitError::from(e);
                crate::metrics::request("invalid", e.code);
                return Err(e);
            }
        };
        let kind = req.type_name();
        // Absent (not empty) for a request that names no thread, so log lines only name real threads.
        let thread_id = req.thread_id().map(str::to_string);
        // The request's span: a started turn's span is its child (traces: HTTP request → ChatKit request
        // → turn). Type and ids only, never content.
        let span = tracing::info_span!("chatkit.request", otel.name = kind, chatkit.request.type = kind);
        let result = async {
            match req {
                ChatKitRequest::Streaming(req) => self.start_stream(req, ctx, kind, started).await,
                // These requests take no thread lock: their writes are not a turn's (see `without_thread_lock`).
                ChatKitRequest::NonStreaming(req) => without_thread_lock(self.handle_json(req, &ctx)).await,
            }
        }
        .instrument(span)
        .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match &result {
            // A stream is counted when its turn ends, with how it ended.
            Ok(res) if res.is_stream() => {}
            Ok(_) => crate::metrics::request(kind, "ok"),
            Err(e) => crate::metrics::request(kind, e.code),
        }
        match &result {
            // A started stream logs its one info line when it ends ("chatkit stream ended", with the
            // outcome and the whole duration); this one would repeat it.
            Ok(res) if res.is_stream() => {
                tracing::debug!(
                    request_type = kind,
                    thread_id = thread_id.as_deref(),
                    stream = true,
                    duration_ms,
                    "chatkit request"
                )
            }
            Ok(_) => tracing::info!(
                request_type = kind,
                thread_id = thread_id.as_deref(),
                stream = false,
                duration_ms,
                "chatkit request"
            ),
            Err(e) => tracing::info!(
                request_type = kind,
                thread_id = thread_id.as_deref(),
                status = e.status.as_u16(),
                detail = e.detail,
                duration_ms,
                "chatkit request failed"
            ),
        }
        result
    }

    /// Convenience for axum handlers: [`Self::process`] turned into a response.
    pub async fn handle(&self, body: &[u8], ctx: RequestContext) -> axum::response::Response {
        use axum::response::IntoResponse;
        match self.process(body, ctx).await {
            Ok(res) => res.into_response(),
            Err(e) => e.into_response(),
        }
    }

    async fn handle_json(
        &self,
        req: NonStreamingRequest,
        ctx: &RequestContext,
    ) -> Result<ChatKitResponse, ChatKitError> {
        let store = &self.store;
        match req {
            NonStreamingRequest::GetThread(p) => {
                // The oldest page, oldest first, as the client renders a thread from the top.
                let thread = store.load_thread(ctx, &p.thread_id).await?;
                let items = store
                    .load_thread_items(ctx, &p.thread_id, None, DEFAULT_PAGE_SIZE, crate::types::Order::Asc)
                    .await?;
                json(&thread.to_thread(self.presented(without_hidden(items), ctx)))
            }
            NonStreamingRequest::ListThreads(p) => self.list_threads(p, ctx).await,
            NonStreamingRequest::UpdateThread(p) => {
                let mut thread = store.load_thread(ctx, &p.thread_id).await?;
                thread.title = Some(p.title);
                store.save_thread(ctx, &thread).await?;
                json(&thread.to_thread(Page::default()))
            }
            NonStreamingRequest::DeleteThread(p) => {
                store.delete_thread(ctx, &p.thread_id).await?;
                // A response still running on the thread stops now: its model call is dropped and it
                // writes nothing more. (On another replica, its next write finds no thread and ends it.)
                let stopped = self.running.thread_deleted(&p.thread_id);
                if stopped > 0 {
                    tracing::info!(thread_id = p.thread_id, stopped, "stopped the responses of a deleted thread");
                }
                // The thread is gone either way; an app hook failure is logged, not reported.
                if let Err(e) = self.app.thread_deleted(&p.thread_id, ctx).await {
                    tracing::error!(thread_id = p.thread_id, error = %e, "thread_deleted hook failed");
                }
                Ok(empty_object())
            }
            NonStreamingRequest::ListItems(p) => self.list_items(p, ctx).await,
            NonStreamingRequest::Feedback(p) => {
                // The thread must be the caller's: feedback on another owner's thread is a 404 like a missing one.
                store.load_thread(ctx, &p.thread_id).await?;
                self.app.add_feedback(&p.thread_id, &p.item_ids, p.kind, ctx).await?;
                Ok(empty_object())
            }
            NonStreamingRequest::CreateAttachment(p) => {
                let mut attachment = self.app.create_attachment(&p, ctx).await?;
                store.create_attachment(ctx, &attachment, p.size).await?;
                self.app.present_attachment(&mut attachment, ctx);
                json(&attachment)
            }
            NonStreamingRequest::DeleteAttachment(p) => {
                store.load_attachment(ctx, &p.attachment_id).await?;
                store.delete_attachment(ctx, &p.attachment_id).await?;
                Ok(empty_object())
            }
            NonStreamingRequest::Transcribe(p) => self.transcribe(p, ctx).await,
            NonStreamingRequest::SyncCustomAction(p) => self.sync_custom_action(p, ctx).await,
        }
    }

    async fn list_threads(&self, p: ListThreadsParams, ctx: &RequestContext) -> Result<ChatKitResponse, ChatKitError> {
        let page = self.store.load_threads(ctx, page_size(p.limit), p.after.as_deref(), p.order).await?;
        let threads = Page {
            data: page.data.iter().map(|t| t.to_thread(Page::default())).collect(),
            has_more: page.has_more,
            after: page.after,
        };
        json(&threads)
    }

    /// `items.list`; a thread that does not exist is a 404, not an empty page.
    async fn list_items(&self, p: ListItemsParams, ctx: &RequestContext) -> Result<ChatKitResponse, ChatKitError> {
        self.store.load_thread(ctx, &p.thread_id).await?;
        let page =
            self.store.load_thread_items(ctx, &p.thread_id, p.after.as_deref(), page_size(p.limit), p.order).await?;
        json(&self.presented(without_hidden(page), ctx))
    }

    /// Items as the client gets them: attachment links made for this request ([`ChatKitApp::present_attachment`]).
    fn presented(&self, mut page: Page<ThreadItem>, ctx: &RequestContext) -> Page<ThreadItem> {
        for item in &mut page.data {
            self.present_item(item, ctx);
        }
        page
    }

    /// Makes the attachment links of one item for this request.
    pub(crate) fn present_item(&self, item: &mut ThreadItem, ctx: &RequestContext) {
        if let ItemKind::UserMessage(message) = &mut item.kind {
            for attachment in &mut message.attachments {
                self.app.present_attachment(attachment, ctx);
            }
        }
    }

    /// `input.transcribe`: base64 decoded leniently (whitespace, URL-safe alphabet, missing padding and a
    /// `data:…;base64,` prefix are accepted), 400 when it still is not base64 or is empty.
    async fn transcribe(&self, p: TranscribeParams, ctx: &RequestContext) -> Result<ChatKitResponse, ChatKitError> {
        let audio = decode_base64_lenient(&p.audio_base64)
            .map_err(|e| ChatKitError::bad_request(format!("`audio_base64` is not valid base64: {e}")))?;
        if audio.is_empty() {
            return Err(ChatKitError::bad_request("`audio_base64` is empty: no audio to transcribe"));
        }
        let text = self.app.transcribe(audio, &p.mime_type, ctx).await?;
        json(&serde_json::json!({ "text": text }))
    }

    /// `threads.sync_custom_action`: `{"updated_item": item}` or `{}`. The returned item is saved before
    /// it is answered.
    async fn sync_custom_action(
        &self,
        p: CustomActionParams,
        ctx: &RequestContext,
    ) -> Result<ChatKitResponse, ChatKitError> {
        let thread = self.store.load_thread(ctx, &p.thread_id).await?;
        let sender = match self.load_action_sender(&p, ctx).await? {
            ActionSender::Client => None,
            ActionSender::Widget(item) => Some(item),
            ActionSender::NotAWidget(item) => {
                return Err(ChatKitError::bad_request(format!(
                    "item {} is a {} item; actions can only be sent by widget items",
                    item.id,
                    item.type_name()
                )));
            }
        };
        match self.app.sync_action(&thread, &p.action, sender.as_ref(), ctx).await? {
            Some(item) => {
                self.store.save_item(ctx, &p.thread_id, &item).await?;
                json(&serde_json::json!({ "updated_item": item }))
            }
            None => Ok(empty_object()),
        }
    }

    /// Who sent an action, from its `item_id`: a 404 when that item does not exist. What an action
    /// from an item that is not a widget gets depends on the request, so the caller decides.
    pub(crate) async fn load_action_sender(
        &self,
        p: &CustomActionParams,
        ctx: &RequestContext,
    ) -> Result<ActionSender, ChatKitError> {
        let Some(item_id) = &p.item_id else {
            return Ok(ActionSender::Client);
        };
        let item = self.store.load_item(ctx, &p.thread_id, item_id).await?;
        Ok(if matches!(item.kind, ItemKind::Widget(_)) {
            ActionSender::Widget(item)
        } else {
            ActionSender::NotAWidget(item)
        })
    }
}

/// Who sent a `threads.custom_action` or `threads.sync_custom_action`.
pub(crate) enum ActionSender {
    /// No `item_id`: the page sent it, not an item.
    Client,
    /// The widget item that sent it.
    Widget(ThreadItem),
    /// An item that is not a widget; only widgets send actions, so the action is refused.
    NotAWidget(ThreadItem),
}

/// Decodes base64 the way Python's `b64decode` tolerates it: whitespace ignored, padding optional;
/// additionally accepts the URL-safe alphabet and a `data:…;base64,` prefix.
pub(crate) fn decode_base64_lenient(input: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let data = match input.find("base64,") {
        Some(i) if input.starts_with("data:") => &input[i + "base64,".len()..],
        _ => input,
    };
    let cleaned: String = data
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(cleaned.trim_end_matches('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_decoded_leniently() {
        assert_eq!(decode_base64_lenient("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64_lenient("aGVs\nbG8").unwrap(), b"hello");
        assert_eq!(decode_base64_lenient("data:audio/webm;base64,aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64_lenient("-_8=").unwrap(), decode_base64_lenient("+/8=").unwrap());
        assert!(decode_base64_lenient("not base64!").is_err());
    }

    #[test]
    fn limits_default_to_20() {
        assert_eq!(page_size(None), 20);
        assert_eq!(page_size(Some(0)), 20);
        assert_eq!(page_size(Some(3)), 3);
    }
}
