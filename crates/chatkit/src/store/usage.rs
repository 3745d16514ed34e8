//! Model usage records: what the model calls of one turn consumed ([`TurnUsage`], written once per
//! turn by the application) and the sums a store reads back ([`UsageTotals`], grouped by provider and
//! model in [`ModelUsage`]). Stores keep the records of deleted threads: the tokens were spent.

use crate::types::Timestamp;

/// The model usage of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUsage {
    /// The thread the turn ran on.
    pub thread_id: String,
    /// The provider that answered (`OpenAI`, `Gemini`).
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// Model calls the turn made.
    pub model_calls: u64,
    /// The token counts.
    pub tokens: UsageTotals,
    /// When the turn ended.
    pub created_at: Timestamp,
}

/// Token counts, summed over turns. `turns` is the number of turns summed (1 in a [`TurnUsage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Turns counted.
    pub turns: u64,
    /// Model calls counted.
    pub model_calls: u64,
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl UsageTotals {
    /// Adds `other` (saturating).
    pub fn add(&mut self, other: &UsageTotals) {
        self.turns = self.turns.saturating_add(other.turns);
        self.model_calls = self.model_calls.saturating_add(other.model_calls);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
    }
}

/// The usage of one provider and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    /// The provider (`OpenAI`, `Gemini`).
    pub provider: String,
    /// The model.
    pub model: String,
    /// Its sums.
    pub totals: UsageTotals,
}

/// Sums grouped rows into one total.
pub fn sum_usage(rows: &[ModelUsage]) -> UsageTotals {
    let mut total = UsageTotals::default();
    for row in rows {
        total.add(&row.totals);
    }
    total
}
