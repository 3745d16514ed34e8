//! Model providers, function tools and the agent run loop that turns a model's output into ChatKit
//! events. Every module is private; this root re-exports what applications use.
//!
//! Layout:
//! - `provider`: the provider-neutral [`Provider`] trait, [`ModelRequest`], [`ModelEvent`] and
//!   [`ProviderError`].
//! - `error_class` and `usage`: what every provider fills the same way: the [`ErrorClass`] of a
//!   failure (read from the providers' [`ErrorBody`] shapes) and the [`Usage`] of a call.
//! - `openai/` (Responses API), `gemini/` (Gemini's native API) and `compatible/` (OpenAI-compatible
//!   Chat Completions servers): the three providers, each split into the request encoding, the stream
//!   parser and, for Gemini, the tool-schema conversion. `synthesized`: the message and reasoning
//!   items Gemini's and Chat Completions' parsers open under generated ids (their streams name none).
//! - `transport`, `sse`, `retry`: the HTTP plumbing the providers share: one reqwest client with
//!   [`Timeouts`], one streamed-call path (send, SSE framing with [`SseDecoder`], the provider's
//!   parser) and bounded retries ([`RetryPolicy`]) of failures that happen before anything was
//!   streamed.
//! - `failover`: [`FallbackProvider`], a second provider answering a turn the first could not.
//! - `runner` and `events`: [`Agent`] and [`run`]: model call → ChatKit events → tools → next call, with
//!   stop tools and a model-call budget.
//! - `reasoning`: the [`Reasoning`] settings and their per-provider encodings; `workflow`: the
//!   ChatKit `workflow` item that shows the model's reasoning.
//! - `tool`: the [`Tool`] trait and the [`ToolContext`] tools stream ChatKit events through.
//! - `input`: stored thread items → model input ([`items_to_input`]), customizable through
//!   [`ConvertHooks`].
//! - `transcribe`: dictation through OpenAI or Gemini ([`Transcriber`]).
//! - [`metrics`]: the names of the metrics recorded through the `metrics` facade (model calls,
//!   retries, tool calls).
//! - `config`: [`ModelConfig`], filled in by the application (this crate reads no environment), the
//!   default of every model setting, and the factories [`build_provider`] and [`build_transcriber`].

#![warn(missing_docs)]

mod compatible;
mod config;
mod error_class;
mod events;
mod failover;
mod gemini;
mod input;
pub mod metrics;
mod openai;
mod provider;
mod reasoning;
mod retry;
mod runner;
mod sse;
mod synthesized;
mod tool;
mod transcribe;
mod transport;
mod usage;
mod workflow;

pub use config::{
    CompatibleSettings, ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_GEMINI_BASE_URL,
    DEFAULT_GEMINI_MODEL, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, DEFAULT_OPENAI_BASE_URL,
    DEFAULT_OPENAI_MODEL, DEFAULT_TRANSCRIPTION_MODEL, ModelConfig, ProviderAccess, ProviderKind, build_provider,
    build_transcriber,
};
pub use error_class::{ErrorBody, ErrorClass};
pub use failover::FallbackProvider;
pub use input::{ContentPart, ConvertHooks, DefaultConvertHooks, InputItem, Role, hidden_context_text, items_to_input};
pub use provider::{
    FunctionCall, ModelEvent, ModelRequest, ModelStream, Provider, ProviderError, TimeoutPhase, ToolSpec,
};
pub use reasoning::{Reasoning, ReasoningEffort, ReasoningSummary};
pub use retry::RetryPolicy;
pub use runner::{
    Agent, DEFAULT_MAX_MODEL_CALLS, DEFAULT_PROGRESS_DELAY, RunReport, run, run_recorded, run_with_report,
};
pub use sse::SseDecoder;
pub use tool::{Tool, ToolContext, ToolError, parse_arguments};
pub use transcribe::{GEMINI_TRANSCRIBE_PROMPT, Transcriber};
pub use transport::Timeouts;
pub use usage::{ModelCalls, Usage};
