//! The HTTP application: [`app`] puts the documented `/support/*` routes (`crate::routes::api`), Swagger
//! UI and `/openapi.json` behind the layers every response goes through (outermost first): request log →
//! CORS preflight body → CORS → panic catcher → JSON errors. Start-up (store, model provider, app) is in
//! [`crate::startup`].
//!
//! Every 4xx/5xx is JSON `{"detail": "<text>"}` (`ApiError`): unknown paths → 404 `Not Found`, a known
//! path with the wrong method → 405 `Method Not Allowed`, a panic → 500, and any plain-text rejection
//! produced by axum itself is rewrapped as JSON.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chatkit::{ChatKitServer, Store};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

use crate::airline::AirlineStore;
use crate::auth::Authenticator;
use crate::config::CorsOrigins;
use crate::metrics::MetricsEndpoint;
use crate::openapi;
use crate::public_url::PublicUrl;
use crate::routes::{self, ApiError};
use crate::telemetry;

/// Size limits of the request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `POST /support/chatkit` body limit (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Attachment upload limit (`MAX_UPLOAD_BYTES`), multipart overhead allowed on top.
    pub max_upload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            max_upload_bytes: crate::config::DEFAULT_MAX_UPLOAD_BYTES,
        }
    }
}

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The ChatKit protocol server (store + app).
    pub chatkit: ChatKitServer,
    /// The store of threads, items, attachments and app state.
    pub store: Arc<dyn Store>,
    /// Per-thread airline state.
    pub airline: AirlineStore,
    /// Body limits.
    pub limits: Limits,
    /// Who the caller is (`AUTH_MODE`).
    pub auth: Arc<Authenticator>,
    /// Signs and checks attachment links (which prove their owner themselves).
    pub urls: Arc<crate::signed_urls::UrlSigner>,
    /// Abuse limits per owner (`MAX_STREAMS_PER_USER`, `TURNS_PER_MINUTE`, `MAX_ATTACHMENT_BYTES_PER_USER`).
    pub user_limits: Arc<crate::limits::UserLimiter>,
    /// Starting, serving or draining (`GET /support/ready`).
    pub readiness: crate::readiness::Readiness,
}

/// Options of the router that are not handler state.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Allowed browser origins.
    pub cors: CorsOrigins,
    /// How the external base URL of attachment links is decided.
    pub public_url: PublicUrl,
    /// `GET /metrics` on this router (unless metrics are off or served on their own address).
    pub metrics: Option<MetricsEndpoint>,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions { cors: CorsOrigins::Any, public_url: PublicUrl::default(), metrics: None }
    }
}

/// The complete application: routes, docs and layers.
pub fn app(state: AppState, options: &RouterOptions) -> Router {
    let (api, doc) = openapi::split(routes::api(state.auth.clone()));
    let docs: Router = openapi::swagger_ui(doc).into();
    let mut routes = api.with_state(state).merge(docs);
    if let Some(endpoint) = &options.metrics {
        routes = routes.merge(crate::metrics::routes(endpoint.clone()));
    }
    with_layers(routes, options)
}

/// Wraps routes in the fallbacks and layers of [`app`] (public so tests can add routes, e.g. one that
/// panics, and get exactly the production behaviour).
pub fn with_layers(routes: Router, options: &RouterOptions) -> Router {
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        .layer(axum::Extension(options.public_url.clone()))
        // Handlers read bodies themselves with their own limits (413 JSON); no hidden 2 MB cap.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(cors_layer(&options.cors))
        .layer(middleware::from_fn(preflight_body))
        .layer(middleware::from_fn(telemetry::log_requests))
        .layer(middleware::from_fn(telemetry::otel::trace_http))
}

/// CORS as the sample configures it: any origin (or the configured list), any method, echoed request
/// headers, no credentials, preflight cached for 600 s.
pub(crate) fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => {
            AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect::<Vec<_>>())
        }
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(AllowMethods::list([
            Method::DELETE,
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PATCH,
            Method::POST,
            Method::PUT,
        ]))
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(Duration::from_secs(600))
}

/// The preflight `access-control-allow-methods` value, spelled as the sample sends it.
pub const PREFLIGHT_ALLOW_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";

/// Answers preflights with the body `OK` (`text/plain; charset=utf-8`) and the sample's spelling of the
/// allowed methods.
async fn preflight_body(req: Request, next: Next) -> Response {
    let is_preflight = req.method() == Method::OPTIONS;
    let res = next.run(req).await;
    if is_preflight
        && res.status() == StatusCode::OK
        && res.headers().contains_key(header::ACCESS_CONTROL_ALLOW_METHODS)
    {
        let (mut parts, _) = res.into_parts();
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
        parts.headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(PREFLIGHT_ALLOW_METHODS));
        return Response::from_parts(parts, Body::from("OK"));
    }
    res
}

/// 404 for unknown paths.
async fn not_found() -> Response {
    ApiError::NotFound("Not Found".into()).into_response()
}

/// 405 for a known path with the wrong method.
async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// Turns a panic into `500 {"detail":"internal server error"}` and logs it.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic payload");
    tracing::error!(panic = message, "request handler panicked");
    ApiError::Internal.into_response()
}

/// Largest plain-text error body that is copied into the JSON `detail`.
const MAX_TEXT_DETAIL: usize = 4 * 1024;

/// Rewrites non-JSON error responses (axum's own rejections, empty 404/405 bodies) as `{"detail": …}`,
/// keeping status and headers (e.g. `Allow`).
async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT_DETAIL).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() { status.canonical_reason().unwrap_or("Error").to_string() } else { text };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&serde_json::json!({ "detail": detail })).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use chatkit::store::MemoryStore;
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use super::*;
    use crate::app::{AppSettings, SupportApp};

    /// The production application on a memory store, without a model.
    fn test_app() -> Router {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let airline = AirlineStore::new(store.clone());
        let support = SupportApp::new(store.clone(), airline.clone(), None, None, AppSettings::default());
        let state = AppState {
            chatkit: ChatKitServer::new(store.clone(), Arc::new(support)),
            store,
            airline,
            limits: Limits::default(),
            auth: Arc::new(crate::auth::Authenticator::None),
            urls: Arc::new(crate::signed_urls::UrlSigner::new(vec![1; 32], std::time::Duration::from_secs(60))),
            user_limits: crate::limits::UserLimiter::off(),
            readiness: crate::readiness::Readiness::default(),
        };
        app(state, &RouterOptions::default())
    }

    async fn send(request: Request) -> (StatusCode, String, Value) {
        let res = test_app().oneshot(request).await.unwrap();
        let status = res.status();
        let content_type =
            res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn get(uri: &str) -> Request {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn documented_routes_are_served() {
        let (status, _, body) = send(get("/support/health")).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "healthy"})));
        let (status, _, body) = send(get("/support/customer")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["customer"]["customer_id"], "cus_98421");
        let list =
            Request::post("/support/chatkit").body(Body::from(r#"{"type":"threads.list","params":{}}"#)).unwrap();
        let (status, content_type, body) = send(list).await;
        assert_eq!(
            (status, content_type.as_str(), body),
            (StatusCode::OK, "application/json", json!({"data": [], "has_more": false}))
        );
    }

    /// A streaming request answers what the document says: `text/event-stream` whose events are each one
    /// `data:` line holding a JSON event of a documented `type`.
    #[tokio::test]
    async fn streams_are_event_streams_of_documented_events() {
        let doc = serde_json::to_value(openapi::document()).unwrap();
        let documented: Vec<&str> = doc["components"]["schemas"]["ThreadStreamEvent"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["properties"]["type"]["enum"][0].as_str().unwrap())
            .collect();
        let body =
            json!({"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", "text": "Hi"}]}}});
        let request = Request::post("/support/chatkit").body(Body::from(body.to_string())).unwrap();
        let res = test_app().oneshot(request).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let content_type = res.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        assert!(
            doc["paths"]["/support/chatkit"]["post"]["responses"]["200"]["content"].get("text/event-stream").is_some()
        );
        let text = String::from_utf8(to_bytes(res.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
        let frames: Vec<&str> = text.split_terminator("\n\n").collect();
        assert!(frames.len() >= 3, "{text}");
        for frame in frames {
            let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data line: {frame}"));
            assert!(!data.contains('\n'), "{frame}");
            let event: Value = serde_json::from_str(data).unwrap();
            let kind = event["type"].as_str().unwrap();
            assert!(documented.contains(&kind), "{kind} is not documented");
        }
    }

    #[tokio::test]
    async fn the_served_document_is_the_routes_document() {
        let (status, _, body) = send(get("/openapi.json")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::to_value(openapi::document()).unwrap());
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_answer_json_errors() {
        let (status, content_type, body) = send(get("/nope")).await;
        assert_eq!(
            (status, content_type.as_str(), body),
            (StatusCode::NOT_FOUND, "application/json", json!({"detail": "Not Found"}))
        );
        let delete = Request::delete("/support/health").body(Body::empty()).unwrap();
        let (status, _, body) = send(delete).await;
        assert_eq!((status, body), (StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"})));
    }

    #[tokio::test]
    async fn upload_takes_post_and_put() {
        let signed = crate::signed_urls::UrlSigner::new(vec![1; 32], std::time::Duration::from_secs(60)).upload_url(
            "",
            "atc_missing",
            chatkit::store::ANONYMOUS_OWNER,
        );
        for method in [Method::POST, Method::PUT] {
            let request = Request::builder().method(method).uri(signed.as_str()).body(Body::from("x")).unwrap();
            let (status, _, body) = send(request).await;
            assert_eq!(
                (status, body),
                (StatusCode::NOT_FOUND, json!({"detail": "Attachment atc_missing does not exist."}))
            );
        }
    }
}
