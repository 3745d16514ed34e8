//! Prometheus metrics: the exporter behind the `metrics` facade that the libraries record through, and
//! `GET /metrics`, which serves them in the Prometheus text format.
//!
//! The recorder is installed once per process ([`install_recorder`]), first thing at start-up, before
//! the store is opened and the model providers are built: the libraries keep the handles of their
//! series from first use on, and a handle made before the recorder would record nothing. Histograms get
//! fixed buckets chosen for what they measure. `/metrics` is served on the main port, or only on
//! `METRICS_ADDR` when that is set ([`serve_separately`]), and requires
//! `Authorization: Bearer <METRICS_TOKEN>` when a token is set.
//! Gauges that describe a state rather than events (the database pool) are sampled when scraped.
//! `METRICS=off` installs nothing: every recording call is then a no-op, and `/metrics` is not served.

pub mod http;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chatkit::Store;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::auth::AuthError;
use crate::config::{Secret, Switch};

/// The path metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Gauge of database pool connections by `state` (`in_use`, `idle`), sampled when scraped.
pub const DB_POOL_CONNECTIONS: &str = "db_pool_connections";
/// Gauge of the most connections the database pool opens, sampled when scraped.
pub const DB_POOL_MAX_CONNECTIONS: &str = "db_pool_max_connections";

/// How often histogram samples are folded into their buckets when nobody scrapes (bounds memory).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets of request-scale latencies (HTTP, model calls, tools), in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// Buckets of whole turns, which last seconds to minutes.
const TURN_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
/// Buckets of the time until something is shown (first event, first token): fine below 2 s.
const FIRST_OUTPUT_BUCKETS: &[f64] = &[0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0];
/// Buckets of store operations: sub-millisecond for SQLite and memory, up to seconds for lock waits.
const STORE_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Metrics settings (`METRICS*`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct MetricsSettings {
    /// Record metrics and serve them at `GET /metrics` (`on`/`off`).
    #[arg(long = "metrics", env = "METRICS", default_value = "on")]
    pub metrics: Switch,
    /// Serve `/metrics` only on this address, e.g. `127.0.0.1:9464` (default: on the main port).
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Bearer token `/metrics` requires (`Authorization: Bearer <token>`; default: none).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { metrics: Switch(true), metrics_addr: None, metrics_token: None }
    }
}

impl MetricsSettings {
    /// Checks the values: the address and token only make sense with metrics on.
    pub fn validate(&self) -> Result<(), String> {
        if !self.metrics.0 && (self.metrics_addr.is_some() || self.token().is_some()) {
            return Err("METRICS_ADDR and METRICS_TOKEN need METRICS=on".into());
        }
        Ok(())
    }

    fn token(&self) -> Option<&str> {
        self.metrics_token.as_ref().map(Secret::expose).filter(|t| !t.is_empty())
    }
}

/// What `/metrics` needs to answer: the exporter, the token (as its SHA-256, compared in full), and the
/// store whose pool it samples.
#[derive(Clone)]
pub struct MetricsEndpoint {
    handle: PrometheusHandle,
    token_digest: Option<[u8; 32]>,
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint").field("token", &self.token_digest.map(|_| "<redacted>")).finish()
    }
}

/// Installs the process's recorder unless `METRICS=off` (once; later calls change nothing). Start-up
/// calls it first, so that every series a library keeps a handle of records.
pub fn install_recorder(settings: &MetricsSettings) {
    if settings.metrics.0 {
        recorder();
    }
}

/// The `/metrics` endpoint for these settings, installing the recorder on first use; `None` with
/// `METRICS=off` (or if another recorder was installed first, which is logged).
pub fn endpoint(settings: &MetricsSettings, store: Arc<dyn Store>) -> Option<MetricsEndpoint> {
    if !settings.metrics.0 {
        return None;
    }
    let handle = recorder()?;
    let token_digest = settings.token().map(|t| Sha256::digest(t.as_bytes()).into());
    Some(MetricsEndpoint { handle, token_digest, store })
}

/// The process's recorder, installed on the first call (tests build several servers in one process;
/// they share it).
fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> Option<PrometheusHandle> {
    let built = [
        (chatkit::metrics::TURN_DURATION, TURN_BUCKETS),
        (chatkit::metrics::TIME_TO_FIRST_EVENT, FIRST_OUTPUT_BUCKETS),
        (agents::metrics::MODEL_TIME_TO_FIRST_TOKEN, FIRST_OUTPUT_BUCKETS),
        (chatkit_store::instrumented::STORE_OPERATION_DURATION, STORE_BUCKETS),
    ]
    .into_iter()
    .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
        builder.set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
    })
    .and_then(|builder| builder.set_buckets(LATENCY_BUCKETS));
    let recorder = match built {
        Ok(builder) => builder.build_recorder(),
        Err(e) => {
            tracing::error!(error = %e, "metrics are off: the exporter could not be configured");
            return None;
        }
    };
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!("metrics are off: another metrics recorder was installed first");
        return None;
    }
    describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        // Scrapes fold the samples too; without scrapes histograms then grow until the next one.
        tracing::warn!(error = %e, "could not start the metrics upkeep thread");
    }
    Some(handle)
}

/// Help texts of every metric, so `/metrics` explains itself.
fn describe() {
    chatkit::metrics::describe();
    agents::metrics::describe();
    chatkit_store::instrumented::describe();
    http::describe();
    metrics::describe_gauge!(DB_POOL_CONNECTIONS, "Database pool connections by state (in_use, idle).");
    metrics::describe_gauge!(DB_POOL_MAX_CONNECTIONS, "The most connections the database pool opens.");
}

/// The `/metrics` route.
pub fn routes(endpoint: MetricsEndpoint) -> Router {
    Router::new().route(METRICS_PATH, get(serve_metrics)).with_state(endpoint)
}

/// `GET /metrics`: the Prometheus text; 401 without the token when one is set.
async fn serve_metrics(State(endpoint): State<MetricsEndpoint>, headers: HeaderMap) -> Response {
    if let Some(expected) = &endpoint.token_digest {
        match crate::auth::jwt::bearer_token(&headers) {
            Ok(token) if Sha256::digest(token.as_bytes()).as_slice() == expected.as_slice() => {}
            Ok(_) => return AuthError::invalid("wrong metrics token (METRICS_TOKEN)").into_response(),
            Err(e) => return e.into_response(),
        }
    }
    if let Some(pool) = endpoint.store.pool_status() {
        metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(pool.in_use);
        metrics::gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(pool.idle);
        metrics::gauge!(DB_POOL_MAX_CONNECTIONS).set(pool.max);
    }
    let body = endpoint.handle.render();
    ([(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))], body).into_response()
}

/// Binds `addr` and serves only `/metrics` there (in the background, until the process exits).
/// Returns the bound address.
pub async fn serve_separately(addr: SocketAddr, endpoint: MetricsEndpoint) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).await.map_err(|e| format!("cannot serve metrics on METRICS_ADDR {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("cannot serve metrics on METRICS_ADDR {addr}: {e}"))?;
    let app = routes(endpoint).fallback(|| async {
        (axum::http::StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "detail": "Not Found" })))
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(bound)
}
