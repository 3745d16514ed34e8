//! [`ChatKitError`]: every failure that is answered *before* a stream starts (or by a non-streaming
//! request) as an HTTP status with a JSON body `{"detail": "<clear text>", "code": "<machine code>"}`
//! in the FastAPI shape the samples use.
//!
//! Mapping (a deliberate deviation from the Python SDK, which answers every failure with a bare
//! `500 Internal Server Error`, spec §7.1): undecodable requests → 400 with the decoder's message (it lists
//! the valid request types), missing threads/items/attachments → 404, an app's `PayloadTooLarge` → 413,
//! a thread busy past the lock wait → 409, a missing service (no model key, no dictation) → 503, an upstream
//! failure → 502, anything else → 500 with a generic text (the cause is logged, never sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::AppError;
use crate::store::StoreError;
use crate::types::RequestDecodeError;

/// `code` of a body that is not a JSON object.
pub const CODE_INVALID_JSON: &str = "invalid_json";
/// `code` of a missing or unknown request `type`.
pub const CODE_INVALID_TYPE: &str = "invalid_type";
/// `code` of params that do not match the request type.
pub const CODE_INVALID_PARAMS: &str = "invalid_params";
/// `code` of any other invalid request (400).
pub const CODE_BAD_REQUEST: &str = "bad_request";
/// `code` of a missing thread, item or attachment (404).
pub const CODE_NOT_FOUND: &str = "not_found";
/// `code` of a payload over a limit (413).
pub const CODE_PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// `code` of a thread busy with another response for longer than the lock wait (409).
pub const CODE_CONFLICT: &str = "conflict";
/// `code` of a service that is not configured (503).
pub const CODE_UNAVAILABLE: &str = "unavailable";
/// `code` of a failed upstream (model provider) call (502).
pub const CODE_UPSTREAM: &str = "upstream_error";
/// `code` of an unexpected server failure (500).
pub const CODE_INTERNAL: &str = "internal_error";

/// The text sent for 500s; the real cause only goes to the log.
const INTERNAL_DETAIL: &str = "internal server error; the cause was logged on the server";

/// A failure answered as an HTTP status with `{"detail": …, "code": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ChatKitError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable explanation (no secrets, no internals for 500s).
    pub detail: String,
    /// Stable machine-readable code (one of the `CODE_*` constants).
    pub code: &'static str,
}

impl ChatKitError {
    /// An error with an explicit status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ChatKitError { status, detail: detail.into(), code }
    }

    /// 400 `bad_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, CODE_BAD_REQUEST, detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, CODE_NOT_FOUND, detail)
    }

    /// 500 `internal_error` with the generic detail; `cause` is logged, not returned.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "chatkit request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, CODE_INTERNAL, INTERNAL_DETAIL)
    }

    /// The JSON body `{"detail": …, "code": …}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "detail": self.detail, "code": self.code })
    }
}

impl From<RequestDecodeError> for ChatKitError {
    fn from(e: RequestDecodeError) -> Self {
        let code = match &e {
            RequestDecodeError::InvalidJson(_) => CODE_INVALID_JSON,
            RequestDecodeError::MissingType | RequestDecodeError::UnknownType(_) => CODE_INVALID_TYPE,
            RequestDecodeError::InvalidParams { .. } => CODE_INVALID_PARAMS,
        };
        Self::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

impl From<StoreError> for ChatKitError {
    fn from(e: StoreError) -> Self {
        if e.is_not_found() {
            return Self::not_found(e.to_string());
        }
        match e {
            StoreError::LockTimeout(_) => Self::new(StatusCode::CONFLICT, CODE_CONFLICT, e.to_string()),
            other => Self::internal(&other),
        }
    }
}

impl From<AppError> for ChatKitError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::BadRequest(m) => Self::bad_request(m),
            AppError::NotFound(m) => Self::not_found(m),
            AppError::PayloadTooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, CODE_PAYLOAD_TOO_LARGE, m),
            AppError::Unavailable(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE, m),
            AppError::Upstream { message, .. } => Self::new(StatusCode::BAD_GATEWAY, CODE_UPSTREAM, message),
            // A message the app wants shown as is; outside a stream it is a client-facing 400.
            AppError::Custom { message, .. } => Self::bad_request(message),
            AppError::Store(s) => s.into(),
            other @ (AppError::Disconnected | AppError::Internal(_)) => Self::internal(&other),
        }
    }
}

impl IntoResponse for ChatKitError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_are_400_with_codes() {
        let e: ChatKitError = RequestDecodeError::UnknownType("x".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, CODE_INVALID_TYPE);
        assert!(e.detail.contains("threads.create"), "{}", e.detail);
        let e: ChatKitError = RequestDecodeError::InvalidJson("eof".into()).into();
        assert_eq!(e.code, CODE_INVALID_JSON);
    }

    #[test]
    fn store_errors_map_to_status() {
        let e: ChatKitError = StoreError::ThreadNotFound("thr_1".into()).into();
        assert_eq!(
            (e.status, e.code, e.detail.as_str()),
            (StatusCode::NOT_FOUND, CODE_NOT_FOUND, "thread thr_1 not found")
        );
        let e: ChatKitError = StoreError::LockTimeout("thr_1".into()).into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e: ChatKitError = StoreError::Database("password=hunter2".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.detail.contains("hunter2"));
    }

    #[test]
    fn app_errors_map_to_status() {
        let e: ChatKitError = AppError::Unavailable("no key".into()).into();
        assert_eq!((e.status, e.detail.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "no key"));
        let e: ChatKitError = AppError::PayloadTooLarge("big".into()).into();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e: ChatKitError = AppError::Internal("secret".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.detail.contains("secret"));
        assert_eq!(e.body(), serde_json::json!({"detail": INTERNAL_DETAIL, "code": "internal_error"}));
    }
}
