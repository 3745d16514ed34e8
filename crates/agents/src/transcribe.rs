//! Dictation: the [`Transcriber`] trait and its two implementations, OpenAI's
//! `POST {base}/audio/transcriptions` (multipart, the configured transcription model) and Gemini's
//! `generateContent` with inline audio and a "transcribe verbatim" prompt (used when only a Gemini
//! key is configured). Both are async and share the providers' timeouts and retry policy.

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};

use crate::gemini;
use crate::provider::ProviderError;
use crate::retry::with_retries;
use crate::transport::Transport;

/// The prompt sent with the audio to Gemini.
pub const GEMINI_TRANSCRIBE_PROMPT: &str = "Transcribe this audio verbatim.";

/// Speech to text, for dictation: one call per recorded clip.
#[async_trait]
pub trait Transcriber: Send + Sync {
    /// Transcribes `audio` (`media_type` may carry parameters, e.g. `audio/webm;codecs=opus`).
    async fn transcribe(&self, audio: Vec<u8>, media_type: &str, file_name: &str) -> Result<String, ProviderError>;
    /// Human name of the service (`OpenAI`, `Gemini`).
    fn name(&self) -> &'static str;
}

/// OpenAI's transcription endpoint.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiTranscriber {
    transport: Transport,
    base_url: String,
    model: String,
}

impl OpenAiTranscriber {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String) -> Self {
        OpenAiTranscriber { transport, base_url: base_url.trim_end_matches('/').to_string(), model }
    }
}

#[async_trait]
impl Transcriber for OpenAiTranscriber {
    async fn transcribe(&self, audio: Vec<u8>, media_type: &str, file_name: &str) -> Result<String, ProviderError> {
        let t = &self.transport;
        let url = format!("{}/audio/transcriptions", self.base_url);
        let audio = bytes::Bytes::from(audio);
        let body = with_retries(&t.retry, t.provider, |_| {
            let part =
                reqwest::multipart::Part::stream(reqwest::Body::from(audio.clone())).file_name(file_name.to_string());
            let part = match part.mime_str(media_type) {
                Ok(p) => p,
                Err(_) => reqwest::multipart::Part::stream(reqwest::Body::from(audio.clone()))
                    .file_name(file_name.to_string()),
            };
            let form = reqwest::multipart::Form::new().text("model", self.model.clone()).part("file", part);
            let req = t.client.post(&url).bearer_auth(t.secret()).multipart(form);
            async move {
                let response = t.send(req).await?;
                t.read_body(response).await
            }
        })
        .await?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Decode { provider: t.provider, message: e.to_string() })?;
        json.get("text").and_then(Value::as_str).map(|s| s.trim().to_string()).ok_or_else(|| ProviderError::Decode {
            provider: t.provider,
            message: "the transcription response has no `text`".into(),
        })
    }

    fn name(&self) -> &'static str {
        "OpenAI"
    }
}

/// Gemini's `generateContent` with the audio inline, for servers with only a Gemini key.
#[derive(Debug, Clone)]
pub(crate) struct GeminiTranscriber {
    transport: Transport,
    base_url: String,
    model: String,
}

impl GeminiTranscriber {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String) -> Self {
        GeminiTranscriber { transport, base_url: base_url.trim_end_matches('/').to_string(), model }
    }
}

#[async_trait]
impl Transcriber for GeminiTranscriber {
    async fn transcribe(&self, audio: Vec<u8>, media_type: &str, _file_name: &str) -> Result<String, ProviderError> {
        let t = &self.transport;
        let mime = media_type.split(';').next().map(str::trim).filter(|m| !m.is_empty()).unwrap_or("audio/webm");
        let data = base64::engine::general_purpose::STANDARD.encode(&audio);
        let body = json!({
            "contents": [{"role": "user", "parts": [
                {"text": GEMINI_TRANSCRIBE_PROMPT},
                {"inlineData": {"mimeType": mime, "data": data}}
            ]}]
        });
        let body = bytes::Bytes::from(body.to_string());
        let url = format!("{}/v1beta/models/{}:generateContent", self.base_url, self.model);
        let bytes = with_retries(&t.retry, t.provider, |_| {
            let req = gemini::post_json(t, &url, body.clone());
            async move {
                let response = t.send(req).await?;
                t.read_body(response).await
            }
        })
        .await?;
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::Decode { provider: t.provider, message: e.to_string() })?;
        if let Some(message) = json.pointer("/error/message").and_then(Value::as_str) {
            return Err(ProviderError::Failed {
                provider: t.provider,
                message: t.redact(message),
                retryable: false,
                code: None,
            });
        }
        let text: String = json
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        Ok(text.trim().to_string())
    }

    fn name(&self) -> &'static str {
        "Gemini"
    }
}
