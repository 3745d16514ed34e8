//! The model settings (providers, keys, fallback, reasoning, timeouts and retries) in the form the
//! `agents` crate takes.

use std::time::Duration;

use super::Config;
use super::values::{EffortChoice, ProviderChoice, Secret, SummaryChoice, expose_key};

/// The `User-Agent` of requests to the model APIs.
pub(crate) const MODEL_USER_AGENT: &str = concat!("openskies-agents/", env!("CARGO_PKG_VERSION"));

/// The `agents` name of a provider choice.
pub(super) fn provider_kind(choice: ProviderChoice) -> agents::ProviderKind {
    match choice {
        ProviderChoice::Openai => agents::ProviderKind::OpenAi,
        ProviderChoice::Gemini => agents::ProviderKind::Gemini,
        ProviderChoice::OpenaiCompatible => agents::ProviderKind::Compatible,
    }
}

impl Config {
    /// `REASONING_EFFORT` and `REASONING_SUMMARY` in the form the `agents` crate takes.
    fn reasoning(&self) -> agents::Reasoning {
        agents::Reasoning {
            effort: self.reasoning_effort.map(|e| match e {
                EffortChoice::Minimal => agents::ReasoningEffort::Minimal,
                EffortChoice::Low => agents::ReasoningEffort::Low,
                EffortChoice::Medium => agents::ReasoningEffort::Medium,
                EffortChoice::High => agents::ReasoningEffort::High,
            }),
            summary: self.reasoning_summary.map(|s| match s {
                SummaryChoice::Auto => agents::ReasoningSummary::Auto,
                SummaryChoice::Concise => agents::ReasoningSummary::Concise,
                SummaryChoice::Detailed => agents::ReasoningSummary::Detailed,
            }),
        }
    }

    /// The model settings in the form the `agents` crate takes.
    pub fn model_config(&self) -> agents::ModelConfig {
        let access = |key: &Option<Secret>, base_url: &str, var: &str| agents::ProviderAccess {
            api_key: expose_key(key).map(str::to_string),
            base_url: base_url.to_string(),
            rejected_key_hint: Some(format!("check {var} in .env")),
        };
        agents::ModelConfig {
            provider: self.model_provider.map(provider_kind),
            model: self.model.clone().filter(|m| !m.trim().is_empty()),
            fallback: self.model_fallback.map(provider_kind),
            fallback_model: self.fallback_model.clone().filter(|m| !m.trim().is_empty()),
            openai: access(&self.openai_api_key, &self.openai_base_url, "OPENAI_API_KEY"),
            gemini: access(&self.gemini_api_key, &self.gemini_base_url, "GEMINI_API_KEY"),
            compatible: self.compatible.model_settings(),
            transcription_model: self.transcription_model.clone(),
            timeouts: agents::Timeouts {
                connect: Duration::from_secs(self.model_connect_timeout_secs),
                first_byte: Duration::from_secs(self.model_first_byte_timeout_secs),
                idle: Duration::from_secs(self.model_idle_timeout_secs),
            },
            retry: agents::RetryPolicy {
                max_retries: self.model_max_retries,
                max_total_wait: Duration::from_secs(self.model_max_retry_wait_secs),
                ..agents::RetryPolicy::default()
            },
            user_agent: Some(MODEL_USER_AGENT.to_string()),
            reasoning: self.reasoning(),
        }
    }

    /// The model key names that are configured (for the banner), e.g. `["openai"]`.
    pub fn configured_providers(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if expose_key(&self.openai_api_key).is_some() {
            out.push("openai");
        }
        if expose_key(&self.gemini_api_key).is_some() {
            out.push("gemini");
        }
        if self.model_provider == Some(ProviderChoice::OpenaiCompatible) {
            out.push("openai-compatible");
        }
        out
    }
}
