//! `GET /support/health`: `{"status":"healthy"}` when the database answers,
//! `503 {"status":"unhealthy","detail":…}` when it does not, so load balancers stop routing to a replica
//! that lost its database.
//!
//! `GET /support/ready`: the readiness probe. `{"status":"ready"}` only while the server is serving
//! (started, its database opened and migrated, no shutdown begun) and its database answers within
//! `READY_DB_WAIT`; otherwise 503 with `starting`, `draining` or `unavailable` and why.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::readiness::Stage;
use crate::router::AppState;

/// How long the readiness probe waits for the database (probes have short timeouts of their own).
pub(crate) const READY_DB_WAIT: Duration = Duration::from_secs(2);

/// The health (liveness) and readiness routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

/// Body of the health route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct HealthBody {
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
pub(crate) async fn health(State(state): State<AppState>) -> Response {
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

/// Body of the readiness route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ReadyBody {
    /// `ready`, `starting`, `draining` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Why the server is not ready (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn not_ready(status: &'static str, detail: &str) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, Json(ReadyBody { status, detail: Some(detail.to_string()) })).into_response()
}

/// Readiness probe.
#[utoipa::path(
    get,
    path = "/support/ready",
    tag = "support",
    summary = "Readiness check",
    description = "Answers `{\"status\":\"ready\"}` while this server takes new work: it has started (database \
                   opened and migrated) and its database answers. 503 while it starts, while the database does not \
                   answer within 2 s, and from the first shutdown signal on (`draining`: answers in flight finish, \
                   new ones should go to another replica). Use it as the readiness probe and `/support/health` as \
                   the liveness probe.",
    responses(
        (status = 200, description = "Ready for traffic", body = ReadyBody, example = json!({"status": "ready"})),
        (status = 503, description = "Starting, shutting down, or the database does not answer", body = ReadyBody,
         example = json!({"status": "draining", "detail": "the server is shutting down"})),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.readiness.stage() {
        Stage::Starting => return not_ready("starting", "the server is starting"),
        Stage::Draining => return not_ready("draining", "the server is shutting down"),
        Stage::Serving => {}
    }
    match tokio::time::timeout(READY_DB_WAIT, state.store.ping()).await {
        Ok(Ok(())) => Json(ReadyBody { status: "ready", detail: None }).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the database does not answer");
            not_ready("unavailable", "the database does not answer")
        }
        Err(_) => {
            tracing::warn!(
                wait_ms = READY_DB_WAIT.as_millis() as u64,
                "readiness check: the database did not answer in time"
            );
            not_ready("unavailable", "the database did not answer in time")
        }
    }
}
