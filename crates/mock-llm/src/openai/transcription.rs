//! `POST /v1/audio/transcriptions`: a multipart upload (`model`, `file`) answered with the
//! script's transcript, whatever the audio.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{authorized, bad_request, unauthorized};
use crate::recording::RecordedRequest;
use crate::server::{Shared, json_response};

/// Records the form's fields (files by name, type and size) and answers `{"text": transcript}`,
/// or 400 when no non-empty `file` was sent.
pub(super) async fn transcribe(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let Ok(multipart) = multipart else {
        return bad_request("Expected a multipart/form-data body.");
    };
    let Some((fields, has_file)) = read_fields(multipart).await else {
        return bad_request("Malformed multipart body.");
    };
    shared.log.record(RecordedRequest::new(
        "/v1/audio/transcriptions".to_owned(),
        Value::Object(fields),
        &headers,
        query,
    ));
    if !has_file {
        return bad_request("Missing required parameter: 'file'.");
    }
    let text = shared.script().script.transcript.clone();
    json_response(StatusCode::OK, &json!({ "text": text }))
}

/// The form's fields as JSON (text fields as strings, files as `{filename, content_type, size}`)
/// and whether a non-empty `file` was among them; `None` when the body is not valid multipart.
async fn read_fields(mut multipart: Multipart) -> Option<(Map<String, Value>, bool)> {
    let mut fields = Map::new();
    let mut has_file = false;
    while let Some(field) = multipart.next_field().await.ok()? {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let data = field.bytes().await.ok()?;
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
    Some((fields, has_file))
}
