//! Model configuration: which provider and model to use, keys, base URLs, timeouts and retries
//! ([`ModelConfig`], read from the environment by [`ModelConfig::from_env`]), and the factories
//! [`build_provider`] and [`build_transcriber`].
//!
//! Selection: `MODEL_PROVIDER` (`openai` | `gemini`) if set; else the provider `MODEL` obviously
//! names (`gemini-…`, `gpt-…`) when its key is set; else OpenAI when `OPENAI_API_KEY` is set, else
//! Gemini when `GEMINI_API_KEY` is set, else no provider. `Debug` never shows keys.

use std::sync::Arc;
use std::time::Duration;

use crate::gemini::GeminiProvider;
use crate::openai::OpenAiProvider;
use crate::provider::Provider;
use crate::retry::RetryPolicy;
use crate::transcribe::{GeminiTranscriber, OpenAiTranscriber, Transcriber};
use crate::transport::{Timeouts, Transport, build_client};

/// Default OpenAI base URL.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default Gemini base URL.
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// Default OpenAI model.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4.1-mini";
/// Default Gemini model.
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.5-flash";
/// Default OpenAI transcription model.
pub const DEFAULT_TRANSCRIPTION_MODEL: &str = "gpt-4o-transcribe";
/// The message for turns when no provider is configured.
pub const NO_PROVIDER_MESSAGE: &str =
    "No AI model is configured on this server: set OPENAI_API_KEY or GEMINI_API_KEY in .env and restart it.";

/// A model provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Responses API.
    OpenAi,
    /// Google Gemini native API.
    Gemini,
}

impl ProviderKind {
    /// `openai` / `gemini`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// The model used when none is configured.
    pub fn default_model(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi => DEFAULT_OPENAI_MODEL,
            ProviderKind::Gemini => DEFAULT_GEMINI_MODEL,
        }
    }

    /// The variable holding the key.
    pub fn key_var(&self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::Gemini => "GEMINI_API_KEY",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(ProviderKind::OpenAi),
            "gemini" | "google" => Ok(ProviderKind::Gemini),
            other => Err(ConfigError::UnknownProvider(other.to_string())),
        }
    }
}

/// Invalid model configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `MODEL_PROVIDER` is not `openai` or `gemini`.
    #[error("MODEL_PROVIDER must be `openai` or `gemini`, not `{0}`")]
    UnknownProvider(String),
    /// The chosen provider has no key.
    #[error("MODEL_PROVIDER is `{provider}` but {var} is not set (add it to .env)")]
    MissingKey {
        /// Chosen provider.
        provider: ProviderKind,
        /// The missing variable.
        var: &'static str,
    },
    /// A variable has an unusable value.
    #[error("{var} is invalid: {message}")]
    Invalid {
        /// Variable.
        var: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// Everything needed to talk to the model providers.
#[derive(Clone)]
pub struct ModelConfig {
    /// Explicit provider (`MODEL_PROVIDER`); `None` = pick by available keys.
    pub provider: Option<ProviderKind>,
    /// Model (`MODEL`); `None` = the provider's default.
    pub model: Option<String>,
    /// `OPENAI_API_KEY`.
    pub openai_api_key: Option<String>,
    /// `OPENAI_BASE_URL`.
    pub openai_base_url: String,
    /// `GEMINI_API_KEY` (or `GOOGLE_API_KEY`).
    pub gemini_api_key: Option<String>,
    /// `GEMINI_BASE_URL`.
    pub gemini_base_url: String,
    /// `TRANSCRIPTION_MODEL` (OpenAI; default `gpt-4o-transcribe`).
    pub transcription_model: Option<String>,
    /// Connect timeout (`MODEL_CONNECT_TIMEOUT_SECS`, default 10).
    pub connect_timeout: Duration,
    /// Wait for a response to start (`MODEL_FIRST_BYTE_TIMEOUT_SECS`, default 60).
    pub first_byte_timeout: Duration,
    /// Wait between chunks of a streaming response (`MODEL_IDLE_TIMEOUT_SECS`, default 60).
    pub idle_timeout: Duration,
    /// Retries of transient failures before the first event (`MODEL_MAX_RETRIES`, default 2).
    pub max_retries: u32,
    /// Total retry wait allowed (`MODEL_MAX_RETRY_WAIT_SECS`, default 30).
    pub max_retry_wait: Duration,
}

impl Default for ModelConfig {
    fn default() -> Self {
        let t = Timeouts::default();
        let r = RetryPolicy::default();
        ModelConfig {
            provider: None,
            model: None,
            openai_api_key: None,
            openai_base_url: DEFAULT_OPENAI_BASE_URL.into(),
            gemini_api_key: None,
            gemini_base_url: DEFAULT_GEMINI_BASE_URL.into(),
            transcription_model: None,
            connect_timeout: t.connect,
            first_byte_timeout: t.first_byte,
            idle_timeout: t.idle,
            max_retries: r.max_retries,
            max_retry_wait: r.max_total_wait,
        }
    }
}

impl std::fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "[redacted]");
        f.debug_struct("ModelConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("openai_api_key", &redact(&self.openai_api_key))
            .field("openai_base_url", &self.openai_base_url)
            .field("gemini_api_key", &redact(&self.gemini_api_key))
            .field("gemini_base_url", &self.gemini_base_url)
            .field("transcription_model", &self.transcription_model)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .finish()
    }
}

impl ModelConfig {
    /// Reads the configuration from the process environment (empty values count as unset).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (for tests and other sources).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let secs = |var: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or(ConfigError::Invalid { var, message: format!("`{v}` is not a positive number of seconds") }),
            }
        };
        let d = ModelConfig::default();
        let max_retries = match get("MODEL_MAX_RETRIES") {
            None => d.max_retries,
            Some(v) => v.parse::<u32>().ok().filter(|n| *n <= 10).ok_or(ConfigError::Invalid {
                var: "MODEL_MAX_RETRIES",
                message: format!("`{v}` is not a number from 0 to 10"),
            })?,
        };
        Ok(ModelConfig {
            provider: get("MODEL_PROVIDER").map(|p| p.parse()).transpose()?,
            model: get("MODEL"),
            openai_api_key: get("OPENAI_API_KEY"),
            openai_base_url: get("OPENAI_BASE_URL").unwrap_or(d.openai_base_url),
            gemini_api_key: get("GEMINI_API_KEY").or_else(|| get("GOOGLE_API_KEY")),
            gemini_base_url: get("GEMINI_BASE_URL").unwrap_or(d.gemini_base_url),
            transcription_model: get("TRANSCRIPTION_MODEL"),
            connect_timeout: secs("MODEL_CONNECT_TIMEOUT_SECS", d.connect_timeout)?,
            first_byte_timeout: secs("MODEL_FIRST_BYTE_TIMEOUT_SECS", d.first_byte_timeout)?,
            idle_timeout: secs("MODEL_IDLE_TIMEOUT_SECS", d.idle_timeout)?,
            max_retries,
            max_retry_wait: secs("MODEL_MAX_RETRY_WAIT_SECS", d.max_retry_wait)?,
        })
    }

    /// The provider that will be used: the explicit choice (its key must be set); else the family
    /// `MODEL` names (`gemini-…` → Gemini, `gpt-…`/`o<digit>…` → OpenAI) if its key is set; else
    /// OpenAI when its key is set, else Gemini when its key is set; else none.
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
            Some(kind) if self.key(kind).is_none() => {
                Err(ConfigError::MissingKey { provider: kind, var: kind.key_var() })
            }
            Some(kind) => Ok(Some(kind)),
            None if named.is_some_and(|k| self.key(k).is_some()) => Ok(named),
            None if self.openai_api_key.is_some() => Ok(Some(ProviderKind::OpenAi)),
            None if self.gemini_api_key.is_some() => Ok(Some(ProviderKind::Gemini)),
            None => Ok(None),
        }
    }

    /// The model that will be used with `kind`.
    pub fn model_for(&self, kind: ProviderKind) -> String {
        self.model.clone().unwrap_or_else(|| kind.default_model().to_string())
    }

    /// A one-line, secret-free description for start-up logs.
    pub fn describe(&self) -> String {
        match self.selected_provider() {
            Ok(Some(kind)) => format!("{kind} model {} at {}", self.model_for(kind), self.base_url(kind)),
            Ok(None) => "no model provider (OPENAI_API_KEY and GEMINI_API_KEY are unset)".into(),
            Err(e) => e.to_string(),
        }
    }

    fn key(&self, kind: ProviderKind) -> Option<&String> {
        match kind {
            ProviderKind::OpenAi => self.openai_api_key.as_ref(),
            ProviderKind::Gemini => self.gemini_api_key.as_ref(),
        }
    }

    fn base_url(&self, kind: ProviderKind) -> &str {
        match kind {
            ProviderKind::OpenAi => &self.openai_base_url,
            ProviderKind::Gemini => &self.gemini_base_url,
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts { connect: self.connect_timeout, first_byte: self.first_byte_timeout, idle: self.idle_timeout }
    }

    fn retry(&self) -> RetryPolicy {
        RetryPolicy { max_retries: self.max_retries, max_total_wait: self.max_retry_wait, ..RetryPolicy::default() }
    }

    fn transport(&self, kind: ProviderKind, key: &str) -> Result<Transport, ConfigError> {
        let base = self.base_url(kind);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            let var = match kind {
                ProviderKind::OpenAi => "OPENAI_BASE_URL",
                ProviderKind::Gemini => "GEMINI_BASE_URL",
            };
            return Err(ConfigError::Invalid { var, message: format!("`{base}` is not an http(s) URL") });
        }
        let timeouts = self.timeouts();
        let client = build_client(&timeouts).map_err(|e| ConfigError::Client(e.to_string()))?;
        let name = match kind {
            ProviderKind::OpenAi => "OpenAI",
            ProviderKind::Gemini => "Gemini",
        };
        Ok(Transport::new(client, name, kind.key_var(), key.to_string(), timeouts, self.retry()))
    }
}

/// The configured provider, or `None` when no key is set (every turn then ends with
/// [`NO_PROVIDER_MESSAGE`]). Fails on an unknown/keyless explicit choice or a bad base URL.
pub fn build_provider(cfg: &ModelConfig) -> Result<Option<Arc<dyn Provider>>, ConfigError> {
    let Some(kind) = cfg.selected_provider()? else {
        return Ok(None);
    };
    let key = cfg.key(kind).cloned().unwrap_or_default();
    let transport = cfg.transport(kind, &key)?;
    let model = cfg.model_for(kind);
    Ok(Some(match kind {
        ProviderKind::OpenAi => Arc::new(OpenAiProvider::new(transport, &cfg.openai_base_url, model)),
        ProviderKind::Gemini => Arc::new(GeminiProvider::new(transport, &cfg.gemini_base_url, model)),
    }))
}

/// The transcriber: OpenAI when its key is set, else Gemini when its key is set, else `None`.
pub fn build_transcriber(cfg: &ModelConfig) -> Option<Arc<dyn Transcriber>> {
    let built: Result<Arc<dyn Transcriber>, ConfigError> = if let Some(key) = &cfg.openai_api_key {
        let model = cfg.transcription_model.clone().unwrap_or_else(|| DEFAULT_TRANSCRIPTION_MODEL.into());
        cfg.transport(ProviderKind::OpenAi, key)
            .map(|t| Arc::new(OpenAiTranscriber::new(t, &cfg.openai_base_url, model)) as Arc<dyn Transcriber>)
    } else if let Some(key) = &cfg.gemini_api_key {
        let model = match (cfg.provider, &cfg.model) {
            (Some(ProviderKind::Gemini), Some(m)) => m.clone(),
            _ => DEFAULT_GEMINI_MODEL.to_string(),
        };
        cfg.transport(ProviderKind::Gemini, key)
            .map(|t| Arc::new(GeminiTranscriber::new(t, &cfg.gemini_base_url, model)) as Arc<dyn Transcriber>)
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
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<ModelConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ModelConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn selection_and_defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.selected_provider().unwrap(), None);
        assert!(build_provider(&c).unwrap().is_none());
        assert!(build_transcriber(&c).is_none());

        let c = cfg(&[("OPENAI_API_KEY", "sk-1"), ("GEMINI_API_KEY", "g-1")]).unwrap();
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi));
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("OpenAI", "gpt-4.1-mini"));
        assert_eq!(build_transcriber(&c).unwrap().name(), "OpenAI");

        let c = cfg(&[("GEMINI_API_KEY", "g-1"), ("OPENAI_API_KEY", " ")]).unwrap();
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("Gemini", "gemini-2.5-flash"));
        assert_eq!(build_transcriber(&c).unwrap().name(), "Gemini");

        let c = cfg(&[
            ("MODEL_PROVIDER", "Gemini"),
            ("MODEL", "gemini-3-pro"),
            ("OPENAI_API_KEY", "sk"),
            ("GEMINI_API_KEY", "g"),
        ])
        .unwrap();
        let p = build_provider(&c).unwrap().unwrap();
        assert_eq!((p.name(), p.model()), ("Gemini", "gemini-3-pro"));

        let c = cfg(&[("MODEL", "gemini-2.5-pro"), ("OPENAI_API_KEY", "sk"), ("GEMINI_API_KEY", "g")]).unwrap();
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::Gemini), "MODEL names the family");
        let c = cfg(&[("MODEL", "o4-mini"), ("OPENAI_API_KEY", "sk"), ("GEMINI_API_KEY", "g")]).unwrap();
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi));
        let c = cfg(&[("MODEL", "gemini-2.5-pro"), ("OPENAI_API_KEY", "sk")]).unwrap();
        assert_eq!(c.selected_provider().unwrap(), Some(ProviderKind::OpenAi), "no Gemini key: keys decide");

        let c = cfg(&[("MODEL_PROVIDER", "gemini"), ("OPENAI_API_KEY", "sk")]).unwrap();
        assert_eq!(
            build_provider(&c).err().unwrap().to_string(),
            "MODEL_PROVIDER is `gemini` but GEMINI_API_KEY is not set (add it to .env)"
        );
        assert!(matches!(cfg(&[("MODEL_PROVIDER", "claude")]), Err(ConfigError::UnknownProvider(_))));
        assert!(matches!(cfg(&[("MODEL_IDLE_TIMEOUT_SECS", "soon")]), Err(ConfigError::Invalid { .. })));
        let c = cfg(&[("OPENAI_API_KEY", "sk"), ("OPENAI_BASE_URL", "localhost:1")]).unwrap();
        assert!(matches!(build_provider(&c), Err(ConfigError::Invalid { var: "OPENAI_BASE_URL", .. })));
    }

    #[test]
    fn timeouts_are_read_and_debug_redacts_keys() {
        let c = cfg(&[
            ("OPENAI_API_KEY", "sk-very-secret"),
            ("GEMINI_API_KEY", "AIza-secret"),
            ("MODEL_IDLE_TIMEOUT_SECS", "0.5"),
            ("MODEL_MAX_RETRIES", "0"),
        ])
        .unwrap();
        assert_eq!(c.idle_timeout, Duration::from_millis(500));
        assert_eq!(c.max_retries, 0);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("openai_api_key: Some(\"[redacted]\")"), "{dbg}");
        assert!(!c.describe().contains("secret"));
    }
}
