//! The metrics the model runtime records, through the `metrics` facade: without an installed recorder
//! (the application chooses the exporter) every call is a no-op. Label values come from fixed sets or
//! from configuration (the provider, the configured model name, the agent's tool names), never from ids,
//! model output or user text.
//!
//! A provider keeps the handles of its model's series in a [`ModelMetrics`] ([`Provider::metrics`]), so
//! a call does not look them up by name and labels in the recorder each time. Each handle is made on
//! its first use, not when the provider is built: a handle made before the application installed its
//! recorder would record nothing, so the recorder must be installed before the first model call.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{Counter, Histogram};

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

/// The token kinds of [`MODEL_TOKENS`], in the order of [`kinds`].
const TOKEN_KINDS: [&str; 4] = ["input", "output", "cached", "reasoning"];

/// The counts of `usage` by [`TOKEN_KINDS`].
fn kinds(usage: &Usage) -> [u64; 4] {
    [usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.reasoning_tokens]
}

/// Adds the tokens of one model call.
pub(crate) fn tokens(provider: &dyn Provider, usage: &Usage) {
    if let Some(kept) = provider.metrics() {
        for (counter, count) in kept.tokens().iter().zip(kinds(usage)) {
            counter.increment(count);
        }
        return;
    }
    let provider_name = provider_label(provider.name());
    for (kind, count) in TOKEN_KINDS.into_iter().zip(kinds(usage)) {
        metrics::counter!(
            MODEL_TOKENS, "provider" => provider_name, "model" => provider.model().to_string(), "kind" => kind
        )
        .increment(count);
    }
}

/// The handles of one provider's model series: the tokens, the time to first output, and the calls that
/// ended `ok` or `cancelled` (failures, rare and of many kinds, are looked up when they happen). Each is
/// made when first used, with the recorder installed then.
#[derive(Debug, Clone)]
pub struct ModelMetrics {
    provider: &'static str,
    model: String,
    tokens: OnceLock<[Counter; 4]>,
    first_token: OnceLock<Histogram>,
    ok: OnceLock<CallMetrics>,
    cancelled: OnceLock<CallMetrics>,
}

/// The handles of the calls that ended with one outcome.
#[derive(Debug, Clone)]
struct CallMetrics {
    calls: Counter,
    duration: Histogram,
}

impl CallMetrics {
    fn new(provider: &'static str, model: &str, outcome: &'static str) -> Self {
        let (model, duration_model) = (model.to_string(), model.to_string());
        CallMetrics {
            duration: metrics::histogram!(
                MODEL_CALL_DURATION, "provider" => provider, "model" => duration_model, "outcome" => outcome
            ),
            calls: metrics::counter!(MODEL_CALLS, "provider" => provider, "model" => model, "outcome" => outcome),
        }
    }

    fn record(&self, took: Duration) {
        self.duration.record(took.as_secs_f64());
        self.calls.increment(1);
    }
}

impl ModelMetrics {
    /// The series of `model` answered by the provider named `provider` (its [`Provider::name`]).
    pub fn new(provider: &'static str, model: &str) -> Self {
        ModelMetrics {
            provider: provider_label(provider),
            model: model.to_string(),
            tokens: OnceLock::new(),
            first_token: OnceLock::new(),
            ok: OnceLock::new(),
            cancelled: OnceLock::new(),
        }
    }

    fn tokens(&self) -> &[Counter; 4] {
        self.tokens.get_or_init(|| {
            TOKEN_KINDS.map(|kind| {
                metrics::counter!(
                    MODEL_TOKENS, "provider" => self.provider, "model" => self.model.clone(), "kind" => kind
                )
            })
        })
    }

    fn first_token(&self) -> &Histogram {
        self.first_token.get_or_init(|| {
            metrics::histogram!(MODEL_TIME_TO_FIRST_TOKEN, "provider" => self.provider, "model" => self.model.clone())
        })
    }

    /// The handles of calls ending with `outcome`, when they are kept (`ok` and `cancelled`).
    fn call(&self, outcome: &'static str) -> Option<&CallMetrics> {
        let cell = match outcome {
            "ok" => &self.ok,
            "cancelled" => &self.cancelled,
            _ => return None,
        };
        Some(cell.get_or_init(|| CallMetrics::new(self.provider, &self.model, outcome)))
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
            if let Some(kept) = self.provider.metrics() {
                kept.first_token().record(self.started.elapsed().as_secs_f64());
                return;
            }
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
    if let Some(kept) = provider.metrics().and_then(|m| m.call(outcome)) {
        kept.record(took);
        return;
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use metrics::{Gauge, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};

    use super::*;
    use crate::provider::{ModelRequest, ModelStream};

    /// A provider that only names itself, with or without kept handles.
    struct Named(Option<ModelMetrics>);

    #[async_trait]
    impl Provider for Named {
        async fn stream(&self, _: ModelRequest) -> Result<ModelStream, ProviderError> {
            Err(ProviderError::Request { provider: "OpenAI", message: "not in this test".into() })
        }
        fn name(&self) -> &'static str {
            "OpenAI"
        }
        fn model(&self) -> &str {
            "gpt-test"
        }
        fn metrics(&self) -> Option<&ModelMetrics> {
            self.0.as_ref()
        }
    }

    struct Samples(AtomicU64);

    impl HistogramFn for Samples {
        fn record(&self, _: f64) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes down every registration (name and labels) and hands out handles that count.
    #[derive(Default)]
    struct Registrations {
        keys: Mutex<Vec<String>>,
        counters: Mutex<Vec<(String, Arc<AtomicU64>)>>,
        histograms: Mutex<Vec<(String, Arc<Samples>)>>,
    }

    impl Registrations {
        fn register(&self, key: &Key) -> String {
            let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            let key = format!("{}{{{}}}", key.name(), labels.join(","));
            self.keys.lock().unwrap().push(key.clone());
            key
        }

        /// Every series with the sum of its counts (counter increments, histogram samples).
        fn totals(&self) -> Vec<(String, u64)> {
            let mut totals: std::collections::BTreeMap<String, u64> = Default::default();
            for (key, n) in self.counters.lock().unwrap().iter() {
                *totals.entry(key.clone()).or_default() += n.load(Ordering::Relaxed);
            }
            for (key, h) in self.histograms.lock().unwrap().iter() {
                *totals.entry(key.clone()).or_default() += h.0.load(Ordering::Relaxed);
            }
            totals.into_iter().collect()
        }
    }

    impl Recorder for Registrations {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let counter = Arc::new(AtomicU64::new(0));
            self.counters.lock().unwrap().push((self.register(key), counter.clone()));
            Counter::from_arc(counter)
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            let samples = Arc::new(Samples(AtomicU64::new(0)));
            self.histograms.lock().unwrap().push((self.register(key), samples.clone()));
            Histogram::from_arc(samples)
        }
    }

    /// Three calls (ok, cancelled, failed), each with output and tokens, recorded for `provider`.
    fn three_calls(provider: &dyn Provider) -> Registrations {
        let recorder = Registrations::default();
        let usage = Usage { input_tokens: 10, output_tokens: 3, cached_tokens: 4, reasoning_tokens: 1 };
        let failure = ProviderError::Connect { provider: "OpenAI", message: "refused".into() };
        metrics::with_local_recorder(&recorder, || {
            for ending in [Some("ok"), None, Some(error_outcome(&failure))] {
                let mut call = ModelCall::start(provider);
                call.output();
                call.output();
                match ending {
                    Some(outcome) => call.finish(outcome),
                    None => drop(call),
                }
                tokens(provider, &usage);
            }
        });
        recorder
    }

    #[test]
    fn kept_handles_record_what_looked_up_ones_do_registering_each_series_once() {
        let kept = three_calls(&Named(Some(ModelMetrics::new("OpenAI", "gpt-test"))));
        let looked_up = three_calls(&Named(None));
        assert_eq!(kept.totals(), looked_up.totals());
        let totals = kept.totals();
        assert!(totals.contains(&("model_tokens_total{provider=openai,model=gpt-test,kind=input}".into(), 30)));
        assert!(totals.contains(&("model_calls_total{provider=openai,model=gpt-test,outcome=cancelled}".into(), 1)));
        assert!(totals.contains(&("model_time_to_first_token_seconds{provider=openai,model=gpt-test}".into(), 3)));
        // Kept: every series registered once, except the failure's, looked up when it happens.
        let keys = kept.keys.lock().unwrap().clone();
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(keys.len(), distinct.len(), "{keys:?}");
        assert!(looked_up.keys.lock().unwrap().len() > keys.len());
    }
}
