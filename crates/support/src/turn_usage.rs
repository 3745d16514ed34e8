//! The model usage of one chat turn: logged (the turn's log line) and stored for the owner's totals,
//! however the turn ends, including when its client leaves and the turn's future is dropped mid-answer
//! (the tokens were spent all the same).
//!
//! One row per provider and model the turn called: after a failover, the failed call to the primary and
//! the fallback's answer are stored apart, and only the provider that answered counts the turn, so the
//! owner's totals still count each turn once.

use std::sync::{Arc, Mutex, PoisonError};

use agents::RunReport;
use chatkit::store::{RequestContext, Store, TurnUsage, UsageTotals};
use chatkit::types::Timestamp;

/// Records a turn's usage once: [`UsageRecorder::finish`] when the run returns, or on drop (the
/// client left) from a task of its own.
pub(crate) struct UsageRecorder {
    store: Arc<dyn Store>,
    ctx: RequestContext,
    thread_id: String,
    report: Arc<Mutex<RunReport>>,
    done: bool,
}

impl UsageRecorder {
    /// A recorder for the run filling `report`.
    pub(crate) fn new(store: Arc<dyn Store>, ctx: RequestContext, thread_id: String) -> Self {
        UsageRecorder { store, ctx, thread_id, report: Arc::default(), done: false }
    }

    /// The report the run keeps up to date.
    pub(crate) fn report(&self) -> &Mutex<RunReport> {
        &self.report
    }

    /// Logs and stores the usage of a run that returned.
    pub(crate) async fn finish(mut self, ok: bool) {
        self.done = true;
        let report = snapshot(&self.report);
        record(self.store.as_ref(), &self.ctx, &self.thread_id, &report, if ok { "ok" } else { "error" }).await;
    }
}

impl Drop for UsageRecorder {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The run's future was dropped: its client left. Storing needs an await, so it goes on its own.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(thread_id = %self.thread_id, "could not store the usage of a cancelled turn: no runtime");
            return;
        };
        let (store, ctx, thread_id) = (self.store.clone(), self.ctx.clone(), std::mem::take(&mut self.thread_id));
        let report = snapshot(&self.report);
        runtime.spawn(async move { record(store.as_ref(), &ctx, &thread_id, &report, "cancelled").await });
    }
}

fn snapshot(report: &Mutex<RunReport>) -> RunReport {
    report.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Logs the turn's model usage (the turn's log line) and stores one row per provider and model called.
/// A store failure is logged: the answer was already streamed and stays valid.
async fn record(store: &dyn Store, ctx: &RequestContext, thread_id: &str, report: &RunReport, outcome: &str) {
    let tokens = &report.usage;
    tracing::info!(
        thread_id,
        provider = report.provider,
        model = %report.model,
        model_calls = report.model_calls,
        input_tokens = tokens.input_tokens,
        output_tokens = tokens.output_tokens,
        cached_tokens = tokens.cached_tokens,
        reasoning_tokens = tokens.reasoning_tokens,
        outcome,
        "model turn finished"
    );
    for calls in &report.by_model {
        let answered = calls.provider == report.provider && calls.model == report.model;
        let usage = TurnUsage {
            thread_id: thread_id.to_string(),
            provider: calls.provider.to_string(),
            model: calls.model.clone(),
            model_calls: calls.calls as u64,
            tokens: UsageTotals {
                turns: u64::from(answered),
                model_calls: calls.calls as u64,
                input_tokens: calls.usage.input_tokens,
                output_tokens: calls.usage.output_tokens,
                cached_tokens: calls.usage.cached_tokens,
                reasoning_tokens: calls.usage.reasoning_tokens,
            },
            created_at: Timestamp::now(),
        };
        if let Err(e) = store.record_usage(ctx, &usage).await {
            tracing::warn!(thread_id, error = %e, "could not store the turn's model usage");
        }
    }
}
