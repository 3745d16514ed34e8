//! The provider-neutral model interface: the [`Provider`] trait every model backend implements, the
//! request it receives ([`ModelRequest`]), the events it streams back ([`ModelEvent`]) and its errors
//! ([`ProviderError`]).
//!
//! Providers translate their wire format into these events; the run loop ([`crate::runner`]) turns
//! them into ChatKit events. Error texts are written for people (they may reach the user) and never
//! contain API keys.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatkit::types::Annotation;
use futures::Stream;
use serde_json::Value;

use crate::error_class::{ErrorBody, ErrorClass};
use crate::input::InputItem;
use crate::metrics::ModelMetrics;
use crate::usage::{ModelCalls, Usage};

/// A function tool as offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Function name, unique within a request.
    pub name: String,
    /// What the function does (model-facing).
    pub description: String,
    /// Strict JSON schema of the arguments (OpenAI form; providers convert as needed).
    pub parameters: Value,
}

/// One model call: instructions, the whole conversation so far and the offered tools.
#[derive(Debug, Clone, Default)]
pub struct ModelRequest {
    /// System instructions (the agent's prompt).
    pub instructions: String,
    /// Conversation items, oldest first.
    pub input: Vec<InputItem>,
    /// Function tools the model may call (shared: every model call of a run offers the same ones).
    pub tools: Arc<[ToolSpec]>,
    /// Sampling temperature, if set.
    pub temperature: Option<f32>,
}

/// A complete function call requested by the model.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionCall {
    /// Correlates the call with its output.
    pub call_id: String,
    /// The [`ToolSpec::name`] of the tool to run.
    pub name: String,
    /// Arguments as a JSON text (may be invalid JSON; the run loop reports that to the model).
    pub arguments: String,
    /// Opaque provider data to replay with the call (e.g. Gemini's `thoughtSignature`).
    pub provider_data: Option<Value>,
}

/// What a provider streams. Message and part boundaries are explicit so the run loop can emit the
/// ChatKit sequence exactly; the run loop tolerates missing `*Started` events.
///
/// `id` / `message_id` is the provider's message id, used verbatim as the ChatKit item id (events
/// naming an id that was never started continue the open message: some proxies change the id within
/// one message); `content_index` is the part's position within its message. Reasoning shows as one
/// ChatKit `workflow` of `thought` tasks per run.
// The fields mean the same in every variant, so they are described once, above.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// An assistant message starts.
    MessageStarted { id: String },
    /// A text part of a message starts.
    ContentPartStarted { message_id: String, content_index: usize },
    /// Text appended to a part.
    TextDelta { message_id: String, content_index: usize, delta: String },
    /// A citation for a part, already in ChatKit's shape.
    Annotation { message_id: String, content_index: usize, annotation: Annotation },
    /// A part is complete; `text` is its final text (authoritative over the deltas).
    ContentPartDone { message_id: String, content_index: usize, text: String },
    /// A message is complete.
    MessageDone { id: String },
    /// The model asks for a function call (arguments complete).
    FunctionCall(FunctionCall),
    /// The model starts reasoning; `item_id` names its reasoning item (generated when the provider
    /// has none).
    ReasoningStarted { item_id: String },
    /// Reasoning text (a summary, or the raw reasoning some servers stream) appended to part
    /// `part_index` of reasoning item `item_id`.
    ReasoningDelta { item_id: String, part_index: usize, delta: String },
    /// Part `part_index` of reasoning item `item_id` is complete; `text` is its final text.
    ReasoningPartDone { item_id: String, part_index: usize, text: String },
    /// A complete reasoning item, as the provider sent it, to hand back unchanged in the next
    /// request of the run (OpenAI's reasoning items with their `encrypted_content`).
    ReasoningItem { item: Value },
    /// A complete assistant message of a response with reasoning, as the provider sent it (OpenAI),
    /// sent just before its [`ModelEvent::MessageDone`]: it goes back unchanged, `id` included, in
    /// the next request of the run in place of a message rebuilt from its text, because the API
    /// wants each reasoning item followed by the very item that followed it.
    MessageItem { item: Value },
    /// The response finished successfully; `usage` is what the call consumed, when the provider said.
    Completed { usage: Option<Usage> },
    /// What the call consumed, reported by a response that ends in a failure (an incomplete or failed
    /// response, a blocked prompt, a stream that stops early): the tokens are spent all the same. The
    /// error follows.
    Usage { usage: Usage },
}

/// The stream of a model response. It ends after [`ModelEvent::Completed`] or after the first error.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ProviderError>> + Send>>;

/// A model backend.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Starts a streamed model call. Transient failures before the first event are retried inside.
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ProviderError>;
    /// Human name of the provider (`OpenAI`, `Gemini`).
    fn name(&self) -> &'static str;
    /// The model answering (as sent to the API).
    fn model(&self) -> &str;
    /// A provider for one run (one turn) when this one keeps state across a run's model calls (failover
    /// never mixes providers within a turn); `None` (the default) runs on `self`.
    fn for_run(&self) -> Option<Box<dyn Provider + '_>> {
        None
    }
    /// The kept metric handles of the model answering (see [`crate::metrics`]); `None` (the default)
    /// looks the series up by name and labels at each record. They must be those of
    /// [`Provider::name`] and [`Provider::model`].
    fn metrics(&self) -> Option<&ModelMetrics> {
        None
    }
    /// The calls this (per-run) provider made to a provider that then did not answer (a failover's failed
    /// primary), since last asked; the run adds them to its usage. Empty by default.
    fn take_abandoned_calls(&self) -> Vec<ModelCalls> {
        Vec::new()
    }
}

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Opening the connection.
    Connect,
    /// Waiting for the response to start.
    FirstByte,
    /// Waiting for the next chunk of a started response.
    Idle,
}

/// A failed model or transcription call. `Display` is the full story for the server log (the
/// provider's text, key redacted); [`ProviderError::client_message`] is what a client is shown, and
/// [`ProviderError::class`] what kind of failure it is.
///
/// `provider` is the API's name as the message shows it (`OpenAI`, `Gemini`); `message` is the
/// provider's own explanation or the cause, with the key redacted; `status` is the HTTP status;
/// `code` is the provider's own error code (`insufficient_quota`, `RESOURCE_EXHAUSTED`, a finish
/// reason…), for the log.
// The fields mean the same in every variant, so they are described once, above.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 401/403: the key is missing, wrong or lacks access. `hint` tells the operator where to fix it
    /// (the application's [`crate::ProviderAccess::rejected_key_hint`]).
    #[error("The {provider} API rejected the API key{}.", in_parentheses(hint.as_deref()))]
    Unauthorized { provider: &'static str, hint: Option<String>, status: u16, code: Option<String> },
    /// Any other non-success HTTP status; `retry_after` is the wait the API asked for, if any.
    #[error("The {provider} API answered HTTP {status}{}: {message}", code_text(code.as_deref()))]
    Http { provider: &'static str, status: u16, message: String, retry_after: Option<Duration>, code: Option<String> },
    /// The provider refused for a reason retrying cannot fix: `class` is one of unknown model, exhausted
    /// quota, context too long, blocked content or a malformed function call.
    #[error("The {provider} API refused the request ({class}{}{}): {message}", status_text(*status), code_text(code.as_deref()))]
    Refused { provider: &'static str, class: ErrorClass, status: Option<u16>, code: Option<String>, message: String },
    /// The connection could not be opened or broke before a response.
    #[error("Could not reach the {provider} API: {message}")]
    Connect { provider: &'static str, message: String },
    /// The wait for `phase` ran out after `after`.
    #[error("{}", timeout_text(provider, *phase, *after))]
    Timeout { provider: &'static str, phase: TimeoutPhase, after: Duration },
    /// The response stream broke off before the model finished.
    #[error("The connection to the {provider} API broke off before the answer was complete ({message}).")]
    StreamCut { provider: &'static str, message: String },
    /// The provider reported a failure inside the stream (`response.failed`, an error chunk, …);
    /// `retryable` says whether the same request may succeed later (overload, server error).
    #[error("The {provider} model failed{}: {message}", code_text(code.as_deref()))]
    Failed { provider: &'static str, message: String, retryable: bool, code: Option<String> },
    /// The provider sent something unreadable.
    #[error("The {provider} API sent an unreadable response: {message}")]
    Decode { provider: &'static str, message: String },
    /// The request could not be built.
    #[error("The {provider} request could not be built: {message}")]
    Request { provider: &'static str, message: String },
}

/// A temperature as JSON writes it: `0.4f32` becomes `0.4`, not the widened `0.4000000059604645`.
pub(crate) fn f32_to_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

fn code_text(code: Option<&str>) -> String {
    code.map(|c| format!(", code {c}")).unwrap_or_default()
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(", HTTP {s}")).unwrap_or_default()
}

fn in_parentheses(hint: Option<&str>) -> String {
    hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

fn timeout_text(provider: &str, phase: TimeoutPhase, after: Duration) -> String {
    let secs = after.as_secs_f64();
    match phase {
        TimeoutPhase::Connect => format!("Could not connect to the {provider} API within {secs}s."),
        TimeoutPhase::FirstByte => {
            format!("The {provider} API did not start answering within {secs}s.")
        }
        TimeoutPhase::Idle => {
            format!("The {provider} API stopped sending for {secs}s (stalled stream).")
        }
    }
}

/// The client text of a refusal: what happened, in our words, without inviting a retry.
fn refusal_text(provider: &str, class: ErrorClass, status: Option<u16>) -> String {
    match class {
        ErrorClass::UnknownModel => {
            format!(
                "The {provider} model service does not offer the configured model; the server's model setting needs changing."
            )
        }
        ErrorClass::QuotaExhausted => format!(
            "The {provider} account has used up its quota, so the model service refuses requests until the plan or billing is updated."
        ),
        ErrorClass::ContextTooLong => format!(
            "This conversation has grown too long for the {provider} model to read at once. Start a new conversation to continue."
        ),
        ErrorClass::ContentBlocked => {
            format!("The {provider} model declined to answer: its safety system blocked this request or the answer.")
        }
        ErrorClass::MalformedFunctionCall => {
            format!("The {provider} model produced a malformed tool call, so this request could not be completed.")
        }
        ErrorClass::ToolsUnsupported => format!(
            "The {provider} model does not support tool calls, which this assistant needs; the server's model setting needs changing."
        ),
        _ => match status {
            Some(s) => format!("The {provider} model service rejected the request (HTTP {s})."),
            None => format!("The {provider} model service rejected the request."),
        },
    }
}

impl ProviderError {
    /// Whether retrying the same request may help (429, 5xx, connection failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Http { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            ProviderError::Connect { .. } | ProviderError::StreamCut { .. } => true,
            ProviderError::Timeout { phase, .. } => *phase == TimeoutPhase::Connect,
            ProviderError::Failed { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The wait the provider asked for (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The free-text message of the error, for the variants that carry one.
    pub fn message_mut(&mut self) -> Option<&mut String> {
        match self {
            ProviderError::Http { message, .. }
            | ProviderError::Refused { message, .. }
            | ProviderError::Connect { message, .. }
            | ProviderError::StreamCut { message, .. }
            | ProviderError::Failed { message, .. }
            | ProviderError::Decode { message, .. }
            | ProviderError::Request { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The error in our own words, for the person chatting and for HTTP bodies. The provider's own
    /// text (which may name internal hosts, echo headers or quote the request) is left out: it
    /// belongs in the server log (`Display`), never in what a client receives.
    pub fn client_message(&self) -> String {
        match self {
            ProviderError::Unauthorized { .. } | ProviderError::Timeout { .. } => self.to_string(),
            ProviderError::Http { provider, status, .. } => {
                let what = match status {
                    429 => "is rate limiting requests",
                    408 | 500.. => "failed to answer",
                    _ => "rejected the request",
                };
                format!("The {provider} model service {what} (HTTP {status}).")
            }
            ProviderError::Connect { provider, .. } => format!("Could not reach the {provider} model service."),
            ProviderError::StreamCut { provider, .. } => {
                format!("The connection to the {provider} model service broke off before the answer was complete.")
            }
            ProviderError::Refused { provider, class, status, .. } => refusal_text(provider, *class, *status),
            ProviderError::Failed { provider, code, .. } => match code.as_deref() {
                Some("max_output_tokens" | "MAX_TOKENS") => {
                    format!("The {provider} model reached its output limit before finishing the answer.")
                }
                _ => format!("The {provider} model failed to answer."),
            },
            ProviderError::Decode { provider, .. } => {
                format!("The {provider} model service sent an unreadable response.")
            }
            ProviderError::Request { provider, .. } => {
                format!("The request to the {provider} model service could not be built.")
            }
        }
    }

    /// The provider's HTTP status, if the error came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Http { status, .. } | ProviderError::Unauthorized { status, .. } => Some(*status),
            ProviderError::Refused { status, .. } => *status,
            _ => None,
        }
    }

    /// What kind of failure this is.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Unauthorized { .. } => ErrorClass::InvalidKey,
            ProviderError::Http { status, .. } => match status {
                429 => ErrorClass::RateLimited,
                408 | 500.. => ErrorClass::ServerError,
                _ => ErrorClass::InvalidRequest,
            },
            ProviderError::Refused { class, .. } => *class,
            ProviderError::Connect { .. } => ErrorClass::Network,
            ProviderError::Timeout { .. } => ErrorClass::Timeout,
            ProviderError::StreamCut { .. } => ErrorClass::StreamCut,
            ProviderError::Failed { retryable: true, .. } => ErrorClass::ServerError,
            ProviderError::Failed { retryable: false, .. } => ErrorClass::ModelFailed,
            ProviderError::Request { .. } => ErrorClass::InvalidRequest,
            ProviderError::Decode { .. } => ErrorClass::InvalidResponse,
        }
    }

    /// The provider's own error code (`insufficient_quota`, `RESOURCE_EXHAUSTED`, a finish reason…).
    pub fn code(&self) -> Option<&str> {
        match self {
            ProviderError::Http { code, .. }
            | ProviderError::Unauthorized { code, .. }
            | ProviderError::Refused { code, .. }
            | ProviderError::Failed { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The error for an HTTP failure status with the provider's error `body`: the refusals retrying
    /// cannot fix become [`ProviderError::Refused`], the rest [`ProviderError::Http`].
    pub fn from_status(
        provider: &'static str,
        status: u16,
        body: &ErrorBody,
        retry_after: Option<Duration>,
    ) -> ProviderError {
        let class = ErrorClass::classify(Some(status), body);
        let code = body.provider_code();
        let message = if body.message.is_empty() {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no error message")
                .to_string()
        } else {
            body.message.clone()
        };
        if class.is_refusal() {
            ProviderError::Refused { provider, class, status: Some(status), code, message }
        } else {
            ProviderError::Http { provider, status, message, retry_after, code }
        }
    }

    /// The error for a failure the provider reported inside a stream: refusals become
    /// [`ProviderError::Refused`]; the rest [`ProviderError::Failed`], retryable when the class is.
    pub fn in_stream(provider: &'static str, body: &ErrorBody) -> ProviderError {
        let status = body.code.as_deref().and_then(|c| c.parse::<u16>().ok());
        let class = ErrorClass::classify(status, body);
        let code = body.provider_code();
        let message = if body.message.is_empty() { "unknown error".to_string() } else { body.message.clone() };
        if class.is_refusal() {
            return ProviderError::Refused { provider, class, status: None, code, message };
        }
        let retryable = matches!(class, ErrorClass::RateLimited | ErrorClass::ServerError);
        ProviderError::Failed { provider, message, retryable, code }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_leave_the_provider_text_out() {
        let leak = "gw.internal:8443 said Authorization: Bearer x".to_string();
        let errors = [
            ProviderError::Http {
                provider: "OpenAI",
                status: 400,
                message: leak.clone(),
                retry_after: None,
                code: None,
            },
            ProviderError::Connect { provider: "OpenAI", message: leak.clone() },
            ProviderError::StreamCut { provider: "Gemini", message: leak.clone() },
            ProviderError::Failed { provider: "Gemini", message: leak.clone(), retryable: true, code: None },
            ProviderError::Refused {
                provider: "OpenAI",
                class: ErrorClass::QuotaExhausted,
                status: Some(429),
                code: Some("insufficient_quota".into()),
                message: leak.clone(),
            },
            ProviderError::Decode { provider: "OpenAI", message: leak.clone() },
            ProviderError::Request { provider: "OpenAI", message: leak.clone() },
        ];
        for e in errors {
            assert!(e.to_string().contains(&leak), "the log keeps the cause: {e}");
            assert!(!e.client_message().contains("internal"), "{}", e.client_message());
        }
        let e = ProviderError::Http { provider: "OpenAI", status: 400, message: leak, retry_after: None, code: None };
        assert_eq!(e.client_message(), "The OpenAI model service rejected the request (HTTP 400).");
    }
}
