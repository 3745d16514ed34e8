//! Model usage records: what the model calls of one turn consumed ([`TurnUsage`], written once per
//! turn by the application) and the sums a store reads back ([`UsageTotals`], grouped by provider and
//! model in [`ModelUsage`]). Stores keep the records of deleted threads: the tokens were spent.
//!
//! The sums serialize as an HTTP answer can show them (a [`ModelUsage`] with its totals inline), and with
//! the `openapi` feature they are documented as `UsageCounts` and `ModelUsageCounts`.

use serde::Serialize;

use crate::types::Timestamp;

/// The model usage of one turn with one provider and model. A turn that called two (a failover) is
/// recorded as two, of which only the one that answered counts the turn (`tokens.turns` is 1 there and
/// 0 in the other), so summed turns count each turn once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUsage {
    /// The thread the turn ran on.
    pub thread_id: String,
    /// The provider called (`OpenAI`, `Gemini`).
    pub provider: String,
    /// The model called.
    pub model: String,
    /// Model calls the turn made.
    pub model_calls: u64,
    /// The token counts (`turns` is 1 when this provider answered the turn, else 0).
    pub tokens: UsageTotals,
    /// When the turn ended.
    pub created_at: Timestamp,
}

/// Token counts, summed over turns. `turns` is the number of turns summed (in a [`TurnUsage`], 1 when
/// its provider answered the turn, else 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = UsageCounts))]
pub struct UsageTotals {
    /// Turns answered (a turn counts once, for the provider that answered it).
    pub turns: u64,
    /// Model calls made (a failover's failed call to the primary included, under the primary).
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ModelUsageCounts))]
pub struct ModelUsage {
    /// `OpenAI` or `Gemini`.
    pub provider: String,
    /// The model called.
    pub model: String,
    /// Its sums.
    #[serde(flatten)]
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
