//! Model providers, function tools and the agent run loop that turns a model's output into ChatKit
//! events.
//!
//! - [`provider`]: the provider-neutral [`Provider`] trait, [`ModelRequest`], [`ModelEvent`];
//!   implementations for the OpenAI Responses API ([`openai`]) and Gemini's native API ([`gemini`]),
//!   thin reqwest clients with lenient serde types, timeouts and bounded retries ([`retry`]).
//! - [`tool`]: the [`Tool`] trait and the [`ToolContext`] tools stream ChatKit events through.
//! - [`runner`]: [`Agent`] and [`run`]: model call → ChatKit events (protocol spec §9.2) → tools →
//!   next call, with stop tools and a model-call budget.
//! - [`input`]: stored thread items → model input (spec §9.3), with [`ConvertHooks`].
//! - [`config`]: [`ModelConfig`] (from the environment), [`build_provider`], [`build_transcriber`].
//! - [`transcribe`]: dictation through OpenAI or Gemini.

#![warn(missing_docs)]

pub mod config;
mod events;
pub mod gemini;
mod gemini_schema;
pub mod input;
pub mod openai;
mod openai_stream;
pub mod provider;
pub mod retry;
pub mod runner;
mod sse;
pub mod tool;
pub mod transcribe;
mod transport;

pub use config::{
    ConfigError, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_GEMINI_BASE_URL, DEFAULT_GEMINI_MODEL,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MODEL,
    DEFAULT_TRANSCRIPTION_MODEL, ModelConfig, ProviderAccess, ProviderKind, build_provider, build_transcriber,
};
pub use input::{ContentPart, ConvertHooks, DefaultConvertHooks, InputItem, Role, items_to_input};
pub use provider::{FunctionCall, ModelEvent, ModelRequest, ModelStream, Provider, ProviderError, ToolSpec};
pub use retry::RetryPolicy;
pub use runner::{Agent, DEFAULT_MAX_MODEL_CALLS, model_error, run};
pub use sse::SseDecoder;
pub use tool::{Tool, ToolContext, ToolError, parse_arguments};
pub use transcribe::Transcriber;
pub use transport::Timeouts;
