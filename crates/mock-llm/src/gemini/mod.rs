//! The Gemini side of the mock: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`, behind `x-goog-api-key` (or `?key=`). A request carrying audio is
//! answered with the script's transcript, as the app's dictation sends it there.

mod request;
mod response;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use self::response::{ChunkHead, JSON_CONTENT_TYPE, error_body, response_json};
use self::stream::{Framing, preset_frames, stream_error_frames, stream_frames};
use crate::frames::Frames;
use crate::plan::{Answer, Plan, resolve};
use crate::presets::{Form, Preset};
use crate::recording::RecordedRequest;
use crate::script::LoadedScript;
use crate::server::{Dialect, Shared, answer, json_response, key_accepted, ok_response};

/// The Gemini routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1beta/models/{*rest}", post(models))
}

/// Whether the request carries an accepted key: the `x-goog-api-key` header, else the `key`
/// query parameter.
fn authorized(headers: &HeaderMap, query: Option<&str>) -> bool {
    let from_header = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::trim);
    key_accepted(from_header.or_else(|| query_param(query, "key")))
}

/// The value of the query parameter `name`, as sent (not percent-decoded).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

/// A response with Google's error body for `status`.
fn error(status: StatusCode, message: Option<&str>) -> Response {
    json_response(status, &error_body(status.as_u16(), message))
}

/// `POST /v1beta/models/{model}:{method}`: checks the method, the key and the input, chooses the
/// plan, answers it streamed or whole.
async fn models(
    State(shared): State<Arc<Shared>>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, streaming)) = model_and_method(&rest) else {
        return error(StatusCode::NOT_FOUND, None);
    };
    if !authorized(&headers, query.as_deref()) {
        return error(StatusCode::UNAUTHORIZED, None);
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, Some("Invalid JSON payload received."));
    };
    let loaded = shared.script();
    if loaded.script.validate_input
        && let Err(msg) = request::validate(&json)
    {
        return error(StatusCode::BAD_REQUEST, Some(&msg));
    }
    let head = ChunkHead::new(model, body.len());
    let plan = plan_for(&loaded, &json);
    let framing = if query_param(query.as_deref(), "alt") == Some("sse") { Framing::Sse } else { Framing::JsonArray };
    shared.log.record(RecordedRequest::new(format!("/v1beta/models/{rest}"), json, &headers, query));
    answer(plan, streaming, &Generate { head: &head, framing })
}

/// Gemini's answers to one request, framed as it asked.
struct Generate<'a> {
    head: &'a ChunkHead,
    framing: Framing,
}

impl Dialect for Generate<'_> {
    const ERROR_BODY: fn(u16, Option<&str>) -> Value = error_body;

    fn stream_content_type(&self) -> &'static str {
        self.framing.content_type()
    }

    fn stream_frames(&self, answer: &Answer) -> Frames {
        stream_frames(answer, self.head, self.framing)
    }

    fn stream_error_frames(&self, message: &str) -> Frames {
        stream_error_frames(message, self.framing)
    }

    fn whole(&self, answer: &Answer) -> Response {
        ok_response(JSON_CONTENT_TYPE, response_json(answer, self.head))
    }

    fn preset(&self, preset: Preset) -> Form<Frames> {
        preset.gemini().map(|failure| preset_frames(&failure, self.head, self.framing))
    }
}

/// The model and whether the method streams, from `{model}:{method}`; `None` for another method.
fn model_and_method(path: &str) -> Option<(&str, bool)> {
    let (model, method) = path.rsplit_once(':')?;
    match method {
        "streamGenerateContent" => Some((model, true)),
        "generateContent" => Some((model, false)),
        _ => None,
    }
}

/// The transcript for a request carrying audio, else what the script says.
fn plan_for(loaded: &LoadedScript, json: &Value) -> Plan {
    if request::has_audio(json) {
        Plan::Answer(Answer { text: Some(loaded.script.transcript.clone()), ..Default::default() })
    } else {
        resolve(loaded, &request::summary(json))
    }
}
