//! `GET /support/customer?thread_id=`: the airline profile of a thread, as `{"customer": <profile>}`.
//! A missing or empty `thread_id` means the demo profile the side panel shows before a conversation exists.
//!
//! Any other `thread_id` must name a thread the caller can load: the sample answered (and stored) a fresh
//! profile for any string, so anyone could fill the database with rows under made-up keys. An unknown
//! thread is a 404 and nothing is written; a thread's profile is only read (it is stored on its first
//! change).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chatkit::types::limits::MAX_ID_BYTES;
use chatkit::types::strict_json::shorten_message;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Ctx, ErrorBody};
use crate::airline::{CustomerProfile, DEFAULT_THREAD_KEY};
use crate::router::AppState;

/// The customer route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(customer))
}

/// Query string of the customer route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CustomerQuery {
    /// ChatKit thread identifier (missing or empty → `demo_default_thread`).
    #[serde(default)]
    pub thread_id: Option<String>,
}

/// The airline state shown in the side panel.
#[utoipa::path(
    get,
    path = "/support/customer",
    tag = "support",
    summary = "Customer profile of a thread",
    description = "The OpenSkies customer profile (segments, bags, timeline, loyalty…) kept for a ChatKit thread. \
                   Without `thread_id` the demo profile shown before any conversation is returned; an unknown \
                   thread is a 404.",
    params(CustomerQuery),
    responses(
        (status = 200, description = "The profile", body = CustomerResponse),
        (status = 400, description = "Undecodable query string, or a `thread_id` over 256 bytes", body = ErrorBody),
        (status = 401, description = "Not authenticated (AUTH_MODE jwt or header)", body = ErrorBody),
        (status = 404, description = "No such thread of the caller (another user's thread answers the same)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn customer(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    query: Result<Query<CustomerQuery>, QueryRejection>,
) -> Result<Json<CustomerResponse>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", shorten_message(&e.body_text()))))?;
    if query.thread_id.as_ref().is_some_and(|id| id.len() > MAX_ID_BYTES) {
        return Err(ApiError::BadRequest(format!("`thread_id` is longer than {MAX_ID_BYTES} bytes")));
    }
    let customer = match query.thread_id.as_deref() {
        None | Some("") => state.airline.profile(DEFAULT_THREAD_KEY).await?,
        Some(thread_id) => {
            // Not the store's 404 text: it would quote the id, which may be anything the client sent.
            let thread = state.store.load_thread(&ctx, thread_id).await.map_err(|e| {
                if e.is_not_found() { ApiError::NotFound(UNKNOWN_THREAD.into()) } else { ApiError::from(e) }
            })?;
            state.airline.profile(&thread.id).await?
        }
    };
    Ok(Json(CustomerResponse { customer }))
}

/// The 404 text for a `thread_id` that names no thread of the caller.
const UNKNOWN_THREAD: &str = "No conversation has this thread_id.";

/// Body of the customer route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct CustomerResponse {
    /// The thread's customer: contact and loyalty data, flight segments, bags, assistance and the timeline
    /// of changes the concierge made.
    pub customer: CustomerProfile,
}
