//! Phase 2 of the two-phase attachment upload, and the route that serves an attachment's bytes.
//!
//! `POST|PUT /support/attachments/{id}/upload` takes the bytes from the multipart field `file` (or the raw
//! body for any other content type), checks them in the sample's order (empty → 400, over the limit → 413,
//! unknown id → 404), stores them durably with [`chatkit::Store::save_attachment_data`], clears the upload
//! descriptor and answers the attachment. The bytes (the `file` part of a multipart body) must be exactly
//! the size `attachments.create` declared (else 400, nothing stored), and are written once: a later upload
//! is a 409 and the first bytes stay, so what a message sent cannot be swapped afterwards. The preview URL stays the `…/content` URL of the attachment
//! rather than the sample's multi-megabyte `data:` URL, so later events and item lists stay small.
//! `GET /support/attachments/{id}/content` serves the bytes: raster images inline with their type,
//! anything else as a download.
//!
//! Both routes are opened by signed links ([`crate::signed_urls`]), not by the Authorization header the
//! browser does not send there: the link proves the owner, checked before the body is read. Attachment
//! ids are validated (`atc_` + up to 64 of `[A-Za-z0-9_-]`) before anything else.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chatkit::store::RequestContext;
use chatkit::types::strict_json::shorten_message;
use chatkit::types::{Attachment, AttachmentKind};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, BaseUrl, ErrorBody, read_body, shown_id, unknown_attachment};
use crate::router::AppState;
use crate::signed_urls::{Purpose, SignedQuery};

/// The upload and content routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload)).routes(routes!(content))
}

/// Room allowed on top of the attachment limit for multipart framing (boundaries, part headers).
pub(crate) const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// 400 text when the body is empty.
pub const EMPTY_PAYLOAD: &str = "Attachment payload is required.";
/// 413 text when the attachment is over the limit.
pub const TOO_LARGE: &str = "Attachments are limited to 5 MB in this demo.";
/// 400 text when a multipart body has no `file` field.
pub const MISSING_FILE_FIELD: &str = "Multipart uploads must include a 'file' field.";
/// 404 text of a created attachment whose bytes were never uploaded.
pub(crate) const NOT_UPLOADED: &str = "Attachment has not been uploaded yet.";
/// 404 text when the path has no usable attachment id.
const NO_SUCH_ATTACHMENT: &str = "Attachment does not exist.";

/// Whether `id` looks like one of our attachment ids (`atc_` + 1–64 of `[A-Za-z0-9_-]`).
pub(crate) fn valid_attachment_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("atc_") else { return false };
    !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Upload attachment bytes (two-phase upload, phase 2)
///
/// Send the file as `multipart/form-data` with a `file` field (what ChatKit does), or as the raw body with
/// any other content type. Images up to 5 MiB (5 242 880 bytes), exactly the size `attachments.create`
/// declared; an attachment's bytes are uploaded once (a second upload is a 409). `PUT` works the same as `POST`.
#[utoipa::path(
    method(post, put),
    path = "/support/attachments/{attachment_id}/upload",
    tag = "support",
    params(("attachment_id" = String, Path, description = "Id returned by `attachments.create`", example = "atc_019ab8c1f2a04d3e5b6c7a81"), SignedQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The attachment, upload descriptor cleared", body = Attachment),
        (status = 400, description = "Empty payload, no `file` field, or not the size `attachments.create` declared", body = ErrorBody, example = json!({"detail": EMPTY_PAYLOAD})),
        (status = 403, description = "Missing, altered or expired signed link", body = ErrorBody),
        (status = 404, description = "Unknown attachment", body = ErrorBody, example = json!({"detail": "Attachment atc_019ab8c1f2a04d3e5b6c7a81 does not exist."})),
        (status = 409, description = "The attachment's bytes were uploaded already (they are written once)", body = ErrorBody,
         example = json!({"detail": "attachment atc_019ab8c1f2a04d3e5b6c7a81 is uploaded already; its bytes cannot be replaced (create a new attachment)"})),
        (status = 408, description = "The body stopped arriving before it was complete (BODY_READ_TIMEOUT_SECS)", body = ErrorBody,
         example = json!({"detail": "the request body stopped arriving before it was complete (BODY_READ_TIMEOUT_SECS)"})),
        (status = 413, description = "Over 5 MiB, or more than the user's storage has room for (MAX_ATTACHMENT_BYTES_PER_USER)",
         body = ErrorBody, example = json!({"detail": TOO_LARGE})),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    BaseUrl(base_url): BaseUrl,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<SignedQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::NotFound(NO_SUCH_ATTACHMENT.into()))?;
    if !valid_attachment_id(&id) {
        return Err(ApiError::NotFound(unknown_attachment(&shown_id(&id))));
    }
    let owner_id = signed_owner(&state, Purpose::Upload, &id, query)?;
    let ctx = RequestContext { owner_id, base_url };
    let limit = state.limits.max_upload_bytes;
    let raw = read_body(&headers, body, limit.saturating_add(MULTIPART_OVERHEAD))
        .await
        .map_err(|e| e.into_api_error(TOO_LARGE))?;
    let data = file_bytes(&headers, raw).await?;
    if data.is_empty() {
        return Err(ApiError::BadRequest(EMPTY_PAYLOAD.into()));
    }
    if data.len() > limit {
        return Err(ApiError::PayloadTooLarge(TOO_LARGE.into()));
    }
    let store = &state.store;
    let mut attachment = store.load_attachment(&ctx, &id).await?;
    state.user_limits.check_storage(store.as_ref(), &ctx, Some(&id), data.len() as u64).await?;
    store.save_attachment_data(&ctx, &id, &data).await?;
    attachment.upload_descriptor = None;
    store.save_attachment(&ctx, &attachment).await?;
    tracing::info!(attachment_id = %id, bytes = data.len(), "attachment uploaded");
    if let AttachmentKind::Image { preview_url } = &mut attachment.kind {
        *preview_url = state.urls.preview_url(&ctx.base_url, &id, &ctx.owner_id);
    }
    Ok(Json(attachment_json(&attachment)))
}

/// The owner a signed attachment link proves, or the 403 to answer.
fn signed_owner(
    state: &AppState,
    purpose: Purpose,
    id: &str,
    query: Result<Query<SignedQuery>, QueryRejection>,
) -> Result<String, ApiError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    state.urls.verify(purpose, id, &query).map_err(|e| {
        tracing::info!(attachment_id = %id, reason = %e, "attachment link refused");
        ApiError::Forbidden(e.to_string())
    })
}

/// Multipart body of an upload: a non-empty `file` part; other parts are ignored, but every part's name must
/// be valid in a MIME part header (no control character other than tab), or the body is refused with a 400
/// before any part is read. The schema says exactly that, so a generated body that fits it is one the route
/// reads.
struct UploadForm;

/// JSON Schema pattern of the part names a multipart body may use: anything but the control characters a
/// MIME header refuses ([`part_name_char_allowed`]).
const PART_NAME_PATTERN: &str = "^[^\\u0000-\\u0008\\u000A-\\u001F\\u007F]*$";

/// Whether `c` may appear in the name of a multipart part (tab and DEL aside, header text is printable).
#[cfg(test)]
fn part_name_char_allowed(c: char) -> bool {
    c == '\t' || !c.is_ascii_control()
}

impl utoipa::PartialSchema for UploadForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let file = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .min_length(Some(1))
            .description(Some("The file's bytes (at least one)."));
        let names = ObjectBuilder::new().schema_type(Type::String).pattern(Some(PART_NAME_PATTERN));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("file", file)
            .required("file")
            .property_names(Some(names))
            .description(Some(
                "A `file` part with the bytes; any other part is ignored. Part names are header text: no \
                 control character other than tab.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for UploadForm {}

/// The bytes of a file, as they were uploaded.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct FileBytes(Vec<u8>);

/// The attachment as the sample answers it after an upload: the same keys, with `null` for the unset
/// ones (`upload_descriptor`, `thread_id`, `metadata`).
pub(crate) fn attachment_json(attachment: &Attachment) -> Value {
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
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        ApiError::BadRequest(format!("invalid multipart content type: {}", shorten_message(&e.to_string())))
    })?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(raw) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                return field.bytes().await.map_err(|e| {
                    ApiError::BadRequest(format!("invalid multipart body: {}", shorten_message(&e.to_string())))
                });
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Err(ApiError::BadRequest(MISSING_FILE_FIELD.into())),
            Err(e) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid multipart body: {}",
                    shorten_message(&e.to_string())
                )));
            }
        }
    }
}

/// Download attachment bytes
///
/// The uploaded bytes with the MIME type declared at creation (one of the image types
/// `attachments.create` accepts; any other type is served as a download); cacheable privately for 10 minutes.
#[utoipa::path(
    get,
    path = "/support/attachments/{attachment_id}/content",
    tag = "support",
    params(("attachment_id" = String, Path, description = "Attachment id", example = "atc_019ab8c1f2a04d3e5b6c7a81"), SignedQuery),
    responses(
        (status = 200, description = "The raw bytes",
         content((FileBytes = "image/png"), (FileBytes = "image/jpeg"), (FileBytes = "image/webp"), (FileBytes = "image/gif")),
         headers(("cache-control" = String, description = "`private, max-age=600`"),
                 ("content-disposition" = String, description = "`inline; filename=\"<name>\"`"))),
        (status = 403, description = "Missing, altered or expired signed link", body = ErrorBody),
        (status = 404, description = "Unknown attachment, or not uploaded yet", body = ErrorBody,
         example = json!({"detail": NOT_UPLOADED})),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn content(
    State(state): State<AppState>,
    BaseUrl(base_url): BaseUrl,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<SignedQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::NotFound(NO_SUCH_ATTACHMENT.into()))?;
    if !valid_attachment_id(&id) {
        return Err(ApiError::NotFound(unknown_attachment(&shown_id(&id))));
    }
    let owner_id = signed_owner(&state, Purpose::Preview, &id, query)?;
    let ctx = RequestContext { owner_id, base_url };
    let store = &state.store;
    let attachment = store.load_attachment(&ctx, &id).await?;
    let data = store.load_attachment_data(&ctx, &id).await?.ok_or_else(|| ApiError::NotFound(NOT_UPLOADED.into()))?;
    let mut res = Response::new(Body::from(data));
    *res.status_mut() = StatusCode::OK;
    let h = res.headers_mut();
    // Only image types a browser renders without running anything are served as themselves and inline;
    // anything else (HTML, SVG, XML, unknown) is an opaque download, so an upload can never run script
    // on this origin.
    let inline = inline_type(&attachment.mime_type);
    let mime = inline.map(HeaderValue::from_static).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=600"));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&attachment.name, inline.is_some())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // `Access-Control-Allow-Origin` comes from the CORS layer (`*` by default, else the configured origins).
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(res)
}

/// The declared type when it is an image type that is safe to render inline.
pub(crate) fn inline_type(mime_type: &str) -> Option<&'static str> {
    let media_type = mime_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    INLINE_TYPES.into_iter().find(|t| *t == media_type)
}

/// Types served inline (raster images; SVG is excluded: it can carry script).
const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// `inline` (or `attachment`) `; filename="<ascii-safe name>"`, plus `filename*=UTF-8''…` when the name is
/// not plain ASCII.
pub(crate) fn content_disposition(name: &str, inline: bool) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let kind = if inline { "inline" } else { "attachment" };
    let mut value = format!("{kind}; filename=\"{ascii}\"");
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

    /// The part names the upload form's schema allows are exactly those the multipart parser reads: a body
    /// with an extra part of that name still yields its `file` part, any other name is a 400.
    #[tokio::test]
    async fn part_names_the_schema_allows_are_the_ones_the_parser_reads() {
        // The pattern's class is the refused ASCII characters, as ranges (no other character is refused).
        let refused: Vec<u32> =
            (0u32..0x80).filter(|&c| char::from_u32(c).is_some_and(|c| !part_name_char_allowed(c))).collect();
        let mut ranges = String::new();
        let mut start = 0;
        while start < refused.len() {
            let mut end = start;
            while end + 1 < refused.len() && refused[end + 1] == refused[end] + 1 {
                end += 1;
            }
            ranges.push_str(&format!("\\u{:04X}", refused[start]));
            if end > start {
                ranges.push_str(&format!("-\\u{:04X}", refused[end]));
            }
            start = end + 1;
        }
        assert_eq!(PART_NAME_PATTERN, format!("^[^{ranges}]*$"));
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("multipart/form-data; boundary=B"));
        let chars = (0u32..0x200).chain([0x2028, 0xFEFF, 0x1F600]).filter_map(char::from_u32);
        for c in chars {
            let body = format!(
                "--B\r\nContent-Disposition: form-data; name=\"a{c}b\"\r\n\r\nx\r\n\
                 --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nPNG!\r\n--B--\r\n"
            );
            let read = file_bytes(&headers, Bytes::from(body)).await;
            match read {
                Ok(bytes) => {
                    assert!(part_name_char_allowed(c), "{:?} is read but the schema refuses it", c);
                    assert_eq!(&bytes[..], b"PNG!");
                }
                Err(e) => {
                    assert!(!part_name_char_allowed(c), "{:?} is refused ({e:?}) but the schema allows it", c);
                    assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
                }
            }
        }
        let doc = serde_json::to_value(crate::openapi::document()).unwrap();
        let form = &doc["components"]["schemas"]["UploadForm"];
        assert_eq!(form["propertyNames"]["pattern"], PART_NAME_PATTERN);
        assert_eq!(form["required"], serde_json::json!(["file"]));
        assert_eq!(form["properties"]["file"]["minLength"], 1);
    }

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
        assert_eq!(content_disposition("Paris.jpg", true), "inline; filename=\"Paris.jpg\"");
        assert_eq!(content_disposition("a\"b.png", true), "inline; filename=\"a_b.png\"; filename*=UTF-8''a%22b.png");
        assert_eq!(content_disposition("é.png", true), "inline; filename=\"_.png\"; filename*=UTF-8''%C3%A9.png");
        assert_eq!(content_disposition("x.svg", false), "attachment; filename=\"x.svg\"");
        assert_eq!(inline_type("image/PNG; q=1"), Some("image/png"));
        for risky in ["image/svg+xml", "text/html", "application/xml", "text/xml", ""] {
            assert_eq!(inline_type(risky), None, "{risky}");
        }
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
