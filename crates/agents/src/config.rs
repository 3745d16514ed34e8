//! What the runtime needs to reach the model providers ([`ModelConfig`]), the defaults of every model
//! setting, and the factories [`build_provider`] and [`build_transcriber`].
//!
//! This crate reads no environment and no files: the application fills in a [`ModelConfig`] from its own
//! settings and hands it over, so the defaults below are the only model settings defined here.
//! Provider choice: the explicit [`ModelConfig::provider`] if given (its key must be set); else the
//! family [`ModelConfig::model`] obviously names (`gemini-…`, `gpt-…`, `o3…`) when that family's key
//! is set; else OpenAI when its key is set, else Gemini when its key is set, else no provider. An
//! OpenAI-compatible server is only used when chosen explicitly; it needs a base URL and a model, and
//! its key is optional.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::compatible::CompatibleProvider;
use crate::failover::FallbackProvider;
use crate::gemini::GeminiProvider;
use crate::openai::OpenAiProvider;
use crate::provider::Provider;
use crate::reasoning::Reasoning;
use crate::retry::RetryPolicy;
use crate::transcribe::{GeminiTranscriber, OpenAiTranscriber, Transcriber, TranscriptionApi};
use crate::transport::{Timeouts, Transport, build_client};

/// The OpenAI API, for the Responses and transcription endpoints.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Google's Gemini API (the `/v1beta/models/…` paths are appended).
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The OpenAI model used when none is configured (the sample's model).
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4.1-mini";
/// The Gemini model used when none is configured, also for dictation when only Gemini has a key.
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.5-flash";
/// The OpenAI model that transcribes dictation when none is configured.
pub const DEFAULT_TRANSCRIPTION_MODEL: &str = "gpt-4o-transcribe";
/// How long opening a connection to a model API may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a model API may take to start answering (headers, then the first body chunk).
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a started response may stay silent before the call fails as stalled.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries of a call that failed transiently before anything was streamed.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Total time a call may spend sleeping between retries.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The model APIs this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Responses API.
    OpenAi,
    /// Google Gemini native API.
    Gemini,
    /// An OpenAI-compatible Chat Completions server (Ollama, vLLM, llama.cpp, OpenRouter, …).
    Compatible,
}

impl ProviderKind {
    /// `openai` / `gemini`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Compatible => "openai-compatible",
        }
    }

    /// The model used when none is configured (`None`: the model must be configured).
    pub fn default_model(&self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some(DEFAULT_OPENAI_MODEL),
            ProviderKind::Gemini => Some(DEFAULT_GEMINI_MODEL),
            ProviderKind::Compatible => None,
        }
    }

    /// The name in errors and logs (`OpenAI`, `Gemini`).
    fn display_name(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OpenAI",
            ProviderKind::Gemini => "Gemini",
            ProviderKind::Compatible => crate::compatible::PROVIDER,
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model configuration no provider can be built from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The provider chosen explicitly has no key.
    #[error("the {0} provider was chosen but has no API key")]
    MissingKey(ProviderKind),
    /// A base URL is not an `http(s)://` URL.
    #[error("the {provider} base URL `{url}` is not an http(s) URL")]
    BaseUrl {
        /// Whose base URL.
        provider: ProviderKind,
        /// The rejected value.
        url: String,
    },
    /// The fallback provider has no key.
    #[error("the {0} fallback provider has no API key")]
    MissingFallbackKey(ProviderKind),
    /// The fallback provider is the one already answering.
    #[error("the fallback provider {0} is the provider already answering chat turns; name the other one")]
    FallbackIsPrimary(ProviderKind),
    /// The HTTP client could not be built (TLS set-up).
    #[error("could not build the HTTP client: {0}")]
    Client(String),
    /// The provider has no default model and none was configured.
    #[error("the {0} provider needs a model name")]
    MissingModel(ProviderKind),
    /// An extra header is unusable (the value is never shown: it may be a credential).
    #[error("the extra header `{name}` {problem}")]
    Header {
        /// The header's name as configured.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// How to reach one provider's API.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderAccess {
    /// The API key; `None` leaves the provider unconfigured.
    pub api_key: Option<String>,
    /// Where the API lives (trailing slashes are ignored).
    pub base_url: String,
    /// Advice shown in parentheses when the API rejects the key, telling the operator where the key is
    /// set (e.g. `check the API key setting`); `None` adds nothing.
    pub rejected_key_hint: Option<String>,
}

impl ProviderAccess {
    /// No key, at `base_url`.
    pub fn new(base_url: impl Into<String>) -> Self {
        ProviderAccess { api_key: None, base_url: base_url.into(), rejected_key_hint: None }
    }
}

impl std::fmt::Debug for ProviderAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderAccess")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("rejected_key_hint", &self.rejected_key_hint)
            .finish()
    }
}

/// How to reach an OpenAI-compatible Chat Completions server. `Debug` shows header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct CompatibleSettings {
    /// The server's base URL (`…/v1`) and its key, if it needs one (sent as a bearer token).
    pub access: ProviderAccess,
    /// Extra headers sent with every request, as (name, value); values are kept out of logs and
    /// error texts like the key.
    pub headers: Vec<(String, String)>,
    /// `max_tokens` of every request; `None` leaves the limit to the server.
    pub max_tokens: Option<u32>,
}

impl std::fmt::Debug for CompatibleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("CompatibleSettings")
            .field("access", &self.access)
            .field("header_names", &names)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl Default for CompatibleSettings {
    /// No server (an empty base URL), no key, no extra headers, no limit.
    fn default() -> Self {
        CompatibleSettings { access: ProviderAccess::new(""), headers: Vec::new(), max_tokens: None }
    }
}

impl CompatibleSettings {
    /// The extra headers as a header map.
    fn header_map(&self) -> Result<HeaderMap, ConfigError> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let bad = |problem| ConfigError::Header { name: name.clone(), problem };
            let header =
                HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad("is not a valid header name"))?;
            if header == reqwest::header::AUTHORIZATION
                && self.access.api_key.as_deref().is_some_and(|k| !k.trim().is_empty())
            {
                return Err(bad("conflicts with the API key (which is sent as the Authorization header)"));
            }
            let mut value =
                HeaderValue::from_str(value.trim()).map_err(|_| bad("has a value that is not a valid header value"))?;
            value.set_sensitive(true);
            map.append(header, value);
        }
        Ok(map)
    }
}

/// Everything needed to talk to the model providers. `Debug` never shows keys.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The provider answering chat turns; `None` picks one by the model name and the keys present.
    pub provider: Option<ProviderKind>,
    /// The chat model; `None` uses the provider's [`ProviderKind::default_model`].
    pub model: Option<String>,
    /// The provider answering a turn the chat provider could not (see [`crate::FallbackProvider`]);
    /// `None` turns failover off.
    pub fallback: Option<ProviderKind>,
    /// The fallback provider's model; `None` uses its [`ProviderKind::default_model`].
    pub fallback_model: Option<String>,
    /// The OpenAI API (chat turns and dictation).
    pub openai: ProviderAccess,
    /// The Gemini API (chat turns, and dictation when OpenAI has no key).
    pub gemini: ProviderAccess,
    /// An OpenAI-compatible server (chat turns only, when chosen).
    pub compatible: CompatibleSettings,
    /// The OpenAI model that transcribes dictation.
    pub transcription_model: String,
    /// The waits of every model call.
    pub timeouts: Timeouts,
    /// Retries of calls that failed before streaming.
    pub retry: RetryPolicy,
    /// The `User-Agent` of model requests; `None` sends none.
    pub user_agent: Option<String>,
    /// Reasoning effort and summary of every chat model call (unset by default: nothing is sent).
    pub reasoning: Reasoning,
}

impl Default for ModelConfig {
    /// No keys, the public APIs, and the default models, waits and retries.
    fn default() -> Self {
        ModelConfig {
            provider: None,
            model: None,
            fallback: None,
            fallback_model: None,
            openai: ProviderAccess::new(DEFAULT_OPENAI_BASE_URL),
            gemini: ProviderAccess::new(DEFAULT_GEMINI_BASE_URL),
            compatible: CompatibleSettings::default(),
            transcription_model: DEFAULT_TRANSCRIPTION_MODEL.into(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            user_agent: None,
            reasoning: Reasoning::default(),
        }
    }
}

impl ModelConfig {
    /// The provider that will answer chat turns (see the module docs), or `None` without any key.
    pub fn selected_provider(&self) -> Result<Option<ProviderKind>, ConfigError> {
        let named = self.model.as_deref().map(str::to_ascii_lowercase).and_then(|m| {
            let m = m.strip_prefix("models/").unwrap_or(&m).to_string();
            let o_series = m.starts_with('o') && m[1..].starts_with(|c: char| c.is_ascii_digit());
            if m.starts_with("gemini") {
                Some(ProviderKind::Gemini)
            } else if m.starts_with("gpt") || o_series {
                Some(ProviderKind::OpenAi)
            } else {
                None
            }
        });
        match self.provider {
            Some(ProviderKind::Compatible) => Ok(Some(ProviderKind::Compatible)),
            Some(kind) if self.key(kind).is_none() => Err(ConfigError::MissingKey(kind)),
            Some(kind) => Ok(Some(kind)),
            None if named.is_some_and(|k| self.key(k).is_some()) => Ok(named),
            None if self.key(ProviderKind::OpenAi).is_some() => Ok(Some(ProviderKind::OpenAi)),
            None if self.key(ProviderKind::Gemini).is_some() => Ok(Some(ProviderKind::Gemini)),
            None => Ok(None),
        }
    }

    fn access(&self, kind: ProviderKind) -> &ProviderAccess {
        match kind {
            ProviderKind::OpenAi => &self.openai,
            ProviderKind::Gemini => &self.gemini,
            ProviderKind::Compatible => &self.compatible.access,
        }
    }

    /// The key of `kind`, if set and not blank.
    fn key(&self, kind: ProviderKind) -> Option<&str> {
        self.access(kind).api_key.as_deref().map(str::trim).filter(|k| !k.is_empty())
    }

    fn transport(&self, kind: ProviderKind, key: &str) -> Result<Transport, ConfigError> {
        let access = self.access(kind);
        let base = &access.base_url;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::BaseUrl { provider: kind, url: base.clone() });
        }
        let client =
            build_client(&self.timeouts, self.user_agent.as_deref()).map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Transport::new(
            client,
            kind.display_name(),
            access.rejected_key_hint.clone(),
            key.to_string(),
            self.timeouts,
            self.retry,
        ))
    }
}

/// The configured provider, or `None` when no key is set (the application then answers turns itself,
/// e.g. with an error telling the operator to add a key). With [`ModelConfig::fallback`] set, the
/// provider is a [`FallbackProvider`] over both. Fails on a keyless explicit choice or fallback, a
/// fallback that is the chat provider itself, or a bad base URL.
pub fn build_provider(cfg: &ModelConfig) -> Result<Option<Arc<dyn Provider>>, ConfigError> {
    let Some(kind) = cfg.selected_provider()? else {
        return Ok(None);
    };
    let model = match (&cfg.model, kind.default_model()) {
        (Some(model), _) => model.clone(),
        (None, Some(default)) => default.to_string(),
        (None, None) => return Err(ConfigError::MissingModel(kind)),
    };
    let primary = build_one(cfg, kind, model)?;
    let Some(fallback) = cfg.fallback else {
        return Ok(Some(primary));
    };
    if fallback == kind {
        return Err(ConfigError::FallbackIsPrimary(fallback));
    }
    if cfg.key(fallback).is_none() {
        return Err(ConfigError::MissingFallbackKey(fallback));
    }
    let model = match (&cfg.fallback_model, fallback.default_model()) {
        (Some(model), _) => model.clone(),
        (None, Some(default)) => default.to_string(),
        (None, None) => return Err(ConfigError::MissingModel(fallback)),
    };
    let secondary = build_one(cfg, fallback, model)?;
    Ok(Some(Arc::new(FallbackProvider::new(primary, secondary))))
}

/// The provider `kind` answering with `model` (its key must be set).
fn build_one(cfg: &ModelConfig, kind: ProviderKind, model: String) -> Result<Arc<dyn Provider>, ConfigError> {
    let key = cfg.key(kind).unwrap_or_default();
    let transport = cfg.transport(kind, key)?;
    let base_url = &cfg.access(kind).base_url;
    Ok(match kind {
        ProviderKind::OpenAi => Arc::new(OpenAiProvider::new(transport, base_url, model, cfg.reasoning)),
        ProviderKind::Gemini => Arc::new(GeminiProvider::new(transport, base_url, model, cfg.reasoning)),
        ProviderKind::Compatible => {
            let settings = &cfg.compatible;
            let headers = settings.header_map()?;
            let transport = transport.redacting(settings.headers.iter().map(|(_, v)| v.trim().to_string()));
            Arc::new(CompatibleProvider::new(transport, base_url, model, headers, settings.max_tokens))
        }
    })
}

/// The transcriber: OpenAI when its key is set, else Gemini when its key is set, else `None`. A
/// transcriber that cannot be built is logged and left out: dictation is optional.
pub fn build_transcriber(cfg: &ModelConfig) -> Option<Arc<dyn Transcriber>> {
    let built: Result<Arc<dyn Transcriber>, ConfigError> = if let Some(key) = cfg.key(ProviderKind::OpenAi) {
        let model = cfg.transcription_model.clone();
        cfg.transport(ProviderKind::OpenAi, key).map(|t| {
            Arc::new(OpenAiTranscriber(TranscriptionApi::new(t, &cfg.openai.base_url, model))) as Arc<dyn Transcriber>
        })
    } else if let Some(key) = cfg.key(ProviderKind::Gemini) {
        // The chat model transcribes too when Gemini was chosen explicitly; otherwise the default one.
        let model = match (cfg.provider, &cfg.model) {
            (Some(ProviderKind::Gemini), Some(m)) => m.clone(),
            _ => DEFAULT_GEMINI_MODEL.to_string(),
        };
        cfg.transport(ProviderKind::Gemini, key).map(|t| {
            Arc::new(GeminiTranscriber(TranscriptionApi::new(t, &cfg.gemini.base_url, model))) as Arc<dyn Transcriber>
        })
    } else {
        return None;
    };
    match built {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "dictation disabled");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(openai: Option<&str>, gemini: Option<&str>) -> ModelConfig {
        let mut c = ModelConfig::default();
        c.openai.api_key = openai.map(str::to_string);
        c.gemini.api_key = gemini.map(str::to_string);
        c
    }

    fn with_model(mut c: ModelConfig, provider: Option<ProviderKind>, model: &str) -> ModelConfig {
        c.provider = provider;
        c.model = Some(model.into());
        c
    }

    #[test]
    fn selection_and_defaults() {
        let c = cfg(None, None);
        assert_eq!(c.selected_provider().unwrap(), None);
        assert!(build_provider(&c).unwrap().is_none());
        assert!(build_transcriber(&c).is_none());

        let c = cfg(Some("sk-1"), Some("g-1"));
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi));
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("OpenAI", DEFAULT_OPENAI_MODEL));
        assert_eq!(build_transcriber(&c).unwrap().name(), "OpenAI");

        let c = cfg(Some(" "), Some("g-1"));
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("Gemini", DEFAULT_GEMINI_MODEL));
        assert_eq!(build_transcriber(&c).unwrap().name(), "Gemini");

        let c = with_model(cfg(Some("sk"), Some("g")), Some(ProviderKind::Gemini), "gemini-3-pro");
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("Gemini", "gemini-3-pro"));
    }

    #[test]
    fn the_compatible_server_is_only_used_when_chosen() {
        let mut c = cfg(Some("sk"), None);
        c.compatible.access.base_url = "http://127.0.0.1:11434/v1".into();
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi));
        c.provider = Some(ProviderKind::Compatible);
        assert!(matches!(build_provider(&c), Err(ConfigError::MissingModel(ProviderKind::Compatible))));
        c.model = Some("qwen3:8b".into());
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("OpenAI-compatible", "qwen3:8b"));
        // Dictation stays on OpenAI.
        assert_eq!(build_transcriber(&c).unwrap().name(), "OpenAI");
        c.compatible.access.base_url = String::new();
        assert!(matches!(build_provider(&c), Err(ConfigError::BaseUrl { provider: ProviderKind::Compatible, .. })));
    }

    #[test]
    fn compatible_headers_are_checked_and_never_shown() {
        let mut c =
            ModelConfig { provider: Some(ProviderKind::Compatible), model: Some("m".into()), ..Default::default() };
        c.compatible.access.base_url = "https://openrouter.ai/api/v1".into();
        c.compatible.headers = vec![("HTTP-Referer".into(), "https://secret.example".into())];
        assert!(build_provider(&c).unwrap().is_some());
        let dbg = format!("{c:?}");
        assert!(dbg.contains("HTTP-Referer") && !dbg.contains("secret.example"), "{dbg}");
        c.compatible.headers = vec![("Bad Name".into(), "x".into())];
        let e = build_provider(&c).err().unwrap().to_string();
        assert_eq!(e, "the extra header `Bad Name` is not a valid header name");
        c.compatible.headers = vec![("Authorization".into(), "Bearer other".into())];
        assert!(build_provider(&c).is_ok(), "without a key the header may carry the credential");
        c.compatible.access.api_key = Some("k".into());
        assert!(build_provider(&c).err().unwrap().to_string().contains("conflicts with the API key"));
    }

    #[test]
    fn the_model_name_picks_the_family_when_its_key_is_set() {
        let c = with_model(cfg(Some("sk"), Some("g")), None, "gemini-2.5-pro");
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::Gemini));
        let c = with_model(cfg(Some("sk"), Some("g")), None, "o4-mini");
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi));
        let c = with_model(cfg(Some("sk"), None), None, "gemini-2.5-pro");
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi), "no Gemini key: keys decide");
    }

    #[test]
    fn unusable_choices_are_errors() {
        let mut c = cfg(Some("sk"), None);
        c.provider = Some(ProviderKind::Gemini);
        assert_eq!(build_provider(&c).err().unwrap().to_string(), "the gemini provider was chosen but has no API key");
        let mut c = cfg(Some("sk"), None);
        c.openai.base_url = "localhost:1".into();
        assert!(matches!(build_provider(&c), Err(ConfigError::BaseUrl { provider: ProviderKind::OpenAi, .. })));
    }

    #[test]
    fn fallback_wraps_the_chat_provider() {
        let mut c = cfg(Some("sk"), Some("g"));
        c.fallback = Some(ProviderKind::Gemini);
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("OpenAI", DEFAULT_OPENAI_MODEL));
        assert!(p.for_run().is_some(), "a failover provider keeps per-turn state");
        assert!(format!("{c:?}").contains("fallback: Some(Gemini)"));
        c.fallback = Some(ProviderKind::OpenAi);
        assert!(matches!(build_provider(&c), Err(ConfigError::FallbackIsPrimary(ProviderKind::OpenAi))));
        let mut c = cfg(Some("sk"), None);
        c.fallback = Some(ProviderKind::Gemini);
        assert!(matches!(build_provider(&c), Err(ConfigError::MissingFallbackKey(ProviderKind::Gemini))));
    }

    #[test]
    fn debug_redacts_keys() {
        let c = cfg(Some("sk-very-secret"), Some("AIza-secret"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("api_key: Some(\"[redacted]\")"), "{dbg}");
    }
}
