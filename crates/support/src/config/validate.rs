//! Checks of the settings that clap cannot express by type, each failing with a message naming the
//! variable to fix.

use super::model::provider_kind;
use super::values::{CorsOrigins, ProviderChoice, expose_key, redact_url};
use super::{Config, ConfigError};

impl Config {
    /// Checks values clap cannot check by type.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.host.trim().is_empty() {
            return bad("HOST must not be empty (use 127.0.0.1, 0.0.0.0 or a host name)".into());
        }
        if !(0.0..=2.0).contains(&self.temperature) || self.temperature.is_nan() {
            return bad(format!("TEMPERATURE must be between 0 and 2, got {}", self.temperature));
        }
        if self.max_body_bytes < 1024 {
            return bad(format!("MAX_BODY_BYTES must be at least 1024, got {}", self.max_body_bytes));
        }
        if self.max_upload_bytes == 0 {
            return bad("MAX_UPLOAD_BYTES must be greater than 0".into());
        }
        if self.database_pool_size == Some(0) {
            return bad("DATABASE_POOL_SIZE must be at least 1".into());
        }
        for (name, secs) in [
            ("MODEL_CONNECT_TIMEOUT_SECS", self.model_connect_timeout_secs),
            ("MODEL_FIRST_BYTE_TIMEOUT_SECS", self.model_first_byte_timeout_secs),
            ("MODEL_IDLE_TIMEOUT_SECS", self.model_idle_timeout_secs),
            ("HEADER_READ_TIMEOUT_SECS", self.header_read_timeout_secs),
            ("BODY_READ_TIMEOUT_SECS", self.body_read_timeout_secs),
            ("IDLE_TIMEOUT_SECS", self.idle_timeout_secs),
            ("STREAM_STALL_TIMEOUT_SECS", self.stream_stall_timeout_secs),
        ] {
            if secs == 0 {
                return bad(format!("{name} must be at least 1 second"));
            }
        }
        if self.model_max_retries > 10 {
            return bad(format!("MODEL_MAX_RETRIES must be from 0 to 10, got {}", self.model_max_retries));
        }
        let db = self.database_url.trim();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("memory:"))
        {
            return bad(format!(
                "DATABASE_URL must start with sqlite:, postgres://, postgresql:// or memory:, got `{}`",
                redact_url(db)
            ));
        }
        for (name, url) in [("OPENAI_BASE_URL", &self.openai_base_url), ("GEMINI_BASE_URL", &self.gemini_base_url)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("{name} must start with http:// or https://, got `{url}`"));
            }
        }
        self.cors_origins()?;
        self.auth.validate().map_err(|e| ConfigError::Invalid(e.0))?;
        self.public_url.validate().map_err(ConfigError::Invalid)?;
        self.signed_urls.validate().map_err(ConfigError::Invalid)?;
        self.metrics.validate().map_err(ConfigError::Invalid)?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.rust_log) {
            return bad(format!("RUST_LOG `{}` is not a valid log filter: {e}", self.rust_log));
        }
        let compatible_chosen = self.model_provider == Some(ProviderChoice::OpenaiCompatible);
        self.compatible.validate(compatible_chosen, self.model.as_deref()).map_err(ConfigError::Invalid)?;
        let keyed = match self.model_provider {
            Some(ProviderChoice::Openai) => Some(("openai", "OPENAI_API_KEY", &self.openai_api_key)),
            Some(ProviderChoice::Gemini) => Some(("gemini", "GEMINI_API_KEY", &self.gemini_api_key)),
            // Its key is optional; the base URL and model were checked above.
            Some(ProviderChoice::OpenaiCompatible) | None => None,
        };
        if let Some((name, var, key)) = keyed
            && expose_key(key).is_none()
        {
            return bad(format!("MODEL_PROVIDER is `{name}` but {var} is not set (add it to .env)"));
        }
        self.validate_fallback()
    }

    /// `MODEL_FALLBACK` needs its own key and must name the provider that is not answering already;
    /// `FALLBACK_MODEL` means nothing without it.
    fn validate_fallback(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let Some(choice) = self.model_fallback else {
            if self.fallback_model.as_deref().is_some_and(|m| !m.trim().is_empty()) {
                return bad("FALLBACK_MODEL is set but MODEL_FALLBACK is not (set it to openai or gemini)".into());
            }
            return Ok(());
        };
        let (name, var, key) = match choice {
            ProviderChoice::Openai => ("openai", "OPENAI_API_KEY", &self.openai_api_key),
            ProviderChoice::Gemini => ("gemini", "GEMINI_API_KEY", &self.gemini_api_key),
            ProviderChoice::OpenaiCompatible => {
                return bad("MODEL_FALLBACK must be openai or gemini, got `openai-compatible`".into());
            }
        };
        if expose_key(key).is_none() {
            return bad(format!("MODEL_FALLBACK is `{name}` but {var} is not set (add it to .env)"));
        }
        if self.model_config().selected_provider().ok().flatten() == Some(provider_kind(choice)) {
            return bad(format!(
                "MODEL_FALLBACK is `{name}`, the provider already answering chat turns; set it to the other provider"
            ));
        }
        Ok(())
    }

    /// The parsed `CORS_ALLOW_ORIGINS`.
    pub fn cors_origins(&self) -> Result<CorsOrigins, ConfigError> {
        let raw = self.cors_allow_origins.trim();
        if raw.is_empty() || raw == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut list = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                return Ok(CorsOrigins::Any);
            }
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && origin.bytes().all(|b| b.is_ascii_graphic())
                && !origin.trim_start_matches("https://").trim_start_matches("http://").contains('/');
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "CORS_ALLOW_ORIGINS entry `{origin}` is not an origin like http://localhost:5171 (no path, no trailing slash)"
                )));
            }
            list.push(origin.to_string());
        }
        Ok(CorsOrigins::List(list))
    }
}
