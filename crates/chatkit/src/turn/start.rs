//! Starting a turn: everything a streaming request does before the first byte of its stream.
//!
//! Once the response has started, its status is 200 whatever happens, so every check that can refuse
//! the request runs here and refuses it as an HTTP status with `{"detail", "code"}` (the Python SDK
//! starts the stream first and ends it early, or empty, instead). The one refusal that is answered as
//! a stream, because the client expects one: a `threads.custom_action` sent by an item that is not a
//! widget answers exactly one `stream.error` event with `allow_retry: false`, without
//! `stream_options`.
//!
//! The writes the first events announce are committed here, before the stream starts: a new thread
//! with its first message, or the added user message. Their events go to the turn as its preamble.

use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::structured_input::answer_structured_input;
use super::{Turn, TurnKind};
use crate::errors::{AppError, ChatKitError};
use crate::http::{ChatKitResponse, SseStream};
use crate::ids;
use crate::server::{ActionSender, ChatKitServer};
use crate::sink::{EventSink, encode_sse};
use crate::store::{RequestContext, ThreadLock};
use crate::types::{
    AddUserMessageParams, Attachment, CreateThreadParams, CustomActionParams, ItemKind, Page, StreamingRequest,
    ThreadItem, ThreadMetadata, ThreadStreamEvent, UserMessageInput, UserMessageItem,
};

/// A streaming request that passed every check: what its turn needs.
struct Accepted {
    thread: ThreadMetadata,
    /// Taken before the stream when the request writes to the thread before it starts.
    lock: Option<ThreadLock>,
    preamble: Vec<ThreadStreamEvent>,
    kind: TurnKind,
}

impl Accepted {
    /// A request that wrote nothing before the stream: its turn takes the lock itself.
    fn without_writes(thread: ThreadMetadata, kind: TurnKind) -> Self {
        Accepted { thread, lock: None, preamble: Vec::new(), kind }
    }
}

/// What the checks decided.
enum Admission {
    /// Run a turn.
    Accepted(Box<Accepted>),
    /// Answer a stream of this one SSE frame, without a turn.
    RefusedInStream(Bytes),
}

/// Refuses a retry of anything but a user message; checked before the stream and again under the lock.
pub(super) fn check_retry_target(item: &ThreadItem) -> Result<(), AppError> {
    if matches!(item.kind, ItemKind::UserMessage(_)) {
        return Ok(());
    }
    Err(AppError::BadRequest(format!(
        "item {} is a {} item; only a user message can be retried",
        item.id,
        item.type_name()
    )))
}

impl ChatKitServer {
    /// Checks a streaming request, commits what it writes before the stream, and spawns its turn.
    pub(crate) async fn start_stream(
        &self,
        req: StreamingRequest,
        ctx: RequestContext,
        request_type: &'static str,
        started: Instant,
    ) -> Result<ChatKitResponse, ChatKitError> {
        let stream = match self.admit(req, &ctx).await? {
            Admission::Accepted(accepted) => self.spawn_turn(*accepted, ctx, request_type, started),
            Admission::RefusedInStream(frame) => SseStream::from_frames(vec![frame]),
        };
        Ok(ChatKitResponse::Stream(stream))
    }

    /// Runs the checks of one request and its writes before the stream.
    async fn admit(&self, req: StreamingRequest, ctx: &RequestContext) -> Result<Admission, ChatKitError> {
        let store = &self.store;
        let accepted = match req {
            StreamingRequest::CreateThread(p) => self.create_thread(p, ctx).await?,
            StreamingRequest::AddUserMessage(p) => self.add_user_message(p, ctx).await?,
            StreamingRequest::AddClientToolOutput(p) => {
                let thread = store.load_thread(ctx, &p.thread_id).await?;
                Accepted::without_writes(thread, TurnKind::ClientToolOutput { result: p.result })
            }
            StreamingRequest::AddStructuredInput(p) => {
                let thread = store.load_thread(ctx, &p.thread_id).await?;
                let item = store.load_item(ctx, &p.thread_id, &p.item_id).await?;
                // The turn applies the submission again under the lock, where a concurrent submission
                // of the same form is refused.
                answer_structured_input(item, &p.input)?;
                Accepted::without_writes(thread, TurnKind::StructuredInput { item_id: p.item_id, submission: p.input })
            }
            StreamingRequest::RetryAfterItem(p) => {
                // An unknown item is a 404 (the Python SDK answers an empty stream).
                let thread = store.load_thread(ctx, &p.thread_id).await?;
                check_retry_target(&store.load_item(ctx, &p.thread_id, &p.item_id).await?)?;
                Accepted::without_writes(thread, TurnKind::Retry { item_id: p.item_id })
            }
            StreamingRequest::CustomAction(p) => return self.custom_action(p, ctx).await,
        };
        Ok(Admission::Accepted(Box::new(accepted)))
    }

    /// `threads.create`: the thread and its first message are committed together, under the thread's
    /// lock. The lock is free for a new thread; it is taken before the thread exists so that a message
    /// sent (to any replica) the moment `thread.created` arrives is answered after this one.
    async fn create_thread(&self, p: CreateThreadParams, ctx: &RequestContext) -> Result<Accepted, ChatKitError> {
        let attachments = self.load_attachments(&p.input, ctx).await?;
        let thread = ThreadMetadata::new(ids::generate(ids::THREAD));
        let lock = self.store.lock_thread(&thread.id, self.lock_wait).await?;
        let user_message = self.user_message(&thread, p.input, attachments, ctx).await?;
        self.store.create_thread_with_item(ctx, &thread, &user_message).await?;
        let created = ThreadStreamEvent::ThreadCreated { thread: thread.to_thread(Page::default()) };
        let done = ThreadStreamEvent::ItemDone { item: self.presented_item(&user_message, ctx) };
        Ok(Accepted {
            thread,
            lock: Some(lock),
            preamble: vec![created, done],
            kind: TurnKind::Respond { input: user_message },
        })
    }

    /// `threads.add_user_message`: the lock is taken before the message is stored, so a message sent
    /// while another turn runs on the thread comes after that turn's answer instead of inside it. A
    /// lock wait that times out is a 409 and nothing has been written.
    async fn add_user_message(&self, p: AddUserMessageParams, ctx: &RequestContext) -> Result<Accepted, ChatKitError> {
        let thread = self.store.load_thread(ctx, &p.thread_id).await?;
        let attachments = self.load_attachments(&p.input, ctx).await?;
        let lock = self.store.lock_thread(&thread.id, self.lock_wait).await?;
        let user_message = self.user_message(&thread, p.input, attachments, ctx).await?;
        self.store.add_thread_item(ctx, &thread.id, &user_message).await?;
        let done = ThreadStreamEvent::ItemDone { item: self.presented_item(&user_message, ctx) };
        Ok(Accepted { thread, lock: Some(lock), preamble: vec![done], kind: TurnKind::Respond { input: user_message } })
    }

    /// `threads.custom_action`: the sender, when named, must be a widget.
    async fn custom_action(&self, p: CustomActionParams, ctx: &RequestContext) -> Result<Admission, ChatKitError> {
        let thread = self.store.load_thread(ctx, &p.thread_id).await?;
        let sender = match self.load_action_sender(&p, ctx).await? {
            ActionSender::Client => None,
            ActionSender::Widget(item) => Some(item),
            ActionSender::NotAWidget(item) => {
                tracing::info!(item_id = item.id, "custom_action sender is not a widget");
                return Ok(Admission::RefusedInStream(encode_sse(&ThreadStreamEvent::stream_error(false))));
            }
        };
        Ok(Admission::Accepted(Box::new(Accepted::without_writes(
            thread,
            TurnKind::Action { action: p.action, sender },
        ))))
    }

    /// Spawns the turn's one task and returns the stream its events go to.
    fn spawn_turn(
        &self,
        accepted: Accepted,
        ctx: RequestContext,
        request_type: &'static str,
        started: Instant,
    ) -> SseStream {
        let (tx, rx) = mpsc::channel(self.channel_capacity);
        let span = tracing::info_span!("chatkit_turn", request_type, thread_id = %accepted.thread.id);
        // The sink stops on the server stopping or on the thread being deleted, whichever comes first.
        let stop = self.shutdown.child_token();
        self.running.watch_deletions(|| self.store.deleted_threads());
        let running = self.running.register(&accepted.thread.id, stop.clone());
        let turn = Turn {
            app: self.app.clone(),
            sink: EventSink::new(self.store.clone(), ctx, accepted.thread, tx)
                .with_stall_timeout(self.stall_timeout)
                .with_shutdown(stop)
                .with_first_event_timer(request_type, started),
            lock_wait: self.lock_wait,
            lock: accepted.lock,
            preamble: accepted.preamble,
            kind: accepted.kind,
            request_type,
            started,
            running,
        };
        self.tasks.spawn(turn.run().instrument(span));
        SseStream::new(rx)
    }

    /// A copy of a stored item with its attachment links made for this request.
    fn presented_item(&self, item: &ThreadItem, ctx: &RequestContext) -> ThreadItem {
        let mut item = item.clone();
        self.present_item(&mut item, ctx);
        item
    }

    /// Resolves `input.attachments` (404 for an unknown id), before anything is written.
    async fn load_attachments(
        &self,
        input: &UserMessageInput,
        ctx: &RequestContext,
    ) -> Result<Vec<Attachment>, ChatKitError> {
        let mut out = Vec::with_capacity(input.attachments.len());
        for id in &input.attachments {
            out.push(self.store.load_attachment(ctx, id).await?);
        }
        Ok(out)
    }

    /// Saves the attachments, now belonging to the thread, and builds the (unsaved) user message.
    async fn user_message(
        &self,
        thread: &ThreadMetadata,
        input: UserMessageInput,
        mut attachments: Vec<Attachment>,
        ctx: &RequestContext,
    ) -> Result<ThreadItem, ChatKitError> {
        for attachment in &mut attachments {
            attachment.thread_id = Some(thread.id.clone());
            self.store.save_attachment(ctx, attachment).await?;
        }
        Ok(ThreadItem::new(
            ids::generate(ids::MESSAGE),
            thread.id.clone(),
            ItemKind::UserMessage(UserMessageItem {
                content: input.content,
                attachments,
                quoted_text: input.quoted_text,
                inference_options: input.inference_options,
            }),
        ))
    }
}
