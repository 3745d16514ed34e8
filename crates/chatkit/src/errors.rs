//! How failures look on the wire, decided in one place.
//!
//! A failure found before a stream starts (and any failure of a non-streaming request) is answered as
//! an HTTP status with the JSON body `{"detail": "<clear text>", "code": "<machine code>"}`
//! ([`ChatKitError`]). A failure once a stream has started cannot change the status any more: it is
//! written as one `error` event and the stream ends normally ([`AppError::to_event`]).
//!
//! Statuses: an undecodable body is a 400 whose detail says what was expected (for a missing or
//! unknown `type`, every valid type); a missing thread, item or attachment is a 404; a thread busy
//! with another response past the lock wait is a 409; an app's `PayloadTooLarge` is a 413; an
//! unconfigured service (no model key, no dictation) or failing storage (a full disk, a read-only
//! database, a database that does not answer) is a 503 whose detail says which; a failed model provider call is a 502;
//! anything else is a 500 whose body says only that the cause was logged. The Python SDK answers every
//! such failure with a bare 500; a client can act on these.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::sink::SinkError;
use crate::store::StoreError;
use crate::types::{RequestDecodeError, ThreadStreamEvent};

/// A failure of the application or of the turn. Before a stream starts it becomes a [`ChatKitError`]
/// (the status each variant names); inside a stream it becomes an `error` event ([`AppError::to_event`]).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// Something referenced does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The payload is too large (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A needed service is not configured, e.g. no model key (503).
    #[error("{0}")]
    Unavailable(String),
    /// An upstream (model provider) failed (502).
    #[error("{message}")]
    Upstream {
        /// What failed, in words a user may read: never a key or a raw provider body.
        message: String,
        /// Whether retrying may help (rate limits, timeouts), shown as a retry button.
        allow_retry: bool,
    },
    /// A message shown to the user as is (`code: "custom"`).
    #[error("{message}")]
    Custom {
        /// Shown to the user as written, so already in the user's language.
        message: String,
        /// Whether the client shows a retry button.
        allow_retry: bool,
    },
    /// The client went away; nothing more can be sent.
    #[error("client disconnected")]
    Disconnected,
    /// A store call failed; a missing record is a 404, a busy thread a 409, anything else a 500.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else: a 500, or a retryable `stream.error` event; the text is only logged.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// The `error` event for a failure inside a stream. Failures a user can understand carry their text
    /// (`code: "custom"`), storage failures included (saying what is wrong with the storage, never the
    /// database's own message); internal failures become a retryable `stream.error` without text.
    pub fn to_event(&self) -> ThreadStreamEvent {
        match self {
            AppError::Custom { message, allow_retry } | AppError::Upstream { message, allow_retry } => {
                ThreadStreamEvent::custom_error(message.clone(), *allow_retry)
            }
            AppError::Unavailable(m)
            | AppError::BadRequest(m)
            | AppError::NotFound(m)
            | AppError::PayloadTooLarge(m) => ThreadStreamEvent::custom_error(m.clone(), false),
            AppError::Store(StoreError::LockTimeout(_) | StoreError::LockLost(_)) => {
                ThreadStreamEvent::custom_error(self.to_string(), true)
            }
            // The user should learn that saving failed and that retrying later may work, not see a bare
            // "something went wrong" that reads like a bug.
            AppError::Store(e) if e.is_storage_failure() => ThreadStreamEvent::custom_error(e.storage_detail(), true),
            _ => ThreadStreamEvent::stream_error(true),
        }
    }
}

impl From<SinkError> for AppError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::Disconnected => AppError::Disconnected,
            SinkError::Store(s) => AppError::Store(s),
        }
    }
}

/// `code` of a body that is not a JSON object.
pub(crate) const CODE_INVALID_JSON: &str = "invalid_json";
/// `code` of a missing or unknown request `type`.
pub(crate) const CODE_INVALID_TYPE: &str = "invalid_type";
/// `code` of params that do not match the request type.
pub(crate) const CODE_INVALID_PARAMS: &str = "invalid_params";
/// `code` of any other invalid request (400).
pub(crate) const CODE_BAD_REQUEST: &str = "bad_request";
/// `code` of a missing thread, item or attachment (404).
pub(crate) const CODE_NOT_FOUND: &str = "not_found";
/// `code` of a payload over a limit (413).
pub(crate) const CODE_PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// `code` of a thread busy with another response for longer than the lock wait (409).
pub(crate) const CODE_CONFLICT: &str = "conflict";
/// `code` of a response stopped because another one took over its thread after its database session
/// holding the thread's lock was lost (409): unlike `conflict`, this response ran, and what it saved stays.
pub(crate) const CODE_LOCK_LOST: &str = "lock_lost";
/// `code` of an attachment upload after the first (409): the bytes are written once.
pub(crate) const CODE_ALREADY_UPLOADED: &str = "already_uploaded";
/// `code` of a service that is not configured (503).
pub(crate) const CODE_UNAVAILABLE: &str = "unavailable";
/// `code` of a failed upstream (model provider) call (502).
pub(crate) const CODE_UPSTREAM: &str = "upstream_error";
/// `code` of an unexpected server failure (500).
pub(crate) const CODE_INTERNAL: &str = "internal_error";

/// The text sent for 500s; the real cause only goes to the log.
const INTERNAL_DETAIL: &str = "internal server error; the cause was logged on the server";

/// A failure answered as an HTTP status with `{"detail": …, "code": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ChatKitError {
    /// The response status (4xx or 5xx).
    pub status: StatusCode,
    /// What went wrong, in plain words: no secrets, and for a 500 no internals at all.
    pub detail: String,
    /// A stable machine-readable name of the failure, e.g. `not_found`.
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
            StoreError::LockLost(_) => Self::new(StatusCode::CONFLICT, CODE_LOCK_LOST, e.to_string()),
            StoreError::AlreadyUploaded(_) => Self::new(StatusCode::CONFLICT, CODE_ALREADY_UPLOADED, e.to_string()),
            StoreError::UploadSizeMismatch { .. } => Self::bad_request(e.to_string()),
            ref failed if failed.is_storage_failure() => {
                tracing::error!(error = %failed, "chatkit request failed: storage");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE, failed.storage_detail())
            }
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
    use crate::store::UnwritableReason;

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
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, CODE_CONFLICT));
        let e: ChatKitError = StoreError::AlreadyUploaded("atc_1".into()).into();
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, CODE_ALREADY_UPLOADED));
        let e: ChatKitError =
            StoreError::UploadSizeMismatch { attachment_id: "atc_1".into(), declared: 3, received: 10 }.into();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, CODE_BAD_REQUEST));
        assert!(e.detail.contains("10 bytes") && e.detail.contains("size 3"), "{}", e.detail);
        let e: ChatKitError = StoreError::Database("password=hunter2".into()).into();
        assert_eq!((e.status, e.code), (StatusCode::SERVICE_UNAVAILABLE, CODE_UNAVAILABLE));
        assert!(!e.detail.contains("hunter2"));
        let e: ChatKitError = StoreError::Unwritable(UnwritableReason::DiskFull).into();
        assert_eq!(
            (e.status, e.detail.as_str()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database cannot be written: the disk is full; try again once storage is writable"
            )
        );
        let event =
            serde_json::to_value(AppError::Store(StoreError::Unwritable(UnwritableReason::ReadOnly)).to_event())
                .unwrap();
        assert_eq!(
            event["message"],
            "the database cannot be written: it is read-only; try again once storage is writable"
        );
        assert_eq!(event["allow_retry"], true);
        let lost = StoreError::LockLost("thr_1".into());
        let event = serde_json::to_value(AppError::Store(StoreError::LockLost("thr_1".into())).to_event()).unwrap();
        assert_eq!((event["code"].as_str(), event["allow_retry"].as_bool()), (Some("custom"), Some(true)));
        assert_eq!(event["message"], lost.to_string());
        let e: ChatKitError = lost.into();
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, CODE_LOCK_LOST));
        let e: ChatKitError = StoreError::Corrupt("row 7".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
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
