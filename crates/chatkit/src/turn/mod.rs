//! Turns: what a streaming request does. Each streaming request runs exactly one turn, in one task the
//! server spawns for it, and the turn writes SSE frames into a bounded channel that the response body
//! reads.
//!
//! * [`start`] is everything before the first byte: what can be refused is refused there, as an HTTP
//!   status (missing thread, item or attachment, a retry of something other than a user message, a
//!   structured input that is not pending), and the writes that must exist before the stream says so
//!   (the new thread, the user message) are committed. Then the turn's task is spawned.
//! * [`run`] is everything after: the turn forwards the events already committed, takes the thread's
//!   lock, applies its request under the lock, sends `stream_options` and runs the app. It is also the
//!   one place that catches a panic and ends the stream with an `error` event, and that saves the
//!   partial answer and the hidden cancel marker when the client leaves.
//! * [`structured_input`] applies a structured-input submission to its item.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::app::ChatKitApp;
use crate::sink::EventSink;
use crate::store::ThreadLock;
use crate::types::{Action, StructuredInputSubmission, ThreadItem, ThreadStreamEvent};

mod run;
pub(crate) mod running;
mod start;
mod structured_input;

/// The content of the hidden item stored when a client leaves mid-answer. The model reads it on the
/// next turn and does not continue the abandoned answer; the client never sees it. The text is the
/// Python SDK's, so threads stay interchangeable with it.
pub const CANCEL_MARKER: &str = "The user cancelled the stream. Stop responding to the prior request.";

/// What the turn does once it holds the thread lock.
pub(crate) enum TurnKind {
    /// `threads.create` / `threads.add_user_message`: answer the user message, already stored.
    Respond { input: ThreadItem },
    /// `threads.add_client_tool_output`: complete the newest pending client tool call with `result`,
    /// then let the app continue without a new user message.
    ClientToolOutput { result: Value },
    /// `threads.add_structured_input`: answer the item, send it as `thread.item.replaced`, then let the
    /// app continue without a new user message.
    StructuredInput { item_id: String, submission: StructuredInputSubmission },
    /// `threads.retry_after_item`: delete everything after the user message, then answer it again.
    Retry { item_id: String },
    /// `threads.custom_action`: run the app's action handler; `sender` is the widget that sent it.
    Action { action: Action, sender: Option<ThreadItem> },
}

/// One streaming response in progress.
pub(crate) struct Turn {
    app: Arc<dyn ChatKitApp>,
    sink: EventSink,
    lock_wait: Duration,
    /// The thread lock, when it was taken before the stream started.
    lock: Option<ThreadLock>,
    /// Events whose effects were committed before the stream started, sent first.
    preamble: Vec<ThreadStreamEvent>,
    kind: TurnKind,
    request_type: &'static str,
    started: Instant,
    /// This turn in the server's running turns; its token is cancelled when the thread is deleted.
    running: running::Registered,
}
