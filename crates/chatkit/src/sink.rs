//! [`EventSink`]: how an application streams events into a response.
//!
//! Sending an event first stores what it says, then sends it ("ack after commit": a client never sees
//! an item the store does not have): `thread.item.done` adds the item, `thread.item.removed` deletes
//! it, `thread.item.replaced` upserts it, `thread.updated` saves the thread. An update to a widget that
//! is already stored is applied to the stored copy too, so a reload shows what the client shows (the
//! Python SDK leaves that to the integrator). Items that were `added` but are not done yet are kept,
//! with their updates applied, so a cancelled stream can save what was produced. Hidden items are
//! stored, never sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{RequestContext, Store, StoreError, ThreadChange};
use crate::types::{
    AssistantMessageContent, ItemKind, ItemUpdate, Page, ThreadItem, ThreadMetadata, ThreadStatus, ThreadStreamEvent,
};

/// Why an event could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The client disconnected.
    #[error("client disconnected")]
    Disconnected,
    /// Persisting the event failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Encodes one event as an SSE frame: `data: <compact json>\n\n`.
pub fn encode_sse(event: &ThreadStreamEvent) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    // Serializing our own types into a Vec cannot fail (no non-string map keys, no I/O).
    if serde_json::to_writer(&mut buf, event).is_err() {
        buf.truncate(6);
        buf.extend_from_slice(br#"{"type":"error","code":"stream.error","allow_retry":true}"#);
    }
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

struct SinkState {
    thread: ThreadMetadata,
    pending: Vec<ThreadItem>,
}

struct SinkInner {
    store: Arc<dyn Store>,
    ctx: RequestContext,
    tx: mpsc::Sender<Bytes>,
    state: Mutex<SinkState>,
    /// Cancelled once the client stopped reading for longer than the stall timeout: from then on the
    /// client counts as gone.
    stalled: CancellationToken,
    /// Cancelled when the server stops answers that outlived the shutdown grace time: the turn is then
    /// cancelled as on a disconnect, and the client is told why.
    shutdown: CancellationToken,
    /// Measures the time to the answer's first event, for a turn's sink.
    first_event: Option<FirstEventTimer>,
}

/// When the request of a turn arrived, to record the time until its app sent the first item event.
struct FirstEventTimer {
    request_type: &'static str,
    started: Instant,
    seen: AtomicBool,
}

/// What a client is told when its answer is cut short because the server is stopping.
pub const SHUTDOWN_MESSAGE: &str = "The server is restarting and stopped this answer; please try again.";

/// How long a frame may wait for room in a full channel by default.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A handle to the response being streamed; cheap to clone (tools running concurrently share it).
#[derive(Clone)]
pub struct EventSink {
    inner: Arc<SinkInner>,
    stall_timeout: Duration,
}

impl EventSink {
    /// A sink writing SSE frames to `tx`, persisting into `store` for `thread`.
    pub fn new(store: Arc<dyn Store>, ctx: RequestContext, thread: ThreadMetadata, tx: mpsc::Sender<Bytes>) -> Self {
        let state = Mutex::new(SinkState { thread, pending: Vec::new() });
        EventSink {
            inner: Arc::new(SinkInner {
                store,
                ctx,
                tx,
                state,
                stalled: CancellationToken::new(),
                shutdown: CancellationToken::new(),
                first_event: None,
            }),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }

    /// Sets how long sending may wait on a client that does not read (the channel stays full) before the
    /// client counts as gone: the turn is then cancelled as on a disconnect, instead of holding the
    /// thread's lock for as long as the connection stays open.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Ends the response as if its client had left once `shutdown` is cancelled (a server stopping).
    /// Call before cloning the sink: clones made earlier keep the token they had.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.shutdown = shutdown,
            None => tracing::error!("EventSink::with_shutdown called on a shared sink; ignored"),
        }
        self
    }

    /// Records the time from `started` (the request's arrival) to the first item event sent through this
    /// sink. Set when the sink is made, before it is shared.
    pub(crate) fn with_first_event_timer(mut self, request_type: &'static str, started: Instant) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.first_event = Some(FirstEventTimer { request_type, started, seen: AtomicBool::new(false) });
        }
        self
    }

    /// Whether the response was cut short by the server stopping (see [`EventSink::with_shutdown`]).
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Tells a client still reading that its answer was cut short because the server is stopping
    /// (a retryable `custom` error event). Waits at most `wait` for room in the stream.
    pub async fn send_shutdown_notice(&self, wait: Duration) {
        let event = ThreadStreamEvent::custom_error(SHUTDOWN_MESSAGE, true);
        let _ = tokio::time::timeout(wait, self.inner.tx.send(encode_sse(&event))).await;
    }

    /// The first item event (the answer, a widget or a task starting) is what the user waits for; the
    /// thread bookkeeping before it (`stream_options`, a new title) is not.
    fn note_first_event(&self, event: &ThreadStreamEvent) {
        if let Some(timer) = &self.inner.first_event
            && matches!(
                event,
                ThreadStreamEvent::ItemAdded { .. }
                    | ThreadStreamEvent::ItemDone { .. }
                    | ThreadStreamEvent::ItemUpdated { .. }
            )
            && !timer.seen.swap(true, Ordering::Relaxed)
        {
            crate::metrics::first_event(timer.request_type, timer.started.elapsed());
        }
    }

    /// The store the response persists into.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Who the response is for (the owner its writes belong to).
    pub fn context(&self) -> &RequestContext {
        &self.inner.ctx
    }

    /// The current state of the thread (reflects `thread.updated` events sent so far).
    pub fn thread(&self) -> ThreadMetadata {
        self.lock().thread.clone()
    }

    /// The id of the thread the response belongs to.
    pub fn thread_id(&self) -> String {
        self.lock().thread.id.clone()
    }

    /// Whether the client is gone (disconnected, or stalled past the stall timeout), or the server stopped
    /// the response.
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed() || self.inner.stalled.is_cancelled() || self.inner.shutdown.is_cancelled()
    }

    /// Resolves when the client disconnects or stalls past the stall timeout, or the server stops the
    /// response.
    pub async fn closed(&self) {
        tokio::select! {
            () = self.inner.tx.closed() => {}
            () = self.inner.stalled.cancelled() => {}
            () = self.inner.shutdown.cancelled() => {}
        }
    }

    /// Items added but not yet finished, in the state reached by the updates seen so far.
    pub fn pending_items(&self) -> Vec<ThreadItem> {
        self.lock().pending.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        // A poisoned mutex only means another task panicked mid-update; the data is still usable.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes an already-persisted event to the client without touching the store.
    pub async fn forward(&self, event: &ThreadStreamEvent) -> Result<(), SinkError> {
        if self.inner.stalled.is_cancelled() || self.inner.shutdown.is_cancelled() {
            return Err(SinkError::Disconnected);
        }
        let sent = tokio::select! {
            sent = tokio::time::timeout(self.stall_timeout, self.inner.tx.send(encode_sse(event))) => sent,
            () = self.inner.shutdown.cancelled() => return Err(SinkError::Disconnected),
        };
        match sent {
            Ok(sent) => sent.map_err(|_| SinkError::Disconnected),
            Err(_) => {
                if !self.inner.stalled.is_cancelled() {
                    tracing::warn!(
                        thread_id = self.thread_id(),
                        stall_secs = self.stall_timeout.as_secs(),
                        "the client stopped reading the stream; cancelling the turn as if it had left"
                    );
                }
                self.inner.stalled.cancel();
                Err(SinkError::Disconnected)
            }
        }
    }

    /// Stores what the event says (see the module doc), then sends it.
    pub async fn send(&self, event: ThreadStreamEvent) -> Result<(), SinkError> {
        let store = &self.inner.store;
        let ctx = &self.inner.ctx;
        let thread_id = self.thread_id();
        match &event {
            ThreadStreamEvent::ItemAdded { item } => {
                let mut st = self.lock();
                st.pending.retain(|p| p.id != item.id);
                st.pending.push(item.clone());
            }
            ThreadStreamEvent::ItemUpdated { item_id, update } => {
                let applied = {
                    let mut st = self.lock();
                    match st.pending.iter_mut().find(|p| &p.id == item_id) {
                        Some(item) => {
                            apply_update(item, update);
                            true
                        }
                        None => false,
                    }
                };
                if !applied && is_widget_update(update) {
                    // Keep the stored widget in sync with what the client shows (reload shows the same).
                    match store.load_item(ctx, &thread_id, item_id).await {
                        Ok(mut item) => {
                            if apply_update(&mut item, update) {
                                store.save_item(ctx, &thread_id, &item).await?;
                            }
                        }
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            ThreadStreamEvent::ItemDone { item } => {
                store.add_thread_item(ctx, &thread_id, item).await?;
                self.lock().pending.retain(|p| p.id != item.id);
                if item.is_hidden() {
                    return Ok(());
                }
            }
            ThreadStreamEvent::ItemReplaced { item } => {
                store.save_item(ctx, &thread_id, item).await?;
                self.lock().pending.retain(|p| p.id != item.id);
            }
            ThreadStreamEvent::ItemRemoved { item_id } => {
                store.delete_thread_item(ctx, &thread_id, item_id).await?;
                self.lock().pending.retain(|p| &p.id != item_id);
            }
            ThreadStreamEvent::ThreadUpdated { thread } => {
                let updated = self.adopt_thread_fields(&thread.title, &thread.status, &thread.allowed_image_domains);
                store.save_thread(ctx, &updated).await?;
                let wire = ThreadStreamEvent::ThreadUpdated { thread: updated.to_thread(Page::default()) };
                return self.forward(&wire).await;
            }
            _ => {}
        }
        let sent = self.forward(&event).await;
        if sent.is_ok() {
            self.note_first_event(&event);
        }
        sent
    }

    /// Changes the thread (title, status…), saves it and emits `thread.updated`.
    pub async fn update_thread(&self, f: impl FnOnce(&mut ThreadMetadata)) -> Result<(), SinkError> {
        let mut thread = self.thread();
        f(&mut thread);
        self.send(ThreadStreamEvent::ThreadUpdated { thread: thread.to_thread(Page::default()) }).await
    }

    /// Takes over the thread fields a response may change (title, status, allowed image domains) and
    /// returns the thread as it now stands.
    fn adopt_thread_fields(
        &self,
        title: &Option<String>,
        status: &ThreadStatus,
        allowed_image_domains: &Option<Vec<String>>,
    ) -> ThreadMetadata {
        let mut st = self.lock();
        st.thread.title = title.clone();
        st.thread.status = status.clone();
        st.thread.allowed_image_domains = allowed_image_domains.clone();
        st.thread.clone()
    }

    /// Changes the thread *as stored* ([`Store::update_thread`]: `change` sees, e.g., a rename made while
    /// the response ran) and emits `thread.updated` when `change` changed it. Returns whether it did.
    pub async fn update_stored_thread(&self, change: ThreadChange) -> Result<bool, SinkError> {
        let thread_id = self.thread_id();
        let (stored, changed) = self.inner.store.update_thread(&self.inner.ctx, &thread_id, change).await?;
        self.adopt_thread_fields(&stored.title, &stored.status, &stored.allowed_image_domains);
        if changed {
            self.forward(&ThreadStreamEvent::ThreadUpdated { thread: stored.to_thread(Page::default()) }).await?;
        }
        Ok(changed)
    }
}

fn is_widget_update(update: &ItemUpdate) -> bool {
    matches!(
        update,
        ItemUpdate::WidgetRootUpdated { .. }
            | ItemUpdate::WidgetComponentUpdated { .. }
            | ItemUpdate::WidgetStreamingTextValueDelta { .. }
    )
}

/// Applies a `thread.item.updated` update to the item it targets, as the client applies it. Returns
/// whether it applied (an update of another item type, or of a task or component that does not exist,
/// does not).
pub(crate) fn apply_update(item: &mut ThreadItem, update: &ItemUpdate) -> bool {
    match (&mut item.kind, update) {
        (ItemKind::AssistantMessage(msg), ItemUpdate::ContentPartAdded { content_index, content })
        | (ItemKind::AssistantMessage(msg), ItemUpdate::ContentPartDone { content_index, content }) => {
            pad(&mut msg.content, *content_index);
            msg.content[*content_index] = content.clone();
            true
        }
        (ItemKind::AssistantMessage(msg), ItemUpdate::TextDelta { content_index, delta }) => {
            pad(&mut msg.content, *content_index);
            msg.content[*content_index].text.push_str(delta);
            true
        }
        (
            ItemKind::AssistantMessage(msg),
            ItemUpdate::AnnotationAdded { content_index, annotation_index, annotation },
        ) => {
            pad(&mut msg.content, *content_index);
            let anns = &mut msg.content[*content_index].annotations;
            if *annotation_index <= anns.len() {
                anns.insert(*annotation_index, annotation.clone());
            } else {
                anns.push(annotation.clone());
            }
            true
        }
        (ItemKind::Workflow(wf), ItemUpdate::WorkflowTaskAdded { task, .. }) => {
            if let Some(tasks) = wf.workflow.get_mut("tasks").and_then(|t| t.as_array_mut()) {
                tasks.push(task.clone());
                return true;
            }
            false
        }
        (ItemKind::Workflow(wf), ItemUpdate::WorkflowTaskUpdated { task_index, task }) => {
            if let Some(slot) = wf.workflow.get_mut("tasks").and_then(|t| t.get_mut(*task_index)) {
                *slot = task.clone();
                return true;
            }
            false
        }
        (ItemKind::Widget(w), ItemUpdate::WidgetRootUpdated { widget }) => {
            w.widget = widget.clone();
            true
        }
        (ItemKind::Widget(w), ItemUpdate::WidgetComponentUpdated { component_id, component }) => {
            replace_component(&mut w.widget, component_id, component)
        }
        (ItemKind::Widget(w), ItemUpdate::WidgetStreamingTextValueDelta { component_id, delta, done }) => {
            append_component_text(&mut w.widget, component_id, delta, *done)
        }
        _ => false,
    }
}

fn pad(content: &mut Vec<AssistantMessageContent>, index: usize) {
    while content.len() <= index {
        content.push(AssistantMessageContent::default());
    }
}

fn replace_component(node: &mut serde_json::Value, id: &str, component: &serde_json::Value) -> bool {
    if node.get("id").and_then(|v| v.as_str()) == Some(id) {
        *node = component.clone();
        return true;
    }
    match node.get_mut("children") {
        Some(serde_json::Value::Array(children)) => children.iter_mut().any(|c| replace_component(c, id, component)),
        Some(child @ serde_json::Value::Object(_)) => replace_component(child, id, component),
        _ => false,
    }
}

fn append_component_text(node: &mut serde_json::Value, id: &str, delta: &str, done: bool) -> bool {
    if node.get("id").and_then(|v| v.as_str()) == Some(id) {
        if let Some(obj) = node.as_object_mut() {
            let value = obj.get("value").and_then(|v| v.as_str()).unwrap_or_default().to_string() + delta;
            obj.insert("value".into(), serde_json::Value::String(value));
            obj.insert("streaming".into(), serde_json::Value::Bool(!done));
            return true;
        }
        return false;
    }
    match node.get_mut("children") {
        Some(serde_json::Value::Array(children)) => {
            children.iter_mut().any(|c| append_component_text(c, id, delta, done))
        }
        Some(child @ serde_json::Value::Object(_)) => append_component_text(child, id, delta, done),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::store::MemoryStore;

    fn progress(text: &str) -> ThreadStreamEvent {
        ThreadStreamEvent::ProgressUpdate { icon: None, text: text.into() }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_counts_as_gone_after_the_stall_timeout() {
        let (tx, mut rx) = mpsc::channel(1);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let sink = EventSink::new(store, RequestContext::default(), ThreadMetadata::new("thr_1"), tx)
            .with_stall_timeout(Duration::from_millis(100));
        sink.forward(&progress("fits")).await.unwrap();
        assert!(!sink.is_closed());

        // Nobody reads: the channel stays full, and the next event waits out the stall timeout.
        let started = Instant::now();
        let err = sink.forward(&progress("waits")).await.unwrap_err();
        assert!(matches!(err, SinkError::Disconnected), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(100), "{:?}", started.elapsed());
        // From then on the client is gone, for every clone, without waiting again.
        assert!(sink.is_closed() && sink.clone().is_closed());
        tokio::time::timeout(Duration::from_millis(50), sink.closed()).await.unwrap();
        let started = Instant::now();
        assert!(sink.forward(&progress("later")).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(50));
        // Only the first event reached the channel.
        assert!(rx.recv().await.is_some_and(|frame| frame.ends_with(b"\"text\":\"fits\"}\n\n")));
    }

    #[tokio::test]
    async fn a_slow_reader_within_the_stall_timeout_is_waited_for() {
        let (tx, mut rx) = mpsc::channel(1);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let sink = EventSink::new(store, RequestContext::default(), ThreadMetadata::new("thr_1"), tx)
            .with_stall_timeout(Duration::from_millis(500));
        let reader = tokio::spawn(async move {
            let mut frames = 0;
            while rx.recv().await.is_some() {
                frames += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            frames
        });
        for i in 0..5 {
            sink.forward(&progress(&format!("step {i}"))).await.unwrap();
        }
        assert!(!sink.is_closed());
        drop(sink);
        assert_eq!(reader.await.unwrap(), 5);
    }
}
