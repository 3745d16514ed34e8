//! Google Gemini provider on the native API:
//! `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse` with the key in `x-goog-api-key`.
//! [`request`] builds the body, [`schema`] converts the tools' JSON schemas, [`stream`] reads the
//! response chunks.

mod request;
mod schema;
mod stream;
#[cfg(test)]
mod tests;

use async_trait::async_trait;

use self::request::request_body;
use self::stream::Parser;
use crate::metrics::ModelMetrics;
use crate::provider::{ModelRequest, ModelStream, Provider, ProviderError};
use crate::reasoning::Reasoning;
use crate::transport::Transport;

/// Provider name in errors and logs.
const PROVIDER: &str = "Gemini";

/// The Gemini provider.
#[derive(Debug, Clone)]
pub(crate) struct GeminiProvider {
    transport: Transport,
    base_url: String,
    model: String,
    /// The reasoning settings of every call (`thinkingConfig`).
    reasoning: Reasoning,
    /// The metric handles of `model`.
    metrics: ModelMetrics,
}

impl GeminiProvider {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String, reasoning: Reasoning) -> Self {
        let model = model.strip_prefix("models/").map(str::to_string).unwrap_or(model);
        let metrics = ModelMetrics::new(PROVIDER, &model);
        GeminiProvider { transport, base_url: base_url.trim_end_matches('/').to_string(), model, reasoning, metrics }
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        let body = serde_json::to_vec(&request_body(&request, &self.reasoning))
            .map_err(|e| ProviderError::Request { provider: PROVIDER, message: e.to_string() })?;
        let body = bytes::Bytes::from(body);
        let url = format!("{}/v1beta/models/{}:streamGenerateContent?alt=sse", self.base_url, self.model);
        let t = &self.transport;
        t.stream_events(|_| post_json(t, &url, body.clone()), Parser::default).await
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

/// A `POST` of a JSON body to the Gemini API, with the key in `x-goog-api-key` (shared with the
/// Gemini transcriber).
pub(crate) fn post_json(transport: &Transport, url: &str, body: bytes::Bytes) -> reqwest::RequestBuilder {
    transport
        .client
        .post(url)
        .header("x-goog-api-key", transport.secret())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}
