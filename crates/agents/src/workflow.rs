//! The ChatKit `workflow` item of type `reasoning` that shows a run's reasoning, with the event
//! sequence of chatkit-python's `stream_agent_response`:
//!
//! - reasoning starts and no workflow is open → `thread.item.added` of
//!   `{"type":"reasoning","tasks":[],"expanded":false}`;
//! - the first reasoning text of a workflow without tasks → `workflow.task.added` of a `thought`
//!   task (index 0), then each further delta of that same part → `workflow.task.updated` with the
//!   whole task; when the part is done its final text → `workflow.task.updated`;
//! - any other part is shown whole when it is done → `workflow.task.added`;
//! - an assistant message starting, or a tool showing another visible item, closes the workflow:
//!   `thread.item.done` with `summary: {"duration": <whole seconds>}` and `expanded: false`.
//!
//! One workflow spans the model calls of a run until something closes it; the run closes it at its
//! end too (chatkit-python would store it open and resume it next turn; closing it leaves no
//! half-finished item behind). The thought tasks are never sent back to the model: the input
//! conversion keeps only custom tasks.

use std::sync::Arc;
use std::time::Instant;

use chatkit::types::{ItemKind, ItemUpdate, ThreadItem, ThreadStreamEvent, WorkflowItem};
use chatkit::{EventSink, SinkError, ids};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The reasoning workflow of one run, shared by the model steps and the tools of the run.
#[derive(Clone, Default)]
pub(crate) struct ReasoningWorkflow {
    open: Arc<Mutex<Option<OpenWorkflow>>>,
}

struct OpenWorkflow {
    item: ThreadItem,
    started: Instant,
    /// The thought contents, in task order.
    tasks: Vec<String>,
    /// The part streaming into a task: (reasoning item id, part index, task index).
    streaming: Option<(String, usize, usize)>,
}

impl OpenWorkflow {
    /// The task that part `part` of reasoning item `item_id` is streaming into, if it is.
    fn streaming_task(&self, item_id: &str, part: usize) -> Option<usize> {
        match &self.streaming {
            Some((id, p, index)) if id == item_id && *p == part && *index < self.tasks.len() => Some(*index),
            _ => None,
        }
    }

    /// The event carrying `update` of the workflow item.
    fn updated(&self, update: ItemUpdate) -> ThreadStreamEvent {
        ThreadStreamEvent::ItemUpdated { item_id: self.item.id.clone(), update }
    }

    fn workflow(&self, summary: Option<u64>) -> Value {
        let tasks: Vec<Value> = self.tasks.iter().map(|t| thought(t)).collect();
        match summary {
            None => json!({"type": "reasoning", "tasks": tasks, "expanded": false}),
            Some(duration) => {
                json!({"type": "reasoning", "tasks": tasks, "summary": {"duration": duration}, "expanded": false})
            }
        }
    }
}

/// A `thought` task as chatkit-python serializes it.
fn thought(content: &str) -> Value {
    json!({"status_indicator": "none", "type": "thought", "content": content})
}

impl ReasoningWorkflow {
    /// Opens a workflow unless one is open.
    pub(crate) async fn start(&self, sink: &EventSink) -> Result<(), SinkError> {
        let mut open = self.open.lock().await;
        Self::ensure_open(&mut open, sink).await
    }

    async fn ensure_open(open: &mut Option<OpenWorkflow>, sink: &EventSink) -> Result<(), SinkError> {
        if open.is_some() {
            return Ok(());
        }
        let mut wf = OpenWorkflow {
            item: ThreadItem::new(
                ids::generate(ids::WORKFLOW),
                sink.thread_id(),
                ItemKind::Workflow(WorkflowItem { workflow: Value::Null }),
            ),
            started: Instant::now(),
            tasks: Vec::new(),
            streaming: None,
        };
        wf.item.kind = ItemKind::Workflow(WorkflowItem { workflow: wf.workflow(None) });
        let item = wf.item.clone();
        *open = Some(wf);
        sink.send(ThreadStreamEvent::ItemAdded { item }).await
    }

    /// Reasoning text for part `part` of reasoning item `item_id` (opens the workflow if needed).
    pub(crate) async fn delta(
        &self,
        sink: &EventSink,
        item_id: &str,
        part: usize,
        delta: &str,
    ) -> Result<(), SinkError> {
        let mut open = self.open.lock().await;
        Self::ensure_open(&mut open, sink).await?;
        let Some(wf) = open.as_mut() else { return Ok(()) };
        let update = if wf.tasks.is_empty() {
            wf.tasks.push(delta.to_string());
            wf.streaming = Some((item_id.to_string(), part, 0));
            ItemUpdate::WorkflowTaskAdded { task_index: 0, task: thought(delta) }
        } else if let Some(index) = wf.streaming_task(item_id, part) {
            wf.tasks[index].push_str(delta);
            ItemUpdate::WorkflowTaskUpdated { task_index: index, task: thought(&wf.tasks[index]) }
        } else {
            // Later parts are shown whole when they are done.
            return Ok(());
        };
        sink.send(wf.updated(update)).await
    }

    /// Part `part` of reasoning item `item_id` is complete with `text` (ignored when no workflow is
    /// open, as chatkit-python does).
    pub(crate) async fn part_done(
        &self,
        sink: &EventSink,
        item_id: &str,
        part: usize,
        text: &str,
    ) -> Result<(), SinkError> {
        let mut open = self.open.lock().await;
        let Some(wf) = open.as_mut() else { return Ok(()) };
        let update = match wf.streaming_task(item_id, part) {
            Some(index) => {
                wf.streaming = None;
                wf.tasks[index] = text.to_string();
                ItemUpdate::WorkflowTaskUpdated { task_index: index, task: thought(text) }
            }
            None => {
                wf.tasks.push(text.to_string());
                ItemUpdate::WorkflowTaskAdded { task_index: wf.tasks.len() - 1, task: thought(text) }
            }
        };
        sink.send(wf.updated(update)).await
    }

    /// Closes the open workflow, if any: `thread.item.done` with the duration summary, collapsed.
    pub(crate) async fn close(&self, sink: &EventSink) -> Result<(), SinkError> {
        let mut open = self.open.lock().await;
        Self::close_locked(&mut open, sink).await
    }

    async fn close_locked(open: &mut Option<OpenWorkflow>, sink: &EventSink) -> Result<(), SinkError> {
        let Some(wf) = open.take() else { return Ok(()) };
        let mut item = wf.item.clone();
        item.kind = ItemKind::Workflow(WorkflowItem { workflow: wf.workflow(Some(wf.started.elapsed().as_secs())) });
        sink.send(ThreadStreamEvent::ItemDone { item }).await
    }

    /// Ends the workflow of a failed run: kept (closed) when it shows some reasoning, removed when
    /// it is still empty.
    pub(crate) async fn abandon(&self, sink: &EventSink) -> Result<(), SinkError> {
        let mut open = self.open.lock().await;
        match open.as_ref() {
            Some(wf) if wf.tasks.is_empty() => {
                let item_id = wf.item.id.clone();
                *open = None;
                sink.send(ThreadStreamEvent::ItemRemoved { item_id }).await
            }
            _ => Self::close_locked(&mut open, sink).await,
        }
    }

    /// Sends a tool's event, closing the workflow first when the event shows another visible item
    /// (app-written hidden context and client tool calls leave it open, as in chatkit-python).
    pub(crate) async fn send_tool_event(&self, sink: &EventSink, event: ThreadStreamEvent) -> Result<(), SinkError> {
        if let ThreadStreamEvent::ItemAdded { item } | ThreadStreamEvent::ItemDone { item } = &event
            && !matches!(item.kind, ItemKind::ClientToolCall(_) | ItemKind::HiddenContextItem(_))
        {
            let mut open = self.open.lock().await;
            if open.as_ref().is_some_and(|wf| wf.item.id != item.id) {
                Self::close_locked(&mut open, sink).await?;
            }
        }
        sink.send(event).await
    }
}
