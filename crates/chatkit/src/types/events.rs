//! Stream events: what a streaming request writes, one `data: <json>\n\n` frame each.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Annotation, AssistantMessageContent, Thread, ThreadItem};

/// The options a `stream_options` event gives the client for the rest of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamOptions {
    /// Whether the client shows a stop button.
    pub allow_cancel: bool,
}

/// Error code `stream.error` (generic failure; client shows a localized message).
pub const ERROR_CODE_STREAM: &str = "stream.error";
/// Error code `custom` (the `message` is shown as is).
pub const ERROR_CODE_CUSTOM: &str = "custom";

/// How a `notice` banner is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    /// `info`: neutral.
    Info,
    /// `warning`: needs attention.
    Warning,
    /// `danger`: something failed.
    Danger,
}

/// One event of a ChatKit stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum ThreadStreamEvent {
    /// A thread was created (first event of `threads.create`).
    #[serde(rename = "thread.created")]
    ThreadCreated {
        /// The new thread (empty items page).
        thread: Thread,
    },
    /// The thread's title/status changed.
    #[serde(rename = "thread.updated")]
    ThreadUpdated {
        /// The thread (empty items page).
        thread: Thread,
    },
    /// An item started streaming.
    #[serde(rename = "thread.item.added")]
    ItemAdded {
        /// Initial state.
        item: ThreadItem,
    },
    /// Incremental change to a streaming (or done) item.
    #[serde(rename = "thread.item.updated")]
    ItemUpdated {
        /// The item to change.
        item_id: String,
        /// How to change it.
        update: ItemUpdate,
    },
    /// An item is complete (persisted before it is sent).
    #[serde(rename = "thread.item.done")]
    ItemDone {
        /// Final state.
        item: ThreadItem,
    },
    /// An item was deleted.
    #[serde(rename = "thread.item.removed")]
    ItemRemoved {
        /// Deleted item.
        item_id: String,
    },
    /// An item was replaced by id.
    #[serde(rename = "thread.item.replaced")]
    ItemReplaced {
        /// New state.
        item: ThreadItem,
    },
    /// The first event of every turn (after the events committed before the stream started).
    #[serde(rename = "stream_options")]
    StreamOptions {
        /// What the client may do during this stream.
        stream_options: StreamOptions,
    },
    /// Transient status text.
    #[serde(rename = "progress_update")]
    ProgressUpdate {
        /// The name of an icon from the client's set; absent for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icon: Option<String>,
        /// What the server is doing, e.g. "Searching flights…"; replaced by the next update.
        text: String,
    },
    /// Fire-and-forget effect for the host page.
    #[serde(rename = "client_effect")]
    ClientEffect {
        /// The effect's app-defined name, which the page's handler dispatches on.
        name: String,
        /// The effect's app-defined data; `{}` when absent.
        #[serde(default = "empty_object")]
        data: Value,
    },
    /// An error; the stream ends after it.
    #[serde(rename = "error")]
    Error {
        /// `stream.error`, `custom`, or a future code.
        code: String,
        /// Localized message (for `custom`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Whether the client offers a retry button.
        #[serde(default)]
        allow_retry: bool,
    },
    /// A banner message.
    #[serde(rename = "notice")]
    Notice {
        /// How the banner is styled.
        level: NoticeLevel,
        /// Markdown message.
        message: String,
        /// A heading above the message; absent for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl ThreadStreamEvent {
    /// `{"type":"error","code":"stream.error","allow_retry":…}`
    pub fn stream_error(allow_retry: bool) -> Self {
        ThreadStreamEvent::Error { code: ERROR_CODE_STREAM.into(), message: None, allow_retry }
    }

    /// `{"type":"error","code":"custom","message":…,"allow_retry":…}`
    pub fn custom_error(message: impl Into<String>, allow_retry: bool) -> Self {
        ThreadStreamEvent::Error { code: ERROR_CODE_CUSTOM.into(), message: Some(message.into()), allow_retry }
    }

    /// A `client_effect` event.
    pub fn client_effect(name: impl Into<String>, data: Value) -> Self {
        ThreadStreamEvent::ClientEffect { name: name.into(), data }
    }

    /// The event's wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ThreadStreamEvent::ThreadCreated { .. } => "thread.created",
            ThreadStreamEvent::ThreadUpdated { .. } => "thread.updated",
            ThreadStreamEvent::ItemAdded { .. } => "thread.item.added",
            ThreadStreamEvent::ItemUpdated { .. } => "thread.item.updated",
            ThreadStreamEvent::ItemDone { .. } => "thread.item.done",
            ThreadStreamEvent::ItemRemoved { .. } => "thread.item.removed",
            ThreadStreamEvent::ItemReplaced { .. } => "thread.item.replaced",
            ThreadStreamEvent::StreamOptions { .. } => "stream_options",
            ThreadStreamEvent::ProgressUpdate { .. } => "progress_update",
            ThreadStreamEvent::ClientEffect { .. } => "client_effect",
            ThreadStreamEvent::Error { .. } => "error",
            ThreadStreamEvent::Notice { .. } => "notice",
        }
    }
}

/// The `update` of a `thread.item.updated` event: how the client changes an item it is showing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type")]
pub enum ItemUpdate {
    /// A content part starts (replaces the part at `content_index`).
    #[serde(rename = "assistant_message.content_part.added")]
    ContentPartAdded {
        /// Which part of the message, counted from 0.
        content_index: usize,
        /// Initial part.
        content: AssistantMessageContent,
    },
    /// Text appended to a part.
    #[serde(rename = "assistant_message.content_part.text_delta")]
    TextDelta {
        /// Which part of the message, counted from 0.
        content_index: usize,
        /// Appended text.
        delta: String,
    },
    /// An annotation inserted into a part.
    #[serde(rename = "assistant_message.content_part.annotation_added")]
    AnnotationAdded {
        /// Which part of the message, counted from 0.
        content_index: usize,
        /// Position among the part's annotations.
        annotation_index: usize,
        /// The citation to insert.
        annotation: Annotation,
    },
    /// A part is complete (replaces the part).
    #[serde(rename = "assistant_message.content_part.done")]
    ContentPartDone {
        /// Which part of the message, counted from 0.
        content_index: usize,
        /// Final part.
        content: AssistantMessageContent,
    },
    /// Streaming text appended to a widget `Text`/`Markdown` component.
    #[serde(rename = "widget.streaming_text.value_delta")]
    WidgetStreamingTextValueDelta {
        /// Component id.
        component_id: String,
        /// Appended text.
        delta: String,
        /// Whether streaming ended.
        done: bool,
    },
    /// The whole widget root replaced.
    #[serde(rename = "widget.root.updated")]
    WidgetRootUpdated {
        /// New root.
        widget: Value,
    },
    /// One widget component replaced by id.
    #[serde(rename = "widget.component.updated")]
    WidgetComponentUpdated {
        /// Component id.
        component_id: String,
        /// New component.
        component: Value,
    },
    /// A workflow task appended.
    #[serde(rename = "workflow.task.added")]
    WorkflowTaskAdded {
        /// The task's position in the workflow, counted from 0.
        task_index: usize,
        /// The task as the client renders it.
        task: Value,
    },
    /// A workflow task replaced.
    #[serde(rename = "workflow.task.updated")]
    WorkflowTaskUpdated {
        /// The task's position in the workflow, counted from 0.
        task_index: usize,
        /// The task as the client renders it.
        task: Value,
    },
    /// Generated image progress.
    #[serde(rename = "generated_image.updated")]
    GeneratedImageUpdated {
        /// `{"id","url"}`
        image: Value,
        /// Progress in [0, 1].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<f64>,
    },
}
