//! Running a turn: everything after the stream has started, in the turn's one task.
//!
//! In order, the turn
//! 1. forwards its preamble, the events whose writes were committed before the stream started;
//! 2. holds the thread's lock: the one taken before the stream, or one it waits for now (bounded; a
//!    timeout is a retryable `custom` error event, a client leaving while it waits simply ends the
//!    turn). Only one turn runs on a thread at a time, and the lock is held until the turn's last
//!    write, cleanup included, so the next turn sees all of it;
//! 3. applies its request under the lock (completes the client tool call, deletes what follows a
//!    retried message, answers the structured input), since another turn may have changed the thread
//!    since the request was checked;
//! 4. sends `stream_options`, then runs the app, raced against the client leaving.
//!
//! How a turn ends: the app returns, and the stream ends; the app fails, and one `error` event ends
//! the stream; anything panics, and one retryable `stream.error` event ends it; the client leaves,
//! and the app's future is dropped at once (which stops its model call), then every non-empty
//! pending assistant message is saved and the hidden [`CANCEL_MARKER`] item is appended. An app that
//! fails because it could not send, or that fails after the client left, counts as a client leaving.
//! The server stopping a turn at shutdown ends it the same way, and then ends the stream with a
//! retryable error event for the client still reading.
//! None of this depends on anyone reading the stream: the task finishes on its own. A turn whose thread
//! is deleted (`threads.delete`) is stopped like a client leaving, but saves nothing: the thread is gone.

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;

use super::start::check_retry_target;
use super::structured_input::answer_structured_input;
use super::{CANCEL_MARKER, Turn, TurnKind};
use crate::errors::AppError;
use crate::ids;
use crate::sink::SinkError;
use crate::store::{StoreError, ThreadLock};
use crate::types::{ClientToolCallStatus, ItemKind, Order, SdkHiddenContextItem, ThreadItem, ThreadStreamEvent};

/// How many of the newest items `threads.add_client_tool_output` searches for the pending call. The
/// Python SDK only looks at the newest item, which fails as soon as anything (a hidden item) follows
/// the call.
const TOOL_OUTPUT_LOOKBACK: usize = 20;

/// How long the notice of a server stop may wait for room in a stream whose client reads slowly.
const SHUTDOWN_NOTICE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How a turn ended (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    Panicked,
    Cancelled,
    Busy,
}

impl Outcome {
    /// The `outcome` label of the request metrics.
    fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Panicked => "panicked",
            Outcome::Cancelled => "cancelled",
            Outcome::Busy => "busy",
        }
    }
}

/// How the app's call ended.
enum AppEnd {
    Done,
    Failed(AppError),
    Cancelled,
}

impl Turn {
    /// Runs the turn to its end and logs how it ended. This is the one place a panic is caught, whether
    /// the app or the turn panicked: the stream then ends with a retryable `stream.error` event.
    pub(super) async fn run(mut self) {
        let thread_id = self.sink.thread_id();
        let outcome = match AssertUnwindSafe(self.run_steps()).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => {
                let panic = panic_message(panic);
                tracing::error!(request_type = self.request_type, thread_id, panic = %panic, "chatkit turn panicked");
                let _ = self.sink.forward(&ThreadStreamEvent::stream_error(true)).await;
                Outcome::Panicked
            }
        };
        if outcome == Outcome::Cancelled && self.thread_deleted() {
            // Nobody to tell what was cut short: the thread is gone, and its client asked for that.
        } else if outcome == Outcome::Cancelled && self.sink.is_shut_down() {
            // Everything is saved by now; a client still reading learns why its answer stopped.
            self.sink.send_shutdown_notice(SHUTDOWN_NOTICE_WAIT).await;
        }
        let request_type = self.request_type;
        let elapsed = self.started.elapsed();
        crate::metrics::turn_ended(request_type, outcome.label(), elapsed);
        let duration_ms = elapsed.as_millis() as u64;
        match outcome {
            Outcome::Completed | Outcome::Cancelled | Outcome::Busy => {
                tracing::info!(request_type, thread_id, ?outcome, duration_ms, "chatkit stream ended")
            }
            Outcome::Failed | Outcome::Panicked => {
                tracing::warn!(request_type, thread_id, ?outcome, duration_ms, "chatkit stream ended with an error")
            }
        }
    }

    async fn run_steps(&mut self) -> Outcome {
        for event in &self.preamble {
            if self.sink.forward(event).await.is_err() {
                return Outcome::Cancelled;
            }
        }
        let _lock = match self.hold_lock().await {
            Ok(lock) => lock,
            Err(outcome) => return outcome,
        };
        let (input, replaced) = match self.apply_request().await {
            Ok(applied) => applied,
            Err(e) => return self.fail(e).await,
        };
        let options = self.app.stream_options(&self.sink.thread());
        if self.sink.forward(&ThreadStreamEvent::StreamOptions { stream_options: options }).await.is_err() {
            return Outcome::Cancelled;
        }
        if let Some(item) = replaced {
            match self.sink.send(ThreadStreamEvent::ItemReplaced { item }).await {
                Ok(()) => {}
                Err(SinkError::Disconnected) => return Outcome::Cancelled,
                Err(e) => return self.fail(e.into()).await,
            }
        }
        match self.call_app(input).await {
            AppEnd::Done => Outcome::Completed,
            AppEnd::Failed(e) => self.fail(e).await,
            AppEnd::Cancelled if self.thread_deleted() => Outcome::Cancelled,
            AppEnd::Cancelled => {
                self.persist_cancelled().await;
                Outcome::Cancelled
            }
        }
    }

    /// Whether the turn was stopped because its thread was deleted (then it writes nothing more).
    fn thread_deleted(&self) -> bool {
        self.running.deleted.is_cancelled()
    }

    /// The thread lock: the one taken before the stream, or one waited for now. `Err` is how the turn
    /// ends instead: the client left while waiting, or the lock could not be had (its event is sent).
    async fn hold_lock(&mut self) -> Result<ThreadLock, Outcome> {
        if let Some(lock) = self.lock.take() {
            return Ok(lock);
        }
        let thread_id = self.sink.thread_id();
        let waited = tokio::select! {
            lock = self.sink.store().lock_thread(&thread_id, self.lock_wait) => lock,
            () = self.sink.closed() => return Err(Outcome::Cancelled),
        };
        match waited {
            Ok(lock) => Ok(lock),
            Err(e) => {
                let busy = matches!(e, StoreError::LockTimeout(_));
                let _ = self.sink.forward(&AppError::Store(e).to_event()).await;
                Err(if busy { Outcome::Busy } else { Outcome::Failed })
            }
        }
    }

    /// Sends the `error` event for `e` (logged) and reports a failed turn.
    async fn fail(&self, e: AppError) -> Outcome {
        if matches!(e, AppError::Disconnected) {
            return Outcome::Cancelled;
        }
        match &e {
            AppError::Store(_) | AppError::Internal(_) => {
                tracing::error!(request_type = self.request_type, error = %e, "chatkit turn failed")
            }
            _ => {
                tracing::warn!(request_type = self.request_type, error = %e, "chatkit turn failed")
            }
        }
        let _ = self.sink.forward(&e.to_event()).await;
        Outcome::Failed
    }

    /// The request's change to the thread, under the lock. Returns the user message the app answers (if
    /// any) and, for a structured input, the answered item to send as `thread.item.replaced`.
    async fn apply_request(&self) -> Result<(Option<ThreadItem>, Option<ThreadItem>), AppError> {
        let store = self.sink.store();
        let ctx = self.sink.context();
        let thread_id = self.sink.thread_id();
        match &self.kind {
            TurnKind::Respond { input } => Ok((Some(input.clone()), None)),
            TurnKind::Action { .. } => Ok((None, None)),
            TurnKind::ClientToolOutput { result } => {
                let page = store.load_thread_items(ctx, &thread_id, None, TOOL_OUTPUT_LOOKBACK, Order::Desc).await?;
                let mut completed = false;
                for mut item in page.data {
                    let ItemKind::ClientToolCall(call) = &mut item.kind else {
                        continue;
                    };
                    if call.status != ClientToolCallStatus::Pending {
                        continue;
                    }
                    if completed {
                        // An older call still pending can never be completed now: the client only
                        // answers the newest one.
                        store.delete_thread_item(ctx, &thread_id, &item.id).await?;
                    } else {
                        call.status = ClientToolCallStatus::Completed;
                        call.output = Some(result.clone());
                        store.save_item(ctx, &thread_id, &item).await?;
                        completed = true;
                    }
                }
                if !completed {
                    tracing::warn!(thread_id, "add_client_tool_output: no pending client tool call; responding anyway");
                }
                Ok((None, None))
            }
            TurnKind::Retry { item_id } => {
                let item = store.load_item(ctx, &thread_id, item_id).await?;
                check_retry_target(&item)?;
                let deleted = store.delete_items_after(ctx, &thread_id, item_id).await?;
                tracing::debug!(thread_id, item_id, deleted, "retry: deleted the items after the user message");
                Ok((Some(item), None))
            }
            TurnKind::StructuredInput { item_id, submission } => {
                let item = store.load_item(ctx, &thread_id, item_id).await?;
                let answered = answer_structured_input(item, submission)?;
                Ok((None, Some(answered)))
            }
        }
    }

    /// Calls the app (`respond`, or `action` for a custom action), raced against the client leaving.
    async fn call_app(&self, input: Option<ThreadItem>) -> AppEnd {
        let thread = self.sink.thread();
        let call = match &self.kind {
            TurnKind::Action { action, sender } => self.app.action(&thread, action, sender.as_ref(), &self.sink),
            _ => self.app.respond(&thread, input.as_ref(), &self.sink),
        };
        // When the client leaves, the app's future is dropped here, before the cleanup writes anything.
        let result = tokio::select! {
            biased;
            result = call => result,
            () = self.sink.closed() => return AppEnd::Cancelled,
        };
        match result {
            Ok(()) => AppEnd::Done,
            Err(AppError::Disconnected) => AppEnd::Cancelled,
            Err(e) if self.sink.is_closed() => {
                tracing::debug!(error = %e, "app failed after the client left");
                AppEnd::Cancelled
            }
            Err(e) => AppEnd::Failed(e),
        }
    }

    /// Keeps what the user saw (non-empty pending assistant messages) and tells the model the user
    /// cancelled. Store failures are logged; there is nobody left to tell.
    async fn persist_cancelled(&self) {
        let store = self.sink.store();
        let ctx = self.sink.context();
        let thread_id = self.sink.thread_id();
        for item in self.sink.pending_items() {
            if let ItemKind::AssistantMessage(msg) = &item.kind
                && msg.has_text()
                && let Err(e) = store.add_thread_item(ctx, &thread_id, &item).await
            {
                tracing::error!(thread_id, item_id = item.id, error = %e, "could not save the partial answer");
            }
        }
        let marker = ThreadItem::new(
            ids::generate(ids::SDK_HIDDEN_CONTEXT),
            thread_id.clone(),
            ItemKind::SdkHiddenContext(SdkHiddenContextItem { content: CANCEL_MARKER.into() }),
        );
        if let Err(e) = store.add_thread_item(ctx, &thread_id, &marker).await {
            tracing::error!(thread_id, error = %e, "could not save the cancellation marker");
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}
