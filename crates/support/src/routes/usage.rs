//! `GET /support/usage[?thread_id=]`: the caller's own model usage (tokens of every turn answered for
//! them), in total and per provider and model; with `thread_id`, only that thread's (one of the caller's
//! threads: another user's or an unknown thread is a 404). Deleted threads still count in the totals.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chatkit::store::{ModelUsage, UsageTotals, sum_usage};
use chatkit::types::limits::MAX_ID_BYTES;
use chatkit::types::strict_json::shorten_message;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, Ctx, ErrorBody};
use crate::router::AppState;

/// The usage route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

/// Query string of the usage route.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Only this thread's turns (missing or empty → all of the caller's turns).
    #[serde(default)]
    pub thread_id: Option<String>,
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
    params(UsageQuery),
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
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<UsageResponse>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::BadRequest(format!("invalid query string: {}", shorten_message(&e.body_text()))))?;
    let thread_id = query.thread_id.filter(|id| !id.is_empty());
    if let Some(id) = &thread_id {
        if id.len() > MAX_ID_BYTES {
            return Err(ApiError::BadRequest(format!("`thread_id` is longer than {MAX_ID_BYTES} bytes")));
        }
        // Not the store's 404 text: it would quote the id, which may be anything the client sent.
        state.store.load_thread(&ctx, id).await.map_err(|e| {
            if e.is_not_found() { ApiError::NotFound(UNKNOWN_THREAD.into()) } else { ApiError::from(e) }
        })?;
    }
    let by_model = state.store.usage_by_model(&ctx, thread_id.as_deref()).await?;
    let total = sum_usage(&by_model).into();
    Ok(Json(UsageResponse { thread_id, total, by_model: by_model.into_iter().map(Into::into).collect() }))
}

/// The 404 text for a `thread_id` that names no thread of the caller.
const UNKNOWN_THREAD: &str = "No conversation has this thread_id.";

/// Body of the usage route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageResponse {
    /// The thread asked about, or `null` for all of the caller's turns.
    pub thread_id: Option<String>,
    /// Sums over every provider and model.
    pub total: UsageCounts,
    /// Sums per provider and model, ordered by provider, then model.
    pub by_model: Vec<ModelUsageCounts>,
}

/// Token counts summed over turns.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct UsageCounts {
    /// Turns counted.
    pub turns: u64,
    /// Model calls of those turns.
    pub model_calls: u64,
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl From<UsageTotals> for UsageCounts {
    fn from(t: UsageTotals) -> Self {
        UsageCounts {
            turns: t.turns,
            model_calls: t.model_calls,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cached_tokens: t.cached_tokens,
            reasoning_tokens: t.reasoning_tokens,
        }
    }
}

/// The usage of one provider and model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelUsageCounts {
    /// `OpenAI` or `Gemini`.
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// Its sums.
    #[serde(flatten)]
    pub counts: UsageCounts,
}

impl From<ModelUsage> for ModelUsageCounts {
    fn from(m: ModelUsage) -> Self {
        ModelUsageCounts { provider: m.provider, model: m.model, counts: m.totals.into() }
    }
}
