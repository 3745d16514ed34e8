//! HTTP handlers of the `/support/*` routes (spec customer-support §1) and what they share: the JSON
//! error type ([`ApiError`], FastAPI's `{"detail": …}` shape), the per-request [`Ctx`] extractor
//! (owner + the base URL the client used) and a size-limited body reader.
//!
//! The router itself (layers, fallbacks, docs) is assembled in [`crate::server`].

pub mod attachments;
pub mod chatkit;
pub mod customer;
pub mod health;

use ::chatkit::store::{ANONYMOUS_OWNER, RequestContext};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;

/// A route-level failure answered as `status` with the JSON body `{"detail": "<text>"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable explanation (no secrets).
    pub detail: String,
}

/// The JSON body of every route-level error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in plain words.
    pub detail: String,
}

impl ApiError {
    /// An error with this status and text.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into() }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 413.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 500 with a generic text; `cause` goes to the log only.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error; the cause was logged on the server")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { detail: self.detail })).into_response()
    }
}

impl From<::chatkit::StoreError> for ApiError {
    fn from(e: ::chatkit::StoreError) -> Self {
        match e {
            ::chatkit::StoreError::Database(_) => {
                tracing::error!(error = %e, "database failure");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable; try again shortly")
            }
            other => ApiError::internal(&other),
        }
    }
}

/// The request context of a handler: the anonymous owner and the base URL the client used, from
/// `X-Forwarded-Proto` / `X-Forwarded-Host` when a proxy set them, else `http://` + `Host`.
#[derive(Debug, Clone)]
pub struct Ctx(pub RequestContext);

/// Base URL used when the request carries no usable `Host` header (set from the listen address).
#[derive(Debug, Clone)]
pub struct FallbackBaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let fallback =
            parts.extensions.get::<FallbackBaseUrl>().map(|f| f.0.as_str()).unwrap_or("http://localhost:8000");
        let host_from_uri = parts.uri.authority().map(|a| a.as_str().to_string());
        let base_url = base_url(&parts.headers, host_from_uri.as_deref(), fallback);
        Ok(Ctx(RequestContext { owner_id: ANONYMOUS_OWNER.to_string(), base_url }))
    }
}

/// `scheme://host[:port]` of the request as the client saw it (no trailing slash).
pub fn base_url(headers: &HeaderMap, uri_authority: Option<&str>, fallback: &str) -> String {
    let first = |name: &str| -> Option<String> {
        let v = headers.get(name)?.to_str().ok()?;
        let v = v.split(',').next()?.trim();
        if v.is_empty() { None } else { Some(v.to_string()) }
    };
    let scheme = match first("x-forwarded-proto").map(|s| s.to_ascii_lowercase()) {
        Some(s) if s == "https" || s == "http" => s,
        _ => "http".to_string(),
    };
    let host = first("x-forwarded-host")
        .filter(|h| valid_host(h))
        .or_else(|| first(header::HOST.as_str()).filter(|h| valid_host(h)))
        .or_else(|| uri_authority.filter(|h| valid_host(h)).map(str::to_string));
    match host {
        Some(host) => format!("{scheme}://{host}"),
        None => fallback.trim_end_matches('/').to_string(),
    }
}

/// A host header value we are willing to put into URLs: `name[:port]` or `[v6]:port`, nothing else.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is larger than the limit.
    TooLarge,
    /// The client stopped sending the body for longer than `BODY_READ_TIMEOUT_SECS`.
    TimedOut,
    /// The connection failed while reading.
    Read(String),
}

/// Reads a whole body, failing fast with [`BodyError::TooLarge`] when `Content-Length` or the bytes
/// received exceed `limit`.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(e) => {
            // axum wraps the errors of inner layers (body limit, body read timeout); look through the
            // source chain too.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
            while let Some(err) = source {
                if err.downcast_ref::<LengthLimitError>().is_some() {
                    return Err(BodyError::TooLarge);
                }
                if err.downcast_ref::<tower_http::timeout::TimeoutError>().is_some() {
                    return Err(BodyError::TimedOut);
                }
                source = err.source();
            }
            Err(BodyError::Read(e.to_string()))
        }
    }
}

impl BodyError {
    /// The answer to give: 413 with `too_large_detail`, 408 for a stalled body, or 400 for a broken upload.
    pub fn into_api_error(self, too_large_detail: impl Into<String>) -> ApiError {
        match self {
            BodyError::TooLarge => ApiError::too_large(too_large_detail),
            BodyError::TimedOut => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body stopped arriving before it was complete (BODY_READ_TIMEOUT_SECS)",
            ),
            BodyError::Read(e) => ApiError::bad_request(format!("could not read the request body: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn base_url_prefers_forwarded_headers() {
        let h = headers(&[("host", "127.0.0.1:8000")]);
        assert_eq!(base_url(&h, None, "http://x"), "http://127.0.0.1:8000");
        let h = headers(&[
            ("host", "127.0.0.1:8000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "chat.example.com"),
        ]);
        assert_eq!(base_url(&h, None, "http://x"), "https://chat.example.com");
        let h = headers(&[("host", "a.test"), ("x-forwarded-proto", "HTTPS, http")]);
        assert_eq!(base_url(&h, None, "http://x"), "https://a.test");
        let h = headers(&[("host", "evil.test/path?x"), ("x-forwarded-proto", "javascript")]);
        assert_eq!(base_url(&h, None, "http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(base_url(&HeaderMap::new(), Some("h2.test:1"), "http://x"), "http://h2.test:1");
    }

    #[tokio::test]
    async fn read_body_enforces_the_limit() {
        let ok = read_body(&HeaderMap::new(), Body::from(vec![1u8; 10]), 10).await.unwrap();
        assert_eq!(ok.len(), 10);
        let err = read_body(&HeaderMap::new(), Body::from(vec![1u8; 11]), 10).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge));
        let err = read_body(&headers(&[("content-length", "11")]), Body::from(vec![1u8; 1]), 10).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge));
    }
}
