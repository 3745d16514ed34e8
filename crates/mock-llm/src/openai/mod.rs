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
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

pub(crate) use self::response::error_body;

use self::request::ResponsesRequest;
use self::response::{RequestEcho, response_json};
use self::stream::{stream_error_frames, stream_frames};
use crate::plan::{Plan, resolve};
use crate::recording::RecordedRequest;
use crate::server::{Shared, error_response, json_response, key_accepted, ok_response, scripted_error};

/// The content type of a streamed answer.
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// The OpenAI routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/responses", post(responses))
        .route("/v1/audio/transcriptions", post(transcription::transcribe))
}

/// Whether the request carries an accepted `Authorization: Bearer <key>`.
fn authorized(headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    key_accepted(bearer)
}

/// The 401 the API answers to a missing or wrong key.
fn unauthorized() -> Response {
    json_response(StatusCode::UNAUTHORIZED, &error_body(401, None))
}

/// A 400 with the API's error body and `message`.
fn bad_request(message: &str) -> Response {
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
    match plan {
        Plan::HttpError { status, body, retry_after } => scripted_error(status, body, retry_after, error_body),
        Plan::StreamError { message } if stream => {
            ok_response(EVENT_STREAM, stream_error_frames(&message, &echo).into_body(None))
        }
        Plan::StreamError { message } => error_response(500, error_body(500, Some(&message)), None),
        Plan::Answer(answer) if stream => {
            ok_response(EVENT_STREAM, stream_frames(&answer, &echo).into_body(Some(&answer)))
        }
        Plan::Answer(answer) => ok_response("application/json", response_json(&answer, &echo)),
    }
}
