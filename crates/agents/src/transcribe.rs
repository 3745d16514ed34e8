//! Dictation: the [`Transcriber`] trait and its two implementations, OpenAI's
//! `POST {base}/audio/transcriptions` (multipart, the configured transcription model) and Gemini's
//! `generateContent` with inline audio and a "transcribe verbatim" prompt (used when only a Gemini
//! key is configured). Both are async and share the providers' timeouts and retry policy.

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};

use crate::gemini;
use crate::provider::ProviderError;
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

/// Where a transcriber sends its clips.
#[derive(Debug, Clone)]
pub(crate) struct TranscriptionApi {
    transport: Transport,
    base_url: String,
    model: String,
}

impl TranscriptionApi {
    pub(crate) fn new(transport: Transport, base_url: &str, model: String) -> Self {
        TranscriptionApi { transport, base_url: base_url.trim_end_matches('/').to_string(), model }
    }
}

/// OpenAI's transcription endpoint.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiTranscriber(pub(crate) TranscriptionApi);

#[async_trait]
impl Transcriber for OpenAiTranscriber {
    async fn transcribe(&self, audio: Vec<u8>, media_type: &str, file_name: &str) -> Result<String, ProviderError> {
        let TranscriptionApi { transport: t, base_url, model } = &self.0;
        let url = format!("{base_url}/audio/transcriptions");
        let audio = bytes::Bytes::from(audio);
        let json = t
            .call_json(|client| {
                let file = || {
                    reqwest::multipart::Part::stream(reqwest::Body::from(audio.clone()))
                        .file_name(file_name.to_string())
                };
                // A media type reqwest cannot parse is left out rather than failing the clip.
                let part = file().mime_str(media_type).unwrap_or_else(|_| file());
                let form = reqwest::multipart::Form::new().text("model", model.clone()).part("file", part);
                client.post(&url).bearer_auth(t.secret()).multipart(form)
            })
            .await?;
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
pub(crate) struct GeminiTranscriber(pub(crate) TranscriptionApi);

#[async_trait]
impl Transcriber for GeminiTranscriber {
    async fn transcribe(&self, audio: Vec<u8>, media_type: &str, _file_name: &str) -> Result<String, ProviderError> {
        let TranscriptionApi { transport: t, base_url, model } = &self.0;
        let mime = media_type.split(';').next().map(str::trim).filter(|m| !m.is_empty()).unwrap_or("audio/webm");
        let data = base64::engine::general_purpose::STANDARD.encode(&audio);
        let body = json!({
            "contents": [{"role": "user", "parts": [
                {"text": GEMINI_TRANSCRIBE_PROMPT},
                {"inlineData": {"mimeType": mime, "data": data}}
            ]}]
        });
        let body = bytes::Bytes::from(body.to_string());
        let url = format!("{base_url}/v1beta/models/{model}:generateContent");
        let json = t.call_json(|_| gemini::post_json(t, &url, body.clone())).await?;
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
