//! [`ThreadQuery`]: the `?thread_id=` of the routes that answer about one of the caller's threads, or
//! about something else when it is left out, and [`callers_thread`], which loads the thread it names.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chatkit::store::{RequestContext, Store};
use chatkit::types::ThreadMetadata;
use chatkit::types::limits::MAX_ID_BYTES;
use chatkit::types::strict_json::shorten_message;
use serde::Deserialize;

use super::ApiError;

/// The decoded `thread_id` (a missing or empty one is `None`). An undecodable query string, or an id
/// longer than any stored id can be, is a 400 before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThreadQuery(pub Option<String>);

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    thread_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ThreadQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<Raw>::from_request_parts(parts, state).await.map_err(bad_query)?;
        let thread_id = raw.thread_id.filter(|id| !id.is_empty());
        if thread_id.as_ref().is_some_and(|id| id.len() > MAX_ID_BYTES) {
            return Err(ApiError::BadRequest(format!("`thread_id` is longer than {MAX_ID_BYTES} bytes")));
        }
        Ok(ThreadQuery(thread_id))
    }
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::BadRequest(format!("invalid query string: {}", shorten_message(&e.body_text())))
}

/// The 404 text for a `thread_id` that names no thread of the caller.
const UNKNOWN_THREAD: &str = "No conversation has this thread_id.";

/// The caller's thread `thread_id`; another owner's thread or an unknown one is a 404 that does not quote
/// the id (it may be anything the client sent).
pub(crate) async fn callers_thread(
    store: &dyn Store,
    ctx: &RequestContext,
    thread_id: &str,
) -> Result<ThreadMetadata, ApiError> {
    store
        .load_thread(ctx, thread_id)
        .await
        .map_err(|e| if e.is_not_found() { ApiError::NotFound(UNKNOWN_THREAD.into()) } else { ApiError::from(e) })
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    async fn decode(uri: &str) -> Result<Option<String>, ApiError> {
        let (mut parts, ()) = Request::get(uri).body(()).unwrap().into_parts();
        ThreadQuery::from_request_parts(&mut parts, &()).await.map(|q| q.0)
    }

    #[tokio::test]
    async fn missing_and_empty_ids_are_none() {
        assert_eq!(decode("/x").await, Ok(None));
        assert_eq!(decode("/x?thread_id=").await, Ok(None));
        assert_eq!(decode("/x?other=1").await, Ok(None));
        assert_eq!(decode("/x?thread_id=thr_1").await, Ok(Some("thr_1".into())));
        assert_eq!(decode("/x?thread_id=a%20b").await, Ok(Some("a b".into())));
    }

    #[tokio::test]
    async fn long_ids_and_bad_query_strings_are_400s() {
        let long = format!("/x?thread_id={}", "a".repeat(MAX_ID_BYTES + 1));
        let err = decode(&long).await.unwrap_err();
        assert_eq!(err, ApiError::BadRequest(format!("`thread_id` is longer than {MAX_ID_BYTES} bytes")));
        assert_eq!(
            decode(&format!("/x?thread_id={}", "a".repeat(MAX_ID_BYTES))).await.map(|id| id.is_some()),
            Ok(true)
        );
        let err = decode("/x?thread_id=1&thread_id=2").await.unwrap_err();
        assert!(matches!(&err, ApiError::BadRequest(m) if m.starts_with("invalid query string: ")), "{err:?}");
    }
}
