//! The HTTP server: the [`MockServer`] handle tests and the binary hold, the state the handlers
//! share, the router that joins each provider's routes, and the response helpers they all use.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::frames::Frames;
use crate::plan::{Answer, Plan};
use crate::presets::{Form, Preset};
use crate::recording::{DEFAULT_RECORD_CAP, RecordedRequest, RequestLog};
use crate::script::{LoadedScript, Script};
use crate::{chat, control, gemini, openai};

/// Largest accepted request body (audio uploads, image data URLs).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The API key that is always rejected (to test key rejection).
pub const BAD_KEY: &str = "bad-key";

/// State shared by the handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    script: RwLock<Arc<LoadedScript>>,
    pub(crate) log: RequestLog,
}

impl Shared {
    /// The script in force; a request keeps the one it started with even if it is replaced.
    pub(crate) fn script(&self) -> Arc<LoadedScript> {
        self.script.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the script; its rule counters start again from zero.
    pub(crate) fn set_script(&self, script: Script) {
        let mut slot = self.script.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(LoadedScript::new(script));
    }
}

/// A running mock model server. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct MockServer {
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            script: RwLock::new(Arc::new(LoadedScript::new(script))),
            log: RequestLog::new(record_cap),
        });
        let app = router(shared.clone());
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
        Ok(MockServer { shared, addr, task })
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

    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.snapshot()
    }

    /// Keeps at most the last `cap` requests from now on (0 = stop recording; the fastest
    /// setting for benchmarks).
    pub fn set_record_cap(&self, cap: usize) {
        self.shared.log.set_cap(cap);
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// Replaces the script (rule counters start again from zero).
    pub fn set_script(&self, script: Script) {
        self.shared.set_script(script);
    }

    /// A copy of the current script.
    pub fn script(&self) -> Script {
        self.shared.script().script.clone()
    }
}

/// Every route: the two providers' APIs and the control routes.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(openai::routes())
        .merge(gemini::routes())
        .merge(chat::routes())
        .merge(control::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// A response with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A 200 response with a body already rendered (a JSON object or a stream of frames).
pub(crate) fn ok_response(content_type: &'static str, body: impl Into<Body>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

/// An error answer with `body` and, when set, `Retry-After` in seconds.
pub(crate) fn error_response(status: u16, body: Value, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(code, &body);
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The content type of the OpenAI-style event streams.
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// How one API writes the answers a plan asks for.
pub(crate) trait Dialect {
    /// The API's error body for a status, with a message or the API's usual text for the status.
    const ERROR_BODY: fn(u16, Option<&str>) -> Value;
    /// The content type of a streamed answer.
    fn stream_content_type(&self) -> &'static str {
        EVENT_STREAM
    }
    /// The streamed answer.
    fn stream_frames(&self, answer: &Answer) -> Frames;
    /// A stream that starts and then fails with `message`.
    fn stream_error_frames(&self, message: &str) -> Frames;
    /// The answer as one response (the request did not ask for a stream).
    fn whole(&self, answer: &Answer) -> Response;
    /// How the API fails as `preset` says: its HTTP error, or the frames of a stream ending in the
    /// failure.
    fn preset(&self, preset: Preset) -> Form<Frames>;
}

/// The response to `plan`, streamed or not as the request asked, in the words of `dialect`.
pub(crate) fn answer<D: Dialect>(plan: Plan, streaming: bool, dialect: &D) -> Response {
    match plan {
        Plan::HttpError { status, body, retry_after } => {
            let body = if body.is_null() { D::ERROR_BODY(status, None) } else { body };
            error_response(status, body, retry_after)
        }
        Plan::StreamError { message } if streaming => {
            ok_response(dialect.stream_content_type(), dialect.stream_error_frames(&message).into_body(None))
        }
        // A request that does not stream learns of the failure from an HTTP error instead.
        Plan::StreamError { message } => error_response(500, D::ERROR_BODY(500, Some(&message)), None),
        Plan::Answer(answer) if streaming => {
            ok_response(dialect.stream_content_type(), dialect.stream_frames(&answer).into_body(Some(&answer)))
        }
        Plan::Answer(answer) => dialect.whole(&answer),
        Plan::Preset(preset) => match dialect.preset(preset) {
            Form::Http(failure) => failure.into_response(),
            Form::Stream(frames) if streaming => ok_response(dialect.stream_content_type(), frames.into_body(None)),
            Form::Stream(_) => error_response(500, D::ERROR_BODY(500, None), None),
            Form::Unavailable => preset.unavailable(),
        },
    }
}

/// The key of an `Authorization: Bearer <key>` header.
pub(crate) fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether `key` is one the mock accepts: present, non-empty and not [`BAD_KEY`].
pub(crate) fn key_accepted(key: Option<&str>) -> bool {
    key.is_some_and(|key| !key.is_empty() && key != BAD_KEY)
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": {"message": "Unknown mock-llm route.", "type": "invalid_request_error", "param": null, "code": "unknown_url"}}),
    )
}
