//! `GET /support/usage[?thread_id=]`: the caller's own model usage (tokens of every turn answered for
//! them), in total and per provider and model; with `thread_id`, only that thread's (one of the caller's
//! threads: another user's or an unknown thread is a 404). Deleted threads still count in the totals.

use axum::Json;
use axum::extract::State;
use chatkit::store::{ModelUsage, UsageTotals, sum_usage};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::thread_query::{ThreadQuery, callers_thread};
use super::{ApiError, Ctx, ErrorBody};
use crate::router::AppState;

/// The usage route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

/// The caller's model usage.
#[utoipa::path(
    get,
    path = "/support/usage",
    tag = "support",
    summary = "The caller's model usage",
    description = "Tokens consumed by the model calls of the caller's turns: input (cached included), output \
                   (reasoning included), cached and reasoning tokens, the number of turns and model calls, in \
                   total and per provider and model. With `thread_id`, one of the caller's threads only.",
    params(
        ("thread_id" = Option<String>, Query, description = "Only this thread's turns (missing or empty → all of the caller's turns)."),
    ),
    responses(
        (status = 200, description = "The usage", body = UsageResponse),
        (status = 400, description = "Undecodable query string, or a `thread_id` over 256 bytes", body = ErrorBody),
        (status = 401, description = "Not authenticated (AUTH_MODE jwt or header)", body = ErrorBody),
        (status = 404, description = "No such thread of the caller (another user's thread answers the same)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn usage(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ThreadQuery(thread_id): ThreadQuery,
) -> Result<Json<UsageResponse>, ApiError> {
    if let Some(id) = &thread_id {
        callers_thread(state.store.as_ref(), &ctx, id).await?;
    }
    let by_model = state.store.usage_by_model(&ctx, thread_id.as_deref()).await?;
    let total = sum_usage(&by_model);
    Ok(Json(UsageResponse { thread_id, total, by_model }))
}

/// Body of the usage route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    /// The thread asked about, or `null` for all of the caller's turns.
    pub thread_id: Option<String>,
    /// Sums over every provider and model.
    pub total: UsageTotals,
    /// Sums per provider and model, ordered by provider, then model.
    pub by_model: Vec<ModelUsage>,
}
