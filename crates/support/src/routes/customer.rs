//! `GET /support/customer?thread_id=`: the airline profile of a thread, as
//! `{"customer": <profile>}`. A missing or empty `thread_id` means the `demo_default_thread` key; any key
//! lazily gets the default demo profile on first access.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chatkit::types::limits::MAX_ID_BYTES;
use chatkit::types::strict_json::shorten_message;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ErrorBody};
use crate::airline::{CustomerProfile, thread_key};
use crate::router::AppState;

/// The customer route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(customer))
}

/// Query string of the customer route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
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
                   Without `thread_id` the demo profile shown before any conversation is returned.",
    params(CustomerQuery),
    responses(
        (status = 200, description = "The profile", body = CustomerResponse),
        (status = 400, description = "Undecodable query string, or a `thread_id` over 256 bytes", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub async fn customer(
    State(state): State<AppState>,
    query: Result<Query<CustomerQuery>, QueryRejection>,
) -> Result<Json<CustomerResponse>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", shorten_message(&e.body_text()))))?;
    if query.thread_id.as_ref().is_some_and(|id| id.len() > MAX_ID_BYTES) {
        return Err(ApiError::BadRequest(format!("`thread_id` is longer than {MAX_ID_BYTES} bytes")));
    }
    let key = thread_key(query.thread_id.as_deref());
    let customer = state.airline.profile(key).await?;
    Ok(Json(CustomerResponse { customer }))
}

/// Body of the customer route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerResponse {
    /// The thread's customer: contact and loyalty data, flight segments, bags, assistance and the timeline
    /// of changes the concierge made.
    pub customer: CustomerProfile,
}
