//! `GET /support/health`: `{"status":"healthy"}` when the database answers,
//! `503 {"status":"unhealthy","detail":…}` when it does not, so load balancers stop routing to a replica
//! that lost its database.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::router::AppState;

/// The health route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Body of the health route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// `healthy` or `unhealthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Why the server is unhealthy (absent when healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Liveness and database check.
#[utoipa::path(
    get,
    path = "/support/health",
    tag = "support",
    summary = "Health check",
    description = "Answers `{\"status\":\"healthy\"}` when the server and its database work and the database \
                   accepts writes; 503 while it does not answer or cannot be written (disk full, read-only).",
    responses(
        (status = 200, description = "Healthy", body = HealthBody, example = json!({"status": "healthy"})),
        (status = 503, description = "The database does not answer or cannot be written", body = HealthBody,
         example = json!({"status": "unhealthy",
                          "detail": "the database cannot be written: the disk is full; try again once storage is writable"})),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    match state.store.check_writable().await {
        Ok(()) => Json(HealthBody { status: "healthy", detail: None }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer or cannot be written");
            let detail = if e.is_storage_failure() { e.storage_detail() } else { "database unavailable".into() };
            (StatusCode::SERVICE_UNAVAILABLE, Json(HealthBody { status: "unhealthy", detail: Some(detail) }))
                .into_response()
        }
    }
}
