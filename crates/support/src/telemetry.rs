//! Logging and traces: the global `tracing` subscriber (with the OpenTelemetry export of [`otel`] when
//! configured) (filter from `RUST_LOG`, default `info`) and the request
//! log middleware that writes one line per HTTP request with its method, path, status and latency
//! (successful ChatKit requests at debug: the protocol server already logs one line for each).
//! Query strings are not logged (they may carry ids users consider private); secrets never reach here.

pub mod otel;
pub(crate) mod traced_store;

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` is not a valid filter.
    #[error("RUST_LOG `{filter}` is not a valid log filter: {message}")]
    BadFilter {
        /// The filter text.
        filter: String,
        /// The parser's complaint.
        message: String,
    },
    /// A global subscriber was already installed (tests calling twice).
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber writing human-readable lines to stderr, and exporting spans to
/// `traces` when given ([`otel`]).
pub fn init(filter: &str, traces: Option<opentelemetry_sdk::trace::Tracer>) -> Result<(), TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let env_filter = EnvFilter::try_new(filter)
        .map_err(|e| TelemetryError::BadFilter { filter: filter.to_string(), message: e.to_string() })?;
    tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .finish()
        .with(traces.map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer)))
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)
}

/// The ChatKit endpoint, whose successful requests are logged by the protocol server instead.
const CHATKIT_PATH: &str = "/support/chatkit";

/// Middleware logging every request: `method path status latency_ms` (info; 5xx at error level; Swagger
/// UI assets and successful ChatKit requests at debug level: the ChatKit server logs those itself).
/// For streams the latency is the time until the response headers were ready.
pub(crate) async fn log_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // A path carries client input (ids): only its start is logged.
    let path = chatkit::types::strict_json::quote(req.uri().path());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(target: "support::http", %method, path, status, latency_ms, "request");
    } else if status < 400 && (path.starts_with("/docs/") || path == CHATKIT_PATH) {
        // Swagger UI assets: one page load is a dozen requests; keep them out of the info log.
        // ChatKit requests: the protocol server logs one info line per request with its type and
        // thread (a stream: when it ends), so this line would only repeat it.
        tracing::debug!(target: "support::http", %method, path, status, latency_ms, "request");
    } else {
        tracing::info!(target: "support::http", %method, path, status, latency_ms, "request");
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filter_is_reported_not_panicking() {
        let e = init("support=notalevel=x", None).unwrap_err();
        assert!(e.to_string().starts_with("RUST_LOG `support=notalevel=x` is not a valid log filter"), "{e}");
    }
}
