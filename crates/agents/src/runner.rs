//! The agent run loop: call the model, stream its output as ChatKit events, execute the requested
//! tools (concurrently, results in call order), feed the results back, and stop when the model calls
//! no tool, after a step that ran a stop tool, or when the model-call budget is spent.
//!
//! Differences from openai-agents, deliberate: an unknown tool name goes back to the model as an
//! error text (like a failing tool) instead of aborting the run; a stop tool that *fails* does not
//! stop the run, so the model can explain the failure; model failures become
//! `AppError::Custom` with a clear message (see [`model_error`], the single place to change that).
//!
//! Reasoning is shown as one ChatKit `workflow` per run ([`ReasoningWorkflow`]), closed when an answer
//! starts, when a tool shows another item, or at the end of the run (removed if a failed run leaves
//! it empty). A tool that takes longer than [`Agent::progress_delay`] shows its
//! [`Tool::progress_text`].
//!
//! Cancellation: [`run`] holds no resources beyond its future. When the client disconnects the
//! caller drops it, which closes the model's HTTP stream and drops running tool futures.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chatkit::AppError;
use chatkit::EventSink;
use futures::StreamExt;
use serde_json::Value;
use tracing::Instrument as _;

use crate::events::{EventMapper, StepOutput};
use crate::input::InputItem;
use crate::metrics;
use crate::provider::{FunctionCall, ModelEvent, ModelRequest, Provider, ProviderError, ToolSpec};
use crate::tool::{Tool, ToolContext, ToolError, spec_of};
use crate::usage::{ModelCalls, Usage};
use crate::workflow::ReasoningWorkflow;

/// Default bound on model calls per run (openai-agents' `DEFAULT_MAX_TURNS`).
pub const DEFAULT_MAX_MODEL_CALLS: usize = 10;

/// Default time a tool call may take before the chat shows its [`Tool::progress_text`].
pub const DEFAULT_PROGRESS_DELAY: Duration = Duration::from_millis(400);

/// Prefix of every tool error sent back to the model (openai-agents' default text).
const TOOL_ERROR_PREFIX: &str = "An error occurred while running the tool. Please try again. Error: ";

/// Tool specs and the tools they were made from.
type CachedSpecs = (Vec<Arc<dyn Tool>>, Arc<[ToolSpec]>);

/// An agent: instructions, tools and run settings.
#[derive(Clone)]
pub struct Agent {
    /// Name (used in logs and in the unknown-tool message).
    pub name: String,
    /// System instructions, sent with every model call.
    pub instructions: String,
    /// The tools the model may call, offered in this order.
    pub tools: Vec<Arc<dyn Tool>>,
    /// Sampling temperature; `None` leaves it to the provider.
    pub temperature: Option<f32>,
    /// Model calls allowed per run before it ends with an error.
    pub max_model_calls: usize,
    /// How long a tool call may run before its [`Tool::progress_text`] is shown (zero: at once).
    pub progress_delay: Duration,
    /// The specs of `tools` as first sent, with the tools they were made from. Building a spec builds
    /// its JSON schema, which is a good part of a short turn's work; the schema of a tool does not change,
    /// so the specs are made once and reused for as long as `tools` holds the same tools.
    tool_specs: OnceLock<CachedSpecs>,
}

impl Agent {
    /// An agent without tools, with the provider's temperature and [`DEFAULT_MAX_MODEL_CALLS`].
    pub fn new(name: impl Into<String>, instructions: impl Into<String>) -> Self {
        Agent {
            name: name.into(),
            instructions: instructions.into(),
            tools: Vec::new(),
            temperature: None,
            max_model_calls: DEFAULT_MAX_MODEL_CALLS,
            progress_delay: DEFAULT_PROGRESS_DELAY,
            tool_specs: OnceLock::new(),
        }
    }

    /// Adds a tool.
    pub fn with_tool(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    fn tool(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name)
    }

    /// The specs of [`Agent::tools`], in order: made at the first run and reused while `tools` is
    /// unchanged (the same tools, compared by identity); made afresh when `tools` was changed since.
    fn tool_specs(&self) -> Arc<[ToolSpec]> {
        let make = || self.tools.iter().map(|t| spec_of(t.as_ref())).collect::<Arc<[ToolSpec]>>();
        let (tools, specs) = self.tool_specs.get_or_init(|| (self.tools.clone(), make()));
        let unchanged =
            tools.len() == self.tools.len() && tools.iter().zip(&self.tools).all(|(a, b)| Arc::ptr_eq(a, b));
        if unchanged { specs.clone() } else { make() }
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("tools", &self.tools.iter().map(|t| t.name().to_string()).collect::<Vec<_>>())
            .field("temperature", &self.temperature)
            .field("max_model_calls", &self.max_model_calls)
            .field("progress_delay", &self.progress_delay)
            .finish()
    }
}

/// What a run consumed and who answered it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Tokens of every model call of the run, summed, as the providers reported them: a call that failed
    /// or was cut counts what its provider reported before it ended (often nothing).
    pub usage: Usage,
    /// Model calls made (after a failover, the failed call to the primary included).
    pub model_calls: usize,
    /// The provider that answered (the fallback's name after a failover).
    pub provider: &'static str,
    /// The model that answered.
    pub model: String,
    /// The same per provider and model, in the order they were first called (two entries after a
    /// failover).
    pub by_model: Vec<ModelCalls>,
}

/// Where the usage of the model call in progress goes in a [`RunReport`].
struct CallSlot {
    index: usize,
    entry_before: Usage,
    total_before: Usage,
}

impl RunReport {
    /// Counts one call to `provider`/`model`; its usage is set through the returned slot as it is
    /// reported.
    fn start_call(&mut self, provider: &'static str, model: &str) -> CallSlot {
        let index = match self.by_model.iter().position(|c| c.provider == provider && c.model == model) {
            Some(index) => index,
            None => {
                let entry = ModelCalls { provider, model: model.to_string(), ..ModelCalls::default() };
                self.by_model.push(entry);
                self.by_model.len() - 1
            }
        };
        self.by_model[index].calls += 1;
        self.model_calls += 1;
        CallSlot { index, entry_before: self.by_model[index].usage, total_before: self.usage }
    }

    /// Sets the usage of the call in `slot` (each report of a call replaces the one before).
    fn set_call_usage(&mut self, slot: &CallSlot, usage: Usage) {
        let (mut entry, mut total) = (slot.entry_before, slot.total_before);
        entry += usage;
        total += usage;
        self.by_model[slot.index].usage = entry;
        self.usage = total;
    }

    /// Adds calls made to a provider that did not answer (see [`Provider::take_abandoned_calls`]).
    fn add_abandoned(&mut self, abandoned: Vec<ModelCalls>) {
        for call in abandoned {
            let slot = self.start_call(call.provider, &call.model);
            self.by_model[slot.index].calls += call.calls.saturating_sub(1);
            self.model_calls += call.calls.saturating_sub(1);
            self.set_call_usage(&slot, call.usage);
        }
    }
}

/// Changes `report` (a poisoned lock is taken over: the report stays usable).
fn update<T>(report: &Mutex<RunReport>, change: impl FnOnce(&mut RunReport) -> T) -> T {
    change(&mut report.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Runs the agent on `input`, streaming ChatKit events through `sink` (which persists finished
/// items). Returns when the turn is complete; errors are meant for [`AppError::to_event`].
pub async fn run(
    agent: &Agent,
    provider: &dyn Provider,
    input: Vec<InputItem>,
    sink: &EventSink,
) -> Result<(), AppError> {
    run_with_report(agent, provider, input, sink).await.0
}

/// [`run`], also returning what the run consumed and who answered, whether it succeeded or not.
pub async fn run_with_report(
    agent: &Agent,
    provider: &dyn Provider,
    input: Vec<InputItem>,
    sink: &EventSink,
) -> (Result<(), AppError>, RunReport) {
    let report = Mutex::new(RunReport::default());
    let result = run_recorded(agent, provider, input, sink, &report).await;
    (result, report.into_inner().unwrap_or_else(PoisonError::into_inner))
}

/// [`run`], keeping `report` up to date while it runs: every model call is counted once it started
/// streaming, and its tokens as soon as the provider reports them, so a run whose future is dropped
/// (the client left) still tells what it spent.
pub async fn run_recorded(
    agent: &Agent,
    provider: &dyn Provider,
    input: Vec<InputItem>,
    sink: &EventSink,
    report: &Mutex<RunReport>,
) -> Result<(), AppError> {
    let per_run = provider.for_run();
    let provider = per_run.as_deref().unwrap_or(provider);
    let who = |r: &mut RunReport| {
        r.provider = provider.name();
        r.model = provider.model().to_string();
    };
    update(report, who);
    let workflow = ReasoningWorkflow::default();
    let mut result = run_steps(agent, provider, input, sink, report, &workflow).await;
    // The reasoning shown so far is closed (kept), or removed when a failed run left it empty.
    let ended = match &result {
        Ok(()) => workflow.close(sink).await,
        Err(_) if sink.is_closed() => Ok(()),
        Err(_) => workflow.abandon(sink).await,
    };
    if let (Ok(()), Err(e)) = (&result, ended) {
        result = Err(e.into());
    }
    update(report, who);
    result
}

async fn run_steps(
    agent: &Agent,
    provider: &dyn Provider,
    input: Vec<InputItem>,
    sink: &EventSink,
    report: &Mutex<RunReport>,
    workflow: &ReasoningWorkflow,
) -> Result<(), AppError> {
    let tools = agent.tool_specs();
    let mut input = input;
    let mut steps = 0;
    loop {
        if steps >= agent.max_model_calls {
            tracing::warn!(agent = %agent.name, max = agent.max_model_calls, "model call budget exhausted");
            return Err(max_calls_error(agent.max_model_calls));
        }
        steps += 1;
        let request = ModelRequest {
            instructions: agent.instructions.clone(),
            input: input.clone(),
            tools: tools.clone(),
            temperature: agent.temperature,
        };
        tracing::debug!(agent = %agent.name, provider = provider.name(), model = provider.model(), call = steps, items = input.len(), "model call");
        let span = model_call_span(provider, agent);
        let step = model_step(provider, request, sink, workflow, report).instrument(span.clone()).await?;
        if let Some(usage) = step.usage {
            span.record("gen_ai.usage.input_tokens", usage.input_tokens);
            span.record("gen_ai.usage.output_tokens", usage.output_tokens);
        }
        input.extend(step.items);
        if step.calls.is_empty() {
            return Ok(());
        }
        let results = futures::future::join_all(
            step.calls.iter().map(|c| execute(agent, c, sink, workflow).instrument(tool_span(agent, c))),
        )
        .await;
        let mut stop = false;
        for (call, (output, stopped)) in step.calls.iter().zip(results) {
            stop |= stopped;
            input.push(InputItem::FunctionCallOutput { call_id: call.call_id.clone(), output });
        }
        if sink.is_closed() {
            return Err(AppError::Disconnected);
        }
        if stop {
            return Ok(());
        }
    }
}

/// The span of one model call, named and attributed after OpenTelemetry's GenAI conventions; the token
/// counts are recorded on it once the provider reported them.
fn model_call_span(provider: &dyn Provider, agent: &Agent) -> tracing::Span {
    // The conventions' well-known values; providers name themselves for people ("OpenAI").
    let name = provider.name();
    let system = if name.eq_ignore_ascii_case("gemini") { "gcp.gemini".to_string() } else { name.to_ascii_lowercase() };
    tracing::info_span!(
        "gen_ai.chat",
        otel.name = format!("chat {}", provider.model()),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.system = system,
        gen_ai.request.model = provider.model(),
        gen_ai.request.temperature = agent.temperature.map(f64::from),
        gen_ai.agent.name = %agent.name,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
    )
}

/// The span of one tool call (GenAI conventions). A tool the agent does not have is named `unknown`:
/// the name came from the model.
fn tool_span(agent: &Agent, call: &FunctionCall) -> tracing::Span {
    let name = agent.tool(&call.name).map_or("unknown", |t| t.name());
    tracing::info_span!(
        "gen_ai.execute_tool",
        otel.name = format!("execute_tool {name}"),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = name,
        gen_ai.tool.call.id = %call.call_id,
    )
}

/// One model call: streams its output through the sink and returns what it produced, counting the call
/// and its tokens in `report` as they come. Measured as one model call ([`metrics::ModelCall`]): a step
/// that ends early (the client left, an event could not be stored) counts as `cancelled`.
async fn model_step(
    provider: &dyn Provider,
    request: ModelRequest,
    sink: &EventSink,
    workflow: &ReasoningWorkflow,
    report: &Mutex<RunReport>,
) -> Result<StepOutput, AppError> {
    let mut call = metrics::ModelCall::start(provider);
    let started = provider.stream(request).await;
    update(report, |r| r.add_abandoned(provider.take_abandoned_calls()));
    // Counted once the provider that answers is known (a failover decides it while starting).
    let slot = update(report, |r| r.start_call(provider.name(), provider.model()));
    let mut stream = match started {
        Ok(stream) => stream,
        Err(e) => {
            call.finish(metrics::error_outcome(&e));
            return Err(model_error(&e, false));
        }
    };
    let mut mapper = EventMapper::new(sink, workflow);
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                match &event {
                    ModelEvent::TextDelta { .. } | ModelEvent::FunctionCall(_) => call.output(),
                    ModelEvent::Usage { usage } | ModelEvent::Completed { usage: Some(usage) } => {
                        update(report, |r| r.set_call_usage(&slot, *usage));
                    }
                    _ => {}
                }
                mapper.handle(event).await?
            }
            Err(e) => {
                drop(stream);
                call.finish(metrics::error_outcome(&e));
                if let Some(usage) = &mapper.output.usage {
                    metrics::tokens(provider, usage);
                }
                let kept = mapper.finish_open().await?;
                return Err(model_error(&e, kept || mapper.finished_messages > 0));
            }
        }
    }
    call.finish("ok");
    if let Some(usage) = &mapper.output.usage {
        metrics::tokens(provider, usage);
    }
    mapper.finish_open().await?;
    Ok(mapper.output)
}

/// Executes one call; returns the output text for the model and whether a stop tool succeeded.
async fn execute(agent: &Agent, call: &FunctionCall, sink: &EventSink, workflow: &ReasoningWorkflow) -> (String, bool) {
    let started = std::time::Instant::now();
    let Some(tool) = agent.tool(&call.name) else {
        tracing::warn!(agent = %agent.name, tool = %call.name, "model called an unknown tool");
        // The name came from the model: it is not a label value.
        metrics::tool_call("unknown", "unknown_tool", started.elapsed());
        return (tool_error_text(&format!("Tool {} not found in agent {}", call.name, agent.name)), false);
    };
    let (output, outcome) = run_tool(agent, tool.as_ref(), call, sink, workflow).await;
    metrics::tool_call(tool.name(), outcome, started.elapsed());
    output
}

/// Runs a known tool: its output for the model, whether a stop tool succeeded, and the metric outcome.
async fn run_tool(
    agent: &Agent,
    tool: &dyn Tool,
    call: &FunctionCall,
    sink: &EventSink,
    workflow: &ReasoningWorkflow,
) -> ((String, bool), &'static str) {
    let arguments: Value = if call.arguments.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        match serde_json::from_str(&call.arguments) {
            Ok(v) => v,
            Err(e) => {
                return ((tool_error_text(&invalid_arguments(&call.name, &e.to_string())), false), "invalid_arguments");
            }
        }
    };
    let ctx = ToolContext::in_run(sink.clone(), call.call_id.clone(), workflow.clone());
    let progress = tool.progress_text(&arguments);
    let result = match progress {
        None => tool.call(arguments, &ctx).await,
        Some(text) => with_progress(tool.call(arguments, &ctx), &ctx, text, agent.progress_delay).await,
    };
    match result {
        Ok(value) => ((output_text(&value), tool.is_stop()), "ok"),
        Err(ToolError::InvalidArguments(m)) => {
            tracing::info!(tool = %call.name, error = %m, "tool arguments rejected");
            ((tool_error_text(&invalid_arguments(&call.name, &m)), false), "invalid_arguments")
        }
        Err(ToolError::Failed(m)) => {
            tracing::info!(tool = %call.name, error = %m, "tool failed");
            ((tool_error_text(&m), false), "failed")
        }
    }
}

/// Runs `call`, showing `text` as progress once it has taken `delay` (at once for a zero delay). A
/// progress event that cannot be sent is left out: the call goes on.
async fn with_progress(
    call: impl Future<Output = Result<Value, ToolError>>,
    ctx: &ToolContext,
    text: String,
    delay: Duration,
) -> Result<Value, ToolError> {
    if delay.is_zero() {
        let _ = ctx.progress(text).await;
        return call.await;
    }
    let mut call = std::pin::pin!(call);
    tokio::select! {
        biased;
        result = &mut call => return result,
        () = tokio::time::sleep(delay) => {}
    }
    let _ = ctx.progress(text).await;
    call.await
}

fn invalid_arguments(tool: &str, detail: &str) -> String {
    format!("Invalid JSON input for tool {tool}: {detail}")
}

/// `An error occurred while running the tool. Please try again. Error: <message>`
fn tool_error_text(message: &str) -> String {
    format!("{TOOL_ERROR_PREFIX}{message}")
}

/// A tool result as text for the model: strings as is, anything else as compact JSON.
fn output_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn max_calls_error(max: usize) -> AppError {
    AppError::Custom {
        message: format!(
            "The assistant stopped after {max} model calls without finishing its answer. Please rephrase or try again."
        ),
        allow_retry: true,
    }
}

/// The single mapping of model failures to the turn's error (an `error` event via
/// [`AppError::to_event`]). `partial` says whether some answer text was already shown and kept.
/// `allow_retry` follows the failure's [`crate::ErrorClass`]: only failures that may go away invite
/// another try; the others say what happened and stop there.
///
/// We emit `code: "custom"` with a clear message; the Python sample emits
/// `{"type":"error","code":"stream.error","allow_retry":true}` instead. To match it, return
/// `AppError::Internal(err.to_string())` here.
fn model_error(err: &ProviderError, partial: bool) -> AppError {
    let class = err.class();
    let allow_retry = class.worth_retrying();
    // The provider's own words go to the log only; the client gets ours.
    tracing::warn!(
        class = class.as_str(),
        code = err.code().unwrap_or("-"),
        status = err.status(),
        error = %err,
        partial,
        "model call failed"
    );
    let text = err.client_message();
    let mut message = if partial { format!("The answer was interrupted. {text}") } else { text };
    if !message.ends_with(['.', '!', '?', ')']) {
        message.push('.');
    }
    if allow_retry {
        message.push_str(" Please try again.");
    }
    AppError::Custom { message, allow_retry }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn model_error_texts() {
        let e = ProviderError::Unauthorized {
            provider: "OpenAI",
            hint: Some("check the key setting".into()),
            status: 401,
            code: Some("invalid_api_key".into()),
        };
        let AppError::Custom { message, allow_retry } = model_error(&e, false) else { panic!() };
        assert_eq!(message, "The OpenAI API rejected the API key (check the key setting).");
        assert!(!allow_retry);

        let e = ProviderError::Http {
            provider: "Gemini",
            status: 503,
            message: "overloaded".into(),
            retry_after: None,
            code: None,
        };
        let AppError::Custom { message, allow_retry } = model_error(&e, false) else { panic!() };
        assert_eq!(message, "The Gemini model service failed to answer (HTTP 503). Please try again.");
        assert!(allow_retry);

        let e = ProviderError::Timeout {
            provider: "OpenAI",
            phase: crate::provider::TimeoutPhase::Idle,
            after: Duration::from_millis(1500),
        };
        let AppError::Custom { message, allow_retry } = model_error(&e, true) else { panic!() };
        assert_eq!(
            message,
            "The answer was interrupted. The OpenAI API stopped sending for 1.5s (stalled stream). Please try again."
        );
        assert!(allow_retry);
    }

    #[test]
    fn outputs_and_errors() {
        assert_eq!(output_text(&serde_json::json!({"result": "ok", "n": 1})), r#"{"result":"ok","n":1}"#);
        assert_eq!(output_text(&serde_json::json!("plain")), "plain");
        assert_eq!(
            tool_error_text("Flight OA999 is not on the customer's itinerary."),
            "An error occurred while running the tool. Please try again. Error: Flight OA999 is not on the customer's itinerary."
        );
    }

    /// A tool whose schema says how often it was built.
    struct Counted(std::sync::atomic::AtomicUsize, &'static str);

    #[async_trait::async_trait]
    impl Tool for Counted {
        fn name(&self) -> &str {
            self.1
        }
        fn description(&self) -> &str {
            "counts"
        }
        fn parameters(&self) -> serde_json::Value {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            serde_json::json!({"type": "object", "built": n})
        }
        async fn call(&self, _: serde_json::Value, _: &ToolContext) -> Result<serde_json::Value, ToolError> {
            Ok(serde_json::Value::Null)
        }
    }

    #[test]
    fn tool_specs_are_built_once_while_the_tools_stay_the_same() {
        let a = Arc::new(Counted(Default::default(), "a"));
        let mut agent = Agent::new("x", "y").with_tool(a.clone());
        let first = agent.tool_specs();
        let again = agent.tool_specs();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(a.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(first[0].name, "a");
        assert_eq!(first[0].parameters["built"], 0);

        // Changing the tools afterwards is seen: the specs follow the tools, not the first run.
        agent.tools.push(Arc::new(Counted(Default::default(), "b")));
        let names: Vec<_> = agent.tool_specs().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
        agent.tools = vec![Arc::new(Counted(Default::default(), "a"))];
        assert_eq!(agent.tool_specs()[0].parameters["built"], 0);
        assert_eq!(agent.tool_specs().len(), 1);
    }
}
