//! Resilience: bounded retries with exponential backoff and jitter for transient provider failures
//! (429, 5xx, connection errors), honouring `Retry-After`, and only *before* anything was streamed.
//!
//! A stream is "started" once its first [`ModelEvent`](crate::provider::ModelEvent) arrived:
//! `start_stream` waits for that event so a failure before it (an HTTP error, a connection reset,
//! an early `response.failed` for overload) can still be retried transparently; after it, failures
//! go to the run loop, which keeps the partial text and reports the error.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;

use crate::config::{DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT};
use crate::provider::{ModelEvent, ModelStream, ProviderError};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// First backoff (doubled per retry, then jittered to 50–100 %).
    pub base_delay: Duration,
    /// Largest computed backoff.
    pub max_delay: Duration,
    /// Total sleeping allowed across retries; a longer `Retry-After` fails at once.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: DEFAULT_MAX_RETRIES,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_total_wait: DEFAULT_MAX_RETRY_WAIT,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): `Retry-After` if given, else jittered backoff.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after;
        }
        let factor = 2u32.saturating_pow(retry.min(16));
        let backoff = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        backoff.mul_f64(jitter)
    }
}

/// Runs `op` until it succeeds, fails permanently, or the policy is exhausted.
/// `op` receives the attempt number (0 = first).
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    provider: &'static str,
    mut op: F,
) -> Result<T, ProviderError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut waited = Duration::ZERO;
    let mut attempt = 0u32;
    loop {
        let err = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !err.is_retryable() || attempt >= policy.max_retries {
            return Err(err);
        }
        let delay = policy.delay(attempt, err.retry_after());
        if waited + delay > policy.max_total_wait {
            tracing::warn!(provider, attempt, delay_ms = delay.as_millis() as u64, error = %err, "model call failed; retry wait exceeds budget");
            return Err(err);
        }
        tracing::warn!(provider, attempt, delay_ms = delay.as_millis() as u64, error = %err, "model call failed; retrying");
        crate::metrics::retry(provider, &err);
        tokio::time::sleep(delay).await;
        waited += delay;
        attempt += 1;
    }
}

/// Waits for the first event of `stream`: an error (or an empty stream) is returned as the attempt's
/// failure so it can be retried; otherwise the stream is returned with that event put back in front.
/// A usage report does not start a stream: a failure right after one is still retried when it may
/// pass, and otherwise comes back as a stream of the report and the failure, so the tokens it cost are
/// counted.
pub(crate) async fn start_stream(
    mut stream: ModelStream,
    provider: &'static str,
) -> Result<ModelStream, ProviderError> {
    let mut usage = None;
    loop {
        let front: Vec<Result<ModelEvent, ProviderError>> = match (stream.next().await, usage) {
            (Some(Ok(ModelEvent::Usage { usage: reported })), _) => {
                usage = Some(reported);
                continue;
            }
            (Some(Ok(first)), usage) => {
                usage.map(|usage| Ok(ModelEvent::Usage { usage })).into_iter().chain([Ok(first)]).collect()
            }
            (Some(Err(e)), Some(usage)) if !e.is_retryable() => vec![Ok(ModelEvent::Usage { usage }), Err(e)],
            (Some(Err(e)), _) => return Err(e),
            (None, _) => {
                return Err(ProviderError::StreamCut {
                    provider,
                    message: "the response ended without any event".into(),
                });
            }
        };
        return Ok(Box::pin(futures::stream::iter(front).chain(stream)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let d0 = p.delay(0, None);
            assert!(d0 >= Duration::from_millis(250) && d0 <= Duration::from_millis(500), "{d0:?}");
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_millis(1000), "{d1:?}");
            let d9 = p.delay(9, None);
            assert!(d9 >= Duration::from_secs(4) && d9 <= Duration::from_secs(8), "{d9:?}");
        }
        assert_eq!(p.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn retries_only_transient_errors_within_bounds() {
        let policy = RetryPolicy { base_delay: Duration::from_millis(1), ..RetryPolicy::default() };
        let mut attempts = 0;
        let r: Result<u32, _> = with_retries(&policy, "OpenAI", |n| {
            attempts += 1;
            async move {
                if n < 2 {
                    Err(ProviderError::Http {
                        provider: "OpenAI",
                        status: 503,
                        message: "busy".into(),
                        retry_after: None,
                        code: None,
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(2));
        assert_eq!(attempts, 3);

        let mut attempts = 0;
        let r: Result<u32, _> = with_retries(&policy, "OpenAI", |_| {
            attempts += 1;
            async {
                Err(ProviderError::Http {
                    provider: "OpenAI",
                    status: 400,
                    message: "bad".into(),
                    retry_after: None,
                    code: None,
                })
            }
        })
        .await;
        assert_eq!(r.unwrap_err().status(), Some(400));
        assert_eq!(attempts, 1);

        let mut attempts = 0;
        let r: Result<u32, _> = with_retries(&policy, "OpenAI", |_| {
            attempts += 1;
            async { Err(ProviderError::Connect { provider: "OpenAI", message: "refused".into() }) }
        })
        .await;
        assert!(matches!(r, Err(ProviderError::Connect { .. })));
        assert_eq!(attempts, 3, "first attempt + max_retries (2)");
    }

    #[tokio::test]
    async fn a_usage_report_does_not_start_a_stream() {
        use crate::usage::Usage;
        let spent = Usage { input_tokens: 5, ..Usage::default() };
        let of =
            |events: Vec<Result<ModelEvent, ProviderError>>| -> ModelStream { Box::pin(futures::stream::iter(events)) };
        let retryable = ProviderError::StreamCut { provider: "Gemini", message: "reset".into() };
        let started = start_stream(of(vec![Ok(ModelEvent::Usage { usage: spent }), Err(retryable)]), "Gemini").await;
        assert!(matches!(started, Err(ProviderError::StreamCut { .. })), "retried like any early failure");
        let blocked = ProviderError::Failed { provider: "Gemini", message: "no".into(), retryable: false, code: None };
        let started = start_stream(of(vec![Ok(ModelEvent::Usage { usage: spent }), Err(blocked.clone())]), "Gemini");
        let events: Vec<_> = started.await.unwrap().collect().await;
        assert_eq!(events, vec![Ok(ModelEvent::Usage { usage: spent }), Err(blocked)], "its cost reaches the run");
    }

    #[tokio::test]
    async fn retry_after_beyond_budget_fails_at_once() {
        let policy = RetryPolicy { max_total_wait: Duration::from_secs(5), ..RetryPolicy::default() };
        let mut attempts = 0;
        let started = std::time::Instant::now();
        let r: Result<(), _> = with_retries(&policy, "Gemini", |_| {
            attempts += 1;
            async {
                Err(ProviderError::Http {
                    provider: "Gemini",
                    status: 429,
                    message: "slow down".into(),
                    retry_after: Some(Duration::from_secs(60)),
                    code: None,
                })
            }
        })
        .await;
        assert_eq!(r.unwrap_err().status(), Some(429));
        assert_eq!(attempts, 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
