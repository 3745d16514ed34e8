//! OpenTelemetry traces, off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: the `tracing` spans of a
//! request (HTTP request → ChatKit request → turn → model calls and tool calls) are exported over
//! OTLP HTTP/protobuf by the SDK's batch processor, on its own thread, so a turn never waits for the
//! collector. The standard `OTEL_*` variables the SDK reads apply (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_BSP_*`).
//!
//! The export requests go through our own reqwest client on the server's runtime (the exporter's
//! built-in clients would add a second HTTP stack); a collector that cannot be reached costs a warning
//! at most once a minute. An incoming W3C `traceparent` is continued by [`trace_http`]. Span attributes
//! are ids, names, counts and statuses: never message text, keys or tokens.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_http::{HeaderExtractor, HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The service name when `OTEL_SERVICE_NAME` does not say otherwise.
const DEFAULT_SERVICE_NAME: &str = "openskies-support";

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Least time between two warnings about failed exports.
const WARN_INTERVAL_SECS: u64 = 60;

/// Whether traces are exported (set once at start-up); [`trace_http`] does nothing while it is not.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up OpenTelemetry traces: {0}")]
pub struct OtelError(String);

/// The installed exporter. [`Traces::shutdown`] sends what is still buffered.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter for the collector at `endpoint` (its base URL: `/v1/traces` is appended unless
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` names the full URL). Export requests run on `runtime`.
    pub fn new(endpoint: &str, runtime: tokio::runtime::Handle) -> Result<(Traces, Tracer), OtelError> {
        let client = ExportClient {
            client: reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|e| OtelError(format!("HTTP client: {e}")))?,
            runtime,
        };
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http().with_http_client(client);
        if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none_or(|v| v.is_empty()) {
            builder = builder.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
        }
        let exporter = builder.build().map_err(|e| OtelError(e.to_string()))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|v| v.is_empty()) {
            resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                resource
                    .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("support");
        ENABLED.store(true, Ordering::Release);
        Ok((Traces { provider }, tracer))
    }

    /// Exports the spans still buffered (waiting at most a few seconds for the collector) and stops the
    /// exporter. Blocking: call it off the async runtime's worker threads.
    pub fn shutdown(self) {
        ENABLED.store(false, Ordering::Release);
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "could not export the last traces");
        }
    }
}

/// Sends export requests with reqwest on the server's runtime: the batch processor calls from its own
/// thread, which has no runtime.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: axum::http::Request<Bytes>) -> Result<axum::http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut req = client.request(parts.method, parts.uri.to_string()).body(body);
            for (name, value) in &parts.headers {
                req = req.header(name, value);
            }
            let res = req.send().await?;
            let status = res.status();
            let body = res.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        match sent.await {
            Ok(Ok((status, body))) => {
                if !status.is_success() {
                    warn_now_and_then(&format!("the collector answered HTTP {}", status.as_u16()));
                }
                axum::http::Response::builder().status(status).body(body).map_err(|e| Box::new(e) as HttpError)
            }
            Ok(Err(e)) => {
                // reqwest's message names the URL (the collector's address, no credentials: headers
                // are not part of it).
                warn_now_and_then(&format!("cannot reach the collector: {e}"));
                Err(Box::new(e) as HttpError)
            }
            Err(e) => Err(Box::new(e) as HttpError),
        }
    }
}

/// Logs a failed export, at most once per [`WARN_INTERVAL_SECS`].
fn warn_now_and_then(what: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let last = LAST.load(Ordering::Relaxed);
    if (last == 0 || now >= last + WARN_INTERVAL_SECS)
        && LAST.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(problem = what, "traces are not being exported (next warning in a minute at the earliest)");
    }
}

/// The route of a path for span names: a fixed set of templates, so no id ever becomes a name.
fn route_of(path: &str) -> &'static str {
    match path {
        "/support/chatkit" => "/support/chatkit",
        "/support/customer" => "/support/customer",
        "/support/health" => "/support/health",
        "/support/ready" => "/support/ready",
        "/openapi.json" => "/openapi.json",
        "/metrics" => "/metrics",
        p if p.starts_with("/docs") => "/docs",
        p if p.starts_with("/support/attachments/") && p.ends_with("/content") => {
            "/support/attachments/{attachment_id}/content"
        }
        p if p.starts_with("/support/attachments/") && p.ends_with("/upload") => {
            "/support/attachments/{attachment_id}/upload"
        }
        _ => "other",
    }
}

/// Middleware: while traces are exported, runs the request in an `http.request` server span that
/// continues the caller's W3C `traceparent` (when it sends one) and records the response status.
pub async fn trace_http(req: Request, next: Next) -> Response {
    if !ENABLED.load(Ordering::Acquire) {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    let route = route_of(req.uri().path());
    let span = tracing::info_span!(
        target: "support::http",
        "http.request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
    // An absent or malformed header extracts an empty context: the request starts a new trace.
    let _ = span.set_parent(parent);
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    res
}

/// The id of the trace the current span belongs to (32 hex digits), read from its OpenTelemetry
/// context: `None` unless traces are exported and this trace is sampled, so a log line only ever names
/// a trace the collector receives.
pub(crate) fn current_trace_id() -> Option<String> {
    if !ENABLED.load(Ordering::Acquire) {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    (span_context.is_valid() && span_context.is_sampled()).then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_never_ids() {
        assert_eq!(route_of("/support/attachments/atc_123/content"), "/support/attachments/{attachment_id}/content");
        assert_eq!(route_of("/support/attachments/atc_123/upload"), "/support/attachments/{attachment_id}/upload");
        assert_eq!(route_of("/support/chatkit"), "/support/chatkit");
        assert_eq!(route_of("/whatever/thr_1"), "other");
        assert_eq!(route_of("/docs/swagger-ui.css"), "/docs");
    }
}
