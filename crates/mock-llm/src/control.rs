//! The control routes under `/_mock/`: read or clear the recorded requests, read or replace the
//! script while the server runs (the `mock-llm` binary has no other way to be steered).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::recording::RecordedRequest;
use crate::script::Script;
use crate::server::{Shared, json_response};

/// `GET|DELETE /_mock/requests`, `GET|PUT /_mock/script`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/requests", get(list_requests).delete(clear_requests))
        .route("/_mock/script", get(get_script).put(put_script))
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<RecordedRequest> = shared.log.snapshot().into_iter().map(RecordedRequest::redacted).collect();
    let body = serde_json::to_value(&list).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &body)
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.log.clear();
    StatusCode::NO_CONTENT
}

async fn get_script(State(shared): State<Arc<Shared>>) -> Response {
    let body = serde_json::to_value(&shared.script().script).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &body)
}

async fn put_script(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Script>(&body) {
        Ok(script) => {
            shared.set_script(script);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => json_response(StatusCode::BAD_REQUEST, &json!({"error": format!("invalid script: {err}")})),
    }
}
