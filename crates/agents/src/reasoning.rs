//! Reasoning settings ([`Reasoning`]): how hard a reasoning model thinks ([`ReasoningEffort`]) and
//! whether it streams a summary of its thinking ([`ReasoningSummary`]), with their encodings for each
//! provider. Both unset (the default) add nothing to any request.
//!
//! Gemini has no effort levels: the effort becomes a `thinkingBudget` in tokens, chosen to be valid for
//! every Gemini 2.5 model (Flash-Lite accepts no fewer than 512): `minimal` 512, `low` 1024, `medium`
//! 8192, `high` 24576 (the top of the Flash range). A summary setting becomes `includeThoughts: true`
//! (Gemini has a single summary style).

use serde_json::{Map, Value, json};

/// How much a reasoning model thinks before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningEffort {
    /// As little as the model allows.
    Minimal,
    /// Little.
    Low,
    /// The models' usual default.
    Medium,
    /// Thorough.
    High,
}

impl ReasoningEffort {
    /// The OpenAI value (`minimal`, `low`, `medium`, `high`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }

    /// The Gemini `thinkingBudget` (tokens) standing for this effort.
    pub fn gemini_thinking_budget(&self) -> u32 {
        match self {
            ReasoningEffort::Minimal => 512,
            ReasoningEffort::Low => 1024,
            ReasoningEffort::Medium => 8192,
            ReasoningEffort::High => 24576,
        }
    }
}

/// How detailed the streamed summary of the model's reasoning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningSummary {
    /// The most detailed summary the model supports.
    Auto,
    /// Short.
    Concise,
    /// Long.
    Detailed,
}

impl ReasoningSummary {
    /// The OpenAI value (`auto`, `concise`, `detailed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ReasoningSummary::Auto => "auto",
            ReasoningSummary::Concise => "concise",
            ReasoningSummary::Detailed => "detailed",
        }
    }
}

/// The reasoning settings of every model call; the default (both unset) sends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reasoning {
    /// The effort; `None` leaves it to the model.
    pub effort: Option<ReasoningEffort>,
    /// The summary; `None` asks for none.
    pub summary: Option<ReasoningSummary>,
}

impl Reasoning {
    /// Whether any reasoning setting is made.
    pub fn is_set(&self) -> bool {
        self.effort.is_some() || self.summary.is_some()
    }

    /// The OpenAI `reasoning` object, `None` when nothing is set.
    pub(crate) fn openai_object(&self) -> Option<Value> {
        if !self.is_set() {
            return None;
        }
        let mut object = Map::new();
        if let Some(effort) = self.effort {
            object.insert("effort".into(), json!(effort.as_str()));
        }
        if let Some(summary) = self.summary {
            object.insert("summary".into(), json!(summary.as_str()));
        }
        Some(Value::Object(object))
    }

    /// The Gemini `generationConfig.thinkingConfig`, `None` when nothing is set.
    pub(crate) fn gemini_thinking_config(&self) -> Option<Value> {
        if !self.is_set() {
            return None;
        }
        let mut object = Map::new();
        if self.summary.is_some() {
            object.insert("includeThoughts".into(), json!(true));
        }
        if let Some(effort) = self.effort {
            object.insert("thinkingBudget".into(), json!(effort.gemini_thinking_budget()));
        }
        Some(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_sends_nothing() {
        let r = Reasoning::default();
        assert!(!r.is_set());
        assert_eq!(r.openai_object(), None);
        assert_eq!(r.gemini_thinking_config(), None);
    }

    #[test]
    fn encodings() {
        let r = Reasoning { effort: Some(ReasoningEffort::Low), summary: Some(ReasoningSummary::Auto) };
        assert_eq!(r.openai_object().unwrap().to_string(), r#"{"effort":"low","summary":"auto"}"#);
        assert_eq!(
            r.gemini_thinking_config().unwrap().to_string(),
            r#"{"includeThoughts":true,"thinkingBudget":1024}"#
        );
        let r = Reasoning { effort: None, summary: Some(ReasoningSummary::Detailed) };
        assert_eq!(r.openai_object().unwrap().to_string(), r#"{"summary":"detailed"}"#);
        assert_eq!(r.gemini_thinking_config().unwrap().to_string(), r#"{"includeThoughts":true}"#);
        let r = Reasoning { effort: Some(ReasoningEffort::Minimal), summary: None };
        assert_eq!(r.gemini_thinking_config().unwrap().to_string(), r#"{"thinkingBudget":512}"#);
    }
}
