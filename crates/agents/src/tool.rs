//! Function tools: the [`Tool`] trait the app implements, the [`ToolContext`] a call receives (to
//! stream ChatKit events into the turn while it runs) and [`ToolError`].
//!
//! A tool's error never fails the run: the run loop sends it back to the model as text, so the model
//! can apologise or try again.

use async_trait::async_trait;
use chatkit::types::ThreadStreamEvent;
use chatkit::{EventSink, SinkError};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::provider::ToolSpec;

/// What a tool call receives besides its arguments.
#[derive(Clone)]
pub struct ToolContext {
    /// The turn's sink: events sent here reach the client at once, and finished items are stored.
    pub sink: EventSink,
    /// The ChatKit thread of the turn.
    pub thread_id: String,
    /// The model's call id of this invocation.
    pub call_id: String,
}

impl ToolContext {
    /// Streams one ChatKit event into the turn.
    pub async fn send(&self, event: ThreadStreamEvent) -> Result<(), ToolError> {
        self.sink.send(event).await.map_err(ToolError::from)
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
