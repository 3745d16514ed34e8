//! HTTP transport shared by the providers and transcribers: one reqwest (rustls) client per
//! provider, sending with a first-byte timeout, classification of failures into [`ProviderError`]
//! (401/403 → a clear key message, error bodies kept, `Retry-After` read), and key redaction.

use std::time::Duration;

use reqwest::header::HeaderMap;

use futures::StreamExt;

use crate::config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT};
use crate::error_class::{ErrorBody, ErrorClass};
use crate::provider::{ModelStream, ProviderError, TimeoutPhase};
use crate::retry::{RetryPolicy, start_stream, with_retries};
use crate::sse::{EventParser, model_stream};

/// The three waits of a model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection.
    pub connect: Duration,
    /// From sending the request to the response headers, and again to the first body chunk.
    pub first_byte: Duration,
    /// Between two body chunks of a started response.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            first_byte: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Everything a provider needs to talk HTTP.
#[derive(Clone)]
pub(crate) struct Transport {
    pub(crate) client: reqwest::Client,
    pub(crate) provider: &'static str,
    /// Put in the error when the API rejects the key (see [`crate::ProviderAccess::rejected_key_hint`]).
    pub(crate) rejected_key_hint: Option<String>,
    secret: String,
    /// Other values removed from error texts (extra header values, which may carry credentials).
    also_secret: Vec<String>,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: RetryPolicy,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("provider", &self.provider)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Builds the HTTP client (rustls, connect timeout, no overall timeout: streams are long).
pub(crate) fn build_client(timeouts: &Timeouts, user_agent: Option<&str>) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .pool_idle_timeout(IDLE_CONNECTION_LIFETIME)
        .tcp_nodelay(true);
    match user_agent {
        Some(agent) => builder.user_agent(agent),
        None => builder,
    }
    .build()
}

/// How long an unused connection to a model API stays open for the next call.
const IDLE_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

impl Transport {
    pub(crate) fn new(
        client: reqwest::Client,
        provider: &'static str,
        rejected_key_hint: Option<String>,
        secret: String,
        timeouts: Timeouts,
        retry: RetryPolicy,
    ) -> Self {
        Transport { client, provider, rejected_key_hint, secret, also_secret: Vec::new(), timeouts, retry }
    }

    /// The same transport, also removing `values` from error texts.
    pub(crate) fn redacting(mut self, values: impl IntoIterator<Item = String>) -> Self {
        self.also_secret.extend(values.into_iter().filter(|v| v.len() >= MIN_REDACTED_LEN));
        self
    }

    /// The API key (only for building request headers).
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// Sends a request and returns the response if its status is a success; otherwise the
    /// classified error (with the provider's message from the body).
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
        let response = match tokio::time::timeout(self.timeouts.first_byte, request.send()).await {
            Err(_) => {
                return Err(ProviderError::Timeout {
                    provider: self.provider,
                    phase: TimeoutPhase::FirstByte,
                    after: self.timeouts.first_byte,
                });
            }
            Ok(Err(e)) => return Err(self.classify(e)),
            Ok(Ok(r)) => r,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.error_from_response(response).await)
    }

    /// One streamed model call, the way every provider makes it: `request` builds the HTTP request of
    /// each attempt, the response body is read as SSE by a fresh `parser`, and failures before the
    /// first event (HTTP errors, resets, an early in-stream error) are retried under the retry
    /// policy. Error texts in the stream have the key removed.
    pub(crate) async fn stream_events<P: EventParser>(
        &self,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        parser: impl Fn() -> P,
    ) -> Result<ModelStream, ProviderError> {
        with_retries(&self.retry, self.provider, |_| {
            let req = request(&self.client);
            let parser = parser();
            async move {
                let response = self.send(req).await?;
                let events = model_stream(response, self.provider, self.timeouts, parser);
                start_stream(self.redact_stream(events), self.provider).await
            }
        })
        .await
    }

    /// One non-streamed call whose answer is JSON: `request` builds the HTTP request of each attempt,
    /// the whole body is read, and failures are retried under the retry policy.
    pub(crate) async fn call_json(
        &self,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, ProviderError> {
        let body = with_retries(&self.retry, self.provider, |_| {
            let req = request(&self.client);
            async move {
                let response = self.send(req).await?;
                self.read_body(response).await
            }
        })
        .await?;
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Decode { provider: self.provider, message: e.to_string() })
    }

    /// Reads a whole (non-streamed) body with the first-byte timeout.
    async fn read_body(&self, response: reqwest::Response) -> Result<bytes::Bytes, ProviderError> {
        match tokio::time::timeout(self.timeouts.first_byte, response.bytes()).await {
            Err(_) => Err(ProviderError::Timeout {
                provider: self.provider,
                phase: TimeoutPhase::Idle,
                after: self.timeouts.first_byte,
            }),
            Ok(Err(e)) => Err(ProviderError::StreamCut { provider: self.provider, message: self.error_text(&e) }),
            Ok(Ok(b)) => Ok(b),
        }
    }

    async fn error_from_response(&self, response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = tokio::time::timeout(self.timeouts.idle, response.text()).await.ok().and_then(Result::ok);
        let mut parsed = body.as_deref().map(ErrorBody::parse).unwrap_or_default();
        parsed.message = self.redact(&parsed.message);
        // Gemini answers a wrong key with 400 `API_KEY_INVALID`; OpenAI a model the project may not use
        // with 403 `model_not_found`, which is about the model, not the key.
        let class = ErrorClass::classify(Some(status), &parsed);
        if class == ErrorClass::InvalidKey {
            return ProviderError::Unauthorized {
                provider: self.provider,
                hint: self.rejected_key_hint.clone(),
                status,
                code: parsed.provider_code(),
            };
        }
        // Gemini says how long to wait in the body rather than in a header.
        ProviderError::from_status(self.provider, status, &parsed, retry_after.or(parsed.retry_delay))
    }

    /// Maps a reqwest failure (before a response) to a provider error.
    pub(crate) fn classify(&self, e: reqwest::Error) -> ProviderError {
        if e.is_builder() {
            return ProviderError::Request { provider: self.provider, message: self.error_text(&e) };
        }
        if e.is_connect() && e.is_timeout() {
            return ProviderError::Timeout {
                provider: self.provider,
                phase: TimeoutPhase::Connect,
                after: self.timeouts.connect,
            };
        }
        ProviderError::Connect { provider: self.provider, message: self.error_text(&e) }
    }

    /// The error and its causes as one line, without the URL and without the key.
    pub(crate) fn error_text(&self, e: &reqwest::Error) -> String {
        let mut text = String::new();
        let mut current: Option<&dyn std::error::Error> = Some(e);
        while let Some(err) = current {
            let part = err.to_string();
            if !text.contains(&part) {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&part);
            }
            current = err.source();
        }
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "<url>");
        }
        self.redact(&text)
    }

    /// The error with the key removed from its message: in-stream failures (`response.failed`, Gemini
    /// error chunks) carry the provider's text, which may echo the key.
    pub(crate) fn redact_error(&self, mut e: ProviderError) -> ProviderError {
        if let Some(message) = e.message_mut() {
            *message = self.redact(message);
        }
        e
    }

    /// `stream` with [`Transport::redact_error`] applied to its errors.
    pub(crate) fn redact_stream(&self, stream: ModelStream) -> ModelStream {
        let t = self.clone();
        Box::pin(stream.map(move |item| item.map_err(|e| t.redact_error(e))))
    }

    /// Removes the key from a text (defence in depth: providers sometimes echo parts of it).
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in std::iter::once(&self.secret).chain(&self.also_secret) {
            if secret.len() >= MIN_REDACTED_LEN && out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

#[cfg(test)]
impl Transport {
    /// A transport with the default timeouts and retries, for unit tests that send nothing.
    pub(crate) fn for_test(provider: &'static str, secret: &str) -> Self {
        let (timeouts, retry) = (Timeouts::default(), RetryPolicy::default());
        Transport::new(reqwest::Client::new(), provider, None, secret.to_string(), timeouts, retry)
    }
}

/// Shorter secrets are not redacted (replacing every `a` of a text would hide more than it protects).
const MIN_REDACTED_LEN: usize = 4;

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0 && *v < 86_400.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn redaction() {
        let t = Transport::for_test("OpenAI", "sk-secret-123");
        assert_eq!(t.redact("bad key sk-secret-123 given"), "bad key [redacted] given");
        let failed = ProviderError::Failed {
            provider: "OpenAI",
            message: "key sk-secret-123 revoked".into(),
            retryable: false,
            code: None,
        };
        assert_eq!(
            t.redact_error(failed),
            ProviderError::Failed {
                provider: "OpenAI",
                message: "key [redacted] revoked".into(),
                retryable: false,
                code: None
            }
        );
        assert!(!format!("{t:?}").contains("sk-secret"));
    }
}
