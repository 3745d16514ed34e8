//! Identifier generation: `<prefix>_<16 lowercase hex chars>` (64 random bits, spec §8.1 Rust rec.).

/// Thread ids.
pub const THREAD: &str = "thr";
/// Messages, widgets and other server-created items.
pub const MESSAGE: &str = "msg";
/// Client tool call fallback ids.
pub const TOOL_CALL: &str = "tc";
/// Workflows.
pub const WORKFLOW: &str = "wf";
/// Tasks.
pub const TASK: &str = "tsk";
/// Attachments.
pub const ATTACHMENT: &str = "atc";
/// The cancellation marker.
pub const SDK_HIDDEN_CONTEXT: &str = "shcx";

/// A new random id with the given prefix.
pub fn generate(prefix: &str) -> String {
    let n: u64 = uuid::Uuid::new_v4().as_u64_pair().0;
    format!("{prefix}_{n:016x}")
}
