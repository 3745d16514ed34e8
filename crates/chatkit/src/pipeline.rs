//! The streaming pipeline (spec §3.0, §6, §7.3): one [`Turn`] per streaming request, run in its own
//! task and writing SSE frames into a bounded channel that the HTTP body reads.
//!
//! A turn, in order:
//! 1. forwards its *preamble* — events whose effects were already committed before the stream started
//!    (`thread.created`, the user message's `thread.item.done`);
//! 2. takes the per-thread lock (bounded wait; a timeout becomes a `custom` error event with
//!    `allow_retry: true`, a disconnect while waiting simply ends the turn);
//! 3. applies the request's mutation under the lock (complete the client tool call, delete the items after
//!    a retried message, check the structured input is still pending);
//! 4. sends `stream_options`, then runs the app (`respond` or `action`) in its own task, raced against the
//!    client disconnecting.
//!
//! Endings: the app returns → the stream ends; the app fails → one `error` event ([`AppError::to_event`])
//! then the end; the app panics → a logged `stream.error` event; the client leaves (or a send fails) → the
//! app future is aborted (which cancels its model call), then every non-empty pending assistant message is
//! saved and the hidden `sdk_hidden_context` cancel marker is appended (spec §6). An app returning
//! [`AppError::Disconnected`] (a failed send), or failing after the client left, is treated the same way.
//! All of this runs in the detached task, so it completes even though nobody reads the stream any more.
//! The lock is held until the cleanup is done, so the next turn sees the marker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::app::{AppError, ChatKitApp};
use crate::ids;
use crate::sink::EventSink;
use crate::store::{StoreError, ThreadLock};
use crate::types::{
    Action, ClientToolCallStatus, ItemKind, Order, SdkHiddenContextItem, StructuredAnswer, StructuredInputItem,
    StructuredInputStatus, StructuredInputSubmission, SubmissionStatus, ThreadItem, ThreadStreamEvent,
};

/// Content of the hidden item appended when a client cancels a stream (spec §6, exact text).
pub const CANCEL_MARKER: &str = "The user cancelled the stream. Stop responding to the prior request.";

/// How many newest items `threads.add_client_tool_output` looks at for a pending call (spec §3.3).
const TOOL_OUTPUT_LOOKBACK: usize = 20;

/// What the turn does once it holds the thread lock.
pub(crate) enum TurnKind {
    /// `threads.create` / `threads.add_user_message`: respond to the stored user message.
    Respond {
        /// The user message.
        input: ThreadItem,
    },
    /// `threads.add_client_tool_output`: complete the newest pending client tool call, respond(None).
    ClientToolOutput {
        /// The client's result.
        result: Value,
    },
    /// `threads.add_structured_input`: answer the item, emit `thread.item.replaced`, respond(None).
    StructuredInput {
        /// The `structured_input` item (pending when validated).
        item_id: String,
        /// What the client submitted.
        submission: StructuredInputSubmission,
    },
    /// `threads.retry_after_item`: delete everything after the user message, respond to it again.
    Retry {
        /// The user message.
        item_id: String,
    },
    /// `threads.custom_action`: run the app's action handler.
    Action {
        /// The action.
        action: Action,
        /// The widget item that fired it.
        sender: Option<ThreadItem>,
    },
}

/// One streaming response in progress.
pub(crate) struct Turn {
    pub(crate) app: Arc<dyn ChatKitApp>,
    pub(crate) sink: EventSink,
    pub(crate) lock_wait: Duration,
    /// The thread lock when it was taken before the stream started (`threads.add_user_message`).
    pub(crate) lock: Option<ThreadLock>,
    pub(crate) preamble: Vec<ThreadStreamEvent>,
    pub(crate) kind: TurnKind,
    pub(crate) request_type: &'static str,
    pub(crate) started: Instant,
}

/// How a turn ended (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Failed,
    Panicked,
    Cancelled,
    Busy,
}

/// What the app task produced.
enum AppEnd {
    Done,
    Failed(AppError),
    Panicked(String),
    Cancelled,
}

/// Aborts the app task if the turn itself is dropped (e.g. runtime shutdown).
struct AbortOnDrop(JoinHandle<Result<(), AppError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Turn {
    /// Runs the turn to its end and logs how it ended.
    pub(crate) async fn run(self) {
        let thread_id = self.sink.thread_id();
        let request_type = self.request_type;
        let started = self.started;
        let outcome = self.run_inner().await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Outcome::Completed | Outcome::Cancelled | Outcome::Busy => {
                tracing::info!(request_type, thread_id, ?outcome, duration_ms, "chatkit stream ended")
            }
            Outcome::Failed | Outcome::Panicked => {
                tracing::warn!(request_type, thread_id, ?outcome, duration_ms, "chatkit stream ended with an error")
            }
        }
    }

    async fn run_inner(mut self) -> Outcome {
        let held = self.lock.take();
        for event in &self.preamble {
            if self.sink.forward(event).await.is_err() {
                return Outcome::Cancelled;
            }
        }
        let _lock: ThreadLock = match held {
            Some(lock) => lock,
            None => match self.acquire_lock().await {
                Ok(Some(lock)) => lock,
                Ok(None) => return Outcome::Cancelled,
                Err(e) => {
                    let busy = matches!(e, StoreError::LockTimeout(_));
                    let _ = self.sink.forward(&AppError::Store(e).to_event()).await;
                    return if busy { Outcome::Busy } else { Outcome::Failed };
                }
            },
        };
        let (input, replaced) = match self.prepare().await {
            Ok(v) => v,
            Err(e) => return self.fail(e).await,
        };
        let options = self.app.stream_options(&self.sink.thread());
        if self.sink.forward(&ThreadStreamEvent::StreamOptions { stream_options: options }).await.is_err() {
            return Outcome::Cancelled;
        }
        if let Some(item) = replaced {
            match self.sink.send(ThreadStreamEvent::ItemReplaced { item }).await {
                Ok(()) => {}
                Err(crate::sink::SinkError::Disconnected) => return Outcome::Cancelled,
                Err(e) => return self.fail(e.into()).await,
            }
        }
        match self.drive_app(input).await {
            AppEnd::Done => Outcome::Completed,
            AppEnd::Failed(e) => self.fail(e).await,
            AppEnd::Panicked(message) => {
                tracing::error!(request_type = self.request_type, panic = %message, "chatkit app panicked");
                let _ = self.sink.forward(&ThreadStreamEvent::stream_error(true)).await;
                Outcome::Panicked
            }
            AppEnd::Cancelled => {
                self.persist_cancelled().await;
                Outcome::Cancelled
            }
        }
    }

    /// Waits for the thread lock; `Ok(None)` when the client left while waiting.
    async fn acquire_lock(&self) -> Result<Option<ThreadLock>, StoreError> {
        let thread_id = self.sink.thread_id();
        tokio::select! {
            lock = self.sink.store().lock_thread(&thread_id, self.lock_wait) => lock.map(Some),
            () = self.sink.closed() => Ok(None),
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

    /// The request's mutation under the lock: the app's input and, for structured input, the answered item.
    async fn prepare(&self) -> Result<(Option<ThreadItem>, Option<ThreadItem>), AppError> {
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
                        // Safety sweep (spec §3.3 step 4): older pending calls can never complete now.
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
                if !matches!(item.kind, ItemKind::UserMessage(_)) {
                    return Err(AppError::BadRequest(format!("item {item_id} is not a user message")));
                }
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

    /// Runs the app in its own task, raced against the client leaving.
    async fn drive_app(&self, input: Option<ThreadItem>) -> AppEnd {
        let future = self.app_future(input);
        let mut task = AbortOnDrop(tokio::spawn(future));
        let joined = tokio::select! {
            biased;
            joined = &mut task.0 => joined,
            () = self.sink.closed() => {
                task.0.abort();
                // Wait until the app future is dropped so nothing writes concurrently with the cleanup.
                let _ = (&mut task.0).await;
                return AppEnd::Cancelled;
            }
        };
        match joined {
            Ok(Ok(())) => AppEnd::Done,
            Ok(Err(AppError::Disconnected)) => AppEnd::Cancelled,
            Ok(Err(e)) if self.sink.is_closed() => {
                tracing::debug!(error = %e, "app failed after the client left");
                AppEnd::Cancelled
            }
            Ok(Err(e)) => AppEnd::Failed(e),
            Err(join) if join.is_panic() => AppEnd::Panicked(panic_message(join.into_panic())),
            Err(_) => AppEnd::Cancelled,
        }
    }

    fn app_future(&self, input: Option<ThreadItem>) -> BoxFuture<'static, Result<(), AppError>> {
        let app = Arc::clone(&self.app);
        let sink = self.sink.clone();
        let thread = sink.thread();
        match &self.kind {
            TurnKind::Action { action, sender } => {
                let (action, sender) = (action.clone(), sender.clone());
                Box::pin(async move { app.action(&thread, &action, sender.as_ref(), &sink).await })
            }
            _ => Box::pin(async move { app.respond(&thread, input.as_ref(), &sink).await }),
        }
    }

    /// Spec §6: keep what the user saw (non-empty pending assistant messages) and tell the model the user
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

/// Applies a submission to a pending `structured_input` item (spec §3.4 step 3).
pub(crate) fn answer_structured_input(
    mut item: ThreadItem,
    submission: &StructuredInputSubmission,
) -> Result<ThreadItem, AppError> {
    let ItemKind::StructuredInput(si) = &mut item.kind else {
        return Err(AppError::BadRequest(format!("item {} is not a structured_input item", item.id)));
    };
    if si.status != StructuredInputStatus::Pending {
        return Err(AppError::BadRequest(format!("structured input {} was already submitted", item.id)));
    }
    apply_submission(si, submission);
    Ok(item)
}

fn apply_submission(si: &mut StructuredInputItem, submission: &StructuredInputSubmission) {
    let skipped_all = submission.status == SubmissionStatus::Skipped;
    for id in submission.answers.keys() {
        if !si.inputs.iter().any(|q| &q.id == id) {
            tracing::warn!(question_id = id, "structured input answer for an unknown question ignored");
        }
    }
    for question in &mut si.inputs {
        let answer = submission.answers.get(&question.id);
        question.answer = Some(match answer {
            Some(a) if !skipped_all && !a.skipped && !a.values.is_empty() => {
                let single = question.rest.get("type").and_then(Value::as_str) == Some("multiple_choice")
                    && question.rest.get("multiple").and_then(Value::as_bool) != Some(true);
                let values = if single { a.values[..1].to_vec() } else { a.values.clone() };
                StructuredAnswer { values, skipped: false }
            }
            _ => StructuredAnswer { values: Vec::new(), skipped: true },
        });
    }
    si.status = match submission.status {
        SubmissionStatus::Answered => StructuredInputStatus::Answered,
        SubmissionStatus::Skipped => StructuredInputStatus::Skipped,
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StructuredAnswerInput, StructuredInputItem};
    use serde_json::json;

    fn item() -> ThreadItem {
        let si: StructuredInputItem = serde_json::from_value(json!({
            "status": "pending",
            "inputs": [
                {"id": "q1", "question": "Pick", "type": "multiple_choice", "options": [{"value": "A"}], "multiple": true},
                {"id": "q2", "question": "One", "type": "multiple_choice", "options": [{"value": "A"}]},
                {"id": "q3", "question": "Why?", "type": "freeform", "description": "d"}
            ]
        }))
        .unwrap();
        ThreadItem::new("si_1", "thr_1", ItemKind::StructuredInput(si))
    }

    fn answers(status: SubmissionStatus) -> StructuredInputSubmission {
        let mut s = StructuredInputSubmission { status, ..Default::default() };
        s.answers.insert("q1".into(), StructuredAnswerInput { values: vec!["A".into(), "B".into()], skipped: false });
        s.answers.insert("q2".into(), StructuredAnswerInput { values: vec!["X".into(), "Y".into()], skipped: false });
        s.answers.insert("zz".into(), StructuredAnswerInput { values: vec!["X".into()], skipped: false });
        s
    }

    #[test]
    fn answers_are_normalized_like_the_sdk() {
        let out = answer_structured_input(item(), &answers(SubmissionStatus::Answered)).unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["status"], "answered");
        assert_eq!(v["inputs"][0]["answer"], json!({"values": ["A", "B"], "skipped": false}));
        assert_eq!(v["inputs"][1]["answer"], json!({"values": ["X"], "skipped": false}));
        assert_eq!(v["inputs"][2]["answer"], json!({"values": [], "skipped": true}));
        assert_eq!(
            serde_json::to_string(&v["inputs"][2]).unwrap(),
            r#"{"id":"q3","question":"Why?","answer":{"values":[],"skipped":true},"type":"freeform","description":"d"}"#
        );
        // A second submission is refused.
        assert!(matches!(
            answer_structured_input(out, &answers(SubmissionStatus::Answered)),
            Err(AppError::BadRequest(_))
        ));
    }

    #[test]
    fn skipped_submission_skips_every_question() {
        let out = answer_structured_input(item(), &answers(SubmissionStatus::Skipped)).unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(v["status"], "skipped");
        for i in 0..3 {
            assert_eq!(v["inputs"][i]["answer"], json!({"values": [], "skipped": true}));
        }
    }
}
