//! How a failed `/support/*` request is answered: [`ApiError`] names what went wrong, and
//! [`ApiError::status`] is the one place that turns it into an HTTP status. The body is always JSON
//! [`ErrorBody`] (`{"detail": "<text>"}`, FastAPI's shape, which ChatKit clients and the sample expect).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatkit::StoreError;
use serde::Serialize;

/// Why a route could not answer normally. Each variant carries the text shown to the client; causes that
/// must not reach clients (database messages, panics) are logged when the error is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// The request is malformed: an empty upload, a broken multipart body, an undecodable query.
    BadRequest(String),
    /// The path names something that does not exist (an attachment, a route).
    NotFound(String),
    /// A signed attachment link that is missing, altered or expired.
    Forbidden(String),
    /// The path exists but not for this method.
    MethodNotAllowed,
    /// The client stopped sending the body before it was complete.
    RequestTimeout(String),
    /// The request conflicts with what is stored (an attachment uploaded a second time).
    Conflict(String),
    /// A body is larger than the route accepts, or than the caller's storage budget has room for.
    PayloadTooLarge(String),
    /// The caller is over a per-user limit; `Retry-After` says when trying again can work.
    TooManyRequests {
        /// What limit, and what to do.
        detail: String,
        /// Seconds until trying again can work (the `Retry-After` header).
        retry_after_secs: u64,
    },
    /// The database does not answer or cannot be written; the client may retry later.
    Unavailable(String),
    /// Anything else; the cause went to the log, the client gets a generic text.
    Internal,
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, in plain words.
    pub detail: String,
    /// Only on errors of the ChatKit protocol (`POST /support/chatkit`): a stable machine-readable reason
    /// for clients that branch on it: `invalid_json`, `invalid_type`, `invalid_params`, `bad_request`,
    /// `not_found`, `payload_too_large`, `conflict`, `lock_lost`, `already_uploaded`, `unavailable`, `upstream_error` or `internal_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Text of [`ApiError::Internal`]: says that the server knows, without saying what.
const INTERNAL_DETAIL: &str = "internal server error; the cause was logged on the server";

impl ApiError {
    /// A 500 whose `cause` goes to the log only.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        ApiError::Internal
    }

    /// The HTTP status of this error.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text of the `detail` field.
    pub(crate) fn detail(&self) -> &str {
        match self {
            ApiError::BadRequest(d)
            | ApiError::NotFound(d)
            | ApiError::Forbidden(d)
            | ApiError::RequestTimeout(d)
            | ApiError::Conflict(d)
            | ApiError::PayloadTooLarge(d)
            | ApiError::Unavailable(d)
            | ApiError::TooManyRequests { detail: d, .. } => d,
            ApiError::MethodNotAllowed => "Method Not Allowed",
            ApiError::Internal => INTERNAL_DETAIL,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { detail: self.detail().to_string(), code: None };
        let mut res = (self.status(), Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_secs, .. } = self {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AttachmentNotFound(id) => ApiError::NotFound(unknown_attachment(&id)),
            StoreError::ThreadNotFound(_) | StoreError::ItemNotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::AlreadyUploaded(_) => ApiError::Conflict(e.to_string()),
            StoreError::UploadSizeMismatch { .. } => ApiError::BadRequest(e.to_string()),
            failed if failed.is_storage_failure() => {
                tracing::error!(error = %failed, "database failure");
                ApiError::Unavailable(failed.storage_detail())
            }
            other => ApiError::internal(&other),
        }
    }
}

/// The 404 text of an unknown attachment (the sample's wording).
pub(crate) fn unknown_attachment(id: &str) -> String {
    format!("Attachment {id} does not exist.")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, serde_json::Value) {
        let res = e.into_response();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_is_its_status_with_a_detail_only_body() {
        let cases = [
            (ApiError::BadRequest("b".into()), 400, "b"),
            (ApiError::NotFound("n".into()), 404, "n"),
            (ApiError::MethodNotAllowed, 405, "Method Not Allowed"),
            (ApiError::RequestTimeout("r".into()), 408, "r"),
            (ApiError::PayloadTooLarge("t".into()), 413, "t"),
            (ApiError::Unavailable("u".into()), 503, "u"),
            (ApiError::Internal, 500, INTERNAL_DETAIL),
            (ApiError::TooManyRequests { detail: "m".into(), retry_after_secs: 3 }, 429, "m"),
        ];
        for (error, status, detail) in cases {
            assert_eq!(
                answer(error).await,
                (StatusCode::from_u16(status).unwrap(), serde_json::json!({"detail": detail}))
            );
        }
    }

    #[test]
    fn store_errors_map_to_404_503_or_500_without_leaking_database_text() {
        assert_eq!(
            ApiError::from(StoreError::AttachmentNotFound("atc_1".into())),
            ApiError::NotFound("Attachment atc_1 does not exist.".into())
        );
        assert_eq!(ApiError::from(StoreError::ThreadNotFound("thr_1".into())).status(), StatusCode::NOT_FOUND);
        let db = ApiError::from(StoreError::Database("connection refused to 10.0.0.7".into()));
        assert_eq!(db.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!db.detail().contains("10.0.0.7"), "{db:?}");
        assert_eq!(
            ApiError::from(StoreError::Unwritable(chatkit::store::UnwritableReason::ReadOnly)),
            ApiError::Unavailable(
                "the database cannot be written: it is read-only; try again once storage is writable".into()
            )
        );
        assert_eq!(ApiError::from(StoreError::Corrupt("x".into())), ApiError::Internal);
    }

    #[tokio::test]
    async fn too_many_requests_says_when_to_retry() {
        let res = ApiError::TooManyRequests { detail: "slow down".into(), retry_after_secs: 7 }.into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");
    }
}
