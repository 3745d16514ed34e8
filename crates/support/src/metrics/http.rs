//! HTTP metrics, recorded by the request middleware (`crate::telemetry::log_requests`) for every
//! request: counts by route template, method and status, latency to the response head, and requests
//! refused for a reason an operator acts on (authentication, limits, size).

use std::time::Duration;

use axum::http::Method;

/// Counter of HTTP requests by `route` (the route template, e.g. `/support/attachments/{id}/content`;
/// `unmatched` for paths no route serves), `method` and `status`.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Histogram of the time until a response's head was ready (for a stream: until it started), by
/// `route` and `method`.
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
/// Counter of refused requests by `reason`: `auth` (401, 403), `limits` (429), `size` (413),
/// `timeout` (408: the body stopped arriving).
pub const HTTP_REJECTIONS: &str = "http_rejections_total";

/// Registers the help text of the HTTP metrics.
pub(super) fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by route template, method and status.");
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP requests: time until the response head was ready, by route template and method."
    );
    metrics::describe_counter!(HTTP_REJECTIONS, "Requests refused, by reason (auth, limits, size, timeout).");
}

/// Records one answered request. `route` is the matched route template, if any.
pub(crate) fn record(route: Option<&str>, method: &Method, status: u16, took: Duration) {
    let route = route.unwrap_or("unmatched").to_owned();
    let method = method_label(method);
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status_label(status))
        .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method).record(took.as_secs_f64());
    if let Some(reason) = rejection_reason(status) {
        metrics::counter!(HTTP_REJECTIONS, "reason" => reason).increment(1);
    }
}

/// The standard methods by name; any other (a client may send any token) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status as a label value without allocating for the common ones.
fn status_label(status: u16) -> metrics::SharedString {
    match status {
        200 => "200".into(),
        204 => "204".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        409 => "409".into(),
        413 => "413".into(),
        429 => "429".into(),
        500 => "500".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}

fn rejection_reason(status: u16) -> Option<&'static str> {
    match status {
        401 | 403 => Some("auth"),
        408 => Some("timeout"),
        413 => Some("size"),
        429 => Some("limits"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(status_label(418).as_ref(), "418");
        assert_eq!(status_label(200).as_ref(), "200");
        assert_eq!(rejection_reason(401), Some("auth"));
        assert_eq!(rejection_reason(413), Some("size"));
        assert_eq!(rejection_reason(429), Some("limits"));
        assert_eq!(rejection_reason(404), None);
    }
}
