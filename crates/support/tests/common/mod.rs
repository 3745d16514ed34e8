//! Shared helpers of the end-to-end tests: a real server (the production router and start-up path) on
//! 127.0.0.1:0 with a temporary SQLite database and the mock model, an HTTP client, SSE parsing (whole
//! bodies, or event by event while a stream is still running), and event-summary helpers for exact
//! order assertions. [`process`] runs the real `support` binary instead.

#![allow(dead_code)]

pub(crate) mod process;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agents::SseDecoder;
use mock_llm::{Match, MockServer, Reply, Script};
use serde_json::{Value, json};
use support::config::{Config, Secret};
use support::router::AppState;
use support::startup;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A temporary folder removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A fresh empty folder under the system temp dir.
    pub(crate) fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("support-e2e-{label}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// The SQLite file of a server using [`TempDir::sqlite_url`].
    pub(crate) fn db_file(&self) -> PathBuf {
        self.0.join("chatkit.db")
    }

    /// `sqlite:///…/chatkit.db` inside the folder.
    pub(crate) fn sqlite_url(&self) -> String {
        format!("sqlite://{}/chatkit.db", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Test configuration: temp SQLite, mock model as OpenAI (when given), ephemeral port.
pub(crate) fn config(dir: &TempDir, mock: Option<&MockServer>) -> Config {
    Config {
        port: 0,
        database_url: dir.sqlite_url(),
        openai_api_key: mock.map(|_| Secret::new("test-key")),
        openai_base_url: mock.map_or_else(|| agents::DEFAULT_OPENAI_BASE_URL.into(), |m| m.openai_base_url()),
        model_max_retries: 0,
        // Below the 20 s `TestServer::stop` waits for the server to stop.
        shutdown_grace_secs: 10,
        // Exact event sequences must not depend on how fast a tool runs on a loaded machine.
        tool_progress_delay_ms: 60_000,
        ..Config::default()
    }
}

/// A running server.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// HTTP client (no proxy, no timeout surprises).
    pub client: reqwest::Client,
    /// The handler state (store, airline state, ChatKit server).
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// A plain HTTP client for tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap()
}

impl TestServer {
    /// Starts the production router built from `config` on 127.0.0.1:0.
    pub(crate) async fn start(config: Config) -> TestServer {
        let built = startup::build(&config).await.unwrap_or_else(|e| panic!("start-up failed: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let state = built.state.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            startup::serve(listener, built, shutdown).await;
        });
        TestServer { base: format!("http://{addr}"), client: client(), state, shutdown: Some(tx), task: Some(task) }
    }

    /// Starts a server on a temp SQLite database with the mock model.
    pub(crate) async fn with_mock(dir: &TempDir, mock: &MockServer) -> TestServer {
        TestServer::start(config(dir, Some(mock))).await
    }

    /// Graceful stop; waits until the server task ended.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task).await.expect("server did not stop").unwrap();
        }
    }

    /// Absolute URL of a path.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A signed upload link of an attachment of the anonymous owner (as `attachments.create` gives it).
    pub(crate) fn upload_url(&self, id: &str) -> String {
        self.state.urls.upload_url(&self.base, id, chatkit::store::ANONYMOUS_OWNER)
    }

    /// A signed content link of an attachment of the anonymous owner (as items carry it).
    pub(crate) fn content_url(&self, id: &str) -> String {
        self.state.urls.preview_url(&self.base, id, chatkit::store::ANONYMOUS_OWNER)
    }

    /// POSTs a JSON body to the ChatKit endpoint.
    pub(crate) async fn post(&self, body: &Value) -> reqwest::Response {
        self.client.post(self.url("/support/chatkit")).json(body).send().await.unwrap()
    }

    /// A non-streaming request that must answer 200 JSON.
    pub(crate) async fn json(&self, body: Value) -> Value {
        let res = self.post(&body).await;
        let status = res.status();
        let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{body} → {text}");
        assert_eq!(ct, "application/json", "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A request that must answer an error status; returns (status, JSON body).
    pub(crate) async fn error(&self, body: Value) -> (u16, Value) {
        let res = self.post(&body).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
    }

    /// A streaming request: checks the SSE headers and framing and returns the events.
    pub(crate) async fn stream(&self, body: Value) -> Vec<Value> {
        let res = self.post(&body).await;
        let status = res.status();
        let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{body} → {text}");
        assert_eq!(ct, "text/event-stream; charset=utf-8", "{text}");
        parse_sse(&text)
    }

    /// `GET /support/customer?thread_id=…` → the profile.
    pub(crate) async fn customer(&self, thread_id: &str) -> Value {
        let res =
            self.client.get(self.url("/support/customer")).query(&[("thread_id", thread_id)]).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["customer"].clone()
    }

    /// `items.list` ascending, all items (up to 100).
    pub(crate) async fn items(&self, thread_id: &str) -> Vec<Value> {
        let page = self
            .json(json!({"type": "items.list", "params": {"thread_id": thread_id, "limit": 100, "order": "asc"}}))
            .await;
        page["data"].as_array().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the mock model with a script.
pub(crate) async fn mock(script: Script) -> MockServer {
    MockServer::start(script).await.unwrap()
}

/// The mock model's answer to "Book a trip to Paris": the flight-options widget.
pub(crate) fn booking_script() -> Script {
    Script::new().on(
        Match::user_text("Book a trip to Paris"),
        Reply::tool_call(
            "flight_option_list",
            json!({"destination": "CDG", "depart_date": "2025-11-03", "return_date": "2025-11-10", "cabin": "business", "origin": null}),
        ),
    )
}

/// Posts `body` as a chat request over a raw socket with a tiny receive buffer and reads until
/// `needle` was seen; the socket is returned unread from then on (a client that stopped reading).
pub(crate) async fn open_unread_stream(addr: &str, body: &Value, needle: &str) -> (TcpStream, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "POST /support/chatkit HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    (stream, String::from_utf8_lossy(&seen).into_owned())
}

/// Decodes a complete SSE body with the client's decoder (`agents::SseDecoder`), asserting the exact
/// framing the server writes: each event one `data: <single-line json>\n\n` frame, nothing else.
pub(crate) fn parse_sse(text: &str) -> Vec<Value> {
    let mut decoder = SseDecoder::default();
    let mut data = VecDeque::new();
    decoder.feed(text.as_bytes(), &mut data).unwrap();
    let framed: String = data.iter().map(|d| format!("data: {d}\n\n")).collect();
    assert_eq!(text, framed, "not `data: <single-line json>` frames each ended by a blank line");
    data.iter().map(|d| parse_event(d)).collect()
}

/// The JSON of one event's `data`.
fn parse_event(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("bad JSON {data}: {e}"))
}

/// Reads SSE events one by one while the response is still streaming.
pub(crate) struct SseReader {
    res: reqwest::Response,
    decoder: SseDecoder,
    events: VecDeque<String>,
    /// Whether the body ended with an error (connection lost mid-stream) rather than cleanly.
    pub broken: bool,
}

impl SseReader {
    /// Wraps a 200 `text/event-stream` response.
    pub(crate) fn new(res: reqwest::Response) -> SseReader {
        assert_eq!(res.status(), 200);
        SseReader { res, decoder: SseDecoder::default(), events: VecDeque::new(), broken: false }
    }

    /// The next event; `None` at the end of the stream or when the connection broke.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(data) = self.events.pop_front() {
                assert!(!data.contains('\n'), "multi-line event {data:?}");
                return Some(parse_event(&data));
            }
            match self.res.chunk().await {
                Ok(Some(bytes)) => self.decoder.feed(&bytes, &mut self.events).unwrap(),
                Ok(None) => return None,
                Err(_) => {
                    self.broken = true;
                    return None;
                }
            }
        }
    }
}

/// One short label per event: `type`, plus the item type for item events, the update type for
/// `thread.item.updated`, the effect name for `client_effect`, the code for `error`.
pub(crate) fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let t = e["type"].as_str().unwrap_or("?");
            match t {
                "thread.item.added" | "thread.item.done" | "thread.item.replaced" => {
                    format!("{t}:{}", e["item"]["type"].as_str().unwrap_or("?"))
                }
                "thread.item.updated" => format!("{t}:{}", e["update"]["type"].as_str().unwrap_or("?")),
                "client_effect" => format!("{t}:{}", e["name"].as_str().unwrap_or("?")),
                "error" => format!("{t}:{}", e["code"].as_str().unwrap_or("?")),
                _ => t.to_string(),
            }
        })
        .collect()
}

/// The labels of the standard text-message events (`thread.item.added` … `thread.item.done`) for a
/// reply streamed as `deltas` text deltas.
pub(crate) fn text_message_kinds(deltas: usize) -> Vec<String> {
    let mut out = vec![
        "thread.item.added:assistant_message".to_string(),
        "thread.item.updated:assistant_message.content_part.added".to_string(),
    ];
    out.extend(std::iter::repeat_n(
        "thread.item.updated:assistant_message.content_part.text_delta".to_string(),
        deltas,
    ));
    out.push("thread.item.updated:assistant_message.content_part.done".to_string());
    out.push("thread.item.done:assistant_message".to_string());
    out
}

/// The number of text deltas the mock streams for `text` (one per word).
pub(crate) fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Texts of the assistant messages that were `thread.item.done` in a stream.
pub(crate) fn assistant_texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == "assistant_message")
        .map(|e| e["item"]["content"][0]["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The user message input of a request.
pub(crate) fn message(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

/// `threads.create` with a text.
pub(crate) fn create(text: &str) -> Value {
    json!({"type": "threads.create", "params": {"input": message(text)}})
}

/// `threads.add_user_message`.
pub(crate) fn add_message(thread_id: &str, text: &str) -> Value {
    json!({"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": message(text)}})
}

/// `threads.custom_action`.
pub(crate) fn action(thread_id: &str, item_id: Option<&str>, action: Value) -> Value {
    json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": item_id, "action": action}})
}

/// The thread id from a `threads.create` stream.
pub(crate) fn thread_id_of(events: &[Value]) -> String {
    assert_eq!(events[0]["type"], "thread.created", "{events:?}");
    events[0]["thread"]["id"].as_str().unwrap().to_string()
}

/// Finds a free port and returns it (the listener is closed, so it is free right after).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// --- Scenario helpers -------------------------------------------------------------------------------

/// The model requests (Responses API) the mock received, oldest first.
pub(crate) fn model_requests(mock: &MockServer) -> Vec<Value> {
    mock.requests().into_iter().filter(|r| r.path == "/v1/responses").map(|r| r.body).collect()
}

/// The last `function_call_output` of a model request.
pub(crate) fn last_tool_output(request: &Value) -> String {
    let input = request["input"].as_array().unwrap();
    let last = input.last().unwrap();
    assert_eq!(last["type"], "function_call_output", "{last}");
    last["output"].as_str().unwrap().to_string()
}

/// Every `input_text` of user messages in a model request.
pub(crate) fn user_texts(request: &Value) -> Vec<String> {
    request["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "user")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["type"] == "input_text")
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `[thread.created, user done, stream_options]`.
pub(crate) fn create_prefix() -> Vec<String> {
    strings(&["thread.created", "thread.item.done:user_message", "stream_options"])
}

/// `[user done, stream_options]`.
pub(crate) fn add_prefix() -> Vec<String> {
    strings(&["thread.item.done:user_message", "stream_options"])
}

pub(crate) fn concat(parts: &[Vec<String>]) -> Vec<String> {
    parts.concat()
}

/// The label of the effect a tool that changed the customer's profile sends.
pub(crate) const PROFILE_UPDATE: &str = "client_effect:customer_profile/update";

/// The labels of a `threads.create` turn: [`create_prefix`], `effects`, the streamed `reply`, then the
/// title (`thread.updated`).
pub(crate) fn new_thread_kinds(effects: &[&str], reply: &str) -> Vec<String> {
    concat(&[create_prefix(), strings(effects), text_message_kinds(word_count(reply)), strings(&["thread.updated"])])
}

/// The labels of a later `threads.add_user_message` turn: [`add_prefix`], `effects`, then the streamed
/// `reply` (no title event).
pub(crate) fn next_turn_kinds(effects: &[&str], reply: &str) -> Vec<String> {
    concat(&[add_prefix(), strings(effects), text_message_kinds(word_count(reply))])
}

pub(crate) async fn setup(script: Script) -> (TempDir, MockServer, TestServer) {
    let dir = TempDir::new("scenario");
    let mock = mock(script).await;
    let server = TestServer::with_mock(&dir, &mock).await;
    (dir, mock, server)
}

/// The default demo profile as a fresh thread sees it (timestamps aside).
pub(crate) fn assert_untouched(profile: &Value) {
    assert_eq!(profile["segments"][0]["seat"], "14A");
    assert_eq!(profile["segments"][1]["seat"], "15C");
    assert_eq!(profile["segments"].as_array().unwrap().len(), 2);
    assert_eq!(profile["bags_checked"], 0);
    assert_eq!(profile["special_assistance"], Value::Null);
    assert_eq!(profile["timeline"].as_array().unwrap().len(), 3);
    assert_eq!(profile["timeline"][0]["entry"], "Added note: enjoys single-origin drip coffee.");
}

/// Validates each value against chatkit-python's `type_name` (`ThreadStreamEvent`, `ThreadItem`) when
/// `CHATKIT_PYTHON` names a Python with `openai-chatkit` installed; skipped without it.
pub(crate) fn validate_with_chatkit_python(type_name: &str, values: &[Value]) {
    let Some(python) = std::env::var_os("CHATKIT_PYTHON") else { return };
    let check = format!(
        "import json, sys\nfrom pydantic import TypeAdapter\nfrom chatkit.types import {type_name}\n\
         a = TypeAdapter({type_name})\nfor line in sys.stdin:\n    a.validate_python(json.loads(line))\n"
    );
    let mut child = std::process::Command::new(python)
        .args(["-c", &check])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("CHATKIT_PYTHON runs");
    let lines: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "chatkit-python rejected a {type_name}: {}", String::from_utf8_lossy(&out.stderr));
}
