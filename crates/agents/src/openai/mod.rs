//! OpenAI Responses API provider (`POST {base}/responses`, `stream: true`), as a thin reqwest client
//! with lenient serde types: unknown event and item types are skipped, so new OpenAI payloads never
//! break a turn. [`request`] encodes the body; [`stream`] reads the events back.
//!
//! Event mapping: `output_item.added` (message) → message start; `content_part.added` → part start;
//! `output_text.delta` → deltas; `output_text.annotation.added` → citations in ChatKit's annotation
//! shape; `output_text.done` → part done; `output_item.done` → message done or a complete function
//! call; reasoning items → reasoning start, `reasoning_summary_text` / `reasoning_text` deltas and
//! done texts → reasoning parts, the finished item → kept whole for the next request of the run (as
//! are the finished messages of a response with reasoning, which must follow their reasoning item
//! with their own ids); `response.completed` → completed, with its `usage`; `response.failed` /
//! `response.incomplete` / `error` → an error classified from the provider's code; a `refusal` part
//! → a content-blocked error at `refusal.done` (the refusal text goes to the log).

mod request;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use self::request::{Body, FixedParts};
use self::stream::Parser;
use crate::metrics::ModelMetrics;
use crate::provider::{ModelRequest, ModelStream, Provider, ProviderError};
use crate::reasoning::Reasoning;
use crate::transport::Transport;

/// Provider name in errors and logs.
pub(crate) const PROVIDER: &str = "OpenAI";

/// The OpenAI Responses provider.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiProvider {
    transport: Transport,
    base_url: String,
    /// `{base_url}/responses`, parsed once (`None` if it does not parse: the request reports it).
    responses_url: Option<reqwest::Url>,
    model: String,
    /// The reasoning settings of every call.
    reasoning: Reasoning,
    /// The encoded instructions and tools of the last request (reused while they stay the same).
    fixed: Arc<Mutex<Option<Arc<FixedParts>>>>,
    /// The metric handles of `model`.
    metrics: ModelMetrics,
}

impl OpenAiProvider {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String, reasoning: Reasoning) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let responses_url = reqwest::Url::parse(&format!("{base_url}/responses")).ok();
        let metrics = ModelMetrics::new(PROVIDER, &model);
        OpenAiProvider { transport, base_url, responses_url, model, reasoning, fixed: Arc::default(), metrics }
    }

    /// The encoded fixed parts for `request`, from the cache when they are the same as last time.
    fn fixed_parts(&self, request: &ModelRequest) -> serde_json::Result<Arc<FixedParts>> {
        let cached = self.fixed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(parts) = cached.filter(|parts| parts.matches(request)) {
            return Ok(parts);
        }
        let parts = Arc::new(FixedParts::of(request)?);
        *self.fixed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(parts.clone());
        Ok(parts)
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        let encode_error = |e: serde_json::Error| ProviderError::Request { provider: PROVIDER, message: e.to_string() };
        let fixed = self.fixed_parts(&request).map_err(encode_error)?;
        let body =
            serde_json::to_vec(&Body::new(&self.model, &request, &fixed, &self.reasoning)).map_err(encode_error)?;
        let body = bytes::Bytes::from(body);
        self.transport
            .stream_events(
                |client| {
                    let post = match &self.responses_url {
                        Some(url) => client.post(url.clone()),
                        None => client.post(format!("{}/responses", self.base_url)),
                    };
                    post.bearer_auth(self.transport.secret())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header(reqwest::header::ACCEPT, "text/event-stream")
                        .body(body.clone())
                },
                Parser::default,
            )
            .await
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
