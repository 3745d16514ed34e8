//! `GET /support/customer?thread_id=` (spec customer-support §1.6): the airline profile of a thread, as
//! `{"customer": <profile>}`. A missing or empty `thread_id` means the `demo_default_thread` key; any key
//! lazily gets the default demo profile on first access.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiError;
use crate::airline::thread_key;
use crate::server::AppState;

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
        (status = 200, description = "`{\"customer\": <profile>}`", body = crate::openapi::CustomerResponse),
        (status = 400, description = "Undecodable query string", body = super::ErrorBody),
        (status = 503, description = "The database is unavailable", body = super::ErrorBody),
    )
)]
pub async fn customer(State(state): State<AppState>, query: Result<Query<CustomerQuery>, QueryRejection>) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return ApiError::bad_request(format!("invalid query string: {}", e.body_text())).into_response(),
    };
    let key = thread_key(query.thread_id.as_deref());
    match state.airline.profile(key).await {
        Ok(profile) => Json(serde_json::json!({ "customer": profile.to_json() })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
