//! The OpenAI side of the mock: `POST /v1/responses` (the Responses API, streamed or not) and
//! `POST /v1/audio/transcriptions`, both behind `Authorization: Bearer <key>`.

mod request;
mod response;
mod stream;
mod transcription;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

pub(crate) use self::response::error_body;

use self::request::ResponsesRequest;
use self::response::{RequestEcho, response_json};
use self::stream::{preset_frames, stream_error_frames, stream_frames};
use crate::frames::Frames;
use crate::plan::{Answer, resolve};
use crate::presets::{Form, Preset};
use crate::recording::RecordedRequest;
use crate::server::{Dialect, Shared, answer, bearer_key, json_response, key_accepted, ok_response};

/// The OpenAI routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/responses", post(responses))
        .route("/v1/audio/transcriptions", post(transcription::transcribe))
}

/// Whether the request carries an accepted `Authorization: Bearer <key>`.
fn authorized(headers: &HeaderMap) -> bool {
    key_accepted(bearer_key(headers))
}

/// The 401 the API answers to a missing or wrong key (also the Chat Completions route's).
pub(crate) fn unauthorized() -> Response {
    json_response(StatusCode::UNAUTHORIZED, &error_body(401, None))
}

/// A 400 with the API's error body and `message` (also the Chat Completions route's).
pub(crate) fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, &error_body(400, Some(message)))
}

/// `POST /v1/responses`: checks the key and the input, chooses the plan, answers it as SSE events
/// (`stream: true`) or as one response object.
async fn responses(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let Ok(mut request) = ResponsesRequest::parse(&body) else {
        return bad_request("We could not parse the JSON body of your request.");
    };
    let loaded = shared.script();
    if loaded.script.validate_input
        && let Err(msg) = request.validate()
    {
        return bad_request(&msg);
    }
    let plan = resolve(&loaded, &request.summary());
    let stream = request.stream.unwrap_or(false);
    let echo = RequestEcho::from_request(&mut request, body.len());
    // Decoding the whole body again is only worth it when someone will read the record.
    if shared.log.is_on() {
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        shared.log.record(RecordedRequest::new("/v1/responses".to_owned(), json, &headers, query));
    }
    answer(plan, stream, &Responses(&echo))
}

/// The Responses API's answers, echoing the request's settings.
struct Responses<'a>(&'a RequestEcho);

impl Dialect for Responses<'_> {
    const ERROR_BODY: fn(u16, Option<&str>) -> Value = error_body;

    fn stream_frames(&self, answer: &Answer) -> Frames {
        stream_frames(answer, self.0)
    }

    fn stream_error_frames(&self, message: &str) -> Frames {
        stream_error_frames(message, self.0)
    }

    fn whole(&self, answer: &Answer) -> Response {
        ok_response("application/json", response_json(answer, self.0))
    }

    fn preset(&self, preset: Preset) -> Form<Frames> {
        preset.openai().map(|failure| preset_frames(&failure, self.0))
    }
}
