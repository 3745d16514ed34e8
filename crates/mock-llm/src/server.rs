//! The HTTP server: routes, authentication, request recording and the [`MockServer`] handle
//! used by tests (in-process) and by the `mock-llm` binary.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::frames::Frames;
use crate::input;
use crate::lean::OpenAiRequest;
use crate::plan::{Plan, resolve};
use crate::script::{LoadedScript, Script};
use crate::{gemini, openai};

/// How many requests are kept by default (older ones are dropped).
pub const DEFAULT_RECORD_CAP: usize = 1_000;

/// Largest accepted request body (audio uploads, image data URLs).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The API key that is always rejected (to test key rejection).
pub const BAD_KEY: &str = "bad-key";

/// One request received by the mock, for assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// URL path, e.g. `/v1/responses` or `/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
    pub path: String,
    /// Parsed JSON body; for multipart, an object of the fields (text fields as strings,
    /// files as `{"filename", "content_type", "size"}`).
    pub body: Value,
    /// Headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Raw query string, if any.
    pub query: Option<String>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// State shared by the handlers.
#[derive(Debug)]
struct Inner {
    script: RwLock<Arc<LoadedScript>>,
    requests: Mutex<VecDeque<RecordedRequest>>,
    record_cap: AtomicUsize,
}

impl Inner {
    fn script(&self) -> Arc<LoadedScript> {
        self.script.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn recording(&self) -> bool {
        self.record_cap.load(Ordering::Relaxed) > 0
    }

    fn record(&self, req: RecordedRequest) {
        let cap = self.record_cap.load(Ordering::Relaxed);
        if cap == 0 {
            return;
        }
        let mut list = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        while list.len() >= cap {
            list.pop_front();
        }
        list.push_back(req);
    }
}

/// A running mock model server. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct MockServer {
    inner: Arc<Inner>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// Starts a server with `script` on `127.0.0.1`, on a free port.
    pub async fn start(script: Script) -> std::io::Result<MockServer> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), script, DEFAULT_RECORD_CAP).await
    }

    /// Starts a server on `addr`, keeping the last `record_cap` requests (0 = none).
    pub async fn start_on(addr: SocketAddr, script: Script, record_cap: usize) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            script: RwLock::new(Arc::new(LoadedScript::new(script))),
            requests: Mutex::new(VecDeque::new()),
            record_cap: AtomicUsize::new(record_cap),
        });
        let app = router(inner.clone());
        // TCP_NODELAY: the streamed SSE frames are small writes; without it Nagle holds them back
        // until the client's delayed ACK (~40 ms) on reused connections.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "mock-llm server stopped");
            }
        });
        Ok(MockServer { inner, addr, task })
    }

    /// `http://127.0.0.1:PORT` (the Gemini base URL; OpenAI's is this + `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OpenAI base URL, `http://127.0.0.1:PORT/v1`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The Gemini base URL, `http://127.0.0.1:PORT`.
    pub fn gemini_base_url(&self) -> String {
        self.base_url()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let list = self.inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().cloned().collect()
    }

    /// Keeps at most the last `cap` requests from now on (0 = stop recording; the fastest
    /// setting for benchmarks).
    pub fn set_record_cap(&self, cap: usize) {
        self.inner.record_cap.store(cap, Ordering::Relaxed);
        let mut list = self.inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        while list.len() > cap {
            list.pop_front();
        }
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        let mut list = self.inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        list.clear();
    }

    /// Replaces the script (rule counters start again from zero).
    pub fn set_script(&self, script: Script) {
        set_script(&self.inner, script);
    }

    /// A copy of the current script.
    pub fn script(&self) -> Script {
        self.inner.script().script.clone()
    }
}

fn set_script(inner: &Inner, script: Script) {
    let mut slot = inner.script.write().unwrap_or_else(|e| e.into_inner());
    *slot = Arc::new(LoadedScript::new(script));
}

/// The routes.
fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/responses", post(openai_responses))
        .route("/v1/audio/transcriptions", post(openai_transcriptions))
        .route("/v1beta/models/{*rest}", post(gemini_models))
        .route("/_mock/requests", get(control_requests).delete(control_clear))
        .route("/_mock/script", get(control_get_script).put(control_put_script))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(inner)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn sse_response(content_type: &'static str, body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn error_response(status: u16, body: Value, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(code, &body);
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// `Authorization: Bearer <key>` present, non-empty and not [`BAD_KEY`].
fn openai_authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .is_some_and(|key| !key.is_empty() && key != BAD_KEY)
}

/// `x-goog-api-key` header or `key` query parameter present, non-empty, not [`BAD_KEY`].
fn gemini_authorized(headers: &HeaderMap, query: Option<&str>) -> bool {
    let from_header = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::trim);
    let from_query = || query?.split('&').find_map(|pair| pair.strip_prefix("key="));
    from_header.or_else(from_query).is_some_and(|key| !key.is_empty() && key != BAD_KEY)
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

async fn openai_responses(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if !openai_authorized(&headers) {
        return json_response(StatusCode::UNAUTHORIZED, &openai::error_body(401, None));
    }
    let Ok(mut request) = OpenAiRequest::parse(&body) else {
        let msg = "We could not parse the JSON body of your request.";
        return json_response(StatusCode::BAD_REQUEST, &openai::error_body(400, Some(msg)));
    };
    let loaded = inner.script();
    if loaded.script.validate_input
        && let Err(msg) = request.validate()
    {
        return json_response(StatusCode::BAD_REQUEST, &openai::error_body(400, Some(&msg)));
    }
    let plan = resolve(&loaded, &request.summary());
    let stream = request.stream.unwrap_or(false);
    let ctx = openai::Ctx::from_request(&mut request, body.len());
    if inner.recording() {
        inner.record(RecordedRequest {
            path: "/v1/responses".to_owned(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            headers: header_list(&headers),
            query,
        });
    }
    match plan {
        Plan::HttpError { status, body, retry_after } => {
            let body = if body.is_null() { openai::error_body(status, None) } else { body };
            error_response(status, body, retry_after)
        }
        Plan::StreamError { message } if stream => sse_body_openai(openai::stream_error_frames(&message, &ctx), None),
        Plan::StreamError { message } => error_response(500, openai::error_body(500, Some(&message)), None),
        Plan::Answer(answer) if stream => sse_body_openai(openai::stream_frames(&answer, &ctx), Some(&answer)),
        Plan::Answer(answer) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], openai::response_json(&answer, &ctx))
                .into_response()
        }
    }
}

fn sse_body_openai(frames: Frames, answer: Option<&crate::plan::Answer>) -> Response {
    sse_response("text/event-stream; charset=utf-8", frames.into_body(answer))
}

async fn gemini_models(
    State(inner): State<Arc<Inner>>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, method)) = rest.rsplit_once(':') else {
        return json_response(StatusCode::NOT_FOUND, &gemini::error_body(404, None));
    };
    let streaming = match method {
        "streamGenerateContent" => true,
        "generateContent" => false,
        _ => return json_response(StatusCode::NOT_FOUND, &gemini::error_body(404, None)),
    };
    if !gemini_authorized(&headers, query.as_deref()) {
        return json_response(StatusCode::UNAUTHORIZED, &gemini::error_body(401, None));
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        let msg = "Invalid JSON payload received.";
        return json_response(StatusCode::BAD_REQUEST, &gemini::error_body(400, Some(msg)));
    };
    let loaded = inner.script();
    if loaded.script.validate_input
        && let Err(msg) = input::gemini_validate(&json)
    {
        return json_response(StatusCode::BAD_REQUEST, &gemini::error_body(400, Some(&msg)));
    }
    let ctx = gemini::Ctx::new(model, body.len());
    let plan = if input::gemini_has_audio(&json) {
        Plan::Answer(crate::plan::Answer { text: Some(loaded.script.transcript.clone()), ..Default::default() })
    } else {
        resolve(&loaded, &input::gemini_summary(&json))
    };
    let framing = if query_param(query.as_deref(), "alt") == Some("sse") {
        gemini::Framing::Sse
    } else {
        gemini::Framing::JsonArray
    };
    inner.record(RecordedRequest {
        path: format!("/v1beta/models/{rest}"),
        body: json,
        headers: header_list(&headers),
        query,
    });
    let content_type = match framing {
        gemini::Framing::Sse => "text/event-stream",
        gemini::Framing::JsonArray => "application/json; charset=UTF-8",
    };
    match plan {
        Plan::HttpError { status, body, retry_after } => {
            let body = if body.is_null() { gemini::error_body(status, None) } else { body };
            error_response(status, body, retry_after)
        }
        Plan::StreamError { message } if streaming => {
            sse_response(content_type, gemini::stream_error_frames(&message, framing).into_body(None))
        }
        Plan::StreamError { message } => error_response(500, gemini::error_body(500, Some(&message)), None),
        Plan::Answer(answer) if streaming => {
            sse_response(content_type, gemini::stream_frames(&answer, &ctx, framing).into_body(Some(&answer)))
        }
        Plan::Answer(answer) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            gemini::response_json(&answer, &ctx),
        )
            .into_response(),
    }
}

async fn openai_transcriptions(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if !openai_authorized(&headers) {
        return json_response(StatusCode::UNAUTHORIZED, &openai::error_body(401, None));
    }
    let bad = |msg: &str| json_response(StatusCode::BAD_REQUEST, &openai::error_body(400, Some(msg)));
    let Ok(mut multipart) = multipart else {
        return bad("Expected a multipart/form-data body.");
    };
    let mut fields = serde_json::Map::new();
    let mut has_file = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return bad("Malformed multipart body."),
        };
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let Ok(data) = field.bytes().await else {
            return bad("Malformed multipart body.");
        };
        let value = match filename {
            Some(filename) => {
                if name == "file" {
                    has_file = !data.is_empty();
                }
                json!({"filename": filename, "content_type": content_type, "size": data.len()})
            }
            None => Value::String(String::from_utf8_lossy(&data).into_owned()),
        };
        fields.insert(name, value);
    }
    inner.record(RecordedRequest {
        path: "/v1/audio/transcriptions".to_owned(),
        body: Value::Object(fields),
        headers: header_list(&headers),
        query,
    });
    if !has_file {
        return bad("Missing required parameter: 'file'.");
    }
    let text = inner.script().script.transcript.clone();
    json_response(StatusCode::OK, &json!({ "text": text }))
}

async fn control_requests(State(inner): State<Arc<Inner>>) -> Response {
    let mut list: Vec<RecordedRequest> = {
        let guard = inner.requests.lock().unwrap_or_else(|e| e.into_inner());
        guard.iter().cloned().collect()
    };
    // Keys stay in process memory only; over HTTP they are redacted.
    for req in &mut list {
        for (name, value) in &mut req.headers {
            if name == "authorization" || name == "x-goog-api-key" {
                *value = "[redacted]".to_owned();
            }
        }
        if let Some(query) = &mut req.query
            && query.contains("key=")
        {
            *query = query
                .split('&')
                .map(|p| if p.starts_with("key=") { "key=[redacted]" } else { p })
                .collect::<Vec<_>>()
                .join("&");
        }
    }
    let body = serde_json::to_value(&list).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &body)
}

async fn control_clear(State(inner): State<Arc<Inner>>) -> StatusCode {
    inner.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    StatusCode::NO_CONTENT
}

async fn control_get_script(State(inner): State<Arc<Inner>>) -> Response {
    let body = serde_json::to_value(&inner.script().script).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &body)
}

async fn control_put_script(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Script>(&body) {
        Ok(script) => {
            set_script(&inner, script);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => json_response(StatusCode::BAD_REQUEST, &json!({"error": format!("invalid script: {err}")})),
    }
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": {"message": "Unknown mock-llm route.", "type": "invalid_request_error", "param": null, "code": "unknown_url"}}),
    )
}
