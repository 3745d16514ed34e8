//! Function tools: the [`Tool`] trait the app implements, the [`ToolContext`] a call receives (to
//! stream ChatKit events into the turn while it runs, e.g. `progress_update`) and [`ToolError`].
//!
//! A tool's error never fails the run: the run loop sends it back to the model as text, so the model
//! can apologise or try again.

use async_trait::async_trait;
use chatkit::types::ThreadStreamEvent;
use chatkit::{EventSink, SinkError};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::provider::ToolSpec;
use crate::workflow::ReasoningWorkflow;

/// What a tool call receives besides its arguments.
#[derive(Clone)]
pub struct ToolContext {
    /// The turn's sink: events sent here reach the client at once, and finished items are stored.
    /// Prefer [`ToolContext::send`], which also closes the run's reasoning workflow before another
    /// visible item is shown.
    pub sink: EventSink,
    /// The ChatKit thread of the turn.
    pub thread_id: String,
    /// The model's call id of this invocation.
    pub call_id: String,
    workflow: ReasoningWorkflow,
}

impl ToolContext {
    /// The context of call `call_id` in the turn streaming through `sink`.
    pub fn new(sink: EventSink, call_id: impl Into<String>) -> Self {
        Self::in_run(sink, call_id.into(), ReasoningWorkflow::default())
    }

    pub(crate) fn in_run(sink: EventSink, call_id: String, workflow: ReasoningWorkflow) -> Self {
        ToolContext { thread_id: sink.thread_id(), sink, call_id, workflow }
    }

    /// Streams one ChatKit event into the turn (closing the reasoning workflow first when the event
    /// shows another item, as chatkit-python does).
    pub async fn send(&self, event: ThreadStreamEvent) -> Result<(), ToolError> {
        self.stream(event).await.map_err(ToolError::from)
    }

    /// [`ToolContext::send`] with the sink's own error, for tools that treat a client that left
    /// differently from a failed store.
    pub async fn stream(&self, event: ThreadStreamEvent) -> Result<(), SinkError> {
        self.workflow.send_tool_event(&self.sink, event).await
    }

    /// Shows `text` as the turn's transient status (`progress_update`, no icon) until the next
    /// update or the end of the turn.
    pub async fn progress(&self, text: impl Into<String>) -> Result<(), ToolError> {
        self.send(ThreadStreamEvent::ProgressUpdate { icon: None, text: text.into() }).await
    }
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext").field("thread_id", &self.thread_id).field("call_id", &self.call_id).finish()
    }
}

/// Why a tool call failed. Both variants go back to the model as text, not as a failed run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not match the schema; the text explains what was wrong. The run loop sends
    /// `Invalid JSON input for tool <name>: <text>`.
    #[error("{0}")]
    InvalidArguments(String),
    /// The operation failed; the text is shown to the model as is.
    #[error("{0}")]
    Failed(String),
}

impl From<SinkError> for ToolError {
    fn from(e: SinkError) -> Self {
        ToolError::Failed(e.to_string())
    }
}

/// Decodes a tool's JSON arguments into a typed struct; a mismatch becomes
/// [`ToolError::InvalidArguments`].
pub fn parse_arguments<T: DeserializeOwned>(arguments: Value) -> Result<T, ToolError> {
    serde_json::from_value(arguments).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

/// A function the model can call.
#[async_trait]
pub trait Tool: Send + Sync {
    /// Function name (unique within an agent).
    fn name(&self) -> &str;
    /// Model-facing description.
    fn description(&self) -> &str;
    /// Strict JSON schema of the arguments; sent as is to OpenAI (`strict: true`), converted for Gemini.
    fn parameters(&self) -> Value;
    /// Whether the run ends after a model step that executed this tool successfully.
    fn is_stop(&self) -> bool {
        false
    }
    /// What the chat shows (`progress_update`) while a call with `arguments` takes longer than the
    /// agent's [`crate::Agent::progress_delay`], e.g. `Searching flights to Paris…`; `None` shows
    /// nothing. Calls that finish sooner send no event, so fast tools stream exactly as before.
    fn progress_text(&self, _arguments: &Value) -> Option<String> {
        None
    }
    /// Runs the tool. The returned JSON is serialized compactly (a string is sent as is) for the model.
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<Value, ToolError>;
}

/// The [`ToolSpec`] of a tool.
pub(crate) fn spec_of(tool: &dyn Tool) -> ToolSpec {
    ToolSpec {
        name: tool.name().to_string(),
        description: tool.description().to_string(),
        parameters: tool.parameters(),
    }
}
