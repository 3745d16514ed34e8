//! `GET /support/customer?thread_id=`: the airline profile of a thread, as `{"customer": <profile>}`.
//! A missing or empty `thread_id` means the demo profile the side panel shows before a conversation exists.
//!
//! Any other `thread_id` must name a thread the caller can load: the sample answered (and stored) a fresh
//! profile for any string, so anyone could fill the database with rows under made-up keys. An unknown
//! thread is a 404 and nothing is written; a thread's profile is only read (it is stored on its first
//! change).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::thread_query::{ThreadQuery, callers_thread};
use super::{ApiError, Ctx, ErrorBody};
use crate::airline::{CustomerProfile, DEFAULT_THREAD_KEY};
use crate::router::AppState;

/// The customer route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(customer))
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
    params(
        ("thread_id" = Option<String>, Query, description = "ChatKit thread identifier (missing or empty → `demo_default_thread`)."),
    ),
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
    ThreadQuery(thread_id): ThreadQuery,
) -> Result<Json<CustomerResponse>, ApiError> {
    let customer = match thread_id {
        None => state.airline.profile(DEFAULT_THREAD_KEY).await?,
        Some(thread_id) => {
            let thread = callers_thread(state.store.as_ref(), &ctx, &thread_id).await?;
            state.airline.profile(&thread.id).await?
        }
    };
    Ok(Json(CustomerResponse { customer }))
}

/// Body of the customer route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct CustomerResponse {
    /// The thread's customer: contact and loyalty data, flight segments, bags, assistance and the timeline
    /// of changes the concierge made.
    pub customer: CustomerProfile,
}
