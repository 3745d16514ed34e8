//! The value types of settings that clap parses: secrets that never print, on/off switches, the provider
//! and reasoning choices, the CORS origin list, and the helpers that keep secrets out of output.

use std::fmt;

use clap::ValueEnum;

/// A secret value (API key). `Debug` and `Display` print `<redacted>`; use `Secret::expose` to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; never log it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.trim().to_string()))
    }
}

/// Which model provider answers chat turns when both keys are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderChoice {
    /// OpenAI Responses API.
    Openai,
    /// Google Gemini API.
    Gemini,
    /// An OpenAI-compatible Chat Completions server (`COMPATIBLE_*` settings).
    OpenaiCompatible,
}

/// `REASONING_EFFORT`: how much a reasoning model thinks (see [`agents::ReasoningEffort`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EffortChoice {
    /// As little as the model allows.
    Minimal,
    /// Little.
    Low,
    /// The models' usual default.
    Medium,
    /// Thorough.
    High,
}

/// `REASONING_SUMMARY`: how detailed the shown summary of the reasoning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryChoice {
    /// The most detailed summary the model supports.
    Auto,
    /// Short.
    Concise,
    /// Long.
    Detailed,
}

/// An on/off switch accepting `on|off|true|false|1|0|yes|no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl std::str::FromStr for Switch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(Switch(true)),
            "off" | "false" | "0" | "no" => Ok(Switch(false)),
            other => Err(format!("expected on or off, got `{other}`")),
        }
    }
}

impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "on" } else { "off" })
    }
}

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin (the sample's behaviour).
    Any,
    /// Only these exact origins (`scheme://host[:port]`).
    List(Vec<String>),
}

/// A key that is set and not blank.
pub(super) fn expose_key(key: &Option<Secret>) -> Option<&str> {
    key.as_ref().map(Secret::expose).filter(|k| !k.is_empty())
}

/// Hides the password of a database URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}
