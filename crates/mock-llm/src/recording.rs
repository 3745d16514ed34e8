//! The requests the mock received, kept for tests to assert on: a bounded log that drops the
//! oldest entry when full and that benchmarks switch off (capacity 0) to keep the mock cheap.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

/// How many requests are kept by default (older ones are dropped).
pub const DEFAULT_RECORD_CAP: usize = 1_000;

/// One request received by the mock, for assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// URL path, e.g. `/v1/responses` or `/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
    pub path: String,
    /// Parsed JSON body; for multipart, an object of the fields (text fields as strings,
    /// files as `{"filename", "content_type", "size"}`).
    pub body: Value,
    /// Headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Raw query string, if any.
    pub query: Option<String>,
}

impl RecordedRequest {
    /// A request to `path` with `headers` (kept as text, names lowercase).
    pub(crate) fn new(path: String, body: Value, headers: &HeaderMap, query: Option<String>) -> Self {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        RecordedRequest { path, body, headers, query }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A copy safe to hand out over HTTP: API keys (headers and the `key` query parameter) are
    /// replaced, so they stay in the test process's memory only.
    pub(crate) fn redacted(mut self) -> Self {
        for (name, value) in &mut self.headers {
            if name == "authorization" || name == "x-goog-api-key" {
                *value = "[redacted]".to_owned();
            }
        }
        if let Some(query) = &mut self.query
            && query.contains("key=")
        {
            *query = query
                .split('&')
                .map(|p| if p.starts_with("key=") { "key=[redacted]" } else { p })
                .collect::<Vec<_>>()
                .join("&");
        }
        self
    }
}

/// The last `cap` requests, oldest first.
#[derive(Debug)]
pub(crate) struct RequestLog {
    requests: Mutex<VecDeque<RecordedRequest>>,
    cap: AtomicUsize,
}

impl RequestLog {
    /// An empty log keeping at most `cap` requests (0: none).
    pub(crate) fn new(cap: usize) -> Self {
        RequestLog { requests: Mutex::new(VecDeque::new()), cap: AtomicUsize::new(cap) }
    }

    /// Whether requests are kept at all; lets a handler skip building the record.
    pub(crate) fn is_on(&self) -> bool {
        self.cap.load(Ordering::Relaxed) > 0
    }

    /// Keeps `request`, dropping the oldest ones beyond the capacity.
    pub(crate) fn record(&self, request: RecordedRequest) {
        let cap = self.cap.load(Ordering::Relaxed);
        if cap == 0 {
            return;
        }
        let mut list = self.lock();
        while list.len() >= cap {
            list.pop_front();
        }
        list.push_back(request);
    }

    /// The kept requests, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.lock().iter().cloned().collect()
    }

    /// Forgets every kept request.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Keeps at most `cap` requests from now on, dropping the oldest beyond it.
    pub(crate) fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Ordering::Relaxed);
        let mut list = self.lock();
        while list.len() > cap {
            list.pop_front();
        }
    }

    /// The list; a handler that panicked while holding it left it consistent (every change is
    /// one push or pop), so a poisoned lock is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}
