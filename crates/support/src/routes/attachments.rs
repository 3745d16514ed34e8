//! Phase 2 of the two-phase attachment upload and the attachment content route (spec customer-support
//! §1.4, §1.5, §7.1).
//!
//! `POST|PUT /support/attachments/{id}/upload` takes the bytes from the multipart field `file` (or the raw
//! body for any other content type), checks them in the sample's order (empty → 400, over the limit → 413,
//! unknown id → 404), stores them durably with [`chatkit::Store::save_attachment_data`], clears the upload
//! descriptor and answers the attachment. The preview URL stays the `…/content` URL of the attachment
//! rather than the sample's multi-megabyte `data:` URL, so later events and item lists stay small.
//! `GET /support/attachments/{id}/content` serves the bytes with the declared MIME type.
//!
//! Attachment ids are validated (`atc_` + up to 64 of `[A-Za-z0-9_-]`) before any store access.

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatkit::StoreError;
use chatkit::types::{Attachment, AttachmentKind};
use serde_json::{Map, Value};

use super::{ApiError, Ctx, read_body};
use crate::server::AppState;

/// Room allowed on top of the attachment limit for multipart framing (boundaries, part headers).
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// 400 text when the body is empty.
pub const EMPTY_PAYLOAD: &str = "Attachment payload is required.";
/// 413 text when the attachment is over the limit.
pub const TOO_LARGE: &str = "Attachments are limited to 5 MB in this demo.";
/// 400 text when a multipart body has no `file` field.
pub const MISSING_FILE_FIELD: &str = "Multipart uploads must include a 'file' field.";
/// 404 text of a created attachment whose bytes were never uploaded.
pub const NOT_UPLOADED: &str = "Attachment has not been uploaded yet.";

/// The 404 text of an unknown attachment.
pub fn unknown_attachment(id: &str) -> String {
    format!("Attachment {id} does not exist.")
}

/// Whether `id` looks like one of our attachment ids (`atc_` + 1–64 of `[A-Za-z0-9_-]`).
pub fn valid_attachment_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("atc_") else { return false };
    !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Shortens an id for messages so a hostile path cannot make huge error bodies.
fn shown_id(id: &str) -> String {
    if id.chars().count() <= 80 { id.to_string() } else { format!("{}…", id.chars().take(80).collect::<String>()) }
}

/// Uploads the bytes of an attachment created with `attachments.create`.
#[utoipa::path(
    post,
    path = "/support/attachments/{attachment_id}/upload",
    tag = "support",
    summary = "Upload attachment bytes (two-phase upload, phase 2)",
    description = "Send the file as `multipart/form-data` with a `file` field (what ChatKit does), or as the raw body \
                   with any other content type. Images up to 5 MiB (5 242 880 bytes). Also accepts `PUT`.",
    params(("attachment_id" = String, Path, description = "Id returned by `attachments.create`", example = "atc_019ab8c1f2a04d3e5b6c7a81")),
    request_body(content = crate::openapi::UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The attachment, upload descriptor cleared", body = crate::openapi::AttachmentDoc),
        (status = 400, description = "Empty payload or no `file` field", body = super::ErrorBody, example = json!({"detail": EMPTY_PAYLOAD})),
        (status = 404, description = "Unknown attachment", body = super::ErrorBody, example = json!({"detail": "Attachment atc_019ab8c1f2a04d3e5b6c7a81 does not exist."})),
        (status = 413, description = "Over 5 MiB", body = super::ErrorBody, example = json!({"detail": TOO_LARGE})),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        Err(_) => return ApiError::not_found("Attachment does not exist.").into_response(),
    };
    let limit = state.limits.max_upload_bytes;
    let raw = match read_body(&headers, body, limit.saturating_add(MULTIPART_OVERHEAD)).await {
        Ok(b) => b,
        Err(e) => return e.into_api_error(TOO_LARGE).into_response(),
    };
    let data = match file_bytes(&headers, raw).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    if data.is_empty() {
        return ApiError::bad_request(EMPTY_PAYLOAD).into_response();
    }
    if data.len() > limit {
        return ApiError::too_large(TOO_LARGE).into_response();
    }
    if !valid_attachment_id(&id) {
        return ApiError::not_found(unknown_attachment(&shown_id(&id))).into_response();
    }
    let store = &state.store;
    let mut attachment = match store.load_attachment(&ctx, &id).await {
        Ok(a) => a,
        Err(StoreError::AttachmentNotFound(_)) => return ApiError::not_found(unknown_attachment(&id)).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(e) = store.save_attachment_data(&ctx, &id, &data).await {
        return ApiError::from(e).into_response();
    }
    attachment.upload_descriptor = None;
    if let AttachmentKind::Image { preview_url } = &mut attachment.kind
        && preview_url.is_empty()
    {
        *preview_url = format!("{}/support/attachments/{id}/content", ctx.base_url);
    }
    if let Err(e) = store.save_attachment(&ctx, &attachment).await {
        return ApiError::from(e).into_response();
    }
    tracing::info!(attachment_id = %id, bytes = data.len(), "attachment uploaded");
    axum::Json(attachment_json(&attachment)).into_response()
}

/// The attachment as the sample answers it after an upload: the same keys, with `null` for the unset
/// ones (`upload_descriptor`, `thread_id`, `metadata`).
pub fn attachment_json(attachment: &Attachment) -> Value {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(attachment) else { return Value::Null };
    let mut out = Map::new();
    for key in ["id", "name", "mime_type", "upload_descriptor", "thread_id", "metadata"] {
        out.insert(key.to_string(), fields.remove(key).unwrap_or(Value::Null));
    }
    if let Some(kind) = fields.remove("type") {
        out.insert("type".to_string(), kind);
    }
    out.extend(fields);
    Value::Object(out)
}

/// The uploaded file: the `file` part of a multipart body, else the whole body.
async fn file_bytes(headers: &HeaderMap, raw: Bytes) -> Result<Bytes, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        return Ok(raw);
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| ApiError::bad_request(format!("invalid multipart content type: {e}")))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(raw) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                return field.bytes().await.map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")));
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Err(ApiError::bad_request(MISSING_FILE_FIELD)),
            Err(e) => return Err(ApiError::bad_request(format!("invalid multipart body: {e}"))),
        }
    }
}

/// The bytes of an uploaded attachment.
#[utoipa::path(
    get,
    path = "/support/attachments/{attachment_id}/content",
    tag = "support",
    summary = "Download attachment bytes",
    description = "The uploaded bytes with the MIME type declared at creation; cacheable privately for 10 minutes.",
    params(("attachment_id" = String, Path, description = "Attachment id", example = "atc_019ab8c1f2a04d3e5b6c7a81")),
    responses(
        (status = 200, description = "The raw bytes", content_type = "application/octet-stream", body = Vec<u8>,
         headers(("cache-control" = String, description = "`private, max-age=600`"),
                 ("content-disposition" = String, description = "`inline; filename=\"<name>\"`"))),
        (status = 404, description = "Unknown attachment, or not uploaded yet", body = super::ErrorBody,
         example = json!({"detail": NOT_UPLOADED})),
    )
)]
pub async fn content(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match path {
        Ok(Path(id)) => id,
        Err(_) => return ApiError::not_found("Attachment does not exist.").into_response(),
    };
    if !valid_attachment_id(&id) {
        return ApiError::not_found(unknown_attachment(&shown_id(&id))).into_response();
    }
    let store = &state.store;
    let attachment = match store.load_attachment(&ctx, &id).await {
        Ok(a) => a,
        Err(StoreError::AttachmentNotFound(_)) => return ApiError::not_found(unknown_attachment(&id)).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let data = match store.load_attachment_data(&ctx, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return ApiError::not_found(NOT_UPLOADED).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut res = Response::new(Body::from(data));
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    let mime = HeaderValue::from_str(&attachment.mime_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=600"));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&attachment.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // `Access-Control-Allow-Origin` comes from the CORS layer (`*` by default, else the configured origins).
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// `inline; filename="<ascii-safe name>"`, plus `filename*=UTF-8''…` when the name is not plain ASCII.
pub fn content_disposition(name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut value = format!("inline; filename=\"{ascii}\"");
    if ascii != name {
        let mut encoded = String::new();
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        value.push_str(&format!("; filename*=UTF-8''{encoded}"));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_ids_are_validated() {
        assert!(valid_attachment_id("atc_019ab8c1f2a04d3e5b6c7a81"));
        assert!(valid_attachment_id("atc_a-b_C"));
        assert!(!valid_attachment_id("atc_"));
        assert!(!valid_attachment_id("atc_../../etc/passwd"));
        assert!(!valid_attachment_id("msg_0123"));
        assert!(!valid_attachment_id(&format!("atc_{}", "a".repeat(65))));
    }

    #[test]
    fn content_disposition_is_safe() {
        assert_eq!(content_disposition("Paris.jpg"), "inline; filename=\"Paris.jpg\"");
        assert_eq!(content_disposition("a\"b.png"), "inline; filename=\"a_b.png\"; filename*=UTF-8''a%22b.png");
        assert_eq!(content_disposition("é.png"), "inline; filename=\"_.png\"; filename*=UTF-8''%C3%A9.png");
    }

    #[test]
    fn attachment_json_has_explicit_nulls_in_sample_order() {
        let a = Attachment {
            id: "atc_1".into(),
            name: "t.png".into(),
            mime_type: "image/png".into(),
            upload_descriptor: None,
            thread_id: None,
            kind: AttachmentKind::Image { preview_url: "http://h/support/attachments/atc_1/content".into() },
        };
        assert_eq!(
            serde_json::to_string(&attachment_json(&a)).unwrap(),
            r#"{"id":"atc_1","name":"t.png","mime_type":"image/png","upload_descriptor":null,"thread_id":null,"metadata":null,"type":"image","preview_url":"http://h/support/attachments/atc_1/content"}"#
        );
    }
}
