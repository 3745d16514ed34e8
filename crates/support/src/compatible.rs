//! The settings of an OpenAI-compatible Chat Completions server (`MODEL_PROVIDER=openai-compatible`):
//! `COMPATIBLE_BASE_URL`, `COMPATIBLE_API_KEY`, `COMPATIBLE_HEADERS` and `COMPATIBLE_MAX_TOKENS`.
//!
//! `COMPATIBLE_HEADERS` is a comma-separated list of `Name=Value` pairs, e.g.
//! `HTTP-Referer=https://support.example.com,X-Title=OpenSkies`; blanks around names and values are
//! dropped and a value cannot contain a comma. Header values are treated like the key: `Debug`, `--help`
//! and error messages show the names only.

use std::fmt;

use clap::Args;

use crate::config::Secret;

/// The `COMPATIBLE_*` settings.
#[derive(Clone, Default, PartialEq, Eq, Args)]
pub struct CompatibleServerSettings {
    /// Base URL of the OpenAI-compatible server (with MODEL_PROVIDER=openai-compatible), e.g.
    /// `http://127.0.0.1:11434/v1` for Ollama; `/chat/completions` is appended.
    #[arg(long, env = "COMPATIBLE_BASE_URL")]
    pub compatible_base_url: Option<String>,
    /// API key of the OpenAI-compatible server, sent as a bearer token (many local servers need none).
    #[arg(long, env = "COMPATIBLE_API_KEY", hide_env_values = true)]
    pub compatible_api_key: Option<Secret>,
    /// Extra headers for the OpenAI-compatible server: comma-separated `Name=Value` pairs, e.g.
    /// `HTTP-Referer=https://example.com,X-Title=OpenSkies` (values are never logged).
    #[arg(long, env = "COMPATIBLE_HEADERS", hide_env_values = true)]
    pub compatible_headers: Option<Secret>,
    /// Largest answer, in tokens, asked of the OpenAI-compatible server (`max_tokens`; default: the
    /// server's own limit).
    #[arg(long, env = "COMPATIBLE_MAX_TOKENS")]
    pub compatible_max_tokens: Option<u32>,
}

impl fmt::Debug for CompatibleServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Option<Vec<String>> =
            self.headers().ok().map(|headers| headers.into_iter().map(|(name, _)| name).collect());
        f.debug_struct("CompatibleServerSettings")
            .field("compatible_base_url", &self.compatible_base_url)
            .field("compatible_api_key", &self.compatible_api_key)
            .field("compatible_header_names", &names)
            .field("compatible_max_tokens", &self.compatible_max_tokens)
            .finish()
    }
}

impl CompatibleServerSettings {
    /// The parsed `COMPATIBLE_HEADERS` as (name, value) pairs; the error names the setting and the
    /// entry's header name, never a value.
    pub fn headers(&self) -> Result<Vec<(String, String)>, String> {
        let raw = self.compatible_headers.as_ref().map(Secret::expose).unwrap_or_default();
        let mut out = Vec::new();
        for (position, entry) in raw.split(',').map(str::trim).enumerate().filter(|(_, e)| !e.is_empty()) {
            let Some((name, value)) = entry.split_once('=') else {
                return Err(format!(
                    "COMPATIBLE_HEADERS entry {} is not `Name=Value` (comma-separated pairs, e.g. X-Title=OpenSkies)",
                    position + 1
                ));
            };
            let name = name.trim();
            let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !valid_name {
                return Err(format!("COMPATIBLE_HEADERS entry {} has no valid header name", position + 1));
            }
            let value = value.trim();
            if value.is_empty() || value.bytes().any(|b| b.is_ascii_control()) {
                return Err(format!("COMPATIBLE_HEADERS header `{name}` needs a printable value"));
            }
            out.push((name.to_string(), value.to_string()));
        }
        Ok(out)
    }

    /// Checks the settings; `chosen` says whether `MODEL_PROVIDER=openai-compatible`, which makes the
    /// base URL and `MODEL` required.
    pub fn validate(&self, chosen: bool, model: Option<&str>) -> Result<(), String> {
        let headers = self.headers()?;
        let has_key = self.compatible_api_key.as_ref().is_some_and(|k| !k.expose().is_empty());
        if has_key && headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
            return Err("COMPATIBLE_HEADERS sets Authorization, which COMPATIBLE_API_KEY also sets; keep one".into());
        }
        if self.compatible_max_tokens == Some(0) {
            return Err("COMPATIBLE_MAX_TOKENS must be at least 1".into());
        }
        let url = self.base_url();
        if let Some(url) = url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("COMPATIBLE_BASE_URL must start with http:// or https://, got `{url}`"));
        }
        if !chosen {
            return Ok(());
        }
        if url.is_none() {
            return Err("MODEL_PROVIDER is `openai-compatible` but COMPATIBLE_BASE_URL is not set (e.g. \
                        http://127.0.0.1:11434/v1 for Ollama; add it to .env)"
                .into());
        }
        if model.is_none_or(|m| m.trim().is_empty()) {
            return Err("MODEL_PROVIDER is `openai-compatible` but MODEL is not set (the server's model name, \
                        e.g. qwen3:8b; add it to .env)"
                .into());
        }
        Ok(())
    }

    /// The base URL, if set and not blank.
    fn base_url(&self) -> Option<&str> {
        self.compatible_base_url.as_deref().map(str::trim).filter(|u| !u.is_empty())
    }

    /// The settings in the form the `agents` crate takes (headers that do not parse are left out:
    /// [`CompatibleServerSettings::validate`] has refused them before).
    pub fn model_settings(&self) -> agents::CompatibleSettings {
        agents::CompatibleSettings {
            access: agents::ProviderAccess {
                api_key: self.compatible_api_key.as_ref().map(|k| k.expose().to_string()).filter(|k| !k.is_empty()),
                base_url: self.base_url().unwrap_or_default().to_string(),
                rejected_key_hint: Some("check COMPATIBLE_API_KEY in .env".into()),
            },
            headers: self.headers().unwrap_or_default(),
            max_tokens: self.compatible_max_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_headers(raw: &str) -> CompatibleServerSettings {
        CompatibleServerSettings { compatible_headers: Some(Secret::new(raw)), ..Default::default() }
    }

    #[test]
    fn headers_parse_and_errors_never_show_values() {
        let s = with_headers(" HTTP-Referer = https://x.example , X-Title=OpenSkies,");
        assert_eq!(
            s.headers().unwrap(),
            vec![("HTTP-Referer".into(), "https://x.example".into()), ("X-Title".into(), "OpenSkies".into())]
        );
        let dbg = format!("{s:?}");
        assert!(dbg.contains("X-Title") && !dbg.contains("x.example") && !dbg.contains("OpenSkies"), "{dbg}");
        let e = with_headers("X-Title=ok,secret-without-equals").headers().unwrap_err();
        assert_eq!(e, "COMPATIBLE_HEADERS entry 2 is not `Name=Value` (comma-separated pairs, e.g. X-Title=OpenSkies)");
        assert!(!with_headers("Bad Name=zzz-secret").headers().unwrap_err().contains("zzz"));
        assert!(with_headers("X-Empty=").headers().unwrap_err().contains("X-Empty"));
    }

    #[test]
    fn chosen_server_needs_url_and_model() {
        let mut s = CompatibleServerSettings::default();
        assert_eq!(s.validate(false, None), Ok(()));
        assert!(s.validate(true, Some("m")).unwrap_err().contains("COMPATIBLE_BASE_URL is not set"));
        s.compatible_base_url = Some("localhost:11434".into());
        assert!(s.validate(true, Some("m")).unwrap_err().contains("must start with http"));
        s.compatible_base_url = Some("http://127.0.0.1:11434/v1".into());
        assert!(s.validate(true, None).unwrap_err().contains("MODEL is not set"));
        assert_eq!(s.validate(true, Some("qwen3:8b")), Ok(()));
        s.compatible_api_key = Some(Secret::new("k"));
        s.compatible_headers = Some(Secret::new("Authorization=Bearer x"));
        assert!(s.validate(true, Some("m")).unwrap_err().contains("keep one"));
        s.compatible_api_key = None;
        let m = s.model_settings();
        assert_eq!(m.access.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(m.access.api_key, None);
        assert_eq!(m.headers, vec![("Authorization".to_string(), "Bearer x".to_string())]);
    }
}
