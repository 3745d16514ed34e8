//! The metrics the model runtime records, through the `metrics` facade: without an installed recorder
//! (the application chooses the exporter) every call is a no-op. Label values come from fixed sets or
//! from configuration (the provider, the configured model name, the agent's tool names), never from ids,
//! model output or user text.

use std::time::{Duration, Instant};

use crate::provider::{Provider, ProviderError};
use crate::usage::Usage;

/// Counter of model calls by `provider`, `model` and `outcome`: `ok`, `cancelled` (the turn ended
/// before the model did: the client left, or an event could not be stored), or why it failed (the
/// [`crate::ErrorClass`] name, e.g. `rate_limited`, `server_error`, `timeout`).
pub const MODEL_CALLS: &str = "model_calls_total";
/// Histogram of a model call's duration, from the request to the end of its stream (retries included),
/// by `provider`, `model` and `outcome`.
pub const MODEL_CALL_DURATION: &str = "model_call_duration_seconds";
/// Histogram of the time from a model request to its first output (text or a tool call), by
/// `provider` and `model`.
pub const MODEL_TIME_TO_FIRST_TOKEN: &str = "model_time_to_first_token_seconds";
/// Counter of model requests retried after a transient failure, by `provider` and `reason`.
pub const MODEL_RETRIES: &str = "model_retries_total";
/// Counter of turns the primary provider failed before answering and the fallback provider answered,
/// by `from`, `to` (providers) and `reason` (the primary's failure).
pub const MODEL_FALLBACKS: &str = "model_fallbacks_total";
/// Counter of tokens by `provider`, `model` and `kind`: `input` (cached included), `output` (reasoning
/// included), `cached`, `reasoning`, as the provider reported them at the end of each call.
pub const MODEL_TOKENS: &str = "model_tokens_total";
/// Counter of tool calls by `tool` (the agent's tool name; `unknown` for a name the agent has not) and
/// `outcome` (`ok`, `failed`, `invalid_arguments`, `unknown_tool`).
pub const TOOL_CALLS: &str = "tool_calls_total";
/// Histogram of tool call durations by `tool`.
pub const TOOL_CALL_DURATION: &str = "tool_call_duration_seconds";

/// Registers the help text of every metric above with the installed recorder.
pub fn describe() {
    metrics::describe_counter!(MODEL_CALLS, "Model calls by provider, model and outcome.");
    metrics::describe_histogram!(
        MODEL_CALL_DURATION,
        metrics::Unit::Seconds,
        "Model calls: time from the request to the end of the stream, retries included."
    );
    metrics::describe_histogram!(
        MODEL_TIME_TO_FIRST_TOKEN,
        metrics::Unit::Seconds,
        "Model calls: time from the request to the first text or tool call."
    );
    metrics::describe_counter!(MODEL_RETRIES, "Model requests retried after a transient failure, by reason.");
    metrics::describe_counter!(MODEL_FALLBACKS, "Turns handed from the primary model provider to the fallback.");
    metrics::describe_counter!(
        MODEL_TOKENS,
        "Model tokens by provider, model and kind (input, output, cached, reasoning)."
    );
    metrics::describe_counter!(TOOL_CALLS, "Tool calls by tool and outcome.");
    metrics::describe_histogram!(TOOL_CALL_DURATION, metrics::Unit::Seconds, "Tool call durations by tool.");
}

/// The `provider` label: the provider's name in lower case.
pub(crate) fn provider_label(name: &'static str) -> &'static str {
    match name {
        "OpenAI" => "openai",
        "Gemini" => "gemini",
        "OpenAI-compatible" => "openai_compatible",
        _ => "other",
    }
}

/// Why a model request failed, as a label value: its [`crate::ErrorClass`] name.
pub(crate) fn error_outcome(e: &ProviderError) -> &'static str {
    e.class().as_str()
}

/// Counts one retry of a failed model request.
pub(crate) fn retry(provider: &'static str, error: &ProviderError) {
    metrics::counter!(MODEL_RETRIES, "provider" => provider_label(provider), "reason" => error_outcome(error))
        .increment(1);
}

/// Counts a turn handed from the primary provider to the fallback.
pub(crate) fn fallback(from: &'static str, to: &'static str, reason: &'static str) {
    metrics::counter!(
        MODEL_FALLBACKS, "from" => provider_label(from), "to" => provider_label(to), "reason" => reason
    )
    .increment(1);
}

/// Adds the tokens of one model call.
pub(crate) fn tokens(provider: &dyn Provider, usage: &Usage) {
    let provider_name = provider_label(provider.name());
    for (kind, count) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cached", usage.cached_tokens),
        ("reasoning", usage.reasoning_tokens),
    ] {
        metrics::counter!(
            MODEL_TOKENS, "provider" => provider_name, "model" => provider.model().to_string(), "kind" => kind
        )
        .increment(count);
    }
}

/// One model call being measured; dropped without [`ModelCall::finish`], it counts as `cancelled`.
/// The provider's name and model are read when recorded: a failover provider answers with the fallback's
/// once it took over.
pub(crate) struct ModelCall<'a> {
    provider: &'a dyn Provider,
    started: Instant,
    first_token: bool,
    finished: bool,
}

impl<'a> ModelCall<'a> {
    pub(crate) fn start(provider: &'a dyn Provider) -> Self {
        ModelCall { provider, started: Instant::now(), first_token: false, finished: false }
    }

    /// Notes that output arrived (only the first call records).
    pub(crate) fn output(&mut self) {
        if !self.first_token {
            self.first_token = true;
            metrics::histogram!(
                MODEL_TIME_TO_FIRST_TOKEN,
                "provider" => provider_label(self.provider.name()),
                "model" => self.provider.model().to_string()
            )
            .record(self.started.elapsed().as_secs_f64());
        }
    }

    /// Records the call's outcome and duration.
    pub(crate) fn finish(mut self, outcome: &'static str) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: &'static str) {
        self.finished = true;
        call_ended(self.provider, outcome, self.started.elapsed());
    }
}

/// Counts one model call of `provider` that ended with `outcome` after `took`.
fn call_ended(provider: &dyn Provider, outcome: &'static str, took: Duration) {
    let name = provider_label(provider.name());
    let model = provider.model().to_string();
    metrics::histogram!(MODEL_CALL_DURATION, "provider" => name, "model" => model.clone(), "outcome" => outcome)
        .record(took.as_secs_f64());
    metrics::counter!(MODEL_CALLS, "provider" => name, "model" => model, "outcome" => outcome).increment(1);
}

/// Counts the primary provider's call that failed before answering and was handed to the fallback:
/// the run's own [`ModelCall`] is then recorded under the fallback provider, and without this the
/// primary's failures would show nowhere but in the fallbacks' reasons.
pub(crate) fn failed_over(primary: &dyn Provider, error: &ProviderError, took: Duration) {
    call_ended(primary, error_outcome(error), took);
}

impl Drop for ModelCall<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.record("cancelled");
        }
    }
}

/// Records one tool call.
pub(crate) fn tool_call(tool: &str, outcome: &'static str, took: Duration) {
    let tool = tool.to_string();
    metrics::counter!(TOOL_CALLS, "tool" => tool.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!(TOOL_CALL_DURATION, "tool" => tool).record(took.as_secs_f64());
}
