//! The `/support/*` routes. Each module holds one resource's handlers next to the router fragment that
//! registers them (path, methods and OpenAPI description come from the handler's `#[utoipa::path]`), and
//! [`api`] merges the fragments. What the handlers share lives here: the per-request [`Ctx`] extractor
//! (owner and the base URL the client used) and a size-limited body reader; failures are [`ApiError`]s.
//!
//! Layers, fallbacks and the docs routes are added around [`api`] in [`crate::router`].

pub mod attachments;
pub mod chatkit;
pub mod customer;
mod error;
pub mod health;

use ::chatkit::store::{ANONYMOUS_OWNER, RequestContext};
use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ErrorBody, unknown_attachment};

use crate::router::AppState;

/// Every `/support/*` route with its OpenAPI description.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(chatkit::routes())
        .merge(attachments::routes())
        .merge(customer::routes())
        .merge(health::routes())
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
            BodyError::TooLarge => ApiError::PayloadTooLarge(too_large_detail.into()),
            BodyError::TimedOut => ApiError::RequestTimeout(
                "the request body stopped arriving before it was complete (BODY_READ_TIMEOUT_SECS)".into(),
            ),
            BodyError::Read(e) => ApiError::BadRequest(format!("could not read the request body: {e}")),
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
