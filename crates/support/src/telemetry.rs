//! Logging and traces: the global `tracing` subscriber (filter from `RUST_LOG`, default `info`;
//! human-readable lines, or JSON lines with `LOG_FORMAT=json`, see [`crate::log_format`]; with the
//! OpenTelemetry export of [`otel`] when configured) and the request middleware
//! that gives every request its `x-request-id` ([`crate::request_id`]), runs it inside a `request` span
//! carrying that id (so every line the request logs has it), records its HTTP metrics
//! ([`crate::metrics::http`]) and writes one line per request with its method, path, status and latency
//! (successful ChatKit requests at debug: the protocol server already logs one line for each).
//! Query strings are not logged (they may carry ids users consider private); secrets never reach here.

pub mod otel;

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::log_format::{JsonLines, LogFormat, SpanContextLayer};
use crate::request_id::{self, REQUEST_ID_HEADER};

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

/// Installs the global subscriber writing log lines to stderr in `format`, and exporting spans to
/// `traces` when given ([`otel`]).
pub fn init(
    filter: &str,
    format: LogFormat,
    traces: Option<opentelemetry_sdk::trace::Tracer>,
) -> Result<(), TelemetryError> {
    let env_filter = EnvFilter::try_new(filter)
        .map_err(|e| TelemetryError::BadFilter { filter: filter.to_string(), message: e.to_string() })?;
    let registry = tracing_subscriber::registry().with(env_filter).with(traces.map(|tracer| {
        // The `request` span only carries the request id into log lines; the exported trace goes from
        // the HTTP span straight to the ChatKit request (a filtered span's children take its parent).
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter_fn(|meta| !(meta.is_span() && meta.name() == REQUEST_SPAN)))
    }));
    let installed = match format {
        LogFormat::Text => registry.with(text_lines()).try_init(),
        LogFormat::Json => registry
            .with(SpanContextLayer)
            .with(tracing_subscriber::fmt::layer().event_format(JsonLines).with_writer(std::io::stderr))
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
}

/// The human-readable lines: coloured on a terminal, with the target and the enclosing spans' fields.
fn text_lines<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
}

/// Name of the span that carries a request's id through its log lines.
const REQUEST_SPAN: &str = "request";

/// The ChatKit endpoint, whose successful requests are logged by the protocol server instead.
const CHATKIT_PATH: &str = "/support/chatkit";

/// Middleware of every request: its request id (kept from the request when sane, else generated; set on
/// the request for the handlers and echoed in the response), its `request` span (with the request id,
/// and the OpenTelemetry trace id while traces are exported), its metrics and its
/// log line `method path status latency_ms` (info; 5xx at error level; Swagger UI assets and successful
/// ChatKit requests at debug level: the ChatKit server logs those itself). For streams the latency is
/// the time until the response headers were ready.
pub(crate) async fn log_requests(mut req: Request, next: Next) -> Response {
    let request_id = request_id::accept_or_generate(req.headers());
    req.headers_mut().insert(REQUEST_ID_HEADER, request_id.clone());
    // Sane ids are visible ASCII and generated ones UUIDs, so the text is always there.
    let span = tracing::info_span!(
        REQUEST_SPAN,
        request_id = request_id.to_str().unwrap_or_default(),
        trace_id = tracing::field::Empty
    );
    // Runs inside the HTTP span of `otel::trace_http`: its trace is the request's, so log lines can be
    // matched with the exported trace.
    if let Some(trace_id) = otel::current_trace_id() {
        span.record("trace_id", trace_id.as_str());
    }
    let mut res = handle_request(req, next).instrument(span).await;
    res.headers_mut().insert(REQUEST_ID_HEADER, request_id);
    res
}

async fn handle_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // The route template (`/support/attachments/{id}/content`), never the path itself: paths carry ids.
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    // A path carries client input (ids): only its start is logged.
    let path = chatkit::types::strict_json::quote(req.uri().path());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    crate::metrics::http::record(route.as_deref(), &method, status, elapsed);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
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
        let e = init("support=notalevel=x", LogFormat::Text, None).unwrap_err();
        assert!(e.to_string().starts_with("RUST_LOG `support=notalevel=x` is not a valid log filter"), "{e}");
    }
}
