//! OpenAI-compatible Chat Completions provider (`POST {base}/chat/completions`, `stream: true`), for
//! the servers and vendors that speak that API rather than Responses: Ollama, vLLM, llama.cpp,
//! LM Studio, OpenRouter, Groq, Together, DeepSeek, Mistral, Azure OpenAI.
//!
//! The key is optional (sent as a bearer token when set); extra headers (e.g. OpenRouter's
//! `HTTP-Referer`) go with every request and their values are redacted from error texts like the key.
//! `stream_options.include_usage` asks for the usage chunk; a server that answers 400 naming it gets
//! the request again without it, and is not asked again. A 4xx saying the model or server cannot
//! call tools is classified as [`crate::ErrorClass::ToolsUnsupported`] (with the other error classes),
//! so the user sees what to change rather than a generic rejection. [`request`] encodes the body;
//! [`stream`] reads the chunks back.

mod request;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::header::HeaderMap;

use self::request::Body;
use self::stream::Parser;
use crate::metrics::ModelMetrics;
use crate::provider::{ModelRequest, ModelStream, Provider, ProviderError};
use crate::transport::Transport;

/// Provider name in errors and logs.
pub(crate) const PROVIDER: &str = "OpenAI-compatible";

/// The Chat Completions provider.
#[derive(Debug)]
pub(crate) struct CompatibleProvider {
    transport: Transport,
    /// `{base_url}/chat/completions`.
    url: String,
    model: String,
    /// Sent with every request (validated when the provider was built).
    headers: HeaderMap,
    /// `max_tokens` of every request, when set.
    max_tokens: Option<u32>,
    /// Whether to ask for the usage chunk (cleared once the server rejected `stream_options`).
    include_usage: AtomicBool,
    /// The metric handles of `model`.
    metrics: ModelMetrics,
}

impl CompatibleProvider {
    pub(crate) fn new(
        transport: Transport,
        base_url: &str,
        model: String,
        headers: HeaderMap,
        max_tokens: Option<u32>,
    ) -> Self {
        let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
        let metrics = ModelMetrics::new(PROVIDER, &model);
        CompatibleProvider { transport, url, model, headers, max_tokens, include_usage: AtomicBool::new(true), metrics }
    }

    fn encode(&self, request: &ModelRequest, include_usage: bool) -> Result<bytes::Bytes, ProviderError> {
        let body = Body { model: &self.model, request, include_usage, max_tokens: self.max_tokens };
        serde_json::to_vec(&body)
            .map(bytes::Bytes::from)
            .map_err(|e| ProviderError::Request { provider: PROVIDER, message: e.to_string() })
    }

    /// One streamed call with `body`, retried under the policy.
    async fn post(&self, body: bytes::Bytes) -> Result<ModelStream, ProviderError> {
        let t = &self.transport;
        t.stream_events(
            |client| {
                let post = client
                    .post(&self.url)
                    .headers(self.headers.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "text/event-stream");
                let post = if t.secret().is_empty() { post } else { post.bearer_auth(t.secret()) };
                post.body(body.clone())
            },
            Parser::default,
        )
        .await
    }
}

#[async_trait]
impl Provider for CompatibleProvider {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        let include_usage = self.include_usage.load(Ordering::Relaxed);
        match self.post(self.encode(&request, include_usage)?).await {
            Err(ProviderError::Http { status: 400, message, .. })
                if include_usage && message.to_ascii_lowercase().contains("stream_options") =>
            {
                tracing::info!(provider = PROVIDER, "the server rejects stream_options; usage is not requested");
                self.include_usage.store(false, Ordering::Relaxed);
                self.post(self.encode(&request, false)?).await
            }
            other => other,
        }
    }

    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn metrics(&self) -> Option<&ModelMetrics> {
        Some(&self.metrics)
    }
}
