//! The Chat Completions side of the mock: `POST /v1/chat/completions`, streamed as the
//! OpenAI-compatible servers do (see the crate docs), or one `chat.completion` object without
//! `stream`. The key is optional; `bad-key` is refused.

mod request;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use self::request::ChatRequest;
use self::stream::{completion_json, stream_error_frames, stream_frames};
use crate::openai::error_body;
use crate::plan::{Plan, resolve};
use crate::recording::RecordedRequest;
use crate::server::{BAD_KEY, Shared, error_response, json_response, ok_response, scripted_error};

/// The content type of a streamed answer.
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// What OpenAI answers to an unknown request field; servers that reject `stream_options` say much
/// the same.
const STREAM_OPTIONS_REJECTED: &str = "Unrecognized request argument supplied: stream_options";

/// The Chat Completions route.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/chat/completions", post(completions))
}

/// A key is optional, but the bad one is refused.
fn refused(headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer == Some(BAD_KEY)
}

fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, &error_body(400, Some(message)))
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
    if refused(&headers) {
        return json_response(StatusCode::UNAUTHORIZED, &error_body(401, None));
    }
    let request = ChatRequest::new(&json, body.len());
    if loaded.script.chat.reject_stream_options && json.get("stream_options").is_some() {
        return bad_request(STREAM_OPTIONS_REJECTED);
    }
    if loaded.script.validate_input
        && let Err(message) = request.validate()
    {
        return bad_request(&message);
    }
    let plan = resolve(&loaded, &request.summary());
    let chat = &loaded.script.chat;
    match plan {
        Plan::HttpError { status, body, retry_after } => scripted_error(status, body, retry_after, error_body),
        Plan::StreamError { message } if request.stream => {
            ok_response(EVENT_STREAM, stream_error_frames(&message, &request).into_body(None))
        }
        Plan::StreamError { message } => error_response(500, error_body(500, Some(&message)), None),
        Plan::Answer(answer) if request.stream => {
            ok_response(EVENT_STREAM, stream_frames(&answer, &request, chat).into_body(Some(&answer)))
        }
        Plan::Answer(answer) => ok_response("application/json", completion_json(&answer, &request, chat)),
    }
}
