//! The Chat Completions side of the mock: `POST /v1/chat/completions`, streamed as the
//! OpenAI-compatible servers do (see the crate docs), or one `chat.completion` object without
//! `stream`. The key is optional; `bad-key` is refused.

mod request;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use self::request::ChatRequest;
use self::stream::{completion_json, stream_error_frames, stream_frames};
use crate::frames::Frames;
use crate::openai::{bad_request, error_body, unauthorized};
use crate::plan::{Answer, resolve};
use crate::presets::{Form, Preset};
use crate::recording::RecordedRequest;
use crate::script::{ChatDialect, NoToolsServer};
use crate::server::{BAD_KEY, Dialect, Shared, answer, bearer_key, json_response, ok_response};

/// What OpenAI answers to an unknown request field; servers that reject `stream_options` say much
/// the same.
const STREAM_OPTIONS_REJECTED: &str = "Unrecognized request argument supplied: stream_options";

/// The Chat Completions route.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/chat/completions", post(completions))
}

/// What `server` answers to `tools` it cannot use, word for word.
fn tools_refusal(server: NoToolsServer, model: &str) -> (StatusCode, Value) {
    match server {
        NoToolsServer::Ollama => (
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": format!("registry.ollama.ai/library/{model} does not support tools"),
                             "type": "api_error", "param": null, "code": null}}),
        ),
        NoToolsServer::LlamaCpp => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}),
        ),
        NoToolsServer::Vllm => (
            StatusCode::BAD_REQUEST,
            json!({"object": "error",
                   "message": "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
                   "type": "BadRequestError", "param": null, "code": 400}),
        ),
        NoToolsServer::Openrouter => (
            StatusCode::NOT_FOUND,
            json!({"error": {"message": "No endpoints found that support tool use. To learn more about provider routing, visit: https://openrouter.ai/docs/provider-routing", "code": 404}}),
        ),
    }
}

/// `POST /v1/chat/completions`: checks the key, the options and the messages, chooses the plan,
/// answers it as chunks (`stream: true`) or as one completion object.
async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("We could not parse the JSON body of your request.");
    };
    let loaded = shared.script();
    shared.log.record(RecordedRequest::new("/v1/chat/completions".to_owned(), json.clone(), &headers, query));
    // A key is optional, but the bad one is refused.
    if bearer_key(&headers) == Some(BAD_KEY) {
        return unauthorized();
    }
    let request = ChatRequest::new(&json, body.len());
    if loaded.script.chat.reject_stream_options && json.get("stream_options").is_some() {
        return bad_request(STREAM_OPTIONS_REJECTED);
    }
    if let Some(server) = loaded.script.chat.tools_unsupported
        && json.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty())
    {
        let (status, body) = tools_refusal(server, request.model);
        return json_response(status, &body);
    }
    if loaded.script.validate_input
        && let Err(message) = request.validate()
    {
        return bad_request(&message);
    }
    let plan = resolve(&loaded, &request.summary());
    answer(plan, request.stream, &Completions { request: &request, chat: &loaded.script.chat })
}

/// The Chat Completions answers to one request, in the script's dialect.
struct Completions<'a> {
    request: &'a ChatRequest<'a>,
    chat: &'a ChatDialect,
}

impl Dialect for Completions<'_> {
    const ERROR_BODY: fn(u16, Option<&str>) -> Value = error_body;

    fn stream_frames(&self, answer: &Answer) -> Frames {
        stream_frames(answer, self.request, self.chat)
    }

    fn stream_error_frames(&self, message: &str) -> Frames {
        stream_error_frames(message, self.request)
    }

    fn whole(&self, answer: &Answer) -> Response {
        ok_response("application/json", completion_json(answer, self.request, self.chat))
    }

    /// Chat Completions fails over HTTP as the Responses API does; its streamed failures differ.
    fn preset(&self, preset: Preset) -> Form<Frames> {
        match preset.openai() {
            Form::Http(failure) => Form::Http(failure),
            _ => Form::Unavailable,
        }
    }
}
