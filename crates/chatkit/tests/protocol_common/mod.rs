//! Shared harness of the protocol tests: a real axum server on 127.0.0.1:0 serving `POST /chatkit`
//! with a [`ChatKitServer`] over a [`MemoryStore`] and a scripted [`FakeApp`], plus helpers that read
//! raw SSE bytes and normalize ids/timestamps for golden comparisons.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use chatkit::store::MemoryStore;
use chatkit::types::*;
use chatkit::{AppError, ChatKitApp, ChatKitServer, EventSink, RequestContext, Store, ids};
use serde_json::{Value, json};

/// What the fake app was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// `respond` with the input's id (None for tool output / structured input).
    Respond(Option<String>),
    /// `action` with the action type and sender id.
    Action(String, Option<String>),
    /// `thread_deleted`.
    Deleted(String),
    /// `add_feedback`.
    Feedback(Vec<String>, FeedbackKind),
}

/// A scripted [`ChatKitApp`]: behaviour is chosen by the text of the user message
/// (`respond(None)` answers "continued").
#[derive(Default)]
pub(crate) struct FakeApp {
    pub calls: Mutex<Vec<Call>>,
    pub flaky_calls: AtomicUsize,
    /// Set when a slow respond future was dropped (the model call was cancelled).
    pub slow_dropped: Arc<AtomicUsize>,
}

impl FakeApp {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// Streams an assistant message as `added` → part added → deltas → part done → `done`.
pub(crate) async fn stream_text(sink: &EventSink, words: &[&str], delay: Duration) -> Result<(), AppError> {
    let id = ids::generate(ids::MESSAGE);
    let thread_id = sink.thread_id();
    let item = ThreadItem::new(&id, &thread_id, ItemKind::AssistantMessage(AssistantMessageItem::default()));
    sink.send(ThreadStreamEvent::ItemAdded { item }).await?;
    sink.send(ThreadStreamEvent::ItemUpdated {
        item_id: id.clone(),
        update: ItemUpdate::ContentPartAdded { content_index: 0, content: AssistantMessageContent::text("") },
    })
    .await?;
    let mut text = String::new();
    for w in words {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        text.push_str(w);
        sink.send(ThreadStreamEvent::ItemUpdated {
            item_id: id.clone(),
            update: ItemUpdate::TextDelta { content_index: 0, delta: w.to_string() },
        })
        .await?;
    }
    sink.send(ThreadStreamEvent::ItemUpdated {
        item_id: id.clone(),
        update: ItemUpdate::ContentPartDone { content_index: 0, content: AssistantMessageContent::text(&text) },
    })
    .await?;
    let done = ThreadItem::new(
        &id,
        &thread_id,
        ItemKind::AssistantMessage(AssistantMessageItem { content: vec![AssistantMessageContent::text(&text)] }),
    );
    sink.send(ThreadStreamEvent::ItemDone { item: done }).await?;
    Ok(())
}

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub(crate) fn widget_json(label: &str) -> Value {
    json!({"type": "Card", "children": [{"id": "t", "type": "Text", "value": label}]})
}

#[async_trait]
impl ChatKitApp for FakeApp {
    async fn respond(
        &self,
        _thread: &ThreadMetadata,
        input: Option<&ThreadItem>,
        sink: &EventSink,
    ) -> Result<(), AppError> {
        self.calls.lock().unwrap().push(Call::Respond(input.map(|i| i.id.clone())));
        let text = match input.map(|i| &i.kind) {
            Some(ItemKind::UserMessage(m)) => m.text(),
            _ => return stream_text(sink, &["continued"], Duration::ZERO).await,
        };
        let thread_id = sink.thread_id();
        match text.as_str() {
            "hello" => {
                stream_text(sink, &["Hi"], Duration::ZERO).await?;
                sink.update_thread(|t| t.title = Some("T".into())).await?;
            }
            "widget" => {
                let item = ThreadItem::new(
                    ids::generate(ids::MESSAGE),
                    &thread_id,
                    ItemKind::Widget(WidgetItem { widget: widget_json("hi"), copy_text: Some("copy".into()) }),
                );
                sink.send(ThreadStreamEvent::ItemDone { item }).await?;
            }
            "hidden" => {
                let item = ThreadItem::new(
                    "hc_1",
                    &thread_id,
                    ItemKind::HiddenContextItem(HiddenContextItem { content: json!("secret context") }),
                );
                sink.send(ThreadStreamEvent::ItemDone { item }).await?;
                sink.send(ThreadStreamEvent::ProgressUpdate { icon: Some("search".into()), text: "working".into() })
                    .await?;
                stream_text(sink, &["visible"], Duration::ZERO).await?;
            }
            "tool" => {
                let item = ThreadItem::new(
                    ids::generate(ids::TOOL_CALL),
                    &thread_id,
                    ItemKind::ClientToolCall(ClientToolCallItem {
                        status: ClientToolCallStatus::Pending,
                        call_id: "call_1".into(),
                        name: "get_selection".into(),
                        arguments: json!({"scope": "all"}),
                        output: None,
                    }),
                );
                sink.send(ThreadStreamEvent::ItemDone { item }).await?;
            }
            "fail custom" => {
                return Err(AppError::Custom { message: "Nope!".into(), allow_retry: true });
            }
            "fail internal" => {
                return Err(AppError::Internal("database password is hunter2".into()));
            }
            "fail unavailable" => {
                return Err(AppError::Unavailable("Set OPENAI_API_KEY in .env".into()));
            }
            "panic" => panic!("scripted panic"),
            "slow" => {
                let _flag = DropFlag(self.slow_dropped.clone());
                let words: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                stream_text(sink, &words, Duration::from_millis(20)).await?;
            }
            "flaky" => {
                let n = self.flaky_calls.fetch_add(1, Ordering::SeqCst);
                let item = ThreadItem::new(
                    ids::generate(ids::MESSAGE),
                    &thread_id,
                    ItemKind::Widget(WidgetItem { widget: widget_json("partial"), copy_text: None }),
                );
                if n == 0 {
                    sink.send(ThreadStreamEvent::ItemDone { item }).await?;
                    return Err(AppError::Upstream { message: "model failed midway".into(), allow_retry: true });
                }
                stream_text(sink, &["recovered"], Duration::ZERO).await?;
            }
            other => {
                let reply = format!("echo: {other}");
                stream_text(sink, &[&reply], Duration::ZERO).await?;
            }
        }
        Ok(())
    }

    async fn action(
        &self,
        _thread: &ThreadMetadata,
        action: &Action,
        sender: Option<&ThreadItem>,
        sink: &EventSink,
    ) -> Result<(), AppError> {
        self.calls.lock().unwrap().push(Call::Action(action.kind.clone(), sender.map(|s| s.id.clone())));
        match action.kind.as_str() {
            "update_widget" => {
                let Some(sender) = sender else {
                    return Err(AppError::BadRequest("no sender".into()));
                };
                sink.send(ThreadStreamEvent::ItemUpdated {
                    item_id: sender.id.clone(),
                    update: ItemUpdate::WidgetRootUpdated { widget: widget_json("updated") },
                })
                .await?;
            }
            "effect" => {
                sink.send(ThreadStreamEvent::client_effect("confetti", action.payload.clone())).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn sync_action(
        &self,
        _thread: &ThreadMetadata,
        action: &Action,
        sender: Option<&ThreadItem>,
        _ctx: &RequestContext,
    ) -> Result<Option<ThreadItem>, AppError> {
        match (action.kind.as_str(), sender) {
            ("select", Some(sender)) => {
                let mut item = sender.clone();
                item.kind = ItemKind::Widget(WidgetItem { widget: widget_json("selected"), copy_text: None });
                Ok(Some(item))
            }
            _ => Ok(None),
        }
    }

    async fn transcribe(&self, audio: Vec<u8>, mime_type: &str, _ctx: &RequestContext) -> Result<String, AppError> {
        Ok(format!("{} bytes of {mime_type}: {}", audio.len(), String::from_utf8_lossy(&audio)))
    }

    async fn create_attachment(
        &self,
        params: &CreateAttachmentParams,
        ctx: &RequestContext,
    ) -> Result<Attachment, AppError> {
        if params.size > 1000 {
            return Err(AppError::PayloadTooLarge("attachment is larger than 1000 bytes".into()));
        }
        let id = ids::generate(ids::ATTACHMENT);
        let kind = if params.mime_type.starts_with("image/") {
            AttachmentKind::Image { preview_url: format!("{}/preview/{id}", ctx.base_url) }
        } else {
            AttachmentKind::File
        };
        Ok(Attachment {
            upload_descriptor: Some(UploadDescriptor {
                url: format!("{}/upload/{id}", ctx.base_url),
                method: "PUT".into(),
                headers: Default::default(),
            }),
            id,
            name: params.name.clone(),
            mime_type: params.mime_type.clone(),
            thread_id: None,
            kind,
        })
    }

    async fn thread_deleted(&self, thread_id: &str, _ctx: &RequestContext) -> Result<(), AppError> {
        self.calls.lock().unwrap().push(Call::Deleted(thread_id.to_string()));
        Ok(())
    }

    async fn add_feedback(
        &self,
        _thread_id: &str,
        item_ids: &[String],
        kind: FeedbackKind,
        _ctx: &RequestContext,
    ) -> Result<(), AppError> {
        self.calls.lock().unwrap().push(Call::Feedback(item_ids.to_vec(), kind));
        Ok(())
    }
}

/// The stores the end-to-end scenarios run on. Only the in-memory one: the SQL stores live in the
/// `chatkit-store` crate (which depends on this one), whose conformance suite checks that they behave
/// exactly like it, and the `support` crate's HTTP tests run these scenarios' requests on SQLite.
pub(crate) async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>)]
}

/// A running test server.
pub(crate) struct TestServer {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub app: Arc<FakeApp>,
    pub server: ChatKitServer,
    pub client: reqwest::Client,
}

async fn handler(State(server): State<ChatKitServer>, headers: HeaderMap, body: Bytes) -> Response {
    let mut ctx = RequestContext::default();
    if let Some(owner) = headers.get("x-owner").and_then(|v| v.to_str().ok()) {
        ctx.owner_id = owner.to_string();
    }
    server.handle(&body, ctx).await
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(|s| s).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(ChatKitServer) -> ChatKitServer) -> Self {
        Self::start_on(Arc::new(MemoryStore::new()), configure).await
    }

    pub(crate) async fn start_on(
        store: Arc<dyn Store>,
        configure: impl FnOnce(ChatKitServer) -> ChatKitServer,
    ) -> Self {
        let app = Arc::new(FakeApp::default());
        let server = configure(ChatKitServer::new(store.clone(), app.clone() as Arc<dyn ChatKitApp>));
        let router = Router::new().route("/chatkit", post(handler)).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        TestServer { url: format!("http://{addr}/chatkit"), store, app, server, client: reqwest::Client::new() }
    }

    pub(crate) async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client.post(&self.url).header("content-type", "application/json").body(body).send().await.unwrap()
    }

    pub(crate) async fn post(&self, body: Value) -> reqwest::Response {
        self.post_raw(serde_json::to_vec(&body).unwrap()).await
    }

    /// A non-streaming request: status and parsed JSON body (asserts the content type).
    pub(crate) async fn json(&self, body: Value) -> (u16, Value) {
        let res = self.post(body).await;
        let status = res.status().as_u16();
        assert_eq!(res.headers()["content-type"], "application/json");
        (status, res.json().await.unwrap())
    }

    /// A streaming request: asserts 200 + SSE headers and returns the raw body.
    pub(crate) async fn stream_raw(&self, body: Value) -> String {
        let res = self.post(body).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream; charset=utf-8");
        assert_eq!(res.headers()["cache-control"], "no-cache");
        assert_eq!(res.headers()["x-accel-buffering"], "no");
        res.text().await.unwrap()
    }

    /// A streaming request: the parsed events (framing checked strictly).
    pub(crate) async fn stream(&self, body: Value) -> Vec<Value> {
        parse_sse(&self.stream_raw(body).await)
    }

    /// Creates a thread with one message; returns (thread id, events).
    pub(crate) async fn create(&self, text: &str) -> (String, Vec<Value>) {
        let events = self.stream(create_req(text)).await;
        let thread_id = events[0]["thread"]["id"].as_str().unwrap().to_string();
        (thread_id, events)
    }

    /// Every stored item of a thread (hidden ones included), oldest first.
    pub(crate) async fn items(&self, thread_id: &str) -> Vec<ThreadItem> {
        self.store.load_thread_items(&RequestContext::default(), thread_id, None, 1000, Order::Asc).await.unwrap().data
    }

    pub(crate) async fn add_item(&self, thread_id: &str, id: &str, kind: ItemKind) -> ThreadItem {
        let item = ThreadItem::new(id, thread_id, kind);
        self.store.add_thread_item(&RequestContext::default(), thread_id, &item).await.unwrap();
        item
    }
}

pub(crate) fn input(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

pub(crate) fn create_req(text: &str) -> Value {
    json!({"type": "threads.create", "params": {"input": input(text)}})
}

pub(crate) fn add_req(thread_id: &str, text: &str) -> Value {
    json!({"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": input(text)}})
}

/// Splits a raw SSE body into events, asserting the exact framing: `data: <compact json>\n\n` and
/// nothing else.
pub(crate) fn parse_sse(raw: &str) -> Vec<Value> {
    assert!(raw.ends_with("\n\n") || raw.is_empty(), "body must end with a blank line: {raw:?}");
    raw.split_terminator("\n\n")
        .map(|frame| {
            let json = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("frame without `data: `: {frame:?}"));
            assert!(!json.contains('\n'), "multi-line frame: {frame:?}");
            serde_json::from_str(json).unwrap()
        })
        .collect()
}

pub(crate) fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

/// The event types `prefix`, then those of a one-word answer streamed by [`stream_text`]: the item added,
/// its content part added, the delta, the content part done, the item done.
pub(crate) fn one_word_answer_after(prefix: &[&'static str]) -> Vec<&'static str> {
    let answer =
        ["thread.item.added", "thread.item.updated", "thread.item.updated", "thread.item.updated", "thread.item.done"];
    [prefix, &answer].concat()
}

/// Replaces generated ids (`thr_`, `msg_`, `tc_`, `atc_`, `shcx_` + 24 hex) by `<prefix>_<n>` in order of
/// first appearance and every `"created_at"` value by `"<ts>"` (checking its RFC 3339 `Z` form).
pub(crate) fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut counters: HashMap<&str, usize> = HashMap::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    'outer: while i < raw.len() {
        const TS_KEY: &str = "\"created_at\":\"";
        if raw[i..].starts_with(TS_KEY) {
            let start = i + TS_KEY.len();
            let end = start + raw[start..].find('"').unwrap();
            let ts = &raw[start..end];
            assert_eq!(ts.len(), 27, "timestamp {ts} is not RFC 3339 with micros");
            assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "timestamp {ts}");
            out.push_str("\"created_at\":\"<ts>\"");
            i = end + 1;
            continue;
        }
        for prefix in ["thr", "msg", "tc", "atc", "shcx"] {
            let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let tail = &raw[i..];
            if boundary && tail.starts_with(prefix) && tail[prefix.len()..].starts_with('_') {
                let hex_start = prefix.len() + 1;
                let hex: String = tail[hex_start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
                if hex.len() == 24 {
                    let id = &tail[..hex_start + 24];
                    let replacement = seen
                        .entry(id.to_string())
                        .or_insert_with(|| {
                            let c = counters.entry(prefix).or_insert(0);
                            *c += 1;
                            format!("{prefix}_{c}")
                        })
                        .clone();
                    out.push_str(&replacement);
                    i += hex_start + 24;
                    continue 'outer;
                }
            }
        }
        let ch = raw[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Polls `f` until it returns true (at most 5 s).
pub(crate) async fn eventually<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..250 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached within 5 s");
}
