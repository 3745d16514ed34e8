//! The `/support/*` routes. Each module holds one resource's handlers next to the router fragment that
//! registers them (path, methods and OpenAPI description come from the handler's `#[utoipa::path]`), and
//! `api` merges the fragments, the ones acting for a user behind `crate::auth::require_owner`. What the
//! handlers share lives here: the per-request `Ctx` extractor (the authenticated owner and the external
//! base URL) and a size-limited body reader; failures are `ApiError`s.
//!
//! Layers, fallbacks and the docs routes are added around `api` in [`crate::router`].

pub mod attachments;
pub mod chatkit;
pub mod customer;
mod error;
pub mod health;
mod thread_query;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;

use ::chatkit::store::RequestContext;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use utoipa_axum::router::OpenApiRouter;

pub(crate) use error::{ApiError, ErrorBody, unknown_attachment};

use crate::auth::{Authenticator, Owner};
use crate::public_url::PublicUrl;
use crate::router::AppState;

/// Every `/support/*` route with its OpenAPI description. The routes acting for a user learn who that is
/// first (401 otherwise); the attachment routes are opened by signed links instead (the browser sends no
/// Authorization header there); health and readiness are public.
pub(crate) fn api(auth: Arc<Authenticator>) -> OpenApiRouter<AppState> {
    let for_a_user = OpenApiRouter::new()
        .merge(chatkit::routes())
        .merge(customer::routes())
        .merge(usage::routes())
        .route_layer(axum::middleware::from_fn_with_state(auth, crate::auth::require_owner));
    OpenApiRouter::new().merge(for_a_user).merge(attachments::routes()).merge(health::routes())
}

/// The request context of a handler: the owner established by [`crate::auth::require_owner`] and the
/// base URL for links ([`crate::public_url::PublicUrl`]). A route without the auth layer has no owner and
/// is refused (401) rather than served as somebody.
#[derive(Debug, Clone)]
pub(crate) struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = crate::auth::AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(Owner(owner_id)) = parts.extensions.get::<Owner>().cloned() else {
            tracing::error!(path = parts.uri.path(), "route served without the authentication layer");
            return Err(crate::auth::AuthError::missing("authentication required"));
        };
        Ok(Ctx(RequestContext { owner_id, base_url: request_base_url(parts) }))
    }
}

/// The external base URL of a request, for handlers that have no authenticated owner (signed links).
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(BaseUrl(request_base_url(parts)))
    }
}

/// The external base URL for links in the answer to this request.
pub(crate) fn request_base_url(parts: &Parts) -> String {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let host_from_uri = parts.uri.authority().map(|a| a.as_str().to_string());
    match parts.extensions.get::<PublicUrl>() {
        Some(urls) => urls.base_url(&parts.headers, host_from_uri.as_deref(), peer),
        None => PublicUrl::default().base_url(&parts.headers, host_from_uri.as_deref(), peer),
    }
}

/// Shortens a client-supplied id for messages so a hostile value cannot make huge error bodies.
pub(crate) fn shown_id(id: &str) -> String {
    if id.chars().count() <= 80 { id.to_string() } else { format!("{}…", id.chars().take(80).collect::<String>()) }
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body is larger than the limit.
    TooLarge,
    /// The client stopped sending the body for longer than `BODY_READ_TIMEOUT_SECS`.
    TimedOut,
    /// The connection failed while reading.
    Read(String),
}

/// Reads a whole body, failing fast with [`BodyError::TooLarge`] when `Content-Length` or the bytes
/// received exceed `limit`.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
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
    pub(crate) fn into_api_error(self, too_large_detail: impl Into<String>) -> ApiError {
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
    use crate::testkit::headers;

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
