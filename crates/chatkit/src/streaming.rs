//! Starting a streaming request: everything that can be refused is checked *before* the first byte
//! (missing thread/item/attachment → 404, a retry target that is not a user message, a structured input
//! that is not pending, … → 400), the pre-pipeline writes of `threads.create` / `threads.add_user_message`
//! are committed, and then the turn is spawned (`pipeline.rs`).
//!
//! Deviations from the SDK (which answers these cases with a truncated, possibly empty 200 stream, spec
//! §7.2): all validation failures are HTTP errors with `{"detail"}`. The one case the spec dictates as a
//! stream: a `threads.custom_action` whose `item_id` is not a widget answers exactly one event
//! `{"type":"error","code":"stream.error","allow_retry":false}` (no `stream_options`, spec §3.6).

use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::errors::ChatKitError;
use crate::http::{ChatKitResponse, SseStream};
use crate::ids;
use crate::pipeline::{Turn, TurnKind, answer_structured_input};
use crate::server::ChatKitServer;
use crate::sink::{EventSink, encode_sse};
use crate::store::RequestContext;
use crate::types::{
    Attachment, ItemKind, Page, StreamingRequest, ThreadItem, ThreadMetadata, ThreadStreamEvent, UserMessageInput,
    UserMessageItem,
};

impl ChatKitServer {
    /// Validates a streaming request, commits its pre-pipeline writes and spawns its turn.
    pub(crate) async fn start_stream(
        &self,
        req: StreamingRequest,
        ctx: RequestContext,
        request_type: &'static str,
        started: Instant,
    ) -> Result<ChatKitResponse, ChatKitError> {
        let store = &self.store;
        let mut lock = None;
        let (thread, preamble, kind) = match req {
            StreamingRequest::CreateThread(p) => {
                let attachments = self.load_attachments(&p.input, &ctx).await?;
                let thread = ThreadMetadata::new(ids::generate(ids::THREAD));
                // Free for a new thread; taken before the thread exists so that a message sent to another
                // replica the moment `thread.created` arrives is answered after this one.
                lock = Some(store.lock_thread(&thread.id, self.lock_wait).await?);
                let user_message = self.user_message(&thread, p.input, attachments, &ctx).await?;
                // The thread and its first message in one commit.
                store.create_thread_with_item(&ctx, &thread, &user_message).await?;
                let created = ThreadStreamEvent::ThreadCreated { thread: thread.to_thread(Page::default()) };
                let done = ThreadStreamEvent::ItemDone { item: user_message.clone() };
                (thread, vec![created, done], TurnKind::Respond { input: user_message })
            }
            StreamingRequest::AddUserMessage(p) => {
                let thread = store.load_thread(&ctx, &p.thread_id).await?;
                let attachments = self.load_attachments(&p.input, &ctx).await?;
                // The lock is taken before the message is stored so that a message sent while another
                // turn runs on this thread is ordered after that turn's answer (no interleaving).
                // A timeout is a 409 before the stream starts; nothing has been written.
                lock = Some(store.lock_thread(&thread.id, self.lock_wait).await?);
                let user_message = self.add_user_message(&thread, p.input, attachments, &ctx).await?;
                let done = ThreadStreamEvent::ItemDone { item: user_message.clone() };
                (thread, vec![done], TurnKind::Respond { input: user_message })
            }
            StreamingRequest::AddClientToolOutput(p) => {
                let thread = store.load_thread(&ctx, &p.thread_id).await?;
                (thread, Vec::new(), TurnKind::ClientToolOutput { result: p.result })
            }
            StreamingRequest::AddStructuredInput(p) => {
                let thread = store.load_thread(&ctx, &p.thread_id).await?;
                let item = store.load_item(&ctx, &p.thread_id, &p.item_id).await?;
                // Refuse before the stream; re-checked under the thread lock by the turn.
                answer_structured_input(item, &p.input)?;
                (thread, Vec::new(), TurnKind::StructuredInput { item_id: p.item_id, submission: p.input })
            }
            StreamingRequest::RetryAfterItem(p) => {
                // Deviation: an unknown item is a 404 (the SDK answers an empty stream).
                let thread = store.load_thread(&ctx, &p.thread_id).await?;
                let item = store.load_item(&ctx, &p.thread_id, &p.item_id).await?;
                if !matches!(item.kind, ItemKind::UserMessage(_)) {
                    return Err(ChatKitError::bad_request(format!(
                        "item {} is a {} item; only a user message can be retried",
                        p.item_id,
                        item.type_name()
                    )));
                }
                (thread, Vec::new(), TurnKind::Retry { item_id: p.item_id })
            }
            StreamingRequest::CustomAction(p) => {
                let thread = store.load_thread(&ctx, &p.thread_id).await?;
                let sender = match &p.item_id {
                    Some(item_id) => {
                        let item = store.load_item(&ctx, &p.thread_id, item_id).await?;
                        if !matches!(item.kind, ItemKind::Widget(_)) {
                            tracing::info!(item_id, "custom_action sender is not a widget");
                            let frame = encode_sse(&ThreadStreamEvent::stream_error(false));
                            return Ok(ChatKitResponse::Stream(SseStream::from_frames(vec![frame])));
                        }
                        Some(item)
                    }
                    None => None,
                };
                (thread, Vec::new(), TurnKind::Action { action: p.action, sender })
            }
        };

        let (tx, rx) = mpsc::channel(self.channel_capacity);
        let span = tracing::info_span!("chatkit_turn", request_type, thread_id = %thread.id);
        let sink = EventSink::new(self.store.clone(), ctx, thread, tx.clone());
        let turn = Turn {
            app: self.app.clone(),
            sink,
            lock_wait: self.lock_wait,
            lock,
            preamble,
            kind,
            request_type,
            started,
        };
        // The supervisor turns a panic of the turn itself (not only of the app) into a final event.
        self.tasks.spawn(
            async move {
                let handle = tokio::spawn(turn.run().in_current_span());
                if let Err(e) = handle.await
                    && e.is_panic()
                {
                    tracing::error!("chatkit turn panicked");
                    let _ = tx.send(encode_sse(&ThreadStreamEvent::stream_error(true))).await;
                }
            }
            .instrument(span),
        );
        Ok(ChatKitResponse::Stream(SseStream::new(rx)))
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

    /// Spec §3.1 steps 3–4: attachments get the thread id and are saved, then the user message is added.
    async fn add_user_message(
        &self,
        thread: &ThreadMetadata,
        input: UserMessageInput,
        attachments: Vec<Attachment>,
        ctx: &RequestContext,
    ) -> Result<ThreadItem, ChatKitError> {
        let item = self.user_message(thread, input, attachments, ctx).await?;
        self.store.add_thread_item(ctx, &thread.id, &item).await?;
        Ok(item)
    }

    /// Spec §3.1 step 3: saves the attachments with the thread id and builds the (unsaved) user message.
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
