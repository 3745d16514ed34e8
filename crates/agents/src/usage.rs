//! Provider-neutral token accounting: [`Usage`] is what one model call (or a sum of calls) consumed, in
//! the same terms for every provider.
//!
//! `output_tokens` counts every generated token, reasoning included (OpenAI's `output_tokens` already
//! does; Gemini's `candidatesTokenCount` leaves the thoughts out, so they are added). `cached_tokens`
//! is the part of `input_tokens` served from the provider's prompt cache, and `reasoning_tokens` the
//! part of `output_tokens` spent thinking.

use std::ops::AddAssign;

use serde::Deserialize;

/// Tokens consumed by model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Prompt tokens (instructions, history, tools), cached ones included.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Whether no token was counted.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// Reads the OpenAI Responses `usage` object (`input_tokens`, `output_tokens`,
    /// `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`); `None` when it
    /// is absent or not an object.
    pub fn from_openai(usage: &serde_json::Value) -> Option<Usage> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Details {
            cached_tokens: Option<u64>,
            reasoning_tokens: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            input_tokens: Option<u64>,
            #[serde(default)]
            output_tokens: Option<u64>,
            #[serde(default)]
            input_tokens_details: Option<Details>,
            #[serde(default)]
            output_tokens_details: Option<Details>,
        }
        if !usage.is_object() {
            return None;
        }
        let raw = Raw::deserialize(usage).ok()?;
        Some(Usage {
            input_tokens: raw.input_tokens.unwrap_or(0),
            output_tokens: raw.output_tokens.unwrap_or(0),
            cached_tokens: raw.input_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            reasoning_tokens: raw.output_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        })
    }

    /// Reads Gemini's `usageMetadata` (`promptTokenCount`, `candidatesTokenCount`,
    /// `cachedContentTokenCount`, `thoughtsTokenCount`); `None` when it is not an object.
    pub fn from_gemini(metadata: &serde_json::Value) -> Option<Usage> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Raw {
            prompt_token_count: Option<u64>,
            candidates_token_count: Option<u64>,
            cached_content_token_count: Option<u64>,
            thoughts_token_count: Option<u64>,
        }
        if !metadata.is_object() {
            return None;
        }
        let raw = Raw::deserialize(metadata).ok()?;
        let thoughts = raw.thoughts_token_count.unwrap_or(0);
        Some(Usage {
            input_tokens: raw.prompt_token_count.unwrap_or(0),
            output_tokens: raw.candidates_token_count.unwrap_or(0).saturating_add(thoughts),
            cached_tokens: raw.cached_content_token_count.unwrap_or(0),
            reasoning_tokens: thoughts,
        })
    }
}

/// The model calls a run made to one provider and model, and what they consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelCalls {
    /// The provider (`OpenAI`, `Gemini`).
    pub provider: &'static str,
    /// The model called.
    pub model: String,
    /// Calls made.
    pub calls: usize,
    /// Their tokens, summed.
    pub usage: Usage,
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_shapes_and_sums() {
        let openai = json!({"input_tokens": 120, "input_tokens_details": {"cached_tokens": 100},
            "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 25}, "total_tokens": 160});
        let a = Usage::from_openai(&openai).unwrap();
        assert_eq!(a, Usage { input_tokens: 120, output_tokens: 40, cached_tokens: 100, reasoning_tokens: 25 });
        let gemini = json!({"promptTokenCount": 50, "candidatesTokenCount": 10, "cachedContentTokenCount": 30,
            "thoughtsTokenCount": 7, "totalTokenCount": 67});
        let b = Usage::from_gemini(&gemini).unwrap();
        assert_eq!(b, Usage { input_tokens: 50, output_tokens: 17, cached_tokens: 30, reasoning_tokens: 7 });
        let mut sum = a;
        sum += b;
        assert_eq!(sum, Usage { input_tokens: 170, output_tokens: 57, cached_tokens: 130, reasoning_tokens: 32 });
        assert_eq!(Usage::from_openai(&json!(null)), None);
        assert_eq!(Usage::from_gemini(&json!({"promptTokenCount": 3})).unwrap().input_tokens, 3);
        assert!(Usage::default().is_empty());
    }
}
