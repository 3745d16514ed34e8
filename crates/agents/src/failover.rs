//! Provider failover: [`FallbackProvider`] answers with a second provider when the first fails before
//! it produced anything, behind the same [`Provider`] trait.
//!
//! Rules, per run (one turn, through [`Provider::for_run`]):
//! - the primary is tried first (with its own retries); it fails over when it ends with any error
//!   except blocked content (the same prompt would be blocked again, and a different provider must
//!   not be used to get around a safety refusal), as long as nothing reached the user yet;
//! - "nothing reached the user" means no event beyond the bare start of a message: the primary's
//!   stream is held back until its first real token (text, a function call, the end), so a response
//!   that breaks off right after starting still fails over;
//! - once the primary produced a token, the run stays with it; once the fallback answered, the rest
//!   of the run stays with the fallback. A turn never mixes providers.
//!
//! Every switch is a `tracing` warning with the fields `event = "model_fallback"`, `from`, `to`,
//! `class` and `code` (all bounded), which the application can count.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;

use crate::error_class::ErrorClass;
use crate::metrics::ModelMetrics;
use crate::provider::{ModelEvent, ModelRequest, ModelStream, Provider, ProviderError};
use crate::usage::ModelCalls;

/// A primary provider backed by a fallback one.
pub struct FallbackProvider {
    primary: Arc<dyn Provider>,
    fallback: Arc<dyn Provider>,
}

impl FallbackProvider {
    /// `primary`, failing over to `fallback`.
    pub fn new(primary: Arc<dyn Provider>, fallback: Arc<dyn Provider>) -> Self {
        FallbackProvider { primary, fallback }
    }

    /// The provider that answers when the primary cannot.
    pub fn fallback(&self) -> &dyn Provider {
        self.fallback.as_ref()
    }
}

impl std::fmt::Debug for FallbackProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackProvider")
            .field("primary", &format_args!("{} {}", self.primary.name(), self.primary.model()))
            .field("fallback", &format_args!("{} {}", self.fallback.name(), self.fallback.model()))
            .finish()
    }
}

#[async_trait]
impl Provider for FallbackProvider {
    /// Outside a run, every call decides on its own (a run uses [`Provider::for_run`]).
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        FallbackRun::new(self).stream(request).await
    }

    fn name(&self) -> &'static str {
        self.primary.name()
    }

    fn model(&self) -> &str {
        self.primary.model()
    }

    fn metrics(&self) -> Option<&ModelMetrics> {
        self.primary.metrics()
    }

    fn for_run(&self) -> Option<Box<dyn Provider + '_>> {
        Some(Box::new(FallbackRun::new(self)))
    }
}

/// Who answers the rest of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Nothing was produced yet: the primary is tried, the fallback may take over.
    Undecided,
    /// The primary produced a token: it keeps the run.
    Primary,
    /// The fallback took over.
    Fallback,
}

/// The failover state of one run.
struct FallbackRun<'a> {
    providers: &'a FallbackProvider,
    route: Mutex<Route>,
    /// The primary's failed call, until the run asks for it.
    abandoned: Mutex<Vec<ModelCalls>>,
}

impl<'a> FallbackRun<'a> {
    fn new(providers: &'a FallbackProvider) -> Self {
        FallbackRun { providers, route: Mutex::new(Route::Undecided), abandoned: Mutex::new(Vec::new()) }
    }

    fn route(&self) -> Route {
        *self.route.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_route(&self, route: Route) {
        *self.route.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = route;
    }

    /// Switches to the fallback after `err` when that is allowed, returning its stream; `held` is what
    /// the primary streamed before failing (its usage report, if any, is kept for the run's usage).
    async fn fail_over(
        &self,
        request: ModelRequest,
        err: ProviderError,
        started: Instant,
        held: VecDeque<Result<ModelEvent, ProviderError>>,
    ) -> Result<ModelStream, ProviderError> {
        let class = err.class();
        let (primary, fallback) = (&self.providers.primary, &self.providers.fallback);
        if class == ErrorClass::ContentBlocked {
            // Blocked content stays with the primary: the run sees what it reported, then the refusal.
            self.set_route(Route::Primary);
            if held.is_empty() {
                return Err(err);
            }
            return Ok(Box::pin(futures::stream::iter(held.into_iter().chain([Err(err)]))));
        }
        crate::metrics::failed_over(primary.as_ref(), &err, started.elapsed());
        let usage = held.iter().find_map(|e| match e {
            Ok(ModelEvent::Usage { usage }) => Some(*usage),
            _ => None,
        });
        let call = ModelCalls {
            provider: primary.name(),
            model: primary.model().to_string(),
            calls: 1,
            usage: usage.unwrap_or_default(),
        };
        self.abandoned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(call);
        tracing::warn!(
            event = "model_fallback",
            from = primary.name(),
            from_model = primary.model(),
            to = fallback.name(),
            to_model = fallback.model(),
            class = class.as_str(),
            code = err.code().unwrap_or("-"),
            error = %err,
            "the primary model provider failed before answering; the fallback provider answers this turn"
        );
        crate::metrics::fallback(primary.name(), fallback.name(), class.as_str());
        self.set_route(Route::Fallback);
        fallback.stream(request).await
    }
}

/// Whether an event shows the user something (anything but the bare start of a message or a part).
fn is_token(event: &ModelEvent) -> bool {
    !matches!(
        event,
        ModelEvent::MessageStarted { .. } | ModelEvent::ContentPartStarted { .. } | ModelEvent::Usage { .. }
    )
}

#[async_trait]
impl Provider for FallbackRun<'_> {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError> {
        match self.route() {
            Route::Primary => return self.providers.primary.stream(request).await,
            Route::Fallback => return self.providers.fallback.stream(request).await,
            Route::Undecided => {}
        }
        let started = Instant::now();
        let mut stream = match self.providers.primary.stream(request.clone()).await {
            Ok(stream) => stream,
            Err(err) => return self.fail_over(request, err, started, VecDeque::new()).await,
        };
        let mut held = VecDeque::new();
        loop {
            match stream.next().await {
                Some(Ok(event)) if is_token(&event) => {
                    held.push_back(Ok(event));
                    self.set_route(Route::Primary);
                    return Ok(Box::pin(futures::stream::iter(held).chain(stream)));
                }
                Some(Ok(event)) => held.push_back(Ok(event)),
                Some(Err(err)) => {
                    drop(stream);
                    return self.fail_over(request, err, started, held).await;
                }
                None => {
                    self.set_route(Route::Primary);
                    return Ok(Box::pin(futures::stream::iter(held)));
                }
            }
        }
    }

    fn name(&self) -> &'static str {
        match self.route() {
            Route::Fallback => self.providers.fallback.name(),
            _ => self.providers.primary.name(),
        }
    }

    fn model(&self) -> &str {
        match self.route() {
            Route::Fallback => self.providers.fallback.model(),
            _ => self.providers.primary.model(),
        }
    }

    fn metrics(&self) -> Option<&ModelMetrics> {
        match self.route() {
            Route::Fallback => self.providers.fallback.metrics(),
            _ => self.providers.primary.metrics(),
        }
    }

    fn take_abandoned_calls(&self) -> Vec<ModelCalls> {
        std::mem::take(&mut *self.abandoned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One scripted model call: the events of its stream, or the error starting it.
    type Outcome = Result<Vec<Result<ModelEvent, ProviderError>>, ProviderError>;

    /// A provider answering from a list of scripted outcomes, counting its calls.
    struct Scripted {
        name: &'static str,
        outcomes: Mutex<VecDeque<Outcome>>,
        calls: AtomicUsize,
    }

    impl Scripted {
        fn new(name: &'static str, outcomes: Vec<Outcome>) -> Arc<Self> {
            Arc::new(Scripted { name, outcomes: Mutex::new(outcomes.into()), calls: AtomicUsize::new(0) })
        }
    }

    #[async_trait]
    impl Provider for Scripted {
        async fn stream(&self, _request: ModelRequest) -> Result<ModelStream, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.outcomes.lock().unwrap().pop_front().expect("a scripted outcome");
            next.map(|events| Box::pin(futures::stream::iter(events)) as ModelStream)
        }
        fn name(&self) -> &'static str {
            self.name
        }
        fn model(&self) -> &str {
            "m"
        }
    }

    fn text(delta: &str) -> Result<ModelEvent, ProviderError> {
        Ok(ModelEvent::TextDelta { message_id: "m".into(), content_index: 0, delta: delta.into() })
    }

    fn refused(class: ErrorClass) -> ProviderError {
        ProviderError::Refused { provider: "OpenAI", class, status: Some(429), code: None, message: "x".into() }
    }

    async fn first_delta(p: &dyn Provider) -> Result<String, ProviderError> {
        let mut s = p.stream(ModelRequest::default()).await?;
        while let Some(e) = s.next().await {
            if let ModelEvent::TextDelta { delta, .. } = e? {
                return Ok(delta);
            }
        }
        Ok(String::new())
    }

    #[tokio::test]
    async fn fails_over_before_the_first_token_and_stays() {
        let started = Ok(ModelEvent::MessageStarted { id: "m".into() });
        let spent = crate::usage::Usage { input_tokens: 7, ..Default::default() };
        let usage = Ok(ModelEvent::Usage { usage: spent });
        let cut = Err(ProviderError::StreamCut { provider: "OpenAI", message: "reset".into() });
        let primary = Scripted::new("OpenAI", vec![Ok(vec![started, usage, cut])]);
        let fallback = Scripted::new("Gemini", vec![Ok(vec![text("hi")]), Ok(vec![text("again")])]);
        let p = FallbackProvider::new(primary.clone(), fallback.clone());
        let run = p.for_run().unwrap();
        assert_eq!(first_delta(run.as_ref()).await.unwrap(), "hi");
        assert_eq!((run.name(), p.name()), ("Gemini", "OpenAI"));
        assert_eq!(first_delta(run.as_ref()).await.unwrap(), "again", "the run stays with the fallback");
        assert_eq!(primary.calls.load(Ordering::SeqCst), 1);
        let abandoned = run.take_abandoned_calls();
        assert_eq!(abandoned, vec![ModelCalls { provider: "OpenAI", model: "m".into(), calls: 1, usage: spent }]);
        assert!(run.take_abandoned_calls().is_empty(), "handed over once");
    }

    #[tokio::test]
    async fn never_switches_after_a_token_or_for_blocked_content() {
        let primary = Scripted::new(
            "OpenAI",
            vec![Ok(vec![text("hi")]), Err(ProviderError::Connect { provider: "OpenAI", message: "down".into() })],
        );
        let fallback = Scripted::new("Gemini", vec![]);
        let p = FallbackProvider::new(primary, fallback.clone());
        let run = p.for_run().unwrap();
        assert_eq!(first_delta(run.as_ref()).await.unwrap(), "hi");
        assert!(matches!(first_delta(run.as_ref()).await, Err(ProviderError::Connect { .. })));
        assert_eq!(fallback.calls.load(Ordering::SeqCst), 0);

        let primary = Scripted::new("OpenAI", vec![Err(refused(ErrorClass::ContentBlocked))]);
        let p = FallbackProvider::new(primary, fallback.clone());
        let err = first_delta(p.for_run().unwrap().as_ref()).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::ContentBlocked);
        assert_eq!(fallback.calls.load(Ordering::SeqCst), 0);

        let primary = Scripted::new("OpenAI", vec![Err(refused(ErrorClass::QuotaExhausted))]);
        let fallback = Scripted::new("Gemini", vec![Ok(vec![text("covered")])]);
        let p = FallbackProvider::new(primary, fallback);
        assert_eq!(first_delta(p.for_run().unwrap().as_ref()).await.unwrap(), "covered");
    }
}
